"""App timings: upload -> clusters on the demo corpus, and first paint of Explore with 100k points.

    .venv/bin/python bench/app.py                # both parts
    .venv/bin/python bench/app.py --part upload  # demo corpus, default settings, cold then cached
    .venv/bin/python bench/app.py --part paint --points 100000

Part ``upload`` runs what the app runs when a user uploads the bundled Banking77 demo
file and presses Launch with the default settings: the upload is saved into a fresh
workspace, ingested, and the pipeline job (embed -> cluster -> describe, with the 2-D
map) runs through :mod:`textcluster.jobs`; it is timed until the job is done, then
submitted again (the same job comes back at once) and again from a fresh process-level
manager (every stage from the cache).

Part ``paint`` builds a synthetic corpus of ``--points`` short texts (tfidf encoder,
64 dims, k-means k=50, PCA map: the corpus content does not matter for drawing),
starts ``streamlit run app.py`` on it and measures, with Playwright driving Debian
chromium, the time from opening the Explore page to the scatter's canvas being drawn:
the first visit (nothing cached in the app process) and a second visit (st.cache_data
warm). Needs /usr/bin/chromium. Reads nothing from ../shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ui.devserver import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402


def part_upload() -> list[tuple[str, str]]:
    from textcluster import jobs
    from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
    from textcluster.ingest import corpus, demo
    from textcluster.store import Workspace

    rows = []
    with tempfile.TemporaryDirectory(prefix="tc-bench-app-") as d:
        ws = Workspace(Path(d) / "workspace")
        src = demo.demo_corpus_path()
        t0 = time.perf_counter()
        up = ws.root / "uploads" / "demo" / src.name
        up.parent.mkdir(parents=True)
        shutil.copyfile(src, up)
        rep = corpus.ingest(up, demo.DEMO_SPEC, ws)
        t_ingest = time.perf_counter() - t0
        job = jobs.submit_pipeline(ws, rep.corpus_id, EncoderConfig(), ReducerConfig(), ClustererConfig())
        snap = job.wait()
        total = time.perf_counter() - t0
        if snap["status"] != "done":
            raise SystemExit(f"job {snap['status']}: {snap['error']}")
        stages = ", ".join(f"{s['name']} {s['elapsed_s']:.1f} s" for s in snap["stages"])
        rows.append(("demo corpus rows kept", f"{rep.kept:,}"))
        rows.append(("device", str(snap.get("device"))))
        rows.append(("upload saved + ingest", f"{t_ingest:.1f} s"))
        rows.append(("upload -> clusters (cold: fresh workspace, model load, UMAP compile)", f"{total:.1f} s"))
        rows.append(("  stages", stages))
        t1 = time.perf_counter()
        again = jobs.submit_pipeline(ws, rep.corpus_id, EncoderConfig(), ReducerConfig(), ClustererConfig())
        rows.append(("same submission again (shared job)", f"{(time.perf_counter() - t1) * 1000:.1f} ms"
                     + (" (same job)" if again.id == job.id else " (NEW JOB?)")))
        t2 = time.perf_counter()
        fresh = jobs.JobManager(ws)
        fresh_job = jobs.submit_pipeline(ws, rep.corpus_id, EncoderConfig(), ReducerConfig(), ClustererConfig(),
                                         manager=fresh)
        if fresh_job.status == "done":  # the finished job file is reused as is
            rows.append(("reload / new session (job file found)", f"{(time.perf_counter() - t2) * 1000:.1f} ms"))
    return rows


def _write_synthetic(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(2000)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text"])
        for i in range(n):
            topic = i % 50
            words = [vocab[(topic * 40 + rng.randrange(40)) % 2000] for _ in range(6)]
            words += [rng.choice(vocab) for _ in range(2)]
            w.writerow([" ".join(words)])


def part_paint(points: int) -> list[tuple[str, str]]:
    from textcluster import jobs
    from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
    from textcluster.describe import clusters as describe
    from textcluster.ingest import corpus
    from textcluster.store import Workspace

    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory(prefix="tc-bench-paint-") as d:
        ws = Workspace(Path(d) / "workspace")
        data = Path(d) / "synthetic.csv"
        _write_synthetic(data, points)
        t0 = time.perf_counter()
        rep = corpus.ingest(data, CorpusSpec(text_fields=("text",)), ws)
        job = jobs.submit_pipeline(
            ws, rep.corpus_id, EncoderConfig(name="tfidf", dims=64), ReducerConfig(projection="pca"),
            ClustererConfig(k=50),
        )
        snap = job.wait()
        if snap["status"] != "done":
            raise SystemExit(f"job {snap['status']}: {snap['error']}")
        describe.describe(ws, snap["result"]["run_id"])
        rows.append((f"build the {points:,}-point run (ingest, tfidf, k-means, PCA map)",
                     f"{time.perf_counter() - t0:.1f} s"))

        with app_server(ws.root) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            for visit in ("first visit (app caches cold)", "second visit (st.cache_data warm)"):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t = time.perf_counter()
                page.goto(f"{url}/explore")
                page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=300_000)
                rows.append((f"Explore first paint, {visit}", f"{time.perf_counter() - t:.1f} s"))
                page.close()
            browser.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["upload", "paint", "all"], default="all")
    ap.add_argument("--points", type=int, default=100_000)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    if args.part in ("upload", "all"):
        rows += part_upload()
    if args.part in ("paint", "all"):
        rows += part_paint(args.points)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
