"""Pipeline page: knobs, cache marks, background launch, progress, reload, shared jobs, errors."""

from __future__ import annotations

from apphelpers import assert_clean, open_page, shown

from textcluster import jobs


def set_fast(at, k=3):
    at.selectbox(key="pipe_encoder").set_value("tfidf").run()
    at.selectbox(key="pipe_projection").set_value("pca").run()
    at.checkbox(key="pipe_k_auto").uncheck().run()  # these tests mean a fixed k
    at.number_input(key="pipe_k").set_value(k).run()
    return at


def launched_config(at, ws) -> dict:
    """Click Launch, return the submitted job's config, and cancel the job (only the config is tested)."""
    at.button(key="pipe_launch").click().run()
    job = jobs.get_manager(ws).latest("pipeline")
    try:
        return job.snapshot()["config"]
    finally:
        job.cancel()
        job.wait(120)


def stage_line(at):
    return next(m.value for m in at.markdown if m.value.startswith("**Stages:**"))


def test_launch_shows_progress_device_and_the_run(app_ws, app_corpus):
    at = open_page("views/pipeline.py")
    assert_clean(at)
    # Registries feed the choices, each with its help line.
    assert {"minilm", "tfidf"} <= set(at.selectbox(key="pipe_encoder").options)
    assert {"kmeans", "hdbscan", "self-training"} <= set(at.selectbox(key="pipe_clusterer").options)
    assert at.selectbox(key="pipe_encoder").value == "minilm"
    set_fast(at)
    assert stage_line(at).count("to run") == 3
    at.button(key="pipe_launch").click().run()
    assert_clean(at)
    job = jobs.get_manager(app_ws).latest("pipeline")
    snap = job.wait(120)
    assert snap["status"] == "done", snap["error"]
    at.run()
    assert_clean(at)
    run_id = snap["result"]["run_id"]
    assert app_ws.exists(run_id)
    assert any(run_id in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] == "CPU"
    assert len(at.get("progress")) >= 3  # one bar per stage (embed, cluster, describe, + sub-stages)
    # Every stage now comes from the cache.
    assert stage_line(at).count("cached") == 3
    # Changing k only reruns clustering: the embedding stays cached.
    at.number_input(key="pipe_k").set_value(4).run()
    line = stage_line(at)
    assert "embed :material/inventory_2: cached" in line and line.count("to run") == 2


def test_reload_finds_the_job_and_identical_submission_shares_it(app_ws, app_corpus):
    at = set_fast(open_page("views/pipeline.py"))
    at.button(key="pipe_launch").click().run()
    first = jobs.get_manager(app_ws).latest("pipeline")
    first.wait(120)
    # A reload is a new session: the page still shows that job.
    again = open_page("views/pipeline.py")
    assert_clean(again)
    assert any(first.id in m.value for m in again.markdown)
    # The same settings submitted again return the same job; no second job file.
    set_fast(again).button(key="pipe_launch").click().run()
    assert jobs.get_manager(app_ws).latest("pipeline").id == first.id
    assert len(list((app_ws.root / "jobs").glob("job-*.json"))) == 1


def test_a_failing_job_is_a_readable_error_and_the_page_stays_up(app_ws, app_corpus):
    at = set_fast(open_page("views/pipeline.py"), k=500)  # more clusters than the 60 documents
    at.button(key="pipe_launch").click().run()
    snap = jobs.get_manager(app_ws).latest("pipeline").wait(120)
    assert snap["status"] == "failed"
    at.run()
    assert not at.exception
    assert at.error and "500" in at.error[0].value and "Traceback" not in at.error[0].value
    # The page is still usable: with a valid k, the same Launch button starts a job that finishes.
    launch = at.button(key="pipe_launch")  # a missing button raises KeyError here
    assert launch.label == "Launch" and not launch.disabled
    at.number_input(key="pipe_k").set_value(3).run()
    at.button(key="pipe_launch").click().run()
    again = jobs.get_manager(app_ws).latest("pipeline")
    assert again.snapshot()["id"] != snap["id"]
    assert again.wait(120)["status"] == "done"


def test_self_training_curves_are_drawn_from_the_history():
    from streamlit.testing.v1 import AppTest

    def page():
        from ui.widgets import training_curves

        training_curves(
            {
                "pretrain_loss": [1.0, 0.6, 0.4],
                "kl_loss": [0.2, 0.1],
                "label_change": [0.05, 0.0005],
                "refresh_step": [100, 200],
                "stop_reason": "tol",
                "seconds": 3.2,
            }
        )

    at = AppTest.from_function(page).run()
    assert not at.exception
    charts = at.get("arrow_line_chart") or at.get("vega_lite_chart")
    assert len(charts) == 2
    assert shown(at.caption[0].value) == "Stopped by: tol after 3.2 s"


def test_a_running_job_shows_elapsed_eta_and_can_be_cancelled(app_ws, app_corpus):
    import threading

    from textcluster.progress import Meter, check_cancel

    started = threading.Event()

    def slow(progress, cancel, on_stage):
        on_stage("embed", "running", {})
        m = Meter("embed", 1000, progress)
        for i in range(1000):
            check_cancel(cancel, "embed")
            m.update(i + 1)
            started.set()
            cancel.wait(0.05)
        return {}

    job = jobs.get_manager(app_ws).submit("pipeline", {"test": "slow"}, slow, stages=["embed"], device="cpu")
    assert started.wait(10)
    at = open_page("views/pipeline.py")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ETA (current stage)"] != "–" and metrics["Device"] == "CPU"
    [bar] = at.get("progress")
    assert "embed · running" in bar.proto.text
    at.button(key="pipe_cancel").click().run()
    assert job.wait(10)["status"] == "cancelled"


def test_a_model_that_cannot_be_found_is_a_readable_error(app_ws, app_corpus):
    at = open_page("views/pipeline.py")
    choice = next(o for o in at.selectbox(key="pipe_encoder").options if o.startswith("st:"))
    at.selectbox(key="pipe_encoder").set_value(choice).run()
    assert_clean(at)
    assert at.button(key="pipe_launch").disabled  # no model named yet
    at.text_input(key="pipe_encoder_model").set_value("/no/such/model/folder").run()
    assert not at.exception
    assert at.error and "/no/such/model/folder" in shown(at.error[0].value)


def test_umap_runs_knob_reaches_the_job(app_ws, app_corpus):
    """The ensemble size is offered for UMAP only and is part of the submitted reducer config."""
    at = set_fast(open_page("views/pipeline.py"))
    assert not [w for w in at.number_input if w.key == "pipe_reducer_runs"]
    at.selectbox(key="pipe_reducer").set_value("umap").run()
    assert_clean(at)
    at.number_input(key="pipe_reducer_runs").set_value(3).run()
    assert launched_config(at, app_ws)["reducer"]["runs"] == 3


def test_quality_recipe_toggle_submits_the_recipe(app_ws, app_corpus):
    at = set_fast(open_page("views/pipeline.py"), k=4)
    at.toggle(key="pipe_recipe").set_value(True).run()
    assert_clean(at)
    assert any("Quality recipe: reducer umap × 5 runs" in i.value for i in at.info)
    cfg = launched_config(at, app_ws)
    assert cfg["reducer"]["method"] == "umap" and cfg["reducer"]["runs"] == 5
    assert cfg["clusterer"]["method"] == "kmeans" and cfg["clusterer"]["k"] == 4
    assert cfg["clusterer"]["params"] == {"n_init": 10}


def test_quality_recipe_asks_for_k_even_when_a_no_k_clusterer_is_chosen(app_ws, app_corpus):
    """The recipe is k-means: with hdbscan chosen below, k must still be asked and used."""
    at = set_fast(open_page("views/pipeline.py"))
    at.selectbox(key="pipe_clusterer").set_value("hdbscan").run()
    assert not [w for w in at.number_input if w.key == "pipe_k"]  # hdbscan alone takes no k
    at.toggle(key="pipe_recipe").set_value(True).run()
    assert_clean(at)
    at.checkbox(key="pipe_k_auto").uncheck().run()  # the checkbox came back at its default (auto)
    at.number_input(key="pipe_k").set_value(6).run()
    assert any("k-means k=6" in i.value for i in at.info)
    cfg = launched_config(at, app_ws)
    assert cfg["clusterer"]["method"] == "kmeans" and cfg["clusterer"]["k"] == 6


def test_method_settings_come_from_the_registry_and_reach_the_job(app_ws, app_corpus):
    """The expander's inputs are the method's parameter schema; a changed value goes into
    the job's clusterer params, an impossible one is refused with the key named."""
    at = set_fast(open_page("views/pipeline.py"))
    assert at.text_input(key="pipe_params_kmeans_n_init").value == '"auto"'
    at.text_input(key="pipe_params_kmeans_n_init").set_value("3").run()
    cfg = launched_config(at, app_ws)
    assert cfg["clusterer"]["params"] == {"n_init": 3}

    before = len(jobs.get_manager(app_ws).list("pipeline"))
    at = set_fast(open_page("views/pipeline.py"))
    at.text_input(key="pipe_params_kmeans_n_init").set_value("0").run()
    at.button(key="pipe_launch").click().run()
    assert any("n_init=0 should be an integer >= 1" in shown(e.value) for e in at.error)
    assert len(jobs.get_manager(app_ws).list("pipeline")) == before  # refused before a job existed

    at = open_page("views/pipeline.py")
    at.selectbox(key="pipe_clusterer").set_value("gmm").run()
    assert at.selectbox(key="pipe_params_gmm_covariance_type").options == ["full", "tied", "diag", "spherical"]


def test_app_pipeline_page_refuses_st_usr(app_ws, app_corpus, monkeypatch) -> None:
    """Issue 15 (hostile case, here for the app fixtures): typing /usr never walks /usr."""
    from textcluster.embed.encoders import base

    walked: list = []
    monkeypatch.setattr(base, "fingerprint_path", lambda p, *a, **k: walked.append(p) or "0" * 16)
    at = open_page("views/pipeline.py")
    choice = next(o for o in at.selectbox(key="pipe_encoder").options if o.startswith("st:"))
    at.selectbox(key="pipe_encoder").set_value(choice).run()
    at.text_input(key="pipe_encoder_model").set_value("/usr").run()
    assert not at.exception
    assert any("TEXTCLUSTER_MODEL_DIRS" in e.value for e in at.error)
    assert at.button(key="pipe_launch").disabled
    assert walked == []
