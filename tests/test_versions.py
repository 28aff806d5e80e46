"""Run versions (textcluster.cluster.versions): derived runs keep the artifact layout, record
their lineage, recompute only what an edit touched, and new texts follow them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from fakes_run import real_chain

from textcluster.cluster import runs
from textcluster.cluster import versions as ver
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import ConfigError
from textcluster.store import Workspace


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return real_chain(tmp_path_factory.mktemp("versions"))


def _files_digest(ws: Workspace, run_id: str) -> dict[str, str]:
    d = ws.path(run_id)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*")) if p.is_file()}


def _space(ws, rid):
    return ver.cluster_space(ws, rid)


def test_merge_writes_a_consistent_version_and_leaves_the_parent_alone(chain):
    ws, ids = chain
    rid = ids["run"]
    before = _files_digest(ws, rid)
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    lab = np.where(parent == 2, 0, parent)  # merge 2 into 0
    res = ver.derive_run(ws, rid, lab, edit={"op": "merge", "clusters": [0, 2]}, label_map={2: 0})
    assert _files_digest(ws, rid) == before
    m = ws.manifest(res.run_id)
    assert m.parent_run == rid and rid in m.parents
    assert m.edit == {"op": "merge", "clusters": [0, 2]}
    assert m.k == 2 and m.assign_mode == "map"
    new = np.load(ws.file(res.run_id, "labels.npy"))
    # labels change only where the edit says: cluster 2 joins 0, cluster 1 stays one cluster
    assert np.array_equal(new == 0, (parent == 0) | (parent == 2))
    assert np.array_equal(new == 1, parent == 1)
    Z = _space(ws, rid)
    centers = np.load(ws.file(res.run_id, "centers.npy"))
    np.testing.assert_allclose(centers[0], Z[new == 0].mean(axis=0), rtol=1e-5, atol=1e-6)
    # the untouched cluster keeps the parent's centre exactly
    pcent = np.load(ws.file(rid, "centers.npy"))
    assert np.array_equal(centers[1], pcent[1])
    own = np.load(ws.file(res.run_id, "distances.npy"))
    want = np.linalg.norm(Z - centers[new], axis=1)
    np.testing.assert_allclose(own, want, rtol=1e-4, atol=1e-5)
    cpd = np.load(ws.file(res.run_id, "center_pairwise_distance.npy"))
    np.testing.assert_allclose(cpd[0, 1], np.linalg.norm(centers[0] - centers[1]), rtol=1e-5)
    # medoid of a cluster is its member nearest the centre
    import pyarrow.parquet as pq

    t = pq.read_table(ws.file(res.run_id, "clusters.parquet")).to_pydict()
    assert t["size"] == [int((new == 0).sum()), int((new == 1).sum())]
    for c, med in zip(t["cluster"], t["medoid_doc_id"], strict=True):
        members = np.flatnonzero(new == c)
        assert med == members[np.argmin(own[members])]
    # the same edit on the same parent is the same version (a cache hit)
    again = ver.derive_run(ws, rid, lab, edit={"op": "merge", "clusters": [0, 2]}, label_map={2: 0})
    assert again.run_id == res.run_id and again.cached
    assert ver.version_chain(ws, res.run_id) == [rid, res.run_id]


def test_new_texts_follow_a_merge_and_a_drop(chain):
    ws, ids = chain
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    X = np.load(ws.file(ids["embedding"], "embeddings.npy")).astype(np.float32)
    base = runs.assign_vectors(ws, rid, X)
    merged = ver.derive_run(ws, rid, np.where(parent == 2, 0, parent), edit={"op": "merge", "clusters": [0, 2]},
                            label_map={2: 0}).run_id
    got = runs.assign_vectors(ws, merged, X)
    assert got.mode == "map"
    want = np.where(base.labels == 2, 0, base.labels)
    assert np.array_equal(got.labels, want)
    dropped = ver.derive_run(ws, rid, np.where(parent == 1, -1, parent), edit={"op": "drop", "cluster": 1},
                             label_map={1: -1}).run_id
    got = runs.assign_vectors(ws, dropped, X)
    assert not (got.labels[base.labels == 1] >= 0).any()  # a dropped cluster gets no new texts
    # parent cluster 2 is the version's cluster 1 after renumbering
    assert np.array_equal(got.labels[base.labels == 2], np.ones(int((base.labels == 2).sum()), np.int32))
    assert ws.manifest(dropped).noise == pytest.approx(float(np.mean(parent == 1)))


def test_a_split_sends_new_texts_to_the_nearest_part(chain):
    ws, ids = chain
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    Z = _space(ws, rid)
    members = np.flatnonzero(parent == 0)
    # split cluster 0 in two by its first coordinate (a deterministic rule for the test)
    part = Z[members, 0] > np.median(Z[members, 0])
    lab = parent.copy()
    lab[members[part]] = 3  # a new id above the parent's k
    res = ver.derive_run(ws, rid, lab, edit={"op": "split", "cluster": 0, "k": 2}, label_map={0: [0, 3]})
    m = ws.manifest(res.run_id)
    assert m.k == 4 and m.label_map["0"] == [0, 3]
    got = runs.assign_vectors(ws, res.run_id, Z)  # no reducer: the space is the embedding
    centers = np.load(ws.file(res.run_id, "centers.npy"))
    rows = members
    d = np.linalg.norm(Z[rows, None, :] - centers[None, [0, 3], :], axis=2)
    assert np.array_equal(got.labels[rows], np.array([0, 3])[d.argmin(axis=1)])


def test_names_carry_over_and_resolve(chain):
    ws, ids = chain
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    named = ver.derive_run(ws, rid, parent, edit={"op": "rename", "cluster": 1, "name": "cooking"},
                           names={1: "  cooking "}).run_id
    assert ver.run_names(ws, named) == {1: "cooking"}
    assert np.array_equal(np.load(ws.file(named, "labels.npy")), parent)
    assert ver.resolve_cluster(ws, named, "cooking") == 1
    assert ver.resolve_cluster(ws, named, "2") == 2
    assert ver.resolve_cluster(ws, named, 0) == 0
    with pytest.raises(ConfigError, match="no cluster 'baking'.*cooking"):
        ver.resolve_cluster(ws, named, "baking")
    with pytest.raises(ConfigError, match="no cluster '7'"):
        ver.resolve_cluster(ws, named, 7)
    # a merge of two other clusters keeps the name of the untouched cluster 1
    merged = ver.derive_run(ws, named, np.where(parent == 2, 0, parent), edit={"op": "merge", "clusters": [0, 2]},
                            label_map={2: 0}).run_id
    assert ver.run_names(ws, merged) == {1: "cooking"}
    assert ver.version_chain(ws, merged) == [rid, named, merged]
    import pyarrow.parquet as pq

    assert pq.read_table(ws.file(merged, "clusters.parquet")).column("name").to_pylist() == [None, "cooking"]


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        ("short", {}, "do not match"),
        ("minus2", {}, ">= 0 or -1"),
        ("same", {"names": {0: " "}}, "cannot be empty"),
        ("same", {"names": {0: "x" * 201}}, "at most 200"),
        ("same", {"names": {0: "two\nlines"}}, "control character"),
        ("same", {"edit": {"clusters": [1]}}, '"op"'),
    ],
)
def test_bad_versions_are_refused_and_write_nothing(chain, labels, kwargs, match):
    ws, ids = chain
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    lab = {"short": parent[:-1], "minus2": np.where(parent == 0, -2, parent), "same": parent}[labels]
    before = sorted(p.name for p in (ws.root / "run").iterdir())
    kw = {"edit": {"op": "test-bad", "case": match}, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ver.derive_run(ws, rid, lab, **kw)
    assert sorted(p.name for p in (ws.root / "run").iterdir()) == before


def test_a_pca_version_reads_the_saved_projection(tmp_path, chain):
    ws, ids = chain
    r = runs.cluster(ws, ids["embedding"], ReducerConfig(method="pca", dims=5, projection="pca"), ClustererConfig(k=3))
    parent = np.load(ws.file(r.run_id, "labels.npy")).astype(np.int64)
    v = ver.derive_run(ws, r.run_id, np.where(parent == 1, 0, parent), edit={"op": "merge", "clusters": [0, 1]},
                       label_map={1: 0})
    Z = ver.cluster_space(ws, r.run_id)
    assert Z.shape[1] == 5
    new = np.load(ws.file(v.run_id, "labels.npy"))
    centers = np.load(ws.file(v.run_id, "centers.npy"))
    np.testing.assert_allclose(centers[0], Z[new == 0].mean(axis=0), rtol=1e-4, atol=1e-5)
    assert (ws.path(v.run_id) / "reducer").is_dir()
    X = np.load(ws.file(ids["embedding"], "embeddings.npy")).astype(np.float32)
    base = runs.assign_vectors(ws, r.run_id, X)
    got = runs.assign_vectors(ws, v.run_id, X)
    want = np.where(base.labels == 1, 0, base.labels)
    want = np.where(want == 2, 1, want)
    assert np.array_equal(got.labels, want)


def test_a_version_writes_its_own_outlier_scores_and_hierarchy(chain):
    from textcluster.cluster.outliers import outlier_scores

    ws, ids = chain
    rid = ids["run"]
    parent = np.load(ws.file(rid, "labels.npy")).astype(np.int64)
    v = ver.derive_run(ws, rid, np.where(parent == 2, 0, parent), edit={"op": "merge", "clusters": [0, 2]},
                       label_map={2: 0}).run_id
    new = np.load(ws.file(v, "labels.npy"))
    own = np.load(ws.file(v, "distances.npy"))
    np.testing.assert_array_equal(np.load(ws.file(v, "outlier_score.npy")), outlier_scores(new, own))
    assert np.load(ws.file(v, "hierarchy.npy")).shape == (1, 4)  # k = 2 clusters: one merge
    assert ws.manifest(v).stability is None
