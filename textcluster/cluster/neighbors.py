"""Exact nearest-neighbour search: the one search behind every k-NN step.

:func:`nearest` is exact and chunked over the reference rows (which may be a memory-mapped
matrix of millions of rows), using faiss's flat index on each chunk (faiss-cpu is a
dependency) or one BLAS product per block when faiss is missing. Results are merged
across chunks and ordered by (distance, row index), so they are deterministic.

Built on it: :func:`knn_indices` (each row's cosine neighbours among the same rows, for
smoothing and k-NN graphs), :func:`knn_graph` and :func:`knn_labels` (label new rows by
a vote of their nearest labelled rows: assigning rows outside a fit subset and new texts
of a saved run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from textcluster.cluster.distances import CHUNK_ROWS
from textcluster.errors import ConfigError

if TYPE_CHECKING:
    from scipy import sparse

Metric = Literal["euclidean", "cosine"]
#: Query rows per block in the numpy fallback (block memory: this x reference chunk floats).
QUERY_BLOCK = 4096


def _faiss() -> Any | None:
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return None
    return faiss


def l2_normalize(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` (n, d) scaled to unit L2 norm (all-zero rows stay zero); float32."""
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, 1e-12)).astype(np.float32)


def _block_search(R: np.ndarray, X: np.ndarray, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``R`` for each row of ``X`` (unordered), as (distance, index)."""
    faiss = _faiss()
    if faiss is not None:
        index = faiss.IndexFlatIP(R.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(R.shape[1])
        index.add(R)
        D, idx = index.search(X, k)
        D = (1.0 - D) if metric == "cosine" else np.maximum(D, 0.0)
        return D.astype(np.float32), idx.astype(np.int64)
    D = np.empty((X.shape[0], k), dtype=np.float32)
    idx = np.empty((X.shape[0], k), dtype=np.int64)
    rr = None if metric == "cosine" else np.einsum("ij,ij->i", R, R)
    for q in range(0, X.shape[0], QUERY_BLOCK):
        xq = X[q : q + QUERY_BLOCK]
        if metric == "cosine":
            d = 1.0 - xq @ R.T
        else:
            d = np.einsum("ij,ij->i", xq, xq)[:, None] - 2.0 * (xq @ R.T) + rr[None, :]
            np.maximum(d, 0.0, out=d)
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if d.shape[1] > k else np.tile(
            np.arange(d.shape[1]), (d.shape[0], 1)
        )
        D[q : q + QUERY_BLOCK] = np.take_along_axis(d, part, axis=1)
        idx[q : q + QUERY_BLOCK] = part
    return D, idx


def nearest(
    ref: np.ndarray, X: np.ndarray, k: int = 1, *, metric: Metric = "euclidean", chunk: int = CHUNK_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``ref`` (n, d) for each row of ``X`` (m, d), exactly.

    Returns ``(distances (m, k) float32, indices (m, k) int64)``, nearest first, ties
    broken by the lower row index. ``metric``: ``euclidean`` (distances are Euclidean) or
    ``cosine`` (rows are L2-normalised for the search; distances are 1 - cosine). ``k`` is
    clipped to the number of reference rows. ``ref`` is read ``chunk`` rows at a time.
    """
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"metric={metric!r} should be 'euclidean' or 'cosine'")
    n_ref = int(ref.shape[0])
    if n_ref == 0:
        raise ConfigError("cannot search for neighbours among 0 reference rows")
    k = max(1, min(int(k), n_ref))
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        X = l2_normalize(X)
    m = X.shape[0]
    best_d = np.full((m, k), np.inf, dtype=np.float32)
    best_i = np.full((m, k), np.iinfo(np.int64).max, dtype=np.int64)
    for s in range(0, n_ref, chunk):
        R = np.ascontiguousarray(ref[s : s + chunk], dtype=np.float32)
        if metric == "cosine":
            R = l2_normalize(R)
        D, idx = _block_search(R, X, min(k, R.shape[0]), metric)
        cd = np.concatenate([best_d, D], axis=1)
        ci = np.concatenate([best_i, idx + s], axis=1)
        order = np.lexsort((ci, cd), axis=1)[:, :k]
        best_d = np.take_along_axis(cd, order, axis=1)
        best_i = np.take_along_axis(ci, order, axis=1)
    if metric == "euclidean":
        best_d = np.sqrt(best_d)
    return best_d, best_i


def knn_labels(
    ref: np.ndarray, ref_labels: np.ndarray, X: np.ndarray, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Label rows of ``X`` by their ``k`` nearest rows of ``ref`` (Euclidean).

    With ``k == 1`` a row takes its nearest reference row's label; with more, the most
    frequent label among the ``k`` neighbours, ties going to the nearest of the tied
    neighbours. Returns ``(labels (m,) int32, distance to the nearest reference row
    (m,) float32)``. ``ref`` may be memory-mapped; it is scanned in chunks.
    """
    dist, idx = nearest(ref, X, k, metric="euclidean")
    nl = np.asarray(ref_labels)[idx]
    if nl.shape[1] == 1:
        return nl[:, 0].astype(np.int32), dist[:, 0]
    out = np.empty(nl.shape[0], dtype=np.int32)
    for s in range(0, nl.shape[0], CHUNK_ROWS):
        block = nl[s : s + CHUNK_ROWS]
        counts = (block[:, :, None] == block[:, None, :]).sum(axis=2)  # votes of each position's label
        # argmax takes the first position with the most votes: the nearest of the tied labels
        out[s : s + block.shape[0]] = block[np.arange(block.shape[0]), counts.argmax(axis=1)]
    return out, dist[:, 0]


def knn_indices(X: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Indices (n, n_neighbors + 1) int64 of each row's nearest rows by cosine, itself first.

    Exact search (:func:`nearest`); ties are broken by row index, so the result is
    deterministic. A duplicate row may tie with the row itself; the row is put first.
    """
    X = check_matrix(X)
    n = X.shape[0]
    if not 1 <= n_neighbors < n:
        raise ConfigError(f"n_neighbors={n_neighbors} should be in [1, n_samples - 1={n - 1}]")
    _, idx = nearest(X, X, n_neighbors + 1, metric="cosine")
    rows = np.arange(n)
    self_pos = (idx == rows[:, None]).argmax(axis=1)
    has_self = idx[rows, self_pos] == rows
    idx[rows[has_self], self_pos[has_self]] = idx[rows[has_self], 0]
    idx[:, 0] = rows
    return idx


def knn_graph(X: np.ndarray, n_neighbors: int = 10) -> sparse.csr_matrix:
    """Sparse (n, n) CSR connectivity: row i has ones at its ``n_neighbors`` cosine neighbours."""
    from scipy import (
        sparse,  # lazily: importing scipy's solvers takes ~0.3-0.7 s, paid by the CLI's start otherwise
    )
    idx = knn_indices(X, n_neighbors)[:, 1:]
    n = idx.shape[0]
    rows = np.repeat(np.arange(n), idx.shape[1])
    return sparse.csr_matrix(
        (np.ones(rows.shape[0], np.float32), (rows, idx.ravel())), shape=(n, n)
    )


def check_matrix(X: np.ndarray) -> np.ndarray:
    """``X`` as a C-contiguous float32 (n, d) matrix with n >= 2 and finite values; else ConfigError."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ConfigError(f"X should be a 2-D matrix with at least 2 rows; got shape {X.shape}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise ConfigError("X contains NaN or infinite values")
    return X
