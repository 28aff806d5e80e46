"""Export: SQL over the workspace views, a preview, and downloads with provenance."""

from __future__ import annotations

import json
import logging

import streamlit as st

from textcluster.errors import TextclusterError
from textcluster.jobs import error_message
from textcluster.query import export, sql
from ui import state
from ui.widgets import guard, run_or_stop

logger = logging.getLogger(__name__)

EXAMPLES = {
    "Clusters, largest first": (
        "SELECT cluster, cluster_name, size, share, label, keywords\nFROM clusters\nORDER BY size DESC"
    ),
    "Documents with their cluster": (
        "SELECT d.doc_id, a.cluster, a.cluster_name, c.label, d.tags, d.text\nFROM docs d\n"
        "JOIN assignments a USING (doc_id)\n"
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
    "Tagged documents": (
        "SELECT t.tag, d.doc_id, a.cluster, a.cluster_name, d.text\nFROM tags t JOIN docs d USING (doc_id)\n"
        "JOIN assignments a USING (doc_id)\nORDER BY t.tag, d.doc_id"
    ),
    "Noise documents": (
        "SELECT d.doc_id, d.text\nFROM docs d JOIN assignments a USING (doc_id)\nWHERE a.cluster = -1"
    ),
}
MIME = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}

st.title("Export")
ws = state.workspace()
run_id = run_or_stop("export_run")


def _size(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB" if n >= 1024**2 else f"{n / 1024:,.1f} kB"


def downloads(key: str, what: str, **source: str) -> None:
    """Build one source's file (CSV, JSONL or Parquet) on demand, within the download limits, and
    offer it with its provenance. The bytes are built before the download button is drawn and kept
    in session state, so the first click downloads them (a deferred callable could be gone from
    the server by then: ``MediaFileStorageError: deferred file not found``); a failure is shown."""
    name = source.get("sample_id") or source.get("run_id") or "query"
    sig = json.dumps(source, sort_keys=True)
    slot = f"{key}_built"
    cols = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
    fmt = cols[0].selectbox("Format", export.FORMATS, format_func=str.upper, key=f"{key}_fmt")
    if cols[1].button(f"Prepare {what} as {fmt.upper()}", key=f"{key}_prepare", icon=":material/build:"):
        st.session_state[slot] = {"sig": sig, "fmt": fmt, "data": None, "error": None}
        try:
            with st.spinner(f"Building {what.lower()} as {fmt.upper()}..."):
                st.session_state[slot]["data"] = export.export_bytes(
                    ws, fmt, max_bytes=export.DOWNLOAD_MAX_BYTES, **source
                )
        except Exception as e:  # shown below, and kept until the next try
            if not isinstance(e, TextclusterError):
                logger.exception("building the %s download", what)
            st.session_state[slot]["error"] = f"{what} download: {error_message(e)}"
    built = st.session_state.get(slot)
    if built and built["sig"] == sig and built["fmt"] == fmt:
        if built["data"] is not None:
            cols[2].download_button(
                f"{what} as {fmt.upper()} ({_size(len(built['data']))})",
                data=built["data"],
                file_name=f"{name}.{fmt}",
                mime=MIME[fmt],
                key=f"{key}_dl",
                icon=":material/download:",
                on_click="ignore",
            )
        else:
            st.error(built["error"], icon=":material/error:")
    with guard(f"{what} provenance"):
        prov = json.dumps(export.provenance(ws, **source), indent=2, ensure_ascii=False, default=str)
        cols[3].download_button(
            "Provenance (JSON)",
            data=prov,
            file_name=f"{name}.provenance.json",
            mime="application/json",
            key=f"{key}_prov",
            icon=":material/receipt_long:",
            on_click="ignore",
        )


LIMITS = (
    f"Downloads are built in memory and stop at {_size(export.DOWNLOAD_MAX_BYTES)}, "
    f"{export.EXPORT_MAX_ROWS:,} rows or {export.EXPORT_TIMEOUT:g} s (`$TEXTCLUSTER_DOWNLOAD_MAX_BYTES`); "
    "for bigger files use `textcluster export` (`--max-bytes`, `--max-rows`, `--timeout`). "
    "In CSV, a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` "
    "so that a spreadsheet shows it as text."
)


# -- SQL -------------------------------------------------------------------------
st.subheader("SQL")
st.caption(
    "One read-only SELECT over the views `docs`, `assignments`, `clusters`, `samples` and `tags`, "
    "scoped to the chosen run. Files, network and settings are out of reach; "
    f"queries stop after {sql.DEFAULT_TIMEOUT:g} s."
)
st.caption(LIMITS)
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
