"""Label-free quality steps: k-NN smoothing and view combination."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from textcluster.cluster.neighbors import knn_indices, l2_normalize
from textcluster.cluster.smooth import combine_views, neighbor_smooth
from textcluster.errors import ConfigError


def noisy_topics(seed: int = 0):
    """4 topics on the sphere, each text a weak sample of its topic (hard for k-means)."""
    rng = np.random.default_rng(seed)
    centers = l2_normalize(rng.normal(size=(4, 64)))
    y = np.repeat(np.arange(4), 150)
    X = l2_normalize(centers[y] + 0.22 * rng.normal(size=(len(y), 64)))
    return X, y


def test_knn_indices_self_first_and_exact():
    X, _ = noisy_topics()
    idx = knn_indices(X, 5)
    assert idx.shape == (len(X), 6) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[:, 0], np.arange(len(X)))
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    best = np.sort(-sims, axis=1)[:, :5]
    got = -np.sort(-np.take_along_axis(sims, idx[:, 1:], axis=1), axis=1)
    np.testing.assert_allclose(-best, got, rtol=1e-5, atol=1e-6)


def test_knn_numpy_fallback_matches_faiss(monkeypatch):
    import builtins

    X, _ = noisy_topics(1)
    with_faiss = knn_indices(X, 4)
    real_import = builtins.__import__

    def no_faiss(name, *a, **kw):
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    fallback = knn_indices(X, 4)
    np.testing.assert_array_equal(np.sort(with_faiss, 1), np.sort(fallback, 1))


def test_smoothing_pulls_texts_towards_their_topic():
    X, y = noisy_topics()
    centers = l2_normalize(np.stack([X[y == j].mean(0) for j in range(4)]))
    S = neighbor_smooth(X, 10)
    assert S.shape == X.shape and S.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(S, axis=1), 1.0, rtol=1e-5)
    before = (X * centers[y]).sum(1)
    after = (S * centers[y]).sum(1)
    assert after.mean() > before.mean() + 0.1  # closer to the own topic's centre
    assert adjusted_rand_score(y, KMeans(4, n_init=3, random_state=0).fit_predict(S)) > 0.95


def test_smoothing_edge_cases():
    X, _ = noisy_topics()
    np.testing.assert_allclose(neighbor_smooth(X[:3] * 2, 0), X[:3], rtol=1e-5)
    assert neighbor_smooth(X[:3], 50).shape == (3, 64)  # clipped to n - 1
    with pytest.raises(ConfigError, match="n_neighbors=-1"):
        neighbor_smooth(X, -1)
    with pytest.raises(ConfigError, match=r"shape \(64,\)"):
        neighbor_smooth(X[0])
    with pytest.raises(ConfigError, match="NaN"):
        neighbor_smooth(np.full((4, 3), np.nan))


def test_combine_views_weights_cosines():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(5, 8)), rng.normal(size=(5, 3))
    C = combine_views([A, B], [0.7, 0.3])
    assert C.shape == (5, 11)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-5)
    An, Bn = l2_normalize(A), l2_normalize(B)
    np.testing.assert_allclose(C @ C.T, 0.7 * An @ An.T + 0.3 * Bn @ Bn.T, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match=r"weights=\[0\.5, 0\.6\]"):
        combine_views([A, B], [0.5, 0.6])
    with pytest.raises(ConfigError, match=r"same rows; got \[5, 4\]"):
        combine_views([A, B[:4]])
    with pytest.raises(ConfigError, match="at least one view"):
        combine_views([])


def test_graph_ward_recovers_topics_and_predicts():
    from textcluster.cluster.graphward import GraphWardClusterer

    X, y = noisy_topics(2)
    m = GraphWardClusterer(4, n_neighbors=10).fit(X)
    assert adjusted_rand_score(y, m.labels_) > 0.8  # noisy topics; k-means gets about the same
    assert m.cluster_centers_.shape == (4, 64) and m.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(m.predict(X), m.labels_)
    np.testing.assert_array_equal(GraphWardClusterer(4, seed=9).fit(X).labels_, m.labels_)
    assert GraphWardClusterer.can_mark_noise is False


def test_knn_graph_rows_hold_the_neighbours():
    from textcluster.cluster.neighbors import knn_graph

    X, _ = noisy_topics()
    G = knn_graph(X, 7)
    assert G.shape == (len(X), len(X)) and G.nnz == 7 * len(X)
    np.testing.assert_array_equal(G.getnnz(axis=1), 7)
    assert G.diagonal().sum() == 0


def test_graph_ward_errors():
    from textcluster.cluster.graphward import GraphWardClusterer

    X, _ = noisy_topics()
    with pytest.raises(ConfigError, match="k=700 should be an integer in"):
        GraphWardClusterer(700).fit(X)
    with pytest.raises(ConfigError, match="not fitted"):
        GraphWardClusterer(4).predict(X)


def test_smoother_transform_matches_fit_on_known_rows():
    from textcluster.cluster.smooth import NeighborSmoother

    X, _ = noisy_topics(3)
    sm = NeighborSmoother(5)
    np.testing.assert_allclose(sm.fit_transform(X[:500]), neighbor_smooth(X[:500], 5), rtol=1e-6)
    new = sm.transform(X[500:])
    assert new.shape == (100, 64)
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, rtol=1e-5)
    # New rows are pulled towards their topic like fitted ones.
    _, y = noisy_topics(3)
    c = l2_normalize(np.stack([X[:500][y[:500] == j].mean(0) for j in range(4)]))
    assert (new * c[y[500:]]).sum(1).mean() > (X[500:] * c[y[500:]]).sum(1).mean() + 0.1
    with pytest.raises(ConfigError, match=r"shape \(m, 64\); got \(3, 2\)"):
        sm.transform(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="not fitted"):
        NeighborSmoother().transform(X)
