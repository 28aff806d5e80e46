"""How stably each cluster reappears when the clusterer is rerun with other seeds.

:func:`best_match_jaccard` compares a reference labelling with another: for each reference
cluster, the Jaccard index of its member set with the best-matching cluster of the other
labelling. The cluster stage (``ClustererConfig.stability = N``) refits the clusterer with
seeds ``seed + 1 .. seed + N - 1`` on the same reduced matrix (the reduction is computed once)
and stores, per cluster, the mean of these best-match indices: 1 = the cluster comes back
identical every time, below :data:`UNSTABLE` it is flagged as unstable.
"""

from __future__ import annotations

import numpy as np

#: Clusters whose mean best-match Jaccard is below this are flagged as unstable.
UNSTABLE = 0.5


def best_match_jaccard(ref: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """Per reference cluster 0..k-1 (k,) float64: max over clusters of ``other`` of
    |A ∩ B| / |A ∪ B| (noise rows, -1, belong to no cluster; an empty cluster scores NaN)."""
    ref = np.asarray(ref, dtype=np.int64)
    other = np.asarray(other, dtype=np.int64)
    kb = int(other.max()) + 1 if (other >= 0).any() else 0
    size_a = np.bincount(ref[ref >= 0], minlength=k)[:k].astype(np.float64)
    out = np.full(k, np.nan)
    if kb == 0:
        out[size_a > 0] = 0.0
        return out
    size_b = np.bincount(other[other >= 0], minlength=kb).astype(np.float64)
    both = (ref >= 0) & (other >= 0)
    inter = np.bincount(ref[both] * kb + other[both], minlength=k * kb).reshape(k, kb).astype(np.float64)
    union = size_a[:, None] + size_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, inter / union, 0.0)
    best = jac.max(axis=1)
    out[size_a > 0] = best[size_a > 0]
    return out


def summarize(per_run: list[np.ndarray]) -> np.ndarray:
    """The mean over reruns (k,) of :func:`best_match_jaccard` results (NaN stays NaN)."""
    return np.mean(np.vstack(per_run), axis=0) if per_run else np.zeros(0)
