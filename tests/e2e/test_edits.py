"""A real browser renames and merges clusters in Explore, then downloads the run: the export
carries the new names (Debian chromium via Playwright against `streamlit run app.py`)."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from e2ehelpers import chromium_or_skip
from pagedriver import goto, launch_fast_run, upload_and_ingest, wait_idle, write_corpus

from ui.devserver import app_server, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with a temporary workspace; yields the URL."""
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TEXTCLUSTER_NO_WARMUP": "1"}
    with app_server(tmp_path / "workspace", env=env, log_path=tmp_path / "streamlit.log") as url:
        yield url


def _tab(page, name: str, probe) -> None:
    """Open the tab ``name`` until ``probe`` (a locator inside it) shows: a rerun arriving just
    after the click can redraw the tabs on their first one."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        page.get_by_role("tab", name=name, exact=True).click()
        wait_idle(page)
        try:
            probe.wait_for(state="visible", timeout=5000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"tab {name!r} did not open")


def _multiselect(page, label: str, options: list[str]) -> None:
    """Pick ``options`` (prefixes of the option texts) in the multiselect labelled ``label``:
    the list stays open between picks; each pick may start a rerun, so the box is found again."""
    for option in options:
        for _ in range(5):
            box = page.get_by_role("combobox", name=label, exact=True)
            if box.get_attribute("aria-expanded") != "true":
                box.click(force=True)
            item = page.locator('[role="option"]').filter(has_text=re.compile(f"^{re.escape(option)}")).first
            try:
                item.click(timeout=5000)
                break
            except Exception:
                page.keyboard.press("Escape")
                wait_idle(page)
        wait_idle(page)
    page.keyboard.press("Escape")
    wait_idle(page)
    chosen = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).inner_text()
    for option in options:
        assert option.strip() in chosen, (option, chosen)


def test_rename_and_merge_in_the_app_then_export_carries_the_names(server, tmp_path):
    chromium_or_skip()

    data = write_corpus(tmp_path / "support.csv")
    with browser_page(1400, 1800, accept_downloads=True) as page:
        page.goto(server)
        page.get_by_role("heading", name="Data", exact=True).wait_for()
        upload_and_ingest(page, data)
        goto(page, "Pipeline")
        launch_fast_run(page, timeout_ms=int(os.environ.get("E2E_JOB_TIMEOUT_MS", "120000")))

        goto(page, "Explore")
        page.get_by_text("Curate: names, merge, split, drop").click()
        wait_idle(page)
        # -- rename cluster 0
        _tab(page, "Names", page.get_by_label("New name"))
        choose_prefix = page.get_by_role("combobox", name="Cluster", exact=True)
        choose_prefix.click()
        page.locator('[role="option"]').filter(has_text=re.compile(r"^0 · ")).first.click()
        wait_idle(page)
        box = page.get_by_label("New name")
        box.fill("Alpha topic")
        box.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Rename", exact=True).click()
        page.get_by_text("Renamed cluster 0 in version").wait_for()
        wait_idle(page)
        # -- merge clusters 1 and 2 under a name
        _tab(page, "Merge · split · drop", page.get_by_role("combobox", name="Clusters to merge", exact=True))
        _multiselect(page, "Clusters to merge", ["1 · ", "2 · "])
        name = page.get_by_label("Name of the merged cluster (optional)")
        name.fill("Merged pair")
        name.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Merge", exact=True).click()
        page.get_by_text("Merged 2 clusters into version").wait_for()
        wait_idle(page)
        # -- the history shows both edits
        _tab(page, "Versions", page.get_by_role("button", name="Go", exact=True))
        page.get_by_text("merge 1 + 2 as Merged pair").first.wait_for(state="attached")  # a grid cell

        # -- Export: the whole (edited) run as CSV carries the names
        goto(page, "Export")
        page.get_by_role("button", name="Prepare Run as CSV").click()
        wait_idle(page)
        ready = page.get_by_role("button", name=re.compile(r"Run as CSV \("))
        ready.wait_for()
        with page.expect_download() as dl:
            ready.click()
        body = Path(dl.value.path()).read_text(encoding="utf-8")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert len(rows) == 120
        assert "cluster_name" in rows[0]
        names = {r["cluster"]: r["cluster_name"] for r in rows}
        assert sorted(names.values()) == ["Alpha topic", "Merged pair"]
        assert sum(r["cluster_name"] == "Merged pair" for r in rows) == 80
