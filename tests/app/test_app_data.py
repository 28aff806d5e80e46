"""Data page: upload, field choice, ingest report, rejected rows, demo corpus, errors."""

from __future__ import annotations

from pathlib import Path

from apphelpers import assert_clean, open_page, shown

from textcluster import jobs
from textcluster.ingest import corpus


def upload(at, name, data, mime="text/csv"):
    at.radio(key="data_source").set_value("Upload a file").run()
    at.file_uploader(key="data_upload").set_value((name, data, mime))
    return at.run()


def test_upload_preview_ingest_and_report(app_ws, topic_csv):
    at = open_page()
    assert_clean(at)
    assert at.title[0].value == "Data"
    at = upload(at, "topics.csv", topic_csv.read_bytes() + b'bad-row,"",x\n')
    assert_clean(at)
    # The bytes are saved into the workspace before anything else.
    saved = list((app_ws.root / "uploads").glob("*/topics.csv"))
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"id,text,label")
    preview = at.dataframe[0].value
    assert list(preview.columns)[:4] == ["row", "id", "text", "label"] and len(preview) == 20
    fields = at.multiselect(key="data_text_" + saved[0].parent.name[:12])
    assert fields.value == ["text"] and set(fields.options) >= {"id", "text", "label"}
    at.selectbox(key="data_id_" + saved[0].parent.name[:12]).set_value("id")
    at.selectbox(key="data_label_" + saved[0].parent.name[:12]).set_value("label")
    at.button(key="data_ingest").click().run()
    assert_clean(at)
    # Ingest runs as a background job; the page follows it and shows the report when done.
    snap = jobs.get_manager(app_ws).latest("ingest").wait(60)
    assert snap["status"] == "done", snap["error"]
    at.run()
    assert_clean(at)
    [m] = [c for c in app_ws.list("corpus") if c.source == "topics.csv"]  # (and the demo)
    assert snap["result"]["corpus_id"] == m.id
    report = corpus.load_report(app_ws, m.id)
    assert report.kept == 60 and report.rejected == 1
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Kept"] == "60" and metrics["Rejected"] == "1"
    assert at.dataframe[-1].value["row"].tolist() == [61]
    dl = at.download_button(key="data_rejections_download")  # a missing button raises KeyError here
    assert dl.label == "Download rejected rows (CSV)" and dl.proto.url.endswith(".csv")
    docs = corpus.load_docs(app_ws, m.id)
    assert {"source_id", "label"} <= set(docs.columns)


def test_unreadable_upload_is_a_readable_error(app_ws):
    at = open_page()
    at = upload(at, "broken.parquet", b"this is not parquet", "application/octet-stream")
    assert not at.exception
    assert at.error and "broken.parquet" in shown(at.error[0].value)
    assert "Traceback" not in at.error[0].value


def test_demo_corpus_shows_its_credit_and_preview(app_ws):
    at = open_page()  # an empty workspace opens on the demo corpus
    assert at.radio(key="data_source").value == "Demo corpus"
    assert_clean(at)
    assert any("CC BY 4.0" in c.value for c in at.caption)
    assert at.multiselect(key="data_text_demo").value == ["text"]
    assert at.selectbox(key="data_label_demo").value == "label"
    assert len(at.dataframe[0].value) == 20
    # ... and ingests it at once: the report follows without pressing Ingest (README, line 4).
    snap = jobs.get_manager(app_ws).latest("ingest").wait(120)
    assert snap["status"] == "done", snap["error"]
    at.run()
    assert_clean(at)
    assert {x.label: x.value for x in at.metric}["Kept"] == "10,003"
    assert any("Ingest report" in h.value for h in at.subheader)
    # Only a workspace where nothing was ever ingested does that: a new session does not again.
    open_page()
    assert len(jobs.get_manager(app_ws).list("ingest")) == 1


def test_a_running_ingest_is_shown_after_a_reload_and_can_be_cancelled(app_ws):
    import threading

    from textcluster.progress import Meter, check_cancel

    started = threading.Event()

    def slow(progress, cancel, on_stage):
        on_stage("ingest", "running", {})
        m = Meter("ingest", 10_000, progress)
        for i in range(10_000):
            check_cancel(cancel, "ingest")
            m.update(i + 1)
            started.set()
            cancel.wait(0.05)
        return {}

    job = jobs.get_manager(app_ws).submit("ingest", {"t": 1}, slow, stages=["ingest"], lane="io")
    assert started.wait(10)
    at = open_page()  # a new session, as after a reload
    assert_clean(at)
    [bar] = at.get("progress")
    assert "ingest · running" in bar.proto.text
    at.button(key="data_cancel").click().run()
    assert job.wait(10)["status"] == "cancelled"


def test_the_uploader_takes_every_readable_extension_from_the_readers_table(app_ws):
    from streamlit.elements.lib.file_uploader_utils import enforce_filename_restriction

    from textcluster.ingest.readers import EXTENSIONS, GZIP_EXTENSION, upload_types

    at = open_page()
    at.radio(key="data_source").set_value("Upload a file").run()
    allowed = at.file_uploader(key="data_upload").allowed_type
    assert allowed == upload_types() == [*EXTENSIONS, ".gz"]  # no MIME family: every name is checked
    for ext in EXTENSIONS:  # .tab, .pq and .text were readable but not uploadable
        enforce_filename_restriction(f"data{ext}", allowed)
        enforce_filename_restriction(f"data{ext}{GZIP_EXTENSION}", allowed)


def test_a_tab_upload_is_read_as_tsv(app_ws):
    at = upload(open_page(), "notes.tab", b"id\ttext\n1\tthe card was declined\n2\ta fee for transfers\n",
                "text/tab-separated-values")
    assert_clean(at)
    [saved] = (app_ws.root / "uploads").glob("*/notes.tab")
    assert at.multiselect(key="data_text_" + saved.parent.name[:12]).value == ["text"]
    assert at.dataframe[0].value["text"].tolist() == ["the card was declined", "a fee for transfers"]


def test_the_text_field_guess_is_the_library_guess(app_ws):
    """A chat JSONL: the page once guessed `id`; it now agrees with ingest and the CLI."""
    chat = Path(__file__).parents[1] / "data" / "chat.jsonl"
    at = upload(open_page(), "chat.jsonl", chat.read_bytes(), "application/jsonl")
    assert_clean(at)
    [saved] = (app_ws.root / "uploads").glob("*/chat.jsonl")
    guess = at.multiselect(key="data_text_" + saved.parent.name[:12]).value
    assert guess == ["request.messages[0].content"] == [corpus.suggest_text_field(chat)]
    assert corpus.ingest(chat, None, app_ws).text_fields == guess  # what the CLI picks


def test_no_text_field_guessed_leaves_the_choice_to_the_user(app_ws):
    at = upload(open_page(), "numbers.jsonl", b'{"a": 1, "b": [2]}\n{"a": 3, "b": [4]}\n', "application/jsonl")
    assert_clean(at)
    [saved] = (app_ws.root / "uploads").glob("*/numbers.jsonl")
    assert at.multiselect(key="data_text_" + saved.parent.name[:12]).value == []
    assert at.button(key="data_ingest").disabled
    assert any("pick the text field" in i.value for i in at.info)


def test_a_new_session_goes_on_with_the_upload_kept_in_the_workspace(app_ws, app_corpus, topic_csv):
    """After a reload the uploader is empty: the page works on the file kept in the workspace,
    with the fields chosen for it, and shows no other corpus's report under it. (Moving between
    pages in one session is a browser test: tests/e2e/test_explore_map.py.)"""
    import json

    from textcluster.ingest.uploads import save_upload
    from ui.state import STATE_FILE

    data = topic_csv.read_bytes() + b"extra,a new row of text,x\n"  # not the ingested bytes
    path = save_upload(app_ws, "topics.csv", data)
    sha = path.parent.name[:12]
    (app_ws.root / STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (app_ws.root / STATE_FILE).write_text(json.dumps({
        "corpus": app_corpus, "run": None,
        "upload": {"path": str(path.relative_to(app_ws.root)), "name": "topics.csv", "size": len(data)},
        "widgets": {"data_source": "Upload a file", f"data_label_{sha}": "label"},
    }))
    at = open_page()
    assert_clean(at)
    assert at.radio(key="data_source").value == "Upload a file"
    assert any("Working on topics" in i.value for i in at.info)
    assert at.selectbox(key="data_label_" + sha).value == "label"
    assert len(at.dataframe[0].value) == 20  # the preview of that file
    assert not any("Ingest report" in h.value for h in at.subheader)  # not the other corpus's
    assert any("not ingested yet" in c.value for c in at.caption)
    at.button(key="data_forget_upload").click().run()
    assert not any("Working on" in i.value for i in at.info)
