"""Embedding engine: texts of a corpus -> one ``n x dim`` matrix, cached and resumable.

:func:`embed` is the front door. It names the result before computing it (the
id hashes the corpus id, the encoder settings and a fingerprint of the model
files, see :func:`embedding_id`), so a repeated call returns the stored matrix
without loading the model. Otherwise it encodes the corpus in chunks of
``cfg.chunk_rows`` rows, each written to ``Workspace.partial_dir`` as soon as it
is finished: a killed job resumes from the last finished chunk. Inside a
chunk, texts are sorted by token length and cut into batches under a token
budget (few long texts or many short ones per batch), so little time is spent
on padding; the original order is restored afterwards.

Artifact ``emb-<hex>/``: ``embeddings.npy`` (float32, or float16 when asked;
row i = doc_id i; L2-normalised unless ``cfg.normalize`` is False), for
``tfidf`` a ``tfidf/`` folder with the fitted vocabulary, idf and SVD
components, and ``manifest.json``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from textcluster.config import EncoderConfig
from textcluster.embed.devices import configure_torch_threads, empty_cache, is_oom, resolve_device
from textcluster.embed.encoders.base import Encoder
from textcluster.embed.encoders.registry import get_encoder, parse_name
from textcluster.errors import ConfigError, EncoderError, JobCancelled, StoreError
from textcluster.progress import Meter, ProgressFn, check_cancel
from textcluster.store import (
    EmbeddingManifest,
    Workspace,
    make_id,
    save_npy_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
#: Padded tokens allowed per batch, per unit of ``batch_size``, on a GPU (64 -> 8,192 tokens).
TOKENS_PER_TEXT = 128
#: The same on CPU (64 -> 2,048 tokens): smaller batches stay in cache; measured faster
#: than batches of 64 texts of any length (see docs/benchmarks.md).
TOKENS_PER_TEXT_CPU = 32
#: A batch of short texts holds at most this many times ``batch_size`` texts.
MAX_BATCH_FACTOR = 8
#: Texts per batch for encoders without token lengths (tfidf, static), per unit of batch_size.
UNTOKENISED_BATCH_FACTOR = 16


@dataclass(frozen=True)
class EmbedResult:
    """What :func:`embed` returns.

    embedding_id: the artifact id (``emb-<16 hex>``); n, dim: matrix shape;
    seconds: wall time of this call (a cache hit takes milliseconds);
    cached: True when the matrix was already stored; truncated: texts longer
    than the token limit; device: where it was (or had been) computed;
    encoder: the encoder name; path: the ``embeddings.npy`` file.
    """

    embedding_id: str
    n: int
    dim: int
    seconds: float
    cached: bool
    truncated: int
    device: str
    encoder: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the CLI's ``--json`` output)."""
        d = asdict(self)
        d["path"] = str(self.path)
        return d


# -- ids ---------------------------------------------------------------------

def check_config(cfg: EncoderConfig) -> str:
    """Check an encoder setting without loading anything; returns the registry key of its name.

    :class:`ConfigError` for impossible values, :class:`EncoderError` for an unknown name.
    """
    cfg.validate()
    key, _ = parse_name(cfg.name)
    if cfg.pooling is not None and key != "hf":
        raise ConfigError(
            f"pooling={cfg.pooling!r} applies to hf:<model> encoders only, got encoder={cfg.name!r}"
        )
    return key


def embedding_id(corpus_id: str, cfg: EncoderConfig, encoder: Encoder | None = None) -> str:
    """The id :func:`embed` stores the result under; hashes the model files, never loads them."""
    encoder = encoder or get_encoder(cfg)
    return make_id("embedding", corpus_id, {"encoder": cfg.cache_key(), "model": encoder.fingerprint()})


# -- batching ----------------------------------------------------------------

def plan_batches(
    lengths: np.ndarray | None,
    n: int,
    batch_size: int,
    max_tokens: int | None,
    tokens_per_text: int = TOKENS_PER_TEXT,
) -> list[np.ndarray]:
    """Row indices of each batch, longest texts first.

    With token ``lengths`` (capped at ``max_tokens``), a batch holds as many texts
    as fit in ``batch_size * tokens_per_text`` padded tokens (at most
    ``batch_size * MAX_BATCH_FACTOR`` texts, at least one). Without lengths,
    batches of ``batch_size * UNTOKENISED_BATCH_FACTOR`` texts in input order.
    """
    if n == 0:
        return []
    if lengths is None:
        step = batch_size * UNTOKENISED_BATCH_FACTOR
        return [np.arange(s, min(s + step, n)) for s in range(0, n, step)]
    capped = np.minimum(lengths, max_tokens) if max_tokens else np.asarray(lengths)
    order = np.argsort(-capped, kind="stable")
    budget = batch_size * tokens_per_text
    max_count = batch_size * MAX_BATCH_FACTOR
    batches, start = [], 0
    while start < n:
        longest = max(int(capped[order[start]]), 1)  # sorted: the first is the longest
        count = max(1, min(max_count, budget // longest, n - start))
        batches.append(order[start : start + count])
        start += count
    return batches


def _encode_batch_safely(encoder: Encoder, texts: list[str], device: str, state: dict[str, int]) -> np.ndarray:
    """encode_batch, halving the batch on GPU out-of-memory; ``state['cap']`` remembers the halving."""

    cap = state.get("cap")
    if cap is not None and len(texts) > cap:
        return np.concatenate(
            [_encode_batch_safely(encoder, texts[i : i + cap], device, state) for i in range(0, len(texts), cap)]
        )
    try:
        return encoder.encode_batch(texts)
    except Exception as e:
        if not is_oom(e):
            raise
        empty_cache(device)
        if len(texts) == 1:
            limit = encoder.max_tokens()
            raise EncoderError(
                f"out of GPU memory on {device} even with one text per batch (max_length={limit}); "
                "lower --max-length, use a smaller model, or --device cpu"
            ) from e
        half = max(1, len(texts) // 2)
        state["cap"] = half
        logger.warning("out of GPU memory with %d texts per batch; retrying with %d", len(texts), half)
        return np.concatenate([_encode_batch_safely(encoder, texts[i : i + half], device, state)
                               for i in range(0, len(texts), half)])


@dataclass
class _Partial:
    """Rows of one chunk encoded so far (raw model output, before ``_finish``)."""

    rows: np.ndarray  # (r,) int64 positions inside the chunk
    vectors: np.ndarray  # (r, dim) float32


@dataclass
class ChunkWork:
    """The chunks :func:`embed` hands to a distributed runner (``runner=`` of :func:`embed`).

    texts: every text of the corpus (input order); chunks: the ``(start, end)`` row ranges
    still to encode; save(start, end, vectors, truncated, seconds, device): store one
    finished chunk (the raw output of :func:`encode_chunk`), callable in any order;
    tick(): report that the runner is alive (lets a job see its cancel flag);
    fingerprint: the model files' fingerprint, which every worker must find too.
    """

    cfg: EncoderConfig
    fingerprint: str
    texts: list[str]
    chunks: list[tuple[int, int]]
    save: Callable[[int, int, np.ndarray, int, float, str], None]
    tick: Callable[[], None]
    cancel: threading.Event | None


#: ``runner(work)``: encodes ``work.chunks`` somewhere else and calls ``work.save`` for each.
ChunkRunner = Callable[[ChunkWork], None]


def _encode_rows(
    encoder: Encoder,
    texts: Sequence[str],
    cfg: EncoderConfig,
    device: str,
    on_rows: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    oom_state: dict[str, int] | None = None,
    resume: _Partial | None = None,
    keep: list[_Partial] | None = None,
) -> tuple[np.ndarray, int]:
    """Encode ``texts`` in length-sorted batches; returns (float32 (n, dim) in input order, truncated count).

    ``resume``: rows already encoded by an earlier, cancelled call (they are not encoded
    again). ``keep``: when the call is cancelled, the rows finished so far are appended to
    it as one :class:`_Partial` before :class:`JobCancelled` propagates, so they can be saved.
    """
    texts = [cfg.instruction + t for t in texts] if cfg.instruction else list(texts)
    n = len(texts)
    lengths = encoder.token_lengths(texts) if n else None
    limit = encoder.max_tokens()
    truncated = int(np.count_nonzero(lengths > limit)) if lengths is not None and limit else 0
    out: np.ndarray | None = None
    finished = np.zeros(n, dtype=bool)
    if resume is not None and resume.rows.size:
        out = np.empty((n, resume.vectors.shape[1]), dtype=np.float32)
        out[resume.rows] = resume.vectors
        finished[resume.rows] = True
    todo = np.flatnonzero(~finished)
    state = oom_state if oom_state is not None else {}
    per_text = TOKENS_PER_TEXT_CPU if device == "cpu" else TOKENS_PER_TEXT
    sub_lengths = lengths[todo] if lengths is not None else None
    try:
        for sub in plan_batches(sub_lengths, todo.size, cfg.batch_size, limit, per_text):
            idx = todo[sub]
            check_cancel(cancel, "embed")
            vec = np.asarray(_encode_batch_safely(encoder, [texts[i] for i in idx], device, state), dtype=np.float32)
            if out is None:
                out = np.empty((n, vec.shape[1]), dtype=np.float32)
            out[idx] = vec
            finished[idx] = True
            if on_rows is not None:
                on_rows(len(idx))
    except JobCancelled:
        if keep is not None and out is not None and finished.any():
            rows = np.flatnonzero(finished)
            keep.append(_Partial(rows, out[rows]))
        raise
    if out is None:
        out = np.zeros((0, int(getattr(encoder, "dim", 0))), dtype=np.float32)
    return _finish(out, cfg, encoder), truncated


def _finish(vectors: np.ndarray, cfg: EncoderConfig, encoder: Encoder) -> np.ndarray:
    """Matryoshka-style cut to ``cfg.dims`` (neural encoders; tfidf uses dims for its SVD), then L2 norm."""
    if cfg.dims is not None and not encoder.needs_fit:
        if cfg.dims > vectors.shape[1]:
            raise ConfigError(f"dims={cfg.dims} should be <= the encoder's {vectors.shape[1]} dimensions")
        vectors = np.ascontiguousarray(vectors[:, : cfg.dims])
    if cfg.normalize and len(vectors):
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-12)
    return vectors


def _load(encoder: Encoder, cfg: EncoderConfig, ws: Workspace | None = None,
          progress: ProgressFn | None = None) -> str:
    """Resolve the device, set torch threads on CPU, load the model; returns the device.

    Encoders that build their model on first use (``int8:``, ``m2v:``) cache it in ``ws``
    and report the build to ``progress``."""
    if ws is not None and getattr(encoder, "builds_model", False):
        encoder.set_workspace(ws, progress)  # type: ignore[attr-defined]

    device = "cpu" if encoder.needs_fit else resolve_device(cfg.device)
    if device == "cpu" and not encoder.needs_fit:
        configure_torch_threads()
    encoder.load(device)
    dim = getattr(encoder, "dim", None) if not encoder.needs_fit else None
    if cfg.dims is not None and dim and cfg.dims > dim:  # fail before any work
        raise ConfigError(f"dims={cfg.dims} should be <= the encoder's {dim} dimensions")
    return device


def load_encoder(cfg: EncoderConfig, fingerprint: str | None = None) -> tuple[Encoder, str]:
    """Build and load the encoder of ``cfg`` (a worker's side of a distributed run); returns
    (encoder, device). ``fingerprint``: the model files the caller hashed; an
    :class:`EncoderError` when this machine's files differ (another model, another version)."""
    check_config(cfg)
    encoder = get_encoder(cfg)
    if encoder.needs_fit:
        raise EncoderError(f"encoder {cfg.name!r} is fitted on a corpus; it runs on the local engine only")
    if fingerprint is not None and encoder.fingerprint() != fingerprint:
        raise EncoderError(
            f"the model files of {cfg.name!r} on this machine differ from the caller's "
            f"(fingerprint {encoder.fingerprint()} != {fingerprint}); install the same model everywhere"
        )
    return encoder, _load(encoder, cfg)


def encode_chunk(
    encoder: Encoder, texts: Sequence[str], cfg: EncoderConfig, device: str, cancel: Any = None,
) -> tuple[np.ndarray, int]:
    """Encode one chunk exactly as :func:`embed` does (same batches, so the same vectors);
    returns (float32 (n, dim) in input order, truncated count). ``cancel``: anything with
    ``is_set()``, checked between batches (:class:`JobCancelled`)."""
    return _encode_rows(encoder, texts, cfg, device, cancel=cancel)


# -- the stage ---------------------------------------------------------------

def _read_texts(ws: Workspace, corpus_id: str) -> list[str]:

    path = ws.file(corpus_id, "docs.parquet")
    try:
        col = pq.read_table(path, columns=["text"]).column("text")
    except (OSError, KeyError, ValueError) as e:
        raise StoreError(f"cannot read the text column of {str(path)!r}: {e}") from e
    return [t if t is not None else "" for t in col.to_pylist()]


def _chunk_paths(partial: Path, start: int, end: int) -> tuple[Path, Path]:
    stem = f"chunk-{start:012d}-{end:012d}"
    return partial / f"{stem}.npy", partial / f"{stem}.json"


def _part_paths(partial: Path, start: int, end: int) -> tuple[Path, Path]:
    stem = f"chunk-{start:012d}-{end:012d}.part"
    return partial / f"{stem}-rows.npy", partial / f"{stem}-vectors.npy"


def _save_partial(partial: Path, start: int, end: int, part: _Partial) -> None:
    """Keep the rows of an unfinished chunk (vectors first: the rows file marks it complete)."""
    rows_path, vec_path = _part_paths(partial, start, end)
    save_npy_atomic(vec_path, part.vectors)
    save_npy_atomic(rows_path, part.rows)


def _save_chunk(partial: Path, start: int, end: int, vectors: np.ndarray, truncated: int, seconds: float,
                device: str) -> None:
    """Store a finished chunk (vectors, then the .json that marks it finished); drop its .part files."""
    npy, meta = _chunk_paths(partial, start, end)
    save_npy_atomic(npy, vectors)
    write_json_atomic(meta, {"rows": end - start, "truncated": int(truncated), "seconds": float(seconds),
                             "device": device, "dim": int(vectors.shape[1])})
    for p in _part_paths(partial, start, end):
        p.unlink(missing_ok=True)


def _load_partial(partial: Path, start: int, end: int) -> _Partial | None:
    """The rows of chunk (start, end) saved by a cancelled call, or None (a damaged file too)."""
    rows_path, vec_path = _part_paths(partial, start, end)
    if not rows_path.is_file():
        return None
    try:
        rows = np.load(rows_path, allow_pickle=False)
        vectors = np.load(vec_path, allow_pickle=False)
    except (OSError, ValueError):
        logger.warning("ignoring an unreadable partial chunk in %s", partial)
        return None
    ok = rows.ndim == 1 and vectors.ndim == 2 and rows.shape[0] == vectors.shape[0]
    if not ok or (rows.size and (rows.min() < 0 or rows.max() >= end - start)):
        logger.warning("ignoring an inconsistent partial chunk in %s", partial)
        return None
    return _Partial(rows.astype(np.int64), vectors.astype(np.float32))


def _cached_result(ws: Workspace, eid: str, t0: float) -> EmbedResult:
    m = ws.manifest(eid)
    return EmbedResult(
        eid, m.n, m.dim, time.perf_counter() - t0, True, m.truncated,
        m.device, m.encoder, ws.path(eid) / EMBEDDINGS_FILE,
    )


def embed(
    ws: Workspace,
    corpus_id: str,
    cfg: EncoderConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    runner: ChunkRunner | None = None,
) -> EmbedResult:
    """Embed every text of corpus ``corpus_id``; cached, resumable, cancellable.

    Reads ``docs.parquet`` (column ``text``) of the corpus, writes the artifact
    ``emb-<hex>`` with ``embeddings.npy`` (n x dim, ``cfg.dtype``, row i = doc_id
    i). ``cfg`` defaults to ``EncoderConfig()`` (minilm). ``progress`` gets
    :class:`~textcluster.progress.Progress` reports (stage ``embed``, rows);
    ``cancel`` is checked between batches (:class:`JobCancelled`; finished
    chunks are kept for the next call). Two processes asking for the same
    embedding compute it once (the second waits on a lock, then reads it).
    ``runner``: encode the missing chunks elsewhere (the Ray engine,
    :mod:`textcluster.engines.ray_engine`); the chunk files, the artifact and its id are
    the same as when encoded here. Encoders fitted on the corpus (tfidf) always run here.
    """
    t0 = time.perf_counter()
    cfg = cfg or EncoderConfig()
    check_config(cfg)
    ws.manifest(corpus_id)  # a clear StoreError for an unknown corpus
    encoder = get_encoder(cfg)
    fingerprint = encoder.fingerprint()
    eid = make_id("embedding", corpus_id, {"encoder": cfg.cache_key(), "model": fingerprint})
    if ws.cached(eid):
        return _cached_result(ws, eid, t0)
    with ws.lock(eid):
        if ws.cached(eid):  # another process finished it while we waited
            return _cached_result(ws, eid, t0)
        return _compute(ws, corpus_id, cfg, encoder, eid, fingerprint, progress, cancel, t0, runner)


def _compute(
    ws: Workspace, corpus_id: str, cfg: EncoderConfig, encoder: Encoder, eid: str, fingerprint: str,
    progress: ProgressFn | None, cancel: threading.Event | None, t0: float, runner: ChunkRunner | None = None,
) -> EmbedResult:
    texts = _read_texts(ws, corpus_id)
    n = len(texts)
    partial = ws.partial_dir(eid)
    chunks = [(s, min(s + cfg.chunk_rows, n)) for s in range(0, n, cfg.chunk_rows)]
    finished = {c for c in chunks if _chunk_paths(partial, *c)[1].is_file()}
    done = sum(e - s for s, e in finished)
    # rows of a cancelled chunk count as done: they are not encoded again (read once, used below)
    resumed = {c: part for c in chunks if c not in finished and (part := _load_partial(partial, *c)) is not None}
    done += sum(int(part.rows.size) for part in resumed.values())
    meter = Meter("embed", n, progress, start_done=done)
    meter.update(done, "resuming" if done else "starting")
    device: str | None = None
    oom_state: dict[str, int] = {}
    fit_seconds = 0.0

    def ensure_loaded() -> str:
        nonlocal device, fit_seconds
        if device is None:
            meter.update(done, f"loading {cfg.name}")
            device = _load(encoder, cfg, ws, progress)
            if encoder.needs_fit:
                t = time.perf_counter()
                state_dir = partial / "state"
                if (state_dir / "done.json").is_file():
                    encoder.load_state(state_dir)  # type: ignore[attr-defined]
                else:
                    meter.update(done, f"fitting {cfg.name}")
                    encoder.fit(texts)  # type: ignore[attr-defined]
                    encoder.save_state(state_dir)  # type: ignore[attr-defined]
                    write_json_atomic(state_dir / "done.json", {})
                fit_seconds = time.perf_counter() - t
        return device

    todo = [c for c in chunks if c not in finished]
    if runner is not None and todo and not encoder.needs_fit:
        def save(start: int, end: int, vectors: np.ndarray, truncated: int, seconds: float, dev: str) -> None:
            nonlocal done
            vectors = np.asarray(vectors, dtype=np.float32)  # encode_chunk's output is final
            if vectors.ndim != 2 or vectors.shape[0] != end - start:
                raise EncoderError(f"chunk {start}-{end} came back with shape {vectors.shape}, "
                                   f"expected ({end - start}, dim)")
            _save_chunk(partial, start, end, vectors, truncated, seconds, dev)
            finished.add((start, end))
            part = resumed.pop((start, end), None)  # its rows were counted as done already
            done += (end - start) - (int(part.rows.size) if part is not None else 0)
            meter.update(done)

        meter.update(done, f"encoding {len(todo)} chunks on the distributed engine")
        runner(ChunkWork(cfg, fingerprint, texts, todo, save, lambda: meter.update(done), cancel))
    for start, end in chunks:
        if (start, end) in finished:
            continue
        check_cancel(cancel, "embed")
        dev = ensure_loaded()
        t = time.perf_counter()

        def on_rows(k: int) -> None:
            nonlocal done
            done += k
            meter.update(done)

        resume = resumed.pop((start, end), None)
        kept: list[_Partial] = []
        try:
            vectors, truncated = _encode_rows(
                encoder, texts[start:end], cfg, dev, on_rows, cancel, oom_state, resume=resume, keep=kept
            )
        except JobCancelled:
            if kept:  # the next call starts from these rows, not from the chunk's first
                _save_partial(partial, start, end, kept[0])
            raise
        _save_chunk(partial, start, end, vectors, truncated, time.perf_counter() - t, dev)
    if n == 0:
        ensure_loaded()
    if encoder.needs_fit and device is None:
        ensure_loaded()  # every chunk was done before a kill: the fitted state is still needed

    metas = [json.loads(_chunk_paths(partial, s, e)[1].read_text(encoding="utf-8")) for s, e in chunks]
    dim = int(metas[0]["dim"]) if metas else int(getattr(encoder, "dim", 0))
    truncated_total = sum(int(m["truncated"]) for m in metas)
    compute_seconds = fit_seconds + sum(float(m["seconds"]) for m in metas)
    devices = sorted({m["device"] for m in metas}) or [device or "cpu"]
    out_dtype = np.dtype(cfg.dtype)

    def writer(tmp: Path) -> None:
        # Appended chunk by chunk through a file, not a writable memmap: the mapped pages of
        # an n x dim memmap count as resident (1 GB at 1M x 256 float32).
        with open(tmp / EMBEDDINGS_FILE, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(out_dtype), "fortran_order": False, "shape": (n, dim)}
            np.lib.format.write_array_header_1_0(f, header)
            for s, e in chunks:
                block = np.load(_chunk_paths(partial, s, e)[0], mmap_mode="r", allow_pickle=False)
                f.write(np.ascontiguousarray(block, dtype=out_dtype).tobytes())
        if encoder.needs_fit:
            encoder.save_state(tmp)  # type: ignore[attr-defined]

    manifest = EmbeddingManifest(
        corpus_id=corpus_id,
        encoder=cfg.name,
        encoder_config=cfg.to_dict(),
        model_fingerprint=fingerprint,
        model=encoder.describe(),
        n=n,
        dim=dim,
        dtype=cfg.dtype,
        normalized=cfg.normalize,
        truncated=truncated_total,
        seconds=round(compute_seconds, 3),
        device=",".join(devices),
        files={"embeddings": EMBEDDINGS_FILE},
    )
    meter.update(n, "writing")
    path = ws.write(eid, manifest, writer, parents=[corpus_id])
    return EmbedResult(eid, n, dim, time.perf_counter() - t0, False, truncated_total,
                       manifest.device, cfg.name, path / EMBEDDINGS_FILE)


def load_embeddings(ws: Workspace, embedding_id: str, mmap: bool = True) -> np.ndarray:
    """The stored matrix (n x dim, float32 or float16); memory-mapped read-only by default."""
    path = ws.file(embedding_id, EMBEDDINGS_FILE)
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def encoder_config_of(ws: Workspace, embedding_id: str) -> EncoderConfig:
    """The :class:`EncoderConfig` an embedding artifact was made with (to encode new texts alike)."""
    enc = ws.manifest(embedding_id).encoder_config
    if enc is None:
        raise StoreError(f"embedding {embedding_id} does not record its encoder config")
    return EncoderConfig.from_dict(enc)


def encode_texts(
    texts: Sequence[str],
    cfg: EncoderConfig | None = None,
    progress: ProgressFn | None = None,
    *,
    ws: Workspace | None = None,
    embedding_id: str | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Vectors of new ``texts`` (n x dim, ``cfg.dtype``), nothing cached; the same vectors
    :func:`embed` stores for the same texts and config.

    With ``ws`` and ``embedding_id``, ``cfg`` defaults to the artifact's config; encoders
    fitted on a corpus (``tfidf``) need them, to read the fitted state.
    """
    if cfg is None:
        if ws is None or embedding_id is None:
            raise ConfigError("encode_texts needs cfg, or ws and embedding_id to read the config from")
        cfg = encoder_config_of(ws, embedding_id)
    check_config(cfg)
    encoder = get_encoder(cfg)
    if encoder.needs_fit:
        if ws is None or embedding_id is None:
            raise ConfigError(
                f"encoder {cfg.name!r} is fitted on a corpus: pass ws= and embedding_id= of the embedding "
                "whose fitted state should encode the new texts"
            )
        ws.manifest(embedding_id)
        encoder.load_state(ws.path(embedding_id))  # type: ignore[attr-defined]
    texts = list(texts)
    meter = Meter("embed", len(texts), progress)
    meter.update(0, f"loading {cfg.name}")
    device = _load(encoder, cfg, ws, progress)
    done = 0

    def on_rows(k: int) -> None:
        nonlocal done
        done += k
        meter.update(done)

    # chunk by chunk as embed does: the same batches, so the same vectors for the same texts
    parts = [_encode_rows(encoder, texts[s : s + cfg.chunk_rows], cfg, device, on_rows, cancel)[0]
             for s in range(0, len(texts), cfg.chunk_rows)] or [_encode_rows(encoder, [], cfg, device)[0]]
    vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return vectors.astype(cfg.dtype, copy=False)
