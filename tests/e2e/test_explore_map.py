"""Browser tests (Debian chromium via Playwright) of the Explore map and of the app's state.

One app server and one workspace for the module: a synthetic run of 150 clusters on a grid
(tests/e2e/pagedriver.py ``synthetic_run``), and a small corpus -> embedding -> run ->
description + sample chain for the deletion. Each test asserts what the user sees.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2ehelpers import chromium_or_skip
from pagedriver import (
    choose,
    data_to_page,
    goto,
    set_k,
    synthetic_run,
    upload,
    wait_idle,
    wait_map,
    write_corpus,
)

from textcluster.store import Workspace
from ui.devserver import app_server, browser_page
from ui.map import GREY, quantise

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROWS, K = 3000, 150


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, workspace, ids): the app on a workspace holding the 150-cluster run and a small chain."""
    from fakes_run import make_run

    from textcluster.config import SamplingPolicy
    from textcluster.describe import clusters as describe
    from textcluster.describe import sampling

    chromium_or_skip()
    tmp = tmp_path_factory.mktemp("e2e-explore")
    ws = Workspace(tmp / "workspace")
    small = make_run(ws, sizes=(12, 10, 8), tag="small")
    did = describe.describe(ws, small.run_id, top_n=3, examples=1).description_id
    sid = sampling.sample(ws, small.run_id, SamplingPolicy(size=6)).sample_id
    big = synthetic_run(ws, ROWS, K)  # written last: the newest run, the one Explore opens on
    describe.describe(ws, big)
    env = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TEXTCLUSTER_NO_WARMUP": "1"}
    ids = {"big": big, "small_run": small.run_id, "small_desc": did, "small_sample": sid,
           "small_embedding": small.embedding_id}
    with app_server(ws.root, env=env, log_path=tmp / "streamlit.log") as url:
        yield url, ws, ids


@pytest.fixture
def page(app):
    with browser_page(1500, 1400) as pg:
        yield pg


def _labels(ws, run_id):
    return np.load(ws.path(run_id) / "labels.npy")


def open_explore(page, url: str) -> dict:
    """The home page, then Explore from the sidebar (as a user goes); waits for the map."""
    page.goto(url)
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    wait_idle(page)
    goto(page, "Explore")
    drawn = wait_map(page)
    wait_idle(page)
    return drawn


def test_a_box_on_the_map_lists_exactly_the_rows_inside_it(app, page):
    url, ws, ids = app
    drawn = open_explore(page, url)
    assert drawn["points"] == ROWS  # every point, in 150 WebGL traces
    assert len(drawn["traces"]) == K
    page.get_by_text("Nothing selected.").wait_for()
    # Cluster 70 sits alone at grid point (50, 50), inside the map: a box around its points.
    labels = _labels(ws, ids["big"])
    coords = np.load(ws.path(ids["big"]) / "coords2d.npy")
    mine = coords[labels == 70]
    (bx0, by0), (bx1, by1) = mine.min(axis=0) - 0.3, mine.max(axis=0) + 0.3
    inside = (coords[:, 0] >= bx0) & (coords[:, 0] <= bx1) & (coords[:, 1] >= by0) & (coords[:, 1] <= by1)
    expected = int(inside.sum())
    assert expected >= len(mine) and set(labels[inside]) == {70}
    # the map draws coordinates quantised over their extent (ui/map.py quantise)
    (qx0, qy0), (qx1, qy1) = quantise(np.array([[bx0, by0], [bx1, by1]]), coords.min(axis=0), coords.max(axis=0))
    x0, y0 = data_to_page(page, float(qx0), float(qy0))
    x1, y1 = data_to_page(page, float(qx1), float(qy1))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    page.get_by_text(f"{expected:,} documents selected", exact=True).wait_for()
    page.get_by_text(re.compile(r"^From 1 cluster: 70 · ")).wait_for()
    page.locator('[data-testid="stDataFrame"]').nth(1).wait_for()  # mounted after the count above
    assert page.locator('[data-testid="stDataFrame"]').count() >= 2  # the legend and the rows


def test_the_legend_finds_and_highlights_one_cluster_of_150(app, page):
    url, ws, ids = app
    open_explore(page, url)
    page.get_by_text(f"{K} of {K} clusters").wait_for()
    box = page.get_by_label("Find a cluster")
    box.fill("42")
    box.press("Enter")
    wait_idle(page)
    page.get_by_text(f"1 of {K} clusters").wait_for()
    # Choose the one row left (the row-selection cell at the left of the legend's table).
    legend = page.locator('[data-testid="stDataFrame"]').last
    legend.wait_for(state="visible")  # the filtered table is a new element: mounted after the caption
    page.wait_for_timeout(300)
    r = legend.bounding_box()
    page.mouse.click(r["x"] + 12, r["y"] + 35 + 17)
    page.get_by_text(re.compile(r"^Highlighted: cluster 42 · ")).wait_for()
    wait_idle(page)
    size42 = int((_labels(ws, ids["big"]) == 42).sum())
    page.wait_for_function("""(n) => {
      const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
      const gl = gd && gd._fullData ? gd._fullData.filter(t => t.type === 'scattergl') : [];
      return gl.length && gl[gl.length - 1]._length === n && gl[gl.length - 1].marker.color !== '%s';
    }""".replace("%s", GREY), arg=size42)
    traces = wait_map(page)["traces"]
    # the chosen cluster on top in its colour; the 149 others grey
    assert traces[-1]["name"].startswith("42 · ") and traces[-1]["color"] != GREY
    assert {t["color"] for t in traces[:-1]} == {GREY} and len(traces) == K


def test_the_upload_and_the_knobs_survive_other_pages_and_a_reload(app, page, tmp_path):
    url, ws, ids = app
    data = write_corpus(tmp_path / "support.csv", per_topic=10)
    page.goto(url)
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    wait_idle(page)
    upload(page, data)
    page.get_by_text("not ingested yet").wait_for()  # no older corpus's report under this file
    assert page.get_by_text("Ingest report").count() == 0
    goto(page, "Pipeline")
    choose(page, "Encoder", "tfidf")
    wait_idle(page)
    set_k(page, 7)
    for leave in ("Explore", "reload"):
        if leave == "reload":
            page.reload()
            page.get_by_role("heading", name="Pipeline", exact=True).wait_for()
            wait_idle(page)
        else:
            goto(page, leave)
            goto(page, "Pipeline")
        assert not page.get_by_role("checkbox", name="Choose k automatically").is_checked(), leave
        assert page.get_by_label("Clusters (k)").input_value() == "7", leave
        assert page.get_by_role("combobox", name="Encoder", exact=True).input_value() == "tfidf", leave
        goto(page, "Data")
        page.get_by_text("Working on support.csv").wait_for()
        label_box = page.get_by_role("combobox", name="Label field (optional, for evaluation only)", exact=True)
        assert label_box.input_value() == "label", leave
        goto(page, "Pipeline")


def test_deleting_a_run_lists_and_removes_its_dependents(app, page):
    url, ws, ids = app
    run_id = ids["small_run"]
    page.goto(url)
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    wait_idle(page)
    goto(page, "Workspace")
    box = page.get_by_role("combobox", name="Artifact to delete", exact=True)
    box.click()
    page.locator('[role="option"]').filter(has_text=run_id).first.click()
    wait_idle(page)
    page.get_by_role("button", name="Delete…").click()
    wait_idle(page)
    page.get_by_text(f"Deleting {run_id} deletes 3 artifacts, children first").wait_for()
    page.get_by_role("button", name="Delete 3 artifacts").click()
    done = page.get_by_text(re.compile(r"^Deleted 3 artifacts: "))
    done.wait_for()
    shown = done.inner_text()
    assert all(ids[k] in shown for k in ("small_run", "small_desc", "small_sample"))
    assert not any(ws.exists(ids[k]) for k in ("small_run", "small_desc", "small_sample"))
    assert ws.exists(ids["small_embedding"])  # what it came from stays
    # The pickers no longer offer it.
    goto(page, "Explore")
    page.get_by_role("combobox", name="Clustering run", exact=True).click()
    options = page.locator('[role="option"]').all_inner_texts()
    assert options and not any(run_id in o for o in options)
