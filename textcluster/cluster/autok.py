"""Automatic k: choose the number of clusters without labels.

The method (measured on every labelled set of the benchmarks, docs/clustering.md section
*Automatic k*): a seeded subset of at most :data:`AUTO_K_SAMPLE` rows of the **embedding**
(L2-normalised, so distances are cosine-like; never the UMAP output, which can hurt some
corpora and whose layout changes with its seed); for each k of a geometric grid over the k
range, :data:`REPLICATES` k-means fits (the project's BLAS Lloyd, at most
:data:`SWEEP_MAX_ITER` iterations, each replicate seeded by the first k centres of one greedy
k-means++ seeding of the largest candidate), each scored by the silhouette of the subset
(from one pairwise-distance matrix shared by every fit). The curve is the mean over the
replicates: one fit's silhouette moves by as much as the differences between candidates, and a
single lucky or unlucky fit used to decide k (docs/benchmarks.md, *Automatic k*). The chosen k
is the best candidate of that curve, except at the ends of the range:

- the largest candidate (the criterion still rising: no optimum in the range): the knee of the
  smoothed curve (:func:`knee`, :func:`smooth_curve`), with a ``warning``;
- the smallest candidate while the curve has an interior local maximum: the best interior
  local maximum (a 2-way split scores high on most corpora; an interior optimum is structure
  the range resolves).

:func:`choose_k` returns an :class:`AutoK` (``method``, ``candidates``, ``scores``,
``chosen``, ``raw_scores``, ...) that the cluster stage stores in the run manifest
(``auto_k``) and the CLI prints with ``--json``, so the user sees the curve the choice came
from.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from textcluster.cluster.distances import assign_sq
from textcluster.cluster.kmeans import kmeans_plusplus, lloyd
from textcluster.errors import ConfigError
from textcluster.progress import Meter, ProgressFn, check_cancel

#: Rows of the seeded subset the sweep runs on (the pairwise matrix is AUTO_K_SAMPLE^2 float32).
AUTO_K_SAMPLE = 5000
#: Smallest k tried by default.
K_MIN_DEFAULT = 2
#: Largest k tried by default (also capped at n // :data:`MIN_ROWS_PER_CLUSTER`).
K_MAX_DEFAULT = 200
#: The default largest k leaves at least this many subset rows per cluster.
MIN_ROWS_PER_CLUSTER = 10
#: Candidates on the geometric grid between k_min and k_max (fewer when the range is small).
GRID_POINTS = 24
#: Independent k-means fits per candidate (distinct seedings); the curve is their mean silhouette,
#: so one unlucky local optimum does not decide k.
REPLICATES = 3
#: Lloyd iterations of each fit on the subset: the sweep compares candidates and needs no
#: converged fits (10 and 20 iterations chose the same k, or a neighbouring candidate, on the
#: labelled sets; docs/benchmarks.md).
SWEEP_MAX_ITER = 10
#: The criterion name recorded in ``auto_k.method``.
METHOD = "silhouette"


@dataclass
class AutoK:
    """The outcome of a sweep.

    method: the criterion (``silhouette``); candidates: the k values tried (ascending);
    scores: the criterion of each (higher is better): the mean over ``replicates`` fits, the
    curve the choice is made on;
    raw_scores: each replicate's silhouette per candidate (``replicates`` lists); chosen: the k
    picked; k_range: the ``[k_min, k_max]`` searched; sample: subset rows; seed; seconds: wall time
    of the sweep;
    warning: set when the choice is not clear-cut (the best k is the largest candidate, so the
    criterion was still rising: the corpus may hold finer structure than the range, or no clear
    k at all), else None.
    """

    method: str
    candidates: list[int]
    scores: list[float]
    chosen: int
    k_range: list[int]
    sample: int
    seed: int
    seconds: float
    warning: str | None = None
    raw_scores: list[list[float | None]] | None = None
    replicates: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the ``auto_k`` field of a run manifest and of ``run --json``)."""
        return asdict(self)


def parse_k_range(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` (or ``"MIN-MAX"``) -> ``(MIN, MAX)``; :class:`ConfigError` when it is not
    two integers with ``2 <= MIN <= MAX``."""
    parts = text.replace("-", ":").split(":") if isinstance(text, str) else []
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"k range {text!r} should look like MIN:MAX, e.g. 2:200") from None
    return check_k_range((lo, hi))


def check_k_range(k_range: Any, n: int | None = None) -> tuple[int, int]:
    """``k_range`` as ``(k_min, k_max)`` after checking it: two integers, ``2 <= k_min <= k_max``
    and, when ``n`` (rows to cluster) is given, ``k_max <= n``. :class:`ConfigError` otherwise,
    naming the range received."""
    ok = (
        isinstance(k_range, list | tuple)
        and len(k_range) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in k_range)
    )
    if not ok:
        raise ConfigError(f"k_range={k_range!r} should be two integers [k_min, k_max]")
    lo, hi = int(k_range[0]), int(k_range[1])
    if lo < 2:
        raise ConfigError(f"k range {lo}:{hi} should start at 2 or more (k_min={lo})")
    if lo > hi:
        raise ConfigError(f"k range {lo}:{hi} is empty (k_min={lo} > k_max={hi})")
    if n is not None and hi > n:
        raise ConfigError(f"k range {lo}:{hi} is larger than the number of documents (k_max={hi} > n_samples={n})")
    return lo, hi


def default_k_range(n: int) -> tuple[int, int]:
    """The range searched when none is given: ``2 .. min(200, subset rows // 10)`` (at least 2)."""
    m = min(n, AUTO_K_SAMPLE)
    return K_MIN_DEFAULT, max(K_MIN_DEFAULT, min(K_MAX_DEFAULT, m // MIN_ROWS_PER_CLUSTER))


def candidates(k_min: int, k_max: int, points: int = GRID_POINTS) -> list[int]:
    """About ``points`` integers from ``k_min`` to ``k_max`` (both included), evenly spaced on a
    log scale (every integer when the range is small)."""
    if k_max - k_min + 1 <= points:
        return list(range(k_min, k_max + 1))
    grid = np.geomspace(k_min, k_max, points)
    return sorted({int(round(v)) for v in grid} | {k_min, k_max})


def _pairwise(X: np.ndarray) -> np.ndarray:
    """Euclidean distances (m, m) float32 between the rows of ``X`` (built in place in the Gram
    matrix: one (m, m) array, no temporaries of that size)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    xx = np.einsum("ij,ij->i", X, X)
    d = X @ X.T
    d *= np.float32(-2.0)
    d += xx[:, None]
    d += xx[None, :]
    np.maximum(d, 0.0, out=d)
    np.sqrt(d, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def silhouette_from_distances(D: np.ndarray, labels: np.ndarray) -> float:
    """The mean silhouette of ``labels`` (m,) given the distance matrix ``D`` (m, m), as
    scikit-learn defines it (a member of a singleton cluster scores 0); one matrix product."""
    labels = np.asarray(labels)
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1 if lab.size else 0
    if k < 2 or k >= lab.size:
        return float("nan")
    from scipy import sparse  # lazily, as in kmeans.lloyd

    m = lab.size
    counts = np.bincount(lab, minlength=k).astype(np.float64)
    # (m, k): sum of distances of each row to each cluster, as a sparse one-hot product
    # (O(m^2) whatever k; a dense one-hot product would cost m^2 k)
    onehot_t = sparse.csr_matrix((np.ones(m, dtype=np.float32), (lab, np.arange(m))), shape=(k, m))
    sums = np.asarray(onehot_t @ D, dtype=np.float64).T  # D is symmetric
    own_n = counts[lab]
    a = sums[np.arange(m), lab] / np.maximum(own_n - 1.0, 1.0)
    other = sums / counts[None, :]
    other[np.arange(m), lab] = np.inf
    b = other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own_n <= 1] = 0.0
    return float(np.mean(s))


def smooth_curve(scores: list[float]) -> list[float]:
    """``scores`` averaged with their neighbours on the candidate grid (weights 1-2-1; the two
    ends 2-1), ignoring missing (non-finite) values: one k-means fit's silhouette is noisy from
    candidate to candidate, its expectation is smooth in log k."""
    v = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(v)
    out = np.full(v.shape, np.nan)
    for i in range(v.size):
        if not ok[i]:
            continue
        idx = [j for j in (i - 1, i, i + 1) if 0 <= j < v.size and ok[j]]
        w = np.array([2.0 if j == i else 1.0 for j in idx])
        out[i] = float(np.dot(w, v[idx]) / w.sum())
    return out.tolist()


def _local_maxima(scores: list[float]) -> list[int]:
    """Indices of the interior candidates scoring above their left and at least their right
    neighbour."""
    out = []
    for i in range(1, len(scores) - 1):
        a, b, c = scores[i - 1], scores[i], scores[i + 1]
        if all(math.isfinite(v) for v in (a, b, c)) and b > a and b >= c:
            out.append(i)
    return out


#: A knee of a rising curve counts when it rises at least this share of the strongest knee above
#: the chord (see :func:`knee`).
KNEE_SHARE = 0.5


def knee(ks: list[int], scores: list[float]) -> int | None:
    """Index of the knee of a rising curve; None when the curve is flat or has missing values.

    Kneedle: with log k and the score both scaled to [0, 1], a knee is a local maximum of the
    curve's height above the chord from the first to the last point. A rising curve can have
    several (a coarse split and a finer level); among those at least :data:`KNEE_SHARE` as high
    as the highest, the finest is taken: the run's hierarchy can merge clusters afterwards
    (granularity slider), nothing can split a merged one.
    """
    y = np.asarray(scores, dtype=np.float64)
    if y.size < 3 or not np.isfinite(y).all() or y.max() <= y.min():
        return None
    x = np.log(np.asarray(ks, dtype=np.float64))
    d = (y - y.min()) / (y.max() - y.min()) - (x - x[0]) / (x[-1] - x[0])
    top = float(d.max())
    if top <= 0:
        return int(np.argmax(d))
    peaks = [i for i in range(d.size) if d[i] >= KNEE_SHARE * top
             and (i == 0 or d[i] > d[i - 1]) and (i == d.size - 1 or d[i] >= d[i + 1])]
    return max(peaks)


def _pick(ks: list[int], scores: list[float]) -> tuple[int, str | None]:
    """The chosen k and a warning (or None) from the mean curve: the best candidate, unless it is at
    an end of the range (see the module docstring)."""
    valid = [i for i, v in enumerate(scores) if math.isfinite(v)]
    if not valid:
        return ks[0], f"the {METHOD} could not be computed for any candidate; k={ks[0]} is the range's start"
    best = max(valid, key=lambda i: (scores[i], -i))
    if len(ks) > 2 and best == len(ks) - 1:
        # Still rising at the top of the range: the range holds no optimum. Take the knee of the
        # smoothed curve (where its rise slows most), rather than the range's edge or a noise bump.
        i = knee(ks, smooth_curve(scores))
        chosen = ks[i] if i is not None else ks[best]
        return chosen, (f"the {METHOD} was still rising at k={ks[-1]}, the largest candidate: there is no clear k in "
                        f"this range; k={chosen} is the knee of the curve (where its rise slows most). "
                        "Cut the run with its hierarchy, or pass a k")
    if len(ks) > 2 and best == 0:
        # The smallest candidate wins. The silhouette of a 2-way split is high on most corpora; an
        # interior local maximum is a structure the range actually resolves: take the best one.
        inner = _local_maxima(scores)
        if inner:
            return ks[max(inner, key=lambda i: scores[i])], None
    return ks[best], None


def choose_k(
    X: np.ndarray,
    *,
    k_range: tuple[int, int] | None = None,
    seed: int = 0,
    sample: int = AUTO_K_SAMPLE,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> AutoK:
    """Choose k for ``X`` (n, d), the embedding (may be memory-mapped): see the module docstring.

    k_range: ``(k_min, k_max)`` searched (default :func:`default_k_range`); k_max must not
    exceed n. seed: the subset and every k-means seeding. Deterministic for a given
    (X, k_range, seed, sample). Raises :class:`ConfigError` for an empty or too large range.
    """
    t0 = time.perf_counter()
    n = int(X.shape[0])
    if n < 3:
        raise ConfigError(f"automatic k needs at least 3 rows (n_samples={n}); pass a k")
    lo, hi = check_k_range(tuple(k_range) if k_range is not None else default_k_range(n), n)
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if n <= sample else np.sort(rng.choice(n, size=sample, replace=False))
    S = np.array(X[rows], dtype=np.float32)
    S /= np.maximum(np.linalg.norm(S, axis=1, keepdims=True), np.float32(1e-12))
    m = S.shape[0]
    hi_eff = min(hi, m - 1)
    if hi_eff < lo:
        raise ConfigError(f"k range {lo}:{hi} needs more than {m} rows to compare candidates")
    ks = candidates(lo, hi_eff)
    meter = Meter("auto-k", REPLICATES * len(ks), progress, estimate=True)
    D = _pairwise(S)
    raw = np.full((REPLICATES, len(ks)), np.nan)
    for r in range(REPLICATES):
        # One greedy k-means++ seeding of the largest candidate per replicate: its first k centres
        # are a k-means++ seeding for k, so every candidate starts from a prefix of it (one seeding
        # per replicate, not one per candidate).
        init = kmeans_plusplus(S, ks[-1], rng)
        for i, k in enumerate(ks):
            check_cancel(cancel, "auto-k")
            meter.update(r * len(ks) + i, f"k={k}")
            centers, _, last = lloyd(S, init[:k], SWEEP_MAX_ITER)
            labels = last[0] if last is not None else assign_sq(S, centers)[0]
            raw[r, i] = silhouette_from_distances(D, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a candidate without a finite score stays NaN
        scores = np.nanmean(raw, axis=0).tolist()
    meter.update(REPLICATES * len(ks), "done")
    chosen, warning = _pick(ks, scores)
    return AutoK(
        method=METHOD,
        candidates=[int(k) for k in ks],
        scores=[round(float(s), 6) if math.isfinite(s) else None for s in scores],  # type: ignore[misc]
        chosen=int(chosen),
        k_range=[lo, hi],
        sample=int(m),
        seed=int(seed),
        seconds=round(time.perf_counter() - t0, 3),
        warning=warning,
        raw_scores=[[round(float(v), 6) if math.isfinite(v) else None for v in row] for row in raw],
        replicates=REPLICATES,
    )
