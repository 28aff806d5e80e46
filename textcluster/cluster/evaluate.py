"""Clustering quality metrics, and the evaluation of a saved run.

With reference labels: clustering accuracy (ACC, best one-to-one map of clusters to
classes by the Hungarian algorithm), NMI, ARI and V-measure. Without labels:
silhouette on a seeded sample, Davies-Bouldin, size spread and noise share.
:func:`contingency` is the cluster-by-label count table, ordered so that a good match
reads as a diagonal. :func:`evaluate_run` puts them together for a run in a workspace
(what the app's Evaluate page and ``textcluster evaluate`` show).

Noise (label ``-1``) is handled the same way everywhere: for ACC a noise row is never
matched to a class, so it counts as an error; for NMI, ARI and V-measure noise is one
more group, as scikit-learn treats it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textcluster.errors import ConfigError, StoreError
from textcluster.store import Workspace

logger = logging.getLogger(__name__)

#: Rows used for the silhouette and Davies-Bouldin scores (silhouette is O(n^2)); a seeded sample above this.
SILHOUETTE_SAMPLE = 3_000
#: The cluster-by-label table keeps at most this many clusters and labels (the largest).
MAX_CONTINGENCY_SIDE = 60


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


# --------------------------------------------------------------------- cluster x label
def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name}={value!r} should be an integer >= {minimum}")


@dataclass
class Contingency:
    """Counts of rows per (cluster, label), ordered so that a good match is a diagonal.

    ``clusters`` (rows, noise is ``-1``) go from the largest to the smallest total;
    ``labels`` (columns) follow the row of the cluster that holds most of each label.
    ``counts`` is ``(len(clusters), len(labels))`` int64. ``truncated`` is True when
    only the ``max_side`` largest clusters and labels were kept (rows outside them are
    not counted).
    """

    clusters: list[int]
    labels: list[str]
    counts: np.ndarray
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: lists of ints and strings, ``counts`` as a list of rows."""
        return {"clusters": self.clusters, "labels": self.labels, "counts": self.counts.tolist(),
                "truncated": self.truncated}


def contingency(
    labels_true: Sequence[Any] | np.ndarray,
    labels_pred: np.ndarray,
    max_side: int = MAX_CONTINGENCY_SIDE,
) -> Contingency:
    """The cluster-by-label count table of ``labels_pred`` against ``labels_true`` (both (n,)).

    Keeps the ``max_side`` largest clusters and the ``max_side`` largest labels (ties:
    smaller id first) and the rows that fall in both; a cluster or label left with no
    row is dropped. Labels are compared as given and reported as strings.
    """
    _check_int("max_side", max_side, 1)
    y = np.asarray(labels_true).reshape(-1)
    p = np.asarray(labels_pred).reshape(-1)
    if y.shape[0] != p.shape[0]:
        raise ConfigError(f"labels_true has {y.shape[0]} rows but labels_pred has {p.shape[0]}")
    clusters, pc, csize = np.unique(p, return_inverse=True, return_counts=True)
    labels, yc, lsize = np.unique(y, return_inverse=True, return_counts=True)
    pc, yc = pc.reshape(-1), yc.reshape(-1)
    top_c = np.sort(np.lexsort((np.arange(csize.size), -csize))[:max_side])
    top_l = np.sort(np.lexsort((np.arange(lsize.size), -lsize))[:max_side])
    table = np.zeros((clusters.size, labels.size), dtype=np.int64)
    np.add.at(table, (pc, yc), 1)
    table = table[np.ix_(top_c, top_l)]
    rows = np.flatnonzero(table.sum(axis=1) > 0)
    cols = np.flatnonzero(table.sum(axis=0) > 0)
    table = table[np.ix_(rows, cols)]
    # Rows: largest total first (stable, so ties keep the smaller cluster id first).
    order_r = np.argsort(-table.sum(axis=1), kind="stable")
    table = table[order_r]
    # Columns: by the position of the row that holds most of the label, then by that count.
    best = table.argmax(axis=0) if table.size else np.zeros(0, dtype=np.int64)
    order_c = np.lexsort((np.arange(best.size), -table.max(axis=0, initial=0), best))
    table = table[:, order_c]
    return Contingency(
        clusters=[int(c) for c in clusters[top_c][rows][order_r]],
        labels=[str(v) for v in labels[top_l][cols][order_c]],
        counts=table,
        truncated=bool(clusters.size > max_side or labels.size > max_side),
    )


# --------------------------------------------------------------------- a saved run
def reference_labels(ws: Workspace, corpus_id: str | None, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The corpus's ``label`` column as ``(labels, has)``: ``has`` is the (n,) bool mask of the
    rows with a label, ``labels`` their labels as strings (``has.sum()`` of them).

    None when there is no such corpus or column, or when the column does not have ``n``
    rows (logged: then the corpus is not the one the labels being scored came from).
    """
    if not corpus_id or not ws.exists(corpus_id):
        return None
    import pyarrow.parquet as pq

    p = ws.file(corpus_id, "docs.parquet")
    if "label" not in pq.read_schema(p).names:
        return None
    lab = pq.read_table(p, columns=["label"]).column("label").to_numpy(zero_copy_only=False)
    if lab.shape[0] != n:
        logger.warning("corpus %s has %d labels but the embedding %d rows", corpus_id, lab.shape[0], n)
        return None
    has = np.array([v is not None for v in lab], dtype=bool)
    return lab[has].astype(str), has


@dataclass
class RunEvaluation:
    """How good a saved run is (see :func:`evaluate_run`).

    - ``n``: rows of the run; ``k``: clusters (noise not counted).
    - ``labelled``: rows with a reference label (0 without a label column); ``classes``:
      distinct labels among them.
    - ``supervised``: :func:`supervised` on the labelled rows, None when there are none.
    - ``diagnostics``: :func:`unsupervised` on the run's embedding (the space before any
      reducer, so runs with different reducers compare), seeded by the run's seed.
    - ``sizes``: cluster sizes, largest first (noise not counted).
    - ``contingency``: :func:`contingency` on the labelled rows, None without labels.
    """

    run_id: str
    corpus_id: str | None
    n: int
    k: int
    labelled: int
    classes: int
    supervised: dict[str, float] | None
    diagnostics: dict[str, float | None]
    sizes: list[int]
    contingency: Contingency | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``textcluster evaluate --json`` prints)."""
        return {
            "run_id": self.run_id, "corpus_id": self.corpus_id, "n": self.n, "k": self.k,
            "labelled": self.labelled, "classes": self.classes, "supervised": self.supervised,
            "diagnostics": self.diagnostics, "sizes": self.sizes,
            "contingency": None if self.contingency is None else self.contingency.to_dict(),
        }


def evaluate_run(
    ws: Workspace,
    run_id: str,
    *,
    max_side: int = MAX_CONTINGENCY_SIDE,
    sample: int = SILHOUETTE_SAMPLE,
) -> RunEvaluation:
    """Score the run ``run_id`` against its corpus's ``label`` column, and without labels.

    Only the labelled rows are scored against labels; noise is handled as in
    :func:`supervised`. The label-free diagnostics use the run's embedding (memory-mapped)
    and a seeded sample of at most ``sample`` rows. ``max_side`` bounds the cluster-by-label
    table. Raises :class:`~textcluster.errors.StoreError` for an unknown id or one that is
    not a run, :class:`~textcluster.errors.ConfigError` for a bad ``max_side`` or ``sample``.
    """
    from textcluster.embed.engine import load_embeddings

    _check_int("max_side", max_side, 1)
    _check_int("sample", sample, 2)
    m = ws.manifest(run_id)
    if m.get("kind") != "run":
        raise StoreError(f"{run_id!r} is not a run (its kind is {m.get('kind')!r})")
    corpus_id = m.get("corpus_id")
    pred = np.load(ws.file(run_id, "labels.npy"))
    ref = reference_labels(ws, corpus_id, pred.shape[0])
    truth, has = ref if ref is not None else (np.zeros(0, dtype=str), np.zeros(pred.shape[0], dtype=bool))
    scores = table = None
    if truth.size:
        scores = supervised(truth, pred[has])
        table = contingency(truth, pred[has], max_side=max_side)
    seed = int((m.get("clusterer") or {}).get("seed", 0) or 0)
    X = load_embeddings(ws, m["embedding_id"], mmap=True)
    sizes = np.bincount(pred[pred >= 0]) if (pred >= 0).any() else np.zeros(0, dtype=np.int64)
    sizes = np.sort(sizes[sizes > 0])[::-1]
    return RunEvaluation(
        run_id=run_id,
        corpus_id=corpus_id,
        n=int(pred.shape[0]),
        k=int(sizes.size),
        labelled=int(has.sum()),
        classes=int(np.unique(truth).size),
        supervised=scores,
        diagnostics=unsupervised(X, pred, seed=seed, sample=sample),
        sizes=[int(v) for v in sizes],
        contingency=table,
    )
