"""Dimension reduction before clustering, and the 2-D projection for plots.

Reducers share one small interface (scikit-learn style): ``fit(X) -> self``,
``transform(X) -> (n, d) float32``, ``state() -> dict of arrays`` (what a saved run
needs to map new vectors without pickle) and ``n_components_``.

- ``none``: the identity.
- ``pca``: exact PCA from the d x d covariance, accumulated in chunks (bounded memory,
  deterministic, no random solver); the state is ``mean`` and ``components``.
- ``umap``: umap-learn with a fixed ``random_state`` (single-threaded, reproducible).
  Its fitted graph cannot be saved without pickle, so a UMAP run assigns new texts by
  k-NN in the embedding space instead (see :mod:`textcluster.cluster.runs`). ``runs > 1`` fits
  an ensemble of UMAPs with distinct seeds and concatenates their coordinates.
- ``smooth``: :class:`textcluster.cluster.smooth.NeighborSmoother`, each vector replaced by the
  mean of itself and its ``smooth_neighbors`` cosine nearest neighbours, renormalised
  (same dimension). Its transform needs the fitted rows, which are the embedding
  itself, so a smooth run also assigns new texts by k-NN in the embedding space.

UMAP's numba functions compile on first use in every new process (17-90 s here).
:func:`warm_up` pays that once, on a tiny input; an app calls it in a background thread
at start, and a CLI batch runs all its stages in one process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

import numpy as np

from textcluster.cluster.smooth import NeighborSmoother
from textcluster.config import ReducerConfig
from textcluster.errors import ConfigError

logger = logging.getLogger(__name__)

#: Rows per chunk when streaming a (possibly memory-mapped) matrix.
CHUNK_ROWS = 65_536
#: ``projection="auto"`` uses UMAP up to this many rows and PCA above.
AUTO_UMAP_MAX_ROWS = 200_000
#: The 2-D UMAP projection is fitted on at most this many rows; the rest are transformed.
PROJECTION_FIT_ROWS = 50_000


def _umap_module() -> Any:
    try:
        import umap
    except ImportError as e:  # pragma: no cover - umap-learn is a dependency
        raise ConfigError(
            "reducer='umap' needs umap-learn: pip install umap-learn (or use --reducer pca)"
        ) from e
    return umap


class Reducer(Protocol):
    """What every reducer offers."""

    n_components_: int

    def fit(self, X: np.ndarray) -> Reducer: ...

    def transform(self, X: np.ndarray) -> np.ndarray: ...

    def state(self) -> dict[str, np.ndarray]: ...


class IdentityReducer:
    """Keeps the vectors as they are (as float32)."""

    def __init__(self) -> None:
        self.n_components_ = 0

    def fit(self, X: np.ndarray) -> IdentityReducer:
        self.n_components_ = int(X.shape[1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {}


class PCAReducer:
    """Exact PCA to ``dims`` dimensions.

    The mean and the d x d covariance are accumulated over chunks of ``CHUNK_ROWS / 4``
    rows (float32 products within a chunk, float64 sums across chunks), then diagonalised with ``numpy.linalg.eigh``; each component's sign is
    fixed so that its largest-magnitude entry is positive. Deterministic and memory-light
    (a memory-mapped 1M x 384 matrix is read once, in chunks).

    Fitted attributes: ``mean_`` (d,), ``components_`` (dims, d), ``explained_variance_ratio_``.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims

    def fit(self, X: np.ndarray) -> PCAReducer:
        n, d = X.shape
        if self.dims > min(n, d):
            raise ConfigError(f"PCA dims={self.dims} should be <= min(n_samples={n}, dim={d})")
        step = max(1, CHUNK_ROWS // 4)
        total = np.zeros(d, dtype=np.float64)
        for s in range(0, n, step):
            total += np.asarray(X[s : s + step], dtype=np.float32).sum(axis=0, dtype=np.float64)
        mean = total / n
        mean32 = mean.astype(np.float32)
        cov = np.zeros((d, d), dtype=np.float64)
        for s in range(0, n, step):
            # float32 BLAS inside a chunk, float64 across chunks: fast and accurate enough
            c = np.asarray(X[s : s + step], dtype=np.float32) - mean32
            cov += (c.T @ c).astype(np.float64)
        cov /= max(n - 1, 1)
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals)[::-1][: self.dims]
        comps = vecs[:, order].T
        signs = np.sign(comps[np.arange(comps.shape[0]), np.argmax(np.abs(comps), axis=1)])
        signs[signs == 0] = 1.0
        comps *= signs[:, None]
        self.mean_ = mean.astype(np.float32)
        self.components_ = np.ascontiguousarray(comps, dtype=np.float32)
        tot = float(vals.clip(min=0).sum())
        self.explained_variance_ratio_ = (vals[order].clip(min=0) / tot) if tot > 0 else vals[order] * 0
        self.n_components_ = self.dims
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.components_.shape[0]), dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            c = np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float32) - self.mean_
            out[s : s + c.shape[0]] = c @ self.components_.T
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "components": self.components_}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> PCAReducer:
        """Rebuild a fitted PCA from :meth:`state` (as saved in a run's ``reducer/``)."""
        self = cls(int(state["components"].shape[0]))
        self.mean_ = np.asarray(state["mean"], dtype=np.float32)
        self.components_ = np.asarray(state["components"], dtype=np.float32)
        self.n_components_ = self.dims
        return self


class UMAPReducer:
    """UMAP to ``dims`` dimensions with a fixed seed (reproducible, single-threaded).

    ``runs > 1`` makes a UMAP ensemble: ``runs`` UMAPs with seeds ``seed * runs``,
    ``seed * runs + 1``, ... (so two seeds never share a layout; ``runs = 1`` uses ``seed``
    itself) are fitted on the same rows and their coordinates concatenated, so the output
    has ``dims * runs`` columns. Each layout is one random draw of the same k-NN graph;
    distances in the concatenation average over the draws, which is what k-means then
    minimises. ``on_run(i, runs)`` (optional) is called before fitting run ``i``.
    """

    def __init__(
        self,
        dims: int,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        seed: int = 0,
        runs: int = 1,
        on_run: Any = None,
    ) -> None:
        self.dims, self.n_neighbors, self.min_dist, self.metric, self.seed = (
            dims,
            n_neighbors,
            min_dist,
            metric,
            seed,
        )
        self.runs = runs
        self.on_run = on_run

    def fit(self, X: np.ndarray) -> UMAPReducer:
        umap = _umap_module()
        n = X.shape[0]
        X = np.asarray(X, dtype=np.float32)
        self.models_: list[Any] = []
        parts = []
        for i in range(self.runs):
            if self.on_run is not None:
                self.on_run(i, self.runs)
            model = umap.UMAP(
                n_components=self.dims,
                n_neighbors=min(self.n_neighbors, max(n - 1, 2)),
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.seed * self.runs + i,
                n_jobs=1,  # a seed makes UMAP single-threaded anyway; saying so avoids its warning
                low_memory=True,
            )
            parts.append(np.asarray(model.fit_transform(X), dtype=np.float32))
            self.models_.append(model)
        self.model_ = self.models_[0]
        self.embedding_ = np.ascontiguousarray(np.hstack(parts), dtype=np.float32)
        self.n_components_ = self.dims * self.runs
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.dims * len(self.models_)), dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            chunk = np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float32)
            for i, model in enumerate(self.models_):
                out[s : s + chunk.shape[0], i * self.dims : (i + 1) * self.dims] = model.transform(chunk)
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {}


def check_reducer(cfg: ReducerConfig, n: int, dim: int) -> None:
    """Raise :class:`ConfigError` when ``cfg`` cannot reduce an ``n x dim`` matrix."""
    cfg.validate()
    if n < 1:
        raise ConfigError("cannot reduce an empty input (n_samples=0)")
    if cfg.method == "pca" and cfg.dims > min(n, dim):
        raise ConfigError(f"PCA dims={cfg.dims} should be <= min(n_samples={n}, dim={dim})")
    if cfg.method == "smooth" and n < 2:
        raise ConfigError(f"the smooth reducer needs at least 2 rows, got n_samples={n}")
    if cfg.method == "umap":
        if cfg.dims >= dim:
            raise ConfigError(f"UMAP dims={cfg.dims} should be < the input dim={dim}")
        if n < 4:
            raise ConfigError(f"UMAP needs at least 4 rows, got n_samples={n}")


def make_reducer(cfg: ReducerConfig, seed: int = 0, on_run: Any = None) -> Reducer:
    """An unfitted reducer for ``cfg`` (``none`` -> identity, ``pca``, ``umap``, ``smooth``).

    ``on_run``: progress hook of a UMAP ensemble, see :class:`UMAPReducer`."""
    cfg.validate()
    if cfg.method == "none":
        return IdentityReducer()
    if cfg.method == "pca":
        return PCAReducer(cfg.dims)
    if cfg.method == "smooth":
        return NeighborSmoother(cfg.smooth_neighbors)
    return UMAPReducer(cfg.dims, cfg.n_neighbors, cfg.min_dist, cfg.metric, seed, runs=cfg.runs, on_run=on_run)


def fit_reduce(
    X: np.ndarray,
    cfg: ReducerConfig,
    *,
    seed: int = 0,
    fit_idx: np.ndarray | None = None,
    on_run: Any = None,
) -> tuple[Reducer, np.ndarray]:
    """Fit the reducer on ``X[fit_idx]`` (all rows when None) and map every row.

    Returns ``(reducer, Z)`` with ``Z`` (n, d') float32. For UMAP and smooth fitted on a
    subset, the fitted rows keep their fitted coordinates and the others are transformed.
    ``on_run(i, runs)``: called before each UMAP of an ensemble (``cfg.runs``).
    """
    check_reducer(cfg, X.shape[0], X.shape[1])
    red = make_reducer(cfg, seed, on_run=on_run)
    if isinstance(red, IdentityReducer):
        red.fit(X)
        return red, red.transform(X)
    if fit_idx is None or fit_idx.shape[0] >= X.shape[0]:
        red.fit(X)
        if isinstance(red, (UMAPReducer, NeighborSmoother)):
            return red, red.embedding_
        return red, red.transform(X)
    red.fit(np.asarray(X[fit_idx]))
    if isinstance(red, (UMAPReducer, NeighborSmoother)):
        Z = np.empty((X.shape[0], red.n_components_), dtype=np.float32)
        rest = np.setdiff1d(np.arange(X.shape[0]), fit_idx, assume_unique=True)
        Z[fit_idx] = red.embedding_
        Z[rest] = red.transform(np.asarray(X[rest]))
        return red, Z
    return red, red.transform(X)


def projection_method(cfg: ReducerConfig, n: int) -> str:
    """The 2-D projection method actually used for ``n`` rows: ``umap`` or ``pca``."""
    if cfg.projection == "auto":
        return "umap" if n <= AUTO_UMAP_MAX_ROWS else "pca"
    return cfg.projection


def project_2d(
    X: np.ndarray,
    cfg: ReducerConfig,
    *,
    seed: int = 0,
    fit_rows: int = PROJECTION_FIT_ROWS,
) -> np.ndarray:
    """2-D coordinates (n, 2) float32 of ``X`` for plots only.

    ``cfg.projection`` picks UMAP (with the reducer's n_neighbors / min_dist=0.1 at
    least, metric) or PCA; ``auto`` takes UMAP up to :data:`AUTO_UMAP_MAX_ROWS` rows.
    UMAP is fitted on a seeded subset of at most ``fit_rows`` rows and the rest are
    transformed. Tiny inputs (fewer than 4 rows, or 1 dimension) fall back to PCA / zeros.
    """
    n, d = X.shape
    method = projection_method(cfg, n)
    if n < 4 or d < 2:
        out = np.zeros((n, 2), dtype=np.float32)
        if d >= 1 and n >= 1:
            out[:, 0] = np.asarray(X[:, 0], dtype=np.float32)
        return out
    if method == "pca" or d == 2:
        return PCAReducer(2).fit(X).transform(X)
    red = UMAPReducer(2, cfg.n_neighbors, max(cfg.min_dist, 0.1), cfg.metric, seed)
    idx = None
    if n > fit_rows:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=fit_rows, replace=False))
    if idx is None:
        red.fit(X)
        return red.embedding_
    red.fit(np.asarray(X[idx]))
    Z = np.empty((n, 2), dtype=np.float32)
    rest = np.setdiff1d(np.arange(n), idx, assume_unique=True)
    Z[idx] = red.embedding_
    Z[rest] = red.transform(np.asarray(X[rest]))
    return Z


_warm_lock = threading.Lock()
_warm_seconds: float | None = None


def warm_up(metrics: tuple[str, ...] = ("cosine",)) -> float:
    """Compile UMAP's numba functions now, on a tiny input; returns the seconds it took.

    The first UMAP fit and transform in a process compile dozens of numba functions
    (17-90 s on a busy 2-core machine); later calls in the same process are fast.
    Calling this once, e.g. in a background thread when an app starts, moves that cost
    out of the user's first run. ``metrics``: the UMAP metrics to compile for (the
    default config uses cosine). Thread-safe; later calls return at once with 0.0.
    """
    global _warm_seconds
    with _warm_lock:
        if _warm_seconds is not None:
            return 0.0
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        X = rng.normal(size=(256, 16)).astype(np.float32)
        for metric in metrics:
            red = UMAPReducer(2, n_neighbors=10, min_dist=0.1, metric=metric, seed=0).fit(X)
            red.transform(X[:32])
        _warm_seconds = time.perf_counter() - t0
        logger.info("UMAP warm-up took %.1f s", _warm_seconds)
        return _warm_seconds


def is_warm() -> bool:
    """True once :func:`warm_up` has finished in this process."""
    return _warm_seconds is not None
