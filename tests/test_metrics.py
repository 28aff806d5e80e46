"""Metrics: ACC by the Hungarian algorithm, NMI/ARI, label-free diagnostics, a run's evaluation."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run

from textcluster.cluster.evaluate import (
    cluster_accuracy,
    contingency,
    evaluate_run,
    supervised,
    unsupervised,
)
from textcluster.errors import ConfigError, StoreError
from textcluster.store import Workspace


def test_acc_is_invariant_to_relabelling() -> None:
    y = np.array(["a", "a", "b", "b", "c", "c"])
    p = np.array([2, 2, 0, 0, 1, 1])
    assert cluster_accuracy(y, p) == 1.0
    s = supervised(y, p)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)


def test_acc_with_more_clusters_than_classes_counts_surplus_as_errors() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 2, 2, 2, 2])  # class 0 split in two: only one half can map
    assert cluster_accuracy(y, p) == pytest.approx(6 / 8)


def test_acc_with_fewer_clusters_than_classes() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 0, 1, 1])
    assert cluster_accuracy(y, p) == pytest.approx(4 / 6)


def test_noise_rows_count_as_errors_in_acc() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0, -1, 1, 1])
    assert cluster_accuracy(y, p) == pytest.approx(3 / 4)


def test_length_mismatch_and_empty_raise() -> None:
    with pytest.raises(ConfigError, match="3 rows but labels_pred has 2"):
        cluster_accuracy([0, 1, 1], np.array([0, 1]))
    with pytest.raises(ConfigError, match="empty"):
        cluster_accuracy([], np.array([], dtype=int))


def test_unsupervised_diagnostics() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(5, 0.1, (30, 3)), rng.normal(-5, 3, (20, 3))])
    labels = np.array([0] * 50 + [1] * 30 + [-1] * 20)
    u = unsupervised(X, labels, seed=0)
    assert u["silhouette"] > 0.9
    assert u["davies_bouldin"] < 0.1
    assert u["noise"] == pytest.approx(0.2)
    assert u["size_max_share"] == pytest.approx(0.5) and u["size_min_share"] == pytest.approx(0.3)
    one = unsupervised(X, np.zeros(100, int))
    assert one["silhouette"] is None and one["noise"] == 0.0


def test_silhouette_matches_sklearn() -> None:
    from sklearn.metrics import silhouette_score

    from textcluster.cluster.evaluate import silhouette

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6)).astype(np.float32)
    labels = rng.integers(0, 4, size=200)
    labels[0] = 9  # a singleton scores 0, as in scikit-learn
    assert silhouette(X, labels) == pytest.approx(silhouette_score(X, labels), abs=1e-4)


# -- cluster x label table -------------------------------------------------------------


def test_contingency_orders_a_good_match_as_a_diagonal() -> None:
    # cluster 7 (largest) holds most of "b", cluster 3 most of "c" and "a" (more "c").
    y = ["b"] * 5 + ["c"] * 3 + ["a"] * 2 + ["a"] + ["c"]
    p = np.array([7] * 5 + [3] * 3 + [3] * 2 + [7] + [-1])
    t = contingency(y, p)
    assert t.clusters == [7, 3, -1]
    assert t.labels == ["b", "c", "a"]
    assert t.counts.tolist() == [[5, 0, 1], [0, 3, 2], [0, 1, 0]]
    assert t.truncated is False
    assert t.to_dict()["counts"] == [[5, 0, 1], [0, 3, 2], [0, 1, 0]]


def test_contingency_keeps_the_largest_clusters_and_labels() -> None:
    y = np.array(["x"] * 6 + ["y"] * 4 + ["z"] * 1)
    p = np.array([0] * 6 + [1] * 3 + [2] * 2)
    t = contingency(y, p, max_side=2)
    assert t.truncated is True
    assert t.clusters == [0, 1] and t.labels == ["x", "y"]
    assert t.counts.tolist() == [[6, 0], [0, 3]]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_contingency_rejects_a_bad_side_naming_it(bad) -> None:
    with pytest.raises(ConfigError, match=f"max_side={bad!r} should be an integer >= 1"):
        contingency(["a"], np.array([0]), max_side=bad)


def test_contingency_length_mismatch() -> None:
    with pytest.raises(ConfigError, match="2 rows but labels_pred has 1"):
        contingency(["a", "b"], np.array([0]))


# -- a saved run -----------------------------------------------------------------------


@pytest.fixture
def fake(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(30, 20, 10), n_noise=4)


def _relabel(ws: Workspace, fr, labels: list[str | None] | None) -> None:
    """Rewrite the fake corpus's label column (None: drop it) to test partial and missing labels."""
    p = ws.file(fr.corpus_id, "docs.parquet")
    t = pq.read_table(p).drop_columns(["label"])
    if labels is not None:
        t = t.append_column("label", pa.array(labels, pa.string()))
    pq.write_table(t, p)


def test_evaluate_run_scores_labels_on_the_embedding(fake) -> None:
    ws, fr = fake
    ev = evaluate_run(ws, fr.run_id)
    assert (ev.n, ev.k, ev.labelled, ev.classes) == (64, 3, 64, 4)
    # The four noise rows carry their own label "topic-1": a group for NMI/ARI, errors for ACC.
    assert ev.supervised == pytest.approx({"acc": 60 / 64, "nmi": 1.0, "ari": 1.0, "v_measure": 1.0})
    assert ev.diagnostics == unsupervised(fr.emb, fr.labels, seed=0)
    assert ev.sizes == [30, 20, 10]
    assert ev.contingency.clusters == [0, 1, 2, -1]
    assert ev.contingency.labels == ["topic0", "topic1", "topic2", "topic-1"]
    assert np.array_equal(ev.contingency.counts, np.diag([30, 20, 10, 4]))
    d = ev.to_dict()
    assert json.loads(json.dumps(d)) == d


def test_evaluate_run_scores_only_the_labelled_rows(fake) -> None:
    ws, fr = fake
    labels = [f"topic{c}" if c >= 0 else None for c in fr.labels]
    _relabel(ws, fr, labels)
    ev = evaluate_run(ws, fr.run_id)
    assert (ev.labelled, ev.classes) == (60, 3)
    assert ev.supervised["acc"] == 1.0
    assert ev.contingency.clusters == [0, 1, 2]


def test_evaluate_run_without_labels(fake) -> None:
    ws, fr = fake
    _relabel(ws, fr, None)
    ev = evaluate_run(ws, fr.run_id)
    assert ev.supervised is None and ev.contingency is None
    assert (ev.labelled, ev.classes) == (0, 0)
    assert ev.diagnostics["silhouette"] is not None and ev.sizes == [30, 20, 10]


def test_evaluate_run_refuses_other_ids_and_bad_settings(fake) -> None:
    ws, fr = fake
    with pytest.raises(StoreError, match="is not a run .its kind is 'corpus'"):
        evaluate_run(ws, fr.corpus_id)
    with pytest.raises(StoreError, match="no run 'run-0000000000000000'"):
        evaluate_run(ws, "run-0000000000000000")
    with pytest.raises(ConfigError, match="sample=1 should be an integer >= 2"):
        evaluate_run(ws, fr.run_id, sample=1)
