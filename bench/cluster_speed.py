"""k-means speed and quality against scikit-learn, and peak memory of the cluster stage.

    .venv/bin/python bench/cluster_speed.py [--sizes 100000,1000000] [--k 100] [--threads 1]
        [--sklearn-timeout 1200] [--workdir /tmp/tc-bench-speed]

Needs no dataset (reads nothing from ../shared). Synthetic embeddings: ``--k`` random unit
centres in 384 dims, each row a centre plus Gaussian noise, L2-normalised like sentence
vectors (seeded; written once to ``--workdir``, 1.5 GB for 1M rows).

For each size, in separate processes with the same thread count (``OMP_NUM_THREADS``):

- ``textcluster``: :class:`textcluster.cluster.kmeans.KMeansClusterer` (k-means++ seeding, faiss
  Lloyd iterations on a 256-rows-per-centre subsample, 2 full-data Lloyd passes, all
  rows labelled), default settings;
- ``sklearn``: ``sklearn.cluster.KMeans(k, random_state=0)`` with its defaults
  (``n_init="auto"`` = one k-means++ run, up to 300 iterations), killed after
  ``--sklearn-timeout`` seconds.

Quality: inertia on all rows (lower is better) and ARI against the generating labels.
Then, at the largest size, the whole cluster stage (:func:`textcluster.cluster.runs.cluster`:
k-means, distances, medoids, metrics, PCA plot projection, writing the run) runs in a
fresh process on a memory-mapped embedding artifact, and its peak resident memory
(``ru_maxrss``) minus the process's resident memory before the stage is divided by n.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIM = 384


def make_data(workdir: Path, n: int, k: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np

    xp, yp = workdir / f"X_{n}_{k}.npy", workdir / f"y_{n}_{k}.npy"
    if xp.exists() and yp.exists():
        return xp, yp
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    y = rng.integers(0, k, size=n).astype(np.int32)
    X = np.lib.format.open_memmap(workdir / "tmp.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for s in range(0, n, 100_000):
        yy = y[s : s + 100_000]
        block = centers[yy] + rng.normal(scale=0.06, size=(yy.size, DIM)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[s : s + yy.size] = block
    X.flush()
    del X
    os.replace(workdir / "tmp.npy", xp)
    np.save(yp, y)
    return xp, yp


CHILD = r"""
import json, resource, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score
which, xp, yp, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
X = np.load(xp); y = np.load(yp)
t0 = time.perf_counter()
if which == "textcluster":
    sys.path.insert(0, sys.argv[5])
    from textcluster.cluster.kmeans import KMeansClusterer
    m = KMeansClusterer(k, seed=0).fit(X)
    labels, centers, extra = m.labels_, m.cluster_centers_, {"backend": m.backend_}
else:
    from sklearn.cluster import KMeans
    m = KMeans(k, random_state=0).fit(X)
    labels, centers, extra = m.labels_, m.cluster_centers_.astype(np.float32), {"n_iter": int(m.n_iter_)}
sec = time.perf_counter() - t0
inertia = 0.0
for s in range(0, X.shape[0], 65536):
    xc = X[s:s+65536]
    inertia += float(((xc - centers[labels[s:s+65536]]) ** 2).sum(dtype=np.float64))
print(json.dumps({"which": which, "n": int(X.shape[0]), "seconds": sec, "inertia": inertia,
                  "ari": float(adjusted_rand_score(y, labels)), **extra}))
"""

STAGE = r"""
import json, resource, sys, time, os
sys.path.insert(0, sys.argv[3])
import numpy as np
from textcluster.cluster import runs
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.store import Workspace
ws = Workspace(sys.argv[1]); eid = sys.argv[2]; k = int(sys.argv[4])
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
base = rss()
t0 = time.perf_counter()
res = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=k, seed=0))
sec = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"n": res.n, "k": res.k, "seconds": sec, "timings": res.timings, "base_rss": base,
                  "peak_rss": peak, "per_doc_bytes": (peak - base) / res.n, "notes": res.notes,
                  "cached": res.cached}))
"""


def child(code: str, args: list[str], threads: int, timeout: float | None) -> dict | None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    try:
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                             timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as e:
        print(e.stderr[-3000:], file=sys.stderr)
        raise
    return json.loads(out.stdout.strip().splitlines()[-1])


def stage_memory(workdir: Path, xp: Path, n: int, k: int, threads: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import shutil

    from textcluster.store import EmbeddingManifest, Workspace, make_id

    ws = Workspace(workdir / f"ws_{n}_{k}")
    shutil.rmtree(ws.root / "run", ignore_errors=True)  # measure a fresh run, not a cache hit
    shutil.rmtree(ws.root / "cache", ignore_errors=True)
    eid = make_id("embedding", f"synthetic-{n}-{k}", {"bench": "cluster_speed"})
    if not ws.exists(eid):
        ws.write(eid, EmbeddingManifest(n=n, dim=DIM), lambda d: shutil.copyfile(xp, d / "embeddings.npy"))
    return child(STAGE, [str(ws.root), eid, str(ROOT), str(k)], threads, None) or {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="OMP/BLAS threads for every measured process")
    p.add_argument("--sklearn-timeout", type=float, default=1200)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/tc-bench-speed"))
    p.add_argument("--skip-sklearn-above", type=int, default=0,
                   help="do not run scikit-learn on sizes above this (0: run it everywhere)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        xp, yp = make_data(args.workdir, n, args.k)
        ours = child(CHILD, ["textcluster", str(xp), str(yp), str(args.k), str(ROOT)], args.threads, None)
        print(json.dumps(ours), flush=True)
        theirs = None
        if not args.skip_sklearn_above or n <= args.skip_sklearn_above:
            theirs = child(CHILD, ["sklearn", str(xp), str(yp), str(args.k)], args.threads, args.sklearn_timeout)
            print(json.dumps(theirs) if theirs else f"sklearn timed out after {args.sklearn_timeout:.0f} s", flush=True)
        results.append((n, ours, theirs))
    mem = stage_memory(args.workdir, make_data(args.workdir, sizes[-1], args.k)[0], sizes[-1], args.k, args.threads)
    print(json.dumps(mem), flush=True)
    print(f"\n{time.strftime('%Y-%m-%d')}, k={args.k}, dim={DIM}, threads={args.threads}\n")
    print("| rows | textcluster k-means s | scikit-learn KMeans s | speed-up | inertia ratio (ours/sklearn) | ARI ours | ARI sklearn |")
    print("|---|---|---|---|---|---|---|")
    for n, o, t in results:
        if t:
            print(f"| {n:,} | {o['seconds']:.1f} | {t['seconds']:.1f} | {t['seconds'] / o['seconds']:.1f}x | "
                  f"{o['inertia'] / t['inertia']:.4f} | {o['ari']:.3f} | {t['ari']:.3f} |")
        else:
            print(f"| {n:,} | {o['seconds']:.1f} | not run / timed out | | | {o['ari']:.3f} | |")
    if mem:
        print(f"\ncluster stage at {mem['n']:,} rows: {mem['seconds']:.1f} s, peak RSS {mem['peak_rss'] / 2**30:.2f} GiB "
              f"(before the stage {mem['base_rss'] / 2**20:.0f} MiB): {mem['per_doc_bytes'] / 1000:.2f} kB per document")
        print("timings:", {k: round(v, 2) for k, v in mem["timings"].items()})
        for note in mem.get("notes", []):
            print("note:", note)


if __name__ == "__main__":
    main()
