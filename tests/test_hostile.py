"""Hostile cases: every one of them ends in a clear error, with nothing lost and nothing exposed."""

from __future__ import annotations

# -- issue 15: inputs, models, LLM, workspace

import os
from pathlib import Path

import numpy as np
import pytest
from fake_encoder import make_corpus

from textcluster.cluster import runs
from textcluster.config import ClustererConfig, EncoderConfig
from textcluster.embed import engine
from textcluster.store import DamagedArtifactError, Workspace


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
