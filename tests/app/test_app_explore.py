"""Explore page: scatter with box selection, cluster table, examples, heatmap, search."""

from __future__ import annotations

import json

from apphelpers import assert_clean, open_page


def test_scatter_clusters_examples_heatmap_and_search(app_ws, app_run):
    at = open_page("views/explore.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "60" and metrics["Clusters"] == "3"
    charts = at.get("plotly_chart")
    spec = json.loads(charts[0].proto.spec)
    # The map: one WebGL trace per cluster (every point), then the names at the centres.
    points = [t for t in spec["data"] if t["type"] == "scattergl"]
    assert len(points) == 3 and spec["data"][-1]["mode"] == "text"
    assert sorted(spec["data"][-1]["text"]) == sorted(v for k, v in _names(at).items())
    assert len({t["marker"]["color"] for t in points}) == 3
    assert {"points", "box", "lasso"} == {m for m in _modes(charts[0].proto)}
    # The legend (first table): three clusters of 20.
    assert sorted(at.dataframe[0].value["size"]) == [20, 20, 20]
    # Only the open tab runs: the cluster table once its tab is chosen.
    at.session_state["explore_tab"] = "Clusters"
    at.run()
    assert_clean(at)
    assert not at.get("plotly_chart")
    table = at.dataframe[0].value
    assert sorted(table["size"]) == [20, 20, 20] and table["keywords"].str.len().min() > 0
    # Nearest and farthest examples; how many is adjustable.
    at.slider(key="explore_examples").set_value(3).run()
    near, far = at.dataframe[1].value, at.dataframe[2].value
    assert len(near) == 3 and len(far) == 3
    assert near["distance"].is_monotonic_increasing and far["distance"].is_monotonic_decreasing
    # Centre-to-centre heatmap: 3 x 3 cells, cluster names on both axes.
    at.session_state["explore_tab"] = "Centre distances"
    at.run()
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heat["type"] == "heatmap" and len(heat["x"]) == 3 and heat["x"] == heat["y"]
    # Search.
    at.session_state["explore_tab"] = "Search"
    at.run()
    at.text_input(key="explore_search").set_value("FOOTBALL").run()
    assert_clean(at)
    hits = at.dataframe[-1].value
    assert len(hits) > 0 and hits["text"].str.contains("football").all()



def _names(at):
    """Cluster id -> short name as the legend lists them."""
    frame = at.dataframe[0].value
    return {int(c): str(n) for c, n in zip(frame["cluster"], frame["name"], strict=True)}


def _modes(proto):
    from streamlit.proto.PlotlyChart_pb2 import PlotlyChart

    names = {PlotlyChart.SelectionMode.POINTS: "points", PlotlyChart.SelectionMode.BOX: "box",
             PlotlyChart.SelectionMode.LASSO: "lasso"}
    return [names[m] for m in proto.selection_mode]


def test_search_ranks_by_occurrences_then_doc_id(app_ws, app_run):
    at = open_page("views/explore.py")
    at.session_state["explore_tab"] = "Search"
    at.run()
    at.text_input(key="explore_search").set_value(" Football ").run()
    assert_clean(at)
    hits = at.dataframe[-1].value
    assert hits["occurrences"].tolist() == [t.lower().count("football") for t in hits["text"]]
    assert hits["occurrences"].iloc[0] > hits["occurrences"].iloc[-1] >= 1
    ranked = hits.sort_values(["occurrences", "doc_id"], ascending=[False, True], kind="stable")
    assert hits["doc_id"].tolist() == ranked["doc_id"].tolist()
