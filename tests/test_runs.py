"""The cluster stage: run artifacts (shapes, dtypes), caching, reproducibility, assign."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from textcluster.cluster import runs
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.errors import ConfigError
from textcluster.store import CorpusManifest, EmbeddingManifest, Workspace, make_id


def write_embedding(ws: Workspace, X: np.ndarray, labels: list[str] | None = None, tag: str = "t") -> str:
    """A corpus (docs.parquet with doc_id,row,text[,label]) and an embedding artifact of X."""
    n = X.shape[0]
    corpus_id = make_id("corpus", f"sha-{tag}", {"tag": tag})

    def w_corpus(d: Path) -> None:
        cols = {
            "doc_id": pa.array(np.arange(n), pa.int64()),
            "row": pa.array(np.arange(1, n + 1), pa.int64()),
            "text": pa.array([f"text {i}" for i in range(n)], pa.string()),
        }
        if labels is not None:
            cols["label"] = pa.array(labels, pa.string())
        pq.write_table(pa.table(cols), d / "docs.parquet")

    ws.write(corpus_id, CorpusManifest(kept=n), w_corpus)
    eid = make_id("embedding", corpus_id, {"tag": tag})
    ws.write(eid, EmbeddingManifest(corpus_id=corpus_id, n=n, dim=X.shape[1]), lambda d: np.save(d / "embeddings.npy", X))
    return eid


@pytest.fixture(scope="module")
def blob_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, np.ndarray, np.ndarray]:
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    X, y = make_blobs(300, n_features=16, centers=4, cluster_std=0.8, random_state=0)
    X = X.astype(np.float32)
    eid = write_embedding(ws, X, [f"c{v}" for v in y])
    return ws, eid, X, y


def test_run_artifact_has_documented_files(blob_ws) -> None:
    ws, eid, X, y = blob_ws
    res = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=4, seed=0))
    assert res.run_id.startswith("run-") and res.n == 300 and res.k == 4 and res.noise == 0.0
    assert res.metrics["acc"] == pytest.approx(1.0) and res.metrics["nmi"] == pytest.approx(1.0)
    assert {"silhouette", "davies_bouldin"} <= set(res.metrics)
    d = ws.path(res.run_id)
    expect = {
        "labels.npy": ((300,), np.int32),
        "centers.npy": ((4, 16), np.float32),
        "data_center_distance.npy": ((300, 4), np.float32),
        "center_pairwise_distance.npy": ((4, 4), np.float32),
        "coords2d.npy": ((300, 2), np.float32),
        "distances.npy": ((300,), np.float32),
    }
    for name, (shape, dtype) in expect.items():
        a = np.load(d / name)
        assert a.shape == shape and a.dtype == dtype, name
    dcd = np.load(d / "data_center_distance.npy")
    labels = np.load(d / "labels.npy")
    assert (dcd.argmin(axis=1) == labels).all()
    assert np.allclose(np.load(d / "distances.npy"), dcd[np.arange(300), labels], atol=1e-4)
    t = pq.read_table(d / "clusters.parquet")
    assert t.schema.field("cluster").type == pa.int32() and t.schema.field("size").type == pa.int64()
    assert t.schema.field("share").type == pa.float64() and t.schema.field("medoid_doc_id").type == pa.int64()
    df = t.to_pandas()
    assert df["size"].sum() == 300 and df["share"].sum() == pytest.approx(1.0)
    for c, med in zip(df["cluster"], df["medoid_doc_id"], strict=True):
        assert labels[med] == c
    m = json.loads((d / "manifest.json").read_text())
    for key in ("seed", "embedding_id", "corpus_id", "reducer", "clusterer", "versions", "timings", "metrics", "peak_rss_bytes"):
        assert key in m, key
    assert m["versions"]["numpy"] == np.__version__
    # one manifest write holds the file-writing time, the total and the peak memory
    assert m["timings"]["total"] >= m["timings"]["write"] > 0 and m["peak_rss_bytes"] > 0


def test_repeat_is_a_cache_hit_and_k_change_is_not(blob_ws) -> None:
    ws, eid, *_ = blob_ws
    a = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=4, seed=0))
    b = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=4, seed=0))
    assert b.cached and b.run_id == a.run_id
    c = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=3, seed=0))
    assert not c.cached and c.run_id != a.run_id and c.k == 3
    assert json.loads((ws.path(c.run_id) / "manifest.json").read_text())["projection"]["cached"] is True


def test_same_seed_gives_identical_label_bytes(tmp_path: Path, blob_ws) -> None:
    _, _, X, _ = blob_ws
    files = []
    for i in range(2):
        ws = Workspace(tmp_path / f"w{i}")
        eid = write_embedding(ws, X)
        res = runs.cluster(ws, eid, ReducerConfig(method="pca", dims=4, projection="pca"), ClustererConfig(k=4, seed=5, fit_size=150))
        files.append((ws.path(res.run_id) / "labels.npy").read_bytes())
    assert files[0] == files[1]


def test_distance_matrix_skipped_above_limit(blob_ws) -> None:
    ws, eid, *_ = blob_ws
    res = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=4, seed=1), distance_limit_bytes=100)
    assert not (ws.path(res.run_id) / "data_center_distance.npy").exists()
    assert any("data_center_distance.npy skipped" in n for n in res.notes)


@pytest.mark.parametrize(
    "reducer,clusterer",
    [
        (ReducerConfig(projection="pca"), ClustererConfig(k=4, seed=0, fit_size=100)),
        (ReducerConfig(method="pca", dims=3, projection="pca"), ClustererConfig(k=4, seed=0)),
        (ReducerConfig(method="pca", dims=3, projection="pca"), ClustererConfig(method="gmm", k=4, seed=0, fit_size=120)),
        (ReducerConfig(projection="pca"), ClustererConfig(method="hdbscan", min_cluster_size=10, fit_size=150)),
        (ReducerConfig(projection="pca"), ClustererConfig(method="agglomerative", k=4, fit_size=100)),
        (ReducerConfig(method="smooth", projection="pca"), ClustererConfig(k=4, seed=0)),
        (ReducerConfig(method="smooth", projection="pca"), ClustererConfig(k=4, seed=0, fit_size=100)),
        (ReducerConfig(projection="pca"), ClustererConfig(method="graph-ward", k=4, fit_size=150)),
    ],
    ids=["kmeans-subset", "pca-kmeans", "pca-gmm", "hdbscan-subset", "agglomerative-subset", "smooth-kmeans",
         "smooth-kmeans-subset", "graph-ward-subset"],
)
def test_assign_vectors_reproduces_run_labels(blob_ws, reducer, clusterer) -> None:
    ws, eid, X, y = blob_ws
    res = runs.cluster(ws, eid, reducer, clusterer)
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    assert adjusted_rand_score(y, labels) > 0.9
    got = runs.assign_vectors(ws, res.run_id, X)
    assert (got.labels == labels).all()
    # a slightly moved copy of a row still lands in the same cluster
    moved = runs.assign_vectors(ws, res.run_id, X[:20] + 0.01)
    assert (moved.labels == labels[:20]).all()


def test_smooth_run_clusters_the_smoothed_space_and_assigns_by_knn(blob_ws) -> None:
    from textcluster.cluster.smooth import neighbor_smooth

    ws, eid, X, y = blob_ws
    res = runs.cluster(ws, eid, ReducerConfig(method="smooth", smooth_neighbors=7, projection="pca"),
                       ClustererConfig(k=4, seed=0))
    m = ws.manifest(res.run_id)
    assert m.assign_mode == "knn" and m.reducer["method"] == "smooth" and m.space_dim == 16
    # the centres live in the smoothed space (member means of neighbor_smooth(X, 7))
    Z = neighbor_smooth(X, 7)
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    centers = np.load(ws.path(res.run_id) / "centers.npy")
    assert np.allclose(centers[labels[0]], Z[labels == labels[0]].mean(axis=0), atol=1e-4)
    assert not (ws.path(res.run_id) / "reducer").exists()  # nothing pickled: k-NN over the embedding
    # smooth_neighbors changes the run id; for other reducers it is not in the key
    other = runs.run_id_for(eid, ReducerConfig(method="smooth", smooth_neighbors=5, projection="pca"),
                            ClustererConfig(k=4, seed=0))
    assert other != res.run_id
    assert "smooth_neighbors" not in ReducerConfig().cache_key()
    assert ReducerConfig(method="smooth").cache_key()["smooth_neighbors"] == 10


@pytest.mark.parametrize("reducer,method", [("smooth", "kmeans"), ("none", "graph-ward")])
def test_knn_assign_reproduces_labels_of_overlapping_unit_vectors(tmp_path: Path, reducer: str, method: str) -> None:
    """Like sentence embeddings: 384-d unit vectors, overlapping topics, some duplicates.

    A row's float32 distance to itself is not 0 here, and its 5 nearest run rows often
    vote for another cluster, so only a byte-exact match gives back the run's label.
    """
    from textcluster.cluster import neighbors as clu

    rng = np.random.default_rng(0)
    y = rng.integers(0, 12, size=600)
    X = rng.normal(size=(12, 384))[y] * 0.25 + rng.normal(size=(600, 384))
    X[500:520] = X[:20]  # duplicated texts
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    ws = Workspace(tmp_path)
    eid = write_embedding(ws, X, tag="unit")
    res = runs.cluster(ws, eid, ReducerConfig(method=reducer, projection="pca"),
                       ClustererConfig(method=method, k=12, seed=0))
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    vote, self_dist = clu.knn_labels(X, labels, X, k=runs.ASSIGN_KNN)
    assert (self_dist > 1e-5).any() and (vote != labels).any()  # what a loose match would get wrong
    got = runs.assign_vectors(ws, res.run_id, X)
    assert got.labels.tolist() == labels.tolist() and (got.distances == 0).all()


def test_impossible_settings_raise_typed_errors(tmp_path: Path, blob_ws) -> None:
    ws = Workspace(tmp_path)
    small = write_embedding(ws, np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32), tag="small")
    with pytest.raises(ConfigError, match="k=20 should be <= n_samples=12"):
        runs.cluster(ws, small, ReducerConfig(), ClustererConfig(k=20))
    with pytest.raises(ConfigError, match="UMAP dims=8 should be < the input dim=8"):
        runs.cluster(ws, small, ReducerConfig(method="umap", dims=8), ClustererConfig(k=2))
    with pytest.raises(ConfigError, match="PCA dims=9 should be <="):
        runs.cluster(ws, small, ReducerConfig(method="pca", dims=9), ClustererConfig(k=2))
    empty = write_embedding(ws, np.zeros((0, 8), np.float32), tag="empty")
    with pytest.raises(ConfigError, match="n_samples=0"):
        runs.cluster(ws, empty, ReducerConfig(), ClustererConfig(k=2))
    with pytest.raises(ConfigError, match="should be one of"):
        runs.cluster(ws, small, ReducerConfig(), ClustererConfig(method="kmedoids"))
    with pytest.raises(ConfigError, match="smooth_neighbors=0 should be >= 1"):
        runs.cluster(ws, small, ReducerConfig(method="smooth", smooth_neighbors=0), ClustererConfig(k=2))
    with pytest.raises(ConfigError, match="do not match the run's dim=16"):
        res = runs.cluster(blob_ws[0], blob_ws[1], ReducerConfig(projection="pca"), ClustererConfig(k=4))
        runs.assign_vectors(blob_ws[0], res.run_id, np.zeros((2, 5), np.float32))


TOPICS = [
    "football goal match team league striker referee",
    "python code function bug compiler variable debugger",
    "recipe bake oven flour sugar butter dough",
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, list[str]]:
    from textcluster.embed.engine import embed
    from textcluster.ingest.corpus import ingest

    rng = np.random.default_rng(0)
    rows = []
    for i in range(90):
        words = TOPICS[i % 3].split()
        rows.append((" ".join(rng.choice(words, size=5)) + f" item{i}", f"t{i % 3}"))
    d = tmp_path_factory.mktemp("txt")
    path = d / "docs.csv"
    path.write_text("text,topic\n" + "\n".join(f"{t},{lab}" for t, lab in rows) + "\n", encoding="utf-8")
    ws = Workspace(d / "ws")
    rep = ingest(path, CorpusSpec(text_fields=("text",), label_field="topic"), ws)
    emb = embed(ws, rep.corpus_id, EncoderConfig(name="tfidf", dims=16))
    return ws, emb.embedding_id, [t for t, _ in rows]


@pytest.mark.parametrize("method,reducer", [("kmeans", "none"), ("hdbscan", "none"), ("kmeans", "smooth")])
def test_assign_texts_reproduces_run_labels(text_run, method: str, reducer: str) -> None:
    ws, eid, texts = text_run
    res = runs.cluster(ws, eid, ReducerConfig(method=reducer, projection="pca"),
                       ClustererConfig(method=method, k=3, min_cluster_size=5, seed=0))
    assert res.metrics["acc"] > 0.9
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    got = runs.assign(ws, res.run_id, texts)
    assert got.labels.tolist() == labels.tolist()
    with pytest.raises(ConfigError, match="no texts"):
        runs.assign(ws, res.run_id, [])


@pytest.mark.slow
def test_self_training_run_records_history_and_assigns(blob_ws) -> None:
    pytest.importorskip("torch")
    ws, eid, X, y = blob_ws
    params = {"hidden": [32], "latent_dim": 4, "pretrain_epochs": 3, "max_iter": 30, "update_interval": 10,
              "n_init": 2, "device": "cpu"}
    seen = []
    res = runs.cluster(ws, eid, ReducerConfig(projection="pca"),
                       ClustererConfig(method="self-training", k=4, seed=0, params=params), progress=seen.append)
    assert any(p.total == 30 for p in seen)  # the training's own steps reach the run's callback
    m = json.loads((ws.path(res.run_id) / "manifest.json").read_text())
    assert "pretrain_loss" in m["history"] and m["assign_mode"] == "knn"
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    assert adjusted_rand_score(y, labels) > 0.9
    assert np.load(ws.path(res.run_id) / "probabilities.npy").shape == (300,)
    assert runs.assign_vectors(ws, res.run_id, X).labels.tolist() == labels.tolist()


def test_run_metrics_against_labels_use_only_the_labelled_rows(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    X, y = make_blobs(90, n_features=4, centers=3, cluster_std=0.3, random_state=2)
    # Two rows in three have no label; counted as a class of their own they would cost ACC.
    labels = [f"c{v}" if i % 3 == 0 else None for i, v in enumerate(y)]
    eid = write_embedding(ws, X.astype(np.float32), labels, tag="partial")
    res = runs.cluster(ws, eid, ReducerConfig(method="none", projection="pca"), ClustererConfig(method="kmeans", k=3))
    assert "metrics against labels use the 30 labelled rows of 90" in res.notes
    assert res.metrics["acc"] == 1.0 and res.metrics["ari"] == pytest.approx(1.0)


def test_pca_run_scores_label_free_in_the_embedding_space(blob_ws) -> None:
    # Issue 14's bug: the manifest scored after the reducer while the Evaluate page scored the
    # embedding, so one run had two silhouettes. Now both are the embedding's.
    from textcluster.cluster.evaluate import embedding_scores, evaluate_run, unsupervised
    from textcluster.cluster.reduce import PCAReducer

    ws, eid, X, _ = blob_ws
    res = runs.cluster(ws, eid, ReducerConfig(method="pca", dims=2, projection="pca"), ClustererConfig(k=4, seed=3))
    m = ws.manifest(res.run_id)
    labels = np.load(ws.file(res.run_id, "labels.npy"))
    assert m.metrics_space == "embedding"
    assert m.metrics["silhouette"] == embedding_scores(X, labels, seed=3)["silhouette"]
    assert evaluate_run(ws, res.run_id).diagnostics == {k: m.metrics[k] for k in (
        "silhouette", "davies_bouldin", "size_cv", "size_min_share", "size_max_share", "noise")}
    state = {p.stem: np.load(p) for p in (ws.path(res.run_id) / "reducer").glob("*.npy")}
    in_pca = unsupervised(PCAReducer.from_state(state).transform(X), labels, seed=3)["silhouette"]
    assert abs(in_pca - m.metrics["silhouette"]) > 0.05  # the two spaces do disagree here
