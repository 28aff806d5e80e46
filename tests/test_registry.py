"""The clusterer registry: the protocol, parameter schemas, validation in one place, run ids."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from textcluster.cluster import registry
from textcluster.cluster.protocol import Clusterer, Param
from textcluster.cluster.runs import run_id_for
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import ConfigError

EMB = "emb-0123456789abcdef"


def test_every_method_builds_a_clusterer_that_follows_the_protocol():
    X, _ = make_blobs(120, n_features=4, centers=3, random_state=0)
    X = X.astype(np.float32)
    for name, info in registry.CLUSTERERS.items():
        params = {"max_iter": 5, "pretrain_epochs": 1, "n_init": 1, "device": "cpu"} if name == "self-training" else {}
        cfg = ClustererConfig(method=name, k=3, min_cluster_size=5, eps=1.0, params=params)
        model = registry.make_clusterer(cfg).fit(X)
        assert isinstance(model, Clusterer), name  # fit returned self, with labels_ set
        labels = model.predict(X[:7])
        assert labels.shape == (7,) and np.issubdtype(labels.dtype, np.integer), name
        if info.has_probabilities:
            lab, strength = model.predict_strength(X[:7])
            assert lab.shape == strength.shape == (7,), name


def test_schema_defaults_are_the_constructor_defaults():
    """The registry passes every parameter explicitly, so its defaults must be the classes' own."""
    X = np.zeros((4, 2), np.float32)  # only to reach the class through the factory
    for name, info in registry.CLUSTERERS.items():
        cls = type(registry.make_clusterer(ClustererConfig(method=name, k=2, min_cluster_size=2)))
        sig = inspect.signature(cls.__init__).parameters
        for key, spec in info.params.items():
            if key in sig and sig[key].default is not inspect.Parameter.empty:
                assert sig[key].default == spec.default, f"{name}.{key}"
    assert X.shape == (4, 2)


@pytest.mark.parametrize(
    ("method", "params", "match"),
    [
        ("kmeans", {"bogus": 1}, r"kmeans has no parameter 'bogus' \(got bogus=1\); its parameters: n_init"),
        ("dbscan", {"metric": "cosine"}, r"dbscan has no parameter 'metric'.*its parameters: none"),
        ("kmeans", {"n_init": 0}, r"kmeans parameter n_init=0 should be an integer >= 1 or 'auto'"),
        ("kmeans", {"n_init": "3"}, r"n_init='3' should be an integer >= 1 or 'auto'"),
        ("kmeans", {"tol": True}, r"tol=True should be a number >= 0"),
        ("gmm", {"covariance_type": "huge"}, r"covariance_type='huge' should be one of 'full', 'tied'"),
        ("self-training", {"hidden": [64, 0]}, r"hidden=\[64, 0\] should be a list of integers, each >= 1"),
        ("hdbscan", {"allow_single_cluster": "yes"}, r"allow_single_cluster='yes' should be true or false"),
    ],
)
def test_bad_parameters_name_key_value_and_what_is_allowed(method, params, match):
    with pytest.raises(ConfigError, match=match):
        registry.validate_clusterer(ClustererConfig(method=method, params=params))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("k", "5", r"k='5' should be an integer"), ("k", True, "k=True should be an integer"),
     ("fit_size", 2.5, "fit_size=2.5 should be an integer"), ("eps", "0.3", "eps='0.3' should be a number"),
     ("seed", -1, "seed=-1 should be >= 0"), ("method", "kmeens", "method='kmeens' should be one of kmeans")],
)
def test_bad_common_fields_are_typed_errors(field, value, match):
    with pytest.raises(ConfigError, match=match):
        registry.validate_clusterer(ClustererConfig(**{field: value}))


def rid(**kw) -> str:
    return run_id_for(EMB, ReducerConfig(), ClustererConfig(**kw))


def test_a_setting_the_method_ignores_does_not_change_the_run_id():
    base = rid(method="kmeans", k=5)
    assert rid(method="kmeans", k=5, eps=0.9, min_cluster_size=40, min_samples=3, noise="assign") == base
    assert rid(method="kmeans", k=5, params={"n_init": "auto", "tol": 1e-4}) == base  # defaults, spelled out
    assert rid(method="kmeans", k=6) != base
    assert rid(method="kmeans", k=5, params={"n_init": 3}) != base
    hd = rid(method="hdbscan", min_cluster_size=10)
    assert rid(method="hdbscan", min_cluster_size=10, k=99, eps=3.0) == hd
    assert rid(method="hdbscan", min_cluster_size=10, noise="assign") != hd  # noise matters where there is noise
    db = rid(method="dbscan", eps=0.3)
    assert rid(method="dbscan", eps=0.3, k=7, min_cluster_size=99) == db
    assert rid(method="dbscan", eps=0.4) != db


def test_an_unknown_parameter_cannot_reach_a_run_id():
    with pytest.raises(ConfigError, match="has no parameter 'bogus'"):
        rid(method="dbscan", params={"bogus": 1})


def test_config_cache_key_points_to_the_registry():
    with pytest.raises(NotImplementedError, match="registry"):
        ClustererConfig().cache_key()


def test_param_allowed_describes_each_kind():
    assert Param("int", 1, "", low=1, also=("auto",)).allowed() == "an integer >= 1 or 'auto'"
    assert Param("float", 0.5, "", low=0, high=1, nullable=True).allowed() == "a number >= 0 and <= 1 or null"
    assert Param("str", "a", "", choices=("a", "b")).allowed() == "one of 'a', 'b'"


@pytest.mark.parametrize(
    "extra",
    [["--param", "bogus=1"], ["--method", "dbscan", "--param", "metric=\"cosine\""], ["--param", "n_init=0"]],
)
def test_cli_run_with_a_bad_param_is_one_error_line_and_exit_2(tmp_path: Path, extra):
    from topic_corpus import write_topic_csv

    f = write_topic_csv(tmp_path / "t.csv", per_topic=5)
    r = subprocess.run(
        [sys.executable, "-m", "textcluster", "run", str(f), "--text-field", "text", "--encoder", "tfidf",
         "--workspace", str(tmp_path / "ws"), *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert not (tmp_path / "ws" / "corpus").exists()  # refused before anything ran
