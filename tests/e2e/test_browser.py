"""A real browser (Debian chromium via Playwright) against `streamlit run app.py`.

Upload a CSV, ingest it, run a fast pipeline (tfidf encoder, k-means k=3, PCA map:
the default MiniLM + UMAP map spends most of a CI minute loading the model and
compiling UMAP), see the map and the cluster table, draw a sample and download it
as CSV, then check the downloaded rows.

The README screenshots are made by ``bench/screenshots.py``, not by a test.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from e2ehelpers import chromium_or_skip
from pagedriver import (
    drag_box_over_map,
    draw_sample,
    goto,
    launch_fast_run,
    upload_and_ingest,
    wait_idle,
    wait_map,
    write_corpus,
)

from ui.devserver import app_server, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with a temporary workspace; yields the URL."""
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TEXTCLUSTER_NO_WARMUP": "1"}  # the test runs no UMAP
    with app_server(tmp_path / "workspace", env=env, log_path=tmp_path / "streamlit.log") as url:
        yield url


def test_upload_cluster_explore_sample_export(server, tmp_path):
    chromium_or_skip()

    data = write_corpus(tmp_path / "support.csv")
    with browser_page(1400, 1600, accept_downloads=True) as page:
        page.goto(server)
        page.get_by_role("heading", name="Data", exact=True).wait_for()

        # -- Data: upload and ingest (an empty workspace opens on the demo corpus, ingesting it)
        upload_and_ingest(page, data)

        # -- Pipeline: a fast configuration, launched in the background
        goto(page, "Pipeline")
        launch_fast_run(page, timeout_ms=int(os.environ.get("E2E_JOB_TIMEOUT_MS", "120000")))
        assert page.get_by_text("Device").count() >= 1

        # -- Explore: the map and the cluster table
        goto(page, "Explore")
        drawn = wait_map(page)
        assert drawn["points"] == 120 and len(drawn["traces"]) == 3
        page.get_by_text("Nothing selected.").wait_for()
        # Drag a box over the whole plot: the table below lists the documents inside.
        drag_box_over_map(page)
        page.get_by_text("documents selected").wait_for()
        wait_idle(page)
        page.get_by_role("tab", name="Clusters").click()
        page.get_by_text("Nearest the centre").wait_for()
        assert page.locator('[data-testid="stDataFrame"]').count() >= 1

        # -- Sample: draw 30 rows
        draw_sample(page, 30)

        # -- Export: download the sample as CSV and check its rows
        goto(page, "Export")
        # the file is built by its Prepare button, then the download button serves its bytes
        page.get_by_role("button", name="Prepare Sample as CSV").click()
        wait_idle(page)
        ready = page.get_by_role("button", name=re.compile(r"Sample as CSV \("))
        ready.wait_for()
        with page.expect_download() as dl:  # the first click downloads
            ready.click()
        body = Path(dl.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert len(rows) == 30
        assert {"doc_id", "cluster", "text", "sample_id"} <= set(rows[0])
        per_cluster = {r["cluster"] for r in rows}
        assert len(per_cluster) == 3

        goto(page, "Evaluate")
        page.get_by_text("ACC").first.wait_for()
