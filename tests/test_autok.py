"""Automatic k (textcluster.cluster.autok), its place in the cluster stage and the CLI flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score
from test_runs import write_embedding

from textcluster.cli import main
from textcluster.cluster import autok, runs
from textcluster.cluster.registry import cache_key
from textcluster.config import ClustererConfig, ReducerConfig
from textcluster.errors import ConfigError
from textcluster.store import Workspace


def _blobs(n: int = 600, centers: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n, n_features=12, centers=centers, cluster_std=0.6, random_state=seed)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def ws_emb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, np.ndarray]:
    ws = Workspace(tmp_path_factory.mktemp("autok"))
    X, y = _blobs(400, 5, seed=3)
    return ws, write_embedding(ws, X, [f"c{v}" for v in y]), y


def test_silhouette_from_distances_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    labels = rng.integers(0, 4, 120)
    labels[0] = 7  # a singleton cluster scores 0, as in scikit-learn
    D = autok._pairwise(X)
    assert autok.silhouette_from_distances(D, labels) == pytest.approx(silhouette_score(X, labels), abs=1e-4)


def test_candidates_are_a_log_grid_with_both_ends() -> None:
    assert autok.candidates(2, 8) == list(range(2, 9))
    ks = autok.candidates(2, 200)
    assert ks[0] == 2 and ks[-1] == 200 and ks == sorted(set(ks)) and 15 <= len(ks) <= autok.GRID_POINTS + 2
    gaps = np.diff(ks)
    assert gaps[0] < gaps[-1]  # denser at small k


@pytest.mark.parametrize("centers", [3, 6, 11])
def test_choose_k_finds_the_number_of_separated_groups(centers: int) -> None:
    X, _ = _blobs(900, centers, seed=centers)
    ak = autok.choose_k(X, seed=0, k_range=(2, 20))  # every integer of the range is a candidate
    assert ak.candidates == list(range(2, 21)) and ak.chosen == centers
    assert ak.method == "silhouette" and len(ak.scores) == len(ak.candidates)
    assert ak.scores[ak.candidates.index(ak.chosen)] == max(s for s in ak.scores if s is not None)


def test_choose_k_is_deterministic_and_uses_a_subset() -> None:
    X, _ = _blobs(1200, 4, seed=1)
    a = autok.choose_k(X, seed=5, sample=500)
    b = autok.choose_k(X, seed=5, sample=500)
    assert a.sample == 500 and a.candidates == b.candidates and a.scores == b.scores and a.chosen == b.chosen == 4


@pytest.mark.parametrize(("rng_", "n", "msg"), [
    ((9, 4), 100, "is empty"),
    ((1, 5), 100, "should start at 2"),
    ((2, 500), 100, "larger than the number of documents"),
])
def test_bad_k_range_is_a_config_error(rng_, n, msg) -> None:
    with pytest.raises(ConfigError, match=msg):
        autok.check_k_range(rng_, n)


def test_parse_k_range() -> None:
    assert autok.parse_k_range("3:40") == (3, 40)
    with pytest.raises(ConfigError, match="MIN:MAX"):
        autok.parse_k_range("many")


def test_auto_is_the_default_k() -> None:
    assert ClustererConfig().k == "auto"
    assert cache_key(ClustererConfig())["k"] == "auto"
    # a k range is part of the id only for automatic k
    assert "k_range" in cache_key(ClustererConfig(k_range=(2, 9)))
    assert "k_range" not in cache_key(ClustererConfig(k=5, k_range=(2, 9)))
    with pytest.raises(ConfigError, match="k=0 should be >= 1 or 'auto'"):
        ClustererConfig(k=0).validate()


def test_run_with_auto_k_stores_the_curve(ws_emb) -> None:
    ws, eid, y = ws_emb
    res = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig())
    assert res.k == 5 and res.metrics["acc"] > 0.95
    m = ws.manifest(res.run_id)
    assert m.clusterer["k"] == "auto" and m.auto_k["chosen"] == 5 and m.k == 5
    assert m.auto_k == res.auto_k and len(m.auto_k["candidates"]) == len(m.auto_k["scores"])
    # a cache hit gives the same curve back
    again = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig())
    assert again.cached and again.auto_k == res.auto_k
    # an explicit k is a different run and records no sweep
    fixed = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=3))
    assert fixed.run_id != res.run_id and fixed.auto_k is None and ws.manifest(fixed.run_id).auto_k is None


def test_auto_k_does_not_depend_on_the_reducer(ws_emb) -> None:
    ws, eid, _ = ws_emb
    a = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(seed=1))
    b = runs.cluster(ws, eid, ReducerConfig(method="pca", dims=3, projection="pca"), ClustererConfig(seed=1))
    assert a.auto_k["scores"] == b.auto_k["scores"] and a.auto_k["chosen"] == b.auto_k["chosen"]


def test_methods_without_k_ignore_auto(ws_emb) -> None:
    ws, eid, _ = ws_emb
    res = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(method="hdbscan"))
    assert res.auto_k is None and res.k >= 1


def _cli_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_cli_k_auto_json_carries_the_curve(ws_emb, capsys) -> None:
    ws, eid, _ = ws_emb
    data = _cli_json(capsys, ["cluster", eid, "--projection", "pca", "--k-range", "2:12", "--json",
                              "--workspace", str(ws.root)])
    assert data["auto_k"]["chosen"] == data["k"] == 5
    assert data["auto_k"]["candidates"] == list(range(2, 13)) and data["auto_k"]["k_range"] == [2, 12]
    assert main(["cluster", eid, "--projection", "pca", "--k", "auto", "--k-range", "2:12",
                 "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "k chosen automatically: 5" in out and out.index("noise") < out.index("clusters")


@pytest.mark.parametrize(("argv", "msg"), [
    (["--k-range", "9:3"], "is empty"),
    (["--k-range", "2:5000"], "larger than the number of documents"),
    (["--k-range", "x"], "MIN:MAX"),
    (["--k", "zero"], "should be 'auto' or a whole number"),
    (["--stability", "1"], "at least 2"),
    (["--outliers", "0.7"], "(0, 0.5]"),
    (["--outliers", "0"], "(0, 0.5]"),
    (["--outliers", "abc"], "not a number"),
])
def test_cli_bad_input_is_one_error_line_exit_2(ws_emb, capsys, argv, msg) -> None:
    ws, eid, _ = ws_emb
    try:  # argparse refusals raise SystemExit(2); run-time ones return 2
        code = main(["cluster", eid, *argv, "--workspace", str(ws.root)])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and msg in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_run_json_carries_auto_k(topic_csv, tmp_path, capsys) -> None:
    data = _cli_json(capsys, ["run", str(topic_csv), "--text-field", "text", "--label-field", "label",
                              "--encoder", "tfidf", "--encoder-dims", "8", "--projection", "pca", "--json",
                              "--workspace", str(tmp_path / "ws")])
    ak = data["auto_k"]
    assert set(ak) >= {"method", "candidates", "scores", "chosen"} and ak["chosen"] == data["k"]
    assert ak["chosen"] in ak["candidates"] and len(ak["scores"]) == len(ak["candidates"])
    assert ak["replicates"] == len(ak["raw_scores"]) and all(len(r) == len(ak["candidates"]) for r in ak["raw_scores"])
    m = Workspace(tmp_path / "ws").manifest(data["run_id"])
    assert m.auto_k == ak and m.clusterer["k"] == "auto"


def test_cli_summary_hints_above_30_percent_noise(ws_emb, capsys) -> None:
    ws, eid, _ = ws_emb
    assert main(["cluster", eid, "--k", "5", "--outliers", "0.5", "--projection", "pca",
                 "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "hint:" in out and "are noise (above 30%)" in out
    assert out.index("noise") < out.index("clusters")
    assert main(["cluster", eid, "--k", "5", "--projection", "pca", "--workspace", str(ws.root)]) == 0
    assert "hint:" not in capsys.readouterr().out


def test_a_still_rising_curve_is_flagged() -> None:
    X, _ = _blobs(600, 12, seed=4)
    capped = autok.choose_k(X, seed=0, k_range=(2, 6))  # twelve groups, at most six tried
    assert "still rising" in capped.warning
    assert capped.chosen == capped.candidates[autok.knee(capped.candidates, autok.smooth_curve(capped.scores))]
    clear = autok.choose_k(X, seed=0, k_range=(2, 20))
    assert clear.chosen == 12 and clear.warning is None


def test_the_curve_is_the_mean_of_the_replicates() -> None:
    X, _ = _blobs(500, 4, seed=2)
    ak = autok.choose_k(X, seed=0, k_range=(2, 9))
    raw = np.array(ak.raw_scores, dtype=float)
    assert ak.replicates == autok.REPLICATES >= 2 and raw.shape == (autok.REPLICATES, len(ak.candidates))
    assert np.allclose(raw.mean(axis=0), ak.scores, atol=1e-5)
    assert len({tuple(r) for r in raw.round(4).tolist()}) > 1  # distinct seedings, not one fit repeated
    assert ak.chosen == 4


def test_smooth_curve_weights_neighbours_and_skips_gaps() -> None:
    out = autok.smooth_curve([0.0, 4.0, 0.0, float("nan"), 2.0])
    assert out[:3] == pytest.approx([4 / 3, 2.0, 4 / 3]) and np.isnan(out[3]) and out[4] == pytest.approx(2.0)


def test_knee_of_a_rising_curve() -> None:
    ks = [2, 4, 8, 16, 32, 64]
    assert autok.knee(ks, [0.1, 0.5, 0.6, 0.65, 0.7, 0.72]) == 1  # the rise slows after k=4
    assert autok.knee(ks, [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]) == 0  # no knee above the line: the start
    assert autok.knee(ks, [0.3] * 6) is None
    # two knees of comparable strength (a coarse split, then a finer level): the finer one
    ks7 = [2, 4, 8, 16, 32, 64, 128]
    assert autok.knee(ks7, [0.0, 0.5, 0.5, 0.55, 0.9, 0.95, 1.0]) == 4
    assert autok.knee(ks7, [0.0, 0.5, 0.5, 0.5, 0.6, 0.62, 1.0]) == 1  # the late bend is too weak


def test_pick_edges() -> None:
    ks = [2, 3, 4, 5, 6]
    # the best interior optimum wins over the range's start, whose 2-way split scores high
    assert autok._pick(ks, [0.50, 0.30, 0.45, 0.40, 0.42]) == (4, None)
    assert autok._pick(ks, [0.50, 0.40, 0.30, 0.20, 0.10]) == (2, None)  # falling curve: 2 it is
    assert autok._pick(ks, [0.1, 0.2, 0.5, 0.3, 0.2]) == (4, None)
    k, warning = autok._pick(ks, [0.1, 0.4, 0.45, 0.5, 0.55])  # still rising: its knee, with a warning
    assert k == 4 and "still rising" in warning


@pytest.mark.parametrize("argv", [["--k-range", "2:500"], ["--k", "500"]])
def test_cli_run_refuses_a_k_too_large_before_embedding(topic_csv, tmp_path, capsys, monkeypatch, argv) -> None:
    from textcluster import pipeline

    def no_embedding(*a, **kw):  # the check must come first: embedding is the expensive step
        raise AssertionError("embedded before refusing the k range")

    monkeypatch.setattr(pipeline, "embed_corpus", no_embedding)
    code = main(["run", str(topic_csv), "--text-field", "text", "--encoder", "tfidf", *argv,
                 "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
    assert "n_samples=60" in err and "500" in err
    assert not (tmp_path / "ws" / "embedding").exists() or not any((tmp_path / "ws" / "embedding").iterdir())
