"""Progress reports: rate and ETA for row-counted stages, no ETA for step-counted ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from test_runs import write_embedding

from textcluster.cluster import runs
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import JobCancelled
from textcluster.progress import Meter, Progress, check_cancel
from textcluster.store import Workspace


def test_row_meter_reports_rate_and_eta() -> None:
    seen: list[Progress] = []
    m = Meter("embed", 100, seen.append)
    m.t0 -= 1.0  # one second has passed
    m.update(50)
    p = seen[-1]
    assert p.done == 50 and p.fraction == 0.5
    assert p.rate > 0 and p.eta_s is not None and p.eta_s == pytest.approx(50 / p.rate)


def test_step_meter_gives_no_eta() -> None:
    seen: list[Progress] = []
    m = Meter("cluster", 4, seen.append, estimate=False)
    m.t0 -= 1.0
    m.update(1, "fitting")
    assert seen[-1].eta_s is None and seen[-1].message == "fitting"


def test_cluster_stage_names_its_steps_without_a_misleading_eta(tmp_path) -> None:
    X, _ = make_blobs(200, n_features=8, centers=3, random_state=0)
    ws = Workspace(tmp_path / "ws")
    eid = write_embedding(ws, X.astype(np.float32))
    seen: list[Progress] = []
    runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=3), progress=seen.append)
    mine = [p for p in seen if p.stage == "cluster" and p.total == 4]
    assert [p.done for p in mine][-1] == 4
    assert all(p.eta_s is None for p in mine)
    assert any(p.message == "2-D map (pca)" for p in mine)


def test_check_cancel() -> None:
    ev = threading.Event()
    check_cancel(ev, "embed")
    ev.set()
    with pytest.raises(JobCancelled, match="embed cancelled"):
        check_cancel(ev, "embed")
