"""The cluster stage: embedding -> (reducer) -> clusterer -> a run artifact; and ``assign``.

:func:`cluster` writes a ``run-`` artifact (files in docs/ARCHITECTURE.md) whose id hashes
the embedding id and the reducer and clusterer ``cache_key()``; the same inputs are a
cache hit. Two things a run needs do not depend on ``k`` and are cached separately under
``<workspace>/cache/`` (plain ``.npy`` files, not artifacts), so changing ``k`` does not
recompute them: the UMAP-reduced matrix (keyed by embedding id, reducer settings, seed and
fitted rows) and the 2-D plot projection (keyed by embedding id, projection settings, seed).

:func:`assign` labels new texts with a saved run, without refitting: the texts are encoded
with the run's encoder config, mapped through the saved reducer (PCA ``mean`` /
``components`` in ``reducer/``), then given the nearest centre (k-means), the saved
mixture's prediction (GMM), or, for UMAP and smooth runs and density methods, the label
of their nearest rows among the run's rows in the embedding space (k-NN over
``embeddings.npy``; a text identical to a run row gets that row's label, so assigning the
run's own texts reproduces its labels).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import platform
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcluster.cluster import evaluate as met
from textcluster.cluster import hierarchy as hier
from textcluster.cluster import maps
from textcluster.cluster import reduce as red
from textcluster.cluster import stability as stab
from textcluster.cluster.autok import choose_k
from textcluster.cluster.distances import CHUNK_ROWS, nearest_center, own_and_nearest, sq_distances
from textcluster.cluster.fitting import fit_assign
from textcluster.cluster.gmm import GMMClusterer
from textcluster.cluster.neighbors import knn_labels
from textcluster.cluster.outliers import mark_outliers, outlier_scores, thresholds
from textcluster.cluster.registry import (
    cache_key as clusterer_key,
)
from textcluster.cluster.registry import (
    check_clusterer,
    check_params,
    fit_rows,
    get_clusterer,
    select_fit_rows,
    validate_clusterer,
)
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.embed.engine import encode_texts, load_embeddings
from textcluster.errors import ConfigError, StoreError
from textcluster.progress import Meter, ProgressFn, check_cancel
from textcluster.store import (
    RunManifest,
    Workspace,
    canonical_json,
    check_id,
    make_id,
    save_npy_atomic,
)

logger = logging.getLogger(__name__)

#: ``data_center_distance.npy`` (n x k float32) is skipped above this many bytes.
DISTANCE_LIMIT_BYTES = 256 << 20
#: Neighbours voted over when a UMAP / density run labels new texts (an exact match wins).
ASSIGN_KNN = 5
#: Reducers whose transform needs the fitted rows: their runs assign new texts by k-NN.
KNN_REDUCERS = ("umap", "smooth")
_VERSIONED = ("numpy", "scikit-learn", "scipy", "faiss-cpu", "umap-learn", "hdbscan", "torch")


@dataclass
class RunResult:
    """Summary of a run (what the CLI prints with ``--json``).

    metrics: fractions (``acc``, ``nmi``, ``ari``, ``v_measure`` with labels;
    ``silhouette`` in [-1, 1], ``davies_bouldin`` >= 0, size spread, ``noise`` always; the
    label-free ones in the embedding space, see :func:`textcluster.cluster.evaluate.embedding_scores`).
    timings: seconds per step (``load``, ``reduce``, ``cluster``, ``project``, ``write``, ``total``).
    """

    run_id: str
    embedding_id: str
    corpus_id: str | None
    n: int
    k: int
    noise: float
    metrics: dict[str, Any]
    timings: dict[str, float]
    cached: bool = False
    path: str = ""
    notes: list[str] = field(default_factory=list)
    auto_k: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict (``auto_k``: the sweep that chose k, or None)."""
        return asdict(self)


@dataclass
class AssignResult:
    """Labels of new texts under a saved run.

    labels (m,) int32 (-1 = noise); distances (m,) float32: to the assigned centre
    (centroid / model runs) or to the nearest run row in the embedding space (k-NN runs);
    mode: ``centroid`` | ``model`` | ``knn`` | ``map`` (a version: its parent's answer mapped).
    """

    run_id: str
    labels: np.ndarray
    distances: np.ndarray
    mode: str
    seconds: float


# --------------------------------------------------------------------------- ids and loading
def run_id_for(embedding_id: str, reducer: ReducerConfig, clusterer: ClustererConfig) -> str:
    """The run id for these inputs: ``make_id("run", embedding_id, {reducer, clusterer})``."""
    return make_id("run", embedding_id, {"reducer": reducer.cache_key(), "clusterer": clusterer_key(clusterer)})


def _load_embeddings(ws: Workspace, embedding_id: str) -> np.ndarray:
    return load_embeddings(ws, embedding_id, mmap=True)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


def _peak_rss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


def _cache_path(ws: Workspace, embedding_id: str, kind: str, key: dict[str, Any]) -> Path:
    """``<workspace>/cache/<embedding_id>/<kind>/<hash of key>.npy``: removed with its embedding."""
    h = hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]
    return ws.cache_dir(embedding_id) / kind / f"{h}.npy"


def _cached_array(path: Path, compute: Any) -> tuple[np.ndarray, bool]:
    """Load ``path`` if present, else ``compute()`` and save it atomically. Returns (array, hit)."""
    if path.is_file():
        try:
            return np.load(path), True
        except (OSError, ValueError):
            logger.warning("ignoring unreadable cache file %s", path)
    arr = compute()
    save_npy_atomic(path, arr)
    return arr, False


def load_run(ws: Workspace, run_id: str) -> RunResult:
    """The :class:`RunResult` of a saved run (``cached=True``)."""
    m = ws.manifest(check_id(run_id, "run"))
    return RunResult(
        run_id=run_id,
        embedding_id=m.embedding_id,
        corpus_id=m.corpus_id,
        n=m.n,
        k=m.k,
        noise=m.noise,
        metrics=m.metrics,
        timings=m.timings,
        cached=True,
        path=str(ws.path(run_id)),
        notes=m.notes,
        auto_k=m.auto_k,
    )


# --------------------------------------------------------------------------- the stage
def validate_run(reducer: ReducerConfig, clusterer: ClustererConfig) -> None:
    """Check a reducer + clusterer setting before anything runs (:class:`ConfigError`)."""
    reducer.validate()
    validate_clusterer(clusterer)


def cluster(
    ws: Workspace,
    embedding_id: str,
    reducer: ReducerConfig | None = None,
    clusterer: ClustererConfig | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    distance_limit_bytes: int = DISTANCE_LIMIT_BYTES,
    defer_map: bool = False,
) -> RunResult:
    """Cluster an embedding artifact and write a run artifact; a cache hit on repeat.

    ``defer_map=True`` (the pipeline's setting) writes a provisional PCA layout as the 2-D
    map when the final UMAP map is not cached yet, so the clusters are not held back by it;
    :func:`textcluster.cluster.maps.project` computes the final map afterwards.

    Steps: load ``embeddings.npy`` (memory-mapped) -> fit the reducer (on the fit subset
    for UMAP) and map all rows -> :func:`textcluster.cluster.fitting.fit_assign` -> distances,
    medoids, metrics -> the 2-D projection (cached per embedding) -> write the artifact.
    Raises :class:`ConfigError` for impossible settings (k above the rows, UMAP dims not
    below the input dims, an empty embedding, an unknown clusterer parameter), naming the
    value received.
    """
    reducer = reducer or ReducerConfig()
    clusterer = clusterer or ClustererConfig()
    validate_run(reducer, clusterer)
    run_id = run_id_for(embedding_id, reducer, clusterer)
    if ws.cached(run_id):
        return load_run(ws, run_id)
    with ws.lock(run_id):
        if ws.cached(run_id):
            return load_run(ws, run_id)
        return _compute(ws, run_id, embedding_id, reducer, clusterer, progress, cancel, distance_limit_bytes,
                        defer_map)


def _reduce(
    ws: Workspace, X: np.ndarray, embedding_id: str, reducer: ReducerConfig, clusterer: ClustererConfig,
    meter: Meter, cancel: threading.Event | None, notes: list[str],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The clusterer's space ``Z`` (n, d') float32 and the reducer state a saved run needs.

    UMAP results do not depend on k and are cached per (embedding, reducer, seed, fit rows).
    """
    n = X.shape[0]
    compiling = reducer.method == "umap" and not red.is_warm()
    meter.update(0, f"reducing ({reducer.method})" + (" - compiling UMAP" if compiling else ""))
    fit_idx = select_fit_rows(n, clusterer)
    if reducer.method != "umap":
        # smooth is fitted on the fit subset (one exact k-NN search over it), the rest transformed
        sub = fit_idx if reducer.method == "smooth" else None
        fitted, Z = red.fit_reduce(X, reducer, seed=clusterer.seed, fit_idx=sub)
        return np.ascontiguousarray(Z, dtype=np.float32), fitted.state()

    def on_run(i: int, runs: int) -> None:
        check_cancel(cancel, "cluster")
        if runs > 1:
            meter.update(0, f"reducing (umap ensemble: run {i + 1} of {runs})")

    Z, hit = _cached_array(
        _reduced_path(ws, embedding_id, reducer, clusterer, n),
        lambda: red.fit_reduce(X, reducer, seed=clusterer.seed, fit_idx=fit_idx, on_run=on_run)[1],
    )
    if hit:
        notes.append("UMAP-reduced matrix taken from the workspace cache")
    return np.ascontiguousarray(Z, dtype=np.float32), {}


def _reduced_path(ws: Workspace, embedding_id: str, reducer: ReducerConfig, clusterer: ClustererConfig,
                  n: int) -> Path:
    """The cache file of the UMAP-reduced matrix (embedding, reducer settings, seed, fitted rows)."""
    key = {
        "embedding_id": embedding_id,
        "reducer": {k: v for k, v in reducer.cache_key().items() if k != "projection"},
        "seed": clusterer.seed,
        "fit_rows": fit_rows(n, clusterer),
    }
    return _cache_path(ws, embedding_id, "reduced", key)


def _deferred_projection(
    ws: Workspace, X: np.ndarray, embedding_id: str, reducer: ReducerConfig, clusterer: ClustererConfig,
    meter: Meter,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The run's ``coords2d.npy`` and its manifest ``projection`` when the map is deferred: the
    final UMAP map when cached, else a provisional PCA layout naming the final map's file."""
    n = X.shape[0]
    if red.projection_method(reducer, n) != "umap" or n < 4:
        coords, pmethod, hit = _projection(ws, X, embedding_id, reducer, clusterer.seed, meter)
        return coords, {"method": pmethod, "cached": hit}
    space = None
    if reducer.method == "umap" and reducer.runs == 1:  # re-use the reduced space (few dims)
        reduced = _reduced_path(ws, embedding_id, reducer, clusterer, n)
        space = reduced.name if reduced.is_file() else None
    path = maps.final_path(ws, embedding_id, maps.final_key(embedding_id, reducer, clusterer.seed, space))
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            coords = np.load(path, allow_pickle=False)
            if coords.shape == (n, 2):
                return coords.astype(np.float32), {"method": "umap", "cached": True, "file": path.name}
    meter.update(2, "2-D map: provisional PCA layout (the UMAP map follows)")
    return maps.provisional(X), {"method": "pca", "cached": False, "provisional": True,
                                 "final": {"method": "umap", "file": path.name, "space": space}}


def _medoids(labels: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """The member nearest its centre (lowest doc id on ties) of each cluster; -1 when empty."""
    medoids = np.full(k, -1, dtype=np.int64)
    members = np.flatnonzero(labels >= 0)
    if members.size:
        order = members[np.lexsort((members, own[members], labels[members]))]
        first = np.ones(order.size, dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        medoids[labels[order][first]] = order[first]
    return medoids


def _metrics(
    ws: Workspace, corpus_id: str | None, X: np.ndarray, labels: np.ndarray, seed: int, notes: list[str]
) -> dict[str, Any]:
    """Scores of the run: against the corpus labels when it has them, and the label-free ones
    in the embedding space (not the reduced one), as :func:`evaluate.evaluate_run` reports them:
    one number per run, comparable across reducers; the manifest names the space."""
    n = labels.shape[0]
    metrics: dict[str, Any] = {}
    ref = met.reference_labels(ws, corpus_id, n)
    if ref is not None and ref[1].any():
        truth, has = ref
        metrics.update(met.supervised(truth, labels[has]))
        if not has.all():
            notes.append(f"metrics against labels use the {int(has.sum())} labelled rows of {n}")
    metrics.update(met.embedding_scores(X, labels, seed=seed))
    return metrics


def _projection(
    ws: Workspace, X: np.ndarray, embedding_id: str, reducer: ReducerConfig, seed: int, meter: Meter
) -> tuple[np.ndarray, str, bool]:
    """The 2-D plot coordinates (n, 2), the method used and whether they came from the cache.

    They depend on the embedding and the projection settings, not on k, so they are cached
    per embedding.
    """
    n = X.shape[0]
    pmethod = red.projection_method(reducer, n)
    pkey = {
        "embedding_id": embedding_id,
        "method": pmethod,
        "seed": seed,
        **({"n_neighbors": reducer.n_neighbors, "min_dist": reducer.min_dist, "metric": reducer.metric} if pmethod == "umap" else {}),
    }
    path = _cache_path(ws, embedding_id, "projection", pkey)
    compiling = pmethod == "umap" and not red.is_warm() and not path.exists()
    meter.update(2, f"2-D map ({pmethod})" + (" - compiling UMAP on first use" if compiling else ""))
    coords, hit = _cached_array(
        path,
        lambda: red.project_2d(X, ReducerConfig(**{**reducer.to_dict(), "projection": pmethod}), seed=seed),
    )
    return np.asarray(coords, dtype=np.float32), pmethod, hit


def _compute(
    ws: Workspace,
    run_id: str,
    embedding_id: str,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    distance_limit_bytes: int,
    defer_map: bool = False,
) -> RunResult:
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    t = time.perf_counter()
    emb_manifest = ws.manifest(embedding_id)
    X = _load_embeddings(ws, embedding_id)
    if X.ndim != 2:
        raise ConfigError(f"embedding {embedding_id} has shape {X.shape}; expected (n, dim)")
    n, dim = X.shape
    if n == 0:
        raise ConfigError(f"embedding {embedding_id} is empty (n_samples=0); nothing to cluster")
    red.check_reducer(reducer, n, dim)
    check_clusterer(clusterer, n)
    info = get_clusterer(clusterer.method)
    corpus_id = emb_manifest.corpus_id
    timings["load"] = time.perf_counter() - t
    meter = Meter("cluster", 4, progress, estimate=False)
    check_cancel(cancel, "cluster")

    t = time.perf_counter()
    Z, reducer_state = _reduce(ws, X, embedding_id, reducer, clusterer, meter, cancel, notes)
    timings["reduce"] = time.perf_counter() - t
    check_cancel(cancel, "cluster")

    fit_cfg, auto = clusterer, None
    if info.uses_k and clusterer.k == "auto":
        # chosen on the embedding, not on Z: the choice must not depend on the reducer (a UMAP
        # layout changes with its seed and hurts some corpora; docs/clustering.md)
        t = time.perf_counter()
        meter.update(1, "choosing k (silhouette sweep)")
        auto = choose_k(X, k_range=clusterer.k_range, seed=clusterer.seed, progress=progress, cancel=cancel)
        fit_cfg = replace(clusterer, k=auto.chosen)
        timings["auto_k"] = time.perf_counter() - t
        notes.append(f"k={auto.chosen} chosen automatically ({auto.method} over k={auto.candidates[0]}"
                     f"..{auto.candidates[-1]}, {len(auto.candidates)} candidates)")
        if auto.warning:
            notes.append(auto.warning)

    t = time.perf_counter()
    meter.update(1, f"fitting {clusterer.method}")
    # self-training reports its epochs (its own totals) through the same callback
    out = fit_assign(Z, fit_cfg, progress=progress if info.takes_hooks else None, cancel=cancel)
    labels, centers = out.labels, out.centers
    k = int(centers.shape[0])
    timings["cluster"] = time.perf_counter() - t
    check_cancel(cancel, "cluster")

    stability = None
    if clusterer.stability is not None and k:
        stability = _stability(Z, labels, fit_cfg, k, cancel)
        timings["stability"] = stability["seconds"]

    t = time.perf_counter()
    own, _ = own_and_nearest(Z, labels, centers)
    scores = outlier_scores(labels, own)
    outliers_info, thr = None, None
    if clusterer.outliers is not None and k:
        before = labels < 0
        labels = mark_outliers(labels, scores, clusterer.outliers)
        thr = thresholds(labels, own, k, clusterer.outliers)
        outliers_info = {"q": float(clusterer.outliers), "marked": int(np.sum((labels < 0) & ~before))}
    found = int(np.unique(labels[labels >= 0]).size)
    hz = hier.linkage(centers) if k >= 2 else np.zeros((0, 4))
    write_dcd = k > 0 and n * k * 4 <= distance_limit_bytes
    if k and not write_dcd:
        notes.append(
            f"data_center_distance.npy skipped: n*k*4 = {n * k * 4} bytes is above the limit of "
            f"{distance_limit_bytes} bytes; distances.npy holds each row's own-centre distance"
        )
    cpd = np.sqrt(sq_distances(centers, centers)) if k else np.zeros((0, 0), np.float32)
    np.fill_diagonal(cpd, 0.0)
    sizes = np.bincount(labels[labels >= 0], minlength=k) if k else np.zeros(0, np.int64)
    medoids = _medoids(labels, own, k)
    metrics = _metrics(ws, corpus_id, X, labels, clusterer.seed, notes)
    timings["metrics"] = time.perf_counter() - t
    check_cancel(cancel, "cluster")

    t = time.perf_counter()
    if defer_map:
        coords, projection = _deferred_projection(ws, X, embedding_id, reducer, clusterer, meter)
    else:
        coords, pmethod, phit = _projection(ws, X, embedding_id, reducer, clusterer.seed, meter)
        projection = {"method": pmethod, "cached": phit}
    timings["project"] = time.perf_counter() - t

    t = time.perf_counter()
    meter.update(3, "writing the run")
    model_state: dict[str, np.ndarray] = {}
    if info.assign == "model" and hasattr(out.model, "state"):
        model_state = out.model.state()

    def writer(d: Path) -> None:
        np.save(d / "labels.npy", labels.astype(np.int32))
        np.save(d / "centers.npy", centers.astype(np.float32))
        np.save(d / "distances.npy", own)
        np.save(d / "center_pairwise_distance.npy", cpd.astype(np.float32))
        np.save(d / "coords2d.npy", coords)
        np.save(d / "outlier_score.npy", scores.astype(np.float32))
        np.save(d / "hierarchy.npy", hz)
        if thr is not None:
            np.save(d / "outlier_threshold.npy", thr)
        if out.probabilities is not None:
            np.save(d / "probabilities.npy", out.probabilities.astype(np.float32))
        if out.fit_idx is not None:
            np.save(d / "fit_rows.npy", out.fit_idx.astype(np.int64))
        if write_dcd:
            mm = np.lib.format.open_memmap(d / "data_center_distance.npy", mode="w+", dtype=np.float32, shape=(n, k))
            for s in range(0, n, CHUNK_ROWS):
                mm[s : s + CHUNK_ROWS] = np.sqrt(sq_distances(Z[s : s + CHUNK_ROWS], centers))
            mm.flush()
            del mm
        for folder, arrays in (("reducer", reducer_state), ("model", model_state)):
            if arrays:
                (d / folder).mkdir()
                for name, arr in arrays.items():
                    np.save(d / folder / f"{name}.npy", np.asarray(arr))
        pq.write_table(
            pa.table(
                {
                    "cluster": pa.array(np.arange(k, dtype=np.int32)),
                    "size": pa.array(sizes.astype(np.int64)),
                    "share": pa.array((sizes / n).astype(np.float64)),
                    "medoid_doc_id": pa.array(medoids),
                    **({"stability": pa.array(np.asarray(stability["per_cluster"], dtype=np.float64))}
                       if stability is not None else {}),
                }
            ),
            d / "clusters.parquet",
        )

    timings["total"] = time.perf_counter() - t_all  # updated below with the write
    noise = float(np.mean(labels < 0))
    manifest = RunManifest(
        corpus_id=corpus_id,
        embedding_id=embedding_id,
        encoder=emb_manifest.encoder or None,
        encoder_config=emb_manifest.encoder_config,
        n=n,
        dim=dim,
        space_dim=int(Z.shape[1]),
        k=found,
        k_centers=k,
        noise=noise,
        noise_before_assign=out.noise_before_assign,
        reducer=reducer.to_dict(),
        clusterer=clusterer.to_dict(),
        auto_k=auto.to_dict() if auto is not None else None,
        outliers=outliers_info,
        stability=stability,
        clusterer_params=check_params(clusterer),
        seed=clusterer.seed,
        assign_mode="knn" if reducer.method in KNN_REDUCERS else info.assign,
        can_mark_noise=info.can_mark_noise or clusterer.outliers is not None,
        fit_rows=fit_rows(n, clusterer),
        projection=projection,
        data_center_distance=bool(write_dcd),
        metrics=metrics,
        metrics_space=met.METRICS_SPACE,
        timings=timings,
        versions=_versions(),
        notes=notes,
        backend=getattr(out.model, "backend_", None),
        history=out.history,
    )

    def write_then_time(d: Path) -> None:
        writer(d)
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_all

    def final_manifest() -> RunManifest:
        # Workspace.write asks for the manifest after the files are written, so the
        # file-writing time, the total and the peak memory go into the one manifest write.
        return replace(manifest, timings=dict(timings), peak_rss_bytes=_peak_rss_bytes())

    ws.write(run_id, final_manifest, write_then_time, parents=[embedding_id])
    meter.update(4, "done")
    return RunResult(
        run_id=run_id,
        embedding_id=embedding_id,
        corpus_id=corpus_id,
        n=n,
        k=found,
        noise=noise,
        metrics=metrics,
        timings=timings,
        cached=False,
        path=str(ws.path(run_id)),
        notes=notes,
        auto_k=auto.to_dict() if auto is not None else None,
    )


def _stability(
    Z: np.ndarray, labels: np.ndarray, cfg: ClustererConfig, k: int, cancel: threading.Event | None
) -> dict[str, Any]:
    """Refit ``cfg`` (k resolved) with seeds ``seed + 1 .. seed + N - 1`` on the same ``Z`` and
    average each cluster's best-match Jaccard (:mod:`textcluster.cluster.stability`)."""
    t = time.perf_counter()
    n_seeds = int(cfg.stability or 0)
    per = []
    for i in range(1, n_seeds):
        check_cancel(cancel, "cluster")
        rerun = fit_assign(Z, replace(cfg, seed=cfg.seed + i, stability=None, outliers=None), cancel=cancel)
        per.append(stab.best_match_jaccard(labels, rerun.labels, k))
    per_cluster = stab.summarize(per)
    finite = per_cluster[np.isfinite(per_cluster)]
    return {
        "seeds": n_seeds,
        "per_cluster": [None if not np.isfinite(v) else round(float(v), 4) for v in per_cluster],
        "mean": round(float(finite.mean()), 4) if finite.size else None,
        "unstable": [int(c) for c in np.flatnonzero(np.nan_to_num(per_cluster, nan=1.0) < stab.UNSTABLE)],
        "threshold": stab.UNSTABLE,
        "seconds": round(time.perf_counter() - t, 3),
    }


# --------------------------------------------------------------------------- assign
def _identical_rows(X: np.ndarray, V: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    """``{i: j}`` for each ``i`` in ``rows`` whose vector ``V[i]`` equals run row ``X[j]`` (first j).

    Compared byte for byte after casting ``V`` to ``X``'s dtype (float16 embeddings); ``X``
    (n, d), possibly memory-mapped, is scanned once in chunks.
    """
    want: dict[bytes, list[int]] = {}
    Vc = np.ascontiguousarray(np.asarray(V[rows]).astype(X.dtype))
    for i, row in zip(rows.tolist(), Vc, strict=True):
        want.setdefault(row.tobytes(), []).append(i)
    out: dict[int, int] = {}
    for s in range(0, X.shape[0], CHUNK_ROWS):
        block = np.ascontiguousarray(X[s : s + CHUNK_ROWS])
        for j, row in enumerate(block):
            found = want.pop(row.tobytes(), None)
            if found is not None:
                out.update(dict.fromkeys(found, s + j))
        if not want:
            break
    return out


@dataclass
class Assigner:
    """Everything that labels new vectors under a saved run, read once from its folder.

    Plain arrays (picklable: the Ray engine ships one to each worker). ``mode`` is the run's
    ``assign_mode``; ``centers`` (k, d) in the clusterer's space; ``pca``: the PCA reducer's
    state, when the run has one; ``model``: GMM parameters (``model`` mode); ``X`` (n, dim)
    and ``run_labels`` (n,): the embedding and the run's labels (``knn`` mode only);
    ``outlier_threshold`` (k,): for a run made with ``outliers=Q``, each cluster's farthest kept
    distance (a new vector farther from its centre is noise).
    """

    run_id: str
    dim: int
    mode: str
    centers: np.ndarray | None = None
    pca: dict[str, np.ndarray] | None = None
    model: dict[str, np.ndarray] | None = None
    X: np.ndarray | None = None
    run_labels: np.ndarray | None = None
    label_map: dict[str, Any] | None = None
    parent: Assigner | None = None
    outlier_threshold: np.ndarray | None = None

    def assign(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (m,) int32 and distances (m,) float32 of vectors ``V`` (m, dim); row-wise,
        so labelling a corpus chunk by chunk gives the same result as all at once."""
        V = np.ascontiguousarray(V, dtype=np.float32)
        if V.ndim != 2 or V.shape[1] != self.dim:
            raise ConfigError(f"vectors of shape {V.shape} do not match the run's dim={self.dim}")
        if V.shape[0] == 0:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        if self.mode == "knn":
            X, run_labels = self.X, np.asarray(self.run_labels)
            labels, dist = knn_labels(X, run_labels, V, k=ASSIGN_KNN)
            # float32 distances of a row to itself come out up to ~1e-3 (not 0), so candidates
            # for "identical to a run row" are found with a loose bound, then checked byte-exactly
            norms = np.linalg.norm(V, axis=1)
            cand = np.flatnonzero(dist <= 1e-2 * np.maximum(norms, 1e-12))
            if cand.size:
                hit = _identical_rows(X, V, cand)
                if hit:
                    rows = np.fromiter(hit.keys(), np.int64, len(hit))
                    labels[rows] = run_labels[np.fromiter(hit.values(), np.int64, len(hit))]
                    dist[rows] = 0.0
            return labels, dist
        Z = V if self.pca is None else red.PCAReducer.from_state(self.pca).transform(V)
        if self.mode == "map":
            # a version (cluster.versions): the parent's answer, then the version's label map
            base_labels, base_dist = self.parent.assign(V)
            return _map_assignment(self.label_map or {}, self.centers, base_labels, base_dist, Z)
        if self.mode == "model":
            labels = GMMClusterer.from_state(self.model).predict(Z)
            return labels, np.sqrt(sq_distances(Z, self.centers)[np.arange(Z.shape[0]), labels])
        labels, dist = nearest_center(Z, self.centers)
        if self.outlier_threshold is not None:  # beyond its cluster's farthest kept member: noise
            far = np.nan_to_num(self.outlier_threshold[labels], nan=-1.0) < dist
            labels = np.where(far, -1, labels).astype(np.int32)
        return labels, dist


def load_assigner(ws: Workspace, run_id: str) -> Assigner:
    """The :class:`Assigner` of a saved run (a ``knn`` run's embedding stays memory-mapped)."""
    m = ws.manifest(check_id(run_id, "run"))
    mode = m.assign_mode
    if mode == "knn":
        X = _load_embeddings(ws, m.embedding_id)
        run_labels = np.asarray(np.load(ws.file(run_id, "labels.npy"), mmap_mode="r"))
        return Assigner(run_id, m.dim, mode, X=X, run_labels=run_labels)
    rdir = ws.path(run_id) / "reducer"
    pca = {p.stem: np.load(p) for p in rdir.glob("*.npy")} if m.reducer.get("method") == "pca" else None
    model = {p.stem: np.load(p) for p in (ws.path(run_id) / "model").glob("*.npy")} if mode == "model" else None
    if mode == "map":  # a version: its parent's assigner, then its label map
        return Assigner(run_id, m.dim, mode, np.load(ws.file(run_id, "centers.npy")), pca,
                        label_map=dict(m.label_map or {}), parent=load_assigner(ws, m.parent_run))
    thr_path = ws.path(run_id) / "outlier_threshold.npy"
    thr = np.load(thr_path) if thr_path.is_file() else None
    return Assigner(run_id, m.dim, mode, np.load(ws.file(run_id, "centers.npy")), pca, model,
                    outlier_threshold=thr)


def assign_vectors(ws: Workspace, run_id: str, V: np.ndarray) -> AssignResult:
    """Label embedding vectors ``V`` (m, dim) with a saved run, without refitting.

    ``V`` must come from the run's encoder config (same model, same normalisation). A
    row identical to one of the run's rows gets that row's label.
    """
    t0 = time.perf_counter()
    a = load_assigner(ws, run_id)
    labels, dist = a.assign(V)
    return AssignResult(run_id, labels, dist, a.mode, time.perf_counter() - t0)


def _map_assignment(
    label_map: dict[str, Any], centers: np.ndarray, parent_labels: np.ndarray, parent_dist: np.ndarray,
    Z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and distances under a version of rows its parent labelled ``parent_labels``.

    ``label_map``: parent cluster (text) -> the version's id (distance to its centre in
    ``Z``'s space), a list of ids (the nearest of those centres), or -1 (noise; the parent's
    distance kept). Parent noise stays noise.
    """
    out = np.full(parent_labels.shape[0], -1, dtype=np.int32)
    dist = np.asarray(parent_dist, dtype=np.float32).copy()
    for p in np.unique(parent_labels).tolist():
        if p < 0:
            continue
        rows = np.flatnonzero(parent_labels == p)
        target = label_map.get(str(p), -1)
        if isinstance(target, list):
            cand = np.asarray(target, dtype=np.int64)
            if cand.size == 0:
                continue
            lab, d = nearest_center(Z[rows], centers[cand])
            out[rows] = cand[lab]
            dist[rows] = d
        elif int(target) >= 0:
            out[rows] = int(target)
            diff = Z[rows] - centers[int(target)]
            dist[rows] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out, dist


def encoder_config_of(ws: Workspace, run_id: str) -> EncoderConfig:
    """The encoder config the run's embedding was made with (from the embedding manifest)."""
    m = ws.manifest(check_id(run_id, "run"))
    enc = m.encoder_config or ws.manifest(m.embedding_id).encoder_config
    if not isinstance(enc, dict):
        raise StoreError(f"run {run_id} does not record its encoder config; cannot embed new texts")
    return EncoderConfig.from_dict(enc)


def assign(
    ws: Workspace, run_id: str, texts: list[str], progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> AssignResult:
    """Label new ``texts`` with a saved run, without refitting.

    The texts are encoded with the run's encoder config (:func:`textcluster.embed.engine.encode_texts`,
    which also reloads a corpus-fitted encoder's state such as tfidf's vocabulary), then
    labelled by the run's :class:`Assigner`, ``chunk_rows`` rows at a time (the encoder
    config's; the same chunks the Ray engine labels, so its results are the same).
    """
    if not texts:
        raise ConfigError("no texts to assign (got an empty list)")
    t0 = time.perf_counter()
    m = ws.manifest(check_id(run_id, "run"))
    cfg = encoder_config_of(ws, run_id)
    V = encode_texts(list(texts), cfg, progress=progress, ws=ws, embedding_id=m.embedding_id, cancel=cancel)
    a = load_assigner(ws, run_id)
    labels = np.empty(len(texts), np.int32)
    dist = np.empty(len(texts), np.float32)
    for s in range(0, len(texts), cfg.chunk_rows):  # the chunks the Ray engine labels one by one
        labels[s : s + cfg.chunk_rows], dist[s : s + cfg.chunk_rows] = a.assign(V[s : s + cfg.chunk_rows])
    return AssignResult(run_id, labels, dist, a.mode, time.perf_counter() - t0)
