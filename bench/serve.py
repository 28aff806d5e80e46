"""HTTP service throughput: `textcluster serve` against in-process `assign`, same run, same texts.

Builds a MiniLM run (k-means, k=20) on ``--train`` texts of the bundled BANKING77 demo corpus
(shipped with the package: nothing outside the repository is read), then labels ``--texts``
other texts of it

* in process: ``textcluster.cluster.runs.assign(ws, run_id, texts)`` (the model loaded
  beforehand; best of ``--repeats``), and
* over HTTP: a ``textcluster serve --run RUN_ID`` process on a free port, called by
  ``--clients`` concurrent httpx clients, each sending ``POST /assign`` requests of 1, 16 and
  256 texts until the texts are used up (best of ``--repeats`` per batch size),

with the same torch thread count on both sides (``--threads``). In-process and each batch size
run in turn, ``--repeats`` times (best kept), so all see the same load swings; CPU seconds are
read for the server process (Linux ``/proc``) and for the bench process's in-process calls (on
a busy machine texts per CPU-second are steadier than wall time). Prints a markdown table
(requests/s, texts/s, and both as a share of in-process assign) and one JSON line. The
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; every thread)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        ref = assign(ws, run_id, texts[:256])
        got = httpx.post(url + "/assign", json={"texts": texts[:256]}, timeout=300).json()["results"]
        same = np.array_equal([r["cluster"] for r in got], ref.labels)
        batches = [int(b) for b in args.batches.split(",")]
        best: dict = {}
        # in-process and each batch size in turn, repeated: every setting sees the same load swings
        for _ in range(args.repeats):
            c0, t = time.process_time(), time.perf_counter()
            assign(ws, run_id, texts)
            secs, cpu = time.perf_counter() - t, time.process_time() - c0
            cur = {"batch": "in-process", "requests": 1, "texts": len(texts), "requests_per_s": 1 / secs,
                   "texts_per_s": len(texts) / secs, "texts_per_cpu_s": len(texts) / cpu}
            if "in-process" not in best or cur["texts_per_s"] > best["in-process"]["texts_per_s"]:
                best["in-process"] = cur
            for batch in batches:
                chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
                if batch == 1:
                    chunks = chunks[: max(args.texts // 4, 64)]  # one text a request: a smaller sample
                c0 = cpu_seconds(server.pid)
                secs, errors = drive(url, chunks, args.clients)
                cpu = cpu_seconds(server.pid) - c0
                if errors:
                    sys.exit(f"errors: {errors[:3]}")
                n_texts = sum(len(c) for c in chunks)
                cur = {"batch": batch, "requests": len(chunks), "texts": n_texts,
                       "requests_per_s": len(chunks) / secs, "texts_per_s": n_texts / secs,
                       "texts_per_cpu_s": n_texts / max(cpu, 1e-9)}
                if batch not in best or cur["texts_per_s"] > best[batch]["texts_per_s"]:
                    best[batch] = cur
        base = best["in-process"]
        rows = [best[b] for b in batches]
        for r in rows:
            r["share_of_inprocess"] = r["texts_per_s"] / base["texts_per_s"]
            r["cpu_share_of_inprocess"] = r["texts_per_cpu_s"] / base["texts_per_cpu_s"]
        health = httpx.get(url + "/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"\nrun {run_id} ({args.encoder}, k=20, {len(train)} training texts); {args.clients} clients; "
          f"{args.threads} torch threads; service answers == in-process assign: {same}")
    print(f"in-process assign: {base['texts_per_s']:,.1f} texts/s, {base['texts_per_cpu_s']:,.1f} texts per "
          f"CPU-s (best of {args.repeats}, {len(texts)} texts in one call)\n")
    print("| texts per request | requests | requests/s | texts/s | share of in-process (wall) "
          "| texts per CPU-s (server) | share of in-process (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['requests']} | {r['requests_per_s']:,.2f} | {r['texts_per_s']:,.1f} | "
              f"{r['share_of_inprocess']:.0%} | {r['texts_per_cpu_s']:,.1f} | {r['cpu_share_of_inprocess']:.0%} |")
    print(json.dumps({"inprocess": base, "same_labels": bool(same), "rows": rows,
                      "inference_batches": health.get("inference_batches")}))


if __name__ == "__main__":
    main()
