"""Clusterers behind one name->factory table, fitted on a subset and assigned in chunks.

Every clusterer here follows the same small interface (scikit-learn style): the
constructor stores its arguments, ``fit(X) -> self`` sets ``labels_`` (fitted rows,
-1 = noise) and, where the method has them, ``cluster_centers_`` / ``probabilities_``;
``predict(X) -> (labels, strength or None)`` labels rows it was not fitted on.

:func:`fit_assign` is the stage step: fit on ``fit_size`` seeded rows, assign every row
in chunks (nearest centre for centroid methods; the method's own prediction or k-NN to
the fitted members for density methods), handle noise, and compute centres in the space
the clusterer saw (member means where the method has no centres of its own).

How each method labels rows outside the fit subset, and new texts of a saved run, is
its ``assign`` mode in :data:`CLUSTERERS`:

- ``centroid``: nearest centre (k-means, mini-batch k-means); a saved run needs ``centers.npy``.
- ``model``: the fitted model's own ``predict`` from saved parameter arrays (GMM).
- ``knn``: rows outside the fit subset get the method's prediction; a saved run labels new
  texts by k-NN over the run's rows (HDBSCAN, DBSCAN, agglomerative, graph-ward, self-training).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from textcluster.config import ClustererConfig
from textcluster.errors import ConfigError
from textcluster.progress import Meter, ProgressFn, check_cancel

logger = logging.getLogger(__name__)

#: Rows per chunk when assigning or computing distances.
CHUNK_ROWS = 65_536
#: Agglomerative clustering is O(n^2) in memory: fitted on at most this many rows unless fit_size says.
AGGLOMERATIVE_MAX_FIT = 20_000
#: Default cap on rows fitted by graph-ward (about O(n^2) time; 18 s at 20k rows).
GRAPH_WARD_MAX_FIT = 20_000

AssignMode = Literal["centroid", "model", "knn"]


# --------------------------------------------------------------------------- helpers
def _faiss() -> Any | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def sq_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (m, k) float32 between rows of ``X`` and ``centers``, clipped at 0."""
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(centers, dtype=np.float32)
    d = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ C.T) + (C * C).sum(axis=1)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def nearest_center(
    X: np.ndarray, centers: np.ndarray, chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row: ``(labels (n,) int32, distances (n,) float32)``, in chunks.

    Fitting and assigning both go through this one computation, so a saved run labels
    its own rows exactly as the fit did.
    """
    lab, d2 = _assign_fast(np.asarray(X, dtype=np.float32), np.asarray(centers, dtype=np.float32), chunk=chunk)
    return lab.astype(np.int32), np.sqrt(d2)


def knn_labels(
    ref: np.ndarray,
    ref_labels: np.ndarray,
    X: np.ndarray,
    k: int = 1,
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Label rows of ``X`` by their ``k`` nearest rows of ``ref`` (Euclidean).

    With ``k == 1`` a row takes its nearest reference row's label; with more, the most
    frequent label among the ``k`` neighbours, ties going to the nearest neighbour's label.
    Returns ``(labels (m,) int32, distance to the nearest reference row (m,) float32)``.
    ``ref`` may be memory-mapped; it is scanned in chunks.
    """
    m = X.shape[0]
    k = max(1, min(k, ref.shape[0]))
    X = np.ascontiguousarray(X, dtype=np.float32)
    best_d = np.full((m, k), np.inf, dtype=np.float32)
    best_i = np.zeros((m, k), dtype=np.int64)
    xx = (X * X).sum(axis=1)[:, None]
    for s in range(0, ref.shape[0], CHUNK_ROWS):
        R = np.asarray(ref[s : s + CHUNK_ROWS], dtype=np.float32)
        for q in range(0, m, chunk):
            d = xx[q : q + chunk] - 2.0 * (X[q : q + chunk] @ R.T) + (R * R).sum(axis=1)[None, :]
            kk = min(k, d.shape[1])
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if d.shape[1] > kk else np.tile(
                np.arange(d.shape[1]), (d.shape[0], 1)
            )
            pd = np.take_along_axis(d, part, axis=1)
            cd = np.concatenate([best_d[q : q + chunk], pd], axis=1)
            ci = np.concatenate([best_i[q : q + chunk], part + s], axis=1)
            order = np.argsort(cd, axis=1, kind="stable")[:, :k]
            best_d[q : q + chunk] = np.take_along_axis(cd, order, axis=1)
            best_i[q : q + chunk] = np.take_along_axis(ci, order, axis=1)
    ref_labels = np.asarray(ref_labels)
    nl = ref_labels[best_i]
    if k == 1:
        out = nl[:, 0].astype(np.int32)
    else:
        out = np.empty(m, dtype=np.int32)
        for r in range(m):
            vals, counts = np.unique(nl[r], return_counts=True)
            top = vals[counts == counts.max()]
            out[r] = nl[r, 0] if nl[r, 0] in top else top[0]
    return out, np.sqrt(np.maximum(best_d[:, 0], 0.0))


def member_means(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of the members of each cluster 0..k-1 (k, d) float32; empty clusters get zeros."""
    d = X.shape[1]
    sums = np.zeros((k, d), dtype=np.float64)
    counts = np.zeros(k, dtype=np.int64)
    for s in range(0, X.shape[0], CHUNK_ROWS):
        lab = labels[s : s + CHUNK_ROWS]
        keep = lab >= 0
        if keep.any():
            np.add.at(sums, lab[keep], np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64)[keep])
            counts += np.bincount(lab[keep], minlength=k)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


# --------------------------------------------------------------------------- k-means
def kmeans_plusplus(X: np.ndarray, k: int, rng: np.random.Generator, n_local_trials: int | None = None) -> np.ndarray:
    """Greedy k-means++ seeding (as scikit-learn does it): ``k`` initial centres (k, d) float32."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(k))
    xx = np.einsum("ij,ij->i", X, X)
    centers = np.empty((k, X.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centers[0] = X[first]
    closest = np.maximum(xx - 2.0 * (X @ X[first]) + xx[first], 0.0).astype(np.float64)
    pot = closest.sum()
    for c in range(1, k):
        if pot <= 0:
            centers[c] = X[int(rng.integers(n))]
            continue
        cand = np.clip(np.searchsorted(np.cumsum(closest), rng.random(n_local_trials) * pot), 0, n - 1)
        C = X[cand]
        d = xx[:, None] - 2.0 * (X @ C.T) + xx[cand][None, :]
        np.maximum(d, 0.0, out=d)
        d = np.minimum(d, closest[:, None])
        pots = d.sum(axis=0, dtype=np.float64)
        best = int(np.argmin(pots))
        centers[c] = X[cand[best]]
        closest = d[:, best].astype(np.float64)
        pot = pots[best]
    return centers


def _assign_fast(
    X: np.ndarray, centers: np.ndarray, xx: np.ndarray | None = None, chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (n,) int64 and squared distance (n,) float32 of each row (one BLAS product per chunk)."""
    n = X.shape[0]
    lab = np.empty(n, dtype=np.int64)
    d2 = np.empty(n, dtype=np.float32)
    cc = np.einsum("ij,ij->i", centers, centers)
    m2c = np.ascontiguousarray(-2.0 * centers.T, dtype=np.float32)
    for s in range(0, n, chunk):
        xc = np.asarray(X[s : s + chunk], dtype=np.float32)
        d = xc @ m2c
        d += cc
        j = np.argmin(d, axis=1)
        lab[s : s + j.shape[0]] = j
        x2 = xx[s : s + j.shape[0]] if xx is not None else np.einsum("ij,ij->i", xc, xc)
        d2[s : s + j.shape[0]] = np.maximum(d[np.arange(j.shape[0]), j] + x2, 0.0)
    return lab, d2


def _mean_variance(X: np.ndarray) -> float:
    """Mean per-feature variance of X, in chunks (no full-size temporary)."""
    n = X.shape[0]
    s1 = np.zeros(X.shape[1], dtype=np.float64)
    s2 = np.zeros(X.shape[1], dtype=np.float64)
    for s in range(0, n, CHUNK_ROWS):
        c = np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64)
        s1 += c.sum(axis=0)
        s2 += np.einsum("ij,ij->j", c, c)
    mean = s1 / max(n, 1)
    return float(np.mean(np.maximum(s2 / max(n, 1) - mean * mean, 0.0)))


def lloyd(
    X: np.ndarray, init: np.ndarray, max_iter: int = 300, tol: float = 1e-4
) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
    """Lloyd iterations from ``init`` (k, d), scikit-learn's stopping rule.

    Stops when no label changes, or when the total squared centre shift is at most
    ``tol`` times the mean per-feature variance of ``X``. An empty cluster is moved to
    the row farthest from its centre. Assignment is one BLAS product per chunk, the
    update one sparse one-hot product. Returns ``(centers (k, d) float32, iterations,
    (labels, squared distances) of the final centres when the last pass computed them
    (strict convergence), else None)``.
    """
    from scipy import sparse

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, _ = X.shape
    xx = np.einsum("ij,ij->i", X, X)
    k = init.shape[0]
    tol_abs = tol * _mean_variance(X)
    centers = np.array(init, dtype=np.float32)
    prev: np.ndarray | None = None
    indptr = np.arange(n + 1, dtype=np.int64)
    ones = np.ones(n, dtype=np.float32)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        lab, d2 = _assign_fast(X, centers, xx)
        if prev is not None and np.array_equal(lab, prev):
            return centers, it, (lab, d2)
        prev = lab
        onehot = sparse.csr_matrix((ones, lab, indptr), shape=(n, k))  # row i has a 1 in column lab[i]
        sums = np.asarray(onehot.T @ X, dtype=np.float64)
        counts = np.bincount(lab, minlength=k)
        new = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            far = np.argsort(-d2, kind="stable")[: empty.size]
            new[empty] = X[far]
        shift = float(np.square(new - centers, dtype=np.float64).sum())
        centers = new
        if shift <= tol_abs:
            break
    return centers, it, None


class KMeansClusterer:
    """k-means with scikit-learn's algorithm and quality, about ten times faster.

    Greedy k-means++ seeding (scikit-learn's variant, on at most ``seed_rows`` rows), then:

    - ``backend="numpy"`` (default; ``auto`` is the same): Lloyd iterations on all rows,
      one float32 BLAS product per chunk for the assignment and one sparse one-hot product
      for the update, stopped by scikit-learn's rule (``tol``, at most ``max_iter``). Above
      ``4 * max_points_per_centroid * k`` rows (about 100k at k=100) the iterations first
      converge on a seeded subsample of ``max_points_per_centroid * k`` rows, then at most
      ``refine_iter`` Lloyd iterations run on all rows;
    - ``backend="faiss"``: ``faiss.Kmeans`` (``niter`` iterations) on at most
      ``max_points_per_centroid * k`` seeded rows (faiss's own default, 256 per centre),
      then up to ``refine_iter`` full-data Lloyd iterations. Measured slower and no better
      here (docs/benchmarks.md); kept for very large inputs.

    ``n_init`` seedings are run and the lowest inertia kept; ``auto`` is 3 when
    n * k <= 200,000 (small inputs, where it is nearly free) and 1 otherwise, which is
    scikit-learn's own default for k-means++. Fitted: ``cluster_centers_`` (k, d) float32,
    ``labels_`` (n,) int32 (nearest centre), ``inertia_``, ``n_iter_``, ``backend_``.
    """

    def __init__(
        self,
        k: int,
        seed: int = 0,
        n_init: int | Literal["auto"] = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        backend: Literal["auto", "numpy", "faiss"] = "auto",
        max_points_per_centroid: int = 256,
        niter: int = 25,
        refine_iter: int = 5,
        seed_rows: int | None = None,
    ) -> None:
        self.k, self.seed, self.n_init, self.max_iter, self.tol = k, seed, n_init, max_iter, tol
        self.backend, self.max_points_per_centroid, self.niter = backend, max_points_per_centroid, niter
        self.refine_iter, self.seed_rows = refine_iter, seed_rows

    def _one(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray] | None]:
        n = X.shape[0]
        seed_rows = self.seed_rows or max(10_000, 40 * self.k)
        if self.backend in ("auto", "numpy"):
            self.backend_ = "numpy"
            cap = self.max_points_per_centroid * self.k
            train = X
            if cap and n > 4 * cap:  # large input: converge on a subsample first, then polish on all rows
                train = X[np.sort(rng.choice(n, size=cap, replace=False))]
            m = train.shape[0]
            sub = train if m <= seed_rows else train[np.sort(rng.choice(m, size=seed_rows, replace=False))]
            centers, it, last = lloyd(train, kmeans_plusplus(sub, self.k, rng), self.max_iter, self.tol)
            if train is X:
                return centers, it, last
            return lloyd(X, centers, self.refine_iter, self.tol)
        if self.backend != "faiss":
            raise ConfigError(f"backend={self.backend!r} should be auto, numpy or faiss")
        faiss = _faiss()
        if faiss is None:
            raise ConfigError("backend='faiss' needs faiss-cpu: pip install faiss-cpu")
        self.backend_ = "faiss"
        cap = self.max_points_per_centroid * self.k
        train = X if not cap or n <= cap else X[np.sort(rng.choice(n, size=cap, replace=False))]
        m = train.shape[0]
        sub = train if m <= seed_rows else train[np.sort(rng.choice(m, size=seed_rows, replace=False))]
        km = faiss.Kmeans(
            X.shape[1], self.k, niter=self.niter, seed=int(rng.integers(2**31 - 1)),
            max_points_per_centroid=m // self.k + 1,  # we subsampled ourselves
            min_points_per_centroid=1, verbose=False,
        )
        km.train(np.ascontiguousarray(train), init_centroids=kmeans_plusplus(sub, self.k, rng))
        centers = np.asarray(km.centroids, dtype=np.float32).reshape(self.k, X.shape[1])
        if train is X or self.refine_iter <= 0:
            return centers, 0, None
        return lloyd(X, centers, self.refine_iter, self.tol)

    def fit(self, X: np.ndarray) -> KMeansClusterer:
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        rng = np.random.default_rng(self.seed)
        n_init = self.n_init if self.n_init != "auto" else (3 if n * self.k <= 200_000 else 1)
        if not isinstance(n_init, int) or n_init < 1:
            raise ConfigError(f"n_init={self.n_init!r} should be 'auto' or an integer >= 1")
        best: tuple[float, np.ndarray, tuple[np.ndarray, np.ndarray], int] | None = None
        for _ in range(n_init):
            centers, n_iter, last = self._one(X, rng)
            if last is None:
                last = _assign_fast(X, centers)
            inertia = float(last[1].astype(np.float64).sum())
            if best is None or inertia < best[0]:
                best = (inertia, centers, last, n_iter)
        assert best is not None
        self.inertia_, self.cluster_centers_, (lab, _), self.n_iter_ = best
        self.labels_ = lab.astype(np.int32)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return nearest_center(X, self.cluster_centers_)[0], None


class MiniBatchKMeansClusterer:
    """scikit-learn's MiniBatchKMeans (``batch_size`` 4096, ``n_init`` 3); labels are the nearest centre."""

    def __init__(self, k: int, seed: int = 0, batch_size: int = 4096, n_init: int = 3, max_iter: int = 100) -> None:
        self.k, self.seed, self.batch_size, self.n_init, self.max_iter = k, seed, batch_size, n_init, max_iter

    def fit(self, X: np.ndarray) -> MiniBatchKMeansClusterer:
        from sklearn.cluster import MiniBatchKMeans

        X = np.ascontiguousarray(X, dtype=np.float32)
        m = MiniBatchKMeans(
            self.k,
            batch_size=self.batch_size,
            n_init=self.n_init,
            max_iter=self.max_iter,
            random_state=self.seed,
        ).fit(X)
        self.cluster_centers_ = m.cluster_centers_.astype(np.float32)
        self.labels_, _ = nearest_center(X, self.cluster_centers_)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return nearest_center(X, self.cluster_centers_)[0], None


# --------------------------------------------------------------------------- GMM
class GMMClusterer:
    """Gaussian mixture (scikit-learn), ``covariance_type`` ``diag`` by default.

    ``probabilities_`` is each row's largest posterior. :meth:`state` returns the fitted
    parameters as arrays so that a saved run predicts without pickle (:meth:`from_state`).
    """

    def __init__(self, k: int, seed: int = 0, covariance_type: str = "diag", max_iter: int = 200) -> None:
        self.k, self.seed, self.covariance_type, self.max_iter = k, seed, covariance_type, max_iter

    def fit(self, X: np.ndarray) -> GMMClusterer:
        from sklearn.mixture import GaussianMixture

        if self.covariance_type not in ("full", "tied", "diag", "spherical"):
            raise ConfigError(
                f"covariance_type={self.covariance_type!r} should be full, tied, diag or spherical"
            )
        X = np.asarray(X, dtype=np.float64)
        self.model_ = GaussianMixture(
            self.k, covariance_type=self.covariance_type, max_iter=self.max_iter, random_state=self.seed
        ).fit(X)
        self.cluster_centers_ = self.model_.means_.astype(np.float32)
        self.labels_, self.probabilities_ = self.predict(X)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = np.empty(X.shape[0], dtype=np.int32)
        prob = np.empty(X.shape[0], dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            p = self.model_.predict_proba(np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64))
            labels[s : s + p.shape[0]] = p.argmax(axis=1)
            prob[s : s + p.shape[0]] = p.max(axis=1)
        return labels, prob

    def state(self) -> dict[str, np.ndarray]:
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


# --------------------------------------------------------------------------- density methods
class HDBSCANClusterer:
    """HDBSCAN (the ``hdbscan`` package) with prediction data for ``approximate_predict``."""

    def __init__(
        self, min_cluster_size: int = 15, min_samples: int | None = None, seed: int = 0, **params: Any
    ) -> None:
        self.min_cluster_size, self.min_samples, self.seed, self.params = min_cluster_size, min_samples, seed, params

    def fit(self, X: np.ndarray) -> HDBSCANClusterer:
        try:
            import hdbscan
        except ImportError as e:  # pragma: no cover - a dependency
            raise ConfigError("method='hdbscan' needs the hdbscan package: pip install hdbscan") from e
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

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import hdbscan

        labels = np.empty(X.shape[0], dtype=np.int32)
        prob = np.empty(X.shape[0], dtype=np.float32)
        for s in range(0, X.shape[0], CHUNK_ROWS):
            lab, strength = hdbscan.approximate_predict(self.model_, np.asarray(X[s : s + CHUNK_ROWS], dtype=np.float64))
            labels[s : s + lab.shape[0]] = lab
            prob[s : s + lab.shape[0]] = strength
        return labels, prob


class DBSCANClusterer:
    """DBSCAN (scikit-learn); rows outside the fit subset join the nearest core sample within ``eps``."""

    def __init__(self, eps: float = 0.5, min_samples: int | None = None, seed: int = 0) -> None:
        self.eps, self.min_samples, self.seed = eps, min_samples, seed

    def fit(self, X: np.ndarray) -> DBSCANClusterer:
        from sklearn.cluster import DBSCAN

        X = np.ascontiguousarray(X, dtype=np.float32)
        m = DBSCAN(eps=self.eps, min_samples=self.min_samples or 5).fit(X)
        self.labels_ = m.labels_.astype(np.int32)
        core = m.core_sample_indices_
        self.core_ = X[core]
        self.core_labels_ = self.labels_[core]
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        if self.core_.shape[0] == 0:
            return np.full(X.shape[0], -1, dtype=np.int32), None
        lab, dist = knn_labels(self.core_, self.core_labels_, X, k=1)
        lab[dist > self.eps] = -1
        return lab, None


class AgglomerativeClusterer:
    """Agglomerative clustering (scikit-learn, ``linkage`` ward by default) on a subset.

    Memory is O(n^2), so :func:`fit_assign` fits it on at most :data:`AGGLOMERATIVE_MAX_FIT`
    rows unless ``fit_size`` says otherwise; the other rows join their nearest fitted row's cluster.
    """

    def __init__(self, k: int, seed: int = 0, linkage: str = "ward") -> None:
        self.k, self.seed, self.linkage = k, seed, linkage

    def fit(self, X: np.ndarray) -> AgglomerativeClusterer:
        from sklearn.cluster import AgglomerativeClustering

        X = np.ascontiguousarray(X, dtype=np.float32)
        m = AgglomerativeClustering(n_clusters=self.k, linkage=self.linkage).fit(X)
        self.labels_ = m.labels_.astype(np.int32)
        self.fit_X_ = X
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return knn_labels(self.fit_X_, self.labels_, X, k=1)[0], None


class _GraphWardAdapter:
    """Wraps :class:`textcluster.cluster.quality.GraphWardClusterer` (ward on the cosine k-NN graph).

    Cost: one exact k-NN search plus scikit-learn's connectivity-constrained ward, about
    O(n^2) in time (18 s for 20k MiniLM rows on a busy 2-core machine), so
    :func:`fit_assign` fits it on at most :data:`GRAPH_WARD_MAX_FIT` rows unless
    ``fit_size`` says otherwise; the other rows join their nearest fitted row's cluster.
    Deterministic (``seed`` unused). Params: ``n_neighbors`` (default 10).
    """

    def __init__(self, k: int, seed: int = 0, **params: Any) -> None:
        self.k, self.seed, self.params = k, seed, params

    def fit(self, X: np.ndarray) -> _GraphWardAdapter:
        from textcluster.cluster.quality import GraphWardClusterer

        self.model_ = GraphWardClusterer(self.k, self.seed, **self.params).fit(X)
        self.labels_ = self.model_.labels_.astype(np.int32)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return self.model_.predict(X).astype(np.int32), None


class _SelfTrainingAdapter:
    """Wraps :class:`textcluster.cluster.selftrain.SelfTrainingClusterer` into this module's interface.

    ``progress`` / ``cancel`` (set by :func:`fit_assign`, which sees ``takes_hooks``) are
    passed to the clusterer, so a long training reports per epoch and stops when cancelled.
    """

    takes_hooks = True

    def __init__(self, k: int, seed: int = 0, **params: Any) -> None:
        self.k, self.seed, self.params = k, seed, params
        self.progress: ProgressFn | None = None
        self.cancel: threading.Event | None = None

    def fit(self, X: np.ndarray) -> _SelfTrainingAdapter:
        try:
            from textcluster.cluster.selftrain import SelfTrainingClusterer
        except ImportError as e:
            raise ConfigError(
                "method='self-training' is not available: textcluster.cluster.selftrain cannot be imported "
                f"({e}); it needs torch"
            ) from e
        X = np.ascontiguousarray(X, dtype=np.float32)
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in self.params.items()}  # JSON lists
        self.model_ = SelfTrainingClusterer(
            k=self.k, seed=self.seed, progress=self.progress, cancel=self.cancel, **params
        ).fit(X)
        self.labels_ = np.asarray(self.model_.labels_, dtype=np.int32)
        if hasattr(self.model_, "predict_proba"):
            self.probabilities_ = np.asarray(self.model_.predict_proba(X), dtype=np.float32).max(axis=1)
        self.history_ = getattr(self.model_, "history_", None)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        X = np.ascontiguousarray(X, dtype=np.float32)
        lab = np.asarray(self.model_.predict(X), dtype=np.int32)
        prob = None
        if hasattr(self.model_, "predict_proba"):
            prob = np.asarray(self.model_.predict_proba(X), dtype=np.float32).max(axis=1)
        return lab, prob


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ClustererInfo:
    """One entry of :data:`CLUSTERERS`.

    help: one line for the CLI and the app. can_mark_noise: may label rows -1.
    uses_k: takes a number of clusters. assign: how rows outside the fit subset and
    new texts are labelled (module docstring). max_fit: default cap on fitted rows.
    """

    name: str
    help: str
    can_mark_noise: bool
    uses_k: bool
    assign: AssignMode
    factory: Callable[[ClustererConfig], Any]
    max_fit: int | None = None
    has_probabilities: bool = False


def _p(cfg: ClustererConfig) -> dict[str, Any]:
    return dict(cfg.params)


CLUSTERERS: dict[str, ClustererInfo] = {
    info.name: info
    for info in (
        ClustererInfo(
            "kmeans",
            "k-means: k-means++ seeding, BLAS Lloyd iterations (~10x scikit-learn, same quality); needs k",
            False,
            True,
            "centroid",
            lambda c: KMeansClusterer(c.k, c.seed, **_p(c)),
        ),
        ClustererInfo(
            "minibatch-kmeans",
            "mini-batch k-means (scikit-learn); needs k",
            False,
            True,
            "centroid",
            lambda c: MiniBatchKMeansClusterer(c.k, c.seed, **_p(c)),
        ),
        ClustererInfo(
            "gmm",
            "Gaussian mixture, diagonal covariances (soft memberships); needs k; best after PCA/UMAP",
            False,
            True,
            "model",
            lambda c: GMMClusterer(c.k, c.seed, **_p(c)),
            has_probabilities=True,
        ),
        ClustererInfo(
            "hdbscan",
            "HDBSCAN density clusters, finds k itself, marks noise; best after UMAP",
            True,
            False,
            "knn",
            lambda c: HDBSCANClusterer(c.min_cluster_size, c.min_samples, c.seed, **_p(c)),
            has_probabilities=True,
        ),
        ClustererInfo(
            "dbscan",
            "DBSCAN with radius eps, finds k itself, marks noise",
            True,
            False,
            "knn",
            lambda c: DBSCANClusterer(c.eps, c.min_samples, c.seed),
        ),
        ClustererInfo(
            "agglomerative",
            f"agglomerative (ward) on a subset of at most {AGGLOMERATIVE_MAX_FIT} rows; needs k",
            False,
            True,
            "knn",
            lambda c: AgglomerativeClusterer(c.k, c.seed, **_p(c)),
            max_fit=AGGLOMERATIVE_MAX_FIT,
        ),
        ClustererInfo(
            "graph-ward",
            "ward linkage on the k-NN graph; good for many small topics",
            False,
            True,
            "knn",
            lambda c: _GraphWardAdapter(c.k, c.seed, **_p(c)),
            max_fit=GRAPH_WARD_MAX_FIT,
        ),
        ClustererInfo(
            "self-training",
            "self-training deep clusterer (autoencoder + KL sharpening, torch); needs k",
            False,
            True,
            "knn",
            lambda c: _SelfTrainingAdapter(c.k, c.seed, **_p(c)),
            has_probabilities=True,
        ),
    )
}


def get_clusterer(name: str) -> ClustererInfo:
    """The registry entry for ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return CLUSTERERS[name]
    except KeyError:
        raise ConfigError(f"method={name!r} should be one of {', '.join(CLUSTERERS)}") from None


def check_clusterer(cfg: ClustererConfig, n: int) -> None:
    """Raise :class:`ConfigError` when ``cfg`` cannot cluster ``n`` rows."""
    cfg.validate()
    info = get_clusterer(cfg.method)
    if n < 1:
        raise ConfigError("cannot cluster an empty input (n_samples=0)")
    n_fit = fit_rows(n, cfg)
    if info.uses_k and cfg.k > n_fit:
        what = "n_samples" if n_fit == n else "fitted rows"
        raise ConfigError(f"k={cfg.k} should be <= {what}={n_fit}")
    if cfg.method == "hdbscan" and cfg.min_cluster_size > n_fit:
        raise ConfigError(f"min_cluster_size={cfg.min_cluster_size} should be <= n_samples={n_fit}")


def fit_rows(n: int, cfg: ClustererConfig) -> int:
    """How many rows the clusterer is fitted on for an input of ``n`` rows."""
    cap = cfg.fit_size
    info = get_clusterer(cfg.method)
    if cap is None and info.max_fit is not None:
        cap = info.max_fit
    return n if cap is None else min(n, cap)


def select_fit_rows(n: int, cfg: ClustererConfig) -> np.ndarray | None:
    """Sorted row indices of the seeded fit subset, or None when fitting on all ``n`` rows."""
    m = fit_rows(n, cfg)
    if m >= n:
        return None
    return np.sort(np.random.default_rng(cfg.seed).choice(n, size=m, replace=False))


@dataclass
class ClusterOutput:
    """What :func:`fit_assign` returns.

    labels (n,) int32 (-1 = noise); centers (k, d) float32 in the clusterer's space;
    probabilities (n,) float32 or None; model: the fitted clusterer; fit_idx: fitted rows
    (None = all); noise_before_assign: noise share before ``noise='assign'``.
    """

    labels: np.ndarray
    centers: np.ndarray
    probabilities: np.ndarray | None
    model: Any
    fit_idx: np.ndarray | None
    noise_before_assign: float
    history: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fit_assign(
    Z: np.ndarray,
    cfg: ClustererConfig,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ClusterOutput:
    """Fit ``cfg.method`` on a seeded subset of ``Z`` (n, d) and label every row.

    Rows outside the subset are labelled in chunks by the method's ``predict``; with
    ``cfg.noise == "assign"`` noise rows then join the nearest centre. Centres are the
    method's own (k-means, GMM) or member means (others), in ``Z``'s space.
    """
    n = Z.shape[0]
    check_clusterer(cfg, n)
    info = get_clusterer(cfg.method)
    meter = Meter("cluster", 3, progress, estimate=False)
    fit_idx = select_fit_rows(n, cfg)
    Zfit = np.asarray(Z if fit_idx is None else Z[fit_idx])
    meter.update(0, f"fitting {cfg.method} on {Zfit.shape[0]} rows")
    model = info.factory(cfg)
    if getattr(model, "takes_hooks", False):  # long fits report progress and honour cancel
        model.progress, model.cancel = progress, cancel
    model = model.fit(Zfit)
    check_cancel(cancel, "cluster")
    meter.update(1, "assigning rows")
    probs: np.ndarray | None = None
    fit_prob = getattr(model, "probabilities_", None)
    if info.assign in ("centroid", "model") or fit_idx is None:
        if fit_idx is None:
            labels = np.asarray(model.labels_, dtype=np.int32)
            probs = None if fit_prob is None else np.asarray(fit_prob, dtype=np.float32)
        else:
            labels = np.empty(n, dtype=np.int32)
            probs = np.empty(n, dtype=np.float32) if info.has_probabilities else None
            for s in range(0, n, CHUNK_ROWS):
                check_cancel(cancel, "cluster")
                lab, pr = model.predict(np.asarray(Z[s : s + CHUNK_ROWS]))
                labels[s : s + lab.shape[0]] = lab
                if probs is not None and pr is not None:
                    probs[s : s + lab.shape[0]] = pr
    else:
        labels = np.empty(n, dtype=np.int32)
        labels[fit_idx] = model.labels_
        probs = np.empty(n, dtype=np.float32) if fit_prob is not None else None
        if probs is not None:
            probs[fit_idx] = fit_prob
        rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
        for s in range(0, rest.shape[0], CHUNK_ROWS):
            check_cancel(cancel, "cluster")
            idx = rest[s : s + CHUNK_ROWS]
            lab, pr = model.predict(np.asarray(Z[idx]))
            labels[idx] = lab
            if probs is not None:
                probs[idx] = pr if pr is not None else np.nan
    noise_before = float(np.mean(labels < 0))
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    own = getattr(model, "cluster_centers_", None)
    if own is not None and info.assign != "knn" and own.shape[1] == Z.shape[1]:
        centers = np.asarray(own, dtype=np.float32)
    else:
        centers = member_means(Z, labels, k)
    if cfg.noise == "assign" and k > 0 and noise_before > 0:
        noise = np.flatnonzero(labels < 0)
        for s in range(0, noise.shape[0], CHUNK_ROWS):
            idx = noise[s : s + CHUNK_ROWS]
            labels[idx] = nearest_center(np.asarray(Z[idx]), centers)[0]
        if info.assign == "knn":
            centers = member_means(Z, labels, k)
    meter.update(3, "done")
    return ClusterOutput(
        labels=labels,
        centers=centers,
        probabilities=probs,
        model=model,
        fit_idx=fit_idx,
        noise_before_assign=noise_before,
        history=getattr(model, "history_", None),
    )
