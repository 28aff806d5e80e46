"""AppTest helpers: open a page of app.py, check it shows no error."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig

#: A pipeline that needs no model and no UMAP compile: seconds on 60 rows.
FAST = {
    "encoder": EncoderConfig(name="tfidf"),
    "reducer": ReducerConfig(projection="pca"),
    "clusterer": ClustererConfig(k=3),
}

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str = "views/data.py", timeout: float = 60) -> AppTest:
    """Run app.py, then switch to ``page`` (a path relative to the repository root)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page != "views/data.py":
        at.switch_page(page).run()
    return at


def shown(body: str) -> str:
    """A Markdown body as the user reads it: user-controlled text is escaped (ui/text.md), so
    the body holds ``broken\\.parquet`` where the page shows ``broken.parquet``."""
    return re.sub(r"\\(.)", r"\1", body)


def assert_clean(at: AppTest) -> None:
    """No uncaught exception and no st.error on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
