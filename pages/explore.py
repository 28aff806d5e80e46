"""Explore: the 2-D map of a run, its clusters, their examples, distances and a text search."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from textcluster.describe.search import search_texts
from ui import cached, state
from ui.widgets import guard, pick_run

#: Vega's tableau20 scheme; noise is drawn in grey.
TABLEAU20 = [
    "#4c78a8", "#9ecae9", "#f58518", "#ffbf79", "#54a24b", "#88d27a", "#b79a20", "#f2cf5b",
    "#439894", "#83bcb6", "#e45756", "#ff9d98", "#79706e", "#bab0ac", "#d67195", "#fcbfd2",
    "#b279a2", "#d6a5c9", "#9e765f", "#d8b5a5",
]
NOISE_COLOR = "#d0d0d0"
#: The search table shows at most this many documents.
SEARCH_LIMIT = 500

st.title("Explore")

ws = state.workspace()
root = str(ws.root)
run_id = pick_run("explore_run")
if run_id is None:
    st.stop()

run_m = cached.manifest(root, run_id)
corpus_id = cached.corpus_of(root, run_id)
labels = cached.run_array(root, run_id, "labels.npy")
coords, map_info = cached.run_map(root, run_id)  # the final map once computed, else the provisional one
dist_own = cached.run_array(root, run_id, "distances.npy")
docs = cached.docs(root, corpus_id, ("doc_id", "text"))
texts = docs["text"].to_numpy()
n = int(labels.shape[0])

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

tab_map, tab_clusters, tab_dist, tab_search = st.tabs(
    ["Map", "Clusters", "Centre distances", "Search"]
)

# -- the map -------------------------------------------------------------------
with tab_map, guard("map"):
    if coords is None:
        st.info("This run has no 2-D projection.")
    else:
        if map_info.get("final") is False:
            st.caption(":material/hourglass_top: Provisional layout (PCA): the 2-D map is still being computed "
                       "in the background (its job is on the Pipeline page); rerun to see it when it is done.")
        rows = cached.scatter_rows(root, run_id)
        if rows.size < n:
            st.caption(
                f":material/info: {n:,} points: drawing a stratified subset of {rows.size:,} "
                "(every cluster in proportion to its size, at least one point each). "
                "A box selection below still filters all points."
            )
        frame = pd.DataFrame(
            {
                "x": coords[rows, 0],
                "y": coords[rows, 1],
                "cluster": names_for(rows),
                "doc_id": rows,
                "text": [t[:200] for t in texts[rows]],
            }
        )
        box = alt.selection_interval(
            name="box",
            encodings=["x", "y"],
            on="[pointerdown[!event.shiftKey], window:pointerup] > window:pointermove!",
        )
        zoom = alt.selection_interval(
            name="zoom",
            bind="scales",
            translate="[pointerdown[event.shiftKey], window:pointerup] > window:pointermove!",
            zoom="wheel!",
        )
        many = frame["cluster"].nunique() > 20
        domain = [names_of[int(c)] for c in ids]
        palette = [NOISE_COLOR if int(c) == -1 else TABLEAU20[i % len(TABLEAU20)] for i, c in enumerate(ids)]
        color = alt.Color(
            "cluster:N",
            legend=None if many else alt.Legend(title="cluster", symbolLimit=20),
            scale=alt.Scale(domain=domain, range=palette),
        )
        chart = (
            alt.Chart(frame)
            .mark_circle(size=14 if rows.size > 5000 else 30, opacity=0.7)
            .encode(
                x=alt.X("x:Q", axis=None),
                y=alt.Y("y:Q", axis=None),
                color=alt.condition(box, color, alt.value("#c8c8c8")),
                tooltip=["doc_id:Q", "cluster:N", "text:N"],
            )
            .add_params(box, zoom)
            .properties(height=560)
        )
        st.caption(
            "Drag to select a box (it filters the table below); scroll to zoom; "
            "shift-drag to pan; double-click to reset."
        )
        event = st.altair_chart(
            chart, on_select="rerun", selection_mode=["box"], key="explore_scatter",
            width="stretch",
        )
        sel = (event or {}).get("selection", {}).get("box") or {}
        if sel.get("x") and sel.get("y"):
            (x0, x1), (y0, y1) = sorted(sel["x"]), sorted(sel["y"])
            inside = np.flatnonzero(
                (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
            )
            st.markdown(f"**{inside.size:,} documents in the box**")
            table = pd.DataFrame(
                {
                    "doc_id": inside[:1000],
                    "cluster": names_for(inside[:1000]),
                    "text": texts[inside[:1000]],
                }
            )
            if inside.size > 1000:
                st.caption("Showing the first 1,000.")
            st.dataframe(table, hide_index=True, width="stretch", key="explore_box_table")
        else:
            st.caption("No box selected.")

# -- clusters --------------------------------------------------------------------
with tab_clusters, guard("clusters"):
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
                    "text": texts[rows],
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
with tab_dist, guard("centre distances"):
    pair = cached.run_array(root, run_id, "center_pairwise_distance.npy")
    if pair is None or pair.size == 0:
        st.info("This run has no cluster centres (nothing to compare).")
    else:
        kk = pair.shape[0]
        cl = [int(c) for c in ids if c >= 0][:kk]
        if len(cl) < kk:
            cl = list(range(kk))
        names = [cluster_name(c) for c in cl]
        ii, jj = np.meshgrid(np.arange(kk), np.arange(kk), indexing="ij")
        heat = pd.DataFrame(
            {"a": np.asarray(names)[ii.ravel()], "b": np.asarray(names)[jj.ravel()], "distance": pair.ravel()}
        )
        side = min(900, max(300, 14 * kk))
        st.altair_chart(
            alt.Chart(heat)
            .mark_rect()
            .encode(
                x=alt.X("a:N", sort=names, title=None, axis=alt.Axis(labels=kk <= 40)),
                y=alt.Y("b:N", sort=names, title=None, axis=alt.Axis(labels=kk <= 40)),
                color=alt.Color("distance:Q", scale=alt.Scale(scheme="viridis")),
                tooltip=["a:N", "b:N", alt.Tooltip("distance:Q", format=".3f")],
            )
            .properties(width=side, height=side),
            key="explore_heatmap",
        )
        st.caption("Euclidean distance between cluster centres in the space the clusterer saw.")

# -- search ----------------------------------------------------------------------
with tab_search, guard("search"):
    q = st.text_input("Search the texts", key="explore_search", placeholder="a word or phrase")
    if q.strip():
        hits = search_texts(docs["text"], q, limit=SEARCH_LIMIT)
        # The query is not echoed into Markdown (it is the user's text); the box above shows it.
        st.markdown(f"**{hits.total:,} documents contain it** (most occurrences first, then by doc id)")
        show = hits.doc_ids
        st.dataframe(
            pd.DataFrame(
                {
                    "doc_id": show,
                    "occurrences": hits.occurrences,
                    "cluster": names_for(show),
                    "text": texts[show],
                }
            ),
            hide_index=True,
            width="stretch",
            key="explore_search_table",
        )
        if hits.total > show.size:
            st.caption(f"Showing the first {show.size:,}.")
