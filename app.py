"""The textcluster app: `streamlit run app.py` (or `make run`).

Eight pages, each a thin layer over the `textcluster` library. Errors raised by a
page are shown as a readable message and the app stays up.

At start (once per server process) UMAP's numba functions are compiled in a background
daemon thread (`textcluster.cluster.reduce.warm_up`), so a user's first UMAP run does not pay
that compile; `TEXTCLUSTER_NO_WARMUP=1` skips it (the tests set it).
"""

from __future__ import annotations

import logging
import os
import threading

import streamlit as st

from ui import state
from ui.text import md
from ui.widgets import display_path, guard

st.set_page_config(
    page_title="textcluster",
    page_icon=":material/bubble_chart:",
    layout="wide",
    initial_sidebar_state="expanded",
)

ENV_NO_WARMUP = "TEXTCLUSTER_NO_WARMUP"


def _warm_up_quietly() -> None:
    from textcluster.cluster import reduce

    try:
        reduce.warm_up()
    except Exception:  # a missing or broken umap only matters when a user picks it
        logging.getLogger("textcluster.app").warning("UMAP warm-up failed", exc_info=True)


@st.cache_resource(show_spinner=False)
def start_warm_up() -> threading.Thread | None:
    """Start the UMAP warm-up in a daemon thread, once per process; None when skipped."""
    if os.environ.get(ENV_NO_WARMUP) == "1":
        return None
    thread = threading.Thread(target=_warm_up_quietly, name="umap-warm-up", daemon=True)
    thread.start()
    return thread


start_warm_up()

PAGES = [
    st.Page("views/data.py", title="Data", icon=":material/upload_file:", default=True),
    st.Page("views/pipeline.py", title="Pipeline", icon=":material/play_circle:"),
    st.Page("views/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/sample.py", title="Sample", icon=":material/filter_alt:"),
    st.Page("views/export.py", title="Export", icon=":material/download:"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("views/labels.py", title="Labels", icon=":material/label:"),
    st.Page("views/workspace.py", title="Workspace", icon=":material/folder_open:"),
]

page = st.navigation(PAGES)

# The user's place: taken from the workspace once per session (a reloaded tab), kept across
# pages, and written back when it changed (ui/state.py).
with guard("restoring your place"):
    state.restore()
    state.keep_widgets()
    state.remember()

with st.sidebar, guard("workspace"):
    ws = state.workspace()
    st.caption(f"Workspace: {md(display_path(ws.root))}", help=f"Full path: {md(ws.root.resolve())}")
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
    state.remember()  # what the page itself chose (a new corpus or run) without waiting for a rerun
