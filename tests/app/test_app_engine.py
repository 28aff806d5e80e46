"""Pipeline page: the engine choice appears only with a configured Ray address, and a Ray job
that cannot reach its cluster fails with a clear error (no hang)."""

from __future__ import annotations

import socket

import pytest
from apphelpers import assert_clean, open_page, shown

from textcluster import jobs
from textcluster.engines import ENV_RAY_ADDRESS


def test_no_engine_choice_without_a_ray_address(app_ws, app_corpus, monkeypatch):
    monkeypatch.delenv(ENV_RAY_ADDRESS, raising=False)
    at = open_page("views/pipeline.py")
    assert_clean(at)
    assert not [r for r in at.radio if r.key == "pipe_engine"]


def test_a_ray_job_that_cannot_reach_its_cluster_fails_clearly(app_ws, app_corpus, monkeypatch):
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV_RAY_ADDRESS, f"127.0.0.1:{port}")
    at = open_page("views/pipeline.py")
    assert_clean(at)
    at.selectbox(key="pipe_projection").set_value("pca").run()
    assert at.radio(key="pipe_engine").options == ["local", "ray"]
    at.radio(key="pipe_engine").set_value("ray").run()
    assert any(f"127.0.0.1:{port}" in shown(c.value) for c in at.caption)
    at.button(key="pipe_launch").click().run()
    job = jobs.get_manager(app_ws).latest("pipeline")
    snap = job.wait(60)
    assert snap["config"]["engine"]["address"] == f"127.0.0.1:{port}"
    assert snap["status"] == "failed" and "cannot reach the Ray cluster" in snap["error"], snap
    at.run()
    assert any("cannot reach the Ray cluster" in e.value for e in at.error)
