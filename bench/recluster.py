"""Time from "change k" to new labels and artifacts, in one warm process; against BERTopic.

    .venv/bin/python bench/recluster.py [--ks 15,25,30,35,40] [--threads 1] [--bertopic-python /tmp/benv/bin/python]

Reads ``../shared/datasets/stackoverflow`` relative to the repository root (20,000 question
titles, 20 classes). The set is ingested and embedded with the default encoder (minilm)
through textcluster into ``bench/.workspace`` (shared with bench/quality.py, so usually a
cache hit).

textcluster, one process: a first run with k=20 (it also computes the 2-D plot projection,
cached per embedding + projection settings, so it is not redone when k changes), then one
run per k in ``--ks``, each timed from the call to :func:`textcluster.cluster.runs.cluster` until
its run artifact (labels, centres, distances, medoids, metrics, plot coordinates) is
written. Two settings: k-means on the raw embeddings (the default) and k-means on UMAP-5
(the reduced matrix is cached too, so changing k does not refit UMAP).

BERTopic, only when ``--bertopic-python`` points to an interpreter that has bertopic (a
throwaway venv such as /tmp/benv; bertopic is not a dependency of textcluster): given the
same embeddings and texts and ``hdbscan_model=KMeans(k)``, one cold fit, then a fit per k
in the same process (warm: numba compiled). Default BERTopic (UMAP 5-d refitted on every
fit, c-TF-IDF topic words), and with ``umap_model=BaseDimensionalityReduction()`` (no
reduction) as the closest analogue of textcluster's default.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "stackoverflow"

BERTOPIC = r"""
import json, sys, time
import numpy as np
from bertopic import BERTopic
from bertopic.dimensionality import BaseDimensionalityReduction
from sklearn.cluster import KMeans
emb = np.load(sys.argv[1]); docs = open(sys.argv[2], encoding="utf-8").read().split("\n")[: emb.shape[0]]
ks = [int(k) for k in sys.argv[3].split(",")]
out = {}
for mode in ("default", "no-reduction"):
    times = []
    for k in [20] + ks:
        kw = {"umap_model": BaseDimensionalityReduction()} if mode == "no-reduction" else {}
        t0 = time.perf_counter()
        model = BERTopic(hdbscan_model=KMeans(n_clusters=k, random_state=0), **kw)
        model.fit_transform(docs, embeddings=emb)
        times.append(time.perf_counter() - t0)
    out[mode] = times
print(json.dumps(out))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", default="15,25,30,35,40")
    p.add_argument("--threads", type=int, default=1, help="OMP/BLAS/numba threads for both sides")
    p.add_argument("--bertopic-python", default="/tmp/benv/bin/python")
    args = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: this benchmark reads ../shared/datasets relative to the repo root")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from quality import embedding_of

    from textcluster.cluster import runs
    from textcluster.config import ClustererConfig, ReducerConfig
    from textcluster.embed.engine import load_embeddings
    from textcluster.store import Workspace

    ws = Workspace(ROOT / "bench" / ".workspace")
    eid, n, _, sec = embedding_of(ws, "stackoverflow")
    print(f"embedding {eid}: n={n} ({sec:.1f} s, cached if short)", flush=True)
    ks = [int(k) for k in args.ks.split(",")]
    results: dict[str, dict] = {}
    for name, reducer in (
        ("raw + k-means", ReducerConfig()),
        ("UMAP-5 + k-means", ReducerConfig(method="umap", dims=5)),
    ):
        seed = 100 + len(results)  # a fresh seed: the runs are computed, not cache hits
        t0 = time.perf_counter()
        first = runs.cluster(ws, eid, reducer, ClustererConfig(k=20, seed=seed))
        first_s = time.perf_counter() - t0
        per_k = []
        for k in ks:
            t0 = time.perf_counter()
            r = runs.cluster(ws, eid, reducer, ClustererConfig(k=k, seed=seed))
            per_k.append(time.perf_counter() - t0)
            assert not r.cached
            print(f"{name}: k={k} {per_k[-1]:.2f} s  {({s: round(v, 2) for s, v in r.timings.items()})}", flush=True)
        results[name] = {"first": first_s, "first_cached": first.cached, "per_k": per_k}
        print(f"{name}: first run (k=20) {first_s:.1f} s; change k median {statistics.median(per_k):.2f} s", flush=True)

    bt = None
    if args.bertopic_python and Path(args.bertopic_python).exists():
        docs = ws.root / "inputs" / "stackoverflow.txt"
        from textcluster.ingest.corpus import load_docs

        m = ws.manifest(eid)
        docs.write_text("\n".join(t.replace("\n", " ") for t in load_docs(ws, m.corpus_id, ["text"])["text"]), encoding="utf-8")
        emb_path = ws.root / "inputs" / "stackoverflow_emb.npy"
        import numpy as np

        np.save(emb_path, np.asarray(load_embeddings(ws, eid, mmap=False), dtype=np.float32))
        proc = subprocess.run([args.bertopic_python, "-c", BERTOPIC, str(emb_path), str(docs), args.ks],
                              capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode == 0:
            bt = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            print("BERTopic failed:", proc.stderr[-2000:], file=sys.stderr)

    print(f"\n{time.strftime('%Y-%m-%d')}, StackOverflow n={n}, threads={args.threads}, k in {ks}\n")
    print("| pipeline | first run (k=20), s | change k, median s (min-max) |")
    print("|---|---|---|")
    for name, r in results.items():
        print(f"| textcluster {name} | {r['first']:.1f} | {statistics.median(r['per_k']):.2f} "
              f"({min(r['per_k']):.2f}-{max(r['per_k']):.2f}) |")
    if bt:
        for mode, times in bt.items():
            warm = times[1:]
            print(f"| BERTopic {mode} + KMeans | {times[0]:.1f} | {statistics.median(warm):.2f} "
                  f"({min(warm):.2f}-{max(warm):.2f}) |")
        base = statistics.median(results["raw + k-means"]["per_k"])
        for mode, times in bt.items():
            print(f"speed-up of textcluster raw + k-means over BERTopic {mode} (warm medians): "
                  f"{statistics.median(times[1:]) / base:.0f}x")
        b_umap = statistics.median(results["UMAP-5 + k-means"]["per_k"])
        print(f"speed-up of textcluster UMAP-5 + k-means over BERTopic default: {statistics.median(bt['default'][1:]) / b_umap:.0f}x")
    else:
        print("BERTopic: not measured (no interpreter with bertopic at --bertopic-python)")


if __name__ == "__main__":
    main()
