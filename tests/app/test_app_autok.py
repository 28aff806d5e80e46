"""Pipeline page: automatic k by default, its curve, one-click re-clustering, the noise panel;
Explore: the granularity slider and saving a level as a run."""

from __future__ import annotations

import json

from apphelpers import assert_clean, open_page

from textcluster import jobs
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig


def test_automatic_k_is_the_default_and_its_curve_is_drawn(app_ws, app_corpus):
    at = open_page("views/pipeline.py")
    at.selectbox(key="pipe_encoder").set_value("tfidf").run()
    at.selectbox(key="pipe_projection").set_value("pca").run()
    assert at.checkbox(key="pipe_k_auto").value is True
    assert not [w for w in at.number_input if w.key == "pipe_k"]
    at.button(key="pipe_launch").click().run()
    job = jobs.get_manager(app_ws).latest("pipeline")
    snap = job.wait(120)
    assert snap["status"] == "done", snap["error"]
    assert snap["config"]["clusterer"]["k"] == "auto"
    at.run()
    assert_clean(at)
    run_id = snap["result"]["run_id"]
    ak = app_ws.manifest(run_id).auto_k
    assert any(s.value == "Automatic k" for s in at.subheader)
    spec = json.dumps([json.loads(c.proto.spec) for c in at.get("vega_lite_chart")])
    assert '"silhouette"' in spec and str(ak["chosen"]) in spec
    assert '"high"' in spec  # the band of the replicates' range
    assert {m.label for m in at.metric} >= {"Noise (rows in no cluster)"}
    # another k is one click: a new job with that k, the embedding taken from the cache
    other = next(k for k in ak["candidates"] if k != ak["chosen"])
    at.selectbox(key=f"autok_other_{run_id}").set_value(other).run()
    at.button(key=f"autok_rerun_{run_id}").click().run()
    again = jobs.get_manager(app_ws).latest("pipeline")
    assert again.id != job.id
    done = again.wait(120)
    assert done["status"] == "done" and done["config"]["clusterer"]["k"] == other
    assert app_ws.manifest(done["result"]["run_id"]).k == other


def test_high_noise_shows_a_hint_and_one_click_assigns_it(app_ws, app_corpus):
    clu = ClustererConfig(k=3, outliers=0.5)
    snap = jobs.submit_pipeline(app_ws, app_corpus, EncoderConfig(name="tfidf"), ReducerConfig(projection="pca"),
                                clu, manager=jobs.get_manager(app_ws)).wait(120)
    assert snap["status"] == "done", snap["error"]
    at = open_page("views/pipeline.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    noise = float(metrics["Noise (rows in no cluster)"].rstrip("%")) / 100
    assert noise > 0.3
    assert any("are noise" in w.value for w in at.warning)
    run_id = snap["result"]["run_id"]
    at.button(key=f"noise_assign_{run_id}").click().run()
    assert not at.exception
    [version] = [m for m in app_ws.list("run") if m.parent_run == run_id]
    assert version.noise == 0.0 and version.edit == {"op": "assign_noise"}


def test_explore_granularity_slider_saves_a_level(app_ws, app_run):
    at = open_page("views/explore.py")
    assert_clean(at)
    at.toggle(key=f"gran_on_{app_run}").set_value(True).run()
    assert_clean(at)
    slider = at.select_slider(key=f"gran_level_{app_run}")
    assert list(slider.options) == ["2", "3"] or list(slider.options) == [2, 3]
    slider.set_value(2).run()
    groups = next(d.value for d in at.dataframe if "group" in d.value.columns)
    assert len(groups) == 2 and groups["documents"].sum() == 60
    at.button(key=f"gran_save_{app_run}").click().run()
    assert not at.exception
    [version] = [m for m in app_ws.list("run") if m.parent_run == app_run]
    assert version.k == 2 and version.edit == {"op": "level", "k": 2}
