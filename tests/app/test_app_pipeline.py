"""Pipeline page: knobs, cache marks, background launch, progress, reload, shared jobs, errors."""

from __future__ import annotations

from apphelpers import assert_clean, open_page

from textcluster import jobs


def set_fast(at, k=3):
    at.selectbox(key="pipe_encoder").set_value("tfidf").run()
    at.selectbox(key="pipe_projection").set_value("pca").run()
    at.number_input(key="pipe_k").set_value(k).run()
    return at


def stage_line(at):
    return next(m.value for m in at.markdown if m.value.startswith("**Stages:**"))


def test_launch_shows_progress_device_and_the_run(app_ws, app_corpus):
    at = open_page("pages/pipeline.py")
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
    at = set_fast(open_page("pages/pipeline.py"))
    at.button(key="pipe_launch").click().run()
    first = jobs.get_manager(app_ws).latest("pipeline")
    first.wait(120)
    # A reload is a new session: the page still shows that job.
    again = open_page("pages/pipeline.py")
    assert_clean(again)
    assert any(first.id in m.value for m in again.markdown)
    # The same settings submitted again return the same job; no second job file.
    set_fast(again).button(key="pipe_launch").click().run()
    assert jobs.get_manager(app_ws).latest("pipeline").id == first.id
    assert len(list((app_ws.root / "jobs").glob("job-*.json"))) == 1


def test_a_failing_job_is_a_readable_error_and_the_page_stays_up(app_ws, app_corpus):
    at = set_fast(open_page("pages/pipeline.py"), k=500)  # more clusters than the 60 documents
    at.button(key="pipe_launch").click().run()
    snap = jobs.get_manager(app_ws).latest("pipeline").wait(120)
    assert snap["status"] == "failed"
    at.run()
    assert not at.exception
    assert at.error and "500" in at.error[0].value and "Traceback" not in at.error[0].value
    assert at.button(key="pipe_launch") is not None
