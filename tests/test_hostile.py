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
