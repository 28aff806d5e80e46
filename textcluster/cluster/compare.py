"""Compare two runs of the same corpus: ARI, NMI, a matched contingency and what changed.

:func:`compare_labels` works on two label arrays (n,) of the same documents (-1 = noise);
:func:`compare_runs` reads two runs of one corpus (two methods, two k, a run and one of its
edited versions) and adds the clusters' names.

- ``ari``, ``nmi``: the adjusted Rand index and the normalised mutual information
  (arithmetic mean of the entropies, scikit-learn's default) over all documents, noise
  counted as one more group; both 1.0 for identical partitions (up to relabelling).
- the contingency: counts of documents per (cluster of A, cluster of B). Clusters are
  matched one to one by the Hungarian algorithm on the counts (most shared documents),
  matched pairs come first, largest first, so matching clusters sit on the diagonal; the
  clusters left unmatched follow; noise (-1) comes last on both sides.
- the changes, a plain list. With ``t`` = :data:`OVERLAP` (0.5) and ``n_ab`` the documents
  cluster ``a`` of A shares with cluster ``b`` of B, ``a`` *feeds* ``b`` when
  ``n_ab >= t * |b|`` (most of ``b`` came from ``a``) and ``a`` *goes to* ``b`` when
  ``n_ab >= t * |a|`` (most of ``a`` went to ``b``):

  - **split**: ``a`` feeds two or more clusters of B;
  - **merged**: two or more clusters of A go to the same ``b``;
  - **vanished**: ``a`` neither feeds nor goes to any cluster of B (e.g. dropped to noise);
  - **appeared**: ``b`` is neither fed nor gone to by any cluster of A.

  Noise is never listed; a cluster kept as it was (or only renamed) is not a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textcluster.cluster.versions import run_names
from textcluster.errors import ConfigError
from textcluster.store import Workspace, check_id

#: Share of a cluster that must be shared for a split / merge link (see the module docstring).
OVERLAP = 0.5


@dataclass
class Change:
    """One line of what changed: ``kind`` (split | merged | appeared | vanished), the clusters
    of A and of B it involves, the documents concerned and a sentence saying it."""

    kind: str
    a: list[int]
    b: list[int]
    docs: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "a": self.a, "b": self.b, "docs": self.docs, "text": self.text}


@dataclass
class Comparison:
    """The comparison of two partitions of the same ``n`` documents.

    rows / cols: cluster ids of A / B in contingency order (noise -1 last); counts:
    (len(rows), len(cols)) int64; matched: the number of leading (row, col) pairs that
    the Hungarian matching paired (they sit on the diagonal); changes: see the module
    docstring; names_a / names_b: cluster names (empty when the runs have none).
    """

    run_a: str | None
    run_b: str | None
    n: int
    ari: float
    nmi: float
    rows: list[int]
    cols: list[int]
    counts: np.ndarray
    matched: int
    changes: list[Change] = field(default_factory=list)
    names_a: dict[int, str] = field(default_factory=dict)
    names_b: dict[int, str] = field(default_factory=dict)
    overlap: float = OVERLAP

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's ``--json`` output)."""
        return {
            "run_a": self.run_a, "run_b": self.run_b, "n": self.n, "ari": self.ari, "nmi": self.nmi,
            "overlap": self.overlap,
            "contingency": {"rows": self.rows, "cols": self.cols, "counts": self.counts.tolist(),
                            "matched": self.matched},
            "changes": [c.to_dict() for c in self.changes],
            "names_a": {str(k): v for k, v in self.names_a.items()},
            "names_b": {str(k): v for k, v in self.names_b.items()},
        }


def _comb2(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float((x * (x - 1) / 2).sum())


def ari_from_table(table: np.ndarray) -> float:
    """The adjusted Rand index from a full contingency table (same value as scikit-learn's
    ``adjusted_rand_score`` on the labels); 1.0 when both partitions are one same group."""
    n = int(table.sum())
    sum_ij = _comb2(table[table > 0])
    sum_a, sum_b = _comb2(table.sum(axis=1)), _comb2(table.sum(axis=0))
    total = n * (n - 1) / 2
    if total == 0:
        return 1.0
    expected = sum_a * sum_b / total
    top = (sum_a + sum_b) / 2
    if top == expected:
        return 1.0
    return float((sum_ij - expected) / (top - expected))


def nmi_from_table(table: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean of the two entropies) from a contingency
    table; 1.0 when both partitions have a single group (scikit-learn's convention)."""
    n = float(table.sum())
    pa_, pb_ = table.sum(axis=1) / n, table.sum(axis=0) / n
    ha = -float(np.sum(pa_[pa_ > 0] * np.log(pa_[pa_ > 0])))
    hb = -float(np.sum(pb_[pb_ > 0] * np.log(pb_[pb_ > 0])))
    if ha == 0 and hb == 0:
        return 1.0
    i, j = np.nonzero(table)
    pij = table[i, j] / n
    mi = float(np.sum(pij * (np.log(pij) - np.log(pa_[i]) - np.log(pb_[j]))))
    denom = (ha + hb) / 2
    return float(max(0.0, mi / denom)) if denom > 0 else 0.0


def _table(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids of A, ids of B, counts) over all rows, in one pass (O(n))."""
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    flat = np.bincount(ia.reshape(-1).astype(np.int64) * ub.size + ib.reshape(-1), minlength=ua.size * ub.size)
    return ua, ub, flat.reshape(ua.size, ub.size)


def _order(ua: np.ndarray, ub: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Row and column orders that put the Hungarian matching on the diagonal (largest first),
    then the unmatched clusters (largest first), noise last; and the number of matched pairs."""
    from scipy.optimize import linear_sum_assignment

    ra, cb = np.flatnonzero(ua >= 0), np.flatnonzero(ub >= 0)
    sub = table[np.ix_(ra, cb)]
    pairs: list[tuple[int, int, int]] = []
    if sub.size:
        r, c = linear_sum_assignment(sub, maximize=True)
        pairs = [(int(ra[i]), int(cb[j]), int(sub[i, j])) for i, j in zip(r, c, strict=True) if sub[i, j] > 0]
    pairs.sort(key=lambda p: (-p[2], ua[p[0]], ub[p[1]]))
    used_r, used_c = {p[0] for p in pairs}, {p[1] for p in pairs}
    rest_r = sorted((i for i in ra.tolist() if i not in used_r), key=lambda i: (-int(table[i].sum()), ua[i]))
    rest_c = sorted((j for j in cb.tolist() if j not in used_c), key=lambda j: (-int(table[:, j].sum()), ub[j]))
    noise_r = np.flatnonzero(ua < 0).tolist()
    noise_c = np.flatnonzero(ub < 0).tolist()
    rows = np.array([p[0] for p in pairs] + rest_r + noise_r, dtype=np.int64)
    cols = np.array([p[1] for p in pairs] + rest_c + noise_c, dtype=np.int64)
    return rows, cols, len(pairs)


def _changes(
    ua: np.ndarray, ub: np.ndarray, table: np.ndarray, overlap: float,
    names_a: dict[int, str], names_b: dict[int, str],
) -> list[Change]:
    def na(c: int) -> str:
        return f"{c} ({names_a[c]})" if c in names_a else str(c)

    def nb(c: int) -> str:
        return f"{c} ({names_b[c]})" if c in names_b else str(c)

    ra, cb = np.flatnonzero(ua >= 0), np.flatnonzero(ub >= 0)
    t = table[np.ix_(ra, cb)].astype(np.float64)
    # totals over every row (noise included): a cluster of A sent to noise still has its size
    full_a = table[ra].sum(axis=1).astype(np.float64)
    full_b = table[:, cb].sum(axis=0).astype(np.float64)
    feeds = (t > 0) & (t >= overlap * full_b[None, :])  # most of b came from a
    goes = (t > 0) & (t >= overlap * full_a[:, None])  # most of a went to b
    out: list[Change] = []
    for i in range(ra.size):
        js = np.flatnonzero(feeds[i])
        if js.size >= 2:
            a, bs = int(ua[ra[i]]), [int(ub[cb[j]]) for j in js]
            out.append(Change("split", [a], bs, int(t[i, js].sum()),
                              f"cluster {na(a)} of A split into {', '.join(nb(b) for b in bs)} of B"))
    for j in range(cb.size):
        is_ = np.flatnonzero(goes[:, j])
        if is_.size >= 2:
            b, as_ = int(ub[cb[j]]), [int(ua[ra[i]]) for i in is_]
            out.append(Change("merged", as_, [b], int(t[is_, j].sum()),
                              f"clusters {', '.join(na(a) for a in as_)} of A merged into {nb(b)} of B"))
    linked = feeds | goes
    for i in np.flatnonzero(~linked.any(axis=1)):
        a = int(ua[ra[i]])
        out.append(Change("vanished", [a], [], int(full_a[i]),
                          f"cluster {na(a)} of A ({int(full_a[i]):,} docs) has no counterpart in B"))
    for j in np.flatnonzero(~linked.any(axis=0)):
        b = int(ub[cb[j]])
        out.append(Change("appeared", [], [b], int(full_b[j]),
                          f"cluster {nb(b)} of B ({int(full_b[j]):,} docs) has no counterpart in A"))
    return out


def compare_labels(
    a: np.ndarray, b: np.ndarray, *, overlap: float = OVERLAP,
    names_a: dict[int, str] | None = None, names_b: dict[int, str] | None = None,
    run_a: str | None = None, run_b: str | None = None,
) -> Comparison:
    """Compare two partitions ``a`` and ``b`` (n,) ints of the same documents (-1 = noise).

    overlap: the share that makes a split / merge link (default :data:`OVERLAP`, in (0, 1]).
    Raises :class:`ConfigError` when the arrays differ in length or are empty.
    """
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if a.shape[0] != b.shape[0]:
        raise ConfigError(f"the runs label different numbers of documents: {a.shape[0]} and {b.shape[0]}")
    if a.shape[0] == 0:
        raise ConfigError("cannot compare two empty runs (0 documents)")
    if not (0 < overlap <= 1):
        raise ConfigError(f"overlap={overlap!r} should be in (0, 1]")
    names_a, names_b = dict(names_a or {}), dict(names_b or {})
    ua, ub, table = _table(a, b)
    rows, cols, matched = _order(ua, ub, table)
    return Comparison(
        run_a=run_a, run_b=run_b, n=int(a.shape[0]),
        ari=ari_from_table(table), nmi=nmi_from_table(table),
        rows=[int(x) for x in ua[rows]], cols=[int(x) for x in ub[cols]],
        counts=table[np.ix_(rows, cols)].astype(np.int64), matched=matched,
        changes=_changes(ua, ub, table, overlap, names_a, names_b),
        names_a=names_a, names_b=names_b, overlap=overlap,
    )


def compare_runs(ws: Workspace, run_a: str, run_b: str, *, overlap: float = OVERLAP) -> Comparison:
    """Compare two runs of the same corpus (:func:`compare_labels` of their ``labels.npy``,
    with their cluster names). :class:`ConfigError` when they cluster different corpora."""
    check_id(run_a, "run")
    check_id(run_b, "run")
    ca, cb = ws.corpus_of(run_a), ws.corpus_of(run_b)
    if ca != cb:
        raise ConfigError(
            f"{run_a} clusters corpus {ca} and {run_b} clusters corpus {cb}: only runs of the same corpus compare"
        )
    la = np.load(ws.file(run_a, "labels.npy"), mmap_mode="r")
    lb = np.load(ws.file(run_b, "labels.npy"), mmap_mode="r")
    return compare_labels(
        np.asarray(la), np.asarray(lb), overlap=overlap,
        names_a=run_names(ws, run_a), names_b=run_names(ws, run_b), run_a=run_a, run_b=run_b,
    )
