"""Vocabulary runs: cluster a language model's own input word vectors.

A model's input embedding matrix (the context-free vector of each token) becomes two
ordinary artifacts, so every later stage works on it unchanged (Explore, nearest-to-centre,
sampling, SQL, export, ``assign``, the label map, the HTTP service):

- a **vocabulary corpus** ``cor-...``: one document per kept token (``text`` = the token,
  metadata ``token_id``), its id hashed from the model files' fingerprint and the filter
  options (:class:`VocabSpec`); filtered tokens are rejections with their reason;
- a **vocabulary embedding** ``emb-...``: the kept rows of the matrix, L2-normalised (so the
  Euclidean clusterers cluster by cosine: for unit vectors ``|a-b|^2 = 2 - 2 cos``), recorded
  with the encoder ``static:<model>``, which maps a new term to the mean of its tokens'
  rows: a term that is one token gets exactly its row, so ``assign`` of a vocabulary run
  labels terms.

:func:`vocab_run` chains the two and the cluster stage; :func:`term_stats` and :func:`pivot`
answer the per-term questions (nearest tokens, quantiles of the cosine similarity to the
vocabulary, the term closest to all others of a set).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcluster.cluster.runs import RunResult, cluster
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.embed.encoders.base import fingerprint_path
from textcluster.embed.encoders.registry import get_encoder, parse_name
from textcluster.embed.engine import EMBEDDINGS_FILE, encode_texts, load_embeddings
from textcluster.errors import ConfigError, EncoderError
from textcluster.ingest.corpus import load_docs
from textcluster.progress import ProgressFn
from textcluster.store import CorpusManifest, EmbeddingManifest, Workspace, make_id

logger = logging.getLogger(__name__)

#: Tokens shorter than this (in characters, after removing a word-start marker) are left out.
DEFAULT_MIN_LENGTH = 2
#: Nearest tokens listed per term by :func:`term_stats`.
DEFAULT_TOP = 10
#: Quantiles of a term's cosine similarity to the vocabulary reported by :func:`term_stats`.
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
#: Bumped when the corpus/embedding recipe below changes (part of both ids).
RECIPE_VERSION = 1
#: Placeholder tokens that tokenizers do not list as special ([unused12], <unused3>, <extra_id_0>).
_PLACEHOLDER = re.compile(r"^(\[unused\d+\]|<unused\d+>|<extra_id_\d+>|\[PAD\d*\]|<0x[0-9A-Fa-f]{2}>)$")
#: Word-start markers of SentencePiece (``▁``) and byte-level BPE (``Ġ``) vocabularies.
_WORD_START = ("\u2581", "\u0120")


@dataclass(frozen=True)
class VocabSpec:
    """Which model's vocabulary, and which tokens of it.

    encoder: ``minilm`` (the bundled all-MiniLM-L6-v2, default), ``st:<model>``, ``hf:<model>``
        or ``static:<model>`` (a hub name or a local folder); the input embedding matrix of
        that model is read (safetensors, without building the model when possible).
    min_length: tokens with fewer characters (after a word-start marker is removed) are left
        out (default 2).
    keep_subwords: keep word pieces that continue a word (``##ing`` in WordPiece; pieces
        without a word-start marker in SentencePiece/BPE vocabularies). Default False.
    Special tokens (``[CLS]``, ``<pad>``, ``[unused7]``, ...) are always left out.
    """

    encoder: str = "minilm"
    min_length: int = DEFAULT_MIN_LENGTH
    keep_subwords: bool = False

    def validate(self) -> VocabSpec:
        """Check the options (no model is read); returns self. :class:`ConfigError` /
        :class:`EncoderError` naming the value otherwise."""
        if isinstance(self.min_length, bool) or not isinstance(self.min_length, int) or self.min_length < 1:
            raise ConfigError(f"min_length={self.min_length!r} should be a whole number >= 1")
        static_name(self.encoder)
        return self

    def cache_key(self) -> dict[str, Any]:
        """What the corpus id hashes (with the model files' fingerprint)."""
        return {"vocab": RECIPE_VERSION, "min_length": self.min_length, "keep_subwords": self.keep_subwords}

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready."""
        return asdict(self)


def static_name(encoder: str) -> str:
    """The ``static:<model>`` encoder that maps new terms into the vocabulary's space:
    ``minilm`` -> ``static:minilm``, ``st:X`` / ``hf:X`` -> ``static:X``, ``static:X`` -> itself.
    :class:`EncoderError` for encoders without an input embedding matrix (``tfidf``)."""
    key, model = parse_name(encoder)
    if key == "minilm":
        return "static:minilm"
    if key in ("st", "hf", "static"):
        return f"static:{model}"
    raise EncoderError(
        f"encoder {encoder!r} has no input embedding matrix to cluster; use minilm, st:<model>, "
        "hf:<model> or static:<model>"
    )


def _static_encoder(spec: VocabSpec) -> Any:
    return get_encoder(EncoderConfig(name=static_name(spec.encoder)))


@dataclass(frozen=True)
class VocabArtifacts:
    """The ids of a vocabulary's corpus and embedding, and how many tokens were kept."""

    corpus_id: str
    embedding_id: str
    kept: int
    vocab_size: int
    encoder: str
    cached: bool


@dataclass
class VocabResult:
    """What :func:`vocab_run` returns: the artifacts and the run (``run`` is the cluster
    stage's :class:`~textcluster.cluster.runs.RunResult`)."""

    corpus_id: str
    embedding_id: str
    run_id: str
    kept: int
    vocab_size: int
    encoder: str
    k: int
    noise: float
    cached: bool
    seconds: float
    run: RunResult = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's ``--json``)."""
        d = asdict(self)
        d["run"] = self.run.to_dict()
        return d


def _token_table(tok: Any, spec: VocabSpec) -> tuple[list[int], list[str], list[tuple[int, str]]]:
    """(kept token ids, their shown texts, [(token id, reason)] of the left-out ones), by id."""
    vocab = tok.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    special = set(getattr(tok, "all_special_ids", []) or [])
    special |= set(getattr(tok, "added_tokens_decoder", {}) or {})
    tokens = [t for t, _ in by_id]
    wordpiece = any(t.startswith("##") for t in tokens)
    marked = not wordpiece and sum(t.startswith(_WORD_START) for t in tokens) > 0.1 * max(len(tokens), 1)
    kept_ids: list[int] = []
    texts: list[str] = []
    dropped: list[tuple[int, str]] = []
    for t, i in by_id:
        if i in special or _PLACEHOLDER.match(t):
            dropped.append((i, f"special token {t!r}"))
            continue
        shown = t
        if wordpiece and t.startswith("##") and len(t) > 2:
            if not spec.keep_subwords:
                dropped.append((i, f"subword piece {t!r}"))
                continue
        elif marked:
            if t.startswith(_WORD_START):
                shown = t[1:]
            elif not spec.keep_subwords:
                dropped.append((i, f"subword piece {t!r}"))
                continue
        if not shown.strip():
            dropped.append((i, f"blank token {t!r}"))
            continue
        if len(shown) < spec.min_length:
            dropped.append((i, f"token {t!r} shorter than min_length={spec.min_length}"))
            continue
        kept_ids.append(int(i))
        texts.append(shown)
    return kept_ids, texts, dropped


def vocab_artifacts(ws: Workspace, spec: VocabSpec | None = None, progress: ProgressFn | None = None) -> VocabArtifacts:
    """Write (or find) the vocabulary corpus and embedding of ``spec``'s model.

    Ids: ``make_id("corpus", <model fingerprint>, spec.cache_key())`` and
    ``make_id("embedding", corpus_id, {"encoder": static config, "model": fingerprint,
    "vocab": RECIPE_VERSION})``: the same model files and options are a cache hit, read
    without loading the model.
    """
    spec = (spec or VocabSpec()).validate()
    enc = _static_encoder(spec)
    fp = fingerprint_path(enc.path)
    cfg = EncoderConfig(name=static_name(spec.encoder))
    cid = make_id("corpus", fp, spec.cache_key())
    eid = make_id("embedding", cid, {"encoder": cfg.cache_key(), "model": fp, "vocab": RECIPE_VERSION})
    if ws.cached(cid) and ws.cached(eid):
        m = ws.manifest(cid)
        return VocabArtifacts(cid, eid, m.kept, m.rows_read, spec.encoder, True)
    enc.load("cpu")  # the tokenizer and the input embedding matrix, cached per process
    tok = enc.tokenizer_
    matrix = enc.matrix_.numpy()
    kept_ids, texts, dropped = _token_table(tok, spec)
    vocab_size = len(kept_ids) + len(dropped)
    if not kept_ids:
        raise ConfigError(
            f"no token of {spec.encoder!r} passes the filters (min_length={spec.min_length}, "
            f"keep_subwords={spec.keep_subwords}); {vocab_size} tokens left out"
        )
    too_big = [i for i in kept_ids if i >= matrix.shape[0]]
    if too_big:
        raise EncoderError(
            f"tokenizer of {spec.encoder!r} has token ids up to {max(too_big)} but the embedding matrix "
            f"has {matrix.shape[0]} rows"
        )
    with ws.lock(cid):
        if not ws.cached(cid):
            _write_corpus(ws, cid, spec, fp, str(enc.path), kept_ids, texts, dropped, vocab_size)
    with ws.lock(eid):
        if not ws.cached(eid):
            _write_embedding(ws, eid, cid, cfg, fp, enc, matrix, kept_ids)
    return VocabArtifacts(cid, eid, len(kept_ids), vocab_size, spec.encoder, False)


def _write_corpus(
    ws: Workspace, cid: str, spec: VocabSpec, fp: str, source: str,
    kept_ids: list[int], texts: list[str], dropped: list[tuple[int, str]], vocab_size: int,
) -> None:
    n = len(kept_ids)
    seen: set[str] = set()
    dup = []
    for t in texts:
        dup.append(t in seen)
        seen.add(t)
    docs = pa.table({
        "doc_id": pa.array(np.arange(n, dtype=np.int64)),
        "row": pa.array(np.asarray(kept_ids, dtype=np.int64) + 1),
        "text": pa.array(texts, pa.string()),
        "is_duplicate": pa.array(dup, pa.bool_()),
        "token_id": pa.array(np.asarray(kept_ids, dtype=np.int64)),
    })
    rej = pa.table({
        "row": pa.array([i + 1 for i, _ in dropped], pa.int64()),
        "reason": pa.array([r for _, r in dropped], pa.string()),
    })

    def writer(d: Path) -> None:
        pq.write_table(docs, d / "docs.parquet")
        pq.write_table(rej, d / "rejections.parquet")

    manifest = CorpusManifest(
        kept=n, rows_read=vocab_size, rejected=len(dropped),
        rejections=[{"row": i + 1, "reason": r} for i, r in dropped[:1000]],
        duplicates=int(sum(dup)), text_fields=["token"], format="vocabulary", encoding="",
        notes=[f"vocabulary of {spec.encoder} ({source}): {n} of {vocab_size} tokens kept; "
               "row = token id + 1"],
        source=f"vocabulary:{spec.encoder}", sha256=fp, spec=spec.to_dict(), columns=docs.column_names, n_docs=n,
    )
    ws.write(cid, manifest, writer, parents=[])
    logger.info("vocabulary corpus %s: %d of %d tokens", cid, n, vocab_size)


def _write_embedding(
    ws: Workspace, eid: str, cid: str, cfg: EncoderConfig, fp: str, enc: Any,
    matrix: np.ndarray, kept_ids: list[int],
) -> None:
    t0 = time.perf_counter()
    X = np.ascontiguousarray(matrix[np.asarray(kept_ids, dtype=np.int64)], dtype=np.float32)
    # The same arithmetic as the engine's normalisation, so static:<model> of a one-token
    # term gives this row byte for byte.
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    X /= np.maximum(norms, 1e-12)

    def writer(d: Path) -> None:
        np.save(d / EMBEDDINGS_FILE, X)

    manifest = EmbeddingManifest(
        n=int(X.shape[0]), dim=int(X.shape[1]), corpus_id=cid, encoder=cfg.name, encoder_config=cfg.to_dict(),
        model_fingerprint=fp, model={**enc.describe(), "backend": "vocabulary"}, dtype="float32",
        normalized=True, truncated=0, seconds=round(time.perf_counter() - t0, 3), device="cpu",
        files={"embeddings": EMBEDDINGS_FILE},
    )
    ws.write(eid, manifest, writer, parents=[cid])


def vocab_run(
    ws: Workspace,
    spec: VocabSpec | None = None,
    reducer: ReducerConfig | None = None,
    clusterer: ClustererConfig | None = None,
    progress: ProgressFn | None = None,
) -> VocabResult:
    """Cluster a model's vocabulary: :func:`vocab_artifacts` then the cluster stage.

    ``reducer`` defaults to none with a PCA plot projection (UMAP would compile for a minute
    on a small machine); ``clusterer`` to ``ClustererConfig()`` (k-means, k=20). Cached like
    every stage: the same model, filters and settings return the stored run.
    """
    t0 = time.perf_counter()
    reducer = reducer or ReducerConfig(method="none", projection="pca")
    clusterer = clusterer or ClustererConfig()
    art = vocab_artifacts(ws, spec, progress)
    run = cluster(ws, art.embedding_id, reducer, clusterer, progress=progress)
    return VocabResult(
        corpus_id=art.corpus_id, embedding_id=art.embedding_id, run_id=run.run_id, kept=art.kept,
        vocab_size=art.vocab_size, encoder=art.encoder, k=run.k, noise=run.noise,
        cached=art.cached and run.cached, seconds=time.perf_counter() - t0, run=run,
    )


# -- per-term questions ----------------------------------------------------------------


@dataclass
class Vocabulary:
    """A loaded vocabulary: its tokens (``texts``), unit vectors ``X`` (n, dim) and the
    encoder config that maps new terms into the same space."""

    embedding_id: str
    texts: list[str]
    X: np.ndarray
    cfg: EncoderConfig

    def vectors(self, terms: list[str]) -> np.ndarray:
        """Unit vectors (m, dim) of ``terms`` (mean of their tokens' rows, normalised)."""
        return np.asarray(encode_texts(list(terms), self.cfg), dtype=np.float32)


def load_vocabulary(ws: Workspace, embedding_id: str) -> Vocabulary:
    """A vocabulary embedding (one written by :func:`vocab_artifacts`, found from a run too:
    pass ``ws.manifest(run_id).embedding_id``) with its token texts."""
    m = ws.manifest(embedding_id)
    if not isinstance(m, EmbeddingManifest) or (m.model or {}).get("backend") != "vocabulary":
        raise ConfigError(f"{embedding_id} is not a vocabulary embedding (make one with `textcluster vocab`)")
    texts = load_docs(ws, m.corpus_id, columns=["text"])["text"].tolist()
    X = np.asarray(load_embeddings(ws, embedding_id, mmap=False), dtype=np.float32)
    return Vocabulary(embedding_id, texts, X, EncoderConfig.from_dict(m.encoder_config or {}))


def _check_terms(terms: list[str], at_least: int = 1) -> list[str]:
    clean = [t.strip() for t in terms]
    empty = [i for i, t in enumerate(clean) if not t]
    if empty:
        raise ConfigError(f"term {empty[0] + 1} is empty; give words such as: cat dog cow")
    if len(clean) < at_least:
        raise ConfigError(f"give at least {at_least} terms, got {len(clean)}")
    return clean


def term_stats(vocab: Vocabulary, terms: list[str], top: int = DEFAULT_TOP) -> list[dict[str, Any]]:
    """Per term: its nearest tokens and the quantiles of its cosine similarity to the vocabulary.

    Returns one dict per term: ``term``, ``in_vocabulary`` (the term is a kept token),
    ``nearest`` (``top`` ``{"token", "similarity"}``, the term itself left out), ``quantiles``
    (``{"min", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "max"}`` over every other
    token) and ``mean``. A term of several tokens is the mean of their vectors.
    """
    if top < 1:
        raise ConfigError(f"top={top} should be >= 1")
    terms = _check_terms(terms)
    V = vocab.vectors(terms)
    index = {t: i for i, t in reversed(list(enumerate(vocab.texts)))}
    out = []
    for term, v in zip(terms, V, strict=True):
        sims = vocab.X @ v
        own = index.get(term)
        mask = np.ones(sims.shape[0], dtype=bool)
        if own is not None:
            mask[own] = False
        others = sims[mask]
        ids = np.flatnonzero(mask)
        order = ids[np.argsort(-others, kind="stable")[:top]]
        q = np.quantile(others, QUANTILES) if others.size else np.full(len(QUANTILES), np.nan)
        names = ["min", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "max"]
        out.append({
            "term": term,
            "in_vocabulary": own is not None,
            "nearest": [{"token": vocab.texts[j], "similarity": round(float(sims[j]), 4)} for j in order],
            "quantiles": {n: round(float(x), 4) for n, x in zip(names, q, strict=True)},
            "mean": round(float(others.mean()), 4) if others.size else None,
        })
    return out


def pivot(vocab: Vocabulary, terms: list[str]) -> dict[str, Any]:
    """The pivot of a set of terms: the one whose mean cosine similarity to the others is highest.

    Returns ``{"pivot": term, "scores": [{"term", "mean_similarity"}, ...]}`` (in the order
    given; ties go to the earlier term). :class:`ConfigError` for fewer than 2 terms.
    """
    terms = _check_terms(terms, at_least=2)
    V = vocab.vectors(terms)
    S = V @ V.T
    m = len(terms)
    mean = (S.sum(axis=1) - np.diag(S)) / (m - 1)
    best = int(np.argmax(mean))
    return {
        "pivot": terms[best],
        "scores": [{"term": t, "mean_similarity": round(float(s), 4)} for t, s in zip(terms, mean, strict=True)],
    }
