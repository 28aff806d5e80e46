"""Workspace store: ids, atomic writes, manifests, locks."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fakes_run import blank

from textcluster import store
from textcluster.errors import StoreError
from textcluster.store import (
    Workspace,
    canonical_json,
    file_sha256,
    kind_of,
    make_id,
    write_json_atomic,
)


@dataclass(frozen=True)
class _Cfg:
    k: int = 3
    name: str = "x"


# -- ids ------------------------------------------------------------------------


def test_make_id_is_deterministic_and_prefixed():
    a = make_id("embedding", "cor-0123456789abcdef", {"b": 1, "a": [1, 2]})
    assert a == make_id("embedding", "cor-0123456789abcdef", {"a": (1, 2), "b": 1})  # key order, tuple/list
    assert re.fullmatch(r"emb-[0-9a-f]{16}", a), a  # the id grammar: prefix, dash, 16 lower-case hex digits
    assert kind_of(a) == "embedding"


@pytest.mark.parametrize(
    ("kind", "parent", "config"),
    [("run", "cor-0123456789abcdef", {"b": 1, "a": [1, 2]}),
     ("embedding", "cor-fedcba9876543210", {"b": 1, "a": [1, 2]}),
     ("embedding", "cor-0123456789abcdef", {"b": 2, "a": [1, 2]}),
     ("embedding", None, {"b": 1, "a": [1, 2]})],
)
def test_make_id_changes_with_every_input(kind, parent, config):
    base = make_id("embedding", "cor-0123456789abcdef", {"b": 1, "a": [1, 2]})
    assert make_id(kind, parent, config)[4:] != base[4:]


def test_make_id_changes_with_format_version(monkeypatch):
    a = make_id("corpus", "abc", {})
    monkeypatch.setattr(store, "FORMAT_VERSION", store.FORMAT_VERSION + 1)
    assert make_id("corpus", "abc", {}) != a


def test_make_id_unknown_kind():
    with pytest.raises(StoreError, match="unknown artifact kind 'model'"):
        make_id("model", None, {})


@pytest.mark.parametrize("bad", ["emb", "xyz-123", "", "cor"])
def test_kind_of_rejects_non_ids(bad):
    with pytest.raises(StoreError, match="is not an artifact id"):
        kind_of(bad)


def test_canonical_json_handles_dataclasses_paths_arrays_sets():
    s = canonical_json({"cfg": _Cfg(), "p": Path("/a/b"), "v": np.array([1, 2]), "s": {3, 1}, "é": 1})
    assert s == '{"cfg":{"k":3,"name":"x"},"p":"/a/b","s":[1,3],"v":[1,2],"é":1}'
    with pytest.raises(TypeError, match="cannot serialise object"):
        canonical_json({"x": object()})


def test_file_sha256_matches_hashlib(tmp_path):
    p = tmp_path / "f.bin"
    data = np.random.default_rng(0).bytes(3 * 1024 + 7)
    p.write_bytes(data)
    assert file_sha256(p, chunk=1000) == hashlib.sha256(data).hexdigest()


# -- writing --------------------------------------------------------------------------


def _writer(content: str):
    def w(d: Path) -> None:
        (d / "data.txt").write_text(content)

    return w


def test_write_then_read_back(tmp_path):
    ws = Workspace(tmp_path)
    aid = make_id("corpus", "abc", {})
    assert not ws.exists(aid)
    folder = ws.write(aid, blank("corpus", kept=3), _writer("hello"))
    assert folder == tmp_path / "corpus" / aid
    assert ws.exists(aid)
    m = ws.manifest(aid)
    assert m.id == aid and m.kind == "corpus" and m.kept == 3
    assert m.format_version == store.FORMAT_VERSION and m.created <= time.time()
    assert ws.file(aid, "data.txt").read_text() == "hello"
    with pytest.raises(StoreError, match="has no file 'nope.txt'"):
        ws.file(aid, "nope.txt")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_failed_writer_leaves_nothing(tmp_path):
    ws = Workspace(tmp_path)
    aid = make_id("corpus", "abc", {})

    def bad(d: Path) -> None:
        (d / "half.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        ws.write(aid, blank("corpus"), bad)
    assert not ws.exists(aid) and not ws.path(aid).exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_first_complete_copy_wins(tmp_path):
    ws = Workspace(tmp_path)
    aid = make_id("run", "emb-1", {"k": 2})
    ws.write(aid, blank("run", k=1), _writer("1"))
    ws.write(aid, blank("run", k=2), _writer("2"))
    assert ws.manifest(aid).k == 1 and ws.file(aid, "data.txt").read_text() == "1"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_incomplete_folder_is_replaced(tmp_path):
    ws = Workspace(tmp_path)
    aid = make_id("run", "emb-1", {"k": 2})
    ws.path(aid).mkdir(parents=True)
    (ws.path(aid) / "junk.npy").write_text("left by a crash")
    assert not ws.exists(aid)
    ws.write(aid, blank("run"), _writer("ok"))
    assert ws.exists(aid) and not (ws.path(aid) / "junk.npy").exists()


def test_partial_dir_survives_until_write(tmp_path):
    ws = Workspace(tmp_path)
    aid = make_id("embedding", "cor-1", {})
    p = ws.partial_dir(aid)
    (p / "chunk-0.npy").write_text("x")
    assert ws.partial_dir(aid) == p and (p / "chunk-0.npy").exists()
    ws.write(aid, blank("embedding"))
    assert not p.exists()


def test_missing_and_unreadable_manifests(tmp_path):
    ws = Workspace(tmp_path)
    a = make_id("corpus", "a", {})
    b = make_id("corpus", "b", {})
    ws.write(a, blank("corpus"))
    with pytest.raises(StoreError, match=rf"no corpus '{b}' in workspace .*known: {a}"):
        ws.manifest(b)
    (ws.path(a) / "manifest.json").write_text("{broken")
    with pytest.raises(StoreError, match="unreadable"):
        ws.manifest(a)
    assert ws.list("corpus") == []  # skipped, not fatal
    with pytest.raises(StoreError, match="unknown artifact kind"):
        ws.list("nope")


def test_list_is_newest_first_and_delete(tmp_path):
    ws = Workspace(tmp_path)
    ids = [make_id("sample", "run-1", {"i": i}) for i in range(3)]
    for i in ids:
        ws.write(i, blank("sample"))
        time.sleep(0.01)
    assert [m.id for m in ws.list("sample")] == ids[::-1]
    ws.delete(ids[0])
    assert not ws.exists(ids[0]) and len(ws.list("sample")) == 2


def test_default_workspace_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv(store.ENV_WORKSPACE, str(tmp_path / "w"))
    assert Workspace().root == tmp_path / "w"
    monkeypatch.delenv(store.ENV_WORKSPACE)
    assert Workspace().root == Path("workspace")


# -- json and locks --------------------------------------------------------------------


def test_write_json_atomic_from_many_threads(tmp_path):
    """Threads of one process (e.g. a job's worker and the UI) may rewrite the same file."""
    p = tmp_path / "state.json"
    errors = []

    def writer(i: int) -> None:
        try:
            for j in range(30):
                write_json_atomic(p, {"writer": i, "step": j, "pad": "x" * 2000})
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads(p.read_text())["step"] == 29
    assert [f.name for f in tmp_path.iterdir()] == ["state.json"]  # no temporary files left


def test_write_json_atomic_serialises_numpy_and_paths(tmp_path):
    p = tmp_path / "m.json"
    write_json_atomic(p, {"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(2), "p": Path("a"), "c": _Cfg()})
    assert json.loads(p.read_text()) == {"n": 3, "x": 0.5, "a": [0, 1], "p": "a", "c": {"k": 3, "name": "x"}}


def test_lock_excludes_other_holders(tmp_path):
    ws = Workspace(tmp_path)
    held = threading.Event()
    log: list[tuple[str, float]] = []

    def first() -> None:
        with ws.lock("cor-abc"):
            log.append(("first in", time.perf_counter()))
            held.set()
            time.sleep(0.3)
            log.append(("first out", time.perf_counter()))

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    with ws.lock("cor-abc"):
        log.append(("second in", time.perf_counter()))
    t.join()
    assert [e for e, _ in log] == ["first in", "first out", "second in"]
    with ws.lock("other"), ws.lock("cor-xyz"):  # different names do not block each other
        pass
