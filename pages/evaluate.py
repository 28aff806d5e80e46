"""Evaluate: ACC, NMI, ARI against a label field, or label-free diagnostics without one."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from textcluster.cluster.evaluate import MAX_CONTINGENCY_SIDE
from ui import cached, state
from ui.widgets import guard, pick_run

st.title("Evaluate")
ws = state.workspace()
root = str(ws.root)
run_id = pick_run("evaluate_run")
if run_id is None:
    st.stop()

ev = None
with guard("scores"):
    ev = cached.evaluation(root, run_id)
if ev is None:
    st.stop()

if ev["supervised"] is not None:
    st.caption(
        f"Against the label field: {ev['labelled']:,} of {ev['n']:,} documents have a label "
        f"({ev['classes']:,} distinct). Noise rows count as one more cluster."
    )
    scores = ev["supervised"]
    m = st.columns(4)
    m[0].metric("ACC", f"{scores['acc']:.3f}", help="accuracy after the best one-to-one cluster-to-label matching")
    m[1].metric("NMI", f"{scores['nmi']:.3f}", help="normalised mutual information")
    m[2].metric("ARI", f"{scores['ari']:.3f}", help="adjusted Rand index (0 = chance)")
    m[3].metric("V-measure", f"{scores['v_measure']:.3f}")
    with guard("cluster versus label"):
        table = ev["contingency"]
        cross = pd.DataFrame(table["counts"], index=table["clusters"], columns=table["labels"])
        share = cross.div(cross.sum(axis=1), axis=0)
        long = share.rename_axis(index="cluster", columns="label").stack().rename("share").reset_index()
        long["count"] = cross.stack().to_numpy()
        long["cluster"] = long["cluster"].astype(str)
        if table["truncated"]:
            st.caption(f"Heatmap: the {MAX_CONTINGENCY_SIDE} largest clusters and labels.")
        side = min(900, max(300, 14 * max(len(table["clusters"]), len(table["labels"]))))
        st.altair_chart(
            alt.Chart(long)
            .mark_rect()
            .encode(
                x=alt.X("label:N", sort=table["labels"], title="label"),
                y=alt.Y("cluster:N", sort=[str(c) for c in table["clusters"]], title="cluster"),
                color=alt.Color("share:Q", title="share of cluster", scale=alt.Scale(scheme="blues")),
                tooltip=["cluster:N", "label:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(width=side, height=side),
            key="evaluate_heatmap",
        )
else:
    st.info(
        "This corpus has no label field (or no labelled rows), so here are label-free diagnostics. "
        "Choose a label field on the **Data** page to score against labels.",
        icon=":material/info:",
    )

st.subheader("Label-free diagnostics")
diag = ev["diagnostics"]
fmt = {
    "silhouette": ("Silhouette", "{:.3f}", "in [-1, 1], higher is better (on a seeded sample)"),
    "davies_bouldin": ("Davies–Bouldin", "{:.3f}", ">= 0, lower is better"),
    "size_cv": ("Size CV", "{:.2f}", "spread of cluster sizes (0 = all equal)"),
    "size_min_share": ("Smallest cluster", "{:.2%}", "share of all rows"),
    "size_max_share": ("Largest cluster", "{:.2%}", "share of all rows"),
    "noise": ("Noise", "{:.2%}", "share of rows labelled -1"),
}
cols = st.columns(len(fmt))
for col, (key, (title, pattern, help_)) in zip(cols, fmt.items(), strict=True):
    v = diag.get(key)
    col.metric(title, "–" if v is None else pattern.format(v), help=help_)
sizes = ev["sizes"]
st.altair_chart(
    alt.Chart(pd.DataFrame({"rank": range(1, len(sizes) + 1), "size": sizes}))
    .mark_bar()
    .encode(x=alt.X("rank:O", title="cluster rank by size", axis=alt.Axis(labels=len(sizes) <= 60)),
            y=alt.Y("size:Q", title="documents"))
    .properties(height=220),
    key="evaluate_sizes",
    width="stretch",
)
