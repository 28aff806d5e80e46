"""Screenshots of the app for the README and docs/img/, taken with Debian chromium via Playwright.

    .venv/bin/python bench/screenshots.py                 # both sets, into docs/img/
    .venv/bin/python bench/screenshots.py --only demo     # the README's demo_*.png
    .venv/bin/python bench/screenshots.py --only pages --out /tmp/shots

Set ``demo`` (the README's): the bundled demo corpus (Banking77, 10,003 texts) with the
default pipeline (MiniLM, UMAP map) and k=77, one cluster per intent: demo_data.png,
demo_pipeline.png, demo_explore.png, demo_explore_clusters.png, demo_evaluate.png. Minutes on
a CPU (316 s on the 2-core development machine at a load of 3: the MiniLM embedding and the
UMAP compile).

Set ``pages``: the browser test's tour on a 120-row, 3-topic CSV (upload, tfidf, k-means k=3,
PCA map, a 30-row sample): data.png, pipeline.png, explore.png, explore_box.png,
explore_clusters.png, sample.png, export.png, evaluate.png. About half a minute.

Each set runs `streamlit run app.py` on a fresh temporary workspace, with HOME set to a
temporary folder so that the sidebar shows the workspace as ``~/workspace``. Needs
/usr/bin/chromium (``apt-get install -y chromium``). Asserts nothing: the checks are in
tests/e2e/test_browser.py; a page that does not show what is waited for stops the script with
Playwright's timeout error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # pagedriver: the helpers the browser test uses

from pagedriver import (  # noqa: E402
    drag_box_over_map,
    draw_sample,
    goto,
    launch_fast_run,
    snap,
    upload_and_ingest,
    wait_idle,
    wait_map,
    write_corpus,
)

from ui.devserver import CHROMIUM, app_server, browser_page  # noqa: E402

#: A job on the demo corpus embeds 10,003 texts with MiniLM and compiles UMAP: allow 30 minutes.
DEMO_JOB_TIMEOUT_MS = 1_800_000


def demo_set(page, out: Path, tmp: Path) -> None:
    """The README screenshots: demo corpus, default pipeline, k=77 (``tmp`` is not needed)."""
    page.get_by_text("CC BY 4.0").first.wait_for()
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("Ingest report").wait_for()
    wait_idle(page)
    snap(page, out / "demo_data.png")
    goto(page, "Pipeline")
    k = page.get_by_label("Clusters (k)")
    k.fill("77")
    k.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("is ready").wait_for(timeout=DEMO_JOB_TIMEOUT_MS)
    wait_idle(page)
    snap(page, out / "demo_pipeline.png")
    goto(page, "Explore")
    wait_map(page)
    wait_idle(page)
    snap(page, out / "demo_explore.png")
    page.get_by_role("tab", name="Clusters").click()
    page.get_by_text("Nearest the centre").wait_for()
    snap(page, out / "demo_explore_clusters.png")
    goto(page, "Evaluate")
    page.get_by_text("ACC").first.wait_for()
    snap(page, out / "demo_evaluate.png")


def pages_set(page, out: Path, tmp: Path) -> None:
    """Every page along the browser test's tour, on a small 3-topic CSV."""
    data = write_corpus(tmp / "support.csv")
    upload_and_ingest(page, data)
    snap(page, out / "data.png")

    goto(page, "Pipeline")
    launch_fast_run(page)
    snap(page, out / "pipeline.png")

    goto(page, "Explore")
    wait_map(page)
    page.get_by_text("Nothing selected.").wait_for()
    snap(page, out / "explore.png")
    drag_box_over_map(page)
    page.get_by_text("documents selected").wait_for()
    wait_idle(page)
    snap(page, out / "explore_box.png")
    page.get_by_role("tab", name="Clusters").click()
    page.get_by_text("Nearest the centre").wait_for()
    snap(page, out / "explore_clusters.png")

    draw_sample(page, 30)
    snap(page, out / "sample.png")

    goto(page, "Export")
    page.get_by_role("button", name="Sample as CSV").wait_for()
    snap(page, out / "export.png")

    goto(page, "Evaluate")
    page.get_by_text("ACC").first.wait_for()
    snap(page, out / "evaluate.png")


#: set name -> (function, viewport height): the README's demo set is shorter than the tour's.
SETS = {"demo": (demo_set, 1100), "pages": (pages_set, 1600)}


def take(name: str, out: Path) -> float:
    """Run one set against a fresh server; returns its seconds."""

    fn, height = SETS[name]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"tc-shots-{name}-") as d:
        tmp = Path(d)
        env = {
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "2",
            "TEXTCLUSTER_NO_WARMUP": "1",
            "HOME": str(tmp),  # the sidebar then shows the workspace as ~/workspace, not a temp path
        }
        with app_server(tmp / "workspace", env=env, log_path=tmp / "streamlit.log") as url, \
                browser_page(1400, height, accept_downloads=True) as page:
            page.goto(url)
            page.get_by_role("heading", name="Data", exact=True).wait_for()
            fn(page, out, tmp)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(SETS), help="one set (default: both)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder (default docs/img/)")
    args = ap.parse_args()
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in [args.only] if args.only else sorted(SETS):
        seconds = take(name, args.out)
        print(f"{name}: screenshots in {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
