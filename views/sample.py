"""Sample: a sampling policy, its per-cluster quotas (preview), and the drawn sample."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from textcluster.config import SamplingPolicy
from textcluster.describe import sampling
from ui import cached, state
from ui.widgets import guard, run_or_stop

ALLOCATION_HELP = {
    "sqrt": "in proportion to the square root of each cluster's size (small clusters get more than their share)",
    "proportional": "in proportion to each cluster's size (mirrors the corpus)",
    "equal": "the same number from every cluster (as far as each cluster allows)",
}
WITHIN_HELP = {
    "random": "seeded random rows of each cluster",
    "diverse": "farthest-point picks: rows that cover the cluster",
    "nearest": "the rows nearest the cluster centre: the most typical",
}

st.title("Sample")
ws = state.workspace()
root = str(ws.root)
run_id = run_or_stop("sample_run")

labels = cached.run_array(root, run_id, "labels.npy")
n = int(labels.shape[0])
ids = np.unique(labels)
desc = {}
with guard("cluster descriptions"):
    desc = {c["cluster"]: c for c in cached.description(root, run_id)["clusters"]}


def cname(c: int) -> str:
    d = desc.get(int(c))
    return f"{c} · {d['label']}" if d else ("-1 · noise" if c == -1 else str(c))


defaults = SamplingPolicy()
c1, c2, c3 = st.columns(3)
size = c1.number_input("Sample size (N)", 1, max(1, n), min(defaults.size, n), key="sample_size")
allocation = c2.selectbox(
    "Across clusters", list(ALLOCATION_HELP), key="sample_allocation", format_func=lambda a: a,
    help="How N is shared between clusters.",
)
c2.caption(ALLOCATION_HELP[allocation])
within = c3.selectbox("Inside a cluster", list(WITHIN_HELP), key="sample_within")
c3.caption(WITHIN_HELP[within])

c4, c5, c6 = st.columns(3)
has_noise = bool((ids == -1).any())
noise = c4.selectbox(
    "Noise", ["exclude", "include", "quota"], key="sample_noise", disabled=not has_noise,
    help="exclude: never sample noise; include: noise is one more group; quota: a fixed share of N.",
)
noise_quota = 0.0
if has_noise and noise == "quota":
    noise_quota = c4.slider("Noise share of N", 0.0, 1.0, 0.05, key="sample_noise_quota")
cluster_ids = [int(c) for c in ids if c != -1]
only = c5.multiselect("Only these clusters", cluster_ids, format_func=cname, key="sample_only")
never = c6.multiselect("Never these clusters", cluster_ids, format_func=cname, key="sample_never")
seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="sample_seed")

policy = SamplingPolicy(
    size=int(size), allocation=allocation, within=within, noise=noise if has_noise else "exclude",
    noise_quota=float(noise_quota), clusters=tuple(only) or None, exclude_clusters=tuple(never),
    seed=int(seed),
)

with guard("quota preview"):
    quota = sampling.plan(ws, run_id, policy)
    sizes = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    frame = pd.DataFrame(
        {
            "cluster": [cname(c) for c in quota],
            "id": list(quota),
            "quota": list(quota.values()),
            "size": [int(sizes.get(c, 0)) for c in quota],
        }
    ).sort_values("size", ascending=False)
    total = int(frame["quota"].sum())
    st.subheader(f"Quotas: {total:,} rows from {int((frame['quota'] > 0).sum())} clusters")
    if total < policy.size:
        st.info(f"Only {total:,} rows are available under this policy (asked for {policy.size:,}).")
    st.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("cluster:N", sort=list(frame["cluster"]), title="cluster (largest first)",
                    axis=alt.Axis(labels=len(frame) <= 60)),
            y=alt.Y("quota:Q", title="rows drawn"),
            tooltip=["cluster:N", "size:Q", "quota:Q"],
        )
        .properties(height=280),
        key="sample_quota_chart",
        width="stretch",
    )

if st.button("Draw sample", type="primary", key="sample_draw"):
    with guard("sampling"):
        res = sampling.sample(ws, run_id, policy)
        st.session_state[state.SAMPLE] = res.sample_id
        st.toast(f"Sample {res.sample_id}: {res.n:,} rows" + (" (from the cache)" if res.cached else ""))

sid = state.current_sample()  # tampered or stale session state counts as unset
if sid and ws.exists(sid) and cached.manifest(root, sid).run_id == run_id:
    with guard("sample"):
        res = sampling.load_sample(ws, sid)
        docs = cached.docs(root, cached.corpus_of(root, run_id), ("doc_id", "text"))
        table = pd.DataFrame(
            {
                "doc_id": res.doc_ids,
                "cluster": [cname(c) for c in labels[res.doc_ids]],
                "text": docs["text"].to_numpy()[res.doc_ids],
            }
        )
        st.subheader(f"Sample `{sid}` · {res.n:,} rows")
        st.dataframe(table, hide_index=True, width="stretch", key="sample_table")
        st.page_link("views/export.py", label="Download it on the Export page", icon=":material/arrow_forward:")
