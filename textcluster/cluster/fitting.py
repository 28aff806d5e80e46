"""Fit a clusterer on a seeded subset and label every row, in chunks.

:func:`fit_assign` is the clustering step of the cluster stage: fit ``cfg.method`` on
``fit_size`` seeded rows (all rows by default), label the other rows in chunks with the
method's ``predict`` (nearest centre for centroid methods), handle noise, and compute the
centres in the space the clusterer saw (member means where the method has no centres of
its own).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from textcluster.cluster.autok import choose_k
from textcluster.cluster.distances import CHUNK_ROWS, member_means, nearest_center
from textcluster.cluster.protocol import Clusterer, Hooks
from textcluster.cluster.registry import (
    check_clusterer,
    get_clusterer,
    make_clusterer,
    select_fit_rows,
)
from textcluster.config import ClustererConfig
from textcluster.progress import Meter, ProgressFn, check_cancel


@dataclass
class ClusterOutput:
    """What :func:`fit_assign` returns.

    labels (n,) int32 (-1 = noise); centers (k, d) float32 in the clusterer's space;
    probabilities (n,) float32 or None; model: the fitted clusterer; fit_idx: fitted rows
    (None = all); noise_before_assign: noise share before ``noise='assign'``; history: the
    clusterer's training curves, when it has them.
    """

    labels: np.ndarray
    centers: np.ndarray
    probabilities: np.ndarray | None
    model: Clusterer
    fit_idx: np.ndarray | None
    noise_before_assign: float
    history: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    auto_k: Any = None
    cfg: ClustererConfig | None = None


def _predict(model: Clusterer, X: np.ndarray, strength: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if strength:
        lab, pr = model.predict_strength(X)  # type: ignore[attr-defined]
        return np.asarray(lab, dtype=np.int32), np.asarray(pr, dtype=np.float32)
    return np.asarray(model.predict(X), dtype=np.int32), None


def fit_assign(
    Z: np.ndarray,
    cfg: ClustererConfig,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ClusterOutput:
    """Fit ``cfg.method`` on a seeded subset of ``Z`` (n, d) and label every row.

    Rows outside the subset are labelled in chunks by the method's ``predict``; with
    ``cfg.noise == "assign"`` noise rows then join the nearest centre. Centres are the
    method's own (k-means, GMM) or member means (others), in ``Z``'s space. Methods with
    long fits (self-training) report progress and stop when ``cancel`` is set.

    With ``cfg.k == "auto"`` (methods that take k) k is first chosen by
    :func:`~textcluster.cluster.autok.choose_k` on ``Z`` (the cluster stage resolves it
    before, on the embedding, so that the choice does not depend on the reducer).
    """
    n = Z.shape[0]
    check_clusterer(cfg, n)
    info = get_clusterer(cfg.method)
    auto = None
    if info.uses_k and cfg.k == "auto":
        auto = choose_k(Z, k_range=cfg.k_range, seed=cfg.seed, cancel=cancel)
        cfg = replace(cfg, k=auto.chosen)
    meter = Meter("cluster", 3, progress, estimate=False)
    fit_idx = select_fit_rows(n, cfg)
    Zfit = np.asarray(Z if fit_idx is None else Z[fit_idx])
    meter.update(0, f"fitting {cfg.method} on {Zfit.shape[0]} rows")
    model = make_clusterer(cfg, Hooks(progress, cancel) if info.takes_hooks else None).fit(Zfit)
    check_cancel(cancel, "cluster")
    meter.update(1, "assigning rows")
    fit_prob = getattr(model, "probabilities_", None)
    strength = info.has_probabilities and hasattr(model, "predict_strength")
    if fit_idx is None:
        labels = np.asarray(model.labels_, dtype=np.int32)
        probs = None if fit_prob is None else np.asarray(fit_prob, dtype=np.float32)
    elif info.assign in ("centroid", "model"):
        # every row, fitted or not, goes through the same prediction, as a saved run will
        labels = np.empty(n, dtype=np.int32)
        probs = np.empty(n, dtype=np.float32) if strength else None
        for s in range(0, n, CHUNK_ROWS):
            check_cancel(cancel, "cluster")
            lab, pr = _predict(model, np.asarray(Z[s : s + CHUNK_ROWS]), strength)
            labels[s : s + lab.shape[0]] = lab
            if probs is not None and pr is not None:
                probs[s : s + lab.shape[0]] = pr
    else:
        labels = np.empty(n, dtype=np.int32)
        labels[fit_idx] = model.labels_
        probs = np.empty(n, dtype=np.float32) if fit_prob is not None else None
        if probs is not None:
            probs[fit_idx] = fit_prob
        rest = np.setdiff1d(np.arange(n), fit_idx, assume_unique=True)
        for s in range(0, rest.shape[0], CHUNK_ROWS):
            check_cancel(cancel, "cluster")
            idx = rest[s : s + CHUNK_ROWS]
            lab, pr = _predict(model, np.asarray(Z[idx]), strength and probs is not None)
            labels[idx] = lab
            if probs is not None:
                probs[idx] = pr if pr is not None else np.nan
    noise_before = float(np.mean(labels < 0))
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    own = getattr(model, "cluster_centers_", None)
    if own is not None and info.assign != "knn" and own.shape[1] == Z.shape[1]:
        centers = np.asarray(own, dtype=np.float32)
    else:
        centers = member_means(Z, labels, k)
    if cfg.noise == "assign" and k > 0 and noise_before > 0:
        noise = np.flatnonzero(labels < 0)
        for s in range(0, noise.shape[0], CHUNK_ROWS):
            idx = noise[s : s + CHUNK_ROWS]
            labels[idx] = nearest_center(np.asarray(Z[idx]), centers)[0]
        if info.assign == "knn":
            centers = member_means(Z, labels, k)
    meter.update(3, "done")
    return ClusterOutput(
        labels=labels,
        centers=centers,
        probabilities=probs,
        model=model,
        fit_idx=fit_idx,
        noise_before_assign=noise_before,
        history=getattr(model, "history_", None),
        auto_k=auto,
        cfg=cfg,
    )
