"""Export page: example queries, preview, refused SQL, download buttons."""

from __future__ import annotations

from apphelpers import assert_clean, open_page, shown


def test_queries_preview_and_downloads(app_ws, app_run):
    at = open_page("pages/export.py")
    assert_clean(at)
    preview = at.dataframe[0].value
    assert sorted(preview["size"]) == [20, 20, 20]  # the first example: clusters by size
    at.selectbox(key="export_example").set_value("Documents with their cluster").run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 60
    labels = [b.label for b in at.download_button]
    for what in ("Query result", "Run"):
        for fmt in ("CSV", "JSONL", "PARQUET"):
            assert f"{what} as {fmt}" in labels
    assert labels.count("Provenance (JSON)") == 2


def test_refused_sql_is_a_readable_error(app_ws, app_run):
    at = open_page("pages/export.py")
    at.text_area(key="export_sql").set_value("COPY docs TO '/tmp/x.csv'").run()
    assert not at.exception
    assert at.error and shown(at.error[0].value).startswith("query:")
    # The rest of the page is still there.
    assert any(b.label == "Run as CSV" for b in at.download_button)
