"""Where the browser is and how it is started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ui.devserver import CHROMIUM, CHROMIUM_ARGS

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium_or_skip"]


def chromium_or_skip() -> None:
    """Skip when Debian chromium is missing, except on CI (CI=true), where that is a failure."""
    if Path(CHROMIUM).is_file():
        return
    msg = f"{CHROMIUM} is missing: `apt-get install -y chromium` (the CI script does)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)
