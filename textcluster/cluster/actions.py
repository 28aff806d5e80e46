"""One-click actions on a run that write a run version (:func:`textcluster.cluster.versions.derive_run`).

- :func:`save_level`: the run cut to a coarser level of its cluster hierarchy
  (edit ``{"op": "level", "k": K}``): every cluster joins its group at K groups.
- :func:`assign_noise`: every noise row joins the cluster whose centre is nearest in the
  run's clustering space (edit ``{"op": "assign_noise"}``).

Both record their parent run; the same action on the same run is the same version (a cache hit).
"""

from __future__ import annotations

import numpy as np

from textcluster.cluster import hierarchy as hier
from textcluster.cluster.distances import nearest_center
from textcluster.cluster.runs import RunResult
from textcluster.cluster.versions import cluster_space, derive_run
from textcluster.errors import ConfigError
from textcluster.progress import ProgressFn
from textcluster.store import Workspace, check_id


def save_level(ws: Workspace, run_id: str, level: int, progress: ProgressFn | None = None) -> RunResult:
    """Write the version of ``run_id`` cut to ``level`` groups of its hierarchy (1 <= level <= k).

    New texts under it go to their parent cluster's group (``label_map``)."""
    m = ws.manifest(check_id(run_id, "run"))
    k = int(m.k_centers if m.k_centers is not None else m.k)
    if isinstance(level, bool) or not isinstance(level, int | np.integer):
        raise ConfigError(f"level={level!r} should be a whole number of groups")
    groups = hier.cut(hier.load(ws, run_id), k, int(level))
    labels = np.load(ws.file(run_id, "labels.npy"))
    out = np.where(labels >= 0, groups[np.maximum(labels, 0)], -1)
    label_map = {int(c): int(groups[c]) for c in range(k)}
    return derive_run(ws, run_id, out, edit={"op": "level", "k": int(level)}, label_map=label_map,
                      progress=progress)


def assign_noise(ws: Workspace, run_id: str, progress: ProgressFn | None = None) -> RunResult:
    """Write the version of ``run_id`` where every noise row (-1) joins its nearest centre.

    :class:`ConfigError` when the run has no noise or no clusters."""
    labels = np.load(ws.file(check_id(run_id, "run"), "labels.npy"))
    noise = np.flatnonzero(labels < 0)
    if noise.size == 0:
        raise ConfigError(f"run {run_id} has no noise rows to assign")
    centers = np.load(ws.file(run_id, "centers.npy"))
    present = np.unique(labels[labels >= 0])
    if present.size == 0:
        raise ConfigError(f"run {run_id} has no clusters to assign its noise to")
    Z = cluster_space(ws, run_id, noise)
    near, _ = nearest_center(Z, centers[present])
    out = labels.astype(np.int64)
    out[noise] = present[near]
    return derive_run(ws, run_id, out, edit={"op": "assign_noise"}, progress=progress)
