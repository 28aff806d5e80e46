"""Engines without Ray: the settings, the CLI flags, embed's chunk-runner hook (the path the Ray
engine takes, driven here in-process) and the chunked assign. The Ray engine itself is tested
in tests/test_ray_engine.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_encoder import fake_matrix, make_corpus

from textcluster.cli import main
from textcluster.config import EncoderConfig
from textcluster.embed import engine as E
from textcluster.engines import EngineConfig
from textcluster.errors import ConfigError, EncoderError
from textcluster.store import Workspace

TEXTS = [f"{' '.join(['word'] * (1 + (i * 5) % 11))} text {i}" for i in range(37)]


def test_engine_settings_are_checked():
    with pytest.raises(ConfigError, match="engine='spark'"):
        EngineConfig(name="spark").validate()  # type: ignore[arg-type]
    for bad in ("localhost", "http://h:1", "h:99999", "ray://", "a b:1"):
        with pytest.raises(ConfigError, match="should be auto, ray://host:port or host:port"):
            EngineConfig(name="ray", address=bad).validate()
    for good in ("auto", "10.0.0.5:6379", "ray://head.example:10001", "[::1]:6379"):
        EngineConfig(name="ray", address=good).validate()
    with pytest.raises(ConfigError, match="actors=0"):
        EngineConfig(name="ray", actors=0).validate()
    with pytest.raises(ConfigError, match="connect_timeout"):
        EngineConfig(name="ray", connect_timeout=0).validate()


@pytest.mark.parametrize("argv, expected", [
    (["--engine", "ray", "--ray-address", "not an address"], "ray://host:port"),
    (["--ray-address", "auto"], "--ray-address applies to --engine ray only"),
    (["--engine", "ray", "--ray-timeout", "0"], "finite number of seconds above 0"),
    (["--engine", "ray", "--ray-actors", "0"], "whole number of at least 1"),
])
def test_cli_refuses_bad_engine_flags_in_one_line(tmp_path, capsys, argv, expected):
    ws = Workspace(tmp_path / "ws")
    cid = make_corpus(ws, TEXTS)
    try:
        code = main(["embed", cid, "--workspace", str(ws.root), "--encoder", "tfidf", *argv])
    except SystemExit as e:  # argparse types exit at parse time
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


def test_the_local_engine_never_imports_ray():
    code = ("import sys, textcluster.pipeline, textcluster.jobs, textcluster.cli.cluster, textcluster.cli.embed; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[1])


def test_a_chunk_runner_writes_the_local_artifact_in_any_order(tmp_path, fake):
    """The hook the Ray engine uses: chunks encoded elsewhere, saved in reverse order."""
    cfg = EncoderConfig(name="fake", chunk_rows=10, batch_size=2)
    ws_l, ws_r = Workspace(tmp_path / "l"), Workspace(tmp_path / "r")
    local = E.embed(ws_l, make_corpus(ws_l, TEXTS), cfg)
    calls = []

    def runner(work: E.ChunkWork) -> None:
        calls.append(list(work.chunks))
        enc, dev = E.load_encoder(work.cfg, work.fingerprint)
        for s, e in reversed(work.chunks):
            vec, trunc = E.encode_chunk(enc, work.texts[s:e], work.cfg, dev)
            work.save(s, e, vec, trunc, 0.1, dev)

    seen = []
    far = E.embed(ws_r, make_corpus(ws_r, TEXTS), cfg, progress=seen.append, runner=runner)
    assert calls == [[(0, 10), (10, 20), (20, 30), (30, 37)]]
    assert far.embedding_id == local.embedding_id
    np.testing.assert_array_equal(E.load_embeddings(ws_r, far.embedding_id), E.load_embeddings(ws_l, local.embedding_id))
    np.testing.assert_allclose(E.load_embeddings(ws_r, far.embedding_id), fake_matrix(TEXTS), atol=1e-6)
    assert seen[-1].done == len(TEXTS)


def test_a_runner_chunk_of_the_wrong_size_is_refused(tmp_path, fake):
    ws = Workspace(tmp_path / "ws")
    cid = make_corpus(ws, TEXTS)

    def runner(work: E.ChunkWork) -> None:
        s, e = work.chunks[0]
        work.save(s, e, np.zeros((e - s - 1, 4), np.float32), 0, 0.0, "cpu")

    with pytest.raises(EncoderError, match=r"chunk 0-10 came back with shape \(9, 4\)"):
        E.embed(ws, cid, EncoderConfig(name="fake", chunk_rows=10), runner=runner)
    assert not ws.exists(E.embedding_id(cid, EncoderConfig(name="fake", chunk_rows=10)))


def test_a_worker_with_other_model_files_refuses_to_encode(fake):
    with pytest.raises(EncoderError, match="differ from the caller's"):
        E.load_encoder(EncoderConfig(name="fake"), fingerprint="another-model")


def test_an_edited_runs_assigner_travels_whole(tmp_path):
    """What the Ray engine ships: a version's Assigner (its parent's, then the label map) gives
    after a pickle round trip the answers assign_vectors gives, chunk by chunk or at once."""
    import pickle

    from fakes_run import real_chain

    from textcluster.cluster import runs
    from textcluster.cluster import versions as ver

    (tmp_path / "chain").mkdir()
    ws, ids = real_chain(tmp_path / "chain")
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    v = ver.derive_run(ws, rid, np.where(parent == 2, 0, parent), edit={"op": "merge", "clusters": [0, 2]},
                       label_map={2: 0})
    X = np.load(ws.file(ids["embedding"], "embeddings.npy")).astype(np.float32)
    a = pickle.loads(pickle.dumps(runs.load_assigner(ws, v.run_id)))
    assert a.mode == "map" and a.parent is not None
    want = runs.assign_vectors(ws, v.run_id, X)
    parts = [a.assign(X[s : s + 7]) for s in range(0, len(X), 7)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), want.labels)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), want.distances)
    assert set(np.unique(want.labels).tolist()) <= {-1, 0, 1}
