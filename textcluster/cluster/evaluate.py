"""Clustering quality metrics.

With reference labels: clustering accuracy (ACC, best one-to-one map of clusters to
classes by the Hungarian algorithm), NMI, ARI and V-measure. Without labels:
silhouette on a seeded sample, Davies-Bouldin, size spread and noise share.

Noise (label ``-1``) is handled the same way everywhere: for ACC a noise row is never
matched to a class, so it counts as an error; for NMI, ARI and V-measure noise is one
more group, as scikit-learn treats it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from textcluster.errors import ConfigError

logger = logging.getLogger(__name__)

#: Rows used for the silhouette and Davies-Bouldin scores (silhouette is O(n^2)); a seeded sample above this.
SILHOUETTE_SAMPLE = 3_000


def _as_codes(labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Any label array (strings, ints) -> int64 codes 0..m-1."""
    arr = np.asarray(labels)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def cluster_accuracy(labels_true: Sequence[Any] | np.ndarray, labels_pred: np.ndarray) -> float:
    """Clustering accuracy in [0, 1]: the share of rows whose cluster maps to their class.

    Clusters are mapped one-to-one to classes by the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``) on the contingency table; when the number
    of clusters differs from the number of classes, the surplus clusters (or classes)
    stay unmatched and their rows count as errors. Rows with ``labels_pred == -1``
    (noise) are never matched.
    """
    from scipy.optimize import linear_sum_assignment

    y = _as_codes(labels_true)
    p = np.asarray(labels_pred).reshape(-1)
    if y.shape[0] != p.shape[0]:
        raise ConfigError(f"labels_true has {y.shape[0]} rows but labels_pred has {p.shape[0]}")
    if y.shape[0] == 0:
        raise ConfigError("cannot score an empty clustering (0 rows)")
    keep = p >= 0
    if not keep.any():
        return 0.0
    clusters, pc = np.unique(p[keep], return_inverse=True)
    table = np.zeros((clusters.shape[0], int(y.max()) + 1), dtype=np.int64)
    np.add.at(table, (pc, y[keep]), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / y.shape[0])


def supervised(labels_true: Sequence[Any] | np.ndarray, labels_pred: np.ndarray) -> dict[str, float]:
    """ACC, NMI, ARI and V-measure of a clustering against reference labels (fractions).

    Returns ``{"acc", "nmi", "ari", "v_measure"}``; ARI may be slightly negative for
    clusterings worse than chance, the others are in [0, 1].
    """
    from sklearn import metrics as skm

    y = _as_codes(labels_true)
    p = np.asarray(labels_pred).reshape(-1)
    return {
        "acc": cluster_accuracy(y, p),
        "nmi": float(skm.normalized_mutual_info_score(y, p)),
        "ari": float(skm.adjusted_rand_score(y, p)),
        "v_measure": float(skm.v_measure_score(y, p)),
    }


def unsupervised(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    sample: int = SILHOUETTE_SAMPLE,
) -> dict[str, float | None]:
    """Label-free diagnostics of a clustering of ``X`` (n x d) with ``labels`` (n,).

    - ``silhouette``: Euclidean silhouette in [-1, 1] on a seeded sample of at most
      ``sample`` non-noise rows (None when fewer than 2 clusters).
    - ``davies_bouldin``: >= 0, lower is better, on the same sample (None when fewer
      than 2 clusters).
    - ``size_cv``: coefficient of variation of the cluster sizes (0 = equal sizes).
    - ``size_min_share`` / ``size_max_share``: smallest and largest cluster as a share of n.
    - ``noise``: share of rows labelled -1.
    """
    from sklearn import metrics as skm

    labels = np.asarray(labels).reshape(-1)
    n = labels.shape[0]
    if n == 0:
        raise ConfigError("cannot score an empty clustering (0 rows)")
    noise = float(np.mean(labels < 0))
    member = np.flatnonzero(labels >= 0)
    sizes = np.bincount(labels[member]) if member.size else np.zeros(0, dtype=np.int64)
    sizes = sizes[sizes > 0]
    out: dict[str, float | None] = {
        "silhouette": None,
        "davies_bouldin": None,
        "size_cv": float(sizes.std() / sizes.mean()) if sizes.size else None,
        "size_min_share": float(sizes.min() / n) if sizes.size else None,
        "size_max_share": float(sizes.max() / n) if sizes.size else None,
        "noise": noise,
    }
    if sizes.size < 2:
        return out
    if member.size > sample:
        rng = np.random.default_rng(seed)
        member = np.sort(rng.choice(member, size=sample, replace=False))
    xs = np.asarray(X[member], dtype=np.float32)
    ls = labels[member]
    if np.unique(ls).size < 2 or np.unique(ls).size >= ls.size:
        return out
    out["silhouette"] = silhouette(xs, ls)
    out["davies_bouldin"] = float(skm.davies_bouldin_score(xs, ls))
    return out


def silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    """Mean Euclidean silhouette of ``X`` (m, d) under ``labels`` (m,), as scikit-learn defines it.

    One BLAS product for the m x m distances and one for the per-cluster sums, so it
    is fast for the few thousand sampled rows it is meant for (memory m^2 float32).
    A row alone in its cluster scores 0.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    m = X.shape[0]
    sq = np.einsum("ij,ij->i", X, X)
    D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.maximum(D, 0.0, out=D)
    np.sqrt(D, out=D)
    np.fill_diagonal(D, 0.0)
    _, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(-1)
    c = int(inv.max()) + 1
    onehot = np.zeros((m, c), dtype=np.float32)
    onehot[np.arange(m), inv] = 1.0
    sums = (D @ onehot).astype(np.float64)
    counts = onehot.sum(axis=0).astype(np.float64)
    own = counts[inv]
    a = sums[np.arange(m), inv] / np.maximum(own - 1, 1)
    other = sums / counts[None, :]
    other[np.arange(m), inv] = np.inf
    b = other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())
