"""The clusterer registry: one name -> :class:`~textcluster.cluster.protocol.ClustererInfo` table.

It is the one place that knows each method: the CLI's ``--method`` choices and help, the
app's clusterer box, the validation of every setting (:func:`validate_clusterer`, run
before anything is computed), the fields that make a run's id (:func:`cache_key`: a
setting the method ignores does not change the id) and how many rows a method is
fitted on (:func:`fit_rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textcluster.cluster.agglomerative import AGGLOMERATIVE
from textcluster.cluster.dbscan import DBSCAN
from textcluster.cluster.gmm import GMM
from textcluster.cluster.graphward import GRAPH_WARD
from textcluster.cluster.hdbscan import HDBSCAN
from textcluster.cluster.kmeans import KMEANS, MINIBATCH_KMEANS
from textcluster.cluster.protocol import Clusterer, ClustererInfo, Hooks
from textcluster.cluster.selftrain import SELF_TRAINING
from textcluster.config import ClustererConfig
from textcluster.errors import ConfigError

#: Every clusterer, by name, in the order the CLI and the app list them.
CLUSTERERS: dict[str, ClustererInfo] = {
    info.name: info
    for info in (KMEANS, MINIBATCH_KMEANS, GMM, HDBSCAN, DBSCAN, AGGLOMERATIVE, GRAPH_WARD, SELF_TRAINING)
}


def get_clusterer(name: str) -> ClustererInfo:
    """The registry entry for ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return CLUSTERERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"method={name!r} should be one of {', '.join(CLUSTERERS)}") from None


def check_params(cfg: ClustererConfig) -> dict[str, Any]:
    """The method-specific ``cfg.params``, checked against the method's schema and complete
    (absent keys take their default). Unknown keys, wrong types and out-of-range values raise
    :class:`ConfigError` naming the key, the value and what is allowed."""
    info = get_clusterer(cfg.method)
    if not isinstance(cfg.params, dict):
        raise ConfigError(f"params={cfg.params!r} should be a mapping of setting names to values")
    unknown = sorted(k for k in cfg.params if k not in info.params)
    if unknown:
        key = unknown[0]
        known = ", ".join(info.params) if info.params else "none"
        raise ConfigError(
            f"{info.name} has no parameter {key!r} (got {key}={cfg.params[key]!r}); its parameters: {known}"
        )
    return {
        name: spec.check(info.name, name, cfg.params[name]) if name in cfg.params else spec.default
        for name, spec in info.params.items()
    }


def validate_clusterer(cfg: ClustererConfig) -> ClustererConfig:
    """Check everything about ``cfg`` that does not depend on the data; returns ``cfg``.

    The common fields (:meth:`ClustererConfig.validate`), the method name and the
    method's parameters (:func:`check_params`).
    """
    cfg.validate()
    check_params(cfg)
    return cfg


def make_clusterer(cfg: ClustererConfig, hooks: Hooks | None = None) -> Clusterer:
    """A new, unfitted clusterer for ``cfg`` (validated), with progress / cancel hooks for
    the methods that take them."""
    info = get_clusterer(cfg.method)
    validate_clusterer(cfg)
    return info.factory(cfg, check_params(cfg), hooks or Hooks())


def cache_key(cfg: ClustererConfig) -> dict[str, Any]:
    """What a run's id hashes for its clusterer: the method, the fields it reads (``k`` may be
    ``"auto"``, then ``k_range`` when given), the fit subset, the seed, ``noise`` for methods
    that can mark noise, the parameters that differ from their defaults, and ``outliers`` /
    ``stability`` when set. A setting the method ignores (``eps`` for k-means, ``k``
    for HDBSCAN, a parameter given at its default value) does not change the key."""
    info = get_clusterer(cfg.method)
    params = check_params(cfg)
    key: dict[str, Any] = {"method": info.name}
    key.update({f: getattr(cfg, f) for f in info.fields})
    if info.uses_k and cfg.k == "auto" and cfg.k_range is not None:
        key["k_range"] = list(cfg.k_range)
    key["fit_size"] = cfg.fit_size
    key["seed"] = cfg.seed
    if info.can_mark_noise:
        key["noise"] = cfg.noise
    changed = {k: v for k, v in params.items() if v != info.params[k].default}
    if changed:
        key["params"] = changed
    # in the key only when set, so runs made before these settings existed keep their ids
    if cfg.outliers is not None:
        key["outliers"] = float(cfg.outliers)
    if cfg.stability is not None:
        key["stability"] = cfg.stability
    return key


def fit_rows(n: int, cfg: ClustererConfig) -> int:
    """How many rows the clusterer is fitted on for an input of ``n`` rows."""
    cap = cfg.fit_size
    info = get_clusterer(cfg.method)
    if cap is None and info.max_fit is not None:
        cap = info.max_fit
    return n if cap is None else min(n, cap)


def select_fit_rows(n: int, cfg: ClustererConfig) -> np.ndarray | None:
    """Sorted row indices of the seeded fit subset, or None when fitting on all ``n`` rows."""
    m = fit_rows(n, cfg)
    if m >= n:
        return None
    return np.sort(np.random.default_rng(cfg.seed).choice(n, size=m, replace=False))


def check_clusterer(cfg: ClustererConfig, n: int) -> None:
    """Raise :class:`ConfigError` when ``cfg`` cannot cluster ``n`` rows (after
    :func:`validate_clusterer`): k above the fitted rows, a minimum cluster size above them."""
    validate_clusterer(cfg)
    info = get_clusterer(cfg.method)
    if n < 1:
        raise ConfigError("cannot cluster an empty input (n_samples=0)")
    n_fit = fit_rows(n, cfg)
    what = "n_samples" if n_fit == n else "fitted rows"
    if info.uses_k and cfg.k == "auto":
        if cfg.k_range is not None and cfg.k_range[1] > n_fit:
            lo, hi = cfg.k_range
            raise ConfigError(
                f"k range {lo}:{hi} is larger than the number of documents (k_max={hi} > {what}={n_fit})"
            )
        if n_fit < 3:
            raise ConfigError(f"automatic k needs at least 3 rows ({what}={n_fit}); pass a k")
    elif info.uses_k and cfg.k > n_fit:
        raise ConfigError(f"k={cfg.k} should be <= {what}={n_fit}")
    if "min_cluster_size" in info.fields and cfg.min_cluster_size > n_fit:
        raise ConfigError(f"min_cluster_size={cfg.min_cluster_size} should be <= {what}={n_fit}")
