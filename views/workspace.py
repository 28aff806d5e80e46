"""Workspace: every artifact by kind, and deletion with everything derived from it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from textcluster.store import Manifest, is_id, kind_of, label_of, parents_of
from ui import state
from ui.widgets import guard

KIND_TITLES = {
    "corpus": "Corpora",
    "embedding": "Embeddings",
    "run": "Clustering runs",
    "description": "Descriptions",
    "sample": "Samples",
}
PENDING = "workspace_pending_delete"  # the id whose deletion waits for confirmation
DONE = "workspace_done_message"

st.title("Workspace")
ws = state.workspace()
st.caption(
    "Every artifact in the workspace. Deleting one also deletes everything derived from it "
    "(the embeddings of a corpus, the runs of an embedding, the descriptions and samples of a run)."
)
if DONE in st.session_state:
    st.success(st.session_state.pop(DONE), icon=":material/delete:")

manifests: dict[str, Manifest] = {}
with guard("workspace"):
    for kind, title in KIND_TITLES.items():
        ms = ws.list(kind)
        manifests.update({m.id: m for m in ms if is_id(m.id, kind)})
        st.subheader(f"{title} ({len(ms)})")
        if not ms:
            st.caption("None yet.")
            continue
        table = pd.DataFrame(
            {
                "id": [m.id for m in ms],
                "what": [label_of(m) for m in ms],
                "from": [", ".join(parents_of(m)) for m in ms],
                "created": [
                    dt.datetime.fromtimestamp(m.created).strftime("%Y-%m-%d %H:%M") for m in ms
                ],
            }
        )
        st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Delete")
if not manifests:
    st.info("The workspace is empty.", icon=":material/info:")
    st.stop()


def _name(aid: str) -> str:
    m = manifests.get(aid)
    label = label_of(m) if m else ""
    return f"{kind_of(aid)} · {aid}" + (f" · {label}" if label else "")


ids = list(manifests)
choice = st.selectbox("Artifact to delete", ids, index=None, format_func=_name, key="workspace_pick",
                      placeholder="Pick an artifact")
if st.button("Delete…", key="workspace_delete", icon=":material/delete:", disabled=choice is None):
    st.session_state[PENDING] = choice

pending = st.session_state.get(PENDING)
if pending is not None and not (is_id(pending) and ws.exists(pending)):
    st.session_state.pop(PENDING, None)  # removed meanwhile, or not an id: nothing to confirm
    pending = None
if pending is not None:
    with guard("delete"):
        plan = ws.removal_plan(pending)
        n = len(plan)
        st.warning(
            f"Deleting `{pending}` deletes {n} artifact{'s' if n != 1 else ''}, children first:",
            icon=":material/warning:",
        )
        st.dataframe(pd.DataFrame(plan), hide_index=True, width="stretch")
        c1, c2 = st.columns(2)
        if c1.button(f"Delete {n} artifact{'s' if n != 1 else ''}", type="primary", key="workspace_confirm"):
            removed = ws.remove(pending, expected=[r["id"] for r in plan])
            state.forget(removed)
            st.cache_data.clear()  # cached loaders keyed by removed ids must not serve them again
            st.session_state.pop(PENDING, None)
            n_gone = len(removed)
            st.session_state[DONE] = (
                f"Deleted {n_gone} artifact{'s' if n_gone != 1 else ''}: " + ", ".join(f"`{r}`" for r in removed)
            )
            st.rerun()
        if c2.button("Cancel", key="workspace_cancel"):
            st.session_state.pop(PENDING, None)
            st.rerun()
