"""A hierarchy of a run's clusters: a linkage of the cluster centres, and cuts through it.

The cluster stage stores ``hierarchy.npy``, a SciPy linkage matrix ((k-1, 4) float64,
Ward's method on the centres weighted by nothing but their positions) of the run's clusters,
so coarser levels come without re-embedding or re-clustering. :func:`cut` maps every cluster
to a group at a chosen number of groups; :func:`cut_levels` lists the levels a slider offers;
:func:`leaf_order` orders clusters so that similar ones sit side by side (the centre-distance
heatmap's order).
"""

from __future__ import annotations

import numpy as np

from textcluster.errors import ConfigError
from textcluster.store import Workspace, check_id


def linkage(centers: np.ndarray) -> np.ndarray:
    """Ward linkage (k-1, 4) float64 of ``centers`` (k, d); an empty (0, 4) array when k < 2."""
    from scipy.cluster.hierarchy import linkage as _linkage

    C = np.asarray(centers, dtype=np.float64)
    if C.shape[0] < 2:
        return np.zeros((0, 4))
    return _linkage(C, method="ward")


def cut(Z: np.ndarray, k: int, level: int) -> np.ndarray:
    """Group (k,) int64 of each of the ``k`` clusters when the hierarchy ``Z`` is cut into
    ``level`` groups (1 <= level <= k); groups are numbered 0..level-1 in the order of their
    smallest cluster id."""
    if not 1 <= level <= k:
        raise ConfigError(f"level={level} should be between 1 and the run's k={k}")
    if level == k or Z.shape[0] == 0:
        return np.arange(k) if level == k else np.zeros(k, dtype=np.int64)
    from scipy.cluster.hierarchy import cut_tree

    g = cut_tree(Z, n_clusters=level).reshape(-1)
    _, first = np.unique(g, return_index=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(np.argsort(first))] = np.arange(first.size)
    renum = np.empty(int(g.max()) + 1, dtype=np.int64)
    renum[np.unique(g)] = rank
    return renum[g]


def leaf_order(Z: np.ndarray, k: int) -> np.ndarray:
    """Cluster ids (k,) in dendrogram leaf order."""
    if Z.shape[0] == 0:
        return np.arange(k)
    from scipy.cluster.hierarchy import leaves_list

    return leaves_list(Z).astype(np.int64)


def load(ws: Workspace, run_id: str) -> np.ndarray:
    """The run's ``hierarchy.npy`` linkage; computed from ``centers.npy`` for runs saved before
    hierarchies were stored (not written: runs are immutable)."""
    check_id(run_id, "run")
    p = ws.path(run_id) / "hierarchy.npy"
    if p.is_file():
        return np.load(p)
    return linkage(np.load(ws.file(run_id, "centers.npy")))


def cut_levels(ws: Workspace, run_id: str, max_levels: int = 12) -> list[int]:
    """The numbers of groups a granularity slider offers for a run: from 2 up to the run's k,
    at most ``max_levels`` values spaced on a log scale, always including k (the run itself)."""
    k = int(ws.manifest(check_id(run_id, "run")).k_centers or ws.manifest(run_id).k)
    if k < 2:
        return [k] if k else []
    if k - 1 <= max_levels:
        return list(range(2, k + 1))
    grid = np.geomspace(2, k, max_levels)
    return sorted({int(round(v)) for v in grid} | {2, k})


def level_labels(ws: Workspace, run_id: str, level: int) -> np.ndarray:
    """Row labels (n,) int32 of the run cut to ``level`` groups (noise stays -1)."""
    m = ws.manifest(check_id(run_id, "run"))
    k = int(m.k_centers if m.k_centers is not None else m.k)
    groups = cut(load(ws, run_id), k, level)
    labels = np.load(ws.file(run_id, "labels.npy"))
    out = np.full(labels.shape[0], -1, dtype=np.int32)
    member = labels >= 0
    out[member] = groups[labels[member]]
    return out
