"""Label-free steps that make sentence embeddings cluster better.

:func:`neighbor_smooth` replaces each vector by the mean of itself and its nearest
neighbours (cosine), then L2-normalises. Short texts are noisy samples of their
topic; averaging over the k-NN graph pulls each point towards the dense core of its
topic, much as UMAP's graph does, at a fraction of the cost (one exact k-NN search)
and without leaving the embedding space, so centres, distances and nearest-centre
assignment keep their meaning. :func:`knn_indices` is the search it uses.

:func:`combine_views` concatenates several L2-normalised views (for example sentence
embeddings and a TF-IDF/SVD view) with weights that sum to 1, so the cosine of the
result is the weighted mean of the views' cosines.

:class:`GraphWardClusterer` is ward agglomerative clustering restricted to the k-NN
graph: clusters grow along dense regions, so small topics survive next to big ones
(where k-means splits the big ones to even out sizes).

Measured effects are in ``docs/selftrain.md`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from textcluster.errors import ConfigError

log = logging.getLogger(__name__)

_CHUNK = 4096  # query rows per block in the numpy k-NN fallback


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` (n, d) scaled to unit L2 norm (all-zero rows stay zero); float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, 1e-12)).astype(np.float32)


def knn_indices(X: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Indices (n, n_neighbors + 1) int64 of each row's nearest rows by cosine, itself first.

    Exact search: faiss's flat inner-product index when installed, blocked numpy
    otherwise. Rows are L2-normalised for the search. Ties are broken by row index,
    so the result is deterministic.
    """
    X = _check(X)
    n = X.shape[0]
    if not 1 <= n_neighbors < n:
        raise ConfigError(f"n_neighbors={n_neighbors} should be in [1, n_samples - 1={n - 1}]")
    Xn = np.ascontiguousarray(l2_normalize(X))
    m = n_neighbors + 1
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = faiss.IndexFlatIP(Xn.shape[1])
        index.add(Xn)
        _, idx = index.search(Xn, m)
        idx = idx.astype(np.int64)
    else:
        idx = np.empty((n, m), dtype=np.int64)
        for s in range(0, n, _CHUNK):
            sims = Xn[s : s + _CHUNK] @ Xn.T
            part = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            order = np.lexsort((part, -np.take_along_axis(sims, part, axis=1)), axis=1)
            idx[s : s + _CHUNK] = np.take_along_axis(part, order, axis=1)
    # Put each row itself first (duplicates may tie with it).
    rows = np.arange(n)
    self_pos = (idx == rows[:, None]).argmax(axis=1)
    has_self = idx[rows, self_pos] == rows
    idx[rows[has_self], self_pos[has_self]] = idx[rows[has_self], 0]
    idx[:, 0] = rows
    return idx


def neighbor_smooth(X: np.ndarray, n_neighbors: int = 10, *, normalize: bool = True) -> np.ndarray:
    """Each row of ``X`` (n, d) replaced by the mean of itself and its ``n_neighbors`` cosine
    nearest neighbours; L2-normalised when ``normalize`` (default True). Returns float32 (n, d).

    ``n_neighbors`` (default 10) is clipped to ``n - 1``; 0 returns a normalised copy.
    """
    X = _check(X)
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
        self.fit_X_ = _check(X)
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
        if n == 0:
            return l2_normalize(X)
        A, B = l2_normalize(X), l2_normalize(self.fit_X_)
        out = np.empty_like(X)
        for s in range(0, X.shape[0], _CHUNK):
            sims = A[s : s + _CHUNK] @ B.T
            idx = np.argpartition(-sims, n - 1, axis=1)[:, :n]
            out[s : s + _CHUNK] = (X[s : s + _CHUNK] + self.fit_X_[idx].sum(axis=1)) / (n + 1)
        return l2_normalize(out)

    def state(self) -> dict[str, np.ndarray]:
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
    views = [_check(v) for v in views]
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


def knn_graph(X: np.ndarray, n_neighbors: int = 10) -> Any:
    """Sparse (n, n) CSR connectivity: row i has ones at its ``n_neighbors`` cosine neighbours."""
    from scipy import sparse

    idx = knn_indices(X, n_neighbors)[:, 1:]
    n = idx.shape[0]
    rows = np.repeat(np.arange(n), idx.shape[1])
    return sparse.csr_matrix(
        (np.ones(rows.shape[0], np.float32), (rows, idx.ravel())), shape=(n, n)
    )


class GraphWardClusterer:
    """Ward agglomerative clustering restricted to the k-NN graph (cosine neighbours).

    Merges only clusters that touch in the graph, so a cluster follows the dense
    regions of the embedding space instead of being a ball around a centre: small
    and elongated topics survive next to big ones, where k-means splits the big
    ones. Deterministic (no random step; ``seed`` is accepted for the common interface).
    Cost: one exact k-NN search plus scikit-learn's sparse ward, seconds for 20k rows;
    memory O(n * n_neighbors).

    Fitted: ``labels_`` (n,) int64, ``cluster_centers_`` (k, d) float32 (member means),
    ``fit_X_`` (for :meth:`predict`, the nearest fitted row's cluster).
    """

    can_mark_noise = False

    def __init__(self, k: int = 20, seed: int = 0, *, n_neighbors: int = 10) -> None:
        self.k, self.seed, self.n_neighbors = k, seed, n_neighbors

    def fit(self, X: np.ndarray) -> GraphWardClusterer:
        """Cluster ``X`` (n, d); returns self."""
        import warnings

        from sklearn.cluster import AgglomerativeClustering

        X = _check(X)
        if not isinstance(self.k, (int, np.integer)) or not 1 <= self.k <= X.shape[0]:
            raise ConfigError(f"k={self.k!r} should be an integer in [1, n_samples={X.shape[0]}]")
        if self.n_neighbors < 1:
            raise ConfigError(f"n_neighbors={self.n_neighbors} should be >= 1")
        graph = knn_graph(X, min(self.n_neighbors, X.shape[0] - 1))
        with warnings.catch_warnings():
            # A graph in several pieces is completed by scikit-learn; that is expected here.
            warnings.filterwarnings("ignore", message=".*connected components.*")
            model = AgglomerativeClustering(self.k, linkage="ward", connectivity=graph).fit(X)
        self.labels_ = model.labels_.astype(np.int64)
        self.cluster_centers_ = np.stack(
            [X[self.labels_ == j].mean(axis=0) for j in range(self.k)]
        ).astype(np.float32)
        self.fit_X_ = X
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (n,) int64 of new rows: that of their nearest fitted row (cosine)."""
        if not hasattr(self, "labels_"):
            raise ConfigError("this GraphWardClusterer is not fitted yet: call fit(X) first")
        X = _check(X) if np.asarray(X).shape[0] >= 2 else np.asarray(X, dtype=np.float32)
        A, B = l2_normalize(X), l2_normalize(self.fit_X_)
        out = np.empty(A.shape[0], dtype=np.int64)
        for s in range(0, A.shape[0], _CHUNK):
            out[s : s + _CHUNK] = self.labels_[(A[s : s + _CHUNK] @ B.T).argmax(axis=1)]
        return out


def _check(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ConfigError(f"X should be a 2-D matrix with at least 2 rows; got shape {X.shape}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise ConfigError("X contains NaN or infinite values")
    return X
