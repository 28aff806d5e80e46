"""Driving the Streamlit app in chromium through Playwright: shared by the browser test and
bench/screenshots.py (which is why nothing here imports pytest)."""

from __future__ import annotations

import csv
import random
import re
import time
from pathlib import Path


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


def upload_and_ingest(page, data: Path) -> None:
    """On the Data page: upload ``data``, pick ``label`` as the label field, ingest, and wait
    for the ingest report (an empty workspace opens on the demo corpus first)."""
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


def launch_fast_run(page, k: int = 3, timeout_ms: int = 120_000) -> None:
    """On the Pipeline page: tfidf, a PCA map, ``k`` clusters; launch and wait for the run."""
    choose(page, "Encoder", "tfidf")
    wait_idle(page)
    choose(page, "2-D map", "pca")
    wait_idle(page)
    box = page.get_by_label("Clusters (k)")
    box.fill(str(k))
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("is ready").wait_for(timeout=timeout_ms)
    wait_idle(page)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit select box labelled ``label``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.locator('[role="option"]').filter(has_text=re.compile(f"^{re.escape(option)}$")).first
    for _ in range(5):  # a rerun arriving just then can close the list: open it again
        box.click()
        try:
            item.click(timeout=3000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        if box.input_value() == option:
            return
    raise AssertionError(f"could not choose {option!r} in {label!r}; it shows {box.input_value()!r}")


def wait_idle(page, timeout: float = 60) -> None:
    """Wait until Streamlit is not running the script any more; AssertionError after ``timeout`` s.

    The first 300 ms give a rerun that an action has just triggered the time to start (and show
    its status widget); without them this could return before the rerun began.
    """
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the app was still running its script after {timeout:.0f} s")


def goto(page, title: str) -> None:
    """Open the page titled ``title`` from the sidebar and wait until it has rendered."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
    wait_idle(page)


def snap(page, path: Path) -> None:
    """A screenshot with the mouse out of the way (no tooltip over the page)."""
    page.mouse.move(1, 1)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
