"""HTTP service throughput: `textcluster serve` against in-process `assign`, same run, same texts.

Builds a MiniLM run (k-means, k=20) on ``--train`` texts of the bundled BANKING77 demo corpus
(shipped with the package: nothing outside the repository is read), then labels ``--texts``
other texts of it

* in process: ``textcluster.cluster.runs.assign(ws, run_id, texts)`` (the model loaded
  beforehand; best of ``--repeats``), and
* over HTTP: a ``textcluster serve --run RUN_ID`` process on a free port, called by
  ``--clients`` concurrent httpx clients, each sending ``POST /assign`` requests of 1, 16 and
  256 texts until the texts are used up (best of ``--repeats`` per batch size),

with the same torch thread count on both sides (``--threads``). Prints a markdown table
(requests/s, texts/s, texts/s as a share of in-process assign) and one JSON line. The
service's answers are checked against in-process assign (same labels) before timing.

    .venv/bin/python bench/serve.py [--train 2000] [--texts 1024] [--clients 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def drive(url: str, chunks: list[list[str]], n_clients: int) -> tuple[float, list[str]]:
    """Send every chunk as one ``POST /assign`` from ``n_clients`` concurrent clients; returns
    (wall seconds, error bodies). The clients are made and connected before the clock starts
    (an httpx.Client builds an SSL context when created: not the service's time)."""
    import httpx

    clients = [httpx.Client(timeout=300) for _ in range(n_clients)]
    for c in clients:
        c.get(url + "/health")
    queue = list(reversed(chunks))
    lock = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(n_clients + 1)

    def client(c: httpx.Client) -> None:
        start.wait()
        while True:
            with lock:
                if not queue:
                    return
                chunk = queue.pop()
            r = c.post(url + "/assign", json={"texts": chunk})
            if r.status_code != 200:
                errors.append(r.text[:200])

    workers = [threading.Thread(target=client, args=(c,)) for c in clients]
    for w in workers:
        w.start()
    start.wait()
    t = time.perf_counter()
    for w in workers:
        w.join()
    secs = time.perf_counter() - t
    for c in clients:
        c.close()
    return secs, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=2000, help="texts the run is fitted on")
    ap.add_argument("--texts", type=int, default=1024, help="new texts labelled per measurement")
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    ap.add_argument("--batches", default="1,16,256", help="texts per request (comma list)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (bench process and server)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best kept)")
    ap.add_argument("--encoder", default="minilm", help="encoder of the run (default minilm)")
    ap.add_argument("--workspace", type=Path, default=None, help="reuse this workspace (default: a temporary one)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import httpx
    import numpy as np
    import pandas as pd
    import torch

    from textcluster.cluster.runs import assign
    from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
    from textcluster.ingest.demo import demo_corpus_path
    from textcluster.pipeline import run_pipeline
    from textcluster.store import Workspace

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve."))
    ws = Workspace(args.workspace or tmp / "ws")
    df = pd.read_csv(demo_corpus_path()).sample(frac=1.0, random_state=0)
    train, new = df.iloc[: args.train], df.iloc[args.train : args.train + args.texts]
    texts = [str(t).strip() for t in new["text"]]
    train.to_csv(tmp / "train.csv", index=False)
    t = time.perf_counter()
    res = run_pipeline(tmp / "train.csv", CorpusSpec(text_fields=("text",)), EncoderConfig(name=args.encoder),
                       ReducerConfig(projection="pca"), ClustererConfig(k=20), ws)
    run_id = res.run.run_id
    print(f"run {run_id} on {len(train)} texts in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    assign(ws, run_id, texts[:8])  # model loaded: not timed
    inproc = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ref = assign(ws, run_id, texts)
        inproc.append(len(texts) / (time.perf_counter() - t))
    base = max(inproc)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads)}
    env.pop("TEXTCLUSTER_API_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "textcluster", "serve", "--run", run_id, "--port", str(port),
         "--workspace", str(ws.root)], env=env, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                sys.exit(f"server exited: {server.stderr.read()}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                sys.exit("server did not start in 300 s")
            time.sleep(0.3)
        got = httpx.post(url + "/assign", json={"texts": texts[:256]}, timeout=300).json()["results"]
        same = np.array_equal([r["cluster"] for r in got], ref.labels[:256])
        rows = []
        for batch in [int(b) for b in args.batches.split(",")]:
            best = None
            for _ in range(args.repeats):
                chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
                if batch == 1:
                    chunks = chunks[: max(args.texts // 4, 64)]  # one text a request: a smaller sample
                secs, errors = drive(url, chunks, args.clients)
                if errors:
                    sys.exit(f"errors: {errors[:3]}")
                n_texts = sum(len(c) for c in chunks)
                cur = {"batch": batch, "requests": len(chunks), "texts": n_texts,
                       "requests_per_s": len(chunks) / secs, "texts_per_s": n_texts / secs}
                if best is None or cur["texts_per_s"] > best["texts_per_s"]:
                    best = cur
            best["share_of_inprocess"] = best["texts_per_s"] / base
            rows.append(best)
        health = httpx.get(url + "/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"\nrun {run_id} ({args.encoder}, k=20, {len(train)} training texts); {args.clients} clients; "
          f"{args.threads} torch threads; service answers == in-process assign: {same}")
    print(f"in-process assign: {base:,.0f} texts/s (best of {args.repeats}, {len(texts)} texts)\n")
    print("| texts per request | requests | requests/s | texts/s | share of in-process assign |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['requests']} | {r['requests_per_s']:,.1f} | {r['texts_per_s']:,.0f} | "
              f"{r['share_of_inprocess']:.0%} |")
    print(json.dumps({"inprocess_texts_per_s": base, "same_labels": bool(same), "rows": rows,
                      "inference_batches": health.get("inference_batches")}))


if __name__ == "__main__":
    main()
