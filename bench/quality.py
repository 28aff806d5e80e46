"""Clustering quality on the labelled short-text sets, through textcluster end to end.

    .venv/bin/python bench/quality.py [--sets stackoverflow,...] [--seeds 5] [--umap-seeds 5]
    .venv/bin/python bench/quality.py --report        # print the table from the saved results

Reads ``../shared/datasets`` relative to the repository root (the sets described in its
README.md; users who clone the project do not have that folder). Follows that README's
protocol: each whole set, k = its number of classes, ACC (Hungarian) and NMI as
percentages, mean ± std over seeds; labels only score.

Every set is ingested (a JSONL of text + label written under ``bench/.workspace/inputs``),
embedded with the default encoder (minilm) and clustered with :func:`textcluster.cluster.runs.cluster`
in the workspace ``bench/.workspace`` (embeddings are cached there: a rerun skips them).
Configurations: k-means on the raw embeddings, on PCA (50 dims), on UMAP (5 dims, 15
neighbours, cosine, min_dist 0), and HDBSCAN on the same UMAP output (min_cluster_size
= max(15, n/200), a label-free rule; NMI and noise share). The 2-D plot projection is PCA
here (plots are not scored). Results are appended to ``bench/results/quality.jsonl`` as they
come, so an interrupted run keeps what it finished and a rerun skips it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # a shared 2-core machine; faiss/BLAS spin badly when oversubscribed
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "datasets"
SETS = ["stackoverflow", "searchsnippets", "agnews8000", "biomedical", "tweet89", "banking77", "googlenews_t",
        "googlenews_s", "googlenews_ts"]
PUBLISHED = {  # ACC %, from ../shared/datasets/README.md
    "SCCL (Zhang et al. 2021)": {"agnews8000": 88.2, "searchsnippets": 85.2, "stackoverflow": 75.5, "biomedical": 46.2,
                                 "googlenews_ts": 89.8, "googlenews_t": 75.8, "googlenews_s": 83.1, "tweet89": 78.2},
    "RSTC (Zheng et al. 2023)": {"agnews8000": 85.4, "searchsnippets": 80.1, "stackoverflow": 83.3, "biomedical": 48.4,
                                 "googlenews_ts": 83.3, "googlenews_t": 72.3, "googlenews_s": 79.3, "tweet89": 76.6},
    "Self-training (Hadifar et al. 2019)": {"searchsnippets": 77.1, "biomedical": 54.8},
    "STC2 (Xu et al. 2017)": {"searchsnippets": 77.1, "biomedical": 43.6},
    "TF-IDF + k-means (SCCL)": {"stackoverflow": 58.4},
}
CONFIGS = ["kmeans", "pca50+kmeans", "umap5+kmeans", "umap5+hdbscan"]


def read_set(name: str) -> tuple[list[str], list[str]]:
    d = DATA / name
    tf, lf = ("train_text.txt", "train_labels.txt") if name == "banking77" else ("text.txt", "labels.txt")
    texts = (d / tf).read_text(encoding="utf-8").split("\n")
    labels = (d / lf).read_text(encoding="utf-8").split("\n")
    while texts and texts[-1] == "" and labels and labels[-1] == "":
        texts.pop()
        labels.pop()
    if len(texts) != len(labels):
        raise SystemExit(f"{name}: {len(texts)} texts but {len(labels)} labels")
    return texts, labels


def embedding_of(ws, name: str) -> tuple[str, int, int, float]:
    """Ingest + embed a set (cached in the workspace); returns (embedding_id, n, classes, seconds)."""
    from textcluster.config import CorpusSpec, EncoderConfig
    from textcluster.embed.engine import embed
    from textcluster.ingest.corpus import ingest

    texts, labels = read_set(name)
    inp = ws.root / "inputs" / f"{name}.jsonl"
    if not inp.exists():
        inp.parent.mkdir(parents=True, exist_ok=True)
        with open(inp, "w", encoding="utf-8") as f:
            for t, lab in zip(texts, labels, strict=True):
                f.write(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n")
    t0 = time.perf_counter()
    rep = ingest(inp, CorpusSpec(text_fields=("text",), label_field="label"), ws)
    emb = embed(ws, rep.corpus_id, EncoderConfig())
    if rep.rejected:
        print(f"  note: {name}: {rep.rejected} rows rejected by ingest (empty texts)", file=sys.stderr)
    return emb.embedding_id, emb.n, len(set(labels)), time.perf_counter() - t0


def configs(cfg: str, k: int, n: int, seed: int):
    from textcluster.config import ClustererConfig, ReducerConfig

    umap = ReducerConfig(method="umap", dims=5, n_neighbors=15, min_dist=0.0, metric="cosine", projection="pca")
    if cfg == "kmeans":
        return ReducerConfig(projection="pca"), ClustererConfig(k=k, seed=seed)
    if cfg == "pca50+kmeans":
        return ReducerConfig(method="pca", dims=50, projection="pca"), ClustererConfig(k=k, seed=seed)
    if cfg == "umap5+kmeans":
        return umap, ClustererConfig(k=k, seed=seed)
    if cfg == "umap5+hdbscan":
        return umap, ClustererConfig(method="hdbscan", min_cluster_size=max(15, n // 200), seed=seed)
    raise ValueError(cfg)


def done(out: Path) -> set[tuple[str, str, int]]:
    if not out.exists():
        return set()
    return {(r["set"], r["config"], r["seed"]) for r in map(json.loads, out.read_text().splitlines()) if r}


def bench(args: argparse.Namespace) -> None:
    from textcluster.cluster import runs
    from textcluster.cluster.reduce import warm_up
    from textcluster.store import Workspace

    ws = Workspace(ROOT / "bench" / ".workspace")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    have = done(out)
    sets = args.sets.split(",")
    print(f"UMAP warm-up {warm_up():.1f} s", flush=True)

    def one(name: str, cfg: str, seed: int, eid: str, n: int, k: int) -> None:
        if (name, cfg, seed) in have:
            return
        reducer, clusterer = configs(cfg, k, n, seed)
        t0 = time.perf_counter()
        res = runs.cluster(ws, eid, reducer, clusterer)
        row = {"set": name, "config": cfg, "seed": seed, "n": n, "classes": k, "k_found": res.k,
               "acc": res.metrics.get("acc"), "nmi": res.metrics.get("nmi"), "ari": res.metrics.get("ari"),
               "noise": res.noise, "seconds": round(time.perf_counter() - t0, 2), "run_id": res.run_id,
               "date": time.strftime("%Y-%m-%d")}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:15s} {cfg:14s} seed={seed} acc={row['acc']:.3f} nmi={row['nmi']:.3f} "
              f"k={res.k} noise={res.noise:.2f} {row['seconds']:.1f}s", flush=True)

    # Phase 1, set by set: embed, every seed of the fast configs, the first seed of the UMAP ones.
    embs = {}
    for name in sets:
        embs[name] = eid, n, k, sec = embedding_of(ws, name)
        print(f"{name}: embedding {eid} n={n} classes={k} ({sec:.0f} s)", flush=True)
        for cfg in CONFIGS:
            for seed in range(args.seeds if not cfg.startswith("umap") else min(1, args.umap_seeds)):
                one(name, cfg, seed, eid, n, k)
    # Phase 2: the remaining UMAP seeds (UMAP is the slow part), seed-major.
    for seed in range(1, args.umap_seeds):
        for name in sets:
            for cfg in CONFIGS:
                if cfg.startswith("umap"):
                    one(name, cfg, seed, *embs[name][:3])


def _ms(vals: list[float]) -> str:
    if not vals:
        return ""
    a = np.array(vals) * 100
    return f"{a.mean():.1f} ± {a.std():.1f}" if len(a) > 1 else f"{a[0]:.1f}"


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(x) for x in Path(args.out).read_text().splitlines() if x]
    order = ["agnews8000", "searchsnippets", "stackoverflow", "biomedical", "googlenews_ts", "googlenews_t",
             "googlenews_s", "tweet89", "banking77"]
    sets = [s for s in order if any(r["set"] == s for r in rows)]
    head = "| method | " + " | ".join(sets) + " |"
    lines = ["ACC (%), mean ± std over seeds (n seeds in brackets where fewer than 5):", "", head,
             "|" + "---|" * (len(sets) + 1)]
    for cfg in CONFIGS:
        cells = []
        for s in sets:
            v = [r["acc"] for r in rows if r["set"] == s and r["config"] == cfg]
            cells.append(_ms(v) + (f" [{len(v)}]" if 0 < len(v) < 5 else ""))
        lines.append(f"| textcluster {cfg} (minilm) | " + " | ".join(cells) + " |")
    for name, vals in PUBLISHED.items():
        lines.append(f"| {name} | " + " | ".join(f"{vals[s]}" if s in vals else "" for s in sets) + " |")
    lines += ["", "NMI (%), mean ± std; for HDBSCAN also the noise share and clusters found:", "", head,
              "|" + "---|" * (len(sets) + 1)]
    for cfg in CONFIGS:
        cells = []
        for s in sets:
            sel = [r for r in rows if r["set"] == s and r["config"] == cfg]
            c = _ms([r["nmi"] for r in sel])
            if cfg.endswith("hdbscan") and sel:
                c += f" (noise {np.mean([r['noise'] for r in sel]) * 100:.0f}%, k≈{np.mean([r['k_found'] for r in sel]):.0f})"
            cells.append(c)
        lines.append(f"| textcluster {cfg} (minilm) | " + " | ".join(cells) + " |")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--umap-seeds", type=int, default=5, help="seeds for the two UMAP configs (UMAP is the slow part)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality.jsonl"))
    p.add_argument("--report", action="store_true", help="only print the table of the saved results")
    args = p.parse_args()
    if not args.report:
        if not DATA.is_dir():
            raise SystemExit(f"{DATA} not found: this benchmark reads ../shared/datasets relative to the repo root")
        bench(args)
    report(args)


if __name__ == "__main__":
    main()
