"""app.py starts the UMAP warm-up once per process, in a daemon thread, unless told not to."""

from __future__ import annotations

import threading

import streamlit as st
from apphelpers import APP, assert_clean
from streamlit.testing.v1 import AppTest

from textcluster.cluster import reduce


def test_warm_up_runs_once_per_process_in_a_daemon_thread(app_ws, monkeypatch) -> None:
    calls: list[tuple[str, bool]] = []
    done = threading.Event()

    def fake_warm_up() -> float:
        t = threading.current_thread()
        calls.append((t.name, t.daemon))
        done.set()
        return 0.0

    monkeypatch.setattr(reduce, "warm_up", fake_warm_up)
    monkeypatch.delenv("TEXTCLUSTER_NO_WARMUP", raising=False)
    st.cache_resource.clear()
    try:
        for _ in range(2):  # two sessions / reruns: one warm-up
            at = AppTest.from_file(APP, default_timeout=60)
            at.run()
            assert_clean(at)
        assert done.wait(10)
        assert calls == [("umap-warm-up", True)]
    finally:
        st.cache_resource.clear()


def test_no_warm_up_when_the_env_says_so(app_ws, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(reduce, "warm_up", lambda: calls.append(1) or 0.0)
    monkeypatch.setenv("TEXTCLUSTER_NO_WARMUP", "1")
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        assert_clean(at)
        assert calls == []
    finally:
        st.cache_resource.clear()
