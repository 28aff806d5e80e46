"""Explore page (AppTest): colouring the map by a tag, and the centre-distance heatmap in the
order of the run's stored hierarchy with the cluster names on both axes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from apphelpers import assert_clean, open_page
from scipy.cluster.hierarchy import leaves_list

from textcluster.query import tags
from ui import map as tcmap


def _map_points(at) -> list[tuple[str, str]]:
    """(colour, hover text) of every point of the map, over its WebGL traces."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    out = []
    for t in spec["data"]:
        if t["type"] == "scattergl":
            colours = t["marker"]["color"]
            colours = colours if isinstance(colours, list) else [colours] * len(t["text"])
            out += list(zip(colours, t["text"], strict=True))
    return out


def test_the_map_is_coloured_by_a_tag(app_ws, app_run):
    cid = app_ws.manifest(app_run).corpus_id
    docs = pd.read_parquet(app_ws.path(cid) / "docs.parquet", columns=["doc_id", "text"])
    tags.tag_docs(app_ws, cid, "to check", [3, 7, 42])
    at = open_page("views/explore.py")
    assert_clean(at)
    box = at.selectbox(key="explore_color_by")
    assert "tag: to check" in box.options
    box.set_value("tag: to check").run()
    assert_clean(at)
    points = _map_points(at)
    assert len(points) == len(docs)
    red = sorted(text for colour, text in points if colour == tcmap.TAG_COLOR)
    trimmed = [t if len(t) <= tcmap.HOVER_CHARS else t[: tcmap.HOVER_CHARS - 1] + "…" for t in docs["text"]]
    assert red == sorted(tcmap.html_escape(trimmed[i]) for i in (3, 7, 42))
    assert {colour for colour, _ in points if colour != tcmap.TAG_COLOR} == {tcmap.GREY}
    assert any("tagged" in c.value and "to check" in c.value for c in at.caption)
    # The tag changes: the map follows (its last change keys the cached figure).
    tags.tag_docs(app_ws, cid, "to check", [5], mode="add")
    at.run()
    assert sum(colour == tcmap.TAG_COLOR for colour, _ in _map_points(at)) == 4


def test_the_heatmap_follows_the_runs_stored_hierarchy_with_names_on_both_axes(app_ws, app_run):
    run_dir = app_ws.path(app_run)
    pair = np.load(run_dir / "center_pairwise_distance.npy")
    k = pair.shape[0]
    assert k == 3  # the FAST run of the 3-topic corpus
    assert (run_dir / "hierarchy.npy").is_file()  # the cluster stage stores it
    # A stored hierarchy whose leaf order differs from a fresh linkage of the centres, so the
    # heatmap can only show it by reading the file (the run's directory is the test's copy).
    linkage_order = tcmap.order_by_linkage(pair).tolist()
    for a, b in ((0, 1), (1, 2), (0, 2)):
        third = ({0, 1, 2} - {a, b}).pop()
        Z = np.array([[a, b, 1.0, 2], [third, k, 2.0, k]], dtype=np.float64)
        if leaves_list(Z).tolist() != linkage_order:
            break
    np.save(run_dir / "hierarchy.npy", Z)
    want = leaves_list(Z).tolist()
    assert want != linkage_order
    at = open_page("views/explore.py")
    at.session_state["explore_tab"] = "Centre distances"
    at.run()
    assert_clean(at)
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)
    h = heat["data"][0]
    assert h["type"] == "heatmap"
    assert [int(s.split(" · ")[0]) for s in h["x"]] == want == [int(s.split(" · ")[0]) for s in h["y"]]
    assert all(" · " in s and len(s.split(" · ", 1)[1]) > 0 for s in h["x"])  # a name, not just an id
    assert heat["layout"]["xaxis"]["dtick"] == 1 and heat["layout"]["yaxis"]["dtick"] == 1
    assert any("hierarchy" in c.value for c in at.caption)
