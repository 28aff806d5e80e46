"""Clusterers: registry, recovery of make_blobs clusters, fit on a subset, noise, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from textcluster.cluster.distances import nearest_center
from textcluster.cluster.fitting import fit_assign
from textcluster.cluster.gmm import GMMClusterer
from textcluster.cluster.kmeans import KMeansClusterer
from textcluster.cluster.neighbors import knn_labels
from textcluster.cluster.registry import CLUSTERERS, check_clusterer, get_clusterer, select_fit_rows
from textcluster.config import ClustererConfig
from textcluster.errors import ConfigError


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(600, n_features=8, centers=4, cluster_std=0.6, random_state=3)
    return X.astype(np.float32), y


FAST = ["kmeans", "minibatch-kmeans", "gmm", "hdbscan", "dbscan", "agglomerative", "graph-ward"]


@pytest.mark.parametrize("method", FAST)
def test_each_clusterer_recovers_blobs(method: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = blobs
    cfg = ClustererConfig(method=method, k=4, min_cluster_size=20, eps=2.5, seed=1)
    out = fit_assign(X, cfg)
    assert out.labels.dtype == np.int32 and out.labels.shape == (600,)
    assert adjusted_rand_score(y, out.labels) > 0.9
    assert out.centers.shape == (int(out.labels.max()) + 1, 8)


def test_self_training_is_registered_lazily() -> None:
    info = get_clusterer("self-training")
    assert info.uses_k and not info.can_mark_noise and info.assign == "knn"


def test_registry_has_help_and_noise_flags() -> None:
    assert set(FAST) | {"self-training"} == set(CLUSTERERS)
    for name, info in CLUSTERERS.items():
        assert info.name == name and info.help and "\n" not in info.help
    assert CLUSTERERS["hdbscan"].can_mark_noise and not CLUSTERERS["kmeans"].can_mark_noise


def test_graph_ward_is_registered_deterministic_and_capped(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    from textcluster.cluster.graphward import GRAPH_WARD_MAX_FIT
    from textcluster.cluster.registry import fit_rows

    info = get_clusterer("graph-ward")
    assert info.uses_k and not info.can_mark_noise and info.assign == "knn"
    assert info.help == "ward linkage on the k-NN graph; good for many small topics"
    assert fit_rows(10 * GRAPH_WARD_MAX_FIT, ClustererConfig(method="graph-ward")) == GRAPH_WARD_MAX_FIT
    X, y = blobs
    a = fit_assign(X, ClustererConfig(method="graph-ward", k=4, seed=0))
    b = fit_assign(X, ClustererConfig(method="graph-ward", k=4, seed=5))  # seed has no effect
    assert adjusted_rand_score(y, a.labels) > 0.9
    assert a.labels.tobytes() == b.labels.tobytes()
    # centres are member means in the clusterer's space
    assert np.allclose(a.centers[0], X[a.labels == 0].mean(axis=0), atol=1e-4)
    sub = fit_assign(X, ClustererConfig(method="graph-ward", k=4, fit_size=200, params={"n_neighbors": 8}))
    assert sub.fit_idx is not None and adjusted_rand_score(y, sub.labels) > 0.9


@pytest.mark.parametrize("method", ["kmeans", "gmm", "hdbscan", "agglomerative"])
def test_fit_on_subset_agrees_with_full_fit(method: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    base = dict(method=method, k=4, min_cluster_size=15, seed=0, noise="assign")
    full = fit_assign(X, ClustererConfig(**base))
    sub = fit_assign(X, ClustererConfig(**base, fit_size=200))
    assert sub.fit_idx is not None and sub.fit_idx.shape == (200,)
    assert adjusted_rand_score(full.labels, sub.labels) > 0.95


def test_same_seed_same_labels_bytes(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    for method in ("kmeans", "minibatch-kmeans", "gmm"):
        cfg = ClustererConfig(method=method, k=5, seed=7, fit_size=300)
        assert fit_assign(X, cfg).labels.tobytes() == fit_assign(X, cfg).labels.tobytes()


def test_noise_keep_and_assign() -> None:
    X, _ = make_blobs(400, n_features=4, centers=3, cluster_std=0.3, random_state=0)
    rng = np.random.default_rng(0)
    X = np.concatenate([X, rng.uniform(-15, 15, (40, 4))]).astype(np.float32)
    kept = fit_assign(X, ClustererConfig(method="hdbscan", min_cluster_size=20, noise="keep"))
    assert (kept.labels == -1).sum() > 0
    assigned = fit_assign(X, ClustererConfig(method="hdbscan", min_cluster_size=20, noise="assign"))
    assert (assigned.labels >= 0).all()
    assert assigned.noise_before_assign == pytest.approx(float(np.mean(kept.labels < 0)))
    keep = kept.labels >= 0
    assert (assigned.labels[keep] == kept.labels[keep]).all()


def test_kmeans_quality_matches_sklearn(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.cluster import KMeans

    X, _ = make_blobs(3000, n_features=16, centers=12, cluster_std=2.5, random_state=0)
    X = X.astype(np.float32)
    ours = KMeansClusterer(12, seed=0).fit(X)
    theirs = KMeans(12, random_state=0).fit(X)
    assert ours.inertia_ <= theirs.inertia_ * 1.01
    for backend in ("numpy", "faiss"):  # faiss: subsampled training + full-data polish
        other = KMeansClusterer(12, seed=0, backend=backend).fit(X)
        assert other.backend_ == backend
        assert adjusted_rand_score(ours.labels_, other.labels_) > 0.9


def test_gmm_state_round_trip(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = blobs
    g = GMMClusterer(4, seed=0).fit(X)
    g2 = GMMClusterer.from_state(g.state())
    assert (g2.predict(X) == g.labels_).all()


def test_impossible_settings_name_the_value() -> None:
    with pytest.raises(ConfigError, match="k=20 should be <= n_samples=12"):
        check_clusterer(ClustererConfig(k=20), 12)
    with pytest.raises(ConfigError, match="k=20 should be <= fitted rows=10"):
        check_clusterer(ClustererConfig(k=20, fit_size=10), 100)
    with pytest.raises(ConfigError, match="method='nope' should be one of"):
        check_clusterer(ClustererConfig(method="nope"), 100)
    with pytest.raises(ConfigError, match="empty input"):
        check_clusterer(ClustererConfig(k=2), 0)
    with pytest.raises(ConfigError, match="k=0 should be >= 1"):
        check_clusterer(ClustererConfig(k=0), 10)


def test_fit_rows_are_seeded_and_sorted() -> None:
    a = select_fit_rows(1000, ClustererConfig(fit_size=100, seed=3))
    b = select_fit_rows(1000, ClustererConfig(fit_size=100, seed=3))
    assert a is not None and (a == b).all() and (np.diff(a) > 0).all()
    assert select_fit_rows(50, ClustererConfig(fit_size=100)) is None


def test_knn_and_nearest_center_helpers() -> None:
    ref = np.array([[0, 0], [10, 10], [10, 11]], np.float32)
    lab, dist = knn_labels(ref, np.array([0, 1, 1]), np.array([[0.5, 0], [9, 9]], np.float32), k=1)
    assert lab.tolist() == [0, 1] and dist[0] == pytest.approx(0.5)
    lab3, _ = knn_labels(ref, np.array([0, 1, 1]), np.array([[1, 1]], np.float32), k=3)
    assert lab3.tolist() == [1]  # majority of the three
    lab, d = nearest_center(np.array([[1, 0]], np.float32), ref)
    assert lab.tolist() == [0] and d[0] == pytest.approx(1.0)
