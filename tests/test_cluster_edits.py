"""Cluster edits as run versions: each edit's invariants, lineage, deterministic ids, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fakes_run import make_run

from textcluster.cluster import edits
from textcluster.cluster.versions import run_names, version_chain
from textcluster.errors import ConfigError
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(30, 20, 10, 6), n_noise=4)


def _labels(ws, run_id):
    return np.load(ws.file(run_id, "labels.npy"))


def _edit(m):
    return getattr(m, "edit", None) or m.extra.get("edit")


def _same_groups(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> bool:
    """True when ``rows`` are grouped the same way by ``a`` and ``b`` (up to renumbering; noise stays noise)."""
    if not np.array_equal(a[rows] < 0, b[rows] < 0):
        return False
    keep = rows[a[rows] >= 0]
    pairs = set(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    return len({x for x, _ in pairs}) == len(pairs) == len({y for _, y in pairs})


def _runs(ws):
    return sorted(m.id for m in ws.list("run"))


def test_rename_changes_names_only_records_lineage_and_is_a_cache_hit(env):
    ws, fr = env
    before = _labels(ws, fr.run_id).copy()
    r = edits.rename(ws, fr.run_id, {2: "  Baking  "})
    assert r.run_id != fr.run_id and not r.cached
    assert np.array_equal(_labels(ws, r.run_id), before)
    assert np.array_equal(_labels(ws, fr.run_id), before)  # the parent is untouched
    assert run_names(ws, r.run_id) == {2: "Baking"}
    m = ws.manifest(r.run_id)
    assert m.parent_run == fr.run_id and fr.run_id in m.parents
    assert _edit(m) == {"op": "rename", "names": {"2": "Baking"}}
    assert version_chain(ws, r.run_id) == [fr.run_id, r.run_id]
    again = edits.rename(ws, fr.run_id, {"2": "Baking"})
    assert again.run_id == r.run_id and again.cached
    # a name is a cluster reference from then on, and names carry over to later versions
    r2 = edits.rename(ws, r.run_id, {"Baking": "Bread", 0: "Sport"})
    assert run_names(ws, r2.run_id) == {0: "Sport", 2: "Bread"}


def test_merge_joins_only_the_named_clusters(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    r = edits.merge(ws, fr.run_id, [3, 1], name="Merged")
    child = _labels(ws, r.run_id)
    inside = np.flatnonzero(np.isin(parent, [1, 3]))
    assert np.unique(child[inside]).size == 1
    merged = int(child[inside[0]])
    assert run_names(ws, r.run_id)[merged] == "Merged"
    outside = np.flatnonzero(~np.isin(parent, [1, 3]))
    assert _same_groups(parent, child, outside)
    assert not np.isin(child[outside], [merged]).any()
    assert ws.manifest(r.run_id).k == 3
    assert _edit(ws.manifest(r.run_id)) == {"op": "merge", "clusters": [1, 3], "name": "Merged"}
    # order and repetition of the clusters do not matter: same edit, same id
    assert edits.merge(ws, fr.run_id, [1, 3, 3], name="Merged").run_id == r.run_id


def test_a_repeated_split_is_a_cache_hit_without_clustering_again(env, monkeypatch):
    ws, fr = env
    first = edits.split(ws, fr.run_id, 1, k=2)

    def refuse(*a, **k):
        raise AssertionError("clustered again")

    monkeypatch.setattr(edits.KMeansClusterer, "fit", refuse)
    again = edits.split(ws, fr.run_id, "1", k=2)
    assert again.run_id == first.run_id and again.cached


def test_split_changes_only_the_split_clusters_members(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    r = edits.split(ws, fr.run_id, 0, k=3, seed=1)
    child = _labels(ws, r.run_id)
    members = np.flatnonzero(parent == 0)
    others = np.flatnonzero(parent != 0)
    assert _same_groups(parent, child, others)
    assert np.unique(child[members]).size == 3
    assert not np.isin(child[members], child[others]).any()
    assert ws.manifest(r.run_id).k == 6
    assert edits.split(ws, fr.run_id, 0, k=3, seed=1).run_id == r.run_id
    assert edits.split(ws, fr.run_id, 0, k=3, seed=2).run_id != r.run_id
    auto = edits.split(ws, fr.run_id, 0, seed=1)
    assert _edit(ws.manifest(auto.run_id))["k"] == "auto"
    assert np.unique(_labels(ws, auto.run_id)[members]).size >= 2


def test_move_changes_only_the_moved_documents(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    docs = np.flatnonzero(parent == 1)[:3]
    r = edits.move(ws, fr.run_id, docs.tolist()[::-1], 2)
    child = _labels(ws, r.run_id)
    rest = np.setdiff1d(np.arange(parent.size), docs)
    assert _same_groups(parent, child, rest)
    target = child[np.flatnonzero(parent == 2)[0]]
    assert (child[docs] == target).all()
    e = _edit(ws.manifest(r.run_id))
    assert e["op"] == "move" and e["docs"]["n"] == 3 and len(e["docs"]["sha256"]) == 64
    assert edits.move(ws, fr.run_id, docs, 2).run_id == r.run_id
    noise = edits.move(ws, fr.run_id, docs, "noise")
    assert (_labels(ws, noise.run_id)[docs] == -1).all()


def test_drop_to_noise_or_to_the_nearest_cluster(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    members = np.flatnonzero(parent == 3)
    r = edits.drop(ws, fr.run_id, 3)
    child = _labels(ws, r.run_id)
    assert (child[members] == -1).all()
    assert _same_groups(parent, child, np.flatnonzero(parent != 3))
    n = edits.drop(ws, fr.run_id, 3, to_nearest=True)
    near = _labels(ws, n.run_id)
    assert (near[members] >= 0).all() and (near < 0).sum() == (parent < 0).sum()
    assert n.run_id != r.run_id
    # each dropped member joined the remaining centre nearest to it
    centers = np.load(ws.file(fr.run_id, "centers.npy"))
    rest = [0, 1, 2]
    d = ((fr.emb[members][:, None, :] - centers[rest][None]) ** 2).sum(-1)
    want = np.array(rest)[d.argmin(1)]
    child_of = {int(near[np.flatnonzero(parent == c)[0]]): c for c in rest}
    assert [child_of[int(x)] for x in near[members]] == want.tolist()


def test_carve_merges_a_drill_down_back(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    sel = np.flatnonzero(np.isin(parent, [0, 1]))[::2]
    ids, parts = edits.subcluster(ws, fr.run_id, sel, k=2, seed=0)
    assert np.array_equal(ids, np.sort(sel)) and set(parts.tolist()) == {0, 1}
    r = edits.carve(ws, fr.run_id, sel, k=2, names=["left", "right"])
    child = _labels(ws, r.run_id)
    assert set(run_names(ws, r.run_id).values()) == {"left", "right"}
    assert _same_groups(parts[:, None].ravel(), child[ids], np.arange(ids.size))
    rest = np.setdiff1d(np.arange(parent.size), sel)
    assert _same_groups(parent, child, rest)


@pytest.mark.parametrize(("call", "match"), [
    (lambda ws, r: edits.rename(ws, r, {99: "x"}), "99"),
    (lambda ws, r: edits.rename(ws, r, {0: "   "}), "cannot be empty"),
    (lambda ws, r: edits.rename(ws, r, {0: "x" * 201}), "at most 200"),
    (lambda ws, r: edits.merge(ws, r, [1]), "two or more"),
    (lambda ws, r: edits.merge(ws, r, [1, 1]), "two or more"),
    (lambda ws, r: edits.merge(ws, r, [1, "nope"]), "nope"),
    (lambda ws, r: edits.split(ws, r, 3, k=7), "only 6 member"),
    (lambda ws, r: edits.split(ws, r, 3, k=1), "k >= 2"),
    (lambda ws, r: edits.move(ws, r, [500], 1), "doc id 500"),
    (lambda ws, r: edits.move(ws, r, [], 1), "no documents"),
    (lambda ws, r: edits.drop(ws, r, 42), "42"),
])
def test_bad_edits_write_nothing(env, call, match):
    ws, fr = env
    before = _runs(ws)
    with pytest.raises(ConfigError, match=match):
        call(ws, fr.run_id)
    assert _runs(ws) == before


def test_names_are_offered_from_keywords_and_stored_by_a_rename(env):
    from textcluster.describe.names import suggest_names

    ws, fr = env
    offered = suggest_names(ws, fr.run_id)
    assert [s.cluster for s in offered] == [0, 1, 2, 3] and all(s.current is None for s in offered)
    from fakes_run import TOPICS

    assert set(offered[0].keywords.split(" / ")) <= set(TOPICS[0])  # cluster 0's topic words
    r = edits.rename(ws, fr.run_id, {s.cluster: s.best() for s in offered})
    again = suggest_names(ws, r.run_id)
    assert [s.current for s in again] == [s.keywords for s in offered]


def test_names_show_in_sql_exports_and_samples(env, tmp_path):
    import pyarrow.parquet as pq

    from textcluster.config import SamplingPolicy
    from textcluster.describe import sampling
    from textcluster.query.export import export, source_sql
    from textcluster.query.sql import query

    ws, fr = env
    r = edits.rename(ws, fr.run_id, {1: "Code", 2: "Baking"})
    t = query(ws, "SELECT DISTINCT cluster, cluster_name FROM assignments ORDER BY cluster", run_id=r.run_id)
    assert t.to_pylist() == [{"cluster": -1, "cluster_name": None}, {"cluster": 0, "cluster_name": None},
                             {"cluster": 1, "cluster_name": "Code"}, {"cluster": 2, "cluster_name": "Baking"},
                             {"cluster": 3, "cluster_name": None}]
    c = query(ws, "SELECT cluster, cluster_name FROM clusters WHERE cluster_name IS NOT NULL ORDER BY 1",
              run_id=r.run_id)
    assert c.column("cluster_name").to_pylist() == ["Code", "Baking"]
    # the streamed run export and the SQL join give the same columns and names
    a = pq.read_table(export(ws, tmp_path / "a.parquet", run_id=r.run_id, batch_rows=9).path)
    scope, stmt = source_sql(ws, run_id=r.run_id)
    b = pq.read_table(export(ws, tmp_path / "b.parquet", sql=stmt, run_id=scope).path)
    assert a.schema.names == b.schema.names and "cluster_name" in a.schema.names
    assert a.column("cluster_name").to_pylist() == b.column("cluster_name").to_pylist()
    named = dict(zip(a.column("doc_id").to_pylist(), a.column("cluster_name").to_pylist(), strict=True))
    assert all(named[i] == "Code" for i in np.flatnonzero(fr.labels == 1))
    # a sample asked by cluster name, exported with the names
    s = sampling.sample(ws, r.run_id, SamplingPolicy(size=10, clusters=("Baking",)))
    rows = pq.read_table(export(ws, tmp_path / "s.parquet", sample_id=s.sample_id).path).to_pylist()
    assert len(rows) == 10 and {x["cluster_name"] for x in rows} == {"Baking"}


def test_drill_down_sub_run_renamed_then_merged_back(env):
    ws, fr = env
    parent = _labels(ws, fr.run_id)
    sel = np.flatnonzero(np.isin(parent, [0, 1]))
    sub = edits.drill(ws, fr.run_id, sel, k=2, seed=0)
    sub_labels = _labels(ws, sub.run_id)
    assert (sub_labels[sel] >= 0).all() and (np.delete(sub_labels, sel) == -1).all()
    assert ws.manifest(sub.run_id).parent_run == fr.run_id and sub.k == 2
    assert edits.drill(ws, fr.run_id, sel, k=2, seed=0).cached
    named = edits.rename(ws, sub.run_id, {0: "part A", 1: "part B"})
    back = edits.merge_back(ws, named.run_id)
    child = _labels(ws, back.run_id)
    m = ws.manifest(back.run_id)
    assert m.parent_run == fr.run_id and m.edit["op"] == "merge_back" and m.edit["sub_run"] == named.run_id
    assert _same_groups(sub_labels, child, sel)  # the sub-run's parts, as they were
    rest = np.setdiff1d(np.arange(parent.size), sel)
    assert _same_groups(parent, child, rest)
    assert set(run_names(ws, back.run_id).values()) == {"part A", "part B"}
    with pytest.raises(ConfigError, match="not a drill-down"):
        edits.merge_back(ws, fr.run_id)
    # edits made inside the sub-run are merged back too: its two parts merged into one
    one = edits.merge(ws, named.run_id, ["part A", "part B"], name="both")
    whole = _labels(ws, edits.merge_back(ws, one.run_id).run_id)
    assert np.unique(whole[sel]).size == 1 and not np.isin(whole[rest], whole[sel]).any()


def test_describe_edit_names_every_kind_of_version():
    from textcluster.cluster.edits import describe_edit

    assert describe_edit(None) == "clustered"
    assert describe_edit({"op": "merge", "clusters": [2, 3], "name": "billing"}) == "merge 2 + 3 as billing"
    assert describe_edit({"op": "level", "k": 5}) == "hierarchy level of 5 clusters"
    assert describe_edit({"op": "label_map", "labels": {"0": "A", "1": "B"}}) == "label map (2 labels)"
    assert describe_edit({"op": "assign_noise"}) == "noise assigned to the nearest cluster"
