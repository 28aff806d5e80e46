"""Hostile cases: every one of them ends in a clear error, with nothing lost and nothing exposed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fake_encoder import make_corpus

from textcluster.cluster import runs
from textcluster.config import ClustererConfig, EncoderConfig
from textcluster.embed import engine
from textcluster.store import DamagedArtifactError, Workspace

# -- issue 15: inputs, models, LLM, workspace


def _corpus_and_run(ws: Workspace, fake) -> tuple[str, str]:
    cid = make_corpus(ws, [f"text number {i} about topic {i % 3}" for i in range(30)])
    eid = engine.embed(ws, cid, EncoderConfig(name="fake")).embedding_id
    rid = runs.cluster(ws, eid, clusterer=ClustererConfig(method="kmeans", k=3)).run_id
    return eid, rid


def test_overwritten_artifact_file_is_reported_and_recomputed(tmp_workspace, fake) -> None:
    ws = tmp_workspace
    eid, rid = _corpus_and_run(ws, fake)
    labels = ws.path(rid) / "labels.npy"
    good = labels.read_bytes()
    # What `export --out <workspace>/run/R/labels.npy` did: the same size, other bytes.
    np.save(labels, np.zeros(30, dtype=np.int32) + 7)
    assert labels.stat().st_size == len(good)
    with pytest.raises(DamagedArtifactError, match=r"labels\.npy"):
        ws.file(rid, "labels.npy")
    with pytest.raises(DamagedArtifactError, match=rid):
        ws.verify(rid)
    again = runs.cluster(ws, eid, clusterer=ClustererConfig(method="kmeans", k=3))
    assert again.run_id == rid
    assert labels.read_bytes() == good  # recomputed, not served
    ws.verify(rid, full=True)


def test_truncated_large_file_is_caught_by_size(tmp_workspace, fake, monkeypatch) -> None:
    monkeypatch.setenv("TEXTCLUSTER_VERIFY_FULL_BYTES", "0")  # size and time only
    ws = tmp_workspace
    eid, _ = _corpus_and_run(ws, fake)
    emb = ws.path(eid) / "embeddings.npy"
    with open(emb, "r+b") as f:
        f.truncate(emb.stat().st_size - 4)
    with pytest.raises(DamagedArtifactError, match=r"embeddings\.npy.*bytes"):
        ws.file(eid, "embeddings.npy")
    assert engine.embed(ws, ws.manifest(eid).corpus_id, EncoderConfig(name="fake")).embedding_id == eid
    ws.verify(eid, full=True)


def test_same_size_same_time_large_file_needs_full_verify(tmp_workspace, fake, monkeypatch) -> None:
    monkeypatch.setenv("TEXTCLUSTER_VERIFY_FULL_BYTES", "0")
    ws = tmp_workspace
    eid, _ = _corpus_and_run(ws, fake)
    emb = ws.path(eid) / "embeddings.npy"
    st = emb.stat()
    data = bytearray(emb.read_bytes())
    data[-1] ^= 0xFF
    emb.write_bytes(bytes(data))
    os.utime(emb, ns=(st.st_atime_ns, st.st_mtime_ns))  # a bit flip keeps size and time
    ws.verify(eid)  # the fast path cannot see it (documented)
    with pytest.raises(DamagedArtifactError, match="SHA-256"):
        ws.verify(eid, full=True)


def _gzip_bomb(path: Path, mib: int) -> Path:
    import gzip

    block = b"spam spam spam\n" * (1 << 16)  # ~1 MiB of one repeated line
    with gzip.open(path, "wb", compresslevel=9) as f:
        for _ in range(mib):
            f.write(block)
    return path


def test_gzip_bomb_is_refused_early_on_its_inflation_ratio(tmp_path, tmp_workspace, monkeypatch) -> None:
    from textcluster.config import CorpusSpec
    from textcluster.errors import CorpusError
    from textcluster.ingest import readers
    from textcluster.ingest.corpus import ingest

    monkeypatch.setattr(readers, "RATIO_FLOOR_BYTES", 1 << 20)  # 64 MiB in real use
    bomb = _gzip_bomb(tmp_path / "bomb.txt.gz", 12)
    assert bomb.stat().st_size < 100_000  # ~12 MiB inflated: a ratio of several hundred
    with pytest.raises(CorpusError, match=r"bomb\.txt\.gz.*max_ratio=100.*--max-ratio"):
        ingest(bomb, CorpusSpec(), tmp_workspace)
    assert not list(tmp_workspace.root.glob("corpus/cor-*"))


def test_max_ratio_is_validated_and_can_be_raised(tmp_path, monkeypatch) -> None:
    from textcluster.config import CorpusSpec
    from textcluster.errors import ConfigError
    from textcluster.ingest import readers
    from textcluster.ingest.readers import open_bytes

    monkeypatch.setattr(readers, "RATIO_FLOOR_BYTES", 1 << 20)
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="max_ratio"):
            CorpusSpec(max_ratio=bad).validate()
    bomb = _gzip_bomb(tmp_path / "b.txt.gz", 4)
    src = open_bytes(bomb, True, 1 << 40, [], max_ratio=1e6)
    while src.read():
        pass
    assert src.count > 3 << 20  # no refusal with the ratio raised
    src.raw.close()


def _read_request(conn) -> bytes:
    """One whole HTTP request (headers and Content-Length body), so closing never resets it."""
    data = b""
    while b"\r\n\r\n" not in data and (block := conn.recv(65536)):
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length and (block := conn.recv(65536)):
        body += block
    return head + b"\r\n\r\n" + body


class _HostileLLM:
    """A raw-socket server on 127.0.0.1 that answers each connection with ``behave(conn)``."""

    def __init__(self, behave) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[bytes] = []

        def serve() -> None:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                conn.settimeout(5)
                try:
                    self.seen.append(_read_request(conn))
                    behave(conn)
                except OSError:
                    pass
                finally:
                    conn.close()

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def _reply(content: str) -> bytes:
    import json

    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_llm_server_trickling_bytes_is_cut_off_at_the_total_deadline(where) -> None:
    import time

    from textcluster.describe.llm import LLMError, OpenAIChatClient

    def trickle(conn) -> None:
        if where == "body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
        for _ in range(60):  # one byte every 0.1 s, each well within the socket timeout
            conn.sendall(b" " if where == "body" else b"X-Slow: 1\r\n")
            time.sleep(0.1)

    server = _HostileLLM(trickle)
    try:
        client = OpenAIChatClient(server.url, "m", timeout=1.0)
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"timed out after 1 s \(the total deadline\)"):
            client.complete([{"role": "user", "content": "hi"}])
        assert time.monotonic() - t0 < 3.0
    finally:
        server.close()


@pytest.mark.parametrize("announced", [True, False])
def test_llm_reply_over_the_size_cap_is_refused(announced) -> None:
    from textcluster.describe.llm import DEFAULT_MAX_REPLY_BYTES, LLMError, OpenAIChatClient

    big = _reply("x" * (DEFAULT_MAX_REPLY_BYTES + 10))

    def flood(conn) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(big)}\r\n".encode() if announced else b"Connection: close\r\n"
        conn.sendall(head + b"\r\n" + big)

    server = _HostileLLM(flood)
    try:
        with pytest.raises(LLMError, match=r"max_reply_bytes=1,048,576.*TEXTCLUSTER_LLM_MAX_REPLY_BYTES"):
            OpenAIChatClient(server.url, "m", timeout=5).complete([{"role": "user", "content": "hi"}])
    finally:
        server.close()


def test_llm_keys_are_redacted_from_errors_manifests_and_reprs(tmp_path) -> None:
    from textcluster.describe.llm import LLMSettings, label_clusters

    key, url_key, pw = "sk-verysecretkey123", "urlsecret987654", "hunter2pass"

    def echo(conn) -> None:  # a 401 that echoes the Authorization header and the query string
        request = server.seen[-1].decode("latin-1")
        body = ("denied: " + request).encode()
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    server = _HostileLLM(echo)
    try:
        for base in (f"{server.url}/v1?api_key={url_key}", server.url.replace("//", f"//user:{pw}@")):
            s = LLMSettings(base_url=base, model="m", api_key=key, timeout=5).validate()
            out = label_clusters({0: ["a text"]}, s)
            shown = " ".join([out[0].error or "", repr(s), str(s.to_manifest()), str(s.cache_key())])
            assert not out[0].ok
            for secret in (key, url_key, pw):
                assert secret not in shown, (secret, shown)
        assert LLMSettings(base_url=f"http://h/v1?key={url_key}", model="m").cache_key() == \
            LLMSettings(base_url="http://h/v1?key=other", model="m").cache_key()
    finally:
        server.close()


def test_llm_huge_reply_text_is_not_kept_whole() -> None:
    from textcluster.describe.llm import MAX_RAW_CHARS, LLMSettings, label_clusters

    class Chatty:
        def complete(self, messages):
            return '{"topics": ["a"]}' + " " * 5_000_000

    out = label_clusters({0: ["t"]}, LLMSettings(base_url="http://x", model="m"), client=Chatty())
    assert out[0].ok and len(out[0].raw) < MAX_RAW_CHARS + 100


def _age(p: Path, hours: float) -> None:
    import time

    t = time.time() - hours * 3600
    os.utime(p, (t, t))


def test_leftovers_of_killed_processes_are_swept_at_start(tmp_workspace, fake) -> None:
    from textcluster.cli import main

    ws = tmp_workspace
    eid, rid = _corpus_and_run(ws, fake)
    tmp = ws.root / "tmp"
    old_build = tmp / f"{rid}.abc123"  # a Workspace.write killed mid-way
    old_build.mkdir(parents=True)
    (old_build / "labels.npy").write_bytes(b"x" * 100)
    _age(old_build / "labels.npy", 48)
    _age(old_build, 48)
    fresh = tmp / f"{eid}.def456"  # being written right now
    fresh.mkdir()
    old_dot = ws.root / "jobs" / ".job-1.json.x1y2.tmp"
    old_dot.parent.mkdir(parents=True, exist_ok=True)
    old_dot.write_text("{")
    _age(old_dot, 48)
    kept_file = ws.root / "jobs" / "job-1.json"
    kept_file.write_text("{}")
    _age(kept_file, 48)
    abandoned = ws.root / "partial" / "emb-0123456789abcdef"
    abandoned.mkdir(parents=True)
    (abandoned / "chunk.npy").write_bytes(b"0")
    _age(abandoned / "chunk.npy", 24 * 40)
    _age(abandoned, 24 * 40)
    resumable = ws.root / "partial" / "emb-fedcba9876543210"  # killed yesterday: kept to resume
    resumable.mkdir(parents=True)
    _age(resumable, 24)
    assert main(["describe", "run-0000000000000000", "--workspace", str(ws.root)]) == 2  # any command sweeps
    assert not old_build.exists() and not old_dot.exists() and not abandoned.exists()
    assert fresh.exists() and kept_file.exists() and resumable.exists()
    ws.verify(rid, full=True)  # the artifacts themselves are untouched


def test_sweep_leaves_what_a_live_process_holds(tmp_workspace) -> None:
    import fcntl

    ws = tmp_workspace
    rid = "run-0123456789abcdef"
    build = ws.root / "tmp" / f"{rid}.zz"
    build.mkdir(parents=True)
    _age(build, 48)
    part = ws.root / "partial" / rid
    part.mkdir(parents=True)
    _age(part, 24 * 90)
    (ws.root / "locks").mkdir()
    with open(ws.root / "locks" / f"{rid}.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert ws.sweep() == []
    assert build.exists() and part.exists()
    assert set(ws.sweep()) == {build, part}
    assert ws.sweep_at_start() == []  # the marker makes a second start cheap


def test_sweep_age_env_is_checked(tmp_workspace, monkeypatch) -> None:
    from textcluster.errors import StoreError

    monkeypatch.setenv("TEXTCLUSTER_TMP_MAX_AGE_HOURS", "-1")
    with pytest.raises(StoreError, match="TEXTCLUSTER_TMP_MAX_AGE_HOURS"):
        tmp_workspace.sweep()


def test_app_model_box_refuses_server_folders_outside_the_model_roots(tmp_path, monkeypatch) -> None:
    from textcluster.embed.encoders import base, check_encoder_source
    from textcluster.errors import EncoderError

    walked: list = []
    monkeypatch.setattr(base, "fingerprint_path", lambda p, *a, **k: walked.append(p) or "0" * 16)
    monkeypatch.delenv("TEXTCLUSTER_MODEL_DIRS", raising=False)
    for name in ("st:/usr", "hf:/etc", "static:~", "st:../..", f"hf:{tmp_path}", "st:org/../../x"):
        with pytest.raises(EncoderError, match="TEXTCLUSTER_MODEL_DIRS"):
            check_encoder_source(name)
    with pytest.raises(EncoderError, match="unknown encoder"):
        check_encoder_source("evil:/usr")
    assert walked == []
    # Allowed: registry names, hub names, the bundled model, folders under the configured roots.
    models = tmp_path / "models"
    (models / "mine").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (models / "link").symlink_to(tmp_path / "outside")  # a link out of the root does not count
    monkeypatch.setenv("TEXTCLUSTER_MODEL_DIRS", f"{tmp_path / 'nowhere'}:{models}")
    for name in ("minilm", "tfidf", "static:minilm", "st:sentence-transformers/all-MiniLM-L6-v2",
                 "hf:bert-base-uncased", f"hf:{models / 'mine'}"):
        assert check_encoder_source(name) == name
    with pytest.raises(EncoderError, match="allowed model folders"):
        check_encoder_source(f"st:{models / 'link'}")


def test_streamlit_binds_to_localhost_by_default() -> None:
    import tomllib

    conf = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert conf["server"]["address"] == "127.0.0.1"
