"""Background jobs: progress, cancel, dedupe, persistence, readable errors."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from textcluster import jobs
from textcluster.errors import ConfigError
from textcluster.jobs import JobManager, error_message, get_manager, job_id
from textcluster.progress import Meter, check_cancel
from textcluster.store import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


@dataclass(frozen=True)
class Step:
    """A stage of a test job: ``fn(results, progress, cancel) -> dict | None``; ``cached: True``
    in the dict marks the stage as a cache hit."""

    name: str
    fn: Callable[[dict[str, Any], Any, threading.Event], dict[str, Any] | None]


def chained(config: dict[str, Any], steps: list[Step]):
    """One work function that runs ``steps`` in order and reports them as a pipeline does."""

    def work(progress, cancel, on_stage):
        results: dict[str, Any] = {"config": config}
        for step in steps:
            on_stage(step.name, "running", {})
            out = dict(step.fn(results, progress, cancel) or {})
            results.update(out)
            info = {k: v for k, v in out.items() if k != "cached"}
            on_stage(step.name, "cached" if out.get("cached") else "done", info)
        return {}

    return work


def submit(mgr: JobManager, kind: str, config: dict[str, Any], steps: list[Step], **kw: Any):
    """``mgr.submit`` of a job made of ``steps`` (see :func:`chained`)."""
    return mgr.submit(kind, config, chained(config, steps), stages=[s.name for s in steps], **kw)


def counting_step(name, n=5, delay=0.0, calls=None, out=None, gate=None):
    """A step that reports n units of progress; counts its calls; optionally waits on a gate."""

    def fn(results, progress, cancel):
        if calls is not None:
            calls.append(name)
        m = Meter(name, n, progress)
        for i in range(n):
            if gate is not None:
                gate.wait(5)
            check_cancel(cancel, name)
            time.sleep(delay)
            m.update(i + 1)
        return out if out is not None else {f"{name}_done": True}

    return Step(name, fn)


def test_job_id_is_a_hash_of_kind_and_full_config():
    a = job_id("pipeline", {"k": 5, "enc": {"name": "tfidf"}})
    assert a == job_id("pipeline", {"enc": {"name": "tfidf"}, "k": 5})
    assert a != job_id("pipeline", {"k": 6, "enc": {"name": "tfidf"}})
    assert a != job_id("other", {"k": 5, "enc": {"name": "tfidf"}})
    assert a.startswith("job-") and len(a) == 20


def test_steps_run_in_order_and_pass_results(ws):
    seen = {}

    def second(results, progress, cancel):
        seen.update(results)
        return {"b": results["a"] + 1, "cached": True, "device": "cpu"}

    mgr = JobManager(ws)
    job = submit(mgr, "t", {"x": 1}, [Step("first", lambda r, p, c: {"a": 1}), Step("second", second)])
    snap = job.wait(10)
    assert snap["status"] == "done", snap["error"]
    assert seen["a"] == 1 and seen["config"] == {"x": 1}
    assert snap["result"] == {"a": 1, "b": 2, "device": "cpu"}
    assert [s["status"] for s in snap["stages"]] == ["done", "cached"]
    assert snap["device"] == "cpu"
    assert snap["finished"] >= snap["started"]
    # a finished job's elapsed time is the time it ran, no longer counting up
    assert snap["elapsed_s"] == pytest.approx(snap["finished"] - snap["started"])


def test_progress_per_stage_and_substages_are_recorded(ws):
    def fn(results, progress, cancel):
        Meter("reduce", 2, progress).update(2)
        m = Meter("cluster", 4, progress)
        m.update(1)
        m.update(4)
        return {}

    job = submit(JobManager(ws), "t", {}, [counting_step("embed", 3), Step("cluster", fn)])
    snap = job.wait(10)
    names = [s["name"] for s in snap["stages"]]
    assert names == ["embed", "reduce", "cluster"]
    by = {s["name"]: s for s in snap["stages"]}
    assert by["embed"]["done"] == 3 and by["embed"]["total"] == 3
    assert by["reduce"]["status"] == "done" and by["cluster"]["status"] == "done"
    assert all(s["fraction"] == 1.0 for s in snap["stages"])


def test_state_is_persisted_and_found_by_a_new_manager(ws):
    job = submit(JobManager(ws), "t", {"p": 1}, [counting_step("embed", 2)], label="demo")
    job.wait(10)
    f = ws.root / "jobs" / f"{job.id}.json"
    on_disk = json.loads(f.read_text())
    assert on_disk["status"] == "done" and on_disk["label"] == "demo"
    # A reload (fresh manager, e.g. after the page or the process restarted) finds it.
    other = JobManager(ws)
    again = other.get(job.id)
    assert again is not None and again.status == "done"
    assert [s["id"] for s in other.list()] == [job.id]
    assert other.latest().id == job.id


def test_identical_submission_while_running_shares_one_computation(ws):
    calls, gate = [], threading.Event()
    mgr = JobManager(ws)
    a = submit(mgr, "t", {"k": 3}, [counting_step("embed", 3, calls=calls, gate=gate)])
    b = submit(mgr, "t", {"k": 3}, [counting_step("embed", 3, calls=calls, gate=gate)])
    assert b is a
    assert [s["id"] for s in mgr.active()] == [a.id]
    gate.set()
    a.wait(10)
    # A done job is returned as is: no second computation.
    c = submit(mgr, "t", {"k": 3}, [counting_step("embed", 3, calls=calls)])
    assert c.id == a.id and c.status == "done"
    assert calls == ["embed"]


def test_cancel_stops_the_running_stage(ws):
    gate = threading.Event()
    mgr = JobManager(ws)
    job = submit(mgr, "t", {}, [counting_step("embed", 100, delay=0.01, gate=gate), counting_step("next")])
    while job.snapshot()["status"] != "running":
        time.sleep(0.01)
    job.cancel()
    gate.set()
    snap = job.wait(10)
    assert snap["status"] == "cancelled"
    assert "cancelled" in snap["error"]
    assert [s["status"] for s in snap["stages"]] == ["cancelled", "cancelled"]
    # A cancelled job runs again when submitted again.
    again = submit(mgr, "t", {}, [counting_step("embed", 2), counting_step("next")])
    assert again.wait(10)["status"] == "done"


def test_queued_job_waits_for_a_slot_and_can_be_cancelled(ws):
    gate = threading.Event()
    mgr = JobManager(ws, max_running=1)
    first = submit(mgr, "t", {"n": 1}, [counting_step("embed", 2, gate=gate)])
    second = submit(mgr, "t", {"n": 2}, [counting_step("embed", 2)])
    time.sleep(0.1)
    assert second.status == "queued"
    second.cancel()
    assert second.status == "cancelled"
    gate.set()
    assert first.wait(10)["status"] == "done"
    assert second.wait(1)["status"] == "cancelled"


def test_errors_become_readable_messages(ws):
    def bad_config(r, p, c):
        raise ConfigError("k=0 should be >= 1")

    def crash(r, p, c):
        raise KeyError("oops")

    mgr = JobManager(ws)
    a = submit(mgr, "t", {"a": 1}, [Step("cluster", bad_config)]).wait(10)
    assert a["status"] == "failed" and a["error"] == "k=0 should be >= 1"
    assert a["stages"][0]["status"] == "failed"
    b = submit(mgr, "t", {"b": 1}, [counting_step("embed", 1), Step("cluster", crash)]).wait(10)
    assert b["status"] == "failed" and b["error"] == "KeyError: 'oops'"
    assert "Traceback" not in json.dumps(b)
    assert [s["status"] for s in b["stages"]] == ["done", "failed"]


def test_error_message_formats():
    assert error_message(ConfigError("bad  value\n here")) == "bad value here"
    assert error_message(ValueError("x")) == "ValueError: x"
    assert error_message(RuntimeError()) == "RuntimeError"


def test_job_of_a_dead_process_is_marked_interrupted(ws):
    job = submit(JobManager(ws), "t", {}, [counting_step("embed", 1)])
    job.wait(10)
    f = ws.root / "jobs" / f"{job.id}.json"
    state = json.loads(f.read_text())
    state.update(status="running", finished=None, pid=2**22 + 12345)  # no such process
    state["stages"][0]["status"] = "running"
    f.write_text(json.dumps(state))
    snap = JobManager(ws).get(job.id).snapshot()
    assert snap["status"] == "interrupted"
    assert "submit it again" in snap["error"]


def test_job_running_in_another_process_is_a_live_view_with_cancel(ws):
    mgr = JobManager(ws)
    jid = job_id("t", {"remote": 1})
    (ws.root / "jobs").mkdir(parents=True)
    state = {
        "id": jid, "kind": "t", "label": "", "config": {"remote": 1}, "status": "running",
        "created": time.time(), "started": time.time(), "finished": None,
        "stages": [jobs._new_stage("embed")], "result": {}, "error": None, "device": "cpu",
        "pid": os.getppid(), "host": jobs.socket.gethostname(), "updated": time.time(),
    }
    (ws.root / "jobs" / f"{jid}.json").write_text(json.dumps(state))
    job = mgr.get(jid)
    assert job.status == "running"
    # Submitting the same work here returns that job rather than starting a second one.
    assert submit(mgr, "t", {"remote": 1}, [counting_step("embed")]).id == jid
    job.cancel()
    assert (ws.root / "jobs" / f"{jid}.cancel").exists()


def test_done_job_whose_artifact_was_deleted_runs_again(ws):
    calls = []
    mgr = JobManager(ws)
    out = {"run_id": "run-0123456789abcdef"}
    job = submit(mgr, "t", {}, [counting_step("cluster", 1, calls=calls, out=out)])
    job.wait(10)
    again = submit(mgr, "t", {}, [counting_step("cluster", 1, calls=calls, out=out)])
    again.wait(10)
    assert calls == ["cluster", "cluster"]  # the run id named in the result does not exist


def test_get_manager_is_one_per_workspace(tmp_path):
    a = get_manager(tmp_path / "w1")
    assert get_manager(Workspace(tmp_path / "w1")) is a
    assert get_manager(tmp_path / "w2") is not a
    with pytest.raises(ValueError, match="max_running=0"):
        JobManager(Workspace(tmp_path), max_running=0)


def test_lanes_keep_short_jobs_from_waiting_behind_long_ones(ws):
    gate = threading.Event()
    mgr = JobManager(ws, max_running=1)
    long = submit(mgr, "t", {"n": 1}, [counting_step("embed", 2, gate=gate)])
    short = submit(mgr, "t", {"n": 2}, [counting_step("ingest", 2)], lane="io")
    assert short.wait(10)["status"] == "done"
    assert long.status == "running"
    gate.set()
    assert long.wait(10)["status"] == "done"


def test_submit_ingest_runs_in_the_background_and_dedupes(ws, topic_csv):
    from textcluster.config import CorpusSpec

    spec = CorpusSpec(text_fields=("text",), label_field="label")
    mgr = JobManager(ws)
    job = jobs.submit_ingest(ws, topic_csv, spec, manager=mgr)
    snap = job.wait(60)
    assert snap["status"] == "done", snap["error"]
    assert ws.exists(snap["result"]["corpus_id"]) and snap["stages"][0]["name"] == "ingest"
    assert jobs.submit_ingest(ws, topic_csv, spec, manager=mgr) is job
    with pytest.raises(jobs.CorpusError, match="nope.csv"):
        jobs.submit_ingest(ws, topic_csv.parent / "nope.csv", spec, manager=mgr)


def test_a_cancelled_pipeline_job_relaunched_resumes_the_embedding(ws, fake):
    """The pipeline job is one call of the pipeline; cancelling it inside the embedding and
    submitting it again encodes only the texts not encoded yet (no restart at 0)."""
    from fake_encoder import make_corpus

    from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig

    built, opts = fake
    gate = threading.Event()
    opts.update(hold_at=10, gate=gate)  # the encoder waits after 10 texts until the test has cancelled
    texts = [f"text number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(60)]
    cid = make_corpus(ws, texts)
    enc = EncoderConfig(name="fake", batch_size=1, chunk_rows=1000)  # one chunk: nothing finished at cancel
    red, clu = ReducerConfig(projection="pca"), ClustererConfig(k=2)
    mgr = JobManager(ws)
    job = jobs.submit_pipeline(ws, cid, enc, red, clu, manager=mgr)
    deadline = time.monotonic() + 30
    while len(built[-1].seen if built else []) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    gate.set()
    snap = job.wait(30)
    assert snap["status"] == "cancelled"
    first = len(built[-1].seen)
    assert 10 <= first < len(texts)
    again = jobs.submit_pipeline(ws, cid, enc, red, clu, manager=mgr)
    snap = again.wait(60)
    assert snap["status"] == "done", snap["error"]
    assert sum(len(b.seen) for b in built) == len(texts)  # nothing encoded twice
    assert [s["name"] for s in snap["stages"]] == ["embed", "cluster", "describe", "map"]
    assert {"embedding_id", "run_id", "description_id"} <= set(snap["result"])


@pytest.mark.parametrize("bad", ["job-../../etc", "job-0123456789ABCDEF", "job-0123456789abcdef\n", "x", 7, None])
def test_a_job_id_from_outside_is_checked_against_the_grammar(ws, bad):
    from textcluster.errors import IdError

    assert not jobs.is_job_id(bad)
    with pytest.raises(IdError, match="is not a job id"):
        JobManager(ws).get(bad)
    assert not (ws.root / "jobs").exists()
