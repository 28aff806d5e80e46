"""Metrics: ACC by the Hungarian algorithm, NMI/ARI, label-free diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from textcluster.cluster.evaluate import cluster_accuracy, supervised, unsupervised
from textcluster.errors import ConfigError


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
