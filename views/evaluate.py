"""Evaluate: ACC, NMI, ARI against a label field of the corpus, and label-free diagnostics."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from textcluster.cluster.evaluate import (
    DEFAULT_LABEL_FIELD,
    MAX_CONTINGENCY_SIDE,
    METRICS_SPACE_TEXT,
)
from ui import cached, state
from ui.text import md
from ui.widgets import guard, run_or_stop

#: Columns every corpus has, one value per document: never a class, so not offered as a label field.
PER_DOCUMENT_COLUMNS = ("doc_id", "row", "text")
NO_FIELD = "(none)"


st.title("Evaluate")
ws = state.workspace()
root = str(ws.root)
run_id = run_or_stop("evaluate_run")

ev = None
with guard("scores"):
    corpus_id = cached.corpus_of(root, run_id)
    fields = [c for c in cached.corpus_columns(root, corpus_id) if c not in PER_DOCUMENT_COLUMNS]
    if DEFAULT_LABEL_FIELD not in fields:
        fields.insert(0, NO_FIELD)
    chosen = st.selectbox(
        "Label field", fields, index=fields.index(DEFAULT_LABEL_FIELD) if DEFAULT_LABEL_FIELD in fields else 0,
        key=f"evaluate_label_field_{corpus_id}",
        help="the corpus column to score the clusters against (any column kept from the input file); "
        "rows with no value in it are left out of these scores",
    )
    ev = cached.evaluation(root, run_id, None if chosen == NO_FIELD else chosen)
if ev is None:
    st.stop()

if ev["label_field"] is not None and ev["acc"] is not None:
    st.caption(
        f"Against the label field **{md(ev['label_field'])}**: {ev['n_labelled']:,} of {ev['n']:,} documents "
        f"have a value ({ev['classes']:,} distinct); the others are left out of these scores. "
        "Noise rows count as one more cluster."
    )
    m = st.columns(4)
    m[0].metric("ACC", f"{ev['acc']:.3f}", help="accuracy after the best one-to-one cluster-to-label matching")
    m[1].metric("NMI", f"{ev['nmi']:.3f}", help="normalised mutual information")
    m[2].metric("ARI", f"{ev['ari']:.3f}", help="adjusted Rand index (0 = chance)")
    m[3].metric("V-measure", f"{ev['v_measure']:.3f}")
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
                x=alt.X("label:N", sort=table["labels"], title=ev["label_field"]),
                y=alt.Y("cluster:N", sort=[str(c) for c in table["clusters"]], title="cluster"),
                color=alt.Color("share:Q", title="share of cluster", scale=alt.Scale(scheme="blues")),
                tooltip=["cluster:N", "label:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(width=side, height=side),
            key="evaluate_heatmap",
        )
elif ev["label_field"] is not None:
    st.info(f"No document has a value in **{md(ev['label_field'])}**, so here are label-free diagnostics only.",
            icon=":material/info:")
else:
    st.info(
        f"This corpus has no label field (no `{DEFAULT_LABEL_FIELD}` column), so here are label-free "
        "diagnostics. Choose a column above to score the clusters against it.",
        icon=":material/info:",
    )

st.subheader("Label-free diagnostics")
st.caption(
    f"In the {ev['space']} space: {METRICS_SPACE_TEXT}. These are the numbers the run's manifest "
    "holds and `textcluster evaluate` prints, whatever the run's reducer."
)
fmt = {
    "silhouette": ("Silhouette", "{:.3f}", "in [-1, 1], higher is better (on a seeded sample of the embedding)"),
    "davies_bouldin": ("Davies–Bouldin", "{:.3f}", ">= 0, lower is better"),
    "size_cv": ("Size CV", "{:.2f}", "spread of cluster sizes (0 = all equal)"),
    "size_min_share": ("Smallest cluster", "{:.2%}", "share of all rows"),
    "size_max_share": ("Largest cluster", "{:.2%}", "share of all rows"),
    "noise": ("Noise", "{:.2%}", "share of rows labelled -1"),
}
cols = st.columns(len(fmt))
for col, (key, (title, pattern, help_)) in zip(cols, fmt.items(), strict=True):
    v = ev[key]
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
