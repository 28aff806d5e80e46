"""Reducers: exact chunked PCA, UMAP (one module-scoped fit: numba compiles once), projection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from textcluster import reduce as red
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import ConfigError


def test_pca_matches_sklearn_up_to_sign() -> None:
    from sklearn.decomposition import PCA

    X = np.random.default_rng(0).normal(size=(500, 12)).astype(np.float32) * np.arange(1, 13)
    ours = red.PCAReducer(3).fit(X)
    theirs = PCA(3).fit(X)
    for a, b in zip(ours.components_, theirs.components_, strict=True):
        assert abs(float(np.dot(a, b))) == pytest.approx(1.0, abs=1e-4)
    back = red.PCAReducer.from_state(ours.state())
    assert np.allclose(back.transform(X), ours.transform(X))


def test_pca_chunks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    X = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    whole = red.PCAReducer(2).fit(X).transform(X)
    monkeypatch.setattr(red, "CHUNK_ROWS", 64)
    chunked = red.PCAReducer(2).fit(X).transform(X)
    assert np.allclose(whole, chunked, atol=1e-5)


def test_reducer_checks_name_the_value() -> None:
    with pytest.raises(ConfigError, match="UMAP dims=10 should be < the input dim=10"):
        red.check_reducer(ReducerConfig(method="umap", dims=10), 100, 10)
    with pytest.raises(ConfigError, match="PCA dims=20 should be <= min"):
        red.check_reducer(ReducerConfig(method="pca", dims=20), 100, 10)
    with pytest.raises(ConfigError, match="n_samples=0"):
        red.check_reducer(ReducerConfig(), 0, 10)
    with pytest.raises(ConfigError, match="reducer='tsne' should be one of"):
        red.check_reducer(ReducerConfig(method="tsne"), 10, 10)  # type: ignore[arg-type]


def test_smooth_reducer_is_neighbor_smooth_and_maps_the_rest() -> None:
    from textcluster.config import REDUCERS
    from textcluster.quality import NeighborSmoother, neighbor_smooth

    assert "smooth" in REDUCERS
    X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    fitted, Z = red.fit_reduce(X, ReducerConfig(method="smooth"))
    assert isinstance(fitted, NeighborSmoother) and fitted.n_neighbors == 10 and fitted.state() == {}
    assert Z.dtype == np.float32 and Z.shape == (120, 6)
    assert np.allclose(Z, neighbor_smooth(X, 10), atol=1e-6)
    idx = np.arange(0, 120, 2)
    sub, Zs = red.fit_reduce(X, ReducerConfig(method="smooth", smooth_neighbors=4), fit_idx=idx)
    assert np.allclose(Zs[idx], neighbor_smooth(X[idx], 4), atol=1e-6)
    assert np.allclose(Zs[1::2], sub.transform(X[1::2]), atol=1e-6)
    with pytest.raises(ConfigError, match="needs at least 2 rows, got n_samples=1"):
        red.check_reducer(ReducerConfig(method="smooth"), 1, 6)


def test_identity_and_pca_projection_shapes() -> None:
    X = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    _, Z = red.fit_reduce(X, ReducerConfig())
    assert Z.dtype == np.float32 and Z.shape == (50, 5)
    P = red.project_2d(X, ReducerConfig(projection="pca"))
    assert P.shape == (50, 2) and P.dtype == np.float32
    assert red.projection_method(ReducerConfig(), 10) == "umap"
    assert red.projection_method(ReducerConfig(), red.AUTO_UMAP_MAX_ROWS + 1) == "pca"


@pytest.fixture(scope="module")
def umap_run(tmp_path_factory: pytest.TempPathFactory):
    """One UMAP run through the whole stage (compiles numba once for this module)."""
    from test_runs import write_embedding

    from textcluster import runs
    from textcluster.store import Workspace

    seconds = red.warm_up()
    assert red.is_warm() and red.warm_up() == 0.0
    X, y = make_blobs(400, n_features=16, centers=4, cluster_std=1.0, random_state=2)
    X = X.astype(np.float32)
    ws = Workspace(tmp_path_factory.mktemp("umapws"))
    eid = write_embedding(ws, X, [str(v) for v in y], tag="umap")
    reducer = ReducerConfig(method="umap", dims=3, n_neighbors=10, projection="umap")
    clusterer = ClustererConfig(method="hdbscan", min_cluster_size=15, fit_size=250, seed=0)
    res = runs.cluster(ws, eid, reducer, clusterer)
    return ws, eid, X, y, res, reducer, clusterer, seconds


@pytest.mark.slow
def test_umap_run_clusters_and_assign_reproduces(umap_run) -> None:
    from textcluster import runs

    ws, eid, X, y, res, reducer, clusterer, _ = umap_run
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    assert adjusted_rand_score(y, labels) > 0.9
    coords = np.load(ws.path(res.run_id) / "coords2d.npy")
    assert coords.shape == (400, 2) and np.isfinite(coords).all()
    assert runs.assign_vectors(ws, res.run_id, X).labels.tolist() == labels.tolist()
    # change k-independent settings: the reduced matrix and projection come from the cache
    again = runs.cluster(ws, eid, reducer, ClustererConfig(**{**clusterer.to_dict(), "min_cluster_size": 20}))
    assert any("UMAP-reduced matrix taken from the workspace cache" in n for n in again.notes)


@pytest.mark.slow
def test_umap_same_seed_same_coordinates(umap_run) -> None:
    X = umap_run[2][:120]
    a = red.fit_reduce(X, ReducerConfig(method="umap", dims=2, n_neighbors=8), seed=3)[1]
    b = red.fit_reduce(X, ReducerConfig(method="umap", dims=2, n_neighbors=8), seed=3)[1]
    assert a.tobytes() == b.tobytes()
    idx = np.arange(0, 120, 2)
    c = red.fit_reduce(X, ReducerConfig(method="umap", dims=2, n_neighbors=8), seed=3, fit_idx=idx)[1]
    assert c.shape == (120, 2) and np.isfinite(c).all()
