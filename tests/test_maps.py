"""The 2-D map never holds the clusters back: a deferred run is written with a provisional
PCA layout, the final map follows in the pipeline's ``map`` stage (chunked, with an ETA),
is cached per embedding, and a cancelled job relaunched finds what is cached.

UMAP itself is replaced by a small deterministic stand-in (``SlowUMAP``) where the point is
the orchestration (UMAP compiles for a minute in a fresh process); one slow test runs it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from textcluster import jobs
from textcluster.cluster import maps, runs
from textcluster.cluster import reduce as red
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.errors import JobCancelled
from textcluster.jobs import JobManager
from textcluster.store import Workspace


class SlowUMAP:
    """Stands in for red.UMAPReducer: a fixed 2-D linear map; records the rows it saw."""

    calls: list[tuple[str, int]] = []
    delay = 0.0

    def __init__(self, dims, n_neighbors, min_dist, metric, seed):
        self.metric = metric

    def fit(self, X):
        SlowUMAP.calls.append(("fit", X.shape[0]))
        self.embedding_ = np.asarray(X[:, :2], dtype=np.float32) * 10
        return self

    def transform(self, X):
        SlowUMAP.calls.append(("transform", X.shape[0]))
        time.sleep(SlowUMAP.delay)
        return np.asarray(X[:, :2], dtype=np.float32) * 10


@pytest.fixture
def fake_umap(monkeypatch):
    SlowUMAP.calls = []
    SlowUMAP.delay = 0.0
    monkeypatch.setattr(red, "UMAPReducer", SlowUMAP)
    monkeypatch.setattr(maps, "MAP_FIT_ROWS", 100)
    monkeypatch.setattr(maps, "MAP_CHUNK_ROWS", 50)
    return SlowUMAP


def _corpus(ws: Workspace, n: int = 400) -> str:
    from fake_encoder import make_corpus

    return make_corpus(ws, [f"text {i} about {'cats' if i % 2 else 'dogs'} and {i % 7}" for i in range(n)])


def _embedding(ws: Workspace, fake, n: int = 400) -> str:
    from textcluster.embed.engine import embed

    return embed(ws, _corpus(ws, n), EncoderConfig(name="fake")).embedding_id


def test_deferred_run_has_a_provisional_map_then_the_final_one(tmp_path, fake, fake_umap):
    ws = Workspace(tmp_path)
    eid = _embedding(ws, fake)
    res = runs.cluster(ws, eid, ReducerConfig(), ClustererConfig(k=2), defer_map=True)
    assert not fake_umap.calls, "no UMAP before the run is written"
    proj = ws.manifest(res.run_id).projection
    assert proj["method"] == "pca" and proj["provisional"] is True and proj["final"]["method"] == "umap"
    coords, info = maps.load_map(ws, res.run_id)
    assert info == {"method": "pca", "final": False} and coords.shape == (400, 2)

    reports = []
    out = maps.project(ws, res.run_id, progress=reports.append)
    assert out.method == "umap" and not out.cached
    # fitted on the seeded subset, the rest placed in chunks: 100 + 6 x 50 rows
    assert fake_umap.calls[0] == ("fit", 100) and [c for c in fake_umap.calls[1:]] == [("transform", 50)] * 6
    chunked = [r for r in reports if r.stage == "map" and 100 < r.done < 400]
    assert chunked and all(r.eta_s is not None for r in chunked), "an ETA from the measured rate"
    final, info = maps.load_map(ws, res.run_id)
    assert info == {"method": "umap", "final": True}
    X = np.load(ws.path(eid) / "embeddings.npy")
    np.testing.assert_allclose(final, X[:, :2] * 10, atol=1e-6)

    # cached per embedding: again is a no-op, and a run with another k takes it as its own map
    assert maps.project(ws, res.run_id).cached
    other = runs.cluster(ws, eid, ReducerConfig(), ClustererConfig(k=3), defer_map=True)
    assert ws.manifest(other.run_id).projection == {"method": "umap", "cached": True, "file": out.path.split("/")[-1]}
    np.testing.assert_allclose(np.load(ws.path(other.run_id) / "coords2d.npy"), final)
    assert len([c for c in fake_umap.calls if c[0] == "fit"]) == 1


def test_a_tampered_map_file_name_never_reaches_a_path(tmp_path, fake, fake_umap):
    import json

    ws = Workspace(tmp_path)
    eid = _embedding(ws, fake, 60)
    rid = runs.cluster(ws, eid, ReducerConfig(), ClustererConfig(k=2), defer_map=True).run_id
    mpath = ws.path(rid) / "manifest.json"
    data = json.loads(mpath.read_text())
    data["projection"]["final"]["file"] = "../../../etc/passwd"
    mpath.write_text(json.dumps(data))
    coords, info = maps.load_map(ws, rid)  # falls back to the run's own layout
    assert coords.shape == (60, 2) and info["final"] is False


def test_pipeline_writes_and_describes_the_clusters_before_the_map(tmp_path, fake, fake_umap):
    from textcluster.pipeline import run_corpus

    ws = Workspace(tmp_path)
    cid = _corpus(ws)
    events = []

    def on_stage(name, status, info):
        ready = None
        if name == "map" and status == "running":
            rid = events_run[0]
            ready = ws.exists(rid) and ws.manifest(rid).projection.get("provisional") is True
        events.append((name, status, ready))

    events_run: list[str] = []

    def on_stage_rec(name, status, info):
        if "run_id" in info:
            events_run.append(info["run_id"])
        on_stage(name, status, info)

    res = run_corpus(ws, cid, EncoderConfig(name="fake"), ReducerConfig(), ClustererConfig(k=2), on_stage=on_stage_rec)
    order = [(n, s) for n, s, _ in events]
    assert order.index(("describe", "done")) < order.index(("map", "running"))
    assert ("map", "running", True) in events  # the run (with its provisional map) existed already
    assert res.timings["clusters_ready"] < res.timings["total"]
    assert maps.load_map(ws, res.run.run_id)[1]["final"] is True


def test_a_job_cancelled_in_the_map_relaunched_reuses_everything_cached(tmp_path, fake, fake_umap):
    ws = Workspace(tmp_path)
    cid = _corpus(ws)
    built, opts = fake
    fake_umap.delay = 0.2
    enc, red_cfg, clu = EncoderConfig(name="fake"), ReducerConfig(), ClustererConfig(k=2)
    mgr = JobManager(ws)
    job = jobs.submit_pipeline(ws, cid, enc, red_cfg, clu, manager=mgr)
    deadline = time.monotonic() + 30
    while not any(c[0] == "transform" for c in fake_umap.calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    # the clusters are on the job's results while the map is still being computed
    snap = job.snapshot()
    assert {"run_id", "description_id"} <= set(snap["result"]) and snap["status"] == "running"
    job.cancel()
    assert job.wait(30)["status"] == "cancelled"
    encoded = sum(len(b.seen) for b in built)

    fake_umap.delay = 0.0
    again = jobs.submit_pipeline(ws, cid, enc, red_cfg, clu, manager=mgr)
    snap = again.wait(60)
    assert snap["status"] == "done", snap["error"]
    assert sum(len(b.seen) for b in built) == encoded, "nothing encoded again"
    marks = {s["name"]: s["status"] for s in snap["stages"]}
    assert marks["embed"] == marks["cluster"] == marks["describe"] == "cached" and marks["map"] == "done"

    # a third launch finds the map cached too (the job is done: submit a copy with another top_n)
    third = jobs.submit_pipeline(ws, cid, enc, red_cfg, clu, top_n=5, manager=mgr).wait(60)
    assert {s["name"]: s["status"] for s in third["stages"]}["map"] == "cached"


def test_project_is_cancellable_between_chunks(tmp_path, fake, fake_umap):
    ws = Workspace(tmp_path)
    eid = _embedding(ws, fake)
    rid = runs.cluster(ws, eid, ReducerConfig(), ClustererConfig(k=2), defer_map=True).run_id
    cancel = threading.Event()

    def stop_after_first_chunk(report):
        if report.done > 100:
            cancel.set()

    with pytest.raises(JobCancelled):
        maps.project(ws, rid, progress=stop_after_first_chunk, cancel=cancel)
    assert maps.load_map(ws, rid)[1]["final"] is False  # nothing half-written is served


@pytest.mark.slow
def test_real_umap_map_reuses_the_reduced_space(tmp_path, fake):
    ws = Workspace(tmp_path)
    eid = _embedding(ws, fake, 300)
    reducer = ReducerConfig(method="umap", dims=3)  # the fake encoder has 4 dimensions
    rid = runs.cluster(ws, eid, reducer, ClustererConfig(k=2), defer_map=True).run_id
    pending = ws.manifest(rid).projection["final"]
    assert pending["space"] is not None  # the 3-d UMAP space, not the embedding
    out = maps.project(ws, rid)
    coords, info = maps.load_map(ws, rid)
    assert info["final"] and coords.shape == (300, 2) and np.isfinite(coords).all() and not out.cached


def test_provisional_layout_is_a_pca_plane_fitted_on_a_sample(monkeypatch):
    """The quick layout of a large matrix: (n, 2) float32, finite, deterministic, fitted on a
    seeded subset, and spanning (nearly) the plane of the whole matrix's exact PCA."""
    monkeypatch.setattr(maps, "PROVISIONAL_FIT_ROWS", 500)
    rng = np.random.default_rng(3)
    plane = rng.normal(size=(3000, 2)) * [5.0, 3.0]  # planted 2-D structure in 32 dims, plus noise
    X = (plane @ rng.normal(size=(2, 32)) + rng.normal(scale=0.3, size=(3000, 32))).astype(np.float32)
    seen = []
    real_fit = red.PCAReducer.fit
    monkeypatch.setattr(red.PCAReducer, "fit", lambda self, A: (seen.append(A.shape[0]), real_fit(self, A))[1])
    Z = maps.provisional(X)
    assert seen == [500], "fitted on the seeded subset, not on every row"
    assert Z.shape == (3000, 2) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert Z[:, 0].std() > Z[:, 1].std() > 0
    np.testing.assert_array_equal(Z, maps.provisional(X))
    exact = red.PCAReducer(2).fit(X).transform(X)
    coef, *_ = np.linalg.lstsq(np.c_[Z, np.ones(len(Z))], exact, rcond=None)
    resid = exact - np.c_[Z, np.ones(len(Z))] @ coef
    assert 1 - resid.var(0).sum() / exact.var(0).sum() > 0.99  # the same plane, up to a rotation
    small = maps.provisional(X[:100])  # below the subset size: the exact PCA of every row
    np.testing.assert_allclose(small, red.PCAReducer(2).fit(X[:100]).transform(X[:100]), atol=1e-5)
