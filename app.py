"""The textcluster app: `streamlit run app.py` (or `make run`).

Six pages, each a thin layer over the `textcluster` library. Errors raised by a
page are shown as a readable message and the app stays up.
"""

from __future__ import annotations

import streamlit as st

from ui import state
from ui.widgets import guard

st.set_page_config(
    page_title="textcluster",
    page_icon=":material/bubble_chart:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/upload_file:", default=True),
    st.Page("pages/pipeline.py", title="Pipeline", icon=":material/play_circle:"),
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("pages/sample.py", title="Sample", icon=":material/filter_alt:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
]

page = st.navigation(PAGES)

with st.sidebar, guard("workspace"):
    ws = state.workspace()
    st.caption(f"Workspace: `{ws.root}`")
    corpus_id, run_id = state.current_corpus(), state.current_run()
    if corpus_id:
        st.caption(f"Corpus: `{corpus_id}`")
    if run_id:
        st.caption(f"Run: `{run_id}`")
    active = state.manager().active()
    if active:
        st.caption(f"{len(active)} job(s) running: see **Pipeline**")

with guard():
    page.run()
