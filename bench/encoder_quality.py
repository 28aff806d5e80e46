"""Clustering quality of the encoders side by side: float MiniLM, its int8 ONNX build, the
distilled static fast preview, on the eight short-text sets.

    .venv/bin/python bench/encoder_quality.py [--encoders minilm,int8:minilm,m2v:minilm] [--seeds 5]
    .venv/bin/python bench/encoder_quality.py --report

Reads ``../shared/datasets`` relative to the repository root (users who clone the project do
not have it) through bench/quality.py's reader, and follows its protocol: each whole set,
k-means on the raw embeddings with k = the number of classes, seeds 0..4, ACC (Hungarian) and
NMI in percent, mean ± std (``TEXTCLUSTER_DATASETS`` points elsewhere). Embeddings are cached in ``bench/.workspace`` (a rerun skips
them); embedding docs/s is the embed stage's own wall time (the machine is shared: compare
ratios, not absolute speeds). Results are appended to ``bench/results/encoder_quality.jsonl``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import quality  # noqa: E402
from quality import read_set  # noqa: E402

# ../shared/datasets from the repository root; TEXTCLUSTER_DATASETS overrides it (a git worktree)
DATA = Path(os.environ.get("TEXTCLUSTER_DATASETS", quality.DATA))
quality.DATA = DATA

EIGHT = ["agnews8000", "searchsnippets", "stackoverflow", "biomedical", "googlenews_ts", "googlenews_t",
         "googlenews_s", "tweet89"]


def _done(out: Path) -> set[tuple[str, str, int]]:
    """(embedding id, set, seed) already measured: a new recipe (a new embedding id) is measured again."""
    if not out.exists():
        return set()
    return {(r["embedding_id"], r["set"], r["seed"]) for r in map(json.loads, out.read_text().splitlines()) if r}


def latest(rows: list[dict]) -> list[dict]:
    """The rows of the last embedding measured for each (encoder, set): an encoder whose
    recipe changed (int8 v2 -> v3) is reported with its newest vectors only."""
    last = {(r["encoder"], r["set"]): r["embedding_id"] for r in rows}
    return [r for r in rows if last[(r["encoder"], r["set"])] == r["embedding_id"]]


def bench(args: argparse.Namespace) -> None:
    from textcluster.cluster import runs
    from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
    from textcluster.embed.engine import embed, embedding_id
    from textcluster.ingest.corpus import ingest
    from textcluster.store import Workspace

    ws = Workspace(ROOT / "bench" / ".workspace")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    have = _done(out)
    for enc in args.encoders.split(","):
        for name in args.sets.split(","):
            texts, labels = read_set(name)
            inp = ws.root / "inputs" / f"{name}.jsonl"
            if not inp.exists():
                inp.parent.mkdir(parents=True, exist_ok=True)
                with open(inp, "w", encoding="utf-8") as f:
                    for t, lab in zip(texts, labels, strict=True):
                        f.write(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n")
            rep = ingest(inp, CorpusSpec(text_fields=("text",), label_field="label"), ws)
            eid = embedding_id(rep.corpus_id, EncoderConfig(name=enc))
            if all((eid, name, s) in have for s in range(args.seeds)):
                continue
            emb = embed(ws, rep.corpus_id, EncoderConfig(name=enc))
            seconds = ws.manifest(emb.embedding_id).seconds
            k = len(set(labels))
            for seed in range(args.seeds):
                if (eid, name, seed) in have:
                    continue
                res = runs.cluster(ws, emb.embedding_id, ReducerConfig(projection="pca"), ClustererConfig(k=k, seed=seed))
                row = {"encoder": enc, "set": name, "seed": seed, "n": emb.n, "classes": k,
                       "acc": res.metrics.get("acc"), "nmi": res.metrics.get("nmi"),
                       "embed_seconds": seconds, "docs_per_s": emb.n / seconds if seconds else None,
                       "embedding_id": emb.embedding_id, "date": time.strftime("%Y-%m-%d")}
                with open(out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{enc:12s} {name:15s} seed={seed} acc={row['acc']:.3f} nmi={row['nmi']:.3f} "
                      f"embed {seconds:.0f}s", flush=True)


def report(args: argparse.Namespace) -> None:
    rows = latest([json.loads(x) for x in Path(args.out).read_text().splitlines() if x])
    encs = list(dict.fromkeys(r["encoder"] for r in rows))
    sets = [s for s in EIGHT if any(r["set"] == s for r in rows)]
    for metric in ("acc", "nmi"):
        print(f"\n{metric.upper()} (%), k-means with true k, mean ± std over seeds; Δ = against minilm:\n")
        print("| encoder | " + " | ".join(sets) + " | embed docs/s (all sets) |")
        print("|---|" + "---|" * (len(sets) + 1))
        base = {s: np.mean([r[metric] for r in rows if r["encoder"] == "minilm" and r["set"] == s] or [np.nan])
                for s in sets}
        for enc in encs:
            cells = []
            for s in sets:
                v = np.array([r[metric] for r in rows if r["encoder"] == enc and r["set"] == s]) * 100
                if not v.size:
                    cells.append("")
                    continue
                c = f"{v.mean():.1f} ± {v.std():.1f}"
                if enc != "minilm" and not np.isnan(base[s]):
                    c += f" (Δ {v.mean() - base[s] * 100:+.1f})"
                cells.append(c)
            first = {r["set"]: r for r in rows if r["encoder"] == enc}
            n = sum(r["n"] for r in first.values())
            sec = sum(r["embed_seconds"] for r in first.values())
            print(f"| {enc} | " + " | ".join(cells) + f" | {n / sec:,.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--encoders", default="minilm,int8:minilm,m2v:minilm")
    p.add_argument("--sets", default=",".join(EIGHT))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "encoder_quality.jsonl"))
    p.add_argument("--report", action="store_true", help="only print the table of the saved results")
    args = p.parse_args()
    if not args.report:
        if not DATA.is_dir():
            raise SystemExit(f"{DATA} not found: this benchmark reads ../shared/datasets relative to the repo root")
        bench(args)
    report(args)


if __name__ == "__main__":
    main()
