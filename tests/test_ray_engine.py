"""The Ray engine gives the local engine's results: embed (id, files, vectors, row order),
assign (labels, distances), resume after a cancel, a crashed actor's chunk redone, and a
clear error for an address that cannot be reached.

One local Ray instance (2 CPUs, a 300 MB object store, no dashboard) serves the module and
is shut down at its end. The encoder is a tiny BERT built from a config and saved to disk
(the ``fake`` fixture's encoder lives in this process's registry only; Ray's workers are
other processes).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from textcluster import pipeline  # noqa: E402
from textcluster.cli import main  # noqa: E402
from textcluster.cluster import runs  # noqa: E402
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig  # noqa: E402
from textcluster.embed import engine  # noqa: E402
from textcluster.engines import EngineConfig, ray_engine  # noqa: E402
from textcluster.errors import EngineError, JobCancelled  # noqa: E402
from textcluster.ingest import corpus  # noqa: E402
from textcluster.store import Workspace  # noqa: E402

WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum", "river", "mountain", "ocean", "forest", "valley", "desert", "island", "canyon", "glacier", "meadow", "guitar", "piano", "violin", "drum", "flute", "trumpet", "cello", "harp"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 12)))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random (seeded) weights and a word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny") / "bert"
    d.mkdir()
    vocab = d / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_max_length=64)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def ray_cfg() -> EngineConfig:
    """A local Ray instance for the whole module, shut down at its end."""
    cfg = EngineConfig(name="ray", num_cpus=2, object_store_mb=300, actors=2)
    ray_engine.connect(cfg)
    yield cfg
    ray_engine.shutdown()


def _corpus(tmp_path: Path, name: str, n: int = 120, seed: int = 0) -> tuple[Workspace, str, list[str]]:
    texts = _texts(n, seed)
    f = tmp_path / f"{name}.txt"
    f.write_text("\n".join(texts) + "\n", encoding="utf-8")
    ws = Workspace(tmp_path / f"ws-{name}")
    return ws, corpus.ingest(f, CorpusSpec(), ws).corpus_id, texts


def _enc(model: Path, chunk_rows: int = 32) -> EncoderConfig:
    return EncoderConfig(name=f"st:{model}", device="cpu", chunk_rows=chunk_rows, batch_size=8)


def _files(ws: Workspace, aid: str) -> set[str]:
    return {p.name for p in ws.path(aid).iterdir()}


@pytest.mark.slow
def test_ray_embed_equals_the_local_engine_even_when_an_actor_crashes(tmp_path, tiny_model, ray_cfg, monkeypatch):
    """Same id, files, vectors and row order; an actor process that dies in the middle of a
    chunk (ENV_CRASH_ONCE) is restarted and the chunk is encoded again."""
    marker = tmp_path / "crashed"
    monkeypatch.setenv(ray_engine.ENV_CRASH_ONCE, str(marker))
    ws_l, cid_l, _ = _corpus(tmp_path, "a")
    ws_r, cid_r, _ = _corpus(tmp_path, "a2")
    assert cid_l == cid_r
    enc = _enc(tiny_model)
    local = pipeline.embed_corpus(ws_l, cid_l, enc)
    assert not marker.exists()  # the local engine has no actor to crash
    seen = []
    far = pipeline.embed_corpus(ws_r, cid_r, enc, ray_cfg, progress=seen.append)
    assert marker.is_file()  # an actor did exit with a chunk in hand
    assert far.embedding_id == local.embedding_id and not far.cached
    assert _files(ws_r, far.embedding_id) == _files(ws_l, local.embedding_id)
    a, b = engine.load_embeddings(ws_l, local.embedding_id), engine.load_embeddings(ws_r, far.embedding_id)
    assert a.shape == b.shape == (120, 32)
    np.testing.assert_allclose(b, a, atol=1e-5)  # rows in input order: row i = doc_id i
    assert max(p.done for p in seen) == 120
    m_l, m_r = ws_l.manifest(local.embedding_id), ws_r.manifest(far.embedding_id)
    assert (m_r.n, m_r.dim, m_r.truncated, m_r.model_fingerprint) == (m_l.n, m_l.dim, m_l.truncated,
                                                                      m_l.model_fingerprint)
    again = pipeline.embed_corpus(ws_r, cid_r, enc, ray_cfg)  # a cache hit never goes to Ray
    assert again.cached and again.embedding_id == far.embedding_id


@pytest.mark.slow
def test_fit_on_a_sample_then_assign_on_ray_gives_the_local_labels_and_distances(tmp_path, tiny_model, ray_cfg):
    ws, cid, _ = _corpus(tmp_path, "b")
    enc = _enc(tiny_model, chunk_rows=25)
    emb = pipeline.embed_corpus(ws, cid, enc)
    new = _texts(90, seed=7)
    run = runs.cluster(ws, emb.embedding_id, ReducerConfig(method="pca", dims=5, projection="pca"),
                       ClustererConfig(method="kmeans", k=4, fit_size=60, seed=0))  # fitted on 60 of 120 rows
    local = pipeline.assign_texts(ws, run.run_id, new)
    far = pipeline.assign_texts(ws, run.run_id, new, ray_cfg)
    assert far.mode == local.mode == "centroid"
    np.testing.assert_array_equal(far.labels, local.labels)
    np.testing.assert_array_equal(far.distances, local.distances)
    assert len(set(local.labels.tolist())) > 1


def _free_cpus(ray_cfg: EngineConfig, deadline: float = 20.0) -> float:
    import ray

    total = ray.cluster_resources()["CPU"]
    t = time.monotonic()
    while time.monotonic() - t < deadline:
        if ray.available_resources().get("CPU", 0) >= total:
            return time.monotonic() - t
        time.sleep(0.2)
    raise AssertionError(f"Ray still holds CPUs {deadline} s after the cancel: {ray.available_resources()}")


@pytest.mark.slow
def test_a_cancelled_ray_embed_stops_its_actors_and_resumes(tmp_path, tiny_model, ray_cfg):
    ws, cid, _ = _corpus(tmp_path, "c", n=1200)
    enc = _enc(tiny_model, chunk_rows=40)  # 30 chunks
    eid = engine.embedding_id(cid, enc)
    cancel = threading.Event()

    def progress(p):
        if p.done >= 40:  # the first chunk is on disk
            cancel.set()

    with pytest.raises(JobCancelled):
        pipeline.embed_corpus(ws, cid, enc, ray_cfg, progress=progress, cancel=cancel)
    _free_cpus(ray_cfg)  # the actors are gone: no Ray task keeps working for a cancelled job
    kept = sorted(ws.partial_dir(eid).glob("chunk-*.json"))
    assert kept and not ws.exists(eid)
    first = []
    res = pipeline.embed_corpus(ws, cid, enc, progress=first.append)  # resumed on the local engine
    assert first[0].done == 40 * len(kept) and first[0].message == "resuming"
    ws2, cid2, _ = _corpus(tmp_path, "c2", n=1200)
    ref = pipeline.embed_corpus(ws2, cid2, enc)
    assert res.embedding_id == ref.embedding_id
    np.testing.assert_allclose(engine.load_embeddings(ws, eid), engine.load_embeddings(ws2, eid), atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_unreachable_address_is_a_clear_error_within_30_s(tmp_path, tiny_model, ray_cfg, capsys):
    t = time.monotonic()
    with pytest.raises(EngineError, match="cannot reach the Ray cluster at '127.0.0.1:"):
        ray_engine.connect(EngineConfig(name="ray", address=f"127.0.0.1:{_free_port()}"))
    with socket.socket() as srv:  # something listens, but it is not Ray: no endless wait either
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        addr = f"127.0.0.1:{srv.getsockname()[1]}"
        with pytest.raises(EngineError, match="not as a Ray head node"):
            ray_engine.connect(EngineConfig(name="ray", address=addr, connect_timeout=2))
    assert time.monotonic() - t < 30
    import ray

    assert ray.is_initialized()  # the working connection was kept
    ws, cid, _ = _corpus(tmp_path, "e", n=10)
    capsys.readouterr()
    code = main(["embed", cid, "--workspace", str(ws.root), "--encoder", f"st:{tiny_model}",
                 "--engine", "ray", "--ray-address", f"ray://127.0.0.1:{_free_port()}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: cannot reach the Ray cluster at 'ray://"), err
