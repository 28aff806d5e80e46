"""Comparing two partitions / runs: ARI, NMI, the matched contingency, the list of changes."""

from __future__ import annotations

import numpy as np
import pytest
from fakes_run import make_run
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from textcluster.cluster.compare import OVERLAP, compare_labels, compare_runs
from textcluster.errors import ConfigError
from textcluster.store import Workspace


def _blocks(*sizes: int) -> np.ndarray:
    return np.concatenate([np.full(s, c, np.int32) for c, s in enumerate(sizes)])


def test_identical_partitions_up_to_relabelling_score_one_and_show_no_change():
    a = _blocks(30, 20, 10, 5)
    perm = np.array([3, 0, 2, 1])
    c = compare_labels(a, perm[a])
    assert c.ari == pytest.approx(1.0) and c.nmi == pytest.approx(1.0)
    assert c.changes == []
    # the matched clusters sit on the diagonal, largest first
    assert c.matched == 4
    assert np.array_equal(np.diag(c.counts), [30, 20, 10, 5])
    assert c.counts.sum() == np.trace(c.counts)
    assert c.cols == [int(perm[r]) for r in c.rows]


def test_scores_equal_scikit_learn_on_random_partitions():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(-1, 6, 500), rng.integers(-1, 9, 500)
        c = compare_labels(a, b)
        assert c.ari == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
        assert c.nmi == pytest.approx(normalized_mutual_info_score(a, b), abs=1e-12)


def test_a_merge_shows_as_a_merge_and_a_split_as_a_split():
    a = _blocks(30, 20, 10, 5)
    merged = a.copy()
    merged[merged == 3] = 1  # clusters 1 and 3 of A become one
    c = compare_labels(a, merged)
    assert [(x.kind, x.a, x.b) for x in c.changes] == [("merged", [1, 3], [1])]
    assert c.changes[0].docs == 25
    back = compare_labels(merged, a)  # the other way round it is a split
    assert [(x.kind, x.a, x.b) for x in back.changes] == [("split", [1], [1, 3])]
    assert c.ari < 1.0


def test_a_dropped_cluster_vanishes_and_a_new_one_appears():
    a = _blocks(30, 20, 10)
    b = a.copy()
    b[a == 2] = -1  # dropped to noise
    c = compare_labels(a, b)
    assert [(x.kind, x.a, x.b, x.docs) for x in c.changes] == [("vanished", [2], [], 10)]
    # noise sits last on both sides
    assert c.rows[-1] == 2 and c.cols[-1] == -1
    d = compare_labels(b, a)
    assert [(x.kind, x.b) for x in d.changes] == [("appeared", [2])]


def test_overlap_threshold_is_documented_and_checked():
    assert OVERLAP == 0.5
    a = _blocks(10, 10)
    b = np.array([0] * 6 + [1] * 4 + [1] * 10)  # 6 of cluster 0 stay, 4 leave for 1
    # cluster 1 of B gets 4 of A's 0 (4 < 0.5 * 14) and all of A's 1: no merge at 0.5
    assert [x.kind for x in compare_labels(a, b).changes] == []
    # at 0.25, most-of-b links: A's 0 feeds B's 0 (6 >= 1.5) and B's 1 (4 >= 3.5): a split
    assert "split" in [x.kind for x in compare_labels(a, b, overlap=0.25).changes]
    with pytest.raises(ConfigError, match="overlap"):
        compare_labels(a, b, overlap=0)
    with pytest.raises(ConfigError, match="different numbers"):
        compare_labels(a, b[:5])


def test_compare_runs_refuses_two_corpora(tmp_path):
    ws = Workspace(tmp_path / "ws")
    r1 = make_run(ws, seed=0)
    r2 = make_run(ws, seed=1, sizes=(10, 10))
    c = compare_runs(ws, r1.run_id, r1.run_id)
    assert c.ari == 1.0 and c.run_a == r1.run_id and c.n == 60
    with pytest.raises(ConfigError, match="same corpus"):
        compare_runs(ws, r1.run_id, r2.run_id)


def test_two_methods_runs_of_one_corpus_compare(tmp_path):
    """Two ordinary runs of one embedding (k-means with k=3 and k=2): the k=2 run merges two of
    the k=3 clusters, which compare reports."""
    from textcluster.cluster.runs import cluster
    from textcluster.config import ClustererConfig, ReducerConfig

    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws, sizes=(40, 40, 40))
    r3 = cluster(ws, fr.embedding_id, ReducerConfig(method="none", projection="pca"), ClustererConfig(k=3))
    r2 = cluster(ws, fr.embedding_id, ReducerConfig(method="none", projection="pca"), ClustererConfig(k=2))
    c = compare_runs(ws, r3.run_id, r2.run_id)
    assert 0 < c.ari < 1 and c.matched == 2
    kinds = [x.kind for x in c.changes]
    assert kinds == ["merged"] and len(c.changes[0].a) == 2
    assert compare_runs(ws, r3.run_id, fr.run_id).ari == pytest.approx(1.0)  # k-means finds the blobs
