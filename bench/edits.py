"""Cluster edits on a synthetic run of 1M documents: rename, merge, split, drop, move, and compare.

    OMP_NUM_THREADS=2 .venv/bin/python bench/edits.py [--n 1000000] [--dim 384] [--k 100] [--keep DIR]

The run is built without encoding (like tests/fakes_run.py): ``k`` Gaussian blobs in ``dim``
dimensions (L2-normalised float32, ``n x dim``, written in chunks), each row labelled with its
blob, centres, own distances, a 2-D projection and ``clusters.parquet``, plus a corpus of short
texts, in a temporary workspace (or ``--keep DIR``). Then each edit is timed end to end (the
:mod:`textcluster.cluster.edits` call, i.e. checks, new labels, ``derive_run`` and the write),
cold (a new version) and again (the same edit: a cache hit); the last columns split the cold
time by the core's steps (the version manifest's ``timings``: relabel, centres and distances,
metrics, write). ``rows read`` is the number of
clustering-space rows the version's centres and distances were recomputed from (the core's
manifest note); every version also scores itself on the seeded silhouette sample
(``evaluate.SILHOUETTE_SAMPLE`` rows), whatever the edit.

Prints a table and one JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textcluster.cluster import edits  # noqa: E402
from textcluster.cluster.compare import compare_runs  # noqa: E402
from textcluster.store import CorpusManifest, EmbeddingManifest, RunManifest, Workspace, make_id  # noqa: E402

CHUNK = 100_000


def build(ws: Workspace, n: int, dim: int, k: int, seed: int = 0) -> str:
    """Write a corpus, an embedding and a k-means-like run of ``n`` rows; return the run id."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    # uneven sizes (like real corpora): Zipf-like shares, every cluster non-empty
    w = 1.0 / np.arange(1, k + 1) ** 0.6
    labels = rng.choice(k, size=n, p=w / w.sum()).astype(np.int32)
    labels[:k] = np.arange(k)
    cid = make_id("corpus", f"bench-edits-{n}-{dim}-{k}", {})

    def w_corpus(d: Path) -> None:
        pq.write_table(pa.table({
            "doc_id": pa.array(np.arange(n, dtype=np.int64)),
            "row": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "text": pa.array([f"document {i} about topic {c}" for i, c in enumerate(labels.tolist())], pa.string()),
        }), d / "docs.parquet")
        pq.write_table(pa.table({"row": pa.array([], pa.int64()), "reason": pa.array([], pa.string())}),
                       d / "rejections.parquet")

    ws.write(cid, CorpusManifest(kept=n, source="synthetic", format="csv"), w_corpus)
    eid = make_id("embedding", cid, {"name": "synthetic", "dim": dim})
    own = np.empty(n, np.float32)

    def w_emb(d: Path) -> None:
        mm = np.lib.format.open_memmap(d / "embeddings.npy", mode="w+", dtype=np.float32, shape=(n, dim))
        for s in range(0, n, CHUNK):
            lab = labels[s : s + CHUNK]
            x = centers[lab] + rng.normal(scale=0.35, size=(lab.size, dim)).astype(np.float32) / np.sqrt(dim)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            mm[s : s + CHUNK] = x
        mm.flush()
        del mm

    ws.write(eid, EmbeddingManifest(corpus_id=cid, encoder="synthetic", encoder_config={"name": "synthetic"},
                                    n=n, dim=dim), w_emb, parents=[cid])
    X = np.load(ws.path(eid) / "embeddings.npy", mmap_mode="r")
    sums = np.zeros((k, dim), np.float64)
    for s in range(0, n, CHUNK):
        np.add.at(sums, labels[s : s + CHUNK], X[s : s + CHUNK])
    means = (sums / np.bincount(labels, minlength=k)[:, None]).astype(np.float32)
    for s in range(0, n, CHUNK):
        diff = X[s : s + CHUNK] - means[labels[s : s + CHUNK]]
        own[s : s + CHUNK] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    rid = make_id("run", eid, {"bench": "edits", "k": k})

    def w_run(d: Path) -> None:
        np.save(d / "labels.npy", labels)
        np.save(d / "centers.npy", means)
        np.save(d / "distances.npy", own)
        cpd = np.sqrt(np.maximum(((means[:, None] - means[None]) ** 2).sum(-1), 0)).astype(np.float32)
        np.save(d / "center_pairwise_distance.npy", cpd)
        np.save(d / "coords2d.npy", rng.normal(size=(n, 2)).astype(np.float32))
        sizes = np.bincount(labels, minlength=k)
        pq.write_table(pa.table({"cluster": pa.array(np.arange(k, dtype=np.int32)), "size": pa.array(sizes),
                                 "share": pa.array(sizes / n), "medoid_doc_id": pa.array(np.arange(k))}),
                       d / "clusters.parquet")

    ws.write(rid, RunManifest(corpus_id=cid, embedding_id=eid, n=n, dim=dim, k=k, noise=0.0,
                              reducer={"method": "none"}, clusterer={"method": "kmeans", "k": k, "seed": 0},
                              seed=0, k_centers=k), w_run, parents=[eid])
    return rid


def _rows_read(ws: Workspace, run_id: str) -> int | None:
    for note in ws.manifest(run_id).notes:
        m = re.search(r"recomputed from (\d+) row", note)
        if m:
            return int(m.group(1))
    return None


def main() -> None:
    """Build the run, time each edit cold and warm, print a table and a JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--keep", type=Path, default=None, help="build the workspace here and keep it")
    args = ap.parse_args()
    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-edits-")
        root = Path(tmp.name)
    else:
        root = args.keep
    ws = Workspace(root / "ws")
    t = time.perf_counter()
    rid = build(ws, args.n, args.dim, args.k)
    built = time.perf_counter() - t
    labels = np.load(ws.path(rid) / "labels.npy")
    sizes = np.bincount(labels, minlength=args.k)
    big, mid = int(np.argmax(sizes)), args.k // 2
    move_docs = np.flatnonzero(labels == mid)[:1000]
    ops = [
        ("rename", lambda: edits.rename(ws, rid, {mid: "Renamed cluster"})),
        ("merge", lambda: edits.merge(ws, rid, [mid, mid + 1], name="Merged")),
        ("split (k=3)", lambda: edits.split(ws, rid, mid, k=3)),
        ("split (auto k)", lambda: edits.split(ws, rid, mid + 2)),
        ("drop -> noise", lambda: edits.drop(ws, rid, mid + 3)),
        ("drop -> nearest", lambda: edits.drop(ws, rid, mid + 4, to_nearest=True)),
        ("move 1,000 docs", lambda: edits.move(ws, rid, move_docs, big)),
        ("merge largest two", lambda: edits.merge(ws, rid, [0, 1])),
    ]
    touched = {"rename": [mid], "merge": [mid, mid + 1], "split (k=3)": [mid], "split (auto k)": [mid + 2],
               "drop -> noise": [mid + 3], "drop -> nearest": [mid + 4], "move 1,000 docs": [big],
               "merge largest two": [0, 1]}
    t = time.perf_counter()
    edits.rename(ws, rid, {0: "warm-up"})  # imports (scikit-learn for the scores), not an edit's cost
    warm_up = time.perf_counter() - t
    rows = []
    for name, fn in ops:
        t = time.perf_counter()
        r = fn()
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = fn()
        warm = time.perf_counter() - t
        assert again.cached and again.run_id == r.run_id
        rows.append({"edit": name, "members": int(sizes[touched[name]].sum()), "seconds": round(cold, 3),
                     "again_seconds": round(warm, 3), "rows_read": _rows_read(ws, r.run_id), "k": r.k,
                     "run_id": r.run_id,
                     "steps": {k: round(v, 3) for k, v in ws.manifest(r.run_id).timings.items()}})
    t = time.perf_counter()
    c = compare_runs(ws, rid, rows[1]["run_id"])
    compare_s = time.perf_counter() - t
    print(f"{args.n:,} documents, dim {args.dim}, k {args.k} (built in {built:.1f} s); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; first edit of the process "
          f"(imports, untimed below) {warm_up:.1f} s")
    steps = ("relabel", "centres", "metrics", "write")
    print(f"{'edit':<20}{'members':>10}{'rows read':>11}{'seconds':>9}{'again':>8}  "
          + " ".join(f"{x:>8}" for x in steps))
    for r in rows:
        print(f"{r['edit']:<20}{r['members']:>10,}{(r['rows_read'] or 0):>11,}{r['seconds']:>9.2f}"
              f"{r['again_seconds']:>8.2f}  " + " ".join(f"{r['steps'].get(x, 0):>8.2f}" for x in steps))
    print(f"compare run vs merge: {compare_s:.2f} s (ARI {c.ari:.4f}, changes: {[x.kind for x in c.changes]})")
    print(json.dumps({"bench": "edits", "n": args.n, "dim": args.dim, "k": args.k, "edits": rows,
                      "compare_seconds": round(compare_s, 3), "warm_up_seconds": round(warm_up, 3)}))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
