"""Evaluate page: scores against labels with a heatmap; label-free diagnostics without."""

from __future__ import annotations

import json

from apphelpers import FAST, assert_clean, open_page

from textcluster import jobs
from textcluster.config import CorpusSpec
from textcluster.ingest import corpus


def test_with_labels(app_ws, app_run):
    at = open_page("pages/evaluate.py")
    assert_clean(at)
    m = {x.label: x.value for x in at.metric}
    # tfidf + k-means separates three disjoint vocabularies perfectly.
    assert m["ACC"] == "1.000" and m["NMI"] == "1.000" and m["ARI"] == "1.000"
    assert m["Silhouette"] != "–"
    heat = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert heat["mark"]["type"] == "rect"


def test_without_labels(app_ws, topic_csv):
    cid = corpus.ingest(topic_csv, CorpusSpec(text_fields=("text",)), app_ws).corpus_id
    assert jobs.submit_pipeline(app_ws, cid, **FAST).wait(120)["status"] == "done"
    at = open_page("pages/evaluate.py")
    assert_clean(at)
    labels = [x.label for x in at.metric]
    assert "ACC" not in labels and "Silhouette" in labels
    assert any("no label field" in i.value for i in at.info)
