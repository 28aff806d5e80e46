"""Explore page: scatter with box selection, cluster table, examples, heatmap, search."""

from __future__ import annotations

import json

from apphelpers import assert_clean, open_page


def test_scatter_clusters_examples_heatmap_and_search(app_ws, app_run):
    at = open_page("pages/explore.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "60" and metrics["Clusters"] == "3"
    charts = at.get("vega_lite_chart")
    spec = json.loads(charts[0].proto.spec)
    params = {p["name"]: p for p in spec["params"]}
    assert params["box"]["select"]["type"] == "interval"
    assert params["zoom"]["bind"] == "scales"
    assert {"x", "y", "color", "tooltip"} <= set(spec["encoding"])
    assert any(t["field"] == "text" for t in spec["encoding"]["tooltip"])
    assert list(charts[0].proto.selection_mode) == ["box"]
    # Cluster table: three clusters of 20 with labels and keywords.
    table = at.dataframe[0].value
    assert sorted(table["size"]) == [20, 20, 20] and table["keywords"].str.len().min() > 0
    # Nearest and farthest examples; how many is adjustable.
    at.slider(key="explore_examples").set_value(3).run()
    near, far = at.dataframe[1].value, at.dataframe[2].value
    assert len(near) == 3 and len(far) == 3
    assert near["distance"].is_monotonic_increasing and far["distance"].is_monotonic_decreasing
    # Centre-to-centre heatmap: 3 x 3 cells.
    assert len(charts) == 2
    # Search.
    at.text_input(key="explore_search").set_value("FOOTBALL").run()
    assert_clean(at)
    hits = at.dataframe[-1].value
    assert len(hits) > 0 and hits["text"].str.contains("football").all()



def test_search_ranks_by_occurrences_then_doc_id(app_ws, app_run):
    at = open_page("pages/explore.py")
    at.text_input(key="explore_search").set_value(" Football ").run()
    assert_clean(at)
    hits = at.dataframe[-1].value
    assert hits["occurrences"].tolist() == [t.lower().count("football") for t in hits["text"]]
    assert hits["occurrences"].iloc[0] > hits["occurrences"].iloc[-1] >= 1
    ranked = hits.sort_values(["occurrences", "doc_id"], ascending=[False, True], kind="stable")
    assert hits["doc_id"].tolist() == ranked["doc_id"].tolist()
