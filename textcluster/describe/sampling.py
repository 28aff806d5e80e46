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
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textcluster.config import SamplingPolicy
from textcluster.errors import ConfigError, StoreError
from textcluster.store import Workspace, make_id

logger = logging.getLogger(__name__)

NOISE = -1
ALLOCATIONS = ("equal", "proportional", "sqrt")


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


def _weights(sizes: list[int], allocation: str) -> np.ndarray:
    s = np.asarray(sizes, dtype=np.float64)
    if allocation == "equal":
        return (s > 0).astype(np.float64)
    if allocation == "proportional":
        return s
    if allocation == "sqrt":
        return np.sqrt(s)
    raise ConfigError(f"allocation={allocation!r} should be one of {', '.join(ALLOCATIONS)}")


def waterfill(sizes: Mapping[Hashable, int], budget: int, allocation: str = "sqrt") -> dict[Any, int]:
    """Share ``budget`` rows across groups of the given sizes.

    Groups whose weighted share exceeds their size give all their rows and the
    rest is shared again among the others (water-filling); the final
    fractional shares are rounded by the largest-remainder method (ties go to
    the group listed first). The result sums to ``min(budget, sum(sizes))``
    and never exceeds a group's size. Keys keep the order of ``sizes``.
    """
    if budget < 0:
        raise ConfigError(f"budget={budget} should be >= 0")
    keys = list(sizes)
    size = [int(sizes[k]) for k in keys]
    if any(s < 0 for s in size):
        raise ConfigError(f"group sizes should be >= 0, got {dict(zip(keys, size, strict=True))}")
    w = _weights(size, allocation)
    out = np.zeros(len(keys), dtype=np.int64)
    active = np.array([s > 0 and wi > 0 for s, wi in zip(size, w, strict=True)], dtype=bool)
    cap = np.asarray(size, dtype=np.int64)
    left = min(budget, int(cap.sum()))
    while left > 0 and active.any():
        share = np.zeros(len(keys))
        share[active] = left * w[active] / w[active].sum()
        full = active & (share >= cap)
        if not full.any():
            base = np.floor(share).astype(np.int64)
            base[~active] = 0
            rest = left - int(base[active].sum())
            rem = np.where(active, share - base, -1.0)
            # stable sort: equal remainders go to the group listed first
            order = np.argsort(-rem, kind="stable")[:rest]
            base[order] += 1
            out[active] += base[active]
            left = 0
            break
        out[full] = cap[full]
        left -= int(cap[full].sum())
        active &= ~full
    return {k: int(v) for k, v in zip(keys, out, strict=True)}


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


# -- loading a run ---------------------------------------------------------


def load_labels(ws: Workspace, run_id: str) -> np.ndarray:
    """The run's ``labels.npy`` as an (n,) int32 array (memory-mapped)."""
    return np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")


def _labels_map(ws: Workspace, run_id: str) -> dict[str, int]:
    """Cluster label (lower case) -> cluster id, from the run's newest description."""
    for m in ws.list("description"):
        if m.get("run_id") != run_id:
            continue
        try:
            from textcluster.describe.clusters import load_description

            d = load_description(ws, m["id"])
        except StoreError:
            continue
        return {c.label.lower(): c.cluster for c in d.clusters if c.label}
    return {}


def resolve_clusters(ws: Workspace, run_id: str, items: tuple[int | str, ...]) -> tuple[int, ...]:
    """Turn cluster ids or labels (from a description of the run) into sorted cluster ids."""
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
                f"cluster {s!r} is neither a cluster id nor the label of a cluster of {run_id}"
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
    from textcluster.describe.clusters import member_distances

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
    if not ws.exists(sid):
        ws.manifest(run_id)  # a clear StoreError for an unknown run
        with ws.lock(sid):
            if not ws.exists(sid):
                return _draw(ws, run_id, policy, sid, progress, requested=requested)
    return load_sample(ws, sid, cached=True)


def canonical_policy(ws: Workspace, run_id: str, policy: SamplingPolicy) -> SamplingPolicy:
    """``policy`` with its cluster lists resolved to sorted cluster ids.

    The same rows asked for by label (``"card arrival"``), by id (``12``) or in another
    order get the same sample id. Raises :class:`ConfigError` for an unknown label.
    """
    from dataclasses import replace

    clusters = None if policy.clusters is None else resolve_clusters(ws, run_id, tuple(policy.clusters))
    exclude = resolve_clusters(ws, run_id, tuple(policy.exclude_clusters)) if policy.exclude_clusters else ()
    return replace(policy, clusters=clusters, exclude_clusters=exclude)


def _draw(
    ws: Workspace, run_id: str, policy: SamplingPolicy, sid: str, progress: Any, requested: SamplingPolicy | None = None
) -> SampleResult:
    from textcluster.progress import Meter

    run_m = ws.manifest(run_id)
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
        import pyarrow as pa
        import pyarrow.parquet as pq

        t = pa.table(
            {
                "sample_id": pa.array([sid] * len(doc_ids), pa.string()),
                "doc_id": pa.array(doc_ids, pa.int64()),
                "cluster": pa.array(clusters, pa.int32()),
                "rank": pa.array(ranks, pa.int32()),
            }
        )
        pq.write_table(t, d / "sample.parquet")

    manifest = {
        "run_id": run_id,
        "embedding_id": run_m.get("embedding_id"),
        "corpus_id": run_m.get("corpus_id"),
        "policy": policy.to_dict(),
        **({"requested_policy": requested.to_dict()} if requested is not None and requested != policy else {}),
        "n": int(len(doc_ids)),
        "available": int(sum(sizes.values())),
        "per_cluster": {str(c): int(v) for c, v in q.items()},
    }
    path = ws.write(sid, manifest, write, parents=[run_id])
    logger.info("sample %s: %d rows from %d groups", sid, len(doc_ids), len(q))
    return SampleResult(sid, run_id, int(len(doc_ids)), {int(c): int(v) for c, v in q.items()}, doc_ids, path)


def load_sample(ws: Workspace, sample_id: str, cached: bool = False) -> SampleResult:
    """A stored sample (its doc ids in file order and per-cluster counts)."""
    import pyarrow.parquet as pq

    m = ws.manifest(sample_id)
    t = pq.read_table(ws.file(sample_id, "sample.parquet"), columns=["doc_id"])
    per = {int(k): int(v) for k, v in m.get("per_cluster", {}).items()}
    return SampleResult(
        sample_id, m.get("run_id", ""), int(m.get("n", t.num_rows)), per,
        t.column("doc_id").to_numpy(), ws.path(sample_id), cached,
    )


def _embedding_of(ws: Workspace, run_id: str, run_m: dict[str, Any], required: bool) -> Any:
    eid = run_m.get("embedding_id")
    if not eid or not ws.exists(eid):
        if required:
            raise StoreError(f"run {run_id} names no embedding in this workspace (embedding_id={eid!r})")
        return None
    return np.load(ws.file(eid, "embeddings.npy"), mmap_mode="r")
