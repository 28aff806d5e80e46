"""Reducers: exact chunked PCA, UMAP (one module-scoped fit: numba compiles once), projection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from textcluster.cluster import reduce as red
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
    from textcluster.cluster.smooth import NeighborSmoother, neighbor_smooth
    from textcluster.config import REDUCERS

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

    from textcluster.cluster import runs
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
    from textcluster.cluster import runs

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


@pytest.mark.slow
def test_umap_ensemble_concatenates_seeded_runs(umap_run) -> None:
    """runs=3, seed=5: UMAPs with seeds 15, 16, 17 side by side; each block is that seed's single run."""
    X = umap_run[2][:150]
    calls: list[tuple[int, int]] = []
    fitted, Z = red.fit_reduce(
        X, ReducerConfig(method="umap", dims=2, n_neighbors=8, runs=3), seed=5,
        on_run=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(0, 3), (1, 3), (2, 3)]
    assert Z.shape == (150, 6) and Z.dtype == np.float32 and fitted.n_components_ == 6
    for i in range(3):
        single = red.fit_reduce(X, ReducerConfig(method="umap", dims=2, n_neighbors=8), seed=15 + i)[1]
        assert Z[:, 2 * i : 2 * i + 2].tobytes() == single.tobytes()
    # rows outside the fit subset are transformed by every run of the ensemble
    idx = np.arange(0, 150, 3)
    sub, Zs = red.fit_reduce(X, ReducerConfig(method="umap", dims=2, n_neighbors=8, runs=2), seed=5, fit_idx=idx)
    rest = np.setdiff1d(np.arange(150), idx)
    assert Zs.shape == (150, 4) and np.isfinite(Zs).all()
    assert np.allclose(Zs[rest], sub.transform(X[rest]))


def test_umap_runs_setting_is_checked_and_keeps_old_ids() -> None:
    with pytest.raises(ConfigError, match="runs=0 should be an integer in"):
        ReducerConfig(method="umap", runs=0).validate()
    with pytest.raises(ConfigError, match="runs=3 is for the umap reducer only"):
        ReducerConfig(method="pca", runs=3).validate()
    # runs=1 leaves the cache key (so every existing run id) as it was
    assert "runs" not in ReducerConfig(method="umap").cache_key()
    assert ReducerConfig(method="umap", runs=5).cache_key()["runs"] == 5


@pytest.mark.slow
def test_umap_ensemble_run_reports_each_umap_and_assign_reproduces(umap_run) -> None:
    """A run with runs=2 + k-means: progress names each UMAP, the reduced matrix has 2 x dims
    columns (cached under the ensemble's own key), and assign gives back the fitted labels."""
    from textcluster.cluster import runs

    ws, eid, X, y, _, _, _, _ = umap_run
    reducer = ReducerConfig(method="umap", dims=3, n_neighbors=10, projection="pca", runs=2)
    clusterer = ClustererConfig(method="kmeans", k=4, seed=1, params={"n_init": 10})
    messages: list[str] = []
    res = runs.cluster(ws, eid, reducer, clusterer, progress=lambda p: messages.append(p.message))
    assert "reducing (umap ensemble: run 1 of 2)" in messages
    assert "reducing (umap ensemble: run 2 of 2)" in messages
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    assert adjusted_rand_score(y, labels) > 0.9
    assert np.load(ws.path(res.run_id) / "centers.npy").shape == (4, 6)
    assert runs.assign_vectors(ws, res.run_id, X).labels.tolist() == labels.tolist()
    single = runs.cluster(ws, eid, ReducerConfig(**{**reducer.to_dict(), "runs": 1}), clusterer)
    assert single.run_id != res.run_id


def test_cli_runs_option_builds_the_ensemble_config() -> None:
    from textcluster.cli import build_parser
    from textcluster.cli.cluster import configs_from_args

    args = build_parser().parse_args(["cluster", "emb-0123456789abcdef", "--reducer", "umap", "--runs", "5", "--param", "n_init=10"])
    reducer, clusterer = configs_from_args(args)
    assert reducer.method == "umap" and reducer.runs == 5 and reducer.dims == 5
    assert clusterer.params == {"n_init": 10}
    bad = build_parser().parse_args(["cluster", "emb-0123456789abcdef", "--reducer", "pca", "--runs", "3"])
    with pytest.raises(ConfigError, match="runs=3 is for the umap reducer only"):
        configs_from_args(bad)


def test_quality_recipe_from_python_and_cli() -> None:
    from textcluster.cli import build_parser
    from textcluster.cli.cluster import configs_from_args
    from textcluster.config import recipe

    reducer, clusterer = recipe("quality", 8, seed=2)
    assert (reducer.method, reducer.dims, reducer.runs, reducer.n_neighbors) == ("umap", 5, 5, 15)
    assert (clusterer.method, clusterer.k, clusterer.seed, clusterer.params) == ("kmeans", 8, 2, {"n_init": 10})
    with pytest.raises(ConfigError, match="recipe='best' should be one of quality"):
        recipe("best")
    args = build_parser().parse_args(
        ["cluster", "emb-0123456789abcdef", "--recipe", "quality", "--k", "8", "--seed", "2", "--reducer", "pca", "--param", "max_iter=50"]
    )
    r2, c2 = configs_from_args(args)
    assert r2 == reducer  # the recipe replaces --reducer
    assert c2.params == {"n_init": 10, "max_iter": 50} and c2.k == 8
