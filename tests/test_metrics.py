"""Metrics: ACC by the Hungarian algorithm, NMI/ARI, label-free diagnostics, a run's evaluation."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run, rewrite_table

from textcluster.cluster.evaluate import (
    LABEL_FREE_KEYS,
    SILHOUETTE_SAMPLE,
    cluster_accuracy,
    contingency,
    embedding_scores,
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


def test_silhouette_is_scikit_learns_on_the_seeded_sample() -> None:
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3_400, 6)).astype(np.float32)
    labels = rng.integers(0, 4, size=3_400)
    labels[:300] = -1
    member = np.flatnonzero(labels >= 0)
    pick = np.sort(np.random.default_rng(7).choice(member, size=SILHOUETTE_SAMPLE, replace=False))
    u = unsupervised(X, labels, seed=7)
    assert u["silhouette"] == pytest.approx(silhouette_score(X[pick], labels[pick]), abs=1e-6)
    assert unsupervised(X, labels, seed=8)["silhouette"] != u["silhouette"]  # the seed draws the sample


def test_embedding_scores_are_cosine_based_and_skip_noise() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    labels = np.repeat([0, 1, 2], 40)
    X = (centres[labels] + rng.normal(scale=0.8, size=(120, 16))).astype(np.float32)
    base = embedding_scores(X, labels, seed=0)
    # L2-normalised: rescaling each row leaves the scores alone (not so for plain Euclidean).
    scaled = X * rng.uniform(0.2, 5.0, size=(120, 1)).astype(np.float32)
    assert embedding_scores(scaled, labels, seed=0) == pytest.approx(base, rel=1e-5)
    assert unsupervised(scaled, labels)["silhouette"] != pytest.approx(unsupervised(X, labels)["silhouette"], rel=1e-3)
    # Noise rows are never in the sample: moving them changes nothing but the noise share.
    with_noise = np.concatenate([labels, [-1] * 10])
    a = embedding_scores(np.concatenate([X, rng.normal(size=(10, 16))]).astype(np.float32), with_noise)
    b = embedding_scores(np.concatenate([X, 9 * rng.normal(size=(10, 16))]).astype(np.float32), with_noise)
    assert a == b and a["silhouette"] == pytest.approx(base["silhouette"], rel=1e-6)


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
    rewrite_table(ws, fr.corpus_id, "docs.parquet", t)


def _set_column(ws: Workspace, fr, name: str, values: pa.Array) -> None:
    """Add or replace one column of the fake corpus's docs.parquet (a metadata column)."""
    p = ws.file(fr.corpus_id, "docs.parquet")
    t = pq.read_table(p)
    t = t.drop_columns([name]) if name in t.column_names else t
    rewrite_table(ws, fr.corpus_id, "docs.parquet", t.append_column(name, values))


def test_evaluate_run_scores_labels_on_the_embedding(fake) -> None:
    ws, fr = fake
    ev = evaluate_run(ws, fr.run_id)
    assert (ev.label_field, ev.n, ev.k, ev.n_labelled, ev.classes) == ("label", 64, 3, 64, 4)
    # The four noise rows carry their own label "topic-1": a group for NMI/ARI, errors for ACC.
    assert ev.supervised == pytest.approx({"acc": 60 / 64, "nmi": 1.0, "ari": 1.0, "v_measure": 1.0})
    # The fake run's manifest has no stored scores: computed in the embedding space, the run's seed.
    assert ev.space == "embedding" and ev.diagnostics == embedding_scores(fr.emb, fr.labels, seed=0)
    assert ev.sizes == [30, 20, 10]
    assert ev.contingency.clusters == [0, 1, 2, -1]
    assert ev.contingency.labels == ["topic0", "topic1", "topic2", "topic-1"]
    assert np.array_equal(ev.contingency.counts, np.diag([30, 20, 10, 4]))
    d = ev.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert {k: d[k] for k in ("run_id", "label_field", "n_labelled", "space")} == {
        "run_id": fr.run_id, "label_field": "label", "n_labelled": 64, "space": "embedding"}
    assert d["acc"] == pytest.approx(60 / 64) and d["silhouette"] == ev.diagnostics["silhouette"]
    assert {"nmi", "ari", "v_measure", "davies_bouldin", "noise", "size_cv", "size_min_share", "size_max_share"} <= set(d)


def test_evaluate_run_reads_the_scores_stored_in_the_embedding_space(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws")
    stored = dict.fromkeys(LABEL_FREE_KEYS, 0.25)
    fr = make_run(ws, run_manifest={"metrics": stored, "metrics_space": "embedding"})
    assert evaluate_run(ws, fr.run_id).diagnostics == stored
    # Scores stored without a space (runs written before: after the reducer) are not reused.
    old = make_run(ws, tag="old", run_manifest={"metrics": stored})
    assert evaluate_run(ws, old.run_id).diagnostics == embedding_scores(old.emb, old.labels, seed=0)


def test_evaluate_run_scores_only_the_labelled_rows(fake) -> None:
    ws, fr = fake
    labels = [f"topic{c}" if c >= 0 else None for c in fr.labels]
    labels[0] = "  "  # a blank value is no value
    _relabel(ws, fr, labels)
    ev = evaluate_run(ws, fr.run_id)
    assert (ev.n_labelled, ev.classes) == (59, 3)
    assert ev.supervised["acc"] == 1.0
    assert ev.contingency.clusters == [0, 1, 2]
    assert int(ev.contingency.counts.sum()) == 59


def test_evaluate_run_without_labels(fake) -> None:
    ws, fr = fake
    _relabel(ws, fr, None)
    ev = evaluate_run(ws, fr.run_id)
    assert ev.label_field is None and ev.supervised is None and ev.contingency is None
    assert (ev.n_labelled, ev.classes) == (0, 0)
    assert ev.to_dict()["acc"] is None and ev.to_dict()["v_measure"] is None
    assert ev.diagnostics["silhouette"] is not None and ev.sizes == [30, 20, 10]


def test_evaluate_run_against_a_metadata_column(fake) -> None:
    ws, fr = fake
    ev = evaluate_run(ws, fr.run_id, label_field="lang")
    assert (ev.label_field, ev.n_labelled, ev.classes) == ("lang", 64, 2)
    lang = pq.read_table(ws.file(fr.corpus_id, "docs.parquet"), columns=["lang"]).column("lang").to_pylist()
    assert ev.supervised == supervised(np.array(lang), fr.labels)
    # A numeric column with gaps (null and NaN are no value): its values compared as strings.
    year = [None if i % 4 == 0 else (float("nan") if i % 4 == 1 else float(2000 + c % 2)) for i, c in enumerate(fr.labels)]
    _set_column(ws, fr, "year", pa.array(year, pa.float64()))
    ev = evaluate_run(ws, fr.run_id, label_field="year")
    assert (ev.n_labelled, ev.classes) == (32, 2)
    assert ev.supervised is not None and int(ev.contingency.counts.sum()) == 32


def test_evaluate_run_with_a_column_without_values(fake) -> None:
    ws, fr = fake
    _set_column(ws, fr, "tag", pa.array([None] * 64, pa.string()))
    ev = evaluate_run(ws, fr.run_id, label_field="tag")
    assert (ev.label_field, ev.n_labelled, ev.supervised, ev.contingency) == ("tag", 0, None, None)


def test_evaluate_run_names_the_columns_of_a_missing_label_field(fake) -> None:
    ws, fr = fake
    with pytest.raises(ConfigError, match=r"label field 'topic' is not a column of corpus cor-\w+; "
                       r"its columns: doc_id, row, text, lang, label, is_duplicate"):
        evaluate_run(ws, fr.run_id, label_field="topic")


def test_evaluate_run_refuses_other_ids_and_bad_settings(fake) -> None:
    ws, fr = fake
    with pytest.raises(StoreError, match="is a corpus id; expected a run id"):
        evaluate_run(ws, fr.corpus_id)
    with pytest.raises(StoreError, match="no run 'run-0000000000000000'"):
        evaluate_run(ws, "run-0000000000000000")
    with pytest.raises(ConfigError, match="max_side=0 should be an integer >= 1"):
        evaluate_run(ws, fr.run_id, max_side=0)
