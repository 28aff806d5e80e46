"""Export: SQL over the workspace views, a preview, and downloads with provenance."""

from __future__ import annotations

import json

import streamlit as st

from textcluster.query import export, sql
from ui import state
from ui.widgets import guard, pick_run

EXAMPLES = {
    "Clusters, largest first": "SELECT cluster, size, share, label, keywords\nFROM clusters\nORDER BY size DESC",
    "Documents with their cluster": (
        "SELECT d.doc_id, a.cluster, c.label, d.text\nFROM docs d\nJOIN assignments a USING (doc_id)\n"
        "LEFT JOIN clusters c USING (run_id, cluster)\nORDER BY d.doc_id"
    ),
    "The 3 documents nearest each centre": (
        "SELECT cluster, doc_id, distance, text FROM (\n  SELECT a.cluster, d.doc_id, a.distance, d.text,\n"
        "    row_number() OVER (PARTITION BY a.cluster ORDER BY a.distance) AS r\n"
        "  FROM assignments a JOIN docs d USING (doc_id)\n  WHERE a.cluster >= 0\n) WHERE r <= 3\n"
        "ORDER BY cluster, distance"
    ),
    "The drawn samples": (
        "SELECT s.sample_id, s.cluster, s.rank, d.text\nFROM samples s JOIN docs d USING (doc_id)\n"
        "ORDER BY s.sample_id, s.cluster, s.rank"
    ),
    "Noise documents": (
        "SELECT d.doc_id, d.text\nFROM docs d JOIN assignments a USING (doc_id)\nWHERE a.cluster = -1"
    ),
}
MIME = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}

st.title("Export")
ws = state.workspace()
run_id = pick_run("export_run")
if run_id is None:
    st.stop()


def downloads(key: str, what: str, **source: str) -> None:
    """Three download buttons (CSV, JSONL, Parquet) and the provenance manifest of one source."""
    cols = st.columns(4)
    for col, fmt in zip(cols, ("csv", "jsonl", "parquet"), strict=False):
        col.download_button(
            f"{what} as {fmt.upper()}",
            data=lambda fmt=fmt: export.export_bytes(ws, fmt, **source),
            file_name=f"{source.get('sample_id') or source.get('run_id') or 'query'}.{fmt}",
            mime=MIME[fmt],
            key=f"{key}_{fmt}",
            icon=":material/download:",
            on_click="ignore",
        )
    cols[3].download_button(
        "Provenance (JSON)",
        data=lambda: json.dumps(export.provenance(ws, **source), indent=2, ensure_ascii=False, default=str),
        file_name=f"{source.get('sample_id') or source.get('run_id') or 'query'}.provenance.json",
        mime="application/json",
        key=f"{key}_prov",
        icon=":material/receipt_long:",
        on_click="ignore",
    )


# -- SQL -------------------------------------------------------------------------
st.subheader("SQL")
st.caption(
    "One read-only SELECT over the views `docs`, `assignments`, `clusters` and `samples`, "
    "scoped to the chosen run. Files, network and settings are out of reach; "
    f"queries stop after {sql.DEFAULT_TIMEOUT:g} s."
)
example = st.selectbox("Example queries", list(EXAMPLES), key="export_example")
if st.session_state.get("export_example_loaded") != example:
    st.session_state["export_sql"] = EXAMPLES[example]
    st.session_state["export_example_loaded"] = example
text = st.text_area("Query", key="export_sql", height=180)
limit = st.number_input("Preview rows", 10, 100_000, 200, step=50, key="export_limit")
if text.strip():
    with guard("query"):
        table = sql.query(ws, text, limit=int(limit), run_id=run_id)
        frame = table.to_pandas()
        more = " (more rows exist; the downloads hold them all)" if sql.is_truncated(table) else ""
        st.caption(f"{len(frame):,} rows{more}")
        st.dataframe(frame, hide_index=True, width="stretch", key="export_preview")
        downloads("export_dl_sql", "Query result", sql=text, run_id=run_id)

# -- whole run, and samples --------------------------------------------------------
st.subheader("Whole run")
st.caption("Every document with its cluster, distance to the centre, 2-D position and label.")
with guard("run export"):
    downloads("export_dl_run", "Run", run_id=run_id)

samples = [m for m in ws.list("sample") if m.run_id == run_id]
if samples:
    st.subheader("Samples")
    ids = [m.id for m in samples]
    cur = st.session_state.get(state.SAMPLE)
    sid = st.selectbox(
        "Sample",
        ids,
        index=ids.index(cur) if cur in ids else 0,
        key="export_sample",
        format_func=lambda i: f"{i} · {next(m for m in samples if m.id == i).n:,} rows",
    )
    with guard("sample export"):
        downloads("export_dl_sample", "Sample", sample_id=sid)
