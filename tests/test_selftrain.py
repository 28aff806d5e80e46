"""Self-training clusterer: recovers clusters, is seeded, minimises KL, stops as told.

Every test that trains is marked slow; the fast tier keeps the argument checks, the
constructor and the kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from textcluster.cluster.selftrain import (
    NotFittedError,
    SelfTrainingClusterer,
    student_t,
    target_distribution,
)
from textcluster.errors import ConfigError

SMALL = dict(hidden=(32, 32), latent_dim=4, pretrain_epochs=15, batch_size=64, device="cpu")


def blobs(n_per: int = 80, k: int = 4, d: int = 24, spread: float = 0.35, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    y = np.repeat(np.arange(k), n_per)
    X = centers[y] + spread * rng.normal(size=(len(y), d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # like sentence embeddings
    return X.astype(np.float32), y


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Train on one torch thread in this module (restored afterwards).

    The networks here are tiny (32 units, batches of 64): a second intra-op thread buys
    nothing, and on a busy 2-core machine its OpenMP spin-waits cost 5-10x the CPU (the same
    fits under load: 14-25 CPU-s on two threads, 2 CPU-s on one). Module-scoped so that the
    module-scoped ``fitted`` below trains on one thread too. Seeded runs on two threads are
    checked by ``test_same_seed_same_labels_and_other_seed_runs[2-threads]``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return blobs()


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return SelfTrainingClusterer(4, seed=3, max_iter=300, update_interval=20, **SMALL).fit(X)


@pytest.mark.slow
def test_recovers_separable_clusters(data, fitted):
    _, y = data
    assert adjusted_rand_score(y, fitted.labels_) > 0.9
    assert fitted.labels_.shape == y.shape and fitted.labels_.dtype == np.int64


@pytest.mark.slow
def test_centers_are_member_means_in_input_space(data, fitted):
    X, _ = data
    assert fitted.cluster_centers_.shape == (4, X.shape[1])
    assert fitted.cluster_centers_.dtype == np.float32
    for j in range(4):
        np.testing.assert_allclose(
            fitted.cluster_centers_[j], X[fitted.labels_ == j].mean(axis=0), rtol=1e-5, atol=1e-6
        )
    # nearest-centre assignment in X space agrees with the labels on separable data
    d = ((X[:, None, :] - fitted.cluster_centers_[None]) ** 2).sum(-1)
    assert (d.argmin(1) == fitted.labels_).mean() > 0.95


@pytest.mark.slow
def test_predict_on_training_rows_equals_labels_exactly(data, fitted):
    X, _ = data
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    q = fitted.predict_proba(X)
    assert q.shape == (len(X), 4) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def torch_threads(request):
    """Run the test on 1, then on 2 torch threads; back to the module's one thread after."""
    import torch

    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(1)


@pytest.mark.slow
def test_same_seed_same_labels_and_other_seed_runs(data, torch_threads):
    X, _ = data
    # reproducibility needs a pretraining and a refinement, not their length: 5 epochs, 2 refreshes
    kw = dict(max_iter=20, update_interval=10, **{**SMALL, "pretrain_epochs": 5})
    a = SelfTrainingClusterer(4, seed=7, **kw).fit(X)
    b = SelfTrainingClusterer(4, seed=7, **kw).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.history_["pretrain_loss"], b.history_["pretrain_loss"])
    c = SelfTrainingClusterer(4, seed=8, **kw).fit(X)
    assert c.history_["pretrain_loss"] != a.history_["pretrain_loss"]


@pytest.mark.slow
def test_fit_leaves_global_torch_state_alone(data):
    import torch

    X, _ = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = torch.are_deterministic_algorithms_enabled()
    SelfTrainingClusterer(4, seed=0, max_iter=10, **SMALL).fit(X)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_reconstruction_and_kl_losses_decrease():
    # Overlapping blobs so the self-training has something to sharpen.
    X, _ = blobs(n_per=60, spread=1.2, seed=1)
    m = SelfTrainingClusterer(4, seed=0, max_iter=200, update_interval=10, tol=0.0, **SMALL).fit(X)
    h = m.history_
    assert h["pretrain_loss"][-1] < h["pretrain_loss"][0]
    assert len(h["kl_loss"]) == len(h["kl_loss_start"]) == len(h["label_change"]) == 20
    # Under each period's fixed target P, the training lowers KL(P || Q) on all rows.
    assert all(end < start for start, end in zip(h["kl_loss_start"], h["kl_loss"], strict=True))
    assert h["stop_reason"] == "max_iter" and m.n_iter_ == 200


@pytest.mark.slow
def test_stops_when_labels_settle(data):
    X, _ = data
    m = SelfTrainingClusterer(4, seed=3, max_iter=5000, update_interval=10, tol=0.01, **SMALL).fit(
        X
    )
    h = m.history_
    assert h["stop_reason"] == "tol"
    assert h["label_change"][-1] < 0.01
    assert m.n_iter_ == h["refresh_step"][-1] < 5000


@pytest.mark.slow
def test_max_iter_caps_training(data):
    X, _ = data
    m = SelfTrainingClusterer(4, seed=3, max_iter=25, update_interval=10, tol=0.0, **SMALL).fit(X)
    assert m.n_iter_ == 25 and m.history_["stop_reason"] == "max_iter"
    assert m.history_["refresh_step"] == [10, 20, 25]
    assert len(m.history_["pretrain_loss"]) == SMALL["pretrain_epochs"]


def test_pretrain_steps_are_capped(data):
    X, _ = data  # 320 rows / 64 = 5 batches per epoch
    m = SelfTrainingClusterer(
        4, seed=0, max_iter=0, **{**SMALL, "pretrain_epochs": 50}, max_pretrain_steps=12
    ).fit(X)
    assert len(m.history_["pretrain_loss"]) == 3


@pytest.mark.slow
def test_progress_and_cancel(data):
    import threading

    from textcluster.errors import JobCancelled

    X, _ = data
    seen = []
    SelfTrainingClusterer(
        4, seed=0, max_iter=20, update_interval=10, tol=0.0, progress=seen.append, **SMALL
    ).fit(X)
    assert {p.stage for p in seen} == {"cluster"} and seen[-1].done > 0
    ev = threading.Event()
    ev.set()
    with pytest.raises(JobCancelled, match="self-training cancelled"):
        SelfTrainingClusterer(4, cancel=ev, **SMALL).fit(X)


def test_errors_name_the_value(data):
    X, _ = data
    with pytest.raises(NotFittedError, match="not fitted"):
        SelfTrainingClusterer(4).predict(X)
    with pytest.raises(ConfigError, match="n_samples=320 should be >= k=500"):
        SelfTrainingClusterer(500, **SMALL).fit(X)
    with pytest.raises(ConfigError, match=r"tol=1\.5"):
        SelfTrainingClusterer(4, tol=1.5, **SMALL).fit(X)
    with pytest.raises(ConfigError, match="device='tpu'"):
        SelfTrainingClusterer(4, **{**SMALL, "device": "tpu"}).fit(X)
    with pytest.raises(ConfigError, match=r"shape \(320,\)"):
        SelfTrainingClusterer(4, **SMALL).fit(X[:, 0])
    with pytest.raises(ConfigError, match="NaN"):
        SelfTrainingClusterer(4, **SMALL).fit(np.full_like(X, np.nan))
    m = SelfTrainingClusterer(4, max_iter=0, **SMALL).fit(X)
    with pytest.raises(ConfigError, match="X has 3 columns; the clusterer was fitted on 24"):
        m.predict(X[:, :3])


def test_constructor_only_stores():
    m = SelfTrainingClusterer(3, 5, tol=-1.0, hidden=())  # invalid, but not checked until fit
    assert (m.k, m.seed, m.tol, m.hidden) == (3, 5, -1.0, ())
    assert not hasattr(m, "labels_") and SelfTrainingClusterer.can_mark_noise is False


def test_target_distribution_sharpens():
    import torch

    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    q = student_t(z, torch.tensor([[0.0, 0.0], [3.0, 0.0]]))
    q = q.numpy()
    np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-6)
    p = target_distribution(q)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    # balanced clusters: every point leans further towards its nearest centre
    assert p[0, 0] > q[0, 0] > 0.5 and p[1, 0] > q[1, 0] > 0.5 and p[3, 1] > q[3, 1] > 0.5


@pytest.mark.slow
def test_through_the_clusterer_registry(data):
    """The registry entry passes ClustererConfig.params (JSON: lists) to the class."""
    from textcluster.cluster.fitting import fit_assign
    from textcluster.config import ClustererConfig

    X, y = data
    params = {**SMALL, "hidden": [32, 32], "max_iter": 100, "update_interval": 20}
    cfg = ClustererConfig(method="self-training", k=4, seed=3, params=params)
    out = fit_assign(X, cfg)
    assert adjusted_rand_score(y, out.labels) > 0.9
    assert out.centers.shape == (4, X.shape[1])
    assert out.history is None or out.history["stop_reason"] in ("tol", "max_iter")


@pytest.mark.slow
def test_registry_passes_progress_and_cancel(data):
    """fit_assign hands progress and cancel to the self-training clusterer itself."""
    import threading

    from textcluster.cluster.fitting import fit_assign
    from textcluster.config import ClustererConfig
    from textcluster.errors import JobCancelled

    X, _ = data
    params = {**SMALL, "hidden": [32, 32], "max_iter": 20, "update_interval": 10, "tol": 0.0}
    cfg = ClustererConfig(method="self-training", k=4, seed=0, params=params)
    seen = []
    fit_assign(X, cfg, progress=seen.append)
    assert any(p.total == 20 for p in seen)  # the refinement meter (max_iter steps), not fit_assign's 3
    ev = threading.Event()
    ev.set()
    # stops inside the training ("self-training cancelled"), not after it ("cluster cancelled")
    with pytest.raises(JobCancelled, match="self-training cancelled"):
        fit_assign(X, ClustererConfig(method="self-training", k=4, params={**params, "max_iter": 10_000}), cancel=ev)


@pytest.mark.slow
def test_graph_ward_init(data):
    from textcluster.cluster.graphward import GraphWardClusterer

    X, y = data
    m = SelfTrainingClusterer(
        4, seed=3, init="graph-ward", max_iter=100, update_interval=20, **SMALL
    ).fit(X)
    np.testing.assert_array_equal(m.init_labels_, GraphWardClusterer(4).fit(X).labels_)
    assert adjusted_rand_score(y, m.labels_) > 0.9
    with pytest.raises(ConfigError, match="init='spectral' should be one of kmeans, graph-ward"):
        SelfTrainingClusterer(4, init="spectral", **SMALL).fit(X)
