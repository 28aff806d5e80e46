"""Evaluate: ACC, NMI, ARI against a label field, or label-free diagnostics without one."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from ui import cached, state
from ui.widgets import guard, pick_run

#: The cluster-versus-label heatmap shows at most this many clusters and labels (largest first).
MAX_HEATMAP_SIDE = 60

st.title("Evaluate")
ws = state.workspace()
root = str(ws.root)
run_id = pick_run("evaluate_run")
if run_id is None:
    st.stop()

pred = cached.run_array(root, run_id, "labels.npy")
corpus_id = cached.corpus_of(root, run_id)
columns = cached.corpus_columns(root, corpus_id)

if "label" in columns:
    truth = cached.docs(root, corpus_id, ("label",))["label"]
    known = truth.notna().to_numpy()
    st.caption(
        f"Against the label field: {int(known.sum()):,} of {known.size:,} documents have a label "
        f"({truth[known].nunique():,} distinct). Noise rows count as one more cluster."
    )
    with guard("scores"):
        scores = cached.supervised_scores(root, run_id, corpus_id)
        m = st.columns(4)
        m[0].metric("ACC", f"{scores['acc']:.3f}", help="accuracy after the best one-to-one cluster-to-label matching")
        m[1].metric("NMI", f"{scores['nmi']:.3f}", help="normalised mutual information")
        m[2].metric("ARI", f"{scores['ari']:.3f}", help="adjusted Rand index (0 = chance)")
        m[3].metric("V-measure", f"{scores['v_measure']:.3f}")
    with guard("cluster versus label"):
        frame = pd.DataFrame({"cluster": pred[known], "label": truth[known].to_numpy()})
        top_c = frame["cluster"].value_counts().index[:MAX_HEATMAP_SIDE]
        top_l = frame["label"].value_counts().index[:MAX_HEATMAP_SIDE]
        sub = frame[frame["cluster"].isin(top_c) & frame["label"].isin(top_l)]
        cross = pd.crosstab(sub["cluster"], sub["label"])
        # Order labels by the cluster that holds most of them, so a good match is a diagonal.
        cross = cross.loc[sorted(cross.index, key=lambda c: -cross.loc[c].sum())]
        best = cross.idxmax(axis=0)
        order_c = list(cross.index)
        labels_sorted = sorted(cross.columns, key=lambda lab: (order_c.index(best[lab]), -cross[lab].max()))
        share = cross.div(cross.sum(axis=1), axis=0)
        long = share.stack().rename("share").reset_index()
        long["count"] = cross.stack().to_numpy()
        long["cluster"] = long["cluster"].astype(str)
        if frame["cluster"].nunique() > MAX_HEATMAP_SIDE or frame["label"].nunique() > MAX_HEATMAP_SIDE:
            st.caption(f"Heatmap: the {MAX_HEATMAP_SIDE} largest clusters and labels.")
        side = min(900, max(300, 14 * max(len(order_c), len(labels_sorted))))
        st.altair_chart(
            alt.Chart(long)
            .mark_rect()
            .encode(
                x=alt.X("label:N", sort=labels_sorted, title="label"),
                y=alt.Y("cluster:N", sort=[str(c) for c in order_c], title="cluster"),
                color=alt.Color("share:Q", title="share of cluster", scale=alt.Scale(scheme="blues")),
                tooltip=["cluster:N", "label:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(width=side, height=side),
            key="evaluate_heatmap",
        )
else:
    st.info(
        "This corpus has no label field, so here are label-free diagnostics. "
        "Choose a label field on the **Data** page to score against labels.",
        icon=":material/info:",
    )

st.subheader("Label-free diagnostics")
with guard("diagnostics"):
    diag = cached.unsupervised_scores(root, run_id)
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
    sizes = np.bincount(pred[pred >= 0]) if (pred >= 0).any() else np.zeros(0, int)
    sizes = np.sort(sizes[sizes > 0])[::-1]
    st.altair_chart(
        alt.Chart(pd.DataFrame({"rank": np.arange(1, sizes.size + 1), "size": sizes}))
        .mark_bar()
        .encode(x=alt.X("rank:O", title="cluster rank by size", axis=alt.Axis(labels=sizes.size <= 60)),
                y=alt.Y("size:Q", title="documents"))
        .properties(height=220),
        key="evaluate_sizes",
        width="stretch",
    )
