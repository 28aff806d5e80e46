"""The Ray engine against the local one: embedding throughput, overhead and agreement.

Reads the first ``--n`` StackOverflow titles of ../shared/datasets/stackoverflow/text.txt
(relative to the repository root; users who clone the project do not have it: then a
seeded synthetic corpus of the same size is used and the table says so). For each engine
it embeds the corpus into a fresh workspace with ``minilm`` (``--chunk-rows`` rows per
chunk, the same for every engine, so the same batches):

* ``local``: :func:`textcluster.pipeline.embed_corpus` in this process, ``--threads`` torch threads;
* ``ray-1``: one Ray actor holding all ``--threads`` CPUs (torch threads = its CPUs);
* ``ray-2``: two Ray actors of ``--threads / 2`` CPUs each,

on one local Ray instance (``--threads`` CPUs, 400 MB object store) started beforehand (its
start-up is reported, not counted: a process pays it once). Each Ray run includes starting
its actors and loading the model in them; the local run includes loading the model too.
Then the same on a small corpus (``--small`` texts): the overhead of Ray where actor
start-up dominates. Reports docs/s, seconds, Ray's overhead against local
(``ray / local - 1``) and the largest difference between the engines' vectors. Prints a
markdown table and one JSON line.

    OMP_NUM_THREADS=2 .venv/bin/python bench/ray_scale.py [--n 20000] [--small 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "stackoverflow" / "text.txt"


def _texts(n: int, data: Path) -> tuple[list[str], str]:
    if data.is_file():
        with open(data, encoding="utf-8") as f:
            out = [line.strip() for _, line in zip(range(n), f, strict=False)]
        return [t for t in out if t], f"stackoverflow titles (first {n})"
    import numpy as np

    rng = np.random.default_rng(0)
    words = ["python", "java", "error", "list", "string", "file", "function", "array", "class", "data", "table", "value", "server", "query"]
    return [" ".join(rng.choice(words, size=int(rng.integers(4, 14)))) for _ in range(n)], "synthetic (no data set found)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="texts of the large corpus (default 20000)")
    ap.add_argument("--small", type=int, default=500, help="texts of the small corpus (default 500)")
    ap.add_argument("--threads", type=int, default=2, help="CPUs for every engine (default 2)")
    ap.add_argument("--chunk-rows", type=int, default=2000, help="rows per chunk (default 2000)")
    ap.add_argument("--engines", default="local,ray-1,ray-2", help="comma list")
    ap.add_argument("--data", type=Path, default=DATA, help="one text per line (default ../shared/datasets/"
                    "stackoverflow/text.txt from the repository root)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, str(ROOT))

    import numpy as np

    from textcluster import pipeline
    from textcluster.config import CorpusSpec, EncoderConfig
    from textcluster.embed.engine import load_embeddings
    from textcluster.engines import EngineConfig, ray_engine
    from textcluster.ingest import corpus
    from textcluster.store import Workspace

    t = time.perf_counter()
    base = EngineConfig(name="ray", num_cpus=args.threads, object_store_mb=400)
    ray_engine.connect(base)
    ray_start = time.perf_counter() - t
    engines = {
        "local": None,
        "ray-1": EngineConfig(name="ray", num_cpus=args.threads, object_store_mb=400, actors=1,
                              cpus_per_actor=args.threads),
        "ray-2": EngineConfig(name="ray", num_cpus=args.threads, object_store_mb=400, actors=2,
                              cpus_per_actor=max(1, args.threads // 2)),
    }
    wanted = [e for e in args.engines.split(",") if e]
    enc = EncoderConfig(name="minilm", device="cpu", chunk_rows=args.chunk_rows)
    rows, source = [], ""
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        for size_name, n in (("large", args.n), ("small", args.small)):
            texts, source_n = _texts(n, args.data)
            source = source or source_n
            f = Path(tmp) / f"{size_name}.txt"
            f.write_text("\n".join(texts) + "\n", encoding="utf-8")
            ref = None
            for name in wanted:
                ws = Workspace(Path(tmp) / f"ws-{size_name}-{name}")
                cid = corpus.ingest(f, CorpusSpec(), ws).corpus_id
                t = time.perf_counter()
                res = pipeline.embed_corpus(ws, cid, enc, engines[name])
                secs = time.perf_counter() - t
                vec = np.asarray(load_embeddings(ws, res.embedding_id))
                if ref is None:
                    ref = (name, res.embedding_id, vec)
                diff = float(np.abs(vec - ref[2]).max())
                rows.append({"corpus": size_name, "n": res.n, "engine": name, "seconds": round(secs, 2),
                             "docs_per_s": round(res.n / secs, 1), "max_abs_diff": diff,
                             "same_id": res.embedding_id == ref[1]})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    local = {r["corpus"]: r["seconds"] for r in rows if r["engine"] == "local"}
    for r in rows:
        r["overhead"] = round(r["seconds"] / local[r["corpus"]] - 1, 3) if r["corpus"] in local else None
    ray_engine.shutdown()
    print(f"corpus: {source}; {args.threads} CPUs; chunk_rows={args.chunk_rows}; Ray start-up {ray_start:.1f} s "
          "(not counted)\n")
    print("| corpus | texts | engine | seconds | docs/s | vs local | max abs diff | same id |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for r in rows:
        ov = "" if r["overhead"] is None else f"{r['overhead']:+.0%}"
        print(f"| {r['corpus']} | {r['n']:,} | {r['engine']} | {r['seconds']:.1f} | {r['docs_per_s']:.0f} | {ov} "
              f"| {r['max_abs_diff']:.1e} | {r['same_id']} |")
    print(json.dumps({"bench": "ray_scale", "source": source, "threads": args.threads, "ray_start_s": round(ray_start, 2),
                      "rows": rows}))


if __name__ == "__main__":
    main()
