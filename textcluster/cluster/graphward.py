"""Ward clustering restricted to the k-NN graph: small topics survive next to big ones."""

from __future__ import annotations

import warnings

import numpy as np

from textcluster.cluster.neighbors import check_matrix, knn_graph, nearest
from textcluster.cluster.protocol import ClustererInfo, Param
from textcluster.errors import ConfigError

#: Default cap on fitted rows (about O(n^2) time; 18 s at 20k rows on a busy 2-core machine).
GRAPH_WARD_MAX_FIT = 20_000


class GraphWardClusterer:
    """Ward agglomerative clustering restricted to the k-NN graph (cosine neighbours).

    Merges only clusters that touch in the graph, so a cluster follows the dense
    regions of the embedding space instead of being a ball around a centre: small
    and elongated topics survive next to big ones, where k-means splits the big
    ones. Deterministic (no random step; ``seed`` is accepted for the common interface).
    Cost: one exact k-NN search plus scikit-learn's sparse ward, seconds for 20k rows;
    memory O(n * n_neighbors).

    Fitted: ``labels_`` (n,) int32, ``cluster_centers_`` (k, d) float32 (member means),
    ``fit_X_`` (for :meth:`predict`, the nearest fitted row's cluster).
    """

    can_mark_noise = False

    def __init__(self, k: int = 20, seed: int = 0, *, n_neighbors: int = 10) -> None:
        self.k, self.seed, self.n_neighbors = k, seed, n_neighbors

    def fit(self, X: np.ndarray) -> GraphWardClusterer:
        """Cluster ``X`` (n, d); returns self."""
        from sklearn.cluster import (
            AgglomerativeClustering,  # lazily: importing scikit-learn's clusterers takes ~2 s
        )

        X = check_matrix(X)
        if not isinstance(self.k, int | np.integer) or not 1 <= self.k <= X.shape[0]:
            raise ConfigError(f"k={self.k!r} should be an integer in [1, n_samples={X.shape[0]}]")
        if self.n_neighbors < 1:
            raise ConfigError(f"n_neighbors={self.n_neighbors} should be >= 1")
        graph = knn_graph(X, min(self.n_neighbors, X.shape[0] - 1))
        with warnings.catch_warnings():
            # A graph in several pieces is completed by scikit-learn; that is expected here.
            warnings.filterwarnings("ignore", message=".*connected components.*")
            model = AgglomerativeClustering(self.k, linkage="ward", connectivity=graph).fit(X)
        self.labels_ = model.labels_.astype(np.int32)
        self.cluster_centers_ = np.stack(
            [X[self.labels_ == j].mean(axis=0) for j in range(self.k)]
        ).astype(np.float32)
        self.fit_X_ = X
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (m,) int32 of new rows: that of their nearest fitted row (cosine)."""
        if not hasattr(self, "labels_"):
            raise ConfigError("this GraphWardClusterer is not fitted yet: call fit(X) first")
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.int32)
        _, idx = nearest(self.fit_X_, X, 1, metric="cosine")
        return self.labels_[idx[:, 0]]


GRAPH_WARD = ClustererInfo(
    name="graph-ward",
    help="ward linkage on the k-NN graph; good for many small topics",
    factory=lambda cfg, params, hooks: GraphWardClusterer(cfg.k, cfg.seed, **params),
    fields=("k",),
    params={"n_neighbors": Param("int", 10, "cosine neighbours in the graph", low=1)},
    assign="knn",
    max_fit=GRAPH_WARD_MAX_FIT,
)
