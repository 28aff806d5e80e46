"""Gaussian mixture clusterer (scikit-learn), saved and reloaded without pickle."""

from __future__ import annotations

import numpy as np

from textcluster.cluster.distances import CHUNK_ROWS
from textcluster.cluster.protocol import ClustererInfo, Param
from textcluster.errors import ConfigError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class GMMClusterer:
    """Gaussian mixture (scikit-learn), ``covariance_type`` ``diag`` by default.

    ``probabilities_`` is each row's largest posterior. :meth:`state` returns the fitted
    parameters as arrays so that a saved run predicts without pickle (:meth:`from_state`).
    """

    def __init__(self, k: int, seed: int = 0, covariance_type: str = "diag", max_iter: int = 200) -> None:
        self.k, self.seed, self.covariance_type, self.max_iter = k, seed, covariance_type, max_iter

    def fit(self, X: np.ndarray) -> GMMClusterer:
        from sklearn.mixture import GaussianMixture

        if self.covariance_type not in COVARIANCE_TYPES:
            raise ConfigError(
                f"covariance_type={self.covariance_type!r} should be one of {', '.join(COVARIANCE_TYPES)}"
            )
        X = np.asarray(X, dtype=np.float64)
        self.model_ = GaussianMixture(
            self.k, covariance_type=self.covariance_type, max_iter=self.max_iter, random_state=self.seed
        ).fit(X)
        self.cluster_centers_ = self.model_.means_.astype(np.float32)
        self.labels_, self.probabilities_ = self.predict_strength(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable component (m,) int32 of each row."""
        return self.predict_strength(X)[0]

    def predict_strength(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most probable component (m,) int32 and its posterior probability (m,) float32."""
        labels = np.empty(X.shape[0], dtype=np.int32)
        prob = np.empty(X.shape[0], dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            p = self.model_.predict_proba(np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64))
            labels[s : s + p.shape[0]] = p.argmax(axis=1)
            prob[s : s + p.shape[0]] = p.max(axis=1)
        return labels, prob

    def state(self) -> dict[str, np.ndarray]:
        """The fitted parameters as arrays (saved with a run; see :meth:`from_state`)."""
        m = self.model_
        return {
            "weights": m.weights_,
            "means": m.means_,
            "covariances": m.covariances_,
            "precisions_cholesky": m.precisions_cholesky_,
            "covariance_type": np.array(self.covariance_type),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> GMMClusterer:
        """Rebuild a fitted mixture from :meth:`state` arrays (no pickle)."""
        from sklearn.mixture import GaussianMixture

        ct = str(state["covariance_type"])
        self = cls(int(state["weights"].shape[0]), covariance_type=ct)
        m = GaussianMixture(self.k, covariance_type=ct)
        m.weights_ = state["weights"]
        m.means_ = state["means"]
        m.covariances_ = state["covariances"]
        m.precisions_cholesky_ = state["precisions_cholesky"]
        m.converged_ = True
        m.n_iter_ = 0
        m.lower_bound_ = 0.0
        m.n_features_in_ = int(state["means"].shape[1])
        self.model_ = m
        self.cluster_centers_ = np.asarray(state["means"], dtype=np.float32)
        return self


GMM = ClustererInfo(
    name="gmm",
    help="Gaussian mixture, diagonal covariances (soft memberships); needs k; best after PCA/UMAP",
    factory=lambda cfg, params, hooks: GMMClusterer(cfg.k, cfg.seed, **params),
    fields=("k",),
    params={
        "covariance_type": Param("str", "diag", "shape of each component's covariance", choices=COVARIANCE_TYPES),
        "max_iter": Param("int", 200, "most EM iterations", low=1),
    },
    assign="model",
    has_probabilities=True,
)
