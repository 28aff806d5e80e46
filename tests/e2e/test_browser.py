"""A real browser (Debian chromium via Playwright) against `streamlit run app.py`.

Upload a CSV, ingest it, run a fast pipeline (tfidf encoder, k-means k=3, PCA map:
the default MiniLM + UMAP map spends most of a CI minute loading the model and
compiling UMAP), see the map and the cluster table, draw a sample and download it
as CSV, then check the downloaded rows.

Screenshots of every page go to docs/img/ when TEXTCLUSTER_SCREENSHOTS=1 (for the
README), else to a temporary folder.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import time
from pathlib import Path

import pytest
from e2ehelpers import CHROMIUM, CHROMIUM_ARGS, chromium_or_skip

from ui.devserver import app_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path):
    """`streamlit run app.py` on a free port with a temporary workspace; yields the URL."""
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TEXTCLUSTER_NO_WARMUP": "1"}  # the test runs no UMAP
    if os.environ.get("TEXTCLUSTER_SCREENSHOTS") == "1":
        env["HOME"] = str(tmp_path)  # the sidebar then shows the workspace as ~/workspace, not a temp path
    with app_server(tmp_path / "workspace", env=env, log_path=tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: docs/img/ with TEXTCLUSTER_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("TEXTCLUSTER_SCREENSHOTS") == "1":
        d = ROOT / "docs" / "img"
    else:
        d = tmp_path / "shots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_corpus(path: Path, per_topic: int = 40, seed: int = 0) -> Path:
    """A CSV (id, text, label) of short texts on three topics with some shared filler words."""
    rng = random.Random(seed)
    topics = {
        "sport": ["football", "goal", "match", "team", "league", "striker", "referee", "season", "coach", "stadium"],
        "code": ["python", "function", "bug", "compiler", "variable", "debugger", "module", "test", "import", "class"],
        "baking": ["recipe", "oven", "flour", "sugar", "butter", "dough", "bread", "cake", "yeast", "whisk"],
    }
    filler = ["the", "a", "my", "our", "today", "really", "please", "help", "with", "about"]
    rows = []
    for label, words in topics.items():
        for i in range(per_topic):
            picked = rng.sample(words, 4) + rng.sample(filler, 2)
            rng.shuffle(picked)
            rows.append({"id": f"{label}-{i}", "text": " ".join(picked), "label": label})
    rng.shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        wr.writeheader()
        wr.writerows(rows)
    return path


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit select box labelled ``label``."""
    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.locator('[role="option"]').filter(has_text=re.compile(f"^{re.escape(option)}$")).first
    for _ in range(5):  # a rerun arriving just then can close the list: open it again
        box.click()
        try:
            item.click(timeout=3000)
        except Exception:  # noqa: BLE001
            page.keyboard.press("Escape")
            continue
        if box.input_value() == option:
            return
    raise AssertionError(f"could not choose {option!r} in {label!r}; it shows {box.input_value()!r}")


def snap(page, path: Path) -> None:
    """A screenshot with the mouse out of the way (no tooltip over the page)."""
    page.mouse.move(1, 1)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def goto(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
    wait_idle(page)


def wait_idle(page, timeout: float = 60) -> None:
    """Wait until Streamlit is not running the script any more."""
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        page.wait_for_timeout(200)


def test_upload_cluster_explore_sample_export(server, shots, tmp_path):
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    data = write_corpus(tmp_path / "support.csv")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
            page.set_default_timeout(60_000)
            page.goto(server)
            page.get_by_role("heading", name="Data", exact=True).wait_for()

            # -- Data: upload and ingest (an empty workspace opens on the demo corpus)
            page.get_by_text("CC BY 4.0").first.wait_for()
            page.get_by_text("Upload a file").click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(data))
            page.get_by_role("button", name="Ingest").wait_for()
            wait_idle(page)
            choose(page, "Label field (optional, for evaluation only)", "label")
            wait_idle(page)
            page.get_by_role("button", name="Ingest").click()
            page.get_by_text("Ingest report").wait_for()
            wait_idle(page)
            snap(page, shots / "data.png")

            # -- Pipeline: a fast configuration, launched in the background
            goto(page, "Pipeline")
            choose(page, "Encoder", "tfidf")
            wait_idle(page)
            choose(page, "2-D map", "pca")
            wait_idle(page)
            k = page.get_by_label("Clusters (k)")
            k.fill("3")
            k.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Launch").click()
            page.get_by_text("is ready").wait_for(timeout=int(os.environ.get("E2E_JOB_TIMEOUT_MS", "120000")))
            wait_idle(page)
            assert page.get_by_text("Device").count() >= 1
            snap(page, shots / "pipeline.png")

            # -- Explore: the map and the cluster table
            goto(page, "Explore")
            chart = page.locator('[data-testid="stVegaLiteChart"]').first
            chart.locator("canvas, svg").first.wait_for()
            page.get_by_text("No box selected").wait_for()
            snap(page, shots / "explore.png")
            # Drag a box over the whole plot: the table below lists the documents inside.
            box = chart.locator("canvas, svg").first.bounding_box()
            page.mouse.move(box["x"] + 5, box["y"] + 5)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
            page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5, steps=5)
            page.mouse.up()
            page.get_by_text("documents in the box").wait_for()
            wait_idle(page)
            snap(page, shots / "explore_box.png")
            page.get_by_role("tab", name="Clusters").click()
            page.get_by_text("Nearest the centre").wait_for()
            assert page.locator('[data-testid="stDataFrame"]').count() >= 1
            snap(page, shots / "explore_clusters.png")

            # -- Sample: draw 30 rows
            goto(page, "Sample")
            n = page.get_by_label("Sample size (N)")
            n.fill("30")
            n.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Draw sample").click()
            page.get_by_text("30 rows").first.wait_for()
            wait_idle(page)
            snap(page, shots / "sample.png")

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
            snap(page, shots / "export.png")

            goto(page, "Evaluate")
            page.get_by_text("ACC").first.wait_for()
            snap(page, shots / "evaluate.png")
        finally:
            browser.close()


@pytest.mark.timeout(2400)
def test_demo_corpus_screenshots(server, shots):
    """README screenshots on the bundled demo corpus with the default pipeline (k=77, one per
    intent). Minutes on a CPU (MiniLM on 10,003 texts, UMAP map), so it only runs on demand:
    TEXTCLUSTER_SCREENSHOTS=1."""
    if os.environ.get("TEXTCLUSTER_SCREENSHOTS") != "1":
        pytest.skip("README screenshots are made on demand: TEXTCLUSTER_SCREENSHOTS=1")
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(server)
            page.get_by_text("CC BY 4.0").first.wait_for()
            page.get_by_role("button", name="Ingest").click()
            page.get_by_text("Ingest report").wait_for()
            wait_idle(page)
            snap(page, shots / "demo_data.png")
            goto(page, "Pipeline")
            k = page.get_by_label("Clusters (k)")
            k.fill("77")
            k.press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Launch").click()
            page.get_by_text("is ready").wait_for(timeout=1_800_000)
            wait_idle(page)
            snap(page, shots / "demo_pipeline.png")
            goto(page, "Explore")
            page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').first.wait_for()
            wait_idle(page)
            snap(page, shots / "demo_explore.png")
            page.get_by_role("tab", name="Clusters").click()
            page.get_by_text("Nearest the centre").wait_for()
            snap(page, shots / "demo_explore_clusters.png")
            goto(page, "Evaluate")
            page.get_by_text("ACC").first.wait_for()
            snap(page, shots / "demo_evaluate.png")
        finally:
            browser.close()
