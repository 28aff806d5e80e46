"""Export page: example queries, preview, refused SQL, download buttons."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from apphelpers import assert_clean, open_page, shown
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from textcluster.config import SamplingPolicy
from textcluster.describe.sampling import sample
from textcluster.query import export

SOURCES = (("export_dl_sql", "Query result"), ("export_dl_run", "Run"), ("export_dl_sample", "Sample"))


@pytest.fixture
def media(monkeypatch):
    """The bytes of every file the page hands to Streamlit's media storage, by file id."""
    files = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        fid = real(self, path_or_data, mimetype, kind, filename)
        files[fid] = self._files_by_id[fid].content
        return fid

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return files


def _data(at, media, label):
    """The bytes behind the download button whose label starts with ``label``."""
    b = next(b for b in at.download_button if b.label.startswith(label))
    assert not b.proto.HasField("deferred_file_id")  # the bytes exist before the first click
    return media[b.proto.url.rsplit("/", 1)[1].split(".")[0]]


def _rows(data, fmt):
    if fmt == "csv":
        return len(pd.read_csv(io.BytesIO(data)))
    if fmt == "jsonl":
        return len(data.decode().splitlines())
    return pq.read_table(io.BytesIO(data)).num_rows


def test_queries_preview_and_downloads(app_ws, app_run):
    at = open_page("views/export.py")
    assert_clean(at)
    preview = at.dataframe[0].value
    assert sorted(preview["size"]) == [20, 20, 20]  # the first example: clusters by size
    at.selectbox(key="export_example").set_value("Documents with their cluster").run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 60
    labels = [b.label for b in at.button]
    for what in ("Query result", "Run"):
        assert f"Prepare {what} as CSV" in labels
    assert [b.label for b in at.download_button].count("Provenance (JSON)") == 2
    assert any("stop at" in c.value for c in at.caption)  # the download limits are stated


def test_every_download_works_on_the_first_click(app_ws, app_run, media):
    smp = sample(app_ws, app_run, SamplingPolicy(size=6, allocation="equal")).sample_id
    at = open_page("views/export.py")
    at.selectbox(key="export_example").set_value("Documents with their cluster").run()
    want = {"export_dl_sql": 60, "export_dl_run": 60, "export_dl_sample": 6}
    for key, what in SOURCES:
        for fmt in export.FORMATS:
            at.selectbox(key=f"{key}_fmt").set_value(fmt).run()
            at.button(key=f"{key}_prepare").click().run()
            assert_clean(at)
            data = _data(at, media, f"{what} as {fmt.upper()}")
            assert _rows(data, fmt) == want[key], (key, fmt)
            at.download_button(key=f"{key}_dl").click().run()  # the click itself reruns nothing amiss
            assert_clean(at)
            assert _data(at, media, f"{what} as {fmt.upper()}") == data
    provs = [json.loads(media[b.proto.url.rsplit("/", 1)[1].split(".")[0]])
             for b in at.download_button if b.label == "Provenance (JSON)"]
    assert [p["source"] for p in provs] == ["sql", "run", "sample"]
    assert provs[2]["sample_id"] == smp


def test_a_failed_download_is_shown(app_ws, app_run, monkeypatch):
    monkeypatch.setattr(export, "DOWNLOAD_MAX_BYTES", 1000)
    at = open_page("views/export.py")
    at.button(key="export_dl_run_prepare").click().run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("Run download:") and "max_bytes" in at.error[0].value
    assert not any(b.label.startswith("Run as") for b in at.download_button)
    at.run()  # still shown on the next rerun
    assert at.error and at.error[0].value.startswith("Run download:")


def test_refused_sql_is_a_readable_error(app_ws, app_run):
    at = open_page("views/export.py")
    at.text_area(key="export_sql").set_value("COPY docs TO '/tmp/x.csv'").run()
    assert not at.exception
    assert at.error and shown(at.error[0].value).startswith("query:")
    # The rest of the page is still there.
    assert any(b.label == "Prepare Run as CSV" for b in at.button)
