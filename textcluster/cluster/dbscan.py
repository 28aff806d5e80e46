"""DBSCAN density clusterer (scikit-learn): a fixed radius, finds k itself, marks noise."""

from __future__ import annotations

import numpy as np

from textcluster.cluster.neighbors import knn_labels
from textcluster.cluster.protocol import ClustererInfo

#: min_samples when none is given (scikit-learn's default).
DEFAULT_MIN_SAMPLES = 5


class DBSCANClusterer:
    """DBSCAN with radius ``eps``; rows outside the fit subset join the nearest core sample
    within ``eps`` (else noise). Deterministic (``seed`` only picks a fit subset upstream).

    Fitted: ``labels_`` (n,) int32, ``core_`` (c, d) core samples, ``core_labels_`` (c,).
    """

    def __init__(self, eps: float = 0.5, min_samples: int | None = None, seed: int = 0) -> None:
        self.eps, self.min_samples, self.seed = eps, min_samples, seed

    def fit(self, X: np.ndarray) -> DBSCANClusterer:
        """Cluster ``X`` (n, d); returns self."""
        from sklearn.cluster import (
            DBSCAN as _SkDBSCAN,  # lazily: importing scikit-learn's clusterers takes ~2 s
        )

        X = np.ascontiguousarray(X, dtype=np.float32)
        m = _SkDBSCAN(eps=self.eps, min_samples=self.min_samples or DEFAULT_MIN_SAMPLES).fit(X)
        self.labels_ = m.labels_.astype(np.int32)
        core = m.core_sample_indices_
        self.core_ = X[core]
        self.core_labels_ = self.labels_[core]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (m,) int32 of new rows: their nearest core sample's, or -1 beyond ``eps``."""
        if self.core_.shape[0] == 0:
            return np.full(X.shape[0], -1, dtype=np.int32)
        lab, dist = knn_labels(self.core_, self.core_labels_, X, k=1)
        lab[dist > self.eps] = -1
        return lab


DBSCAN = ClustererInfo(
    name="dbscan",
    help="DBSCAN with radius eps, finds k itself, marks noise",
    factory=lambda cfg, params, hooks: DBSCANClusterer(cfg.eps, cfg.min_samples, cfg.seed),
    fields=("eps", "min_samples"),
    params={},
    can_mark_noise=True,
    assign="knn",
)
