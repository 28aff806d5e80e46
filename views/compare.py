"""Compare: two runs of the same corpus side by side (ARI, NMI, matched clusters, what changed)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from textcluster.cluster.compare import OVERLAP, compare_runs
from ui import state
from ui.text import md
from ui.widgets import guard, run_label

#: The contingency chart shows at most this many clusters a side (the largest matched first).
MAX_SIDE = 40

st.title("Compare")
st.caption(
    "Agreement of two runs of one corpus (two methods, two k, a run and its edited version): ARI and NMI, "
    "the clusters matched one to one (on the diagonal), and what split, merged, appeared or vanished "
    f"(a link needs {OVERLAP:.0%} of a cluster; see docs/curation.md)."
)
ws = state.workspace()
runs = ws.list("run")
current = state.current_run()
if current is None or len(runs) < 2:
    st.info("Compare needs two runs of the same corpus: launch another on the **Pipeline** page or edit one "
            "in **Explore**.", icon=":material/info:")
    st.stop()
corpus = ws.corpus_of(current)
same = [m for m in runs if ws.corpus_of(m.id) == corpus]
ids = [m.id for m in same]
labels = {m.id: run_label(m) for m in same}
if len(ids) < 2:
    st.info("The current run's corpus has only one run.", icon=":material/info:")
    st.stop()
a_default = ids.index(current) if current in ids else 0
m_cur = next(m for m in same if m.id == ids[a_default])
b_default = ids.index(m_cur.parent_run) if m_cur.parent_run in ids else (1 if a_default == 0 else 0)
left, right = st.columns(2)
run_a = left.selectbox("Run A", ids, index=a_default, format_func=labels.get, key="compare_a")
run_b = right.selectbox("Run B", ids, index=b_default, format_func=labels.get, key="compare_b")
if run_a == run_b:
    st.info("Pick two different runs.", icon=":material/info:")
    st.stop()

with guard("compare"):
    c = compare_runs(ws, run_a, run_b)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("ARI", f"{c.ari:.3f}")
    m2.metric("NMI", f"{c.nmi:.3f}")
    m3.metric("Matched clusters", f"{c.matched}")
    m4.metric("Documents", f"{c.n:,}")
    st.subheader("What changed")
    if c.changes:
        st.dataframe(pd.DataFrame([x.to_dict() for x in c.changes])[["kind", "text", "docs"]],
                     hide_index=True, width="stretch", key="compare_changes")
    else:
        st.success("No cluster split, merged, appeared or vanished.", icon=":material/check_circle:")

    def name(c_id: int, names: dict[int, str]) -> str:
        return "noise" if c_id < 0 else (f"{c_id} · {names[c_id]}" if c_id in names else str(c_id))

    st.subheader("Contingency")
    rows, cols = c.rows[:MAX_SIDE], c.cols[:MAX_SIDE]
    ra = [name(x, c.names_a) for x in rows]
    cb = [name(x, c.names_b) for x in cols]
    counts = c.counts[: len(rows), : len(cols)]
    ii, jj = np.meshgrid(np.arange(len(rows)), np.arange(len(cols)), indexing="ij")
    heat = pd.DataFrame({"A": np.asarray(ra)[ii.ravel()], "B": np.asarray(cb)[jj.ravel()],
                         "documents": counts.ravel()})
    side = min(900, max(300, 22 * max(len(rows), len(cols))))
    st.altair_chart(
        alt.Chart(heat).mark_rect().encode(
            x=alt.X("B:N", sort=cb, title="Run B"),
            y=alt.Y("A:N", sort=ra, title="Run A"),
            color=alt.Color("documents:Q", scale=alt.Scale(scheme="blues")),
            tooltip=["A:N", "B:N", alt.Tooltip("documents:Q", format=",")],
        ).properties(width=side, height=side),
        key="compare_heat",
    )
    if len(c.rows) > MAX_SIDE or len(c.cols) > MAX_SIDE:
        st.caption(f"The {MAX_SIDE} first clusters of each side are drawn ({len(c.rows)} x {len(c.cols)} in all).")
    st.dataframe(pd.DataFrame(counts, index=ra, columns=cb), width="stretch", key="compare_table")
    st.caption(f"A: {md(run_a)} · B: {md(run_b)}")
