"""Explore: the 2-D map of a run (WebGL, every point), its legend, clusters, examples,
centre distances and a text search.

The map lives in ui/map.py (figure, palette, ordering), the legend in ui/legend.py; this page
wires them to the run's files. Rows chosen on the map (box, lasso or click) are listed below it
and kept in ``st.session_state[state.SELECTION]`` for the selection actions.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import streamlit as st

from textcluster.describe.search import search_texts
from textcluster.query import tags
from ui import cached, edits, state
from ui import map as tcmap
from ui.granularity import centre_heatmap, granularity_panel
from ui.legend import chosen_cluster, legend, legend_table
from ui.text import md
from ui.widgets import guard, run_or_stop

#: The search table shows at most this many documents.
SEARCH_LIMIT = 500
#: The selection table lists at most this many rows (the count is of all selected rows).
SELECTION_TABLE_ROWS = 1000

st.title("Explore")

ws = state.workspace()
root = str(ws.root)
run_id = run_or_stop("explore_run")

run_m = cached.manifest(root, run_id)
corpus_id = cached.corpus_of(root, run_id)
labels = cached.run_array(root, run_id, "labels.npy")
coords, map_info = cached.run_map(root, run_id)  # the final map once computed, else the provisional one
n = int(labels.shape[0])


def texts() -> np.ndarray:
    """The corpus's texts (read when a table or the hover needs them, not before the map)."""
    return cached.docs(root, corpus_id, ("doc_id", "text"))["text"].to_numpy()


desc: dict = {}
with guard("cluster descriptions"):
    desc = cached.description(root, run_id)
by_cluster = {c["cluster"]: c for c in desc.get("clusters", [])}


def cluster_name(c: int) -> str:
    d = by_cluster.get(int(c))
    label = d["label"] if d else ("noise" if c == -1 else f"cluster {c}")
    return f"{c} · {label}"


ids, counts = np.unique(labels, return_counts=True)
names_of = {int(c): cluster_name(int(c)) for c in ids}
sizes_of = {int(c): int(s) for c, s in zip(ids, counts, strict=True)}


def names_for(rows: np.ndarray) -> list[str]:
    """Cluster names of some rows (one dict lookup each)."""
    return [names_of[c] for c in labels[rows].tolist()]


k = int((ids >= 0).sum())
noise = int(counts[ids == -1].sum()) if (ids == -1).any() else 0
m1, m2, m3, m4 = st.columns(4)
m1.metric("Documents", f"{n:,}")
m2.metric("Clusters", f"{k:,}")
m3.metric("Noise", f"{noise:,} ({noise / max(n, 1):.1%})")
m4.metric("Method", str(run_m.clusterer.get("method", "–")))
# Hierarchy levels, saving a level, stability flags (ui/granularity.py): drawn here, but filled
# after the open tab, so the map reaches the browser (and its Plotly code starts loading) first.
GRANULARITY = st.container()

pair = cached.run_array(root, run_id, "center_pairwise_distance.npy")
colors_of = cached.cluster_colors(root, run_id)

# Only the open tab's content runs (on_change="rerun"), so the others do not slow the map.
TABS = st.tabs(["Map", "Clusters", "Centre distances", "Search"], key="explore_tab", on_change="rerun")

# -- the map -------------------------------------------------------------------


def colour_sources() -> dict[str, str]:
    """What the map can be coloured by: label -> source (``cluster``, ``score:<file>``,
    ``column:<name>``, ``tag:<name>@<size>-<crc32 of its doc ids>``: :func:`ui.cached.colour_values`)."""
    out = {"cluster": "cluster"}
    if cached.run_has(root, run_id, "outlier_score.npy"):
        out["outlier score"] = "score:outlier_score.npy"
    if cached.run_has(root, run_id, "distances.npy"):
        out["distance to its centre"] = "score:distances.npy"
    for col in cached.corpus_columns(root, corpus_id):
        if col not in ("doc_id", "row", "text", "is_duplicate", "source_id"):
            out[f"column: {col}"] = f"column:{col}"
    with guard("tags"):
        for name, doc_ids in tags.load_tags(ws, corpus_id).items():
            # keyed by the tag's content: the cached figure follows a tag that changes
            out[f"tag: {name}"] = f"tag:{name}@{doc_ids.size}-{zlib.crc32(doc_ids.tobytes()):08x}"
    return out


def selection_table(rows: np.ndarray) -> None:
    """The selected rows (doc id, cluster, text) below the map, and their count."""
    st.markdown(f"**{rows.size:,} documents selected**")
    ids_in, n_in = np.unique(labels[rows], return_counts=True)
    top = ids_in[np.argsort(-n_in, kind="stable")][:5]
    st.caption(
        f"From {ids_in.size:,} cluster{'s' if ids_in.size != 1 else ''}: "
        + ", ".join(md(names_of[int(c)]) for c in top) + (", …" if ids_in.size > 5 else "")
    )
    head = rows[:SELECTION_TABLE_ROWS]
    st.dataframe(
        pd.DataFrame({"doc_id": head, "cluster": names_for(head), "text": texts()[head]}),
        hide_index=True, width="stretch", key="explore_selection_table",
    )
    if rows.size > SELECTION_TABLE_ROWS:
        st.caption(f"Showing the first {SELECTION_TABLE_ROWS:,}.")


def map_tab() -> None:
    """Colour-by box, the map with its legend, and the selected rows."""
    if coords is None:
        st.info("This run has no 2-D projection.")
    else:
        if map_info.get("final") is False:
            st.caption(":material/hourglass_top: Provisional layout (PCA): the 2-D map is still being computed "
                       "in the background (its job is on the Pipeline page); rerun to see it when it is done.")
        sources = colour_sources()
        c_by, c_hint = st.columns([1, 3])
        by = c_by.selectbox("Colour by", list(sources), key="explore_color_by")
        c_hint.caption(
            "Drag to select a box, or pick the lasso in the chart's toolbar; click a point to "
            "select it; scroll to zoom; double-click to reset. The selected rows are listed below."
        )
        col_map, col_legend = st.columns([3, 1])
        keywords = {c: by_cluster.get(c, {}).get("keywords", []) for c in sizes_of}
        frame = legend_table(list(sizes_of), names_of, sizes_of, keywords, colors_of)
        chosen = chosen_cluster(frame, "explore_legend")
        with col_map:  # the map first: it reaches the browser before the legend
            limit = tcmap.max_map_points()
            drawn = min(n, limit)
            if n > limit:
                st.caption(
                    f":material/info: {n:,} points, above the map's limit of {limit:,} "
                    "(TEXTCLUSTER_MAP_MAX_POINTS): drawing a stratified subset of "
                    f"{drawn:,} (every cluster in proportion to its size, at least one point each)."
                )
            if sources[by].startswith("tag:"):
                st.caption(f"Documents tagged **{md(by[len('tag: '):])}** in red, the others in grey.")
            if chosen is not None:
                st.caption(f"Highlighted: cluster {md(names_of[chosen])} ({sizes_of[chosen]:,} documents)")
            fig = cached.map_figure(root, run_id, chosen, sources[by], limit, tcmap.hover_text_max_points(),
                                    names_of, colors_of)
            event = st.plotly_chart(
                tcmap.chart_figure(fig.figure), on_select="rerun", selection_mode=("points", "box", "lasso"),
                key="explore_map", width="stretch", theme=None,
                config={"displaylogo": False, "scrollZoom": True},
            )
            st.caption(f"{fig.points:,} points drawn.")
        with col_legend:
            legend(frame, "explore_legend")
        picked = tcmap.selected_rows(event, fig)
        st.session_state[state.SELECTION] = (run_id, picked)
        if picked.size:
            selection_table(picked)
        else:
            st.caption("Nothing selected.")

# -- clusters --------------------------------------------------------------------


def clusters_tab() -> None:
    """The cluster table and each cluster's nearest and farthest examples."""
    dist_own = cached.run_array(root, run_id, "distances.npy")
    table = pd.DataFrame(
        {
            "cluster": ids.astype(int),
            "size": counts.astype(int),
            "share": counts / max(n, 1),
            "label": [by_cluster.get(int(c), {}).get("label", "") for c in ids],
            "keywords": [", ".join(by_cluster.get(int(c), {}).get("keywords", [])[:8]) for c in ids],
        }
    ).sort_values("size", ascending=False)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="explore_cluster_table",
        column_config={"share": st.column_config.NumberColumn(format="percent")},
    )
    choices = [int(c) for c in table["cluster"] if c != -1] or [int(c) for c in table["cluster"]]
    c_sel = st.selectbox("Cluster", choices, format_func=cluster_name, key="explore_cluster")
    how_many = st.slider("Examples", 1, 50, 5, key="explore_examples")
    members = np.flatnonzero(labels == c_sel)
    if dist_own is not None:
        order = members[np.lexsort((members, dist_own[members]))]
    else:  # no stored distances: the description's own ranking
        d = by_cluster.get(c_sel, {})
        order = np.asarray(d.get("nearest", []) + d.get("farthest", [])[::-1], dtype=np.int64)
    near, far = order[:how_many], order[::-1][:how_many]

    def examples(rows: np.ndarray, key: str) -> None:
        st.dataframe(
            pd.DataFrame(
                {
                    "doc_id": rows,
                    "distance": dist_own[rows] if dist_own is not None else np.nan,
                    "text": texts()[rows],
                }
            ),
            hide_index=True,
            width="stretch",
            key=key,
        )

    left, right = st.columns(2)
    with left:
        st.markdown(f"**Nearest the centre** ({min(how_many, members.size)} of {members.size:,})")
        examples(near, "explore_near")
    with right:
        st.markdown("**Edge cases** (farthest from the centre)")
        examples(far, "explore_far")

# -- centre distances --------------------------------------------------------------
def distances_tab() -> None:
    """The centre-to-centre heatmap, ordered by the run's stored hierarchy (ui/granularity.py)."""
    kk = 0 if pair is None else pair.shape[0]
    if not centre_heatmap(ws, run_id, [cluster_name(c) for c in range(kk)], key="explore_heatmap"):
        st.info("This run has no cluster centres (nothing to compare).")

# -- search ----------------------------------------------------------------------
def search_tab() -> None:
    """A literal text search over the corpus."""
    q = st.text_input("Search the texts", key="explore_search", placeholder="a word or phrase")
    if q.strip():
        all_texts = texts()
        hits = search_texts(all_texts, q, limit=SEARCH_LIMIT)
        # The query is not echoed into Markdown (it is the user's text); the box above shows it.
        st.markdown(f"**{hits.total:,} documents contain it** (most occurrences first, then by doc id)")
        show = hits.doc_ids
        st.dataframe(
            pd.DataFrame(
                {
                    "doc_id": show,
                    "occurrences": hits.occurrences,
                    "cluster": names_for(show),
                    "text": all_texts[show],
                }
            ),
            hide_index=True,
            width="stretch",
            key="explore_search_table",
        )
        if hits.total > show.size:
            st.caption(f"Showing the first {show.size:,}.")


for tab, body, what in zip(TABS, (map_tab, clusters_tab, distances_tab, search_tab),
                           ("map", "clusters", "centre distances", "search"), strict=True):
    if tab.open:
        with tab, guard(what):
            body()

with GRANULARITY:
    granularity_panel(ws, run_id)
edits.panel(run_id)  # Curate: names, merge / split / drop, selection actions, versions (ui/edits.py)
