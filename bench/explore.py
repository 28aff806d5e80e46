"""Speed and memory of describe, sampling, SQL and export on synthetic workspaces.

    .venv/bin/python bench/explore.py [--rows 1000000] [--diverse-rows 100000] [--workdir /tmp/tc-bench-explore]

Builds (once, in --workdir) a corpus + embedding + run of ``--rows`` documents in 100
clusters of Zipf-like sizes (32-dim vectors), and a second run with one cluster of
``--diverse-rows`` 384-dim vectors. Each measurement runs in its own Python process so
its peak resident memory (ru_maxrss) is its own. Needs no dataset; writes a few hundred MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]


def build(ws_root: Path, rows: int, diverse_rows: int) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcluster.store import CorpusManifest, EmbeddingManifest, RunManifest, Workspace, make_id

    ws = Workspace(ws_root)
    ids_file = ws_root / "bench_ids.json"
    if ids_file.is_file():
        return json.loads(ids_file.read_text())
    rng = np.random.default_rng(0)
    out = {}
    for name, n, k, dim in (("big", rows, 100, 32), ("diverse", diverse_rows, 1, 384)):
        w = 1.0 / np.arange(1, k + 1) ** 0.8
        labels = rng.choice(k, size=n, p=w / w.sum()).astype(np.int32)
        words = np.array(WORDS)
        texts = [" ".join(words[(labels[i] + rng.integers(0, 5, 6)) % len(words)]) + f" doc {i}" for i in range(n)]
        cid = make_id("corpus", f"bench-{name}-{n}", {})
        ws.write(cid, CorpusManifest(sha256=f"bench-{name}", source=f"{name}.csv", kept=n),
                 lambda d, texts=texts, n=n: pq.write_table(pa.table({
                     "doc_id": np.arange(n, dtype=np.int64), "row": np.arange(1, n + 1, dtype=np.int64),
                     "text": texts, "group": (np.arange(n) % 7).astype(np.int64)}), d / "docs.parquet"))
        eid = make_id("embedding", cid, {"dim": dim})

        def w_emb(d: Path, n: int = n, dim: int = dim) -> None:
            mm = np.lib.format.open_memmap(d / "embeddings.npy", mode="w+", dtype=np.float32, shape=(n, dim))
            for a in range(0, n, 100_000):
                b = min(n, a + 100_000)
                mm[a:b] = np.random.default_rng(a).normal(size=(b - a, dim)).astype(np.float32)
            mm.flush()

        ws.write(eid, EmbeddingManifest(corpus_id=cid, encoder="bench", model_fingerprint="bench", dim=dim, n=n), w_emb)
        rid = make_id("run", eid, {"k": k})

        def w_run(d: Path, labels: np.ndarray = labels, n: int = n) -> None:
            np.save(d / "labels.npy", labels)
            np.save(d / "distances.npy", rng.random(n, dtype=np.float32))
            np.save(d / "coords2d.npy", rng.random((n, 2), dtype=np.float32))

        ws.write(rid, RunManifest(corpus_id=cid, embedding_id=eid, n=n, dim=dim, k=k, noise=0.0,
                                  reducer={"method": "none"}, clusterer={"method": "kmeans", "k": k, "seed": 0},
                                  seed=0), w_run)
        out[name] = rid
    ids_file.write_text(json.dumps(out))
    return out


def stage(name: str, ws_root: Path, ids: dict[str, str], tmp: Path) -> dict[str, object]:
    import duckdb  # noqa: F401 - imports are not what is measured
    import pyarrow.parquet  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401

    from textcluster.config import SamplingPolicy
    from textcluster.describe import clusters as describe
    from textcluster.describe import sampling
    from textcluster.query import export, sql
    from textcluster.store import Workspace

    ws = Workspace(ws_root)
    big, div = ids["big"], ids["diverse"]
    t0 = time.perf_counter()
    info: dict[str, object] = {}
    if name == "quotas":
        info["quotas"] = len(sampling.plan(ws, big, SamplingPolicy(size=10_000)))
    elif name == "sample-random":
        info["n"] = sampling.sample(ws, big, SamplingPolicy(size=10_000, seed=int(time.time()))).n
    elif name == "sample-diverse":
        r = sampling.sample(ws, div, SamplingPolicy(size=200, within="diverse", seed=int(time.time())))
        info["n"] = r.n
    elif name == "query":
        t = sql.query(ws, "SELECT c.cluster, c.size, avg(a.distance) AS d FROM assignments a "
                          "JOIN clusters c USING (run_id, cluster) JOIN docs USING (doc_id) "
                          "WHERE docs.group = 3 GROUP BY ALL ORDER BY c.size DESC", run_id=big, timeout=120)
        info["rows"] = t.num_rows
    elif name in ("export-parquet", "export-csv"):
        fmt = name.split("-")[1]
        r = export.export(ws, tmp / f"run.{fmt}", run_id=big)
        info["rows"] = r.rows
        info["MB"] = round(r.path.stat().st_size / 2**20, 1)
    elif name == "export-sql":
        r = export.export(ws, tmp / "q.parquet", sql="SELECT d.doc_id, d.text, a.cluster, a.distance FROM docs d "
                          "JOIN assignments a USING (doc_id)", run_id=big)
        info["rows"] = r.rows
    elif name == "describe":
        d = describe.describe(ws, big, max_docs=int(time.time()) % 1000 + 100_000)
        info["clusters"] = len(d.clusters)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    info["peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return info


STAGES = ("quotas", "sample-random", "sample-diverse", "query", "export-parquet", "export-csv", "export-sql",
          "describe")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--diverse-rows", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tc-bench-explore"))
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--only", default=None, help="comma-separated stages")
    a = ap.parse_args()
    ws_root = a.workdir / f"ws-{a.rows}-{a.diverse_rows}"
    if a.stage == "build":
        build(ws_root, a.rows, a.diverse_rows)
        return
    if a.stage:
        ids = json.loads((ws_root / "bench_ids.json").read_text())
        print(json.dumps(stage(a.stage, ws_root, ids, a.workdir)))
        return
    t0 = time.perf_counter()
    # every step in its own process: Linux keeps ru_maxrss across exec, so a big parent
    # would inflate the children's peaks
    args = ["--rows", str(a.rows), "--diverse-rows", str(a.diverse_rows), "--workdir", str(a.workdir)]
    subprocess.run([sys.executable, __file__, "--stage", "build", *args], check=True)
    print(f"workspace {ws_root} ready in {time.perf_counter() - t0:.1f} s "
          f"({a.rows} docs / 100 clusters / 32 dims; {a.diverse_rows} x 384 for diverse)")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    print(f"{'stage':<16} {'seconds':>8} {'peak RSS MB':>12}  details")
    for s in (a.only.split(",") if a.only else STAGES):
        p = subprocess.run([sys.executable, __file__, "--stage", s, *args], capture_output=True, text=True, env=env)
        if p.returncode:
            print(f"{s:<16} failed: {p.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        sec, rss = r.pop("seconds"), r.pop("peak_rss_MB")
        print(f"{s:<16} {sec:>8} {rss:>12}  {r}")


if __name__ == "__main__":
    main()
