"""Explore map paint: seconds from navigation to the map fully drawn, in Chromium, vs the home page.

    OMP_NUM_THREADS=2 .venv/bin/python bench/explore_paint.py --rows 100000 --json
    OMP_NUM_THREADS=2 .venv/bin/python bench/explore_paint.py --rows 1000000 --json

Builds (once per ``--workdir``, no encoding) a corpus, embedding and run of ``--rows`` documents
in ``--k`` clusters of Zipf-like sizes (Gaussian blobs in 2-D as the map, 16-dim centres) and
its description, starts ``streamlit run app.py`` on it (ui/devserver.py, a free local port)
and drives Debian chromium through Playwright:

1. the home page (Data), cold: from ``page.goto`` until the page's heading is shown and the
   script has finished (no running-status widget);
2. the Explore page, cold (nothing in the app's ``st.cache_data``): from ``page.goto`` until
   the map is drawn, i.e. Plotly's ``plotly_afterplot`` event fired on the map with every
   WebGL trace laid out, then one animation frame; ``points_drawn`` is the sum of the drawn
   WebGL traces' lengths as the browser holds them (``gd._fullData[i]._length``);
3. both again in new tabs (warm: the app's server caches; each tab is a new browser context, so
   the browser fetches and compiles the app's scripts again).

Prints a table, then (``--json``) one JSON line, the last:
``{"rows": N, "points_drawn": ..., "paint_s": ..., "home_s": ..., "warm_paint_s": ...,
"warm_home_s": ..., "task_s": ..., "warm_task_s": ...}`` (``paint_s``/``home_s``: the cold
visits; ``task_s``: the seconds the Explore tab's renderer spent on tasks until the map was
drawn, Chrome's ``TaskDuration``, to compare two versions of the map on a busy machine).
The app server inherits the environment, e.g. ``TEXTCLUSTER_MAP_PLAIN_POINTS=0`` to time the
typed-array figure. Needs /usr/bin/chromium; reads
nothing from ../shared. The machine's load matters: the numbers in docs/benchmarks.md say what
else was running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # pagedriver: the synthetic run the browser tests use
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ui.devserver import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402

#: Injected before the page's own scripts: records when the map (the first Plotly chart with
#: WebGL traces) has fired plotly_afterplot with its traces laid out, and how many points it holds.
PAINT_PROBE = """
window.__tcPaint = null;
(function watch() {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (gd && gd.on && !gd.__tcWatched) {
    gd.__tcWatched = true;
    const done = () => {
      const gl = (gd._fullData || []).filter(t => t.type === 'scattergl' && t.visible === true);
      if (!gl.length || window.__tcPaint) return;
      const n = gl.reduce((s, t) => s + (t._length || 0), 0);
      requestAnimationFrame(() => requestAnimationFrame(() => {
        if (!window.__tcPaint) window.__tcPaint = {t: performance.now(), points: n};
      }));
    };
    gd.on('plotly_afterplot', done);
    done();  // when the first draw finished before the listener was attached
  }
  if (!window.__tcPaint) setTimeout(watch, 10);
})();
"""


def build(ws_root: Path, rows: int, k: int, seed: int = 0) -> str:
    """The synthetic run of ``rows`` docs in ``k`` clusters (tests/e2e/pagedriver.py
    ``synthetic_run``, with its description), written once per folder; its run id."""
    from pagedriver import synthetic_run

    from textcluster.describe import clusters as describe
    from textcluster.store import Workspace

    ids_file = ws_root / "bench_run_id.txt"
    if ids_file.is_file():
        return ids_file.read_text().strip()
    ws = Workspace(ws_root)
    rid = synthetic_run(ws, rows, k, seed=seed)
    describe.describe(ws, rid)  # as the pipeline does after clustering
    ids_file.write_text(rid)
    return rid


def _idle(page, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    page.wait_for_timeout(100)
    while page.locator('[data-testid="stStatusWidget"]').count():
        if time.monotonic() > deadline:
            raise TimeoutError("the app script did not finish")
        page.wait_for_timeout(20)


def home(browser, url: str, timeout_s: float) -> float:
    """Seconds from navigation to the home page drawn (heading shown, script finished)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name="Data", exact=True).wait_for(timeout=timeout_s * 1000)
    page.get_by_text("Ingest report").first.wait_for(timeout=timeout_s * 1000)
    _idle(page, timeout_s)
    seconds = time.perf_counter() - t
    page.close()
    return seconds


def paint(browser, url: str, timeout_s: float) -> tuple[float, int, float]:
    """Seconds from navigation to the Explore map drawn, the points it drew, and the seconds
    the page's renderer spent on tasks meanwhile (Chrome's ``TaskDuration``: its CPU work, which
    the machine's load inflates less than the wall clock)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.add_init_script(PAINT_PROBE)
    page.goto(f"{url}/explore")
    page.wait_for_function("window.__tcPaint !== null", timeout=timeout_s * 1000, polling=50)
    probe = page.evaluate("window.__tcPaint")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    # performance.now() counts from the navigation's start (timeOrigin) in the page's own clock
    return probe["t"] / 1000.0, int(probe["points"]), float(metrics.get("TaskDuration", float("nan")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000, help="documents in the run (default 100,000)")
    ap.add_argument("--k", type=int, default=150, help="clusters (default 150)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the built workspace here and reuse it (default: a temporary folder)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for a page (default 600)")
    ap.add_argument("--json", action="store_true", help="end with one JSON line")
    a = ap.parse_args()
    if a.rows < 1 or a.k < 1:
        raise SystemExit("error: --rows and --k should be >= 1")
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"error: {CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tc-bench-paint-") as tmp:
        ws_root = (a.workdir or Path(tmp)) / f"ws-{a.rows}-{a.k}"
        t0 = time.perf_counter()
        build(ws_root, a.rows, a.k)
        t_build = time.perf_counter() - t0
        env = {"TEXTCLUSTER_NO_WARMUP": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        with app_server(ws_root, env=env, log_path=Path(tmp) / "streamlit.log", timeout=120) as url, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                home_s = home(browser, url, a.timeout)
                paint_s, points, task_s = paint(browser, url, a.timeout)
                warm_home_s = home(browser, url, a.timeout)
                warm_paint_s, warm_points, warm_task_s = paint(browser, url, a.timeout)
            finally:
                browser.close()
    load = os.getloadavg()[0]
    rows = [
        ("build the run (or reuse it)", f"{t_build:.1f} s"),
        ("home page, cold", f"{home_s:.2f} s"),
        ("Explore map drawn, cold", f"{paint_s:.2f} s ({points:,} points)"),
        ("home page, warm", f"{warm_home_s:.2f} s"),
        ("Explore map drawn, warm", f"{warm_paint_s:.2f} s ({warm_points:,} points)"),
        ("paint / home (cold, warm)", f"{paint_s / home_s:.2f}, {warm_paint_s / warm_home_s:.2f}"),
        ("Explore renderer tasks (cold, warm)", f"{task_s:.2f} s, {warm_task_s:.2f} s"),
        ("load average (1 min) at the end", f"{load:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if a.json:
        print(json.dumps({"rows": a.rows, "points_drawn": points, "paint_s": round(paint_s, 3),
                          "home_s": round(home_s, 3), "warm_paint_s": round(warm_paint_s, 3),
                          "warm_home_s": round(warm_home_s, 3), "task_s": round(task_s, 3),
                          "warm_task_s": round(warm_task_s, 3)}))


if __name__ == "__main__":
    main()
