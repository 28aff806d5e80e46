"""Clustering quality metrics, and the evaluation of a saved run.

With reference labels: clustering accuracy (ACC, best one-to-one map of clusters to
classes by the Hungarian algorithm), NMI, ARI and V-measure. Without labels:
silhouette on a seeded sample, Davies-Bouldin, size spread and noise share.
:func:`contingency` is the cluster-by-label count table, ordered so that a good match
reads as a diagonal. :func:`evaluate_run` puts them together for a run in a workspace
(what the app's Evaluate page and ``textcluster evaluate`` show).

A run's label-free scores are computed in one space, :data:`METRICS_SPACE` (``"embedding"``):
the run's embedding vectors, before any reducer, L2-normalised, with Euclidean distances
(a monotone function of cosine), on a sample of at most :data:`SILHOUETTE_SAMPLE` non-noise
rows seeded by the run's seed (:func:`embedding_scores`). So runs of one embedding with
different reducers compare, and the cluster stage (which stores them in the run manifest,
with ``metrics_space``) and :func:`evaluate_run` report the same numbers.

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
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from textcluster.embed.engine import load_embeddings
from textcluster.errors import ConfigError, StoreError
from textcluster.store import RunManifest, Workspace, check_id

logger = logging.getLogger(__name__)

#: Rows used for the silhouette and Davies-Bouldin scores (silhouette is O(n^2)); a seeded sample above this.
SILHOUETTE_SAMPLE = 3_000
#: The cluster-by-label table keeps at most this many clusters and labels (the largest).
MAX_CONTINGENCY_SIDE = 60
#: The space of a run's label-free scores (the run manifest's ``metrics_space``), see :func:`embedding_scores`.
METRICS_SPACE = "embedding"
#: :data:`METRICS_SPACE` in words, as the CLI and the app name it.
METRICS_SPACE_TEXT = (
    f"the run's embedding before any reducer, L2-normalised, Euclidean; "
    f"seeded sample of at most {SILHOUETTE_SAMPLE:,} non-noise rows"
)
#: The label-free scores of :func:`unsupervised` (the keys a run manifest stores in ``metrics``).
LABEL_FREE_KEYS = ("silhouette", "davies_bouldin", "size_cv", "size_min_share", "size_max_share", "noise")
#: The label field a run is scored against when none is named (when its corpus has that column).
DEFAULT_LABEL_FIELD = "label"


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
    from scipy.optimize import (
        linear_sum_assignment,  # lazily: importing scipy's solvers takes ~0.3-0.7 s, paid by the CLI's start otherwise
    )

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
    normalize: bool = False,
) -> dict[str, float | None]:
    """Label-free diagnostics of a clustering of ``X`` (n x d, may be memory-mapped) with ``labels`` (n,).

    - ``silhouette``: scikit-learn's Euclidean ``silhouette_score``, in [-1, 1], on a
      sample of at most ``sample`` non-noise rows drawn with ``numpy.random.default_rng(seed)``
      (None when fewer than 2 clusters).
    - ``davies_bouldin``: >= 0, lower is better, on the same sample (None when fewer
      than 2 clusters).
    - ``size_cv``: coefficient of variation of the cluster sizes (0 = equal sizes).
    - ``size_min_share`` / ``size_max_share``: smallest and largest cluster as a share of n.
    - ``noise``: share of rows labelled -1.

    ``normalize=True`` L2-normalises the sampled rows first (only they are read, so a
    memory-mapped ``X`` is never loaded whole). A run's scores use :func:`embedding_scores`.
    """
    from sklearn import metrics as skm

    labels = np.asarray(labels).reshape(-1)
    n = labels.shape[0]
    if n == 0:
        raise ConfigError("cannot score an empty clustering (0 rows)")
    if X.shape[0] != n:
        raise ConfigError(f"X has {X.shape[0]} rows but labels has {n}")
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
    xs = np.array(X[member], dtype=np.float32)
    if normalize:
        xs /= np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), np.float32(1e-12))
    ls = labels[member]
    n_groups = np.unique(ls).size
    if n_groups < 2 or n_groups >= ls.size:  # scikit-learn needs 2 <= groups <= rows - 1
        return out
    # The sample is drawn above (not by silhouette_score's sample_size) so that both scores use it.
    out["silhouette"] = float(skm.silhouette_score(xs, ls, metric="euclidean"))
    out["davies_bouldin"] = float(skm.davies_bouldin_score(xs, ls))
    return out


def embedding_scores(X: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> dict[str, float | None]:
    """A run's label-free scores in :data:`METRICS_SPACE`: :func:`unsupervised` of the run's
    embedding ``X`` (n x dim, the vectors before any reducer) with ``normalize=True``, on at
    most :data:`SILHOUETTE_SAMPLE` non-noise rows seeded by ``seed`` (the run's seed).

    The cluster stage stores these in the run manifest and :func:`evaluate_run` reads them
    back (or calls this with the same seed), so one run has one silhouette wherever it is shown.
    """
    return unsupervised(X, labels, seed=seed, sample=SILHOUETTE_SAMPLE, normalize=True)


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
    # Count only the rows inside the kept clusters and labels: a label field with a value per
    # row (an id column) would otherwise allocate clusters x rows.
    row_of = np.full(clusters.size, -1, dtype=np.int64)
    row_of[top_c] = np.arange(top_c.size)
    col_of = np.full(labels.size, -1, dtype=np.int64)
    col_of[top_l] = np.arange(top_l.size)
    r, c = row_of[pc], col_of[yc]
    inside = (r >= 0) & (c >= 0)
    table = np.zeros((top_c.size, top_l.size), dtype=np.int64)
    np.add.at(table, (r[inside], c[inside]), 1)
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
def corpus_columns(ws: Workspace, corpus_id: str) -> list[str]:
    """Column names of the corpus's ``docs.parquet``, in file order (any of them can be a label field)."""
    return list(pq.read_schema(ws.file(corpus_id, "docs.parquet")).names)


def _present(col: pa.ChunkedArray) -> np.ndarray:
    """(n,) bool: the rows of ``col`` that have a value (not null, not NaN, not a blank string)."""
    has = pc.invert(pc.is_null(col, nan_is_null=True))
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        has = pc.and_(has, pc.not_equal(pc.utf8_trim_whitespace(col), ""))
    return has.to_numpy(zero_copy_only=False).astype(bool)


def _as_strings(col: pa.ChunkedArray) -> np.ndarray:
    """The values of ``col`` as an (n,) array of str (nulls as "")."""
    try:
        col = pc.cast(col, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.array(["" if v is None else str(v) for v in col.to_pylist()], dtype=str)
    return np.array(pc.fill_null(col, "").to_pylist(), dtype=str)


def reference_labels(
    ws: Workspace, corpus_id: str | None, n: int, field: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The corpus column ``field`` as reference labels ``(labels, has)``.

    ``has`` is the (n,) bool mask of the rows with a value (null, NaN and blank strings
    are no value); ``labels`` holds those rows' values as strings (``has.sum()`` of them).
    Any column of ``docs.parquet`` can serve (a metadata column too).

    ``field=None`` means :data:`DEFAULT_LABEL_FIELD` when the corpus has it, and returns
    None when there is no such corpus or column, or when the column does not have ``n``
    rows (logged: then the corpus is not the one the labels being scored came from).
    A named ``field`` must be there: :class:`~textcluster.errors.ConfigError` lists the
    corpus's columns when it is not, :class:`~textcluster.errors.StoreError` says why when
    the corpus is missing or its row count differs from ``n``.
    """
    named = field is not None
    if not corpus_id or not ws.exists(corpus_id):
        if named:
            raise StoreError(f"the run's corpus {corpus_id!r} is not in the workspace; cannot read label field {field!r}")
        return None
    columns = corpus_columns(ws, corpus_id)
    field = field if named else DEFAULT_LABEL_FIELD
    if field not in columns:
        if named:
            raise ConfigError(
                f"label field {field!r} is not a column of corpus {corpus_id}; its columns: {', '.join(columns)}"
            )
        return None
    col = pq.read_table(ws.file(corpus_id, "docs.parquet"), columns=[field]).column(field)
    if len(col) != n:
        msg = f"corpus {corpus_id} has {len(col)} rows but the run {n}"
        if named:
            raise StoreError(f"{msg}; cannot score against label field {field!r}")
        logger.warning("%s; not scoring against %r", msg, field)
        return None
    has = _present(col)
    return _as_strings(col)[has], has


@dataclass
class RunEvaluation:
    """How good a saved run is (see :func:`evaluate_run`).

    - ``n``: rows of the run; ``k``: clusters (noise not counted).
    - ``label_field``: the corpus column scored against (None: no labels);
      ``n_labelled``: rows with a value in it (the only rows scored against labels);
      ``classes``: distinct values among them.
    - ``supervised``: :func:`supervised` on the labelled rows, None when there are none.
    - ``diagnostics``: the label-free scores (:data:`LABEL_FREE_KEYS`) in ``space``
      (:data:`METRICS_SPACE`, see :func:`embedding_scores`).
    - ``sizes``: cluster sizes, largest first (noise not counted).
    - ``contingency``: :func:`contingency` on the labelled rows, None without labels.
    """

    run_id: str
    corpus_id: str | None
    label_field: str | None
    n: int
    k: int
    n_labelled: int
    classes: int
    supervised: dict[str, float] | None
    diagnostics: dict[str, float | None]
    space: str
    sizes: list[int]
    contingency: Contingency | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready and flat (what ``textcluster evaluate --json`` prints).

        ``run_id``, ``corpus_id``, ``label_field``, ``n``, ``k``, ``n_labelled``, ``classes``;
        ``acc``, ``nmi``, ``ari``, ``v_measure`` (None without labels); the label-free scores
        and ``space``; then ``sizes`` and ``contingency`` (a dict, None without labels).
        """
        scores = self.supervised or {}
        return {
            "run_id": self.run_id, "corpus_id": self.corpus_id, "label_field": self.label_field,
            "n": self.n, "k": self.k, "n_labelled": self.n_labelled, "classes": self.classes,
            **{key: scores.get(key) for key in ("acc", "nmi", "ari", "v_measure")},
            **{key: self.diagnostics.get(key) for key in LABEL_FREE_KEYS},
            "space": self.space,
            "sizes": self.sizes,
            "contingency": None if self.contingency is None else self.contingency.to_dict(),
        }


def stored_scores(manifest: RunManifest) -> dict[str, float | None] | None:
    """The label-free scores a run manifest holds in :data:`METRICS_SPACE`, or None.

    None for runs written before the scores moved to that space (their ``metrics`` were
    computed after the reducer and carry no ``metrics_space``).
    """
    metrics = manifest.metrics or {}
    if manifest.metrics_space != METRICS_SPACE or not all(key in metrics for key in LABEL_FREE_KEYS):
        return None
    return {key: metrics[key] for key in LABEL_FREE_KEYS}


def evaluate_run(
    ws: Workspace,
    run_id: str,
    *,
    label_field: str | None = None,
    max_side: int = MAX_CONTINGENCY_SIDE,
) -> RunEvaluation:
    """Score the run ``run_id`` against a column of its corpus, and without labels.

    ``label_field``: any column of the corpus's ``docs.parquet``; None (default) means
    :data:`DEFAULT_LABEL_FIELD` when the corpus has it, else no scores against labels.
    Only the rows with a value are scored against labels (``n_labelled``); noise is
    handled as in :func:`supervised`. The label-free scores are the run manifest's when it
    holds them in :data:`METRICS_SPACE` (:func:`stored_scores`), else :func:`embedding_scores`
    of the run's embedding (memory-mapped) with the run's seed: the same numbers.
    ``max_side`` bounds the cluster-by-label table. Writes nothing.

    Raises :class:`~textcluster.errors.StoreError` for an unknown id or one that is not a
    run, :class:`~textcluster.errors.ConfigError` for a label field the corpus does not
    have (listing its columns) or a bad ``max_side``.
    """
    _check_int("max_side", max_side, 1)
    m = ws.manifest(check_id(run_id, "run"))
    corpus_id = m.corpus_id
    pred = np.load(ws.file(run_id, "labels.npy"))
    ref = reference_labels(ws, corpus_id, pred.shape[0], label_field)
    field = label_field if label_field is not None else (DEFAULT_LABEL_FIELD if ref is not None else None)
    truth, has = ref if ref is not None else (np.zeros(0, dtype=str), np.zeros(pred.shape[0], dtype=bool))
    scores = table = None
    if truth.size:
        scores = supervised(truth, pred[has])
        table = contingency(truth, pred[has], max_side=max_side)
    diagnostics = stored_scores(m)
    if diagnostics is None:
        seed = int((m.clusterer or {}).get("seed", 0) or 0)
        diagnostics = embedding_scores(load_embeddings(ws, m.embedding_id, mmap=True), pred, seed=seed)
    sizes = np.bincount(pred[pred >= 0]) if (pred >= 0).any() else np.zeros(0, dtype=np.int64)
    sizes = np.sort(sizes[sizes > 0])[::-1]
    return RunEvaluation(
        run_id=run_id,
        corpus_id=corpus_id,
        label_field=field,
        n=int(pred.shape[0]),
        k=int(sizes.size),
        n_labelled=int(has.sum()),
        classes=int(np.unique(truth).size),
        supervised=scores,
        diagnostics=diagnostics,
        space=METRICS_SPACE,
        sizes=[int(v) for v in sizes],
        contingency=table,
    )
