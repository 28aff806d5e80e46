"""Draw a representative subset of a clustering run.

A :class:`~textcluster.config.SamplingPolicy` says how many rows to draw in
total, how to share them across clusters (``equal``, ``proportional`` to size,
or proportional to the square root of size: ``sqrt``), how to pick rows inside
a cluster (``random``, ``diverse`` by farthest-point traversal, or ``nearest``
to the centre) and what to do with noise (``exclude``, ``include`` as its own
group, or a ``quota`` share of the budget).

The budget is met exactly whenever enough rows exist: a cluster smaller than
its share gives all its rows and the shortfall goes to the others
(water-filling), and fractional shares are rounded by the largest-remainder
method. Every random choice is seeded per cluster from ``policy.seed``, so the
same run and policy give the same rows.

The result is a ``sample`` artifact with ``sample.parquet``
(``sample_id`` string, ``doc_id`` int64, ``cluster`` int32, ``rank`` int32:
0-based order of picking inside the cluster) and the policy in its manifest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcluster.cluster.versions import run_names
from textcluster.config import SamplingPolicy
from textcluster.describe.allocation import waterfill
from textcluster.describe.clusters import load_description, member_distances
from textcluster.errors import ConfigError, StoreError
from textcluster.progress import Meter
from textcluster.store import RunManifest, SampleManifest, Workspace, check_id, make_id

logger = logging.getLogger(__name__)

NOISE = -1


@dataclass(frozen=True)
class SampleResult:
    """What :func:`sample` made.

    sample_id: the ``smp-...`` artifact id; n: rows drawn;
    per_cluster: cluster id -> rows drawn (noise is -1);
    doc_ids: (n,) int64 in file order (by cluster, then rank); cached: True on a cache hit.
    """

    sample_id: str
    run_id: str
    n: int
    per_cluster: dict[int, int]
    doc_ids: np.ndarray = field(repr=False)
    path: Path
    cached: bool = False


# -- quotas ----------------------------------------------------------------


def quotas(
    sizes: Mapping[int, int],
    size: int,
    allocation: str = "sqrt",
    noise: str = "exclude",
    noise_quota: float = 0.0,
) -> dict[int, int]:
    """Rows to draw from each cluster, without drawing anything (the preview).

    ``sizes`` maps cluster id (noise = -1) to its row count, already filtered to
    the clusters the policy keeps. ``noise``: ``exclude`` drops -1,
    ``include`` treats it as one more group, ``quota`` gives it
    ``round(noise_quota * size)`` rows (capped by its size; a shortfall on
    either side goes to the other). Returns cluster id -> quota, summing to
    ``min(size, available rows)``.
    """
    if size < 0:
        raise ConfigError(f"size={size} should be >= 0")
    sizes = {int(k): int(v) for k, v in sizes.items()}
    n_noise = sizes.pop(NOISE, 0)
    if noise == "exclude":
        return waterfill(sizes, size, allocation)
    if noise == "include":
        return waterfill({**sizes, NOISE: n_noise} if n_noise else sizes, size, allocation)
    if noise != "quota":
        raise ConfigError(f"noise={noise!r} should be exclude, include or quota")
    if not 0.0 <= noise_quota <= 1.0:
        raise ConfigError(f"noise quota={noise_quota} should be in [0, 1]")
    q_noise = min(n_noise, int(math.floor(noise_quota * size + 0.5)))
    out = waterfill(sizes, size - q_noise, allocation)
    q_noise = min(n_noise, size - sum(out.values()))  # clusters fell short: noise fills in
    if n_noise:
        out[NOISE] = q_noise
    return out


def stratified_subset(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Row indices of a seeded subset of at most ``max_points`` rows, stratified by label.

    ``labels``: (n,) integer cluster ids (noise ``-1`` is one more group). When
    ``n <= max_points`` every row is returned. Otherwise exactly ``max_points`` rows:
    each group keeps at least one row and the rest is shared in proportion to the group
    sizes (:func:`~textcluster.describe.allocation.waterfill`; groups whose share rounds
    to zero get their one row and leave the others the remaining budget). When there
    are more groups than ``max_points``, the ``max_points`` largest groups (ties: the
    lower label) keep one row each. Rows are drawn without replacement with
    ``numpy.random.default_rng(seed)``: the same labels and seed give the same rows.
    Returns sorted int64 indices.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ConfigError(f"labels should be a 1-D array, got shape {labels.shape}")
    if isinstance(max_points, bool) or not isinstance(max_points, int | np.integer) or max_points < 1:
        raise ConfigError(f"max_points={max_points!r} should be an integer >= 1")
    n = labels.shape[0]
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    ids, counts = np.unique(labels, return_counts=True)
    if ids.size > max_points:
        largest = np.lexsort((ids, -counts))[:max_points]
        quota = {int(ids[i]): 1 for i in largest}
    else:
        quota = _at_least_one(dict(zip(ids.tolist(), counts.tolist(), strict=True)), int(max_points))
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], ids)
    out = []
    for c, k, s in zip(ids.tolist(), counts.tolist(), starts.tolist(), strict=True):
        q = quota.get(c, 0)
        if q:
            out.append(rng.choice(order[s : s + k], size=q, replace=False))
    return np.sort(np.concatenate(out)).astype(np.int64)


def _at_least_one(sizes: dict[int, int], budget: int) -> dict[int, int]:
    """Proportional quotas summing to ``budget`` (``len(sizes) <= budget < sum(sizes)``), none zero."""
    quota: dict[int, int] = {}
    rest = dict(sizes)
    while rest:
        q = waterfill(rest, budget, "proportional")
        zero = [c for c, v in q.items() if v == 0]
        if not zero:
            quota.update(q)
            break
        for c in zero:  # one row each; the others share what is left
            quota[c] = 1
            del rest[c]
        budget -= len(zero)
    return quota


# -- loading a run ---------------------------------------------------------


def load_labels(ws: Workspace, run_id: str) -> np.ndarray:
    """The run's ``labels.npy`` as an (n,) int32 array (memory-mapped)."""
    return np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")


def _labels_map(ws: Workspace, run_id: str) -> dict[str, int]:
    """Cluster name or label (lower case) -> cluster id: the run's names (a rename edit) first,
    then the labels of its newest description."""
    names = {n.lower(): c for c, n in run_names(ws, run_id).items()}
    for m in ws.list("description"):
        if m.run_id != run_id:
            continue
        try:
            d = load_description(ws, m.id)
        except StoreError:
            continue
        return {**{c.label.lower(): c.cluster for c in d.clusters if c.label}, **names}
    return names


def resolve_clusters(ws: Workspace, run_id: str, items: tuple[int | str, ...]) -> tuple[int, ...]:
    """Turn cluster ids, names (a rename edit) or labels (from a description of the run) into sorted cluster ids."""
    out: set[int] = set()
    by_label: dict[str, int] | None = None
    for it in items:
        if isinstance(it, int | np.integer):
            out.add(int(it))
            continue
        s = str(it).strip()
        try:
            out.add(int(s))
            continue
        except ValueError:
            pass
        if by_label is None:
            by_label = _labels_map(ws, run_id)
        if s.lower() not in by_label:
            known = ", ".join(repr(k) for k in list(by_label)[:10])
            raise ConfigError(
                f"cluster {s!r} is neither a cluster id nor the label of a cluster of {run_id} (nor its name)"
                + (f"; labels: {known}" if known else "; run `textcluster describe` first to get labels")
            )
        out.add(by_label[s.lower()])
    return tuple(sorted(out))


def _group_sizes(labels: np.ndarray, policy: SamplingPolicy, ws: Workspace, run_id: str) -> dict[int, int]:
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    sizes = {int(i): int(c) for i, c in zip(ids, counts, strict=True)}
    if policy.clusters is not None:
        keep = set(resolve_clusters(ws, run_id, tuple(policy.clusters)))
        unknown = keep - set(sizes)
        if unknown:
            raise ConfigError(
                f"clusters={sorted(unknown)} are not in run {run_id}; it has {sorted(sizes)}"
            )
        # noise stays under the control of policy.noise unless the user listed -1
        sizes = {k: v for k, v in sizes.items() if k in keep or (k == NOISE and policy.noise != "exclude")}
    if policy.exclude_clusters:
        drop = set(resolve_clusters(ws, run_id, tuple(policy.exclude_clusters)))
        sizes = {k: v for k, v in sizes.items() if k not in drop}
    return sizes


def plan(ws: Workspace, run_id: str, policy: SamplingPolicy) -> dict[int, int]:
    """Preview: cluster id -> rows the policy would draw from ``run_id`` (nothing is drawn)."""
    policy.validate()
    sizes = _group_sizes(load_labels(ws, run_id), policy, ws, run_id)
    return quotas(sizes, policy.size, policy.allocation, policy.noise, policy.noise_quota)


# -- picking inside a cluster ------------------------------------------------


def _rng(seed: int, cluster: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(cluster) + 1])


def farthest_point(x: np.ndarray, k: int, start: int = 0, chunk: int = 65536) -> np.ndarray:
    """Indices of ``k`` rows of ``x`` (m, d) picked by farthest-point traversal.

    Starts at row ``start``; each next pick is the row whose distance to the
    nearest already-picked row is largest. Memory is O(m): one running
    min-distance vector (squared Euclidean, as ``|x|^2 - 2 x.c + |c|^2`` with one
    matrix-vector product per pick), updated chunk by chunk. Cost O(m * k * d).
    Returns (k,) int64 in picking order.
    """
    m = x.shape[0]
    if not 0 <= k <= m:
        raise ConfigError(f"k={k} should be in [0, {m}]")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(x, dtype=np.float32)
    sq = np.empty(m, dtype=np.float32)
    for a in range(0, m, chunk):
        blk = x[a : a + chunk]
        sq[a : a + chunk] = np.einsum("ij,ij->i", blk, blk)
    picked = np.empty(k, dtype=np.int64)
    mind = np.full(m, np.inf, dtype=np.float32)
    cur = int(start)
    for j in range(k):
        picked[j] = cur
        c = x[cur]
        for a in range(0, m, chunk):
            d = sq[a : a + chunk] - 2.0 * (x[a : a + chunk] @ c) + sq[cur]
            np.minimum(mind[a : a + chunk], d, out=mind[a : a + chunk])
        mind[picked[: j + 1]] = -np.inf  # never pick a row twice, even among duplicates
        cur = int(np.argmax(mind))
    return picked


def _centre_distance(ws: Workspace, run_id: str, members: np.ndarray, cluster: int, emb: Any) -> np.ndarray:
    """Distance of each member to its cluster's centre (the run's files, else recomputed)."""
    return member_distances(ws, run_id, members, cluster, emb)


def _pick(
    within: str,
    members: np.ndarray,
    q: int,
    seed: int,
    cluster: int,
    ws: Workspace,
    run_id: str,
    emb: Any,
) -> np.ndarray:
    if q >= members.size and within == "random":
        return _rng(seed, cluster).permutation(members)
    if within == "random":
        return _rng(seed, cluster).choice(members, size=q, replace=False)
    if within == "nearest" or cluster == NOISE:
        if cluster == NOISE:  # noise has no centre: fall back to a seeded random pick
            return _rng(seed, cluster).choice(members, size=q, replace=False)
        d = _centre_distance(ws, run_id, members, cluster, emb)
        order = np.lexsort((members, d))  # ties by doc_id: deterministic
        return members[order[:q]]
    if within == "diverse":
        x = emb[members] if emb is not None else None
        if x is None:
            raise StoreError(f"within='diverse' needs the embedding of {run_id}")
        x = np.asarray(x, dtype=np.float32)
        mu = x.mean(axis=0, dtype=np.float64).astype(np.float32)
        # nearest to the mean via |x|^2 - 2 x.mu: no (n, d) temporary
        start = int(np.argmin(np.einsum("ij,ij->i", x, x) - 2.0 * (x @ mu)))
        return members[farthest_point(x, q, start=start)]
    raise ConfigError(f"within={within!r} should be random, diverse or nearest")


# -- the stage ---------------------------------------------------------------


def sample_id_for(run_id: str, policy: SamplingPolicy) -> str:
    """The artifact id :func:`sample` writes for this run and policy."""
    return make_id("sample", run_id, policy.cache_key())


def sample(ws: Workspace, run_id: str, policy: SamplingPolicy, progress: Any = None) -> SampleResult:
    """Draw the rows of ``run_id`` that ``policy`` asks for and store them as a ``sample`` artifact.

    Cached: the same run and policy return the stored sample. Raises
    :class:`ConfigError` for an impossible policy (unknown cluster id or label)
    and :class:`StoreError` when the run is missing.
    """
    policy.validate()
    requested = policy
    if policy.clusters is not None or policy.exclude_clusters:
        ws.manifest(run_id)  # a clear StoreError for an unknown run
        policy = canonical_policy(ws, run_id, policy)
    sid = sample_id_for(run_id, policy)
    if not ws.cached(sid):
        ws.manifest(run_id)  # a clear StoreError for an unknown run
        with ws.lock(sid):
            if not ws.cached(sid):
                return _draw(ws, run_id, policy, sid, progress, requested=requested)
    return load_sample(ws, sid, cached=True)


def canonical_policy(ws: Workspace, run_id: str, policy: SamplingPolicy) -> SamplingPolicy:
    """``policy`` with its cluster lists resolved to sorted cluster ids.

    The same rows asked for by label (``"card arrival"``), by id (``12``) or in another
    order get the same sample id. Raises :class:`ConfigError` for an unknown label.
    """

    clusters = None if policy.clusters is None else resolve_clusters(ws, run_id, tuple(policy.clusters))
    exclude = resolve_clusters(ws, run_id, tuple(policy.exclude_clusters)) if policy.exclude_clusters else ()
    return replace(policy, clusters=clusters, exclude_clusters=exclude)


def _draw(
    ws: Workspace, run_id: str, policy: SamplingPolicy, sid: str, progress: Any, requested: SamplingPolicy | None = None
) -> SampleResult:

    run_m = ws.manifest(check_id(run_id, "run"))
    labels = np.asarray(load_labels(ws, run_id))
    sizes = _group_sizes(labels, policy, ws, run_id)
    q = quotas(sizes, policy.size, policy.allocation, policy.noise, policy.noise_quota)
    emb = None
    if policy.within in ("diverse", "nearest"):
        emb = _embedding_of(ws, run_id, run_m, required=policy.within == "diverse")
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], list(q), side="left")
    meter = Meter("sample", len(q), progress)
    doc_parts, cl_parts, rank_parts = [], [], []
    for i, (c, qc) in enumerate(q.items()):
        if qc > 0:
            start = int(bounds[i])
            end = start + sizes[c]
            members = np.sort(order[start:end]).astype(np.int64)
            picked = np.asarray(_pick(policy.within, members, qc, policy.seed, c, ws, run_id, emb))
            doc_parts.append(picked.astype(np.int64))
            cl_parts.append(np.full(qc, c, dtype=np.int32))
            rank_parts.append(np.arange(qc, dtype=np.int32))
        meter.update(i + 1)
    doc_ids = np.concatenate(doc_parts) if doc_parts else np.zeros(0, np.int64)
    clusters = np.concatenate(cl_parts) if cl_parts else np.zeros(0, np.int32)
    ranks = np.concatenate(rank_parts) if rank_parts else np.zeros(0, np.int32)

    def write(d: Path) -> None:

        t = pa.table(
            {
                "sample_id": pa.array([sid] * len(doc_ids), pa.string()),
                "doc_id": pa.array(doc_ids, pa.int64()),
                "cluster": pa.array(clusters, pa.int32()),
                "rank": pa.array(ranks, pa.int32()),
            }
        )
        pq.write_table(t, d / "sample.parquet")

    manifest = SampleManifest(
        run_id=run_id,
        embedding_id=run_m.embedding_id,
        corpus_id=run_m.corpus_id,
        policy=policy.to_dict(),
        requested_policy=requested.to_dict() if requested is not None and requested != policy else None,
        n=int(len(doc_ids)),
        available=int(sum(sizes.values())),
        per_cluster={str(c): int(v) for c, v in q.items()},
    )
    path = ws.write(sid, manifest, write, parents=[run_id])
    logger.info("sample %s: %d rows from %d groups", sid, len(doc_ids), len(q))
    return SampleResult(sid, run_id, int(len(doc_ids)), {int(c): int(v) for c, v in q.items()}, doc_ids, path)


def load_sample(ws: Workspace, sample_id: str, cached: bool = False) -> SampleResult:
    """A stored sample (its doc ids in file order and per-cluster counts)."""

    m = ws.manifest(check_id(sample_id, "sample"))
    t = pq.read_table(ws.file(sample_id, "sample.parquet"), columns=["doc_id"])
    per = {int(k): int(v) for k, v in m.per_cluster.items()}
    return SampleResult(
        sample_id, m.run_id, m.n, per,
        t.column("doc_id").to_numpy(), ws.path(sample_id), cached,
    )


def _embedding_of(ws: Workspace, run_id: str, run_m: RunManifest, required: bool) -> Any:
    eid = run_m.embedding_id
    if not eid or not ws.exists(eid):
        if required:
            raise StoreError(f"run {run_id} names no embedding in this workspace (embedding_id={eid!r})")
        return None
    return np.load(ws.file(eid, "embeddings.npy"), mmap_mode="r")
