"""Cluster edits: rename, merge, split, move, drop and carve, each a new run version.

Each function checks its input first (a :class:`~textcluster.errors.ConfigError` that names
the run, the cluster and what is wrong, before anything is written), builds the new labels
and calls :func:`textcluster.cluster.versions.derive_run`, which writes the version (its
manifest names the parent run and the ``edit``; the same edit on the same parent is the same
id, a cache hit) and recomputes centres, distances and medoids only for the clusters whose
members changed. Clusters are given by id or by name (:func:`~textcluster.cluster.versions.resolve_cluster`).

========  ==========================================================  ===========================
edit      labels of the version                                       new texts (``assign``)
========  ==========================================================  ===========================
rename    unchanged; names only (``{"op": "rename", "names": {...}}``)  as the parent
merge     members of C2.. join C1 (the lowest id)                      C2.. -> C1
split     C's members re-clustered (k-means in the run's clustering     C -> the nearest part
          space, ``k`` given or chosen by silhouette, ``seed``)
move      the given documents join C (ids hashed into the edit)         as the parent
drop      C's members become noise, or join their nearest remaining     C -> noise, or -> the
          cluster (``to_nearest``)                                      nearest remaining cluster
carve     the given documents become ``k`` new clusters (a drill-down   as the parent
          merged back in one step: :func:`carve`)
drill     a sub-run: only the given documents have clusters, their      (for looking)
          ``k`` parts; the rest is noise (:func:`drill`)
merge     a sub-run's clusters (and names) carved back into its parent    as the parent
back      (:func:`merge_back`)
========  ==========================================================  ===========================

Names: a cluster name is 1 to :data:`NAME_MAX` characters without control characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textcluster.cluster.distances import nearest_center
from textcluster.cluster.kmeans import KMeansClusterer
from textcluster.cluster.runs import RunResult, load_run
from textcluster.cluster.versions import (
    MAX_NAME_CHARS,
    cluster_space,
    derive_run,
    resolve_cluster,
    run_names,
    version_id,
)
from textcluster.errors import ConfigError, check_label_text
from textcluster.progress import ProgressFn
from textcluster.store import Workspace, check_id

#: Longest cluster name, in characters (the core's limit).
NAME_MAX = MAX_NAME_CHARS
#: Largest k tried when a split chooses k itself (``k=None``).
AUTO_K_MAX = 10
#: Rows of the split cluster the automatic k is chosen on (a seeded subset; the fit uses all).
AUTO_K_ROWS = 2_000


def describe_edit(edit: dict[str, Any] | None) -> str:
    """One line saying what an edit did (a version manifest's ``edit``), for histories in the CLI
    and the app; ``"clustered"`` for a run computed from an embedding (no edit)."""
    if not edit:
        return "clustered"
    op = edit.get("op", "?")
    docs = (edit.get("docs") or {}).get("n")
    if op == "rename":
        return "rename " + ", ".join(f"{c} -> {n!r}" for c, n in edit.get("names", {}).items())
    if op == "merge":
        return "merge " + " + ".join(str(c) for c in edit.get("clusters", [])) + (
            f" as {edit['name']}" if edit.get("name") else "")
    if op == "split":
        return f"split {edit.get('cluster')} into k={edit.get('k')}"
    if op == "move":
        return f"move {docs} docs to {edit.get('to')}"
    if op == "drop":
        return f"drop {edit.get('cluster')}" + (" (to nearest)" if edit.get("to_nearest") else "")
    if op == "carve":
        return f"carve {docs} docs into k={edit.get('k')}"
    if op == "drill":
        return f"drill into {docs} docs (k={edit.get('k')})"
    if op == "merge_back":
        return f"merge back {edit.get('sub_run')} ({edit.get('k')} clusters)"
    if op == "level":
        return f"hierarchy level of {edit.get('k')} clusters"
    if op == "assign_noise":
        return "noise assigned to the nearest cluster"
    if op == "label_map":
        return f"label map ({len(edit.get('labels') or {})} labels)"
    return str(op)


# --------------------------------------------------------------------------- checks
def check_name(name: object) -> str:
    """A cluster name, trimmed; :class:`ConfigError` when it is not text, empty, longer than
    :data:`NAME_MAX` characters or holds a control character (a newline, a tab, ...)."""
    return check_label_text(name, "cluster name", NAME_MAX)


def load_labels(ws: Workspace, run_id: str) -> np.ndarray:
    """The run's labels (n,) int32, read into memory (an edit writes a changed copy)."""
    return np.load(ws.file(check_id(run_id, "run"), "labels.npy")).astype(np.int32, copy=False)


def _resolve(ws: Workspace, run_id: str, refs: Sequence[str | int]) -> list[int]:
    return [resolve_cluster(ws, run_id, r) for r in refs]


def docs_digest(doc_ids: np.ndarray) -> dict[str, Any]:
    """``{"n", "sha256"}`` of a set of doc ids (sorted int64 bytes): how an edit records the
    documents it moves, so that the same documents give the same version id, whatever file or
    query named them."""
    ids = np.ascontiguousarray(np.unique(np.asarray(doc_ids, dtype=np.int64)))
    return {"n": int(ids.size), "sha256": hashlib.sha256(ids.tobytes()).hexdigest()}


def _check_docs(labels: np.ndarray, doc_ids: Any, run_id: str) -> np.ndarray:
    ids = np.unique(np.asarray(doc_ids, dtype=np.int64).reshape(-1))
    if ids.size == 0:
        raise ConfigError("no documents given (an empty selection)")
    n = labels.shape[0]
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise ConfigError(f"doc id {int(bad[0])} is not a document of run {run_id} (ids run 0..{n - 1})")
    return ids


def _cached(ws: Workspace, run_id: str, edit: dict[str, Any]) -> RunResult | None:
    """The version ``edit`` makes of ``run_id`` when it is already written (so a repeated split
    or carve does not re-cluster before ``derive_run`` finds it)."""
    vid = version_id(run_id, edit)
    return load_run(ws, vid) if ws.cached(vid) else None


def _remap(labels: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """``labels`` with each id of ``mapping`` replaced, in one table lookup (O(n))."""
    top = int(max(int(labels.max(initial=-1)), *mapping.keys(), *mapping.values())) + 2
    lut = np.arange(-1, top - 1, dtype=np.int32)
    for a, b in mapping.items():
        lut[a + 1] = b
    return lut[labels + 1]


# --------------------------------------------------------------------------- edits
def rename(
    ws: Workspace, run_id: str, names: Mapping[str | int, str], *, progress: ProgressFn | None = None,
) -> RunResult:
    """A version of ``run_id`` whose clusters ``names`` (cluster id or current name -> new
    name) carry those names; labels, centres and distances are the parent's."""
    if not names:
        raise ConfigError("give at least one cluster and its new name")
    resolved: dict[int, str] = {}
    for ref, name in names.items():
        resolved[resolve_cluster(ws, run_id, ref)] = check_name(name)
    labels = load_labels(ws, run_id)
    edit = {"op": "rename", "names": {str(c): n for c, n in sorted(resolved.items())}}
    return derive_run(ws, run_id, labels, edit=edit, names=resolved, progress=progress)


def merge(
    ws: Workspace, run_id: str, clusters: Sequence[str | int], *, name: str | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """A version where the members of ``clusters`` (two or more, ids or names) form one cluster,
    the lowest id; ``name`` names it. New texts of any of them go to the merged cluster."""
    ids = sorted(set(_resolve(ws, run_id, clusters)))
    if len(ids) < 2:
        raise ConfigError(
            f"a merge needs two or more different clusters of run {run_id}; got {list(clusters)!r}"
        )
    name = None if name is None else check_name(name)
    labels = load_labels(ws, run_id)
    target, others = ids[0], ids[1:]
    new = _remap(labels, dict.fromkeys(others, target))
    edit: dict[str, Any] = {"op": "merge", "clusters": ids}
    if name is not None:
        edit["name"] = name
    return derive_run(ws, run_id, new, edit=edit, label_map=dict.fromkeys(others, target),
                      names={target: name} if name else None, progress=progress)


def choose_k(Z: np.ndarray, *, seed: int = 0, k_max: int = AUTO_K_MAX, rows: int = AUTO_K_ROWS) -> int:
    """The k in 2..``k_max`` (at most the rows - 1) with the best silhouette of k-means on a
    seeded subset of at most ``rows`` rows of ``Z``; ties go to the smaller k."""
    from sklearn.metrics import silhouette_score

    m = Z.shape[0]
    if m < 3:
        raise ConfigError(f"choosing k needs at least 3 members; the cluster has {m}")
    rng = np.random.default_rng(seed)
    sub = Z if m <= rows else Z[np.sort(rng.choice(m, size=rows, replace=False))]
    best_k, best_s = 2, -np.inf
    for k in range(2, min(k_max, sub.shape[0] - 1) + 1):
        lab = KMeansClusterer(k=k, seed=seed, n_init=1).fit(sub).labels_
        if np.unique(lab).size < 2:
            continue
        s = float(silhouette_score(sub, lab))
        if s > best_s + 1e-12:
            best_k, best_s = k, s
    return best_k


def split(
    ws: Workspace, run_id: str, cluster: str | int, k: int | None = None, *, seed: int = 0,
    k_max: int = AUTO_K_MAX, progress: ProgressFn | None = None,
) -> RunResult:
    """A version where the members of ``cluster`` are re-clustered into ``k`` parts (k-means in
    the run's clustering space; ``k=None``: chosen by :func:`choose_k` up to ``k_max``). Only the
    cluster's members are read. The parts get new ids (renumbered by ``derive_run``); the other
    clusters keep theirs. New texts of the cluster go to the nearest part."""
    c = resolve_cluster(ws, run_id, cluster)
    labels = load_labels(ws, run_id)
    members = np.flatnonzero(labels == c)
    m = members.size
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
            raise ConfigError(f"a split needs k >= 2 parts; got k={k!r}")
        if k > m:
            raise ConfigError(
                f"cannot split cluster {c} of run {run_id} into {k} parts: it has only {m} member(s)"
            )
    elif m < 3:
        raise ConfigError(f"cannot split cluster {c} of run {run_id}: it has only {m} member(s)")
    edit: dict[str, Any] = {"op": "split", "cluster": c, "k": int(k) if k is not None else "auto", "seed": seed,
                            "method": "kmeans"}
    if k is None:
        edit["k_max"] = k_max
    hit = _cached(ws, run_id, edit)
    if hit is not None:
        return hit
    Z = cluster_space(ws, run_id, rows=members)
    kk = int(k) if k is not None else choose_k(Z, seed=seed, k_max=k_max)
    parts = KMeansClusterer(k=kk, seed=seed).fit(Z).labels_
    base = int(labels.max()) + 1
    new = labels.copy()
    new[members] = base + parts
    used = sorted(set((base + np.unique(parts)).tolist()))
    return derive_run(ws, run_id, new, edit=edit, label_map={c: used}, progress=progress)


def move(
    ws: Workspace, run_id: str, doc_ids: Any, to: str | int, *, progress: ProgressFn | None = None,
) -> RunResult:
    """A version where the documents ``doc_ids`` belong to cluster ``to`` (an id or a name; -1 or
    ``"noise"`` makes them noise). The documents are recorded in the edit by count and hash."""
    labels = load_labels(ws, run_id)
    target = -1 if str(to).strip().lower() in ("-1", "noise") else resolve_cluster(ws, run_id, to)
    ids = _check_docs(labels, doc_ids, run_id)
    if np.all(labels[ids] == target):
        raise ConfigError(f"all {ids.size} document(s) are already in cluster {target} of run {run_id}")
    new = labels.copy()
    new[ids] = target
    edit = {"op": "move", "to": target, "docs": docs_digest(ids)}
    return derive_run(ws, run_id, new, edit=edit, progress=progress)


def drop(
    ws: Workspace, run_id: str, cluster: str | int, *, to_nearest: bool = False,
    progress: ProgressFn | None = None,
) -> RunResult:
    """A version without ``cluster``: its members become noise, or (``to_nearest``) join the
    remaining cluster whose centre is nearest in the run's clustering space (only the members'
    rows are read). New texts that would have gone to it become noise / go to the nearest
    remaining cluster."""
    c = resolve_cluster(ws, run_id, cluster)
    labels = load_labels(ws, run_id)
    members = np.flatnonzero(labels == c)
    rest = np.unique(labels[(labels >= 0) & (labels != c)])
    new = labels.copy()
    if not to_nearest:
        new[members] = -1
        label_map: dict[int, Any] = {c: -1}
    else:
        if rest.size == 0:
            raise ConfigError(f"cluster {c} is the only cluster of run {run_id}: there is no nearest one to join")
        centers = np.load(ws.file(run_id, "centers.npy"), mmap_mode="r")
        if centers.shape[0] <= int(rest.max()):
            raise ConfigError(f"run {run_id} has {centers.shape[0]} centres for clusters up to {int(rest.max())}")
        Z = cluster_space(ws, run_id, rows=members)
        near, _ = nearest_center(Z, np.ascontiguousarray(centers[rest], dtype=np.float32))
        new[members] = rest[near]
        label_map = {c: [int(x) for x in rest]}
    edit = {"op": "drop", "cluster": c, "to_nearest": bool(to_nearest)}
    return derive_run(ws, run_id, new, edit=edit, label_map=label_map, progress=progress)


def subcluster(
    ws: Workspace, run_id: str, doc_ids: Any, k: int | None = None, *, seed: int = 0, k_max: int = AUTO_K_MAX,
) -> tuple[np.ndarray, np.ndarray]:
    """Drill down: re-cluster the documents ``doc_ids`` of a run on their own (k-means in the
    run's clustering space, ``k`` given or chosen as in :func:`split`), writing nothing.
    Returns (sorted doc ids, their part 0..k-1): what :func:`carve` merges back."""
    labels = load_labels(ws, run_id)
    ids = _check_docs(labels, doc_ids, run_id)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1):
        raise ConfigError(f"a drill-down needs k >= 1 parts; got k={k!r}")
    if k is not None and k > ids.size:
        raise ConfigError(f"cannot cut {ids.size} document(s) into {k} parts")
    if k is None and ids.size < 3:
        raise ConfigError(f"choosing k needs at least 3 documents; the selection has {ids.size}")
    Z = cluster_space(ws, run_id, rows=ids)
    kk = int(k) if k is not None else choose_k(Z, seed=seed, k_max=k_max)
    parts = np.zeros(ids.size, np.int32) if kk == 1 else KMeansClusterer(k=kk, seed=seed).fit(Z).labels_
    return ids, parts.astype(np.int32)


def carve(
    ws: Workspace, run_id: str, doc_ids: Any, k: int | None = None, *, seed: int = 0, k_max: int = AUTO_K_MAX,
    names: Sequence[str] | None = None, progress: ProgressFn | None = None,
) -> RunResult:
    """Merge a drill-down back: a version where the documents ``doc_ids`` leave their clusters
    and form the parts of :func:`subcluster` (``k`` given or chosen, ``seed``) as new clusters;
    ``names``: a name per part (optional). New texts follow the parent's clusters."""
    labels = load_labels(ws, run_id)
    ids = _check_docs(labels, doc_ids, run_id)
    checked = [check_name(n) for n in names] if names else []
    if checked and k is not None and len(checked) != k:
        raise ConfigError(f"{len(checked)} name(s) given for {k} part(s)")
    edit: dict[str, Any] = {"op": "carve", "docs": docs_digest(ids), "k": int(k) if k is not None else "auto",
                            "seed": seed, "method": "kmeans"}
    if k is None:
        edit["k_max"] = k_max
    if checked:
        edit["names"] = checked
    hit = _cached(ws, run_id, edit)
    if hit is not None:
        return hit
    ids, parts = subcluster(ws, run_id, ids, k, seed=seed, k_max=k_max)
    kk = int(parts.max()) + 1
    if checked and len(checked) != kk:
        raise ConfigError(f"{len(checked)} name(s) given for {kk} part(s)")
    base = int(labels.max()) + 1
    new = labels.copy()
    new[ids] = base + parts
    part_names = {base + i: n for i, n in enumerate(checked)} or None
    return derive_run(ws, run_id, new, edit=edit, names=part_names, progress=progress)


def drill(
    ws: Workspace, run_id: str, doc_ids: Any, k: int | None = None, *, seed: int = 0, k_max: int = AUTO_K_MAX,
    progress: ProgressFn | None = None,
) -> RunResult:
    """A sub-run: a version of ``run_id`` in which only the documents ``doc_ids`` have clusters,
    the parts of :func:`subcluster` (``k`` given or chosen, ``seed``); every other document is
    noise. It is an ordinary run (Explore, describe, rename it); :func:`merge_back` carves its
    clusters, with their names, back into the parent. Meant for looking, not for ``assign``."""
    labels = load_labels(ws, run_id)
    ids = _check_docs(labels, doc_ids, run_id)
    edit: dict[str, Any] = {"op": "drill", "docs": docs_digest(ids), "k": int(k) if k is not None else "auto",
                            "seed": seed, "method": "kmeans"}
    if k is None:
        edit["k_max"] = k_max
    hit = _cached(ws, run_id, edit)
    if hit is not None:
        return hit
    ids, parts = subcluster(ws, run_id, ids, k, seed=seed, k_max=k_max)
    new = np.full(labels.shape[0], -1, dtype=np.int32)
    new[ids] = parts
    return derive_run(ws, run_id, new, edit=edit, label_map=dict.fromkeys(np.unique(labels[labels >= 0]).tolist(), -1),
                      progress=progress)


def merge_back(ws: Workspace, sub_run_id: str, *, progress: ProgressFn | None = None) -> RunResult:
    """Carve the clusters of a sub-run (:func:`drill`) back into its parent: a version of the parent
    where the documents that have a cluster in ``sub_run_id`` form those clusters, with their names
    there. ``sub_run_id`` may be the drill itself or a version of it (renamed, merged, split,
    dropped: a document dropped to noise keeps its parent cluster). :class:`ConfigError` when no
    drill-down is found up its chain."""
    m = ws.manifest(check_id(sub_run_id, "run"))
    while m.edit and m.edit.get("op") not in ("drill", "merge_back") and m.parent_run:
        m = ws.manifest(m.parent_run)  # edits made inside the sub-run (rename, merge, split, drop)
    if not m.edit or m.edit.get("op") != "drill" or not m.parent_run:
        raise ConfigError(f"{sub_run_id} is not a drill-down sub-run (edit RUN drill ...); nothing to merge back")
    sub = load_labels(ws, sub_run_id)
    ids = np.flatnonzero(sub >= 0)
    parts = sub[ids]
    k = int(parts.max()) + 1 if ids.size else 0
    names = run_names(ws, sub_run_id)
    parent_labels = load_labels(ws, m.parent_run)
    base = int(parent_labels.max()) + 1
    new = parent_labels.copy()
    new[ids] = base + parts
    edit = {"op": "merge_back", "sub_run": sub_run_id, "docs": docs_digest(ids), "k": k}
    return derive_run(ws, m.parent_run, new, edit=edit, names={base + c: n for c, n in names.items()} or None,
                      progress=progress)


def names_of(ws: Workspace, run_id: str) -> dict[int, str]:
    """The run's cluster names (see :func:`textcluster.cluster.versions.run_names`)."""
    return run_names(ws, run_id)
