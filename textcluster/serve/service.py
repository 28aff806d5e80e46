"""What the HTTP service computes, without HTTP: runs loaded once, batched inference.

:class:`Service` holds the served runs (text runs for ``/assign``, vocabulary runs for
``/label-terms``), each with its encoder loaded once per process. Requests are queued to one
inference thread (:class:`Batcher`), which encodes the texts of every request waiting for the
same run in one call (up to ``max_batch`` texts), so many small concurrent requests share the
model's batches. The arithmetic is :func:`textcluster.cluster.runs.assign`'s: the texts are
normalised like an ingested corpus (NFC, trimmed), encoded with the run's encoder config,
then labelled by :func:`~textcluster.cluster.runs.assign_vectors`, so a text gets the cluster
and distance ``textcluster assign`` gives it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import unicodedata
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textcluster.cluster.runs import assign_vectors, encoder_config_of
from textcluster.cluster.versions import run_names
from textcluster.config import EncoderConfig
from textcluster.embed import engine
from textcluster.embed.encoders.registry import get_encoder
from textcluster.embed.engine import load_embeddings
from textcluster.errors import ConfigError, StoreError
from textcluster.ingest.corpus import load_docs
from textcluster.store import Workspace, check_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeLimits:
    """Every limit of the service, with its default (each has a ``textcluster serve`` flag).

    max_texts: texts (or terms) per request (1,000; 413 beyond). max_bytes: request body
    (1 MiB; 413 beyond, checked before the body is parsed). max_examples: ``examples`` per
    text (20; 422 beyond). max_batch: texts encoded together by the inference thread (256).
    batch_wait_ms: how long the inference thread waits for more requests to join a batch that
    is not full (5 ms; 0: take only those already waiting).
    """

    max_texts: int = 1000
    max_bytes: int = 1 << 20
    max_examples: int = 20
    max_batch: int = 256
    batch_wait_ms: float = 5.0

    def validate(self) -> ServeLimits:
        """ConfigError naming a limit below 1 (max_examples may be 0)."""
        for name in ("max_texts", "max_bytes", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} should be >= 1")
        if self.max_examples < 0:
            raise ConfigError(f"max_examples={self.max_examples} should be >= 0")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"batch_wait_ms={self.batch_wait_ms} should be between 0 and 1000")
        return self


class UnknownRun(LookupError):
    """A request named a run the service does not serve (HTTP 404)."""


def normalise(text: str) -> str:
    """A text as ingest stores it (NFC, trimmed), so the service answers like ``assign`` on a file."""
    return unicodedata.normalize("NFC", text).strip()


@dataclass
class LoadedRun:
    """A served run: its manifest facts, names, and the encoder loaded for it."""

    run_id: str
    role: str  # "text" | "vocab"
    k: int
    n: int
    embedding_id: str
    corpus_id: str | None
    cfg: EncoderConfig
    encoder: Any
    device: str
    names: dict[int, str]
    assign_mode: str
    _texts: list[str] | None = field(default=None, repr=False)
    _labels: np.ndarray | None = field(default=None, repr=False)
    _tokens: set[str] | None = field(default=None, repr=False)

    def info(self) -> dict[str, Any]:
        """What ``GET /runs`` lists."""
        return {"run_id": self.run_id, "role": self.role, "k": self.k, "n": self.n,
                "encoder": self.cfg.name, "assign_mode": self.assign_mode,
                "names": {str(c): v for c, v in sorted(self.names.items())}}


def _run_names(ws: Workspace, run_id: str) -> dict[int, str]:
    return {int(c): str(v) for c, v in run_names(ws, run_id).items()}


def load_run(ws: Workspace, run_id: str, role: str) -> LoadedRun:
    """Read a run's manifest and load its encoder (model loaded once per process)."""
    run_id = check_id(run_id, "run")
    m = ws.manifest(run_id)
    cfg = encoder_config_of(ws, run_id)
    enc = get_encoder(cfg)
    if enc.needs_fit:
        enc.load_state(ws.path(m.embedding_id))
    device = engine._load(enc, cfg)  # the engine's own device + thread setup (as encode_texts)
    corpus_id = m.corpus_id or getattr(ws.manifest(m.embedding_id), "corpus_id", None)
    return LoadedRun(run_id, role, int(m.k), int(m.n), m.embedding_id, corpus_id, cfg, enc, device,
                     _run_names(ws, run_id), m.assign_mode)


@dataclass
class _Job:
    run: LoadedRun
    texts: list[str]
    future: Future = field(default_factory=Future)


class Batcher:
    """One inference thread: takes queued jobs, encodes the texts of every waiting job of the
    same run together (at most ``max_batch`` texts, or one bigger job alone), labels them and
    answers each job's future with ``(labels, distances, vectors, truncated)``.

    A batch that is not full waits up to ``wait_ms`` for more jobs: clients that resend as soon
    as they are answered arrive a moment after the thread is free again, and without the wait
    each would be encoded alone."""

    def __init__(self, ws: Workspace, max_batch: int, wait_ms: float = 5.0) -> None:
        self.ws = ws
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self._q: queue.Queue[_Job | None] = queue.Queue()
        self._held: _Job | None = None
        self._thread = threading.Thread(target=self._loop, name="textcluster-serve-infer", daemon=True)
        self._thread.start()
        self.batches = 0

    def submit(self, run: LoadedRun, texts: list[str]) -> Future:
        """Queue ``texts`` for ``run``; the future's result is (labels, distances, vectors, truncated)."""
        job = _Job(run, texts)
        self._q.put(job)
        return job.future

    def close(self) -> None:
        """Stop the thread after the queued jobs."""
        self._q.put(None)

    def _take(self) -> list[_Job] | None:
        first = self._held or self._q.get()
        self._held = None
        if first is None:
            return None
        jobs, size = [first], len(first.texts)
        deadline = time.monotonic() + self.wait_s
        while size < self.max_batch:
            left = deadline - time.monotonic()
            try:
                nxt = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if nxt is None or nxt.run.run_id != first.run.run_id or size + len(nxt.texts) > self.max_batch:
                self._held = nxt if nxt is not None else None
                if nxt is None:
                    self._q.put(None)
                break
            jobs.append(nxt)
            size += len(nxt.texts)
        return jobs

    def _loop(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            try:
                out = self._infer(jobs[0].run, [t for j in jobs for t in j.texts])
            except BaseException as e:  # noqa: BLE001  (handed to every waiting request)
                for j in jobs:
                    j.future.set_exception(e)
                continue
            start = 0
            for j in jobs:
                end = start + len(j.texts)
                j.future.set_result(tuple(a[start:end] for a in out))
                start = end

    def _infer(self, run: LoadedRun, texts: list[str]) -> tuple[np.ndarray, ...]:
        self.batches += 1
        cfg, enc = run.cfg, run.encoder
        shown = [cfg.instruction + t for t in texts] if cfg.instruction else texts
        lengths = enc.token_lengths(shown)
        limit = enc.max_tokens()
        truncated = (np.asarray(lengths) > limit) if lengths is not None and limit else np.zeros(len(texts), bool)
        V, _ = engine._encode_rows(enc, texts, cfg, run.device)  # what encode_texts runs
        V = np.asarray(V.astype(cfg.dtype, copy=False), dtype=np.float32)
        res = assign_vectors(self.ws, run.run_id, V)
        return res.labels, res.distances, V, truncated


class Service:
    """The served runs and the inference thread; what the HTTP handlers call.

    ``runs``: text runs (the first is the default of ``/assign``); ``vocab_runs``: vocabulary
    runs (the first is the default of ``/label-terms``). Every run is checked and its
    encoder loaded here, before the server accepts a request.
    """

    def __init__(self, ws: Workspace, runs: list[str], vocab_runs: list[str] = (), limits: ServeLimits | None = None) -> None:
        self.ws = ws
        self.limits = (limits or ServeLimits()).validate()
        if not runs and not vocab_runs:
            raise ConfigError("serve needs at least one run (--run RUN_ID) or vocabulary run (--vocab-run RUN_ID)")
        self.runs: dict[str, LoadedRun] = {}
        for rid in runs:
            self.runs[rid] = load_run(ws, rid, "text")
        self.vocab: dict[str, LoadedRun] = {}
        for rid in vocab_runs:
            self.vocab[rid] = load_run(ws, rid, "vocab")
        self.default_run = runs[0] if runs else None
        self.default_vocab = vocab_runs[0] if vocab_runs else None
        self.batcher = Batcher(ws, self.limits.max_batch, self.limits.batch_wait_ms)
        self.started = time.time()

    def close(self) -> None:
        """Stop the inference thread."""
        self.batcher.close()

    def _pick(self, table: dict[str, LoadedRun], run_id: str | None, default: str | None, what: str) -> LoadedRun:
        rid = run_id or default
        if rid is None:
            raise UnknownRun(f"this service serves no {what}; start it with "
                             f"{'--vocab-run' if what.startswith('vocab') else '--run'} RUN_ID")
        if rid not in table:
            served = ", ".join(table) or "none"
            raise UnknownRun(f"unknown run {str(rid)[:80]!r}; {what}s served: {served}")
        return table[rid]

    def list_runs(self) -> list[dict[str, Any]]:
        """``GET /runs``: every served run, default ones flagged."""
        out = []
        for table, default in ((self.runs, self.default_run), (self.vocab, self.default_vocab)):
            for rid, r in table.items():
                out.append({**r.info(), "default": rid == default})
        return out

    def _check_count(self, items: list[str], what: str) -> None:
        if not items:
            raise ConfigError(f"{what} is empty; send at least one")
        if len(items) > self.limits.max_texts:
            raise TooMany(f"{len(items):,} {what}; at most {self.limits.max_texts:,} per request "
                          f"(textcluster serve --max-texts)")

    async def assign(self, texts: list[str], run_id: str | None = None, examples: int = 0) -> dict[str, Any]:
        """Labels of ``texts`` under a served text run: ``{"run_id", "results": [{"cluster",
        "distance", "label"?, "truncated", "examples"?}]}``, one result per text, in order."""
        run = self._pick(self.runs, run_id, self.default_run, "text run")
        self._check_count(texts, "texts")
        if examples < 0 or examples > self.limits.max_examples:
            raise ConfigError(f"examples={examples} should be between 0 and {self.limits.max_examples} "
                              "(textcluster serve --max-examples)")
        clean = [normalise(t) for t in texts]
        empty = [i for i, t in enumerate(clean) if not t]
        if empty:
            raise ConfigError(f"texts[{empty[0]}] is empty (after trimming); every text needs some characters")
        labels, dist, V, trunc = await asyncio.wrap_future(self.batcher.submit(run, clean))
        results = []
        for i in range(len(clean)):
            c = int(labels[i])
            r: dict[str, Any] = {"cluster": c, "distance": float(dist[i]), "truncated": bool(trunc[i])}
            if c in run.names:
                r["label"] = run.names[c]
            results.append(r)
        if examples:  # numpy work off the event loop
            found = await asyncio.to_thread(
                lambda: [self._examples(run, r["cluster"], v, examples) for r, v in zip(results, V, strict=True)])
            for r, ex in zip(results, found, strict=True):
                r["examples"] = ex
        return {"run_id": run.run_id, "results": results}

    def _examples(self, run: LoadedRun, cluster: int, v: np.ndarray, n: int) -> list[dict[str, Any]]:
        """The ``n`` members of ``cluster`` nearest to ``v`` in the embedding space."""
        if cluster < 0:
            return []
        if run._labels is None:
            run._labels = np.asarray(np.load(self.ws.file(run.run_id, "labels.npy")))
        if run._texts is None:
            if run.corpus_id is None:
                raise StoreError(f"run {run.run_id} does not record its corpus; no examples to show")
            run._texts = load_docs(self.ws, run.corpus_id, columns=["text"])["text"].tolist()
        members = np.flatnonzero(run._labels == cluster)
        X = load_embeddings(self.ws, run.embedding_id)
        d2 = np.sum((np.asarray(X[members], dtype=np.float32) - v) ** 2, axis=1)
        order = np.argsort(d2, kind="stable")[:n]
        return [{"doc_id": int(members[j]), "text": run._texts[int(members[j])],
                 "distance": float(np.sqrt(d2[j]))} for j in order]

    async def label_terms(self, terms: list[str], run_id: str | None = None) -> dict[str, Any]:
        """Per term its vocabulary cluster and label, and the majority label of the set:
        ``{"run_id", "results": [{"term", "cluster", "label", "distance", "in_vocabulary",
        "truncated"}], "majority_label", "votes": {label: count}}`` (``majority_label`` is
        None when no term's cluster has a label; ties go to the label seen first)."""
        run = self._pick(self.vocab, run_id, self.default_vocab, "vocabulary run")
        self._check_count(terms, "terms")
        clean = [normalise(t) for t in terms]
        empty = [i for i, t in enumerate(clean) if not t]
        if empty:
            raise ConfigError(f"terms[{empty[0]}] is empty (after trimming)")
        labels, dist, _, trunc = await asyncio.wrap_future(self.batcher.submit(run, clean))
        vocab = self._vocab_index(run)
        results = []
        votes: Counter[str] = Counter()
        for i, t in enumerate(clean):
            c = int(labels[i])
            label = run.names.get(c)
            if label is not None:
                votes[label] += 1
            results.append({"term": t, "cluster": c, "label": label, "distance": float(dist[i]),
                            "in_vocabulary": t in vocab, "truncated": bool(trunc[i])})
        majority = None
        if votes:
            top = max(votes.values())
            majority = next(r["label"] for r in results if r["label"] is not None and votes[r["label"]] == top)
        return {"run_id": run.run_id, "results": results, "majority_label": majority, "votes": dict(votes)}

    def _vocab_index(self, run: LoadedRun) -> set[str]:
        if run._tokens is None:
            if run._texts is None:
                run._texts = load_docs(self.ws, run.corpus_id, columns=["text"])["text"].tolist()
            run._tokens = set(run._texts)
        return run._tokens


class TooMany(ConfigError):
    """More texts in one request than ``max_texts`` (HTTP 413)."""
