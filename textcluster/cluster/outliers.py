"""Outlier scores of a run's rows and the ``outliers`` setting that marks the farthest as noise.

An outlier score is a row's distance to its cluster's centre as a quantile within its cluster:
``(rank + 0.5) / size`` where rank 0 is the member nearest the centre, so scores lie in (0, 1)
and are comparable across clusters of different spreads. Noise rows score NaN. The cluster
stage stores them as ``outlier_score.npy`` (and the SQL view of a run exposes them as the
``outlier_score`` column); ``ClustererConfig.outliers = Q`` turns the rows scoring above
``1 - Q`` (about the farthest share Q of every cluster) into noise.
"""

from __future__ import annotations

import numpy as np

from textcluster.errors import ConfigError

#: Above this noise share the CLI summary and the Pipeline page show a hint (issue 16: 30 %).
NOISE_HINT = 0.30


def outlier_scores(labels: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per row (n,) float32: the quantile of its own-centre distance ``own`` (n,) within its
    cluster of ``labels`` (n,) (-1 = noise -> NaN); ties are ranked by row index."""
    labels = np.asarray(labels)
    own = np.asarray(own, dtype=np.float64)
    n = labels.shape[0]
    out = np.full(n, np.nan, dtype=np.float32)
    members = np.flatnonzero(labels >= 0)
    if not members.size:
        return out
    order = members[np.lexsort((members, own[members], labels[members]))]
    lab = labels[order]
    start = np.r_[0, np.flatnonzero(lab[1:] != lab[:-1]) + 1]
    sizes = np.diff(np.r_[start, lab.size])
    rank = np.arange(lab.size) - np.repeat(start, sizes)
    out[order] = (rank + 0.5) / np.repeat(sizes, sizes)
    return out


def mark_outliers(labels: np.ndarray, scores: np.ndarray, q: float) -> np.ndarray:
    """A copy of ``labels`` where rows scoring above ``1 - q`` are noise (-1); ``q`` in (0, 0.5]."""
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 < q <= 0.5:
        raise ConfigError(f"outliers={q!r} should be a share in (0, 0.5]")
    out = np.array(labels, dtype=np.int32, copy=True)
    out[np.nan_to_num(scores, nan=0.0) > 1.0 - q] = -1
    return out


def thresholds(labels: np.ndarray, own: np.ndarray, k: int, q: float) -> np.ndarray:
    """Per cluster (k,) float32: the largest own-centre distance a member kept after
    :func:`mark_outliers` has (NaN for an empty cluster); a new text farther than its cluster's
    threshold is an outlier too."""
    thr = np.full(k, np.nan, dtype=np.float32)
    keep = labels >= 0
    if keep.any():
        np.fmax.at(thr, labels[keep], own[keep].astype(np.float32))
    return thr
