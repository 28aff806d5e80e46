"""`textcluster serve`: a real uvicorn process on a free port, called over HTTP with httpx.

The runs use a tiny saved model (tests/tiny_vocab_model.py), which the server process loads
from disk like any model: a text run (encoder ``hf:<model>``, 64-token limit), a label-mapped
version of it, and a label-mapped vocabulary run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_vocab_model import GROUPS, build_tiny_model

from textcluster.cli import main
from textcluster.cluster.versions import run_names
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.labelmap import apply_label_map, parse_label_map
from textcluster.pipeline import run_pipeline
from textcluster.serve.service import Batcher
from textcluster.store import Workspace
from textcluster.vocab import VocabSpec, vocab_run

httpx = pytest.importorskip("httpx")
pytestmark = pytest.mark.slow  # starts server processes (a few seconds each)

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def texts_of(seed: int, n: int) -> list[str]:
    rng = np.random.default_rng(seed)
    groups = list(GROUPS.values())
    return [" ".join(rng.choice(groups[i % 3], size=int(rng.integers(2, 6)))) for i in range(n)]


def start_server(root: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("TEXTCLUSTER_API_TOKEN", None) if not env or "TEXTCLUSTER_API_TOKEN" not in env else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "textcluster", "serve", *args, "--port", str(port), "--workspace", str(root)],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {env['TEXTCLUSTER_API_TOKEN']}"} if env else {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/health", headers=headers, timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not answer /health in 120 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("serve")
    model = build_tiny_model(root / "model")
    ws = Workspace(root / "ws")
    csv = root / "texts.csv"
    pd.DataFrame({"text": texts_of(0, 45)}).to_csv(csv, index=False)
    res = run_pipeline(csv, CorpusSpec(text_fields=("text",)), EncoderConfig(name=f"hf:{model}"),
                       ReducerConfig(projection="pca"), ClustererConfig(k=3), ws)
    seeds = {"ANIMAL": ["cat dog cow"], "FOOD": ["bread cheese soup"], "METAL": ["iron gold tin"]}
    named = apply_label_map(ws, res.run.run_id, parse_label_map(json.dumps(seeds))).run_id
    vrun = vocab_run(ws, VocabSpec(encoder=f"hf:{model}"), clusterer=ClustererConfig(k=3)).run_id
    vnamed = apply_label_map(ws, vrun, parse_label_map(json.dumps({"ANIMAL": ["cat"], "METAL": ["iron"]}))).run_id
    return {"root": root, "ws": ws, "run": res.run.run_id, "named": named, "vocab": vnamed, "tmp": root}


@pytest.fixture(scope="module")
def server(setup) -> Iterator[str]:
    proc, url = start_server(setup["ws"].root, ["--run", setup["named"], "--run", setup["run"],
                                                "--vocab-run", setup["vocab"]])
    yield url
    stop(proc)


def cli_assign(ws: Workspace, run: str, texts: list[str], tmp: Path) -> pd.DataFrame:
    f = tmp / f"new-{run}-{len(texts)}.csv"
    pd.DataFrame({"text": texts}).to_csv(f, index=False)
    out = tmp / f"out-{run}-{len(texts)}.parquet"
    assert main(["assign", run, str(f), "--text-field", "text", "--output", str(out), "--workspace", str(ws.root)]) == 0
    return pd.read_parquet(out)


@pytest.mark.parametrize("which", ["run", "named"])
def test_assign_answers_equal_the_cli(setup, server, which) -> None:
    run = setup[which]
    texts = texts_of(1, 30) + ["  cat   dog  ", "gold bread", "something unknown"]
    r = httpx.post(server + "/assign", json={"texts": texts, "run": run}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_id"] == run and len(body["results"]) == len(texts)
    cli = cli_assign(setup["ws"], run, texts, setup["tmp"])
    assert [x["cluster"] for x in body["results"]] == cli["cluster"].tolist()
    got = np.asarray([x["distance"] for x in body["results"]], dtype=np.float32)
    assert np.array_equal(got, cli["distance"].to_numpy(dtype=np.float32))  # same bits
    names = run_names(setup["ws"], run)
    for x in body["results"]:
        assert x.get("label") == names.get(x["cluster"])
    if which == "named":
        assert {x["label"] for x in body["results"][:30]} == {"ANIMAL", "FOOD", "METAL"}


def test_default_run_examples_and_truncation(setup, server) -> None:
    long_text = " ".join(["cat"] * 200)  # over the model's 64 tokens
    r = httpx.post(server + "/assign", json={"texts": ["iron gold", long_text], "examples": 3}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_id"] == setup["named"]  # the first --run is the default
    short, long_ = body["results"]
    assert short["truncated"] is False and long_["truncated"] is True
    labels = np.load(setup["ws"].path(setup["named"]) / "labels.npy")
    for res in body["results"]:
        ex = res["examples"]
        assert len(ex) == 3
        assert all(labels[e["doc_id"]] == res["cluster"] for e in ex)
        assert [e["distance"] for e in ex] == sorted(e["distance"] for e in ex)
    assert short["label"] == "METAL" and all(set(e["text"].split()) <= set(GROUPS["metal"]) for e in short["examples"])


def test_label_terms_follow_the_label_map(setup, server) -> None:
    r = httpx.post(server + "/label-terms", json={"terms": ["cat", "dog", "cow", "horse"]}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_id"] == setup["vocab"]
    assert [x["label"] for x in body["results"]] == ["ANIMAL"] * 4
    assert body["majority_label"] == "ANIMAL" and body["votes"] == {"ANIMAL": 4}
    r = httpx.post(server + "/label-terms", json={"terms": ["iron", "gold", "bread", "zebra"]}, timeout=30).json()
    assert [x["label"] for x in r["results"][:3]] == ["METAL", "METAL", None]  # food clusters are unnamed
    assert r["majority_label"] == "METAL"
    assert [x["in_vocabulary"] for x in r["results"]] == [True, True, True, False]


def test_runs_health_docs(setup, server) -> None:
    runs = httpx.get(server + "/runs").json()["runs"]
    assert [(x["run_id"], x["role"], x["default"]) for x in runs] == [
        (setup["named"], "text", True), (setup["run"], "text", False), (setup["vocab"], "vocab", True)]
    assert runs[0]["names"] and runs[1]["names"] == {}
    assert httpx.get(server + "/health").json()["status"] == "ok"
    assert httpx.get(server + "/docs").status_code == 200
    paths = httpx.get(server + "/openapi.json").json()["paths"]
    assert {"/assign", "/label-terms", "/runs", "/health"} <= set(paths)


def test_limits_are_413(server) -> None:
    r = httpx.post(server + "/assign", json={"texts": ["cat"] * 1001})
    assert r.status_code == 413 and "at most 1,000" in r.json()["detail"]
    assert httpx.post(server + "/assign", json={"texts": ["cat"] * 1000}, timeout=60).status_code == 200
    big = json.dumps({"texts": ["cat " * 300_000]})  # 1.2 MB with a Content-Length
    r = httpx.post(server + "/assign", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "1,048,576" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"texts": ["'
        for _ in range(40):
            yield b"x" * 32768
        yield b'"]}'

    r = httpx.post(server + "/assign", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(("body", "loc"), [
    (b'{"texts": ["cat"', ["body", 16]),
    (b'{"texts": [1, "x"]}', ["body", "texts", 0]),
    (b'{"texts": "cat"}', ["body", "texts"]),
    (b'{"text": ["cat"]}', ["body", "texts"]),
    (b'["cat"]', ["body"]),
    (b'{"texts": ["cat"], "examples": "3"}', ["body", "examples"]),
])
def test_malformed_json_and_wrong_types_are_422_with_the_field(server, body, loc) -> None:
    r = httpx.post(server + "/assign", content=body)  # no Content-Type: read as JSON all the same
    assert r.status_code == 422
    assert loc in [d["loc"] for d in r.json()["detail"]]


def test_semantic_errors_are_422_and_unknown_runs_404(setup, server) -> None:
    r = httpx.post(server + "/assign", json={"texts": ["cat", "  "]})
    assert r.status_code == 422 and "texts[1] is empty" in r.json()["detail"]
    r = httpx.post(server + "/assign", json={"texts": ["cat"], "examples": 21})
    assert r.status_code == 422 and "between 0 and 20" in r.json()["detail"]
    for path, key in (("/assign", "texts"), ("/label-terms", "terms")):
        for run in ("run-0000000000000000", "../../etc/passwd", setup["vocab"] if key == "texts" else setup["run"]):
            r = httpx.post(server + path, json={key: ["cat"], "run": run})
            assert r.status_code == 404 and "unknown run" in r.json()["detail"]


def test_concurrent_requests_get_their_own_answers(setup, server) -> None:
    texts = texts_of(2, 24)
    single = httpx.post(server + "/assign", json={"texts": texts}, timeout=60).json()["results"]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: httpx.post(server + "/assign", json={"texts": [t]}, timeout=60).json(), texts))
    assert [g["results"][0]["cluster"] for g in got] == [s["cluster"] for s in single]
    np.testing.assert_allclose([g["results"][0]["distance"] for g in got], [s["distance"] for s in single], atol=1e-5)


def test_token_is_checked_on_every_request(setup) -> None:
    proc, url = start_server(setup["ws"].root, ["--run", setup["run"]], env={"TEXTCLUSTER_API_TOKEN": "s3cret"})
    try:
        assert httpx.get(url + "/health").status_code == 401
        assert httpx.get(url + "/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = httpx.post(url + "/assign", json={"texts": ["cat"] * 2000})  # refused before the size check
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        ok = httpx.post(url + "/assign", json={"texts": ["cat"]}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        stop(proc)


def test_non_loopback_host_without_token_is_refused_at_start(setup) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEXTCLUSTER_API_TOKEN"}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    p = subprocess.run(
        [sys.executable, "-m", "textcluster", "serve", "--run", setup["run"], "--host", "0.0.0.0",
         "--port", str(free_port()), "--workspace", str(setup["ws"].root)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve on '0.0.0.0' without a token")
    assert "TEXTCLUSTER_API_TOKEN" in lines[0]


def test_batcher_merges_waiting_requests_of_a_run(setup) -> None:
    """Jobs queued while the inference thread is busy are encoded together, and each gets its slice."""
    from textcluster.serve.service import load_run

    run = load_run(setup["ws"], setup["run"], "text")
    gate = threading.Event()
    sizes: list[int] = []

    class Slow(Batcher):
        def _infer(self, r, texts):
            sizes.append(len(texts))
            gate.wait(10)
            return super()._infer(r, texts)

    b = Slow(setup["ws"], max_batch=256)
    texts = texts_of(3, 6)
    futures = [b.submit(run, [t]) for t in texts]
    gate.set()
    out = [f.result(timeout=60) for f in futures]
    b.close()
    assert sum(sizes) == 6 and len(sizes) < 6
    alone = Batcher(setup["ws"], max_batch=1)
    ref = [alone.submit(run, [t]).result(timeout=60) for t in texts]
    alone.close()
    assert [int(o[0][0]) for o in out] == [int(r[0][0]) for r in ref]


def test_batcher_waits_a_moment_for_more_requests(setup) -> None:
    """A request arriving within batch_wait_ms of another joins its batch."""
    from textcluster.serve.service import load_run

    run = load_run(setup["ws"], setup["run"], "text")
    sizes: list[int] = []

    class Counting(Batcher):
        def _infer(self, r, texts):
            sizes.append(len(texts))
            return super()._infer(r, texts)

    b = Counting(setup["ws"], max_batch=256, wait_ms=500)
    first = b.submit(run, ["cat dog"])
    time.sleep(0.05)
    second = b.submit(run, ["iron gold", "bread"])
    assert len(first.result(timeout=60)[0]) == 1 and len(second.result(timeout=60)[0]) == 2
    b.close()
    assert sizes == [3]
