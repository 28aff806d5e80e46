"""Driving the Streamlit app in chromium through Playwright: shared by the browser tests,
bench/screenshots.py and bench/explore_paint.py (which is why nothing here imports pytest)."""

from __future__ import annotations

import csv
import random
import re
import time
from pathlib import Path

import numpy as np

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "sa", "tu", "vi", "zo")
         for b in ("bar", "cen", "dor", "fin", "gul", "hap", "jet", "kor", "lum", "mex", "nop", "qua")]


def write_corpus(path: Path, per_topic: int = 40, seed: int = 0) -> Path:
    """A CSV (id, text, label) of short texts on three topics with some shared filler words."""
    rng = random.Random(seed)
    topics = {
        "sport": ["football", "goal", "match", "team", "league", "striker", "referee", "season", "coach", "stadium"],
        "code": ["python", "function", "bug", "compiler", "variable", "debugger", "module", "test", "import", "class"],
        "baking": ["recipe", "oven", "flour", "sugar", "butter", "dough", "bread", "cake", "yeast", "whisk"],
    }
    filler = ["the", "a", "my", "our", "today", "really", "please", "help", "with", "about"]
    rows = []
    for label, words in topics.items():
        for i in range(per_topic):
            picked = rng.sample(words, 4) + rng.sample(filler, 2)
            rng.shuffle(picked)
            rows.append({"id": f"{label}-{i}", "text": " ".join(picked), "label": label})
    rng.shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        wr.writeheader()
        wr.writerows(rows)
    return path


def upload(page, data: Path) -> None:
    """On the Data page: upload ``data`` and pick ``label`` as the label field (not ingested yet)."""
    page.get_by_text("Upload a file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(data))
    page.get_by_role("button", name="Ingest").wait_for()
    wait_idle(page)
    choose(page, "Label field (optional, for evaluation only)", "label")
    wait_idle(page)


def upload_and_ingest(page, data: Path) -> None:
    """On the Data page: :func:`upload` ``data``, ingest, and wait for the ingest report (an
    empty workspace opens on the demo corpus first)."""
    page.get_by_text("CC BY 4.0").first.wait_for()
    upload(page, data)
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text("Ingest report").wait_for()
    wait_idle(page)


def set_k(page, k: int) -> None:
    """On the Pipeline page: untick "Choose k automatically" (the default) and enter ``k``."""
    auto = page.get_by_role("checkbox", name="Choose k automatically")
    if auto.is_checked():
        page.get_by_text("Choose k automatically", exact=True).click()
        wait_idle(page)
    box = page.get_by_label("Clusters (k)")
    box.fill(str(k))
    box.press("Enter")
    wait_idle(page)


def launch_fast_run(page, k: int = 3, timeout_ms: int = 120_000) -> None:
    """On the Pipeline page: tfidf, a PCA map, ``k`` clusters; launch and wait for the run."""
    choose(page, "Encoder", "tfidf")
    wait_idle(page)
    choose(page, "2-D map", "pca")
    wait_idle(page)
    set_k(page, k)
    page.get_by_role("button", name="Launch").click()
    page.get_by_text("is ready").wait_for(timeout=timeout_ms)
    wait_idle(page)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit select box labelled ``label``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("combobox", name=label, exact=True)
    item = page.locator('[role="option"]').filter(has_text=re.compile(f"^{re.escape(option)}$")).first
    for _ in range(5):  # a rerun arriving just then can close the list: open it again
        box.click()
        try:
            item.click(timeout=3000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        if box.input_value() == option:
            return
    raise AssertionError(f"could not choose {option!r} in {label!r}; it shows {box.input_value()!r}")


def wait_idle(page, timeout: float = 60) -> None:
    """Wait until Streamlit is not running the script any more; AssertionError after ``timeout`` s.

    The first 300 ms give a rerun that an action has just triggered the time to start (and show
    its status widget); without them this could return before the rerun began.
    """
    page.wait_for_timeout(300)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"the app was still running its script after {timeout:.0f} s")


def goto(page, title: str) -> None:
    """Open the page titled ``title`` from the sidebar and wait until it has rendered."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
    wait_idle(page)


def snap(page, path: Path) -> None:
    """A screenshot with the mouse out of the way (no tooltip over the page)."""
    page.mouse.move(1, 1)
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def synthetic_run(ws, rows: int, k: int, seed: int = 0, spread: float = 1.0) -> str:
    """Write a corpus, embedding and run of ``rows`` documents in ``k`` clusters into ``ws``
    (no encoding); returns the run id.

    Cluster sizes are Zipf-like (every cluster has at least one row); the 2-D map puts cluster c
    on a square grid, 10 units apart, with Gaussian ``spread``: a box around one grid point holds
    that cluster's rows only. Texts use words of the cluster (so keywords differ); centres are
    16-dim, ``center_pairwise_distance.npy`` their distances."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcluster.store import CorpusManifest, EmbeddingManifest, RunManifest, make_id

    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, k + 1) ** 0.7
    labels = np.concatenate([np.arange(k), rng.choice(k, size=max(rows - k, 0), p=w / w.sum())])[:rows]
    labels = labels[rng.permutation(rows)].astype(np.int32)
    dim = 16
    centers = rng.normal(size=(k, dim)).astype(np.float32) * 4
    side = int(np.ceil(np.sqrt(k)))
    grid = np.stack([np.arange(k) % side, np.arange(k) // side], axis=1).astype(np.float32) * 10
    coords = (grid[labels] + rng.normal(size=(rows, 2)) * spread).astype(np.float32)
    vocab = np.array(WORDS)
    picks = (labels[:, None] * 7 + rng.integers(0, 9, size=(rows, 6))) % len(vocab)
    texts = [" ".join(vocab[p]) + f" note {i}" for i, p in enumerate(picks)]
    cid = make_id("corpus", f"synthetic-{rows}-{k}-{seed}", {})
    ws.write(cid, CorpusManifest(sha256=f"synthetic-{rows}-{k}-{seed}", source=f"synthetic-{rows}.csv",
                                 kept=rows, n_docs=rows, format="csv"),
             lambda d: pq.write_table(pa.table({
                 "doc_id": np.arange(rows, dtype=np.int64), "row": np.arange(1, rows + 1, dtype=np.int64),
                 "text": texts, "group": [f"g{i % 5}" for i in range(rows)]}), d / "docs.parquet"))
    eid = make_id("embedding", cid, {"dim": dim})
    emb = (centers[labels] + rng.normal(size=(rows, dim)).astype(np.float32)).astype(np.float32)
    ws.write(eid, EmbeddingManifest(corpus_id=cid, encoder="synthetic", model_fingerprint="synthetic",
                                    n=rows, dim=dim),
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
                              seed=seed, encoder="synthetic"), w_run)
    return rid


def map_state(page) -> dict:
    """What the Explore map holds in the browser: the WebGL traces' point counts and colours,
    (``page`` shows the Explore page)."""
    return page.evaluate("""() => {
      const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
      if (!gd || !gd._fullData) return null;
      const gl = gd._fullData.filter(t => t.type === 'scattergl');
      return {points: gl.reduce((s, t) => s + (t._length || 0), 0),
              traces: gl.map(t => ({name: t.name, n: t._length, color: t.marker.color}))};
    }""")


def wait_map(page, timeout_ms: int = 60_000) -> dict:
    """Wait until the Explore map has drawn its WebGL traces; returns :func:`map_state`."""
    page.wait_for_function("""() => {
      const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
      return gd && gd._fullData && gd._fullData.some(t => t.type === 'scattergl' && t._length > 0);
    }""", timeout=timeout_ms)
    return map_state(page)


def data_to_page(page, x: float, y: float) -> tuple[float, float]:
    """Page pixel of the map's data point (x, y) (Plotly's axis conversions)."""
    return tuple(page.evaluate("""([x, y]) => {
      const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
      const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      return [r.left + xa._offset + xa.d2p(x), r.top + ya._offset + ya.d2p(y)];
    }""", [x, y]))


def drag_box_over_map(page) -> None:
    """Drag a box selection over nearly the whole plot area of the page's first map (from 3 %
    / 6 % of its width / height to 97 % / 97 %, through the middle)."""
    box = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.03, box["y"] + box["height"] * 0.06)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] * 0.97, steps=5)
    page.mouse.up()


def draw_sample(page, n: int) -> None:
    """On the Sample page: set the sample size to ``n``, draw, and wait for the sample's heading."""
    goto(page, "Sample")
    size = page.get_by_label("Sample size (N)")
    size.fill(str(n))
    size.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Draw sample").click()
    page.get_by_role("heading", name=re.compile(rf"Sample smp-[0-9a-f]{{16}} · {n} rows")).wait_for()
    wait_idle(page)
