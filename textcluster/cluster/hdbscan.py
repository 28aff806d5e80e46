"""HDBSCAN density clusterer (the ``hdbscan`` package): finds k itself, marks noise."""

from __future__ import annotations

from typing import Any

import numpy as np

from textcluster.cluster.distances import CHUNK_ROWS
from textcluster.cluster.protocol import ClustererInfo, Param
from textcluster.errors import ConfigError


def _hdbscan() -> Any:
    try:
        import hdbscan
    except ImportError as e:  # pragma: no cover - a dependency
        raise ConfigError("method='hdbscan' needs the hdbscan package: pip install hdbscan") from e
    return hdbscan


class HDBSCANClusterer:
    """HDBSCAN with prediction data, so rows outside the fit subset get ``approximate_predict``.

    ``params`` go to ``hdbscan.HDBSCAN`` (see :data:`HDBSCAN`'s schema). Fitted: ``labels_``
    (n,) int32 (-1 = noise), ``probabilities_`` (n,) float32 membership strength, ``model_``.
    """

    def __init__(
        self, min_cluster_size: int = 15, min_samples: int | None = None, seed: int = 0, **params: Any
    ) -> None:
        self.min_cluster_size, self.min_samples, self.seed, self.params = min_cluster_size, min_samples, seed, params

    def fit(self, X: np.ndarray) -> HDBSCANClusterer:
        """Cluster ``X`` (n, d); returns self."""
        hdbscan = _hdbscan()
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.min_cluster_size > X.shape[0]:
            raise ConfigError(
                f"min_cluster_size={self.min_cluster_size} should be <= n_samples={X.shape[0]}"
            )
        self.model_ = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            prediction_data=True,
            core_dist_n_jobs=1,
            **self.params,
        ).fit(X)
        self.labels_ = self.model_.labels_.astype(np.int32)
        self.probabilities_ = self.model_.probabilities_.astype(np.float32)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (m,) int32 of new rows (-1 = noise), by ``hdbscan.approximate_predict``."""
        return self.predict_strength(X)[0]

    def predict_strength(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster (m,) int32 and membership strength (m,) float32 of new rows."""
        hdbscan = _hdbscan()
        labels = np.empty(X.shape[0], dtype=np.int32)
        prob = np.empty(X.shape[0], dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            lab, strength = hdbscan.approximate_predict(self.model_, np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64))
            labels[s : s + lab.shape[0]] = lab
            prob[s : s + lab.shape[0]] = strength
        return labels, prob


HDBSCAN = ClustererInfo(
    name="hdbscan",
    help="HDBSCAN density clusters, finds k itself, marks noise; best after UMAP",
    factory=lambda cfg, params, hooks: HDBSCANClusterer(cfg.min_cluster_size, cfg.min_samples, cfg.seed, **params),
    fields=("min_cluster_size", "min_samples"),
    params={
        "cluster_selection_method": Param("str", "eom", "eom (excess of mass) or leaf (finer clusters)",
                                          choices=("eom", "leaf")),
        "cluster_selection_epsilon": Param("float", 0.0, "merge clusters closer than this distance", low=0),
        "alpha": Param("float", 1.0, "distance scaling of the robust single linkage", low=1e-9),
        "allow_single_cluster": Param("bool", False, "allow one cluster for the whole input"),
    },
    can_mark_noise=True,
    assign="knn",
    has_probabilities=True,
)
