"""The one orchestrator: the only place that chains the stages ingest -> embed -> cluster -> describe.

The CLI (``textcluster run``), the app's background jobs (:mod:`textcluster.jobs` schedules
a call of :func:`run_corpus`) and the HTTP service all go through these functions, so
caching, progress, cancellation and what a run records are the same everywhere.

Each stage is cached by (parent id, config): running the pipeline again with only ``k``
changed re-runs the cluster stage alone (and describe after it). Everything runs in the
calling process, so UMAP's numba compilation is paid at most once per process. A
cancelled call that is started again resumes the embedding from the rows already on disk.

Stage events: ``on_stage(name, status, info)`` is called with status ``running`` when a
stage starts, then ``done`` or ``cached`` (its artifact was already in the workspace) with
``info`` holding what it produced (``corpus_id``, ``embedding_id``, ``device``, ``run_id``,
``description_id``). Progress inside a stage goes to ``progress`` as
:class:`~textcluster.progress.Progress` reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textcluster.cluster import maps, runs
from textcluster.cluster.registry import check_clusterer
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.describe import clusters as describe_stage
from textcluster.embed import engine
from textcluster.engines import EngineConfig, ray_engine
from textcluster.ingest import corpus
from textcluster.progress import ProgressFn, check_cancel
from textcluster.store import Workspace, check_id

#: ``on_stage(stage name, status, info)``: status is ``running``, ``done`` or ``cached``.
StageFn = Callable[[str, str, Mapping[str, Any]], None]

#: The stages in the order they run. ``map`` (the final 2-D map) comes last: the clusters,
#: their sizes, keywords and examples are written before it starts (see cluster/maps.py).
STAGES = ("ingest", "embed", "cluster", "describe", "map")
#: Keywords per cluster in the describe stage (the app's jobs describe every run).
DEFAULT_TOP_N = 10


@dataclass
class PipelineResult:
    """Ids of the artifacts made or found, the run summary and seconds per stage.

    timings: ``ingest`` (when a file was read), ``embed``, ``cluster``, ``describe`` (when
    described), ``clusters_ready`` (from the start to the clusters written, before the map),
    ``map`` (the final 2-D map) and ``total``; cached: which stages were cache hits; device: where the
    embedding was computed.
    """

    corpus_id: str
    embedding_id: str
    run: runs.RunResult
    timings: dict[str, float]
    cached: dict[str, bool] = field(default_factory=dict)
    description_id: str | None = None
    device: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-able summary: the run's fields plus the corpus and embedding ids."""
        out = asdict(self.run)
        out.update(
            corpus_id=self.corpus_id,
            embedding_id=self.embedding_id,
            timings={**{f"run.{k}": v for k, v in self.run.timings.items()}, **self.timings},
            cached=self.cached,
            device=self.device,
        )
        if self.description_id:
            out["description_id"] = self.description_id
        return out


@dataclass(frozen=True)
class PipelinePlan:
    """The artifact ids a pipeline call will produce, computed without running anything,
    and which of them are already in the workspace (``cached``). ``run_id`` and
    ``description_id`` are None when an earlier stage is not cached (their ids depend on
    artifacts that do not exist yet)."""

    corpus_id: str
    embedding_id: str
    run_id: str | None
    description_id: str | None
    cached: dict[str, bool]


def validate(
    spec: CorpusSpec | None = None,
    encoder: EncoderConfig | None = None,
    reducer: ReducerConfig | None = None,
    clusterer: ClustererConfig | None = None,
) -> None:
    """Check every given setting before anything runs; :class:`~textcluster.errors.ConfigError`
    names the first impossible value (including unknown or out-of-range clusterer parameters)."""
    if spec is not None:
        spec.validate()
    if encoder is not None:
        engine.check_config(encoder)
    if reducer is not None or clusterer is not None:
        runs.validate_run(reducer or ReducerConfig(), clusterer or ClustererConfig())


def embed_corpus(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig | None = None,
    engine_cfg: EngineConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> engine.EmbedResult:
    """The embed stage on the chosen engine (default local): the same artifact either way
    (:func:`textcluster.embed.engine.embed`; on Ray, :func:`textcluster.engines.ray_engine.embed`)."""
    if engine_cfg is None or engine_cfg.validate().is_local:
        return engine.embed(ws, corpus_id, encoder, progress=progress, cancel=cancel)
    return ray_engine.embed(ws, corpus_id, encoder, engine_cfg, progress=progress, cancel=cancel)


def assign_texts(
    ws: Workspace,
    run_id: str,
    texts: list[str],
    engine_cfg: EngineConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> runs.AssignResult:
    """Label new ``texts`` with a saved run on the chosen engine (default local); the same
    labels and distances either way (:func:`textcluster.cluster.runs.assign`)."""
    if engine_cfg is None or engine_cfg.validate().is_local:
        return runs.assign(ws, run_id, texts, progress=progress, cancel=cancel)
    if not texts:
        return runs.assign(ws, run_id, texts)  # the same "no texts" error as the local engine
    return ray_engine.assign(ws, run_id, texts, engine_cfg, progress=progress, cancel=cancel)


def stages(*, from_file: bool, describe: bool, map: bool = True) -> list[str]:
    """The names of the stages a call runs, in order."""
    return [s for s in STAGES if (s != "ingest" or from_file) and (s != "describe" or describe)
            and (s != "map" or map)]


def plan(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    top_n: int = DEFAULT_TOP_N,
    *,
    embedding_id: str | None = None,
) -> PipelinePlan:
    """Which stages of :func:`run_corpus` will come from the cache: their ids, nothing run.

    ``embedding_id`` may be passed when already known (computing it hashes the model's
    files, which a caller may want to cache).
    """
    eid = embedding_id or engine.embedding_id(corpus_id, encoder)
    cached = {"embed": ws.exists(eid), "cluster": False, "describe": False}
    rid = did = None
    if cached["embed"]:
        rid = runs.run_id_for(eid, reducer, clusterer)
        cached["cluster"] = ws.exists(rid)
        if cached["cluster"]:
            did = describe_stage.description_id_for(rid, top_n=top_n)
            cached["describe"] = ws.exists(did)
    return PipelinePlan(corpus_id, eid, rid, did, cached)


def run_pipeline(
    path: str | Path,
    spec: CorpusSpec,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    ws: Workspace,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    describe_top_n: int | None = None,
    on_stage: StageFn | None = None,
    engine_cfg: EngineConfig | None = None,
    final_map: bool = True,
) -> PipelineResult:
    """Ingest ``path`` with ``spec``, embed with ``encoder``, cluster with ``reducer`` +
    ``clusterer`` (and describe the clusters when ``describe_top_n`` is given), then compute
    the final 2-D map (``final_map``; else the run keeps its provisional PCA layout).

    Every setting is validated before anything runs, so an impossible one fails fast.
    ``engine_cfg``: where the embed stage runs (default local; see :func:`embed_corpus`).
    """
    validate(spec, encoder, reducer, clusterer)
    if engine_cfg is not None:
        engine_cfg.validate()
    return _run(ws, (Path(path), spec), encoder, reducer, clusterer, describe_top_n, progress, cancel, on_stage,
                engine_cfg, final_map)


def run_corpus(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    *,
    describe_top_n: int | None = DEFAULT_TOP_N,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_stage: StageFn | None = None,
    engine_cfg: EngineConfig | None = None,
    final_map: bool = True,
) -> PipelineResult:
    """Embed, cluster and describe (unless ``describe_top_n`` is None) an ingested corpus,
    then compute the final 2-D map (unless ``final_map`` is False).

    This is what the app's pipeline jobs run. Settings are validated first, and an
    unknown corpus is a :class:`~textcluster.errors.StoreError` naming the known ones.
    ``engine_cfg``: where the embed stage runs (default local; see :func:`embed_corpus`).
    """
    validate(None, encoder, reducer, clusterer)
    if engine_cfg is not None:
        engine_cfg.validate()
    ws.manifest(check_id(corpus_id, "corpus"))
    return _run(ws, corpus_id, encoder, reducer, clusterer, describe_top_n, progress, cancel, on_stage, engine_cfg, final_map)


def _run(
    ws: Workspace,
    source: str | tuple[Path, CorpusSpec],
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    describe_top_n: int | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    on_stage: StageFn | None,
    engine_cfg: EngineConfig | None = None,
    final_map: bool = True,
) -> PipelineResult:
    notify: StageFn = on_stage or (lambda name, status, info: None)
    timings: dict[str, float] = {}
    cached: dict[str, bool] = {}
    t_all = time.perf_counter()

    def stage(name: str, fn: Callable[[], Any], info: Callable[[Any], dict[str, Any]]) -> Any:
        check_cancel(cancel, "pipeline")
        notify(name, "running", {})
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        cached[name] = bool(out.cached)
        notify(name, "cached" if out.cached else "done", info(out))
        return out

    if isinstance(source, tuple):
        path, spec = source
        rep = stage("ingest", lambda: corpus.ingest(path, spec, ws, progress=progress, cancel=cancel),
                    lambda r: {"corpus_id": r.corpus_id})
        corpus_id = rep.corpus_id
    else:
        corpus_id = source
    # A k or k range the corpus cannot hold is refused now, before the embedding is paid for.
    check_clusterer(clusterer, int(ws.manifest(corpus_id).kept))
    emb = stage("embed", lambda: embed_corpus(ws, corpus_id, encoder, engine_cfg, progress=progress, cancel=cancel),
                lambda r: {"embedding_id": r.embedding_id, "device": r.device})
    run = stage("cluster", lambda: runs.cluster(ws, emb.embedding_id, reducer, clusterer, progress=progress,
                                                cancel=cancel, defer_map=True),
                lambda r: {"run_id": r.run_id})
    description_id = None
    if describe_top_n is not None:
        d = stage("describe", lambda: describe_stage.describe(ws, run.run_id, top_n=describe_top_n,
                                                              progress=progress),
                  lambda r: {"description_id": r.description_id})
        description_id = d.description_id
    if final_map:
        timings["clusters_ready"] = time.perf_counter() - t_all
        stage("map", lambda: maps.project(ws, run.run_id, progress=progress, cancel=cancel),
              lambda r: {"map": r.method})
    timings["total"] = time.perf_counter() - t_all
    return PipelineResult(
        corpus_id=corpus_id,
        embedding_id=emb.embedding_id,
        run=run,
        timings=timings,
        cached=cached,
        description_id=description_id,
        device=emb.device,
    )
