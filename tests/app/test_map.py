"""ui/map.py: the WebGL map's figure, palette, ordering and selection mapping (no browser)."""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from ui import map as tcmap


def _checked(fig: tcmap.MapFigure) -> go.Figure:
    """The map's figure dict through plotly.py's validation (raises on anything Plotly rejects)."""
    return go.Figure(fig.figure)


def _blobs(k: int, per: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, 2)) * 30
    labels = np.repeat(np.arange(k), per).astype(np.int32)
    coords = (centres[labels] + rng.normal(size=(labels.size, 2))).astype(np.float32)
    pair = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    return coords, labels, centres, pair


def test_order_by_linkage_puts_groups_side_by_side():
    # Three tight groups of centres, interleaved in id order: the ordering makes them contiguous.
    rng = np.random.default_rng(1)
    group = np.arange(12) % 3
    pts = np.array([[0, 0], [100, 0], [0, 100]])[group] + rng.normal(size=(12, 2))
    pair = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    order = tcmap.order_by_linkage(pair)
    assert sorted(order.tolist()) == list(range(12))
    runs = np.count_nonzero(np.diff(group[order]) != 0)
    assert runs == 2  # three blocks, two boundaries
    with pytest.raises(ValueError, match="square"):
        tcmap.order_by_linkage(np.zeros((3, 2)))


def test_palette_of_150_clusters_is_distinct_and_keeps_neighbours_apart():
    _, _, _, pair = _blobs(150)
    colors = tcmap.cluster_palette(pair, 150)
    assert len(set(colors)) == 150
    assert tcmap.NOISE_COLOR not in colors and tcmap.GREY not in colors
    nearest = np.argsort(pair + np.diag(np.full(150, np.inf)), axis=1)[:, :3]
    worst = min(tcmap.color_distance(colors[c], colors[j]) for c in range(150) for j in nearest[c])
    # the 20-colour cycle this replaces gave the same colour (distance 0) to clusters 20 apart
    assert worst > 12, worst


def test_map_draws_every_point_and_maps_a_selection_back_to_rows():
    coords, labels, _, pair = _blobs(5, per=40)
    perm = np.random.default_rng(2).permutation(labels.size)
    coords, labels = coords[perm], labels[perm]
    names = {c: f"{c} · name{c}" for c in range(5)}
    colors = dict(enumerate(tcmap.cluster_palette(pair, 5)))
    fig = tcmap.build_map(coords, labels, names, colors, hover_texts=[f"t{i}" for i in range(labels.size)])
    spec = json.loads(pio.to_json(_checked(fig), validate=False))
    traces = [t for t in spec["data"] if t["type"] == "scattergl"]
    assert fig.points == 200 and sum(r.size for r in fig.rows) == 200
    assert sorted(np.concatenate(fig.rows).tolist()) == list(range(200))
    assert spec["data"][-1]["mode"] == "text" and len(spec["data"][-1]["text"]) == 5
    # plain numbers under a data revision (Plotly keeps them when Streamlit hands it a copy), no template
    assert isinstance(fig.figure["data"][0]["x"], list) and fig.figure["layout"]["datarevision"]
    assert "template" not in fig.figure["layout"]
    # each trace holds one cluster's rows, its hover names it and shows each row's own text
    for t, rows in zip(traces, fig.rows, strict=True):
        c = int(labels[rows[0]])
        assert (labels[rows] == c).all() and f"name{c}" in t["hovertemplate"]
        assert t["text"] == [f"t{r}" for r in rows]
    # a lasso over points 0 and 3 of trace 1 and point 2 of trace 4 (the names trace is ignored)
    event = {"selection": {"points": [
        {"curve_number": 1, "point_index": 0}, {"curve_number": 1, "point_index": 3},
        {"curve_number": 4, "point_index": 2}, {"curve_number": 5, "point_index": 0},
    ]}}
    got = tcmap.selected_rows(event, fig)
    assert got.tolist() == sorted([int(fig.rows[1][0]), int(fig.rows[1][3]), int(fig.rows[4][2])])
    assert tcmap.selected_rows({"selection": {"points": []}}, fig).size == 0


def test_highlight_greys_the_others_and_draws_the_cluster_on_top():
    coords, labels, _, pair = _blobs(4)
    colors = dict(enumerate(tcmap.cluster_palette(pair, 4)))
    fig = tcmap.build_map(coords, labels, {c: str(c) for c in range(4)}, colors, highlight=2)
    traces = [t for t in _checked(fig).data if t.type == "scattergl"]
    assert traces[-1].marker.color == colors[2]
    assert {t.marker.color for t in traces[:-1]} == {tcmap.GREY}
    assert (labels[fig.rows[-1]] == 2).all()


def test_colour_by_categories_and_scores():
    coords, labels, _, _ = _blobs(3)
    cats = np.arange(labels.size) % 2
    fig = tcmap.build_map(coords, labels, {}, {}, values=cats.astype(np.float32), categories=["en", "fr"])
    palette = tcmap.distinct_colors(2)
    for t, rows in zip(_checked(fig).data, fig.rows, strict=False):
        assert list(t.marker.color) == [palette[v] for v in cats[rows]]
    score = np.linspace(0, 1, labels.size).astype(np.float32)
    fig = tcmap.build_map(coords, labels, {}, {}, values=score, value_title="outlier score")
    t = _checked(fig).data[0]
    assert t.marker.colorscale is not None and t.marker.cmin == 0 and t.marker.cmax == 1


def test_user_text_is_escaped_in_hover_and_names():
    coords, labels, _, _ = _blobs(2)
    fig = tcmap.build_map(coords, labels, {0: "<img src=x>", 1: "a&b"}, {})
    assert "&lt;img src=x&gt;" in _checked(fig).data[0].hovertemplate
    assert "a&amp;b" in _checked(fig).data[-1].text


def test_the_legend_search_finds_by_id_name_or_keyword():
    from ui.legend import filter_legend, legend_table

    frame = legend_table([0, 1, 42, 142], {0: "0 · refunds", 1: "1 · cards", 42: "42 · Travel", 142: "142 · fees"},
                         {0: 5, 1: 9, 42: 3, 142: 7}, {0: ["money"], 1: ["visa"], 42: ["trip"], 142: ["charge"]},
                         {})
    assert frame["cluster"].tolist() == [1, 142, 0, 42]  # largest first
    assert filter_legend(frame, "42")["cluster"].tolist() == [42]  # an id, not 142
    assert filter_legend(frame, " travel ")["cluster"].tolist() == [42]
    assert filter_legend(frame, "VISA")["cluster"].tolist() == [1]
    assert len(filter_legend(frame, "")) == 4 and filter_legend(frame, "nothing").empty


def test_noise_is_grey_and_unnamed_and_a_palette_without_distances_still_differs():
    coords, labels, _, _ = _blobs(3)
    labels = labels.copy()
    labels[::7] = -1
    colors = {-1: tcmap.NOISE_COLOR, **dict(enumerate(tcmap.cluster_palette(None, 3)))}
    fig = tcmap.build_map(coords, labels, {-1: "-1 · noise", 0: "0 · a", 1: "1 · b", 2: "2 · c"}, colors)
    noise = [t for t, r in zip(_checked(fig).data, fig.rows, strict=False) if (labels[r] == -1).all()]
    assert len(noise) == 1 and noise[0].marker.color == tcmap.NOISE_COLOR
    assert "-1 · noise" not in _checked(fig).data[-1].text
    assert len(set(tcmap.cluster_palette(None, 700))) == 648  # the candidate grid, then repeats


def test_coordinates_are_quantised_to_uint16_within_half_a_step():
    coords, labels, _, _ = _blobs(4, per=50)
    coords[3] = [np.nan, 1.0]  # a broken coordinate goes to 0, not into the scale
    q = tcmap.quantise(coords)
    ok = np.isfinite(coords).all(axis=1)
    assert q.dtype == np.uint16 and q[ok].min() == 0 and q[ok].max() == tcmap.QUANT_STEPS and (q[3] == 0).all()
    lo, hi = coords[ok].min(axis=0), coords[ok].max(axis=0)
    back = lo + q[ok] / tcmap.QUANT_STEPS * (hi - lo)
    assert np.abs(back - coords[ok]).max(axis=0).tolist() <= ((hi - lo) / tcmap.QUANT_STEPS / 2 * 1.001).tolist()
    # the names sit at the quantised centres, on the same scale as the points
    fig = tcmap.build_map(coords[ok], labels[ok], {c: str(c) for c in range(4)}, {})
    names = _checked(fig).data[-1]
    pts = np.concatenate([np.c_[np.asarray(t.x, float), np.asarray(t.y, float)] for t in _checked(fig).data[:-1]])
    assert pts.min() >= 0 and pts.max() <= tcmap.QUANT_STEPS
    assert min(names.x) >= 0 and max(names.x) <= tcmap.QUANT_STEPS


def test_marker_size_shrinks_with_the_number_of_points():
    assert [tcmap.marker_size(n) for n in (1_000, 20_000, 100_000, 1_000_000)] == [5, 5, 3, 2]


def test_colour_by_a_tag_paints_its_documents_and_greys_the_rest():
    coords, labels, _, _ = _blobs(3)
    tagged = np.array([0, 5, 21, 59, 400, -1])  # ids past the run (400) or negative are ignored
    codes = tcmap.tag_codes(labels.size, tagged)
    assert codes.dtype == np.float32 and np.flatnonzero(codes).tolist() == [0, 5, 21, 59]
    fig = tcmap.build_map(coords, labels, {}, {}, values=codes, categories=["untagged", "refunds"],
                          category_colors=[tcmap.GREY, tcmap.TAG_COLOR])
    seen = {}
    for t, rows in zip(_checked(fig).data, fig.rows, strict=False):
        for r, colour in zip(rows.tolist(), t.marker.color, strict=True):
            seen[r] = colour
    assert {r for r, c in seen.items() if c == tcmap.TAG_COLOR} == {0, 5, 21, 59}
    assert {c for r, c in seen.items() if r not in (0, 5, 21, 59)} == {tcmap.GREY}
    with pytest.raises(ValueError, match="category colours"):
        tcmap.build_map(coords, labels, {}, {}, values=codes, categories=["a", "b"], category_colors=["#000000"])


def test_heatmap_names_every_cluster_on_both_axes_in_the_given_order():
    _, _, _, pair = _blobs(150)
    names = [f"{c} · a rather long cluster name number {c}" for c in range(150)]
    order = np.random.default_rng(3).permutation(150)
    fig = tcmap.heatmap(pair, names, order=order)
    h = fig.data[0]
    assert [int(s.split(" · ")[0]) for s in h.x] == order.tolist() == [int(s.split(" · ")[0]) for s in h.y]
    assert max(len(s) for s in h.x) <= tcmap.HEATMAP_NAME_CHARS and len(set(h.x)) == 150
    assert np.allclose(np.asarray(h.z), pair[np.ix_(order, order)])
    assert fig.layout.xaxis.dtick == 1 and fig.layout.yaxis.dtick == 1  # a tick (a name) per cluster
    assert fig.layout.height >= 10 * 150  # about 10 pixels a row at 150 clusters


def test_chain_order_visits_every_cluster_once_going_to_the_nearest():
    pts = np.array([[0.0], [10.0], [1.0], [11.0], [2.0]])
    pair = np.abs(pts - pts.T)
    assert tcmap.chain_order(pair).tolist() == [0, 2, 4, 1, 3]
    pair[0, 2] = pair[2, 0] = np.nan  # a broken distance is never the nearest
    assert sorted(tcmap.chain_order(pair).tolist()) == list(range(5))
    assert tcmap.chain_order(np.zeros((0, 0))).size == 0


def test_large_maps_send_typed_arrays_and_the_data_revision_follows_the_data(monkeypatch):
    coords, labels, _, pair = _blobs(3, per=30)
    names, colors = {c: str(c) for c in range(3)}, dict(enumerate(tcmap.cluster_palette(pair, 3)))
    small = tcmap.build_map(coords, labels, names, colors).figure
    # a different map (moved points, another highlight, other names) never shares a revision
    moved = coords.copy()
    moved[0] += 5
    assert tcmap.build_map(moved, labels, names, colors).figure["layout"]["datarevision"] != small["layout"]["datarevision"]
    assert tcmap.build_map(coords, labels, names, colors, highlight=1).figure["layout"]["datarevision"] \
        != small["layout"]["datarevision"]
    assert tcmap.build_map(coords, labels, {c: f"n{c}" for c in range(3)}, colors).figure["layout"]["datarevision"] \
        != small["layout"]["datarevision"]
    assert tcmap.build_map(coords, labels, names, colors).figure == small  # deterministic
    score = np.linspace(0, 1, labels.size).astype(np.float32)
    by_score = tcmap.build_map(coords, labels, names, colors, values=score).figure["layout"]["datarevision"]
    assert by_score != tcmap.build_map(coords, labels, names, colors, values=score[::-1].copy()).figure["layout"][
        "datarevision"] != small["layout"]["datarevision"]
    texts = [f"t{i}" for i in range(labels.size)]
    with_texts = tcmap.build_map(coords, labels, names, colors, hover_texts=texts).figure["layout"]["datarevision"]
    assert with_texts != tcmap.build_map(coords, labels, names, colors, hover_texts=texts[::-1]).figure["layout"][
        "datarevision"]
    # above the limit: uint16 typed arrays (base64), 4 bytes a point, and no data revision
    monkeypatch.setenv("TEXTCLUSTER_MAP_PLAIN_POINTS", "50")
    big = tcmap.build_map(coords, labels, names, colors)
    spec = json.loads(pio.to_json(_checked(big), validate=False))
    t = spec["data"][0]
    assert t["x"]["dtype"] == "u2" and t["y"]["dtype"] == "u2" and "datarevision" not in spec["layout"]
    for t_big, t_small in zip(big.figure["data"][:-1], small["data"][:-1], strict=True):
        for axis in ("x", "y"):  # the same points, only encoded otherwise
            decoded = np.frombuffer(base64.b64decode(t_big[axis]["bdata"]), "<u2")
            assert decoded.tolist() == t_small[axis]
    # st.plotly_chart reads the spec through to_dict(), unvalidated and unchanged
    assert tcmap.chart_figure(small).to_dict() == small


@pytest.mark.parametrize("plain_points", ["2000000", "0"])
def test_the_chart_spec_is_the_same_through_orjson_and_json(monkeypatch, plain_points):
    """st.plotly_chart serialises with plotly.io.to_json, which takes orjson when it is installed
    (a dependency: about 6x faster on a 1M-point map). Both engines must send the same chart:
    the same parsed spec (NaN scores as null, user text as sent) and the HTML-sensitive
    characters of user text escaped in the string."""
    import orjson  # noqa: F401  (a dependency: the test fails when it is missing)

    monkeypatch.setenv("TEXTCLUSTER_MAP_PLAIN_POINTS", plain_points)
    coords, labels, _, pair = _blobs(3, per=30)
    score = np.linspace(0, 1, labels.size).astype(np.float32)
    score[:3] = np.nan
    fig = tcmap.build_map(coords, labels, {0: "</script><b>x</b>", 1: "é\u2028", 2: "c"},
                          dict(enumerate(tcmap.cluster_palette(pair, 3))), values=score,
                          hover_texts=[f"<i>{i}</i> ü" for i in range(labels.size)])
    chart = tcmap.chart_figure(fig.figure)
    fast = pio.to_json(chart, validate=False, engine="orjson")
    slow = pio.to_json(chart, validate=False, engine="json")
    assert json.loads(fast) == json.loads(slow)
    assert "</script>" not in fast and "<b>" not in fast and "\u2028" not in fast
    if plain_points != "0":
        assert json.loads(fast)["data"][0]["marker"]["color"][:3] == [None, None, None]
    assert pio.json.config.default_engine == "auto"  # so st.plotly_chart picks orjson
