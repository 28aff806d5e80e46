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
3. both again in new tabs (warm: the app's caches and the browser's static files).

Prints a table, then (``--json``) one JSON line, the last:
``{"rows": N, "points_drawn": ..., "paint_s": ..., "home_s": ..., "warm_paint_s": ...,
"warm_home_s": ...}`` (``paint_s``/``home_s``: the cold visits). Needs /usr/bin/chromium; reads
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ui.devserver import CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: E402

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "sa", "tu", "vi", "zo")
         for b in ("bar", "cen", "dor", "fin", "gul", "hap", "jet", "kor", "lum", "mex", "nop", "qua")]

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
    """A corpus + embedding + run (+ description) of ``rows`` docs in ``k`` clusters; the run id.

    Written once: a second call with the same folder returns the run id stored there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcluster.describe import clusters as describe
    from textcluster.store import CorpusManifest, EmbeddingManifest, RunManifest, Workspace, make_id

    ids_file = ws_root / "bench_run_id.txt"
    if ids_file.is_file():
        return ids_file.read_text().strip()
    ws = Workspace(ws_root)
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, k + 1) ** 0.7
    labels = rng.choice(k, size=rows, p=w / w.sum()).astype(np.int32)
    dim = 16
    centers = rng.normal(size=(k, dim)).astype(np.float32) * 4
    centers2d = rng.uniform(-60, 60, size=(k, 2)).astype(np.float32)
    coords = (centers2d[labels] + rng.normal(size=(rows, 2)) * 2.5).astype(np.float32)
    vocab = np.array(WORDS)
    picks = (labels[:, None] * 7 + rng.integers(0, 9, size=(rows, 6))) % len(vocab)
    texts = [" ".join(vocab[p]) + f" note {i}" for i, p in enumerate(picks)]
    cid = make_id("corpus", f"bench-paint-{rows}-{k}-{seed}", {})
    ws.write(cid, CorpusManifest(sha256=f"bench-paint-{rows}", source=f"synthetic-{rows}.csv", kept=rows,
                                 n_docs=rows, format="csv"),
             lambda d: pq.write_table(pa.table({
                 "doc_id": np.arange(rows, dtype=np.int64), "row": np.arange(1, rows + 1, dtype=np.int64),
                 "text": texts, "group": [f"g{i % 5}" for i in range(rows)]}), d / "docs.parquet"))
    eid = make_id("embedding", cid, {"dim": dim})
    emb = (centers[labels] + rng.normal(size=(rows, dim)).astype(np.float32)).astype(np.float32)
    ws.write(eid, EmbeddingManifest(corpus_id=cid, encoder="bench", model_fingerprint="bench", n=rows, dim=dim),
             lambda d: np.save(d / "embeddings.npy", emb))
    rid = make_id("run", eid, {"k": k})
    own = np.linalg.norm(emb - centers[labels], axis=1).astype(np.float32)
    pair = np.linalg.norm(centers[:, None] - centers[None], axis=2).astype(np.float32)

    def w_run(d: Path) -> None:
        np.save(d / "labels.npy", labels)
        np.save(d / "centers.npy", centers)
        np.save(d / "distances.npy", own)
        np.save(d / "center_pairwise_distance.npy", pair)
        np.save(d / "coords2d.npy", coords)
        ids, counts = np.unique(labels, return_counts=True)
        first = np.full(k, -1, np.int64)
        first[labels[::-1]] = np.arange(rows)[::-1]
        pq.write_table(pa.table({"cluster": ids.astype(np.int32), "size": counts.astype(np.int64),
                                 "share": counts / rows, "medoid_doc_id": first[ids]}), d / "clusters.parquet")

    ws.write(rid, RunManifest(corpus_id=cid, embedding_id=eid, n=rows, dim=dim, k=k, noise=0.0,
                              reducer={"method": "none"}, clusterer={"method": "kmeans", "k": k, "seed": seed},
                              seed=seed), w_run)
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


def paint(browser, url: str, timeout_s: float) -> tuple[float, int]:
    """Seconds from navigation to the Explore map drawn, and the points it drew."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(PAINT_PROBE)
    page.goto(f"{url}/explore")
    page.wait_for_function("window.__tcPaint !== null", timeout=timeout_s * 1000, polling=50)
    probe = page.evaluate("window.__tcPaint")
    page.close()
    # performance.now() counts from the navigation's start (timeOrigin) in the page's own clock
    return probe["t"] / 1000.0, int(probe["points"])


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
                paint_s, points = paint(browser, url, a.timeout)
                warm_home_s = home(browser, url, a.timeout)
                warm_paint_s, warm_points = paint(browser, url, a.timeout)
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
        ("load average (1 min) at the end", f"{load:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if a.json:
        print(json.dumps({"rows": a.rows, "points_drawn": points, "paint_s": round(paint_s, 3),
                          "home_s": round(home_s, 3), "warm_paint_s": round(warm_paint_s, 3),
                          "warm_home_s": round(warm_home_s, 3)}))


if __name__ == "__main__":
    main()
