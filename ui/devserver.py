"""Start the app in a subprocess and wait until it answers: for browser tests and benchmarks.

Not used by the app itself. ``app_server`` runs ``streamlit run app.py`` on a free local port
with a given workspace, waits for ``/_stcore/health`` to say ``ok`` and yields the URL; on exit
the server is stopped (terminate, then kill after 10 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Debian's chromium, which the browser tests and bench/app.py drive through Playwright.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(
    workspace: Path, *, env: dict[str, str] | None = None, log_path: Path | None = None, timeout: float = 60
) -> Iterator[str]:
    """``streamlit run app.py`` with ``TEXTCLUSTER_WORKSPACE=workspace``; yields its URL once healthy.

    ``env``: extra environment variables. ``log_path``: where the server's output goes
    (discarded when None); a server that exits or is not healthy within ``timeout`` seconds
    raises ``RuntimeError`` with that log.
    """
    port = free_port()
    full_env = {**os.environ, "TEXTCLUSTER_WORKSPACE": str(workspace), **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                text = ""
                if log_path:
                    log.flush()  # type: ignore[union-attr]
                    text = Path(log_path).read_text(errors="replace")
                raise RuntimeError("streamlit did not start:\n" + text)
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def browser_page(
    width: int = 1400, height: int = 1000, *, timeout_ms: int = 60_000, accept_downloads: bool = False
) -> Iterator[Any]:
    """A page of a headless :data:`CHROMIUM` driven through Playwright (a dev dependency), with
    a ``width`` x ``height`` viewport and ``timeout_ms`` as its default timeout; the browser is
    closed on exit, whatever happened."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=accept_downloads)
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
