"""Run versions: a run derived from another run by an edit, with the same artifact layout.

A *version* is an ordinary run artifact (``run-<id>``) whose manifest names the run it was
derived from (``parent_run``), the edit that made it (``edit``, a JSON object), how the
parent's clusters map to its own (``label_map``) and the names of its clusters (``names``).
Everything that reads runs (Explore, describe, sampling, SQL, export, evaluate, compare)
reads a version unchanged.

The id is ``make_id("run", parent_run_id, {"edit": edit})``: the same edit on the same
parent is the same version (a cache hit). ``edit`` must therefore determine the labels given
the parent: a move records the doc ids (or their hash), a split its k and seed.

What :func:`derive_run` recomputes, so that a merge of two clusters of a million-document
run costs time in proportion to those two clusters, not to the run:

- a cluster whose member set is exactly one parent cluster's keeps that cluster's centre,
  its members keep their distances (no vector is read);
- any other cluster (merged, split, moved into or out of) gets the mean of its members'
  vectors in the clustering space as its centre, and its members their distance to it;
- rows that became noise get the distance to the nearest remaining centre (the rule of
  :func:`textcluster.cluster.distances.own_and_nearest`);
- sizes, medoids, outlier scores, the hierarchy of the centres, the k x k centre-distance
  matrix and the label-free scores (on their seeded sample) are recomputed; ``coords2d.npy`` and the reducer state are hard links to
  the parent's files (artifacts are immutable); ``data_center_distance.npy`` is not
  written (describe recomputes what it needs from the centres).

New texts under a version (:func:`textcluster.cluster.runs.assign_vectors`): a run whose
root assigns by k-NN over its rows (UMAP, smooth) assigns by k-NN over the version's own
labels; any other version assigns with its parent, then maps the parent's cluster through
``label_map`` (a list of candidates: the nearest of their centres; -1: noise).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcluster.cluster import hierarchy as hier
from textcluster.cluster import reduce as red
from textcluster.cluster.distances import CHUNK_ROWS, sq_distances
from textcluster.cluster.outliers import outlier_scores
from textcluster.cluster.runs import (
    KNN_REDUCERS,
    RunResult,
    _load_embeddings,
    _medoids,
    _metrics,
    _peak_rss_bytes,
    _reduce,
    _versions,
    load_run,
)
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import ConfigError, check_label_text
from textcluster.progress import Meter, ProgressFn
from textcluster.store import RunManifest, Workspace, canonical_json, check_id, make_id

#: A cluster name's longest accepted length, in characters.
MAX_NAME_CHARS = 200
#: Files of the parent shared by a version through hard links (copied where links fail).
SHARED_FILES = ("coords2d.npy",)
SHARED_FOLDERS = ("reducer",)


# --------------------------------------------------------------------------- reading
def run_names(ws: Workspace, run_id: str) -> dict[int, str]:
    """A run's cluster names ``{cluster id: name}``; empty for a run nobody named."""
    m = ws.manifest(check_id(run_id, "run"))
    return {int(k): str(v) for k, v in (m.names or {}).items()}


def resolve_cluster(ws: Workspace, run_id: str, ref: str | int) -> int:
    """The cluster id that ``ref`` means in ``run_id``: an id (int or digits) or a cluster name.

    A name wins over nothing; digits are read as an id first (``"3"`` is cluster 3 even when
    another cluster is named "3"). :class:`ConfigError` naming the run, the reference and the
    known ids and names when nothing matches.
    """
    m = ws.manifest(check_id(run_id, "run"))
    k = int(m.k_centers if m.k_centers is not None else m.k)
    names = run_names(ws, run_id)
    text = str(ref).strip()
    if isinstance(ref, int | np.integer) or text.lstrip("-").isdigit():
        c = int(text)
        if 0 <= c < k:
            return c
    hits = [c for c, name in names.items() if name == text]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise ConfigError(f"cluster name {text!r} is used by clusters {hits} of {run_id}; use an id")
    shown = ", ".join(f"{c}={names[c]!r}" for c in sorted(names)[:10])
    raise ConfigError(
        f"run {run_id} has no cluster {text!r}: ids are 0..{k - 1}" + (f"; names: {shown}" if shown else "")
    )


def version_chain(ws: Workspace, run_id: str) -> list[str]:
    """The run's ancestors by ``parent_run``, the root first and ``run_id`` last."""
    chain = [check_id(run_id, "run")]
    seen = set(chain)
    while True:
        parent = ws.manifest(chain[-1]).parent_run
        if not parent or parent in seen:
            break
        chain.append(parent)
        seen.add(parent)
    return chain[::-1]


def root_run(ws: Workspace, run_id: str) -> str:
    """The run at the start of ``run_id``'s version chain (the one computed from an embedding)."""
    return version_chain(ws, run_id)[0]


def cluster_space(ws: Workspace, run_id: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of the run's clustering space (its embedding after its reducer), float32.

    ``rows``: doc ids to return (all when None). No reducer: the embedding rows (only those
    rows are read from the memory-mapped file); PCA: those rows projected with the run's saved
    PCA; UMAP: the workspace's cache of the reduced matrix (recomputed and cached when it is
    missing); smooth and others: recomputed with the run's settings.
    """
    m = ws.manifest(check_id(run_id, "run"))
    X = _load_embeddings(ws, m.embedding_id)
    idx = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    method = (m.reducer or {}).get("method", "none")
    if method == "none":
        return np.ascontiguousarray(X[idx], dtype=np.float32)
    if method == "pca":
        rdir = ws.path(root_run(ws, run_id)) / "reducer"
        state = {p.stem: np.load(p) for p in rdir.glob("*.npy")}
        return np.ascontiguousarray(red.PCAReducer.from_state(state).transform(np.asarray(X[idx])), dtype=np.float32)
    reducer = ReducerConfig.from_dict(m.reducer)
    clusterer = ClustererConfig.from_dict(m.clusterer)
    Z, _ = _reduce(ws, X, m.embedding_id, reducer, clusterer, Meter("reduce", 1, None, estimate=False), None, [])
    return np.ascontiguousarray(Z[idx], dtype=np.float32)


# --------------------------------------------------------------------------- checks
def check_name(name: object) -> str:
    """A cluster name as stored: trimmed; :class:`ConfigError` when it is not text, empty, longer
    than :data:`MAX_NAME_CHARS` or holds a control character."""
    return check_label_text(name, "cluster name", MAX_NAME_CHARS)


def _check_labels(labels: np.ndarray, n: int, parent: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ConfigError(f"labels of shape {lab.shape} do not match run {parent} (n={n})")
    if lab.size and not np.issubdtype(lab.dtype, np.integer) and not np.all(np.equal(np.mod(lab, 1), 0)):
        raise ConfigError("labels must be integers (cluster ids, -1 for noise)")
    lab = lab.astype(np.int64)
    if lab.size and lab.min() < -1:
        raise ConfigError(f"labels must be cluster ids >= 0 or -1 for noise (got {int(lab.min())})")
    return lab


def _check_edit(edit: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(edit, Mapping) or not edit.get("op"):
        raise ConfigError('an edit is a JSON object with an "op" (got ' + repr(edit)[:80] + ")")
    try:
        canonical_json(dict(edit))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"an edit must be JSON-serialisable: {e}") from e
    return dict(edit)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------- deriving
def version_id(parent_run_id: str, edit: Mapping[str, Any]) -> str:
    """The id of the version of ``parent_run_id`` made by ``edit`` (nothing is computed)."""
    return make_id("run", check_id(parent_run_id, "run"), {"edit": _check_edit(edit)})


def derive_run(
    ws: Workspace,
    parent_run_id: str,
    labels: np.ndarray,
    *,
    edit: Mapping[str, Any],
    label_map: Mapping[int, int | Sequence[int]] | None = None,
    names: Mapping[int, str] | None = None,
    progress: ProgressFn | None = None,
) -> RunResult:
    """Write (or find) the version of ``parent_run_id`` whose labels are ``labels``.

    ``labels`` (n,) ints, -1 = noise; cluster ids may be any non-negative ints (the
    parent's ids, new ones for parts of a split): they are renumbered to 0..k'-1 in
    ascending order, ids without members dropped. ``edit``: a JSON object with an ``op``
    that, with the parent, determines the result; recorded and hashed into the id (same
    parent + same edit = cache hit, nothing recomputed). ``label_map`` (ids as in
    ``labels``): parent cluster -> new cluster, a list of candidates (nearest centre), or -1
    (dropped); unlisted parent clusters map to themselves. ``names``: ``{id: name}`` (ids
    as in ``labels``); a cluster whose member set is unchanged keeps its parent name unless
    named here. Returns the version's :class:`RunResult`. :class:`ConfigError` for labels
    of the wrong shape or values, a bad name, an edit that is not a JSON object with an op.
    """
    parent_run_id = check_id(parent_run_id, "run")
    pm: RunManifest = ws.manifest(parent_run_id)
    edit = _check_edit(edit)
    lab = _check_labels(labels, pm.n, parent_run_id)
    given_names = {int(c): check_name(v) for c, v in (names or {}).items()}
    run_id = version_id(parent_run_id, edit)
    if ws.cached(run_id):
        return load_run(ws, run_id)
    with ws.lock(run_id):
        if ws.cached(run_id):
            return load_run(ws, run_id)
        return _derive(ws, run_id, parent_run_id, pm, lab, edit, label_map, given_names, progress)


def _derive(
    ws: Workspace,
    run_id: str,
    parent_run_id: str,
    pm: RunManifest,
    lab: np.ndarray,
    edit: dict[str, Any],
    label_map: Mapping[int, int | Sequence[int]] | None,
    given_names: dict[int, str],
    progress: ProgressFn | None,
) -> RunResult:
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    meter = Meter("edit", 3, progress, estimate=False)
    meter.update(0, "relabelling")
    n = pm.n
    pdir = ws.path(parent_run_id)
    parent_labels = np.load(pdir / "labels.npy").astype(np.int64)
    parent_centers = np.load(pdir / "centers.npy")
    parent_own = np.load(pdir / "distances.npy")
    pk = int(parent_centers.shape[0])

    # renumber: ascending given ids -> 0..k'-1
    given = np.unique(lab[lab >= 0])
    k = int(given.size)
    new_of = {int(g): i for i, g in enumerate(given.tolist())}
    new = np.full(n, -1, dtype=np.int64)
    if k:
        pos = np.searchsorted(given, lab[lab >= 0])
        new[lab >= 0] = pos

    # which new clusters are exactly one parent cluster (kept: centre and distances reused)
    sizes = np.bincount(new[new >= 0], minlength=k) if k else np.zeros(0, np.int64)
    psizes = np.bincount(parent_labels[parent_labels >= 0], minlength=pk) if pk else np.zeros(0, np.int64)
    source = np.full(k, -1, dtype=np.int64)  # the parent cluster a kept new cluster equals
    if k:
        # one bincount of (new, parent) pairs: a new cluster fed by exactly one parent cluster
        # (and all of it) is unchanged
        members = new >= 0
        code = new[members] * (pk + 1) + (parent_labels[members] + 1)
        pairs = np.bincount(code, minlength=k * (pk + 1)).reshape(k, pk + 1) > 0
        for c in np.flatnonzero(pairs.sum(axis=1) == 1).tolist():
            p = int(np.argmax(pairs[c])) - 1
            if p >= 0 and sizes[c] == psizes[p]:
                source[c] = p
    touched = np.flatnonzero(source < 0)
    timings["relabel"] = time.perf_counter() - t_all

    t = time.perf_counter()
    meter.update(1, f"centres of {touched.size} changed cluster(s)")
    dim = parent_centers.shape[1] if parent_centers.ndim == 2 else (pm.space_dim or pm.dim)
    centers = np.zeros((k, dim), dtype=np.float32)
    kept = np.flatnonzero(source >= 0)
    centers[kept] = parent_centers[source[kept]]
    own = np.asarray(parent_own, dtype=np.float32).copy()
    # rows whose distance must be recomputed: members of touched clusters, and rows whose
    # state changed to noise (or stayed noise while the centres changed)
    touched_mask = np.zeros(k + 1, dtype=bool)
    touched_mask[touched] = True
    in_touched = (new >= 0) & touched_mask[np.where(new >= 0, new, k)]
    centres_changed = touched.size > 0 or k != pk
    redo_noise = (new < 0) & ((parent_labels >= 0) | centres_changed)
    rows = np.flatnonzero(in_touched | redo_noise)
    rows_read = int(rows.size)
    if rows.size:
        Zr = cluster_space(ws, parent_run_id, rows)
        lr = new[rows]
        if touched.size:
            sums = np.zeros((k, Zr.shape[1]), dtype=np.float64)
            sel = lr >= 0
            np.add.at(sums, lr[sel], Zr[sel].astype(np.float64))
            centers[touched] = (sums[touched] / np.maximum(sizes[touched], 1)[:, None]).astype(np.float32)
        for s in range(0, rows.size, CHUNK_ROWS):
            zb, lb = Zr[s : s + CHUNK_ROWS], lr[s : s + CHUNK_ROWS]
            if k == 0:
                own[rows[s : s + CHUNK_ROWS]] = np.nan
                continue
            d = np.sqrt(sq_distances(zb, centers))
            own[rows[s : s + CHUNK_ROWS]] = np.where(lb >= 0, d[np.arange(lb.size), np.maximum(lb, 0)], d.min(axis=1))
    timings["centres"] = time.perf_counter() - t

    t = time.perf_counter()
    meter.update(2, "scores and medoids")
    cpd = np.sqrt(sq_distances(centers, centers)) if k else np.zeros((0, 0), np.float32)
    if k:
        np.fill_diagonal(cpd, 0.0)
    medoids = _medoids(new, own, k)
    # the same per-run arrays the cluster stage writes, for the version's own clusters
    scores = outlier_scores(new, own)
    hz = hier.linkage(centers) if k >= 2 else np.zeros((0, 4))
    notes: list[str] = []
    if k == pk and np.array_equal(new, parent_labels):
        metrics = dict(pm.metrics)  # the same partition (a rename): the same scores
    else:
        X = _load_embeddings(ws, pm.embedding_id)
        metrics = _metrics(ws, pm.corpus_id, X, new.astype(np.int32), int(pm.seed or 0), notes)
    timings["metrics"] = time.perf_counter() - t

    # names: parent names follow unchanged clusters; given names (caller ids) override
    pnames = {int(c): v for c, v in (pm.names or {}).items()}
    out_names: dict[str, str] = {}
    for c in range(k):
        if source[c] >= 0 and int(source[c]) in pnames:
            out_names[str(c)] = pnames[int(source[c])]
    for g, name in given_names.items():
        if g in new_of:
            out_names[str(new_of[g])] = name
        else:
            raise ConfigError(f"a name was given for cluster {g}, which has no members in the edited labels")

    # label map, in final ids: parent cluster -> new id | [ids] | -1
    final_map: dict[str, Any] = {}
    lm = {int(p): v for p, v in (label_map or {}).items()}
    for p in range(pk):
        v = lm.get(p, p)
        if isinstance(v, Sequence) and not isinstance(v, str):
            cands = sorted({new_of[int(x)] for x in v if int(x) in new_of})
            final_map[str(p)] = cands if len(cands) != 1 else cands[0]
            if not cands:
                final_map[str(p)] = -1
        else:
            final_map[str(p)] = new_of.get(int(v), -1) if int(v) >= 0 else -1

    root = ws.manifest(root_run(ws, parent_run_id))
    knn = (root.reducer or {}).get("method") in KNN_REDUCERS or pm.assign_mode == "knn"

    t = time.perf_counter()

    def writer(d: Path) -> None:
        np.save(d / "labels.npy", new.astype(np.int32))
        np.save(d / "centers.npy", centers.astype(np.float32))
        np.save(d / "distances.npy", own.astype(np.float32))
        np.save(d / "center_pairwise_distance.npy", cpd.astype(np.float32))
        np.save(d / "outlier_score.npy", scores.astype(np.float32))
        np.save(d / "hierarchy.npy", hz)
        for name in SHARED_FILES:
            if (pdir / name).is_file():
                _link_or_copy(pdir / name, d / name)
        for folder in SHARED_FOLDERS:
            if (pdir / folder).is_dir():
                (d / folder).mkdir()
                for f in (pdir / folder).iterdir():
                    _link_or_copy(f, d / folder / f.name)
        pq.write_table(
            pa.table(
                {
                    "cluster": pa.array(np.arange(k, dtype=np.int32)),
                    "size": pa.array(sizes.astype(np.int64)),
                    "share": pa.array((sizes / max(n, 1)).astype(np.float64)),
                    "medoid_doc_id": pa.array(medoids),
                    "name": pa.array([out_names.get(str(c)) for c in range(k)], type=pa.string()),
                }
            ),
            d / "clusters.parquet",
        )

    noise = float(np.mean(new < 0)) if n else 0.0
    timings_note = f"version of {parent_run_id} ({edit['op']}): {touched.size} cluster(s) recomputed from {rows_read} row(s)"
    manifest = replace(
        pm,
        k=k,
        k_centers=k,
        noise=noise,
        parent_run=parent_run_id,
        edit=edit,
        label_map=final_map,
        names=out_names,
        assign_mode="knn" if knn else "map",
        data_center_distance=False,
        metrics=metrics,
        timings=timings,
        versions=_versions(),
        notes=[*notes, timings_note],
        history=None,
        stability=None,  # per-cluster scores of the parent's ids; a version's clusters differ
        fit_rows=pm.fit_rows,
    )

    def final_manifest() -> RunManifest:
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_all
        return replace(manifest, timings=dict(timings), peak_rss_bytes=_peak_rss_bytes())

    ws.write(run_id, final_manifest, writer, parents=[pm.embedding_id], parent_run=parent_run_id)
    meter.update(3, "done")
    res = load_run(ws, run_id)
    res.cached = False
    return res
