"""The 2-D map of a run, computed after its clusters so it never holds them back.

A run written with ``defer_map=True`` (what the pipeline does: ``textcluster run`` and the
app's jobs) stores a provisional layout in ``coords2d.npy`` (PCA: a fraction of a second)
and names in its manifest's ``projection`` the file the final map will have in the
per-embedding cache (``cache/<embedding_id>/projection/<hash>.npy``). :func:`project` then
computes that map, with progress and an ETA: UMAP is fitted on a seeded subset of
:data:`MAP_FIT_ROWS` rows and the other rows are placed in chunks of
:data:`MAP_CHUNK_ROWS` (the ETA comes from the measured rate of the chunks done). When the
run's reducer is UMAP, the map is a UMAP of that reduced space (a few dimensions: the
neighbour search is much cheaper) rather than of the embedding. :func:`load_map` returns the
final map when it exists, else the provisional one, so readers never wait.

The final map is cached per embedding and settings, not per run: another ``k`` on the same
embedding, or a relaunched job, finds it at once (a run written later takes it as its
``coords2d.npy``).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textcluster.cluster import reduce as red
from textcluster.config import ReducerConfig
from textcluster.embed.engine import load_embeddings
from textcluster.errors import StoreError
from textcluster.progress import Meter, ProgressFn, check_cancel
from textcluster.store import Workspace, canonical_json, check_id, save_npy_atomic

#: Rows UMAP is fitted on for the final map (seeded subset); the others are transformed.
MAP_FIT_ROWS = 5_000
#: Rows placed per chunk after the fit (one progress report, with an ETA, per chunk).
MAP_CHUNK_ROWS = 2_000
#: Rows the provisional PCA layout is fitted on (seeded subset); every row is then projected.
PROVISIONAL_FIT_ROWS = 5_000
#: Format of the final map's cache key (bumped when the recipe changes).
MAP_VERSION = 2
_FILE = re.compile(r"^[0-9a-f]{16}\.npy$")


@dataclass(frozen=True)
class MapResult:
    """What :func:`project` returns: the run, the map's method (``umap`` | ``pca``), whether it
    was already cached, the seconds this call took and the file holding it."""

    run_id: str
    method: str
    cached: bool
    seconds: float
    path: str


def final_key(embedding_id: str, reducer: ReducerConfig, seed: int, space: str | None) -> dict[str, Any]:
    """The cache key of the final UMAP map; ``space`` is the reduced matrix's cache file name
    when the map is a UMAP of the reduced space (None: of the embedding)."""
    return {"embedding_id": embedding_id, "method": "umap", "seed": seed, "n_neighbors": reducer.n_neighbors,
            "min_dist": max(reducer.min_dist, 0.1), "metric": "euclidean" if space else reducer.metric,
            "space": space, "fit_rows": MAP_FIT_ROWS, "version": MAP_VERSION}


def final_path(ws: Workspace, embedding_id: str, key: dict[str, Any]) -> Path:
    """``cache/<embedding_id>/projection/<16 hex>.npy`` for ``key``."""
    h = hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]
    return ws.cache_dir(embedding_id) / "projection" / f"{h}.npy"


def provisional(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """A quick layout (n, 2) float32: PCA of ``X`` (zeros padding for tiny inputs).

    The two components come from a seeded subset of :data:`PROVISIONAL_FIT_ROWS` rows (a
    first picture needs no more), then every row is projected (one pass over ``X``). BLAS
    runs on one thread here: with two threads on a busy 2-core machine a thread that is
    descheduled stalls every product, and this ~0.1 s of work took 0.6-9 s (measured,
    docs/benchmarks.md); one thread takes the same time loaded or not."""
    from threadpoolctl import threadpool_limits

    n = X.shape[0]
    with threadpool_limits(limits=1, user_api="blas"):
        if n <= PROVISIONAL_FIT_ROWS or X.shape[1] < 2:
            return red.project_2d(X, ReducerConfig(projection="pca"))
        idx = np.sort(np.random.default_rng(seed).choice(n, PROVISIONAL_FIT_ROWS, replace=False))
        return red.PCAReducer(2).fit(np.asarray(X[idx], dtype=np.float32)).transform(X)  # transform is chunked


def umap_in_chunks(
    X: np.ndarray, reducer: ReducerConfig, seed: int, metric: str, meter: Meter,
    cancel: threading.Event | None = None, fit_rows: int | None = None, chunk_rows: int | None = None,
) -> np.ndarray:
    """UMAP to 2-D: fitted on a seeded subset of ``fit_rows`` rows (default
    :data:`MAP_FIT_ROWS`), the rest transformed in chunks of ``chunk_rows`` (default
    :data:`MAP_CHUNK_ROWS`); ``meter`` counts rows (so its ETA is the measured rate)."""
    fit_rows = fit_rows or MAP_FIT_ROWS
    chunk_rows = chunk_rows or MAP_CHUNK_ROWS
    n = X.shape[0]
    if n < 4 or X.shape[1] < 2:
        return provisional(np.asarray(X))
    idx = np.arange(n) if n <= fit_rows else np.sort(np.random.default_rng(seed).choice(n, fit_rows, replace=False))
    um = red.UMAPReducer(2, reducer.n_neighbors, max(reducer.min_dist, 0.1), metric, seed)
    compiling = not red.is_warm()
    meter.update(0, f"2-D map: UMAP on {idx.size:,} rows" + (" (compiling UMAP on first use)" if compiling else ""))
    um.fit(np.asarray(X[idx]))
    out = np.empty((n, 2), dtype=np.float32)
    out[idx] = um.embedding_
    done = idx.size
    meter.update(done, "2-D map: placing the other rows")
    rest = np.setdiff1d(np.arange(n), idx, assume_unique=True)
    for s in range(0, rest.size, chunk_rows):
        check_cancel(cancel, "map")
        rows = rest[s : s + chunk_rows]
        out[rows] = um.transform(np.asarray(X[rows]))
        done += rows.size
        meter.update(done)
    return out


def _run_projection(ws: Workspace, run_id: str) -> tuple[Any, dict[str, Any]]:
    m = ws.manifest(check_id(run_id, "run"))
    return m, dict(getattr(m, "projection", None) or {})


def _cached_file(ws: Workspace, embedding_id: str, name: Any) -> Path | None:
    """The final map's path named by a manifest (checked: 16 hex + ``.npy``; a tampered
    manifest never reaches a path join)."""
    if not isinstance(name, str) or not _FILE.match(name):
        return None
    return ws.cache_dir(embedding_id) / "projection" / name


def load_map(ws: Workspace, run_id: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The run's 2-D coordinates (n, 2) float32 and ``{"method", "final"}``: the final map when
    it is computed (cached), else the run's own ``coords2d.npy`` (provisional while
    ``final`` is False)."""
    m, proj = _run_projection(ws, run_id)
    pending = proj.get("final")
    if isinstance(pending, dict):
        path = _cached_file(ws, m.embedding_id, pending.get("file"))
        if path is not None and path.is_file():
            try:
                coords = np.load(path, allow_pickle=False)
                if coords.shape == (m.n, 2):
                    return coords.astype(np.float32, copy=False), {"method": pending.get("method", "umap"),
                                                                   "final": True}
            except (OSError, ValueError):
                pass
    coords = np.load(ws.file(run_id, "coords2d.npy"), allow_pickle=False)
    return coords, {"method": proj.get("method", "pca"), "final": not isinstance(pending, dict)}


def project(
    ws: Workspace, run_id: str, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
) -> MapResult:
    """Compute the final 2-D map of ``run_id`` into the per-embedding cache (a no-op, ``cached``,
    when it is there or when the run's own map is already final). Cancellable between chunks;
    two processes asking for the same map compute it once."""
    t0 = time.perf_counter()
    m, proj = _run_projection(ws, run_id)
    pending = proj.get("final")
    if not isinstance(pending, dict):
        return MapResult(run_id, str(proj.get("method", "pca")), True, time.perf_counter() - t0,
                         str(ws.path(run_id) / "coords2d.npy"))
    path = _cached_file(ws, m.embedding_id, pending.get("file"))
    if path is None:
        raise StoreError(f"run {run_id}: its manifest names no valid map file ({pending.get('file')!r})")
    if path.is_file():
        return MapResult(run_id, "umap", True, time.perf_counter() - t0, str(path))
    with ws.lock(f"_map-{path.stem}"):
        if path.is_file():
            return MapResult(run_id, "umap", True, time.perf_counter() - t0, str(path))
        reducer = ReducerConfig.from_dict(m.reducer)
        space = pending.get("space")
        space_path = _cached_file(ws, m.embedding_id, space) if space else None
        if space_path is not None:
            space_path = space_path.parent.parent / "reduced" / space_path.name
        if space_path is not None and space_path.is_file():
            X = np.load(space_path, mmap_mode="r", allow_pickle=False)
            metric = "euclidean"
        else:
            X = load_embeddings(ws, m.embedding_id)
            metric = reducer.metric
        meter = Meter("map", int(X.shape[0]), progress)
        coords = umap_in_chunks(X, reducer, int(m.seed if m.seed is not None else 0), metric, meter, cancel)
        save_npy_atomic(path, coords.astype(np.float32))
        meter.update(int(X.shape[0]), "2-D map done")
    return MapResult(run_id, "umap", False, time.perf_counter() - t0, str(path))
