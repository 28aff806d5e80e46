"""Label-free steps that make sentence embeddings cluster better.

:func:`neighbor_smooth` replaces each vector by the mean of itself and its nearest
neighbours (cosine), then L2-normalises. Short texts are noisy samples of their
topic; averaging over the k-NN graph pulls each point towards the dense core of its
topic, much as UMAP's graph does, at a fraction of the cost (one exact k-NN search)
and without leaving the embedding space, so centres, distances and nearest-centre
assignment keep their meaning. :class:`NeighborSmoother` is the same as a fitted
transform (the ``smooth`` reducer).

:func:`combine_views` concatenates several L2-normalised views (for example sentence
embeddings and a TF-IDF/SVD view) with weights that sum to 1, so the cosine of the
result is the weighted mean of the views' cosines.

Measured effects are in ``docs/selftrain.md`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from textcluster.cluster.neighbors import check_matrix, knn_indices, l2_normalize, nearest
from textcluster.errors import ConfigError

_CHUNK = 4096  # rows per block when averaging neighbours


def neighbor_smooth(X: np.ndarray, n_neighbors: int = 10, *, normalize: bool = True) -> np.ndarray:
    """Each row of ``X`` (n, d) replaced by the mean of itself and its ``n_neighbors`` cosine
    nearest neighbours; L2-normalised when ``normalize`` (default True). Returns float32 (n, d).

    ``n_neighbors`` (default 10) is clipped to ``n - 1``; 0 returns a normalised copy.
    """
    X = check_matrix(X)
    if n_neighbors < 0:
        raise ConfigError(f"n_neighbors={n_neighbors} should be >= 0")
    n_neighbors = min(n_neighbors, X.shape[0] - 1)
    if n_neighbors == 0:
        return l2_normalize(X) if normalize else X.copy()
    idx = knn_indices(X, n_neighbors)
    out = np.empty_like(X)
    for s in range(0, X.shape[0], _CHUNK):
        out[s : s + _CHUNK] = X[idx[s : s + _CHUNK]].mean(axis=1)
    return l2_normalize(out) if normalize else out


class NeighborSmoother:
    """:func:`neighbor_smooth` as a fitted transform, so new rows get the same treatment.

    ``fit_transform(X)`` equals ``neighbor_smooth(X, n_neighbors)``; ``transform(X_new)``
    replaces each new row by the mean of itself and its ``n_neighbors`` nearest fitted
    rows (cosine), L2-normalised. The reducer interface of :mod:`textcluster.cluster.reduce`
    (fit, transform, ``embedding_``) is followed, so it can sit in the reducer slot;
    ``state()`` is empty because ``transform`` needs the fitted rows themselves
    (a saved run assigns new texts by k-NN over its rows, as after UMAP).

    Fitted: ``fit_X_`` (n, d) float32, ``embedding_`` (n, d) float32 (the smoothed rows).
    """

    def __init__(self, n_neighbors: int = 10) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, X: np.ndarray) -> NeighborSmoother:
        """Smooth ``X`` (n, d) and keep it for :meth:`transform`; returns self."""
        self.fit_X_ = check_matrix(X)
        self.embedding_ = neighbor_smooth(self.fit_X_, self.n_neighbors)
        self.n_components_ = self.fit_X_.shape[1]
        return self

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).embedding_``."""
        return self.fit(X).embedding_

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Smoothed new rows (m, d) float32, each with its nearest fitted rows."""
        if not hasattr(self, "fit_X_"):
            raise ConfigError("this NeighborSmoother is not fitted yet: call fit(X) first")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.fit_X_.shape[1]:
            raise ConfigError(f"X should have shape (m, {self.fit_X_.shape[1]}); got {X.shape}")
        n = min(self.n_neighbors, self.fit_X_.shape[0])
        if n == 0 or X.shape[0] == 0:
            return l2_normalize(X)
        _, idx = nearest(self.fit_X_, X, n, metric="cosine")
        out = np.empty_like(X)
        for s in range(0, X.shape[0], _CHUNK):
            out[s : s + _CHUNK] = (X[s : s + _CHUNK] + self.fit_X_[idx[s : s + _CHUNK]].sum(axis=1)) / (n + 1)
        return l2_normalize(out)

    def state(self) -> dict[str, np.ndarray]:
        """Nothing: the transform needs the fitted rows (the run's own embedding)."""
        return {}


def combine_views(
    views: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """Concatenate views (each (n, d_i)) after L2-normalising them, view i scaled by sqrt(w_i).

    weights: one per view, >= 0, summing to 1 (default: equal). The result (n, sum d_i)
    float32 has unit rows, and its inner products are the weighted sums of the views'
    cosines.
    """
    if not views:
        raise ConfigError("combine_views needs at least one view; got none")
    views = [check_matrix(v) for v in views]
    n = views[0].shape[0]
    if any(v.shape[0] != n for v in views):
        raise ConfigError(f"views should have the same rows; got {[v.shape[0] for v in views]}")
    w = np.full(len(views), 1.0 / len(views)) if weights is None else np.asarray(weights, float)
    if w.shape != (len(views),) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
        raise ConfigError(
            f"weights={list(weights or [])} should be {len(views)} values >= 0 summing to 1"
        )
    return np.hstack(
        [np.sqrt(wi) * l2_normalize(v) for wi, v in zip(w, views, strict=True)]
    ).astype(np.float32)
