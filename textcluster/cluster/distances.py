"""Distances to centres, computed in chunks: the one computation behind fitting, assigning
and every stored distance of a run.

Everything is Euclidean in the space the clusterer saw, in float32, one BLAS product per
chunk of :data:`CHUNK_ROWS` rows, so a memory-mapped matrix of millions of rows is never
copied whole.
"""

from __future__ import annotations

import numpy as np

#: Rows per chunk when assigning or computing distances.
CHUNK_ROWS = 65_536


def sq_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (m, k) float32 between rows of ``X`` and ``centers``, clipped at 0."""
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(centers, dtype=np.float32)
    d = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ C.T) + (C * C).sum(axis=1)[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def assign_sq(
    X: np.ndarray, centers: np.ndarray, xx: np.ndarray | None = None, chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (n,) int64 and squared distance (n,) float32 of each row.

    One BLAS product per chunk; ``xx`` (the rows' squared norms) may be passed when the
    caller already has it (k-means iterations).
    """
    n = X.shape[0]
    lab = np.empty(n, dtype=np.int64)
    d2 = np.empty(n, dtype=np.float32)
    centers = np.asarray(centers, dtype=np.float32)
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


def nearest_center(
    X: np.ndarray, centers: np.ndarray, chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row: ``(labels (n,) int32, distances (n,) float32)``, in chunks.

    Fitting and assigning both go through this one computation, so a saved run labels
    its own rows exactly as the fit did.
    """
    lab, d2 = assign_sq(X, np.asarray(centers, dtype=np.float32), chunk=chunk)
    return lab.astype(np.int32), np.sqrt(d2)


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


def own_and_nearest(
    Z: np.ndarray, labels: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: distance to its own cluster's centre, and to the nearest centre (n,) float32.

    A noise row (label -1) gets the nearest-centre distance as its own. Without centres
    (k = 0) both are NaN.
    """
    n = Z.shape[0]
    k = int(centers.shape[0])
    own = np.full(n, np.nan, dtype=np.float32)
    nearest = np.full(n, np.nan, dtype=np.float32)
    if k == 0:
        return own, nearest
    for s in range(0, n, CHUNK_ROWS):
        d = np.sqrt(sq_distances(Z[s : s + CHUNK_ROWS], centers))
        lab = labels[s : s + CHUNK_ROWS]
        rows = np.arange(lab.shape[0])
        nearest[s : s + lab.shape[0]] = d.min(axis=1)
        own[s : s + lab.shape[0]] = np.where(
            lab >= 0, d[rows, np.maximum(lab, 0)], d.min(axis=1)
        )
    return own, nearest
