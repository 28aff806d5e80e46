"""Data: upload a file (or take the bundled demo), choose the fields, ingest, read the report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from textcluster import jobs
from textcluster.config import CorpusSpec
from textcluster.ingest import corpus
from textcluster.ingest.readers import FORMATS, GZIP_EXTENSION, upload_types
from textcluster.ingest.uploads import save_upload
from textcluster.store import file_sha256
from ui import state
from ui.text import md
from ui.widgets import guard, is_finished, job_progress

INGEST_JOB = "data_ingest_job"
INGESTED = "data_ingested_job"
POLL_S = 0.5
NONE = "(none)"



def corpus_from_file(ws, path: Path) -> str | None:
    """The newest corpus ingested from the bytes of ``path`` (any settings), or None."""
    sha = file_sha(str(path), path.stat().st_mtime_ns)
    for m in ws.list("corpus"):  # newest first
        if m.sha256 == sha:
            return m.id
    return None


@st.cache_data(show_spinner=False, max_entries=32)
def file_sha(path: str, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes (what a corpus manifest records), cached by path and time."""
    return file_sha256(path)


st.title("Data")
ws = state.workspace()

# An empty workspace opens on the demo corpus, ingested at once in the background (a first
# visit has something to cluster); never again once any ingest was submitted in the workspace.
if not ws.list("corpus") and state.manager().latest("ingest") is None:
    with guard("demo corpus"):
        from textcluster.ingest import demo

        st.session_state[INGEST_JOB] = jobs.submit_ingest(ws, Path(demo.demo_corpus_path()), demo.DEMO_SPEC).id
source = st.radio(
    "Source",
    ["Upload a file", "Demo corpus"],
    index=0 if ws.list("corpus") else 1,
    horizontal=True,
    key="data_source",
    help="The demo is Banking77: 10,003 customer-support questions to a bank in 77 intents (CSV, gzip).",
)

path: Path | None = None
default_spec = CorpusSpec()
if source == "Upload a file":
    up = st.file_uploader(
        f"Drop a {', '.join(f.upper() for f in FORMATS)} file ({GZIP_EXTENSION} too)",
        type=upload_types(),
        key="data_upload",
    )
    if up is not None:
        with guard("upload"):
            up.seek(0)
            path = save_upload(ws, up.name, up)
            state.set_upload(path, up.name, up.size)
            st.caption(f"Saved as {md(path.relative_to(ws.root))} in the workspace ({up.size:,} bytes).")
    else:  # the uploader is empty after another page or a reload: the file kept in the workspace
        path = state.current_upload()
        if path is not None:
            kept = st.session_state[state.UPLOAD]
            c1, c2 = st.columns([4, 1])
            c1.info(
                f"Working on {md(kept['name'])} ({int(kept['size']):,} bytes), uploaded earlier and kept "
                "in the workspace. Drop another file above to replace it.",
                icon=":material/description:",
            )
            if c2.button("Forget this file", key="data_forget_upload"):
                state.forget_upload()
                st.rerun()
else:
    with guard("demo corpus"):
        from textcluster.ingest import demo

        path = Path(demo.demo_corpus_path())
        default_spec = demo.DEMO_SPEC
        st.caption(demo.DEMO_CREDIT)

if path is not None:
    with guard("reading the file"):
        fields = corpus.list_fields(path)
        if not fields:
            st.error(f"{md(path.name)}: no fields found in the first rows")
            st.stop()
        st.subheader("Preview")
        st.dataframe(corpus.preview(path, n=20), hide_index=True, width="stretch", key="data_preview")

        st.subheader("Fields")
        # Keys carry the file hash so choices reset when another file is chosen.
        fkey = path.parent.name[:12] if source == "Upload a file" else "demo"
        wanted = [f for f in default_spec.text_fields if f in fields]
        if not wanted:  # the field ingest (and the CLI) would pick
            guess = corpus.suggest_text_field(path, default_spec)
            wanted = [guess] if guess in fields else []
            if not wanted:
                st.info("No field holds text in most of the first rows: pick the text field(s) below.")
        text_fields = st.multiselect(
            "Text field(s)",
            fields,
            default=wanted,
            key=f"data_text_{fkey}",
            help="Columns or nested JSON paths such as request.messages[0].content; "
            "several are joined with a new line.",
        )
        c1, c2 = st.columns(2)
        opts = [NONE, *fields]
        id_default = default_spec.id_field if default_spec.id_field in fields else NONE
        label_default = default_spec.label_field if default_spec.label_field in fields else NONE
        id_field = c1.selectbox(
            "Id field (optional)", opts, index=opts.index(id_default), key=f"data_id_{fkey}"
        )
        label_field = c2.selectbox(
            "Label field (optional, for evaluation only)",
            opts,
            index=opts.index(label_default),
            key=f"data_label_{fkey}",
        )
        drop_dups = st.checkbox(
            "Drop exact duplicate texts (otherwise they are kept and flagged)",
            value=default_spec.drop_duplicates,
            key=f"data_dups_{fkey}",
        )
        spec = CorpusSpec(
            text_fields=tuple(text_fields),
            id_field=None if id_field == NONE else id_field,
            label_field=None if label_field == NONE else label_field,
            drop_duplicates=drop_dups,
            encoding=default_spec.encoding,
        )
        if st.button("Ingest", type="primary", key="data_ingest", disabled=not text_fields):
            job = jobs.submit_ingest(ws, path, spec)
            st.session_state[INGEST_JOB] = job.id

# -- a running or just finished ingest job (a reload finds it too) ------------------
mgr = state.manager()
ingest_job = mgr.get(st.session_state[INGEST_JOB]) if jobs.is_job_id(st.session_state.get(INGEST_JOB)) else None
if ingest_job is None:
    latest = mgr.latest("ingest")
    if latest is not None and not latest.finished:
        ingest_job = latest
if ingest_job is not None:
    watching = not ingest_job.finished

    @st.fragment(run_every=POLL_S if watching else None)
    def ingest_panel() -> None:
        with guard("ingest"):
            snap = ingest_job.snapshot()
            if not is_finished(snap):
                job_progress(snap)
                if st.button("Cancel", key="data_cancel", icon=":material/stop_circle:"):
                    ingest_job.cancel()
            elif watching:  # it finished while we watched: refresh the whole page once
                st.rerun()
            elif snap["status"] != "done":
                job_progress(snap)

    ingest_panel()
    snap = ingest_job.snapshot()
    cid_done = snap["result"].get("corpus_id") if snap["status"] == "done" else None
    if cid_done and st.session_state.get(INGESTED) != ingest_job.id:
        st.session_state[INGESTED] = ingest_job.id
        state.set_corpus(cid_done)
        st.toast(f"Corpus {cid_done} ready", icon=":material/check_circle:")

# -- the current corpus: its report and rejected rows ----------------------------
# The report of the corpus made from the file on screen; when that file is not ingested yet
# (with any settings), no older corpus's report is shown under it.
cid = state.current_corpus()
if path is not None:
    made = corpus_from_file(ws, path)
    if made is None:
        cid = None
        if not (ingest_job is not None and not ingest_job.finished):
            st.caption(":material/info: This file is not ingested yet: choose its fields and press **Ingest**.")
    elif cid is None or ws.manifest(cid).sha256 != ws.manifest(made).sha256:
        cid = made
if cid is not None:
    with guard("ingest report"):
        st.divider()
        report = corpus.load_report(ws, cid)
        st.subheader(f"Ingest report · `{cid}`")
        st.caption(f"{md(report.source)} · {md(report.format)} · {md(report.encoding)} · text from "
                   + ", ".join(md(f) for f in report.text_fields))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Rows read", f"{report.rows_read:,}")
        m2.metric("Kept", f"{report.kept:,}")
        m3.metric("Rejected", f"{report.rejected:,}")
        m4.metric("Duplicates", f"{report.duplicates:,}")
        for note in report.notes:
            st.info(md(note), icon=":material/info:")
        if report.rejected:
            rej = corpus.load_rejections(ws, cid)
            with st.expander(f"Rejected rows ({len(rej):,})"):
                st.dataframe(rej.head(1000), hide_index=True, width="stretch", key="data_rejections")
            st.download_button(
                "Download rejected rows (CSV)",
                rej.to_csv(index=False).encode("utf-8"),
                file_name=f"{cid}-rejections.csv",
                mime="text/csv",
                key="data_rejections_download",
            )
        st.page_link("views/pipeline.py", label="Next: cluster it on the Pipeline page", icon=":material/arrow_forward:")
