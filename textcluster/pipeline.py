"""Chains the stages for ``textcluster run``: ingest -> embed -> cluster (reduce inside).

Each stage is cached by (parent id, config), so running the pipeline again with only
``k`` changed re-runs the cluster stage alone. Everything runs in the calling process,
so UMAP's numba compilation is paid at most once per process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textcluster.cluster.runs import RunResult, cluster
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.progress import ProgressFn, check_cancel
from textcluster.store import Workspace


@dataclass
class PipelineResult:
    """Ids of the three artifacts, the run summary and seconds per stage (``ingest``,
    ``embed``, ``cluster``, ``total``); ``cached``: which stages were cache hits."""

    corpus_id: str
    embedding_id: str
    run: RunResult
    timings: dict[str, float]
    cached: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-able summary: the run's fields plus the corpus and embedding ids."""
        out = asdict(self.run)
        out.update(
            corpus_id=self.corpus_id,
            embedding_id=self.embedding_id,
            timings={**{f"run.{k}": v for k, v in self.run.timings.items()}, **self.timings},
            cached=self.cached,
        )
        return out


def run_pipeline(
    path: str | Path,
    spec: CorpusSpec,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    ws: Workspace,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> PipelineResult:
    """Ingest ``path`` with ``spec``, embed with ``encoder``, cluster with ``reducer`` + ``clusterer``.

    Settings are validated before anything runs, so an impossible one fails fast.
    """
    from textcluster.embed.engine import embed
    from textcluster.ingest.corpus import ingest

    spec.validate()
    encoder.validate()
    reducer.validate()
    clusterer.validate()
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    rep = ingest(path, spec, ws, progress=progress, cancel=cancel)
    timings["ingest"] = time.perf_counter() - t
    check_cancel(cancel, "pipeline")
    t = time.perf_counter()
    emb = embed(ws, rep.corpus_id, encoder, progress=progress, cancel=cancel)
    timings["embed"] = time.perf_counter() - t
    check_cancel(cancel, "pipeline")
    t = time.perf_counter()
    run = cluster(ws, emb.embedding_id, reducer, clusterer, progress=progress, cancel=cancel)
    timings["cluster"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    return PipelineResult(
        corpus_id=rep.corpus_id,
        embedding_id=emb.embedding_id,
        run=run,
        timings=timings,
        cached={"ingest": bool(rep.cached), "embed": bool(emb.cached), "cluster": run.cached},
    )
