"""AppTest helpers: open a page of app.py in a temporary workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str = "pages/data.py", timeout: float = 60) -> AppTest:
    """Run app.py, then switch to ``page`` (a path relative to the repository root)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page != "pages/data.py":
        at.switch_page(page).run()
    return at


def assert_clean(at: AppTest) -> None:
    """No uncaught exception and no st.error on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture
def app_ws(tmp_workspace):
    """The temporary workspace the app under test uses."""
    return tmp_workspace
