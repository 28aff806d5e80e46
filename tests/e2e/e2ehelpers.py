"""Where the browser is and how it is started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def chromium_or_skip() -> None:
    """Skip when Debian chromium is missing, except on CI (CI=true), where that is a failure."""
    if Path(CHROMIUM).is_file():
        return
    msg = f"{CHROMIUM} is missing: `apt-get install -y chromium` (the CI script does)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)
