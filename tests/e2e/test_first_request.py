"""Browser test: the first request to a freshly started server is a page's URL (/explore).

Streamlit runs an app with a ``pages/`` folder beside its main script as a legacy multipage
app until a script calls ``st.navigation``; when the app's pages lived in ``pages/``, that
first request ran pages/explore.py alone: a sidebar of file names (``app``, ``compare``...), no
restored place, no workspace caption. The pages now live in ``views/``. Its own server: the module servers of the other browser
tests are opened on the home page first.
"""

from __future__ import annotations

import pytest
from e2ehelpers import chromium_or_skip
from pagedriver import synthetic_run, wait_idle, wait_map

from textcluster.store import Workspace
from ui.devserver import app_server, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_first_request_to_explore_runs_the_apps_navigation(tmp_path):
    from textcluster.describe import clusters as describe

    chromium_or_skip()
    ws = Workspace(tmp_path / "workspace")
    rid = synthetic_run(ws, 400, 6)
    describe.describe(ws, rid)
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TEXTCLUSTER_NO_WARMUP": "1"}
    with app_server(ws.root, env=env, log_path=tmp_path / "streamlit.log") as url, browser_page(1400, 1000) as page:
        page.goto(f"{url}/explore")
        page.get_by_role("heading", name="Explore", exact=True).wait_for()
        assert wait_map(page)["points"] == 400
        wait_idle(page)
        nav = page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        shown = [n.split("\n")[-1].strip() for n in nav]
        assert shown == ["Data", "Pipeline", "Explore", "Compare", "Sample", "Export", "Evaluate", "Labels",
                         "Workspace"], nav
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "Workspace:" in sidebar and f"Run: {rid}" in sidebar  # app.py ran around the page
        assert page.url.endswith("/explore") and page.title() == "textcluster"
