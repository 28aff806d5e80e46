"""The Explore map: a WebGL scatter (Plotly ``Scattergl``) of every point of a run.

Pure functions (no Streamlit): the page builds the figure here and hands it to
``st.plotly_chart(on_select="rerun", selection_mode=("points", "box", "lasso"))``.

Why this shape (measured in docs/benchmarks.md, "Explore map paint (issue 18)"):

* one ``Scattergl`` trace per cluster. The hover names the cluster from the trace (no string
  per point), a highlighted cluster is one trace coloured and the others grey, and a selection
  comes back as (trace, index in trace), mapped to rows by :attr:`MapFigure.rows`;
* coordinates are quantised to integers 0..65,535 (:func:`quantise`: far finer than a screen's
  pixels) and sent as plain JSON numbers under a ``layout.datarevision`` that digests the data
  (:data:`PLAIN_ARRAY_MAX_POINTS`): Streamlit hands Plotly the figure a second time on its first
  draw, and only plain arrays under an unchanged revision spare the browser a second full
  computation and drawing of every trace. Above that limit, uint16 typed arrays (base64
  ``bdata``, 4 bytes a point). The axes are hidden, so their units do not show;
* the figure is a plain dict, built without plotly.py's validation, with no template (a
  template in the layout also made Plotly redo everything on the second hand-over), and passed
  to Streamlit unvalidated (:func:`chart_figure`); the tests validate it against Plotly's schema;
* the text of each point goes into the hover only up to :data:`HOVER_TEXT_MAX_POINTS` points
  (trimmed to :data:`HOVER_CHARS` characters); above that the hover names the cluster and a
  selection lists the texts in the table below the map;
* above :data:`MAX_MAP_POINTS` points (env ``TEXTCLUSTER_MAP_MAX_POINTS``) the map draws a
  stratified subset; every run up to that limit is drawn point for point.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Every point is drawn up to this many (env ``TEXTCLUSTER_MAP_MAX_POINTS``); above, a
#: stratified subset of this size (every cluster in proportion, at least one point each).
MAX_MAP_POINTS = 2_000_000
#: Hover texts are sent up to this many points (env ``TEXTCLUSTER_MAP_HOVER_TEXTS``).
HOVER_TEXT_MAX_POINTS = 20_000
#: A hover text is trimmed to this many characters.
HOVER_CHARS = 80
#: Names are drawn at the centres of at most this many clusters (the largest, and the
#: highlighted one): more would cover the map.
MAX_NAMES = 40
NOISE_COLOR = "#c8c8c8"
GREY = "#dcdcdc"
#: The colour of the documents of a tag when the map is coloured by that tag (the rest: GREY).
TAG_COLOR = "#d62728"


def env_int(name: str, default: int) -> int:
    """A non-negative integer from the environment, else ``default`` (a bad value is ignored)."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() else default


def max_map_points() -> int:
    """:data:`MAX_MAP_POINTS`, or ``$TEXTCLUSTER_MAP_MAX_POINTS`` when set."""
    return env_int("TEXTCLUSTER_MAP_MAX_POINTS", MAX_MAP_POINTS)


def hover_text_max_points() -> int:
    """:data:`HOVER_TEXT_MAX_POINTS`, or ``$TEXTCLUSTER_MAP_HOVER_TEXTS`` when set."""
    return env_int("TEXTCLUSTER_MAP_HOVER_TEXTS", HOVER_TEXT_MAX_POINTS)


# -- ordering and colours ---------------------------------------------------------------


def order_by_linkage(center_distances: np.ndarray) -> np.ndarray:
    """The order of ``k`` clusters that puts similar ones side by side.

    ``center_distances``: ``(k, k)`` symmetric distances between centres. Returns a
    permutation of ``0..k-1``: the leaves of an average-linkage tree of the centres, with
    the optimal leaf ordering (scipy). Used for the heatmap's axes and the palette; a run
    hierarchy, when there is one, can replace it."""
    d = np.asarray(center_distances, dtype=np.float64)
    k = d.shape[0]
    if d.ndim != 2 or d.shape[1] != k:
        raise ValueError(f"center_distances should be a square matrix, got shape {d.shape}")
    if k <= 2:
        return np.arange(k)
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    d = np.nan_to_num((d + d.T) / 2, nan=0.0, posinf=0.0)
    np.fill_diagonal(d, 0.0)
    cond = squareform(np.maximum(d, 0.0), checks=False)
    z = linkage(cond, method="average")
    if k <= 400:  # O(k^3) on the leaves: instant at 150, seconds at 1,000
        z = optimal_leaf_ordering(z, cond)
    return leaves_list(z).astype(np.int64)


def chain_order(center_distances: np.ndarray) -> np.ndarray:
    """A nearest-neighbour chain through ``k`` clusters: from cluster 0, each step goes to the
    nearest cluster not yet visited. NumPy only, O(k^2): the palette's order (neighbours
    follow each other), without importing SciPy on the way to the first map (about a second
    on the 2-core machine)."""
    d = np.array(center_distances, dtype=np.float64)
    k = d.shape[0]
    if k == 0:
        return np.zeros(0, np.int64)
    d = np.nan_to_num((d + d.T) / 2, nan=np.inf, posinf=np.inf)
    seen = np.zeros(k, bool)
    out = np.empty(k, np.int64)
    cur = 0
    for i in range(k):
        out[i] = cur
        seen[cur] = True
        if i + 1 < k:
            row = np.where(seen, np.inf, d[cur])
            nxt = int(np.argmin(row))
            cur = nxt if not seen[nxt] else int(np.flatnonzero(~seen)[0])
    return out


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``(n, 3)`` sRGB in 0..1 -> CIELAB (D65)."""
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _candidates() -> tuple[np.ndarray, np.ndarray]:
    """A grid of saturated, mid-light colours (no greys: grey means noise or "not chosen")."""
    rgb = []
    for h in np.linspace(0, 1, 72, endpoint=False):
        for s in (0.45, 0.7, 0.95):
            for v in (0.55, 0.75, 0.95):
                rgb.append(colorsys.hsv_to_rgb(h, s, v))
    arr = np.asarray(rgb)
    return arr, _srgb_to_lab(arr)


def distinct_colors(n: int) -> list[str]:
    """``n`` colours as far apart as possible in CIELAB (greedy farthest point, glasbey-like);
    deterministic. The first few are as distinct as colours get; at 150 they still differ."""
    rgb, lab = _candidates()
    if n <= 0:
        return []
    chosen = [int(np.argmax(lab[:, 1] + lab[:, 2]))]  # start from a strong red-orange
    dmin = np.linalg.norm(lab - lab[chosen[0]], axis=1)
    while len(chosen) < min(n, len(rgb)):
        i = int(np.argmax(dmin))
        chosen.append(i)
        dmin = np.minimum(dmin, np.linalg.norm(lab - lab[i], axis=1))
    out = [_hex(rgb[i]) for i in chosen]
    while len(out) < n:  # more clusters than candidates: repeat (never reached below 648)
        out.append(out[len(out) % len(chosen)])
    return out


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(float(v) * 255):02x}" for v in rgb)


def color_distance(a: str, b: str) -> float:
    """CIELAB distance between two ``#rrggbb`` colours (about 2.3 is just noticeable)."""
    rgb = np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in (a, b)])
    lab = _srgb_to_lab(rgb)
    return float(np.linalg.norm(lab[0] - lab[1]))


def cluster_palette(center_distances: np.ndarray | None, k: int, neighbours: int = 6) -> list[str]:
    """A colour for each of ``k`` clusters such that clusters with near centres differ.

    Takes :func:`distinct_colors` (k) and hands them out in :func:`chain_order` order,
    each cluster taking the unused colour farthest (CIELAB) from the colours already given to
    its ``neighbours`` nearest centres. Without distances, the colours in cluster order."""
    colors = distinct_colors(k)
    if center_distances is None or k <= 2 or np.shape(center_distances) != (k, k):
        return colors
    d = np.asarray(center_distances, dtype=np.float64)
    lab = _srgb_to_lab(np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colors]))
    near = np.argsort(d + np.diag(np.full(k, np.inf)), axis=1)[:, :neighbours]
    free = np.ones(k, bool)
    given = np.full(k, -1)
    for c in chain_order(d):
        done = [given[j] for j in near[c] if given[j] >= 0]
        cand = np.flatnonzero(free)
        if done:
            score = np.min(np.linalg.norm(lab[cand][:, None, :] - lab[done][None, :, :], axis=2), axis=1)
            pick = int(cand[int(np.argmax(score))])
        else:
            pick = int(cand[0])
        given[c] = pick
        free[pick] = False
    return [colors[g] for g in given]


# -- the figure -----------------------------------------------------------------------


@dataclass
class MapFigure:
    """A Plotly figure (a plain ``{"data", "layout"}`` dict, see :func:`build_map`) and what maps
    a selection back to rows.

    ``rows[t]``: the row (doc id) of each point of trace ``t``, in the trace's order;
    traces past ``len(rows)`` (the cluster names) hold no rows."""

    figure: object
    rows: list[np.ndarray] = field(default_factory=list)
    points: int = 0


def cluster_centres_2d(coords: np.ndarray, labels: np.ndarray, clusters: Sequence[int]) -> np.ndarray:
    """The median 2-D position of each cluster's points (where its name is drawn); ``(len(clusters), 2)``."""
    out = np.zeros((len(clusters), 2), np.float32)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    for i, c in enumerate(clusters):
        lo, hi = np.searchsorted(sorted_labels, [c, c + 1])
        if hi > lo:
            out[i] = np.median(coords[order[lo:hi]], axis=0)
    return out


def marker_size(points: int) -> int:
    """Marker diameter in pixels for a map of ``points`` points: 5 up to 20,000, 3 up to
    200,000, 2 above (a million 3-pixel points cover the map several times over, and without a
    GPU the browser rasterises every pixel of every point: measured 4.4 s against 7.7 s at 1M,
    docs/benchmarks.md)."""
    return 5 if points <= 20_000 else 3 if points <= 200_000 else 2


#: Coordinates are sent as integers 0..QUANT_STEPS (uint16).
QUANT_STEPS = 65_535


def quantise(coords: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """``coords`` ``(n, 2)`` as uint16 ``0..QUANT_STEPS`` per axis, spread over ``lo..hi``
    (default: the coordinates' own finite extent); non-finite values go to 0.

    The error is at most half a step, 1/131,070 of the map's width: below a pixel at any zoom
    a screen allows. Plotly draws the integers as they are (the axes are hidden)."""
    c = np.asarray(coords, dtype=np.float64)
    finite = np.isfinite(c).all(axis=1)
    if lo is None or hi is None:
        ok = c[finite]
        lo = ok.min(axis=0) if ok.size else np.zeros(2)
        hi = ok.max(axis=0) if ok.size else np.ones(2)
    span = np.where(np.asarray(hi) > np.asarray(lo), np.asarray(hi) - np.asarray(lo), 1.0)
    q = np.rint((np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0) - lo) / span * QUANT_STEPS)
    q[~finite] = 0
    return np.clip(q, 0, QUANT_STEPS).astype(np.uint16)


#: Up to this many points the coordinates go to the browser as plain JSON numbers; above, as
#: uint16 typed arrays (env ``TEXTCLUSTER_MAP_PLAIN_POINTS``; 0 always sends typed arrays).
#: Why plain: Streamlit's chart hands Plotly the figure twice on its first draw, the second time
#: as a fresh copy, and Plotly takes any fresh typed array for new data, so it computed and drew
#: every trace twice; plain arrays under an unchanged ``layout.datarevision`` it keeps. Measured
#: in Chromium, the browser's work fell by a fifth at 100k points and by a third at 1M, though
#: plain numbers take 2.3 times the bytes (13 MB of JSON at 1M; docs/benchmarks.md, "Explore map
#: paint"). Typed arrays remain for a slow link to a remote app.
PLAIN_ARRAY_MAX_POINTS = MAX_MAP_POINTS


def plain_array_max_points() -> int:
    """:data:`PLAIN_ARRAY_MAX_POINTS`, or ``$TEXTCLUSTER_MAP_PLAIN_POINTS`` when set."""
    return env_int("TEXTCLUSTER_MAP_PLAIN_POINTS", PLAIN_ARRAY_MAX_POINTS)


def _typed(a: np.ndarray) -> dict:
    """A NumPy array as Plotly's typed-array spec (``{"dtype", "bdata"}``: base64, little-endian)."""
    import base64

    a = np.ascontiguousarray(a)
    code = {np.dtype(np.uint16): "u2", np.dtype(np.float32): "f4", np.dtype(np.float64): "f8"}[a.dtype]
    return {"dtype": code, "bdata": base64.b64encode(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).decode()}


def _marker_color(values: np.ndarray, plain: bool) -> list | dict:
    return values.astype(np.float64).round(6).tolist() if plain else _typed(values.astype(np.float32))


def build_map(
    coords: np.ndarray,
    labels: np.ndarray,
    names: dict[int, str],
    colors: dict[int, str],
    *,
    rows: np.ndarray | None = None,
    hover_texts: Sequence[str] | None = None,
    highlight: int | None = None,
    values: np.ndarray | None = None,
    value_title: str = "",
    categories: Sequence[str] | None = None,
    category_colors: Sequence[str] | None = None,
    short_names: dict[int, str] | None = None,
    height: int = 620,
) -> MapFigure:
    """One ``scattergl`` trace per cluster, and the names of the :data:`MAX_NAMES` largest
    clusters (and of the highlighted one) at their centres.

    ``coords`` ``(n, 2)``, ``labels`` ``(n,)`` (-1 = noise). ``rows``: the rows to draw (all
    when None). ``names``/``colors``: per cluster id. ``hover_texts``: one trimmed text per row
    of ``rows`` (or None: the hover names the cluster only). ``highlight``: a cluster drawn in
    its colour on top of the others in grey. ``values``: colour by a per-row value instead of
    the cluster (float: a continuous scale titled ``value_title``; with ``categories``, codes
    ``0..len(categories)-1`` of a categorical column, one colour each: ``category_colors``, or
    :func:`distinct_colors` when None). The coordinates are drawn
    quantised (:func:`quantise`) over the drawn rows' extent, the names at the same scale.

    The figure is a plain Plotly figure dict (``{"data", "layout"}``), built without plotly.py's
    validation (which took a second at 100k points) and without a template; the tests check it
    against plotly.py's schema. :func:`chart_figure` hands it to ``st.plotly_chart``. Up to
    :func:`plain_array_max_points` points the coordinates are plain numbers and
    ``layout.datarevision`` is a digest of the figure's data, else typed arrays."""
    rows = np.arange(labels.shape[0]) if rows is None else np.asarray(rows)
    sub = labels[rows]
    qxy = quantise(coords[rows])  # in the order of ``rows``
    qx, qy = np.ascontiguousarray(qxy[:, 0]), np.ascontiguousarray(qxy[:, 1])
    plain = rows.size <= plain_array_max_points()
    order = np.argsort(sub, kind="stable")
    present, starts = np.unique(sub[order], return_index=True)
    ends = np.append(starts[1:], order.size)
    short = short_names or names
    cat_colors = None
    if categories is not None:
        cat_colors = list(category_colors) if category_colors is not None else distinct_colors(len(categories))
        if len(cat_colors) != len(categories):
            raise ValueError(f"{len(categories)} categories but {len(cat_colors)} category colours")
    vmin = vmax = None
    if values is not None and cat_colors is None and values.size:
        finite = values[np.isfinite(values)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    traces: list[dict] = []
    trace_rows = []
    drawn = [int(c) for c in present]
    if highlight is not None and highlight in drawn:  # the highlighted cluster last: drawn on top
        drawn.remove(highlight)
        drawn.append(highlight)
    size = marker_size(rows.size)
    for c in drawn:
        j = int(np.searchsorted(present, c))
        idx = order[starts[j] : ends[j]]
        r = rows[idx]
        trace_rows.append(r)
        color: object = colors.get(c, NOISE_COLOR)
        marker: dict = {"size": size, "opacity": 0.75}
        if highlight is not None and c != highlight:
            color, marker["opacity"] = GREY, 0.35
        elif values is not None and cat_colors is not None:
            if idx.size <= 50_000:
                color = [cat_colors[int(v)] for v in values[idx]]
            else:  # many points: numbers and a discrete colour scale (compact)
                color = _marker_color(values[idx], plain)
                marker.update(cmin=0, cmax=max(len(cat_colors) - 1, 1), colorscale=_discrete_scale(cat_colors))
        elif values is not None:
            color = _marker_color(values[idx], plain)
            marker.update(cmin=vmin, cmax=vmax, colorscale="Viridis", showscale=c == drawn[-1],
                          colorbar={"title": {"text": html_escape(value_title)}})
        marker["color"] = color
        hover = f"<b>{html_escape(names.get(c, str(c)))}</b>"
        trace: dict = {
            "type": "scattergl", "uid": f"c{c}",
            "x": qx[idx].tolist() if plain else _typed(qx[idx]),
            "y": qy[idx].tolist() if plain else _typed(qy[idx]),
            "mode": "markers", "marker": marker, "name": short.get(c, str(c)), "showlegend": False,
        }
        if hover_texts is not None:
            trace["text"] = [hover_texts[i] for i in idx.tolist()]
            hover += "<br>%{text}"
        trace["hovertemplate"] = hover + "<extra></extra>"
        traces.append(trace)
    sizes = {c: int(ends[j] - starts[j]) for j, c in enumerate(int(p) for p in present)}
    named = sorted((c for c in drawn if c >= 0), key=lambda c: (-sizes[c], c))[:MAX_NAMES]
    if highlight is not None and highlight >= 0 and highlight in sizes:
        named = [c for c in named if c != highlight][: MAX_NAMES - 1] + [highlight]
    if named:
        centres = cluster_centres_2d(qxy.astype(np.float32), sub, named)
        traces.append({
            "type": "scatter", "uid": "names", "x": centres[:, 0].tolist(), "y": centres[:, 1].tolist(),
            "mode": "text", "text": [html_escape(short.get(c, str(c))) for c in named],
            "textfont": {"size": 11, "color": "#1a1a1a"}, "hoverinfo": "skip", "showlegend": False,
            "name": "cluster names",
        })
    layout: dict = {
        "height": height, "margin": {"l": 8, "r": 8, "t": 8, "b": 8}, "dragmode": "select",
        # what Streamlit's chart sets when selections are on, set here so it does not draw twice
        "clickmode": "event", "hovermode": "closest",
        "xaxis": {"visible": False}, "yaxis": {"visible": False}, "uirevision": "map",
        "plot_bgcolor": "white",
    }
    if plain:
        layout["datarevision"] = _digest(
            qxy, sub, np.zeros(0) if values is None else np.asarray(values),
            {"names": names, "short": short, "colors": colors, "highlight": highlight, "title": value_title,
             "categories": categories, "category_colors": cat_colors, "height": height,
             "hover": None if hover_texts is None else list(hover_texts)},
        )
    return MapFigure({"data": traces, "layout": layout}, trace_rows, int(rows.size))


def _digest(*parts: object) -> str:
    """A short digest of what a figure draws, from :func:`build_map`'s inputs: arrays by their
    bytes (coordinates, labels, colour values), everything else (names, colours, hover texts,
    settings) by its JSON. Two different
    maps never share a ``datarevision``; hashing the inputs, not the figure's point lists, keeps
    it at a few milliseconds at 1M points."""
    import json
    import zlib

    h = 0
    for p in parts:
        if isinstance(p, np.ndarray):
            h = zlib.crc32(np.ascontiguousarray(p).tobytes(), h)
        else:
            h = zlib.crc32(json.dumps(p, sort_keys=True, default=str).encode(), h)
    return f"{h:08x}"


def chart_figure(spec: dict):
    """The figure dict of :func:`build_map` as ``st.plotly_chart`` takes it, without plotly.py's
    validation and copy of every point (0.5 s a render at 100k points; the spec was checked
    when it was built, see :func:`build_map`): a ``plotly.graph_objects.Figure`` whose
    ``to_dict()`` returns ``spec`` itself, which is all ``st.plotly_chart`` reads from a figure
    object (plotly.tools.return_figure_from_figure_or_data)."""
    import plotly.graph_objects as go

    class _Spec(go.Figure):
        def to_dict(self) -> dict:  # noqa: D102 - see chart_figure
            return {"data": list(spec["data"]), "layout": dict(spec["layout"])}

    return _Spec()


def tag_codes(n: int, doc_ids: np.ndarray) -> np.ndarray:
    """Per-row codes for colouring ``n`` rows by a tag: 1.0 for the rows in ``doc_ids`` (a
    tag's doc ids; ids outside ``0..n-1`` are ignored), 0.0 for the others; float32 ``(n,)``.
    With ``categories=["untagged", name]`` and ``category_colors=[GREY, TAG_COLOR]``."""
    out = np.zeros(n, np.float32)
    ids = np.asarray(doc_ids, dtype=np.int64).reshape(-1)
    out[ids[(ids >= 0) & (ids < n)]] = 1.0
    return out


def _discrete_scale(colors: Sequence[str]) -> list[list]:
    """A colour scale with one flat band per category (codes 0..n-1 over cmin=0, cmax=n-1)."""
    n = len(colors)
    if n == 1:
        return [[0, colors[0]], [1, colors[0]]]
    out = []
    for i, c in enumerate(colors):
        lo, hi = max(0.0, (i - 0.5) / (n - 1)), min(1.0, (i + 0.5) / (n - 1))
        out += [[lo, c], [hi, c]]
    return out


def html_escape(text: str) -> str:
    """Plotly renders hover and label text as a subset of HTML: escape what a user wrote."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def selected_rows(event: object, fig: MapFigure) -> np.ndarray:
    """The rows (doc ids) of a ``st.plotly_chart`` selection event, sorted, no duplicates.

    The event is ``{"selection": {"points": [{"curve_number", "point_index", ...}], ...}}``;
    points of the names trace are ignored."""
    sel = (event or {}).get("selection") or {}
    pts = sel.get("points") or []
    if not pts:
        return np.zeros(0, np.int64)
    out = []
    for p in pts:
        t, i = p.get("curve_number"), p.get("point_index", p.get("point_number"))
        if isinstance(t, int) and isinstance(i, int) and 0 <= t < len(fig.rows) and 0 <= i < fig.rows[t].size:
            out.append(int(fig.rows[t][i]))
    return np.unique(np.asarray(out, np.int64))


#: Names on the heatmap's axes are cut to this many characters (the id comes first, so they stay unique).
HEATMAP_NAME_CHARS = 36


def heatmap(pair: np.ndarray, names: Sequence[str], order: np.ndarray | None = None, height: int | None = None):
    """A Plotly heatmap of centre-to-centre distances, rows and columns in ``order`` (by default
    :func:`order_by_linkage`; the Explore page passes the run's stored hierarchy), with the name
    of every cluster on both axes (cut to :data:`HEATMAP_NAME_CHARS`). Readable at 150 clusters: one tick per cluster, about 10 pixels a row (the chart
    grows with k), and zoomable (drag a box)."""
    import plotly.graph_objects as go

    order = order_by_linkage(pair) if order is None else np.asarray(order)
    k = len(order)
    labels = [html_escape(_cut(str(names[i]), HEATMAP_NAME_CHARS)) for i in order]
    z = np.asarray(pair)[np.ix_(order, order)]
    fig = go.Figure(
        go.Heatmap(z=z, x=labels, y=labels, colorscale="Viridis",
                   hovertemplate="%{y}<br>%{x}<br>distance %{z:.3f}<extra></extra>",
                   colorbar={"title": {"text": "distance"}})
    )
    side = height or int(min(2400, max(360, 10 * k + 260)))
    font = 8 if k > 60 else 10
    fig.update_layout(
        height=side, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"tickfont": {"size": font}, "tickangle": -60, "type": "category", "dtick": 1, "automargin": True},
        yaxis={"tickfont": {"size": font}, "autorange": "reversed", "type": "category", "dtick": 1,
               "automargin": True},
    )
    return fig


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"
