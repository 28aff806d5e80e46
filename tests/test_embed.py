"""The embedding stage: cache hits, chunked resume (also after SIGKILL), order, progress, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_encoder import FakeEncoder, fake_matrix, make_corpus

from textcluster.config import EncoderConfig
from textcluster.embed import engine as E
from textcluster.embed.encoders import base
from textcluster.errors import ConfigError, EncoderError, JobCancelled, StoreError
from textcluster.store import Workspace

TEXTS = [
    f"{' '.join(['word'] * (1 + (i * 7) % 13))} text number {i}" for i in range(23)
]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


def test_vectors_in_input_order_after_length_sorting(ws, fake):
    built, _ = fake
    cid = make_corpus(ws, TEXTS)
    res = E.embed(ws, cid, EncoderConfig(name="fake", batch_size=1, chunk_rows=100))
    x = E.load_embeddings(ws, res.embedding_id)
    np.testing.assert_allclose(x, fake_matrix(TEXTS), atol=1e-6)
    lengths = [min(len(b[0].split()), 8) for b in built[0].batches]
    assert lengths == sorted(lengths, reverse=True)  # batches were length-sorted...
    assert built[0].seen != TEXTS  # ...so the model saw another order
    assert res.truncated == sum(len(t.split()) > 8 for t in TEXTS) > 0
    assert (res.n, res.dim, res.cached, res.encoder) == (len(TEXTS), 4, False, "fake")


def test_token_budget_puts_short_texts_in_bigger_batches():
    lengths = np.array([100, 100, 2, 2, 2, 2, 2, 2, 2, 2])
    batches = E.plan_batches(lengths, 10, batch_size=1, max_tokens=None, tokens_per_text=128)
    assert [len(b) for b in batches] == [1, 1, 8]  # 128-token budget, at most 8 texts
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))


def test_cache_hit_calls_no_model(ws, fake, monkeypatch):
    built, _ = fake
    cid = make_corpus(ws, TEXTS)
    first = E.embed(ws, cid, EncoderConfig(name="fake"))
    monkeypatch.setattr(FakeEncoder, "load", lambda self, d: pytest.fail("model loaded on a cache hit"))
    again = E.embed(ws, cid, EncoderConfig(name="fake", batch_size=7, chunk_rows=5))  # not in the key
    assert again.cached and again.embedding_id == first.embedding_id
    assert built[-1].seen == []


def test_key_changes_with_settings_and_fingerprint(ws, fake, monkeypatch):
    cid = make_corpus(ws, TEXTS)
    a = E.embed(ws, cid, EncoderConfig(name="fake"))
    b = E.embed(ws, cid, EncoderConfig(name="fake", instruction="query: "))
    monkeypatch.setattr(FakeEncoder, "fingerprint", lambda self: "fake-v2")
    c = E.embed(ws, cid, EncoderConfig(name="fake"))
    assert len({a.embedding_id, b.embedding_id, c.embedding_id}) == 3
    assert not b.cached and not c.cached


def test_cancel_keeps_finished_chunks_and_resume_skips_them(ws, fake):
    built, _ = fake
    cid = make_corpus(ws, TEXTS)
    cfg = EncoderConfig(name="fake", batch_size=1, chunk_rows=5)
    cancel = threading.Event()

    def progress(p):
        if p.done >= 10:
            cancel.set()

    with pytest.raises(JobCancelled, match="embed cancelled"):
        E.embed(ws, cid, cfg, progress=progress, cancel=cancel)
    first_seen = set(built[0].seen)
    res = E.embed(ws, cid, cfg)
    resumed = built[-1].seen
    assert set(TEXTS[:10]) <= first_seen and not set(TEXTS[:10]) & set(resumed)
    assert sorted(resumed) == sorted(TEXTS[10:])
    np.testing.assert_allclose(E.load_embeddings(ws, res.embedding_id), fake_matrix(TEXTS), atol=1e-6)
    assert not (ws.root / "partial" / res.embedding_id).exists()  # cleaned up once complete


_KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from textcluster.config import EncoderConfig
from textcluster.embed.encoders import registry
from textcluster.embed import engine as E
from textcluster.store import Workspace
import fake_encoder as T
registry.register_encoder("fake", lambda m, c: T.FakeEncoder(c, log=Path({log!r}), delay=0.15),
                      "slow test encoder", needs_model=False, takes_model=False)
E.embed(Workspace({ws!r}), {cid!r}, EncoderConfig(name="fake", batch_size=1, chunk_rows=2))
"""


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_vectors(ws, fake, tmp_path):
    built, _ = fake
    cid = make_corpus(ws, TEXTS)
    cfg = EncoderConfig(name="fake", batch_size=1, chunk_rows=2)
    eid = E.embedding_id(cid, cfg, FakeEncoder(cfg))
    log = tmp_path / "calls.log"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), log=str(log), ws=str(ws.root), cid=cid)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()})
    partial = ws.root / "partial" / eid
    deadline = time.time() + 60
    while time.time() < deadline and len(list(partial.glob("chunk-*.json"))) < 3:
        assert proc.poll() is None, "the embedding process ended before it was killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(partial.glob("chunk-*.json"))
    assert 3 <= len(finished) < len(TEXTS) / 2 and not ws.exists(eid)
    done_rows = {i for f in finished for i in range(*map(int, f.stem.split("-")[1:]))}

    res = E.embed(ws, cid, cfg)
    assert res.embedding_id == eid and not res.cached
    resumed = built[-1].seen
    assert not {TEXTS[i] for i in done_rows} & set(resumed)  # finished chunks not recomputed
    assert sorted(resumed) == sorted(TEXTS[i] for i in range(len(TEXTS)) if i not in done_rows)
    np.testing.assert_allclose(E.load_embeddings(ws, eid), fake_matrix(TEXTS), atol=1e-6)
    assert len(log.read_text().splitlines()) >= len(done_rows)


def test_two_threads_compute_once(ws, fake):
    built, opts = fake
    opts["delay"] = 0.01
    cid = make_corpus(ws, TEXTS)
    results = []
    threads = [threading.Thread(target=lambda: results.append(E.embed(ws, cid, EncoderConfig(name="fake"))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.cached for r in results) == [False, True]
    assert sum(len(b.seen) for b in built) == len(TEXTS)


def test_gpu_oom_halves_the_batch(ws, fake):
    built, opts = fake
    opts["oom_above"] = 3
    cid = make_corpus(ws, TEXTS)
    res = E.embed(ws, cid, EncoderConfig(name="fake", batch_size=4, chunk_rows=100))
    np.testing.assert_allclose(E.load_embeddings(ws, res.embedding_id), fake_matrix(TEXTS), atol=1e-6)
    assert max(len(b) for b in built[0].batches) <= 3


def test_gpu_oom_with_one_text_fails_clearly(ws, fake):
    _, opts = fake
    opts["oom_above"] = 0.5  # every batch, even of one text, runs out of memory
    cid = make_corpus(ws, TEXTS)
    with pytest.raises(EncoderError, match=r"out of GPU memory on cpu even with one text per batch \(max_length=8\)"):
        E.embed(ws, cid, EncoderConfig(name="fake"))


def test_progress_reports_rows_to_the_end(ws, fake):
    cid = make_corpus(ws, TEXTS)
    seen = []
    E.embed(ws, cid, EncoderConfig(name="fake", batch_size=1, chunk_rows=4), progress=seen.append)
    done = [p.done for p in seen]
    assert done == sorted(done) and done[-1] == len(TEXTS)
    assert {p.stage for p in seen} == {"embed"} and all(p.total == len(TEXTS) for p in seen)
    assert any(p.rate > 0 for p in seen)
    # after the first batch every report carries an ETA from the measured rate (the progress bar's)
    mid = [p for p in seen if 0 < p.done < len(TEXTS)]
    assert mid and all(p.eta_s is not None and p.rate > 0 for p in mid)
    assert all(abs(p.eta_s - (p.total - p.done) / p.rate) < 1e-6 for p in mid)


def test_float16_storage_and_mmap(ws, fake):
    cid = make_corpus(ws, TEXTS)
    res = E.embed(ws, cid, EncoderConfig(name="fake", dtype="float16"))
    x = E.load_embeddings(ws, res.embedding_id)
    assert x.dtype == np.float16 and isinstance(x, np.memmap)
    np.testing.assert_allclose(x, fake_matrix(TEXTS), atol=1e-3)
    m = ws.manifest(res.embedding_id)
    assert (m.n, m.dim, m.dtype, m.corpus_id, m.model_fingerprint) == (
        len(TEXTS), 4, "float16", cid, "fake-v1")


def test_unknown_corpus_is_a_store_error(ws, fake):
    with pytest.raises(StoreError, match=r"no corpus 'cor-0000000000000000'"):
        E.embed(ws, "cor-0000000000000000", EncoderConfig(name="fake"))


def test_tfidf_embed_then_encode_new_texts_alike(ws):
    texts = [f"{a} {b} item" for a in ("red", "green", "blue", "black") for b in ("car", "bike", "boat", "train")]
    cid = make_corpus(ws, texts)
    cfg = EncoderConfig(name="tfidf", dims=4)
    res = E.embed(ws, cid, cfg)
    assert (res.n, res.dim) == (16, 4)
    stored = E.load_embeddings(ws, res.embedding_id)
    again = E.encode_texts(texts[:5], ws=ws, embedding_id=res.embedding_id)  # cfg read from the manifest
    np.testing.assert_allclose(again, stored[:5], atol=1e-6)
    assert (ws.path(res.embedding_id) / "tfidf" / "vocabulary.json").is_file()
    with pytest.raises(ConfigError, match="encode_texts needs cfg"):
        E.encode_texts(["x"])


@pytest.mark.model
@pytest.mark.slow  # loads the bundled MiniLM: seconds
def test_minilm_matches_sentence_transformers_and_cache_skips_loading(ws, monkeypatch):
    from sentence_transformers import SentenceTransformer

    from textcluster.embed.encoders import transformer

    texts = ["How do I sort a list in Python?", "bank loan", "x " * 300, "The cat sat on the mat."]
    cid = make_corpus(ws, texts)
    res = E.embed(ws, cid, EncoderConfig(chunk_rows=3))
    assert (res.n, res.dim, res.truncated) == (4, 384, 1)
    ref = SentenceTransformer(str(transformer.bundled_minilm_path()), device="cpu").encode(
        texts, batch_size=64, normalize_embeddings=True)
    x = E.load_embeddings(ws, res.embedding_id)
    assert float((x * ref).sum(1).min()) > 0.9999
    np.testing.assert_allclose(E.encode_texts(texts[:2], EncoderConfig()), x[:2], atol=1e-5)

    base.clear_model_cache()

    def boom(*a, **k):
        raise AssertionError("the model was loaded on a cache hit")

    monkeypatch.setattr(transformer, "cached_model", boom)
    monkeypatch.setattr(SentenceTransformer, "__init__", boom)
    hit = E.embed(ws, cid, EncoderConfig())
    assert hit.cached and hit.embedding_id == res.embedding_id


@pytest.mark.model
@pytest.mark.slow  # a fresh process loads the bundled MiniLM: seconds
def test_minilm_embeds_without_importing_sentence_transformers():
    """The default encoder runs the bundled folder with plain transformers: a fresh process
    (what `textcluster run` is) never pays sentence-transformers' import."""
    import subprocess
    import sys

    code = ("import sys; from textcluster.config import EncoderConfig; "
            "from textcluster.embed.engine import encode_texts; "
            "v = encode_texts(['a first text', 'ok'], EncoderConfig()); "
            "print(v.shape, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split()[-1] == "False" and "(2, 384)" in out.stdout


# -- CLI ---------------------------------------------------------------------------

def test_cli_json_and_exit_codes(ws, capsys):
    from textcluster.cli import main

    texts = [f"{a} {b}" for a in ("red", "green", "blue") for b in ("car", "bike", "boat")]
    cid = make_corpus(ws, texts)
    argv = ["embed", cid, "--encoder", "tfidf", "--dims", "3", "--workspace", str(ws.root), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"embedding_id", "n", "dim", "seconds", "cached", "truncated", "device", "encoder"} <= set(out)
    assert (out["n"], out["dim"], out["cached"], out["encoder"]) == (9, 3, False, "tfidf")
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True

    assert main(["embed", cid, "--encoder", "nope", "--workspace", str(ws.root)]) == 2
    assert "error: unknown encoder 'nope'; known: minilm" in capsys.readouterr().err
    assert main(["embed", cid, "--encoder", "tfidf", "--pooling", "cls", "--workspace", str(ws.root)]) == 2
    assert "error: pooling='cls' applies to hf:<model>" in capsys.readouterr().err
    assert main(["embed", "--list-encoders", "--json", "--workspace", str(ws.root)]) == 0
    names = [e["name"] for e in json.loads(capsys.readouterr().out)["encoders"]]
    assert names[:2] == ["minilm", "tfidf"]


def test_cancel_inside_a_chunk_keeps_its_rows_and_the_next_call_resumes_there(ws, fake):
    """One chunk holds every text, so without saving the finished rows of the unfinished
    chunk a relaunch would start again at 0."""
    built, _ = fake
    cid = make_corpus(ws, TEXTS)
    cfg = EncoderConfig(name="fake", batch_size=1, chunk_rows=1000)
    cancel = threading.Event()

    def stop_after_five(p):
        if p.done >= 5:
            cancel.set()

    with pytest.raises(JobCancelled):
        E.embed(ws, cid, cfg, progress=stop_after_five, cancel=cancel)
    first = list(built[-1].seen)
    assert 5 <= len(first) < len(TEXTS)
    reports = []
    res = E.embed(ws, cid, cfg, progress=reports.append)
    second = list(built[-1].seen)
    assert sorted(first + second) == sorted(TEXTS)  # every text encoded exactly once
    assert reports[0].done == len(first) and reports[0].message == "resuming"
    np.testing.assert_allclose(E.load_embeddings(ws, res.embedding_id), fake_matrix(TEXTS), atol=1e-6)
    assert not list((ws.root / "partial").glob("**/*.part-*"))  # removed once the chunk is done
