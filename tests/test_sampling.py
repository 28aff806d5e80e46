"""Sampling: exact budgets (water-filling), allocations, within-cluster pickers, seeds, storage."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run
from hypothesis import given, settings
from hypothesis import strategies as st

from textcluster.config import SamplingPolicy
from textcluster.describe.allocation import waterfill
from textcluster.describe.sampling import farthest_point, plan, quotas, sample, stratified_subset
from textcluster.errors import ConfigError
from textcluster.store import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


# -- quotas ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 500), min_size=1, max_size=30),
    n=st.integers(0, 5000),
    allocation=st.sampled_from(["equal", "proportional", "sqrt"]),
)
def test_budget_is_exact_and_never_exceeds_a_cluster(sizes, n, allocation):
    q = waterfill(dict(enumerate(sizes)), n, allocation)
    assert sum(q.values()) == min(n, sum(sizes))
    for c, s in enumerate(sizes):
        assert 0 <= q[c] <= s


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=15),
    n_noise=st.integers(0, 300),
    n=st.integers(0, 3000),
    noise=st.sampled_from(["exclude", "include", "quota"]),
    f=st.floats(0, 1),
)
def test_noise_modes_keep_the_budget_exact(sizes, n_noise, n, noise, f):
    groups = {**dict(enumerate(sizes)), -1: n_noise}
    q = quotas(groups, n, "sqrt", noise, f)
    avail = sum(sizes) + (0 if noise == "exclude" else n_noise)
    assert sum(q.values()) == min(n, avail)
    if noise == "exclude":
        assert -1 not in q
    for c, v in q.items():
        assert 0 <= v <= groups[c]


def test_allocations_on_known_sizes():
    sizes = {0: 900, 1: 100, 2: 0}
    assert waterfill(sizes, 100, "equal") == {0: 50, 1: 50, 2: 0}
    assert waterfill(sizes, 100, "proportional") == {0: 90, 1: 10, 2: 0}
    assert waterfill(sizes, 100, "sqrt") == {0: 75, 1: 25, 2: 0}


def test_small_cluster_gives_all_and_the_shortfall_goes_to_the_others():
    q = waterfill({0: 3, 1: 100, 2: 100}, 30, "equal")
    assert q == {0: 3, 1: 14, 2: 13}  # the tie in remainders goes to the first listed


def test_noise_quota_takes_its_share_and_lends_the_rest():
    assert quotas({0: 50, 1: 50, -1: 40}, 20, "equal", "quota", 0.25) == {0: 8, 1: 7, -1: 5}
    # clusters too small: noise fills the budget
    assert quotas({0: 2, -1: 40}, 20, "equal", "quota", 0.1) == {0: 2, -1: 18}
    # too little noise: clusters fill the budget
    assert quotas({0: 50, -1: 1}, 20, "equal", "quota", 0.5) == {0: 19, -1: 1}


def test_bad_allocation_is_a_config_error():
    with pytest.raises(ConfigError, match="allocation='bogus'"):
        waterfill({0: 3}, 2, "bogus")
    with pytest.raises(ConfigError, match="noise='maybe'"):
        quotas({0: 3}, 2, "sqrt", "maybe")


# -- the stratified subset (the Explore scatter) ------------------------------------


def test_scatter_subset_is_stratified_above_the_cap():
    labels = np.repeat(np.arange(4), [9000, 900, 90, 10]).astype(np.int32)
    rows = stratified_subset(labels, max_points=1000)
    assert rows.size == 1000 and np.all(np.diff(rows) > 0)
    counts = np.bincount(labels[rows], minlength=4)
    assert counts[0] == 900 and counts[3] >= 1
    assert stratified_subset(labels[:500], max_points=1000).size == 500


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=40),
    cap=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
)
def test_subset_count_is_exact_and_every_cluster_keeps_a_point(sizes, cap, seed):
    labels = np.repeat(np.arange(len(sizes)) - 1, sizes)  # the first group is noise (-1)
    rng = np.random.default_rng(seed)
    labels = labels[rng.permutation(labels.size)]
    rows = stratified_subset(labels, cap, seed=seed)
    assert rows.dtype == np.int64 and np.all(np.diff(rows) > 0)
    assert rows.size == min(cap, labels.size)
    kept = np.unique(labels[rows])
    if cap >= len(sizes):
        assert kept.size == len(sizes)
    else:  # more clusters than points: the largest clusters keep one each
        assert kept.size == cap
        assert np.sort(np.asarray(sizes)[kept + 1])[0] >= np.sort(sizes)[::-1][cap - 1]


def test_subset_shares_are_proportional_and_small_clusters_borrow_from_big_ones():
    labels = np.repeat([0, 1, 2], [9990, 5, 5])
    counts = np.bincount(labels[stratified_subset(labels, 100)], minlength=3)
    assert counts.tolist() == [98, 1, 1]  # proportional would be 99.9 / 0.05 / 0.05
    labels = np.repeat([-1, 0, 1], [2000, 6000, 2000])
    counts = np.bincount(labels[stratified_subset(labels, 1000)] + 1, minlength=3)
    assert counts.tolist() == [200, 600, 200]


def test_subset_is_seeded():
    labels = np.repeat([0, 1, 2], [700, 200, 100])
    a, b = stratified_subset(labels, 100, seed=3), stratified_subset(labels, 100, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, stratified_subset(labels, 100, seed=4))


def test_subset_with_more_clusters_than_points_keeps_the_largest():
    labels = np.repeat([5, 6, 7, 8], [3, 10, 10, 1])
    assert sorted(labels[stratified_subset(labels, 2)].tolist()) == [6, 7]  # tie: the lower label first
    assert sorted(labels[stratified_subset(labels, 3)].tolist()) == [5, 6, 7]


def test_subset_bad_input_is_a_config_error():
    with pytest.raises(ConfigError, match="max_points=0 should be an integer >= 1"):
        stratified_subset(np.zeros(5, dtype=np.int32), 0)
    with pytest.raises(ConfigError, match="max_points=2.5"):
        stratified_subset(np.zeros(5, dtype=np.int32), 2.5)
    with pytest.raises(ConfigError, match=r"1-D array, got shape \(2, 3\)"):
        stratified_subset(np.zeros((2, 3), dtype=np.int32), 4)


# -- farthest point ---------------------------------------------------------------


def _min_pairwise(x):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    d[np.diag_indices_from(d)] = np.inf
    return d.min()


def test_diverse_picks_are_farther_apart_than_random_picks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    fp = farthest_point(x, 30, chunk=512)
    assert len(set(fp.tolist())) == 30
    rand_min = np.median([_min_pairwise(x[rng.choice(2000, 30, replace=False)]) for _ in range(20)])
    assert _min_pairwise(x[fp]) > rand_min


def test_farthest_point_never_repeats_duplicates():
    x = np.zeros((10, 3), np.float32)
    x[5] = 1.0
    assert sorted(farthest_point(x, 10).tolist()) == list(range(10))


def test_farthest_point_memory_is_linear_on_100k_rows():
    import tracemalloc

    x = np.random.default_rng(1).normal(size=(100_000, 8)).astype(np.float32)
    tracemalloc.start()
    farthest_point(x, 5, chunk=16_384)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # an n x n matrix would need 40 GB


# -- the stage ----------------------------------------------------------------------


def test_sample_is_stored_exact_and_reproducible(ws):
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=6)
    pol = SamplingPolicy(size=25, allocation="proportional", seed=3)
    r = sample(ws, fr.run_id, pol)
    assert r.n == 25 and sum(r.per_cluster.values()) == 25
    assert r.per_cluster == plan(ws, fr.run_id, pol)
    t = pq.read_table(ws.file(r.sample_id, "sample.parquet"))
    assert t.schema.names == ["sample_id", "doc_id", "cluster", "rank"]
    assert str(t.schema.field("doc_id").type) == "int64"
    assert t.num_rows == 25 and len(set(t.column("doc_id").to_pylist())) == 25
    # every drawn row really belongs to the cluster it is filed under
    assert all(fr.labels[d] == c for d, c in zip(t.column("doc_id").to_pylist(), t.column("cluster").to_pylist(), strict=True))
    m = ws.manifest(r.sample_id)
    assert m.policy["size"] == 25 and m.run_id == fr.run_id
    again = sample(ws, fr.run_id, pol)
    assert again.cached and again.sample_id == r.sample_id
    ws.delete(r.sample_id)
    redo = sample(ws, fr.run_id, pol)
    assert not redo.cached and np.array_equal(redo.doc_ids, r.doc_ids)
    other = sample(ws, fr.run_id, SamplingPolicy(size=25, allocation="proportional", seed=4))
    assert not np.array_equal(np.sort(other.doc_ids), np.sort(r.doc_ids))


@pytest.mark.parametrize("within", ["random", "diverse", "nearest"])
def test_within_modes_fill_the_budget(ws, within):
    fr = make_run(ws, sizes=(30, 20, 4))
    r = sample(ws, fr.run_id, SamplingPolicy(size=24, allocation="equal", within=within))
    assert r.per_cluster == {0: 10, 1: 10, 2: 4}
    assert len(set(r.doc_ids.tolist())) == 24


def test_nearest_picks_the_rows_closest_to_the_centre(ws):
    fr = make_run(ws, sizes=(40,))
    r = sample(ws, fr.run_id, SamplingPolicy(size=5, within="nearest"))
    dist = np.load(ws.file(fr.run_id, "distances.npy"))
    assert sorted(r.doc_ids.tolist()) == sorted(np.argsort(dist)[:5].tolist())


def test_nearest_without_distance_files_recomputes(ws):
    fr = make_run(ws, sizes=(40, 10), with_distances=False)
    r = sample(ws, fr.run_id, SamplingPolicy(size=5, within="nearest", clusters=(0,)))
    centre = np.load(ws.file(fr.run_id, "centers.npy"))[0]
    members = np.flatnonzero(fr.labels == 0)
    d = np.linalg.norm(fr.emb[members] - centre, axis=1)
    assert sorted(r.doc_ids.tolist()) == sorted(members[np.argsort(d)[:5]].tolist())


def test_include_and_exclude_clusters_and_noise(ws):
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=8)
    r = sample(ws, fr.run_id, SamplingPolicy(size=100, clusters=(0, 2)))
    assert r.per_cluster == {0: 30, 2: 10}  # fewer rows than N: all of them
    r = sample(ws, fr.run_id, SamplingPolicy(size=12, exclude_clusters=(0,), noise="include", allocation="equal"))
    assert r.per_cluster == {1: 4, 2: 4, -1: 4}
    with pytest.raises(ConfigError, match=r"clusters=\[7\] are not in run"):
        sample(ws, fr.run_id, SamplingPolicy(size=5, clusters=(7,)))


def test_clusters_by_label_need_a_description(ws):
    from textcluster.describe.clusters import describe

    fr = make_run(ws, sizes=(30, 20, 10))
    with pytest.raises(ConfigError, match="run `textcluster describe` first"):
        plan(ws, fr.run_id, SamplingPolicy(size=5, clusters=("nope",)))
    d = describe(ws, fr.run_id)
    label2 = d.by_cluster()[2].label
    assert plan(ws, fr.run_id, SamplingPolicy(size=50, clusters=(label2.upper(),))) == {2: 10}


def test_same_clusters_by_label_id_or_order_are_one_sample(ws):
    """Clusters named by label, by id or listed in another order give one sample id and its rows."""
    from textcluster.describe.clusters import describe

    fr = make_run(ws, sizes=(30, 20, 10))
    d = describe(ws, fr.run_id)
    label1, label2 = d.by_cluster()[1].label, d.by_cluster()[2].label
    by_id = sample(ws, fr.run_id, SamplingPolicy(size=12, clusters=(2, 1)))
    by_label = sample(ws, fr.run_id, SamplingPolicy(size=12, clusters=(label1, label2)))
    assert by_label.sample_id == by_id.sample_id and by_label.cached
    assert by_label.doc_ids.tolist() == by_id.doc_ids.tolist()
    m = ws.manifest(by_id.sample_id)
    assert m.policy["clusters"] == [1, 2] and m.requested_policy["clusters"] == [2, 1]
    excl = sample(ws, fr.run_id, SamplingPolicy(size=12, exclude_clusters=(label1,)))
    assert excl.sample_id == sample(ws, fr.run_id, SamplingPolicy(size=12, exclude_clusters=(1,))).sample_id
    with pytest.raises(ConfigError, match="neither a cluster id nor the label"):
        sample(ws, fr.run_id, SamplingPolicy(size=5, clusters=("no such topic",)))


def test_diverse_sample_spreads_wider_than_random_sample(ws):
    fr = make_run(ws, sizes=(400,), dim=6)
    div = sample(ws, fr.run_id, SamplingPolicy(size=15, within="diverse")).doc_ids
    rnd = [sample(ws, fr.run_id, SamplingPolicy(size=15, within="random", seed=s)).doc_ids for s in range(5)]
    assert _min_pairwise(fr.emb[div]) > max(_min_pairwise(fr.emb[r]) for r in rnd)


def test_describe_modules_import_one_way():
    """sampling -> clusters -> allocation; never back (the old describe <-> sampling cycle)."""
    import ast
    from pathlib import Path

    import textcluster.describe as pkg

    def imported(module: str) -> set[str]:
        tree = ast.parse((Path(pkg.__file__).parent / f"{module}.py").read_text())
        names = set()
        for node in ast.walk(tree):  # also imports inside functions
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return {n for n in names if n.startswith("textcluster.describe")}

    assert not any("sampling" in n for n in imported("clusters")), imported("clusters")
    assert imported("allocation") == set()
    assert "textcluster.describe.clusters" in imported("sampling")
