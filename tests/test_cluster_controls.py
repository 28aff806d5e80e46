"""Outlier scores and --outliers, seed stability, the centre hierarchy, and the one-click
versions (a hierarchy level, noise assigned to the nearest cluster)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs
from test_runs import write_embedding

from textcluster.cluster import actions, hierarchy, runs
from textcluster.cluster.outliers import mark_outliers, outlier_scores
from textcluster.cluster.stability import best_match_jaccard
from textcluster.config import ClustererConfig, ReducerConfig, SamplingPolicy
from textcluster.describe.sampling import sample
from textcluster.errors import ConfigError
from textcluster.query.sql import query
from textcluster.store import Workspace

R = ReducerConfig(projection="pca")


@pytest.fixture(scope="module")
def ws_emb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str]:
    ws = Workspace(tmp_path_factory.mktemp("controls"))
    # six blobs in three well-separated pairs: a two-level structure
    centers = np.array([[0, 0], [3, 0], [40, 0], [43, 0], [0, 40], [3, 40]], dtype=float)
    centers = np.hstack([centers, np.zeros((6, 6))])
    X, y = make_blobs(360, n_features=8, centers=centers, cluster_std=0.5, random_state=0)
    return ws, write_embedding(ws, X.astype(np.float32), [f"c{v}" for v in y])


def test_outlier_scores_are_quantiles_within_each_cluster() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, -1])
    own = np.array([0.4, 0.1, 0.3, 0.2, 5.0, 1.0, 9.0])
    s = outlier_scores(labels, own)
    np.testing.assert_allclose(s[:6], [0.875, 0.125, 0.625, 0.375, 0.75, 0.25])
    assert np.isnan(s[6])
    marked = mark_outliers(labels, s, 0.25)
    # the farthest quarter of each cluster: one of four rows; a quarter of two rows rounds to none
    assert marked.tolist() == [-1, 0, 0, 0, 1, 1, -1]
    with pytest.raises(ConfigError, match=r"outliers=0.6 should be a share in \(0, 0.5\]"):
        mark_outliers(labels, s, 0.6)


def test_run_stores_outlier_scores_and_outliers_marks_the_farthest(ws_emb) -> None:
    ws, eid = ws_emb
    plain = runs.cluster(ws, eid, R, ClustererConfig(k=6))
    score = np.load(ws.file(plain.run_id, "outlier_score.npy"))
    labels = np.load(ws.file(plain.run_id, "labels.npy"))
    dist = np.load(ws.file(plain.run_id, "distances.npy"))
    c0 = labels == 0
    # within a cluster the score orders the rows as their distance to the centre does
    assert np.array_equal(np.argsort(score[c0], kind="stable"), np.argsort(dist[c0], kind="stable"))
    res = runs.cluster(ws, eid, R, ClustererConfig(k=6, outliers=0.1))
    m = ws.manifest(res.run_id)
    assert res.run_id != plain.run_id and m.can_mark_noise and m.outliers["q"] == 0.1
    marked = np.load(ws.file(res.run_id, "labels.npy"))
    assert 0.08 <= res.noise <= 0.12 and m.outliers["marked"] == int((marked < 0).sum())
    # the rows marked are the farthest of their cluster
    far = marked < 0
    assert score[far].min() > score[~far].max() - 1e-6 or score[far].min() > 0.85
    # new texts beyond a cluster's farthest kept member are noise too; a central one is not
    centers = np.load(ws.file(res.run_id, "centers.npy"))
    out = runs.assign_vectors(ws, res.run_id, np.vstack([centers[0], centers[0] + 30.0]).astype(np.float32))
    assert out.labels[0] == 0 and out.labels[1] == -1
    # SQL: outlier_score is a column of assignments, NULL for noise
    t = query(ws, "SELECT count(*) AS n, count(outlier_score) AS scored, max(outlier_score) AS mx "
                  "FROM assignments", run_id=plain.run_id)
    row = t.to_pylist()[0]
    assert row["n"] == 360 and row["scored"] == 360 and 0.9 < row["mx"] < 1.0
    # sampling's noise quota draws the marked outliers
    smp = sample(ws, res.run_id, SamplingPolicy(size=40, noise="quota", noise_quota=0.25, seed=0))
    drawn = pq.read_table(ws.file(smp.sample_id, "sample.parquet")).to_pandas()
    assert (drawn["cluster"] == -1).sum() == 10


def test_best_match_jaccard() -> None:
    a = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    b = np.array([5, 5, 5, 4, 4, 0, 0, -1])
    j = best_match_jaccard(a, b, 3)
    np.testing.assert_allclose(j, [1.0, 2 / 3, 1 / 3])


def test_stability_reruns_seeds_and_stores_per_cluster_scores(ws_emb) -> None:
    ws, eid = ws_emb
    res = runs.cluster(ws, eid, R, ClustererConfig(k=6, stability=3))
    m = ws.manifest(res.run_id)
    assert m.stability["seeds"] == 3 and len(m.stability["per_cluster"]) == 6
    assert m.stability["mean"] > 0.9 and m.stability["unstable"] == []  # well-separated blobs come back
    table = pq.read_table(ws.file(res.run_id, "clusters.parquet"))
    assert table.column("stability").to_pylist() == m.stability["per_cluster"]
    # k = 3 on six blobs in three pairs is stable too; k = 9 splits blobs at random: flagged
    loose = runs.cluster(ws, eid, R, ClustererConfig(k=9, stability=4))
    assert ws.manifest(loose.run_id).stability["mean"] < m.stability["mean"]
    with pytest.raises(ConfigError, match="stability=1 should be >= 2"):
        runs.cluster(ws, eid, R, ClustererConfig(k=6, stability=1))


def test_hierarchy_levels_and_saving_a_level_as_a_version(ws_emb) -> None:
    ws, eid = ws_emb
    res = runs.cluster(ws, eid, R, ClustererConfig(k=6))
    Z = np.load(ws.file(res.run_id, "hierarchy.npy"))
    assert Z.shape == (5, 4)
    assert hierarchy.cut_levels(ws, res.run_id) == [2, 3, 4, 5, 6]
    labels = np.load(ws.file(res.run_id, "labels.npy"))
    lvl = hierarchy.level_labels(ws, res.run_id, 3)
    # each of the three pairs of blobs becomes one group
    for g in range(3):
        assert np.unique(labels[lvl == g]).size == 2
    order = hierarchy.leaf_order(Z, 6)
    groups = hierarchy.cut(Z, 6, 3)
    assert all(groups[order[i]] == groups[order[i + 1]] for i in (0, 2, 4))  # pairs sit side by side
    ver = actions.save_level(ws, res.run_id, 3)
    vm = ws.manifest(ver.run_id)
    assert vm.parent_run == res.run_id and vm.edit == {"op": "level", "k": 3} and ver.k == 3
    assert actions.save_level(ws, res.run_id, 3).run_id == ver.run_id  # same edit, same version
    with pytest.raises(ConfigError, match="level=7 should be between 1"):
        actions.save_level(ws, res.run_id, 7)


def test_assign_noise_writes_a_version_without_noise(ws_emb) -> None:
    ws, eid = ws_emb
    res = runs.cluster(ws, eid, R, ClustererConfig(k=6, outliers=0.2))
    assert res.noise > 0.15
    ver = actions.assign_noise(ws, res.run_id)
    assert ver.noise == 0.0 and ws.manifest(ver.run_id).edit == {"op": "assign_noise"}
    before = np.load(ws.file(res.run_id, "labels.npy"))
    after = np.load(ws.file(ver.run_id, "labels.npy"))
    kept = before >= 0
    assert np.array_equal(before[kept], after[kept])
    with pytest.raises(ConfigError, match="has no noise rows"):
        actions.assign_noise(ws, ver.run_id)


def test_stability_reuses_the_reduction(ws_emb, monkeypatch) -> None:
    from textcluster.cluster import reduce as red

    ws, eid = ws_emb
    calls = []
    real = red.fit_reduce
    monkeypatch.setattr(red, "fit_reduce", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = runs.cluster(ws, eid, ReducerConfig(method="pca", dims=3, projection="pca"),
                       ClustererConfig(k=6, stability=4, seed=7))
    assert ws.manifest(res.run_id).stability["seeds"] == 4
    assert len(calls) == 1  # one reduction for the run and its three reruns
