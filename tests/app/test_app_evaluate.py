"""Evaluate page: scores against a chosen label field with a heatmap; label-free diagnostics in the
embedding space, the same numbers as the run manifest and `textcluster evaluate`."""

from __future__ import annotations

import json

import numpy as np
from apphelpers import FAST, assert_clean, open_page

from textcluster import jobs
from textcluster.cli import main
from textcluster.cluster import runs
from textcluster.cluster.evaluate import evaluate_run, unsupervised
from textcluster.cluster.reduce import PCAReducer
from textcluster.config import ClustererConfig, CorpusSpec, ReducerConfig
from textcluster.embed.engine import load_embeddings
from textcluster.ingest import corpus


def test_with_labels(app_ws, app_run):
    at = open_page("views/evaluate.py")
    assert_clean(at)
    m = {x.label: x.value for x in at.metric}
    # tfidf + k-means separates three disjoint vocabularies perfectly.
    assert m["ACC"] == "1.000" and m["NMI"] == "1.000" and m["ARI"] == "1.000"
    assert m["Silhouette"] != "–"
    heat = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert heat["mark"]["type"] == "rect"


def test_label_field_is_chosen_among_the_corpus_columns(app_ws, app_run):
    cid = app_ws.manifest(app_run).corpus_id
    at = open_page("views/evaluate.py")
    box = at.selectbox(key=f"evaluate_label_field_{cid}")
    assert box.value == "label" and box.options == ["source_id", "label", "is_duplicate"]
    box.set_value("source_id").run()
    assert_clean(at)
    m = {x.label: x.value for x in at.metric}
    # One class per document: each of the 3 clusters matches one of 60 ids.
    assert m["ACC"] == f"{3 / 60:.3f}"
    assert any("source\\_id" in c.value and "60 of 60" in c.value for c in at.caption)


def test_pca_run_shows_one_silhouette_everywhere(app_ws, app_run, capsys):
    # Issue 14's bug: the manifest said one silhouette (after the reducer), the page another
    # (on the embedding). Now the manifest, evaluate_run, the page and the CLI agree.
    eid = app_ws.manifest(app_run).embedding_id
    res = runs.cluster(app_ws, eid, ReducerConfig(method="pca", dims=2, projection="pca"), ClustererConfig(k=3))
    manifest = app_ws.manifest(res.run_id)
    stored = manifest.metrics["silhouette"]
    assert manifest.metrics_space == "embedding"
    assert evaluate_run(app_ws, res.run_id).diagnostics["silhouette"] == stored

    at = open_page("views/evaluate.py")
    at.selectbox(key="evaluate_run").set_value(res.run_id).run()
    assert_clean(at)
    shown = {x.label: x.value for x in at.metric}["Silhouette"]
    assert shown == f"{stored:.3f}"
    assert any("In the embedding space" in c.value for c in at.caption)

    assert main(["evaluate", res.run_id, "--json", "--workspace", str(app_ws.root)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["silhouette"], data["space"]) == (stored, "embedding")

    # The clusterer's space (after PCA) gives another number: the test would see the old bug.
    state = {p.stem: np.load(p) for p in (app_ws.path(res.run_id) / "reducer").glob("*.npy")}
    Z = PCAReducer.from_state(state).transform(np.asarray(load_embeddings(app_ws, eid), dtype=np.float32))
    labels = np.load(app_ws.file(res.run_id, "labels.npy"))
    assert f"{unsupervised(Z, labels)['silhouette']:.3f}" != shown


def test_without_labels(app_ws, topic_csv):
    cid = corpus.ingest(topic_csv, CorpusSpec(text_fields=("text",)), app_ws).corpus_id
    assert jobs.submit_pipeline(app_ws, cid, **FAST).wait(120)["status"] == "done"
    at = open_page("views/evaluate.py")
    assert_clean(at)
    labels = [x.label for x in at.metric]
    assert "ACC" not in labels and "Silhouette" in labels
    assert any("no label field" in i.value for i in at.info)
    box = at.selectbox(key=f"evaluate_label_field_{cid}")
    assert box.value == "(none)"
    # The CSV's label column, not named as the label field at ingest, is kept as meta_label:
    # choosing it scores the run against it.
    assert "meta_label" in box.options
    box.set_value("meta_label").run()
    assert_clean(at)
    m = {x.label: x.value for x in at.metric}
    assert m["ACC"] == "1.000" and m["NMI"] == "1.000"
