"""k-means (the default clusterer) and scikit-learn's mini-batch k-means.

:class:`KMeansClusterer` reproduces scikit-learn's algorithm and quality (greedy k-means++
seeding, Lloyd iterations, the same stopping rule) about ten times faster on large inputs:
the assignment is one float32 BLAS product per chunk and the update one sparse one-hot
product (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from textcluster.cluster.distances import CHUNK_ROWS, assign_sq, nearest_center
from textcluster.cluster.protocol import ClustererInfo, Param
from textcluster.errors import ConfigError


def _faiss() -> Any | None:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return None
    return faiss


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
    from scipy import (
        sparse,  # lazily: importing scipy's solvers takes ~0.3-0.7 s, paid by the CLI's start otherwise
    )
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
        lab, d2 = assign_sq(X, centers, xx)
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
                last = assign_sq(X, centers)
            inertia = float(last[1].astype(np.float64).sum())
            if best is None or inertia < best[0]:
                best = (inertia, centers, last, n_iter)
        assert best is not None
        self.inertia_, self.cluster_centers_, (lab, _), self.n_iter_ = best
        self.labels_ = lab.astype(np.int32)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Nearest centre (m,) int32 of each row."""
        return nearest_center(X, self.cluster_centers_)[0]


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

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Nearest centre (m,) int32 of each row."""
        return nearest_center(X, self.cluster_centers_)[0]


KMEANS = ClustererInfo(
    name="kmeans",
    help="k-means: k-means++ seeding, BLAS Lloyd iterations (~10x scikit-learn, same quality); needs k",
    factory=lambda cfg, params, hooks: KMeansClusterer(cfg.k, cfg.seed, **params),
    fields=("k",),
    params={
        "n_init": Param("int", "auto", "k-means++ restarts, best inertia kept (auto: 3 on small inputs, else 1)",
                        low=1, also=("auto",)),
        "max_iter": Param("int", 300, "most Lloyd iterations", low=1),
        "tol": Param("float", 1e-4, "stop when the centres move less than tol x the mean variance", low=0),
        "backend": Param("str", "auto", "numpy Lloyd (auto) or faiss.Kmeans", choices=("auto", "numpy", "faiss")),
        "max_points_per_centroid": Param("int", 256, "rows per centre in the subsample of large inputs", low=1),
        "niter": Param("int", 25, "faiss backend: iterations", low=1),
        "refine_iter": Param("int", 5, "full-data Lloyd iterations after a subsample fit", low=0),
        "seed_rows": Param("int", None, "rows the k-means++ seeding looks at (default max(10000, 40 k))",
                           low=1, nullable=True),
    },
)

MINIBATCH_KMEANS = ClustererInfo(
    name="minibatch-kmeans",
    help="mini-batch k-means (scikit-learn); needs k",
    factory=lambda cfg, params, hooks: MiniBatchKMeansClusterer(cfg.k, cfg.seed, **params),
    fields=("k",),
    params={
        "batch_size": Param("int", 4096, "rows per mini-batch", low=1),
        "n_init": Param("int", 3, "initialisations, best kept", low=1),
        "max_iter": Param("int", 100, "passes over the data", low=1),
    },
)
