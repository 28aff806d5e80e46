"""Agglomerative (hierarchical) clusterer (scikit-learn), fitted on a subset."""

from __future__ import annotations

import numpy as np

from textcluster.cluster.neighbors import knn_labels
from textcluster.cluster.protocol import ClustererInfo, Param

#: Memory is O(n^2): fitted on at most this many rows unless fit_size says otherwise.
AGGLOMERATIVE_MAX_FIT = 20_000
LINKAGES = ("ward", "complete", "average", "single")


class AgglomerativeClusterer:
    """Agglomerative clustering (``linkage`` ward by default) into ``k`` clusters.

    Rows outside the fit subset join their nearest fitted row's cluster. Fitted:
    ``labels_`` (n,) int32, ``fit_X_`` (the fitted rows).
    """

    def __init__(self, k: int, seed: int = 0, linkage: str = "ward") -> None:
        self.k, self.seed, self.linkage = k, seed, linkage

    def fit(self, X: np.ndarray) -> AgglomerativeClusterer:
        """Cluster ``X`` (n, d); returns self."""
        from sklearn.cluster import (
            AgglomerativeClustering,  # lazily: importing scikit-learn's clusterers takes ~2 s
        )

        X = np.ascontiguousarray(X, dtype=np.float32)
        m = AgglomerativeClustering(n_clusters=self.k, linkage=self.linkage).fit(X)
        self.labels_ = m.labels_.astype(np.int32)
        self.fit_X_ = X
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (m,) int32 of new rows: their nearest fitted row's."""
        return knn_labels(self.fit_X_, self.labels_, X, k=1)[0]


AGGLOMERATIVE = ClustererInfo(
    name="agglomerative",
    help=f"agglomerative (ward) on a subset of at most {AGGLOMERATIVE_MAX_FIT} rows; needs k",
    factory=lambda cfg, params, hooks: AgglomerativeClusterer(cfg.k, cfg.seed, **params),
    fields=("k",),
    params={"linkage": Param("str", "ward", "how clusters are merged", choices=LINKAGES)},
    assign="knn",
    max_fit=AGGLOMERATIVE_MAX_FIT,
)
