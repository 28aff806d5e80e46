"""Labels: edit a run's label map (a label per cluster), apply it as a run version, download it.

A thin layer over textcluster.labelmap: the table shows each cluster's size and the texts
nearest its centre, the "label" column is edited, "Apply" writes the named version (the same
map on the same run is the same version) and makes it the current run; the map downloads as
JSON or CSV, and a map file (JSON or CSV, ids, names or seed terms) can be uploaded and applied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from textcluster.cluster.versions import run_names
from textcluster.labelmap import (
    LabelMap,
    MapEntry,
    apply_label_map,
    format_label_map,
    parse_label_map,
)
from ui import cached, state
from ui.text import md
from ui.widgets import guard, run_or_stop

#: Texts shown per cluster (those nearest its centre).
EXAMPLES = 3


def _examples(root: str, run_id: str, k: int) -> list[str]:
    labels = cached.run_array(root, run_id, "labels.npy")
    dist = cached.run_array(root, run_id, "distances.npy")
    texts = cached.docs(root, cached.corpus_of(root, run_id), ("text",))["text"]
    out = []
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        if dist is not None:
            rows = rows[np.argsort(dist[rows], kind="stable")]
        out.append(" · ".join(str(texts.iloc[int(r)])[:60] for r in rows[:EXAMPLES]))
    return out


st.title("Labels")
st.caption("Name clusters: type a label per cluster, apply (a new run version; the documents keep their "
           "clusters), download the map, or upload a map file (JSON or CSV; see docs/vocab.md).")
ws = state.workspace()
root = str(ws.root)
run_id = run_or_stop("labels_run")

table = None
with guard("clusters"):
    m = cached.manifest(root, run_id)
    names = run_names(ws, run_id)
    sizes = cached.run_clusters(root, run_id)
    size_of = dict(zip(sizes["cluster"].astype(int), sizes["size"].astype(int), strict=True))
    table = pd.DataFrame({
        "cluster": list(range(m.k)),
        "size": [size_of.get(c, 0) for c in range(m.k)],
        "nearest texts": _examples(root, run_id, m.k),
        "label": [names.get(c, "") for c in range(m.k)],
    })
    if m.parent_run:
        st.caption(f"A version of `{m.parent_run}` ({md((m.edit or {}).get('op', 'edit'))}).")
if table is None:
    st.stop()

edited = st.data_editor(
    table, key=f"labels_editor_{run_id}", hide_index=True, use_container_width=True,
    disabled=["cluster", "size", "nearest texts"],
    column_config={"label": st.column_config.TextColumn("label", max_chars=200,
                                                        help="empty: the cluster keeps its id")},
)
labels = {int(c): str(v).strip() for c, v in zip(edited["cluster"], edited["label"], strict=True)
          if isinstance(v, str) and v.strip()}

cols = st.columns(3)
if cols[0].button("Apply labels", type="primary", disabled=not labels, key="labels_apply",
                  help="write a run version named by this map and make it the current run"):
    with guard("apply"):
        lmap = LabelMap(tuple(MapEntry(i + 1, "cluster", lab, cluster=c) for i, (c, lab) in enumerate(sorted(labels.items()))),
                        source="the Labels page")
        res = apply_label_map(ws, run_id, lmap)
        state.set_run(res.run_id)
        st.session_state["labels_applied"] = res.run_id
        st.rerun()
cols[1].download_button("Download JSON", format_label_map(labels, "json"), file_name=f"{run_id}-labels.json",
                        mime="application/json", disabled=not labels, key="labels_dl_json")
cols[2].download_button("Download CSV", format_label_map(labels, "csv"), file_name=f"{run_id}-labels.csv",
                        mime="text/csv", disabled=not labels, key="labels_dl_csv")

applied = st.session_state.get("labels_applied")
if applied:
    st.success(f"Labelled version `{applied}` written; it is now the current run (Explore shows it).",
               icon=":material/check_circle:")

with st.expander("Upload a label map file"):
    up = st.file_uploader("Label map (.json or .csv)", type=["json", "csv"], key="labels_upload")
    if up is not None and st.button("Apply the uploaded map", key="labels_apply_upload"):
        with guard("label map"):
            fmt = "json" if up.name.lower().endswith(".json") else "csv"
            res = apply_label_map(ws, run_id, parse_label_map(up.getvalue(), fmt, source=up.name))
            state.set_run(res.run_id)
            st.session_state["labels_applied"] = res.run_id
            for note in res.notes:
                st.caption(md(note))
            st.rerun()
