"""Vocabulary runs (textcluster.vocab, `textcluster vocab`, `vocab-stats`, `pivot`) on a tiny
saved model whose word vectors fall into known groups (tests/tiny_vocab_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from tiny_vocab_model import GROUPS, SPECIAL, SUBWORDS, build_tiny_model, words

from textcluster.cli import main
from textcluster.cluster.runs import assign
from textcluster.config import ClustererConfig, EncoderConfig, SamplingPolicy
from textcluster.describe.clusters import describe
from textcluster.describe.sampling import sample
from textcluster.embed.engine import encode_texts, load_embeddings
from textcluster.errors import ConfigError, EncoderError
from textcluster.ingest.corpus import load_docs, load_rejections
from textcluster.query.sql import query
from textcluster.store import Workspace
from textcluster.vocab import (
    VocabSpec,
    load_vocabulary,
    pivot,
    static_name,
    term_stats,
    vocab_artifacts,
    vocab_run,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def test_vocab_corpus_is_an_ordinary_corpus_of_kept_tokens(model, ws) -> None:
    art = vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}"))
    docs = load_docs(ws, art.corpus_id)
    assert docs["text"].tolist() == words()  # no special token, no ##piece, no 1-letter token
    assert docs["doc_id"].tolist() == list(range(len(words())))
    vocab = (SPECIAL + words() + SUBWORDS + ["a", "x"])
    assert [vocab[i] for i in docs["token_id"]] == words()
    rej = load_rejections(ws, art.corpus_id)
    reasons = " ".join(rej["reason"])
    assert "special token '[CLS]'" in reasons and "[unused0]" in reasons
    assert "subword piece '##ing'" in reasons and "shorter than min_length=2" in reasons
    assert art.kept + len(rej) == art.vocab_size == len(vocab)
    m = ws.manifest(art.corpus_id)
    assert m.kept == art.kept and m.format == "vocabulary" and m.spec["keep_subwords"] is False


def test_ids_are_deterministic_from_model_and_options(model, ws) -> None:
    a = vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}"))
    b = vocab_artifacts(ws, VocabSpec(encoder=f"st:{model}"))  # same files, same static encoder space
    assert (b.corpus_id, b.embedding_id, b.cached) == (a.corpus_id, a.embedding_id, True)
    c = vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}", keep_subwords=True, min_length=1))
    assert c.corpus_id != a.corpus_id and c.embedding_id != a.embedding_id
    texts = load_docs(ws, c.corpus_id)["text"].tolist()
    assert {"##s", "##ing", "a", "x"} <= set(texts) and "[CLS]" not in texts


def test_embedding_rows_are_unit_vectors_equal_to_the_static_encoding_of_each_token(model, ws) -> None:
    art = vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}"))
    X = np.asarray(load_embeddings(ws, art.embedding_id))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    m = ws.manifest(art.embedding_id)
    assert m.encoder == static_name(f"hf:{model}") == f"static:{model}" and m.normalized is True
    V = encode_texts(words(), EncoderConfig(name=m.encoder))
    assert np.array_equal(V, X)  # byte for byte: assign of a token reproduces its row


def test_vocab_run_recovers_the_groups_and_assign_labels_terms(model, ws) -> None:
    res = vocab_run(ws, VocabSpec(encoder=f"hf:{model}"), clusterer=ClustererConfig(k=3))
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    truth = [g for g, ws_ in enumerate(GROUPS.values()) for _ in ws_]
    assert adjusted_rand_score(truth, labels) == 1.0
    # SQL sees the run like any other: its docs carry the token ids
    rows = query(ws, "SELECT text, token_id FROM docs WHERE text = 'cow'", run_id=res.run_id).to_pylist()
    assert rows == [{"text": "cow", "token_id": (SPECIAL + words()).index("cow")}]
    got = assign(ws, res.run_id, words())
    assert np.array_equal(got.labels, labels)
    again = vocab_run(ws, VocabSpec(encoder=f"hf:{model}"), clusterer=ClustererConfig(k=3))
    assert again.run_id == res.run_id and again.cached
    # describe (nearest-to-centre examples) and sampling read it like any run
    desc = describe(ws, res.run_id, top_n=3, examples=2)
    for c in desc.clusters:
        near = [words()[i] for i in c.nearest]
        group = next(g for g in GROUPS.values() if near[0] in g)
        assert len(near) == 2 and set(near) <= set(group)
    smp = sample(ws, res.run_id, SamplingPolicy(size=6, allocation="equal", within="nearest"))
    assert smp.n == 6


def test_term_stats_and_pivot(model, ws) -> None:
    art = vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}"))
    vocab = load_vocabulary(ws, art.embedding_id)
    [cat, mixed] = term_stats(vocab, ["cat", "iron bread"], top=3)
    assert cat["in_vocabulary"] and not mixed["in_vocabulary"]
    assert {x["token"] for x in cat["nearest"]} <= set(GROUPS["animal"]) - {"cat"}
    sims = [x["similarity"] for x in cat["nearest"]]
    assert sims == sorted(sims, reverse=True)
    q = list(cat["quantiles"].values())
    assert q == sorted(q) and q[-1] == cat["nearest"][0]["similarity"]
    # the quantiles are over the other 23 tokens: 7 animals near 1, 16 others near 0
    assert cat["quantiles"]["p50"] < 0.5 < cat["quantiles"]["p95"]
    res = pivot(vocab, ["cat", "dog", "cow", "iron"])
    assert res["pivot"] in ("cat", "dog", "cow")
    scores = {s["term"]: s["mean_similarity"] for s in res["scores"]}
    assert scores["iron"] == min(scores.values())
    with pytest.raises(ConfigError, match="at least 2 terms"):
        pivot(vocab, ["cat"])
    with pytest.raises(ConfigError, match="term 2 is empty"):
        term_stats(vocab, ["cat", "  "])


def test_bad_options(model, ws) -> None:
    with pytest.raises(EncoderError, match="no input embedding matrix"):
        VocabSpec(encoder="tfidf").validate()
    with pytest.raises(ConfigError, match="min_length=0"):
        VocabSpec(encoder=f"hf:{model}", min_length=0).validate()
    with pytest.raises(ConfigError, match="no token .* passes the filters"):
        vocab_artifacts(ws, VocabSpec(encoder=f"hf:{model}", min_length=50))
    text_run_emb = ws  # a vocabulary is needed for term questions
    with pytest.raises(Exception, match="emb-"):
        load_vocabulary(text_run_emb, "emb-0000000000000000")


def test_cli_vocab_stats_pivot(model, tmp_path, capsys) -> None:
    root = str(tmp_path / "ws")
    assert main(["vocab", "--encoder", f"hf:{model}", "--k", "3", "--json", "--workspace", root]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run_id"].startswith("run-") and data["k"] == 3 and data["kept"] == len(words())
    m = Workspace(root).manifest(data["run_id"])
    assert m.reducer["method"] == "none" and m.reducer["projection"] == "pca"  # the vocab defaults
    assert main(["vocab-stats", "cat", "--run", data["run_id"], "--top", "2", "--json", "--workspace", root]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["terms"][0]["term"] == "cat" and len(stats["terms"][0]["nearest"]) == 2
    assert main(["pivot", "gold", "iron", "copper", "--encoder", f"hf:{model}", "--workspace", root]) == 0
    assert capsys.readouterr().out.startswith("pivot: ")
    assert main(["vocab", "--encoder", "tfidf", "--workspace", root]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no input embedding matrix" in err and len(err.strip().splitlines()) == 1
    assert main(["pivot", "cat", "--encoder", f"hf:{model}", "--workspace", root]) == 2
    assert "at least 2 terms" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.model
def test_bundled_minilm_vocabulary(tmp_path) -> None:
    """The default: the bundled MiniLM's 30,522 WordPiece tokens, filtered."""
    ws = Workspace(tmp_path / "ws")
    art = vocab_artifacts(ws, VocabSpec())
    texts = load_docs(ws, art.corpus_id)["text"].tolist()
    assert art.vocab_size == 30522 and 15_000 < art.kept < 30_000
    assert "dog" in texts and not any(t.startswith("##") or t.startswith("[") and t.endswith("]") for t in texts)
    vocab = load_vocabulary(ws, art.embedding_id)
    [dog] = term_stats(vocab, ["dog"], top=5)
    assert {"dogs", "puppy"} & {x["token"] for x in dog["nearest"]}
