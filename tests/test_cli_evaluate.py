"""CLI: `textcluster evaluate` (JSON shape, text summary, exit code 2 with one error line)."""

from __future__ import annotations

import json

import pytest
from fakes_run import make_run

from textcluster.cli import main
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(30, 20, 10), n_noise=4)


def _run(capsys, ws, *argv):
    code = main([*argv, "--workspace", str(ws.root)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_json(env, capsys):
    ws, fr = env
    code, out, err = _run(capsys, ws, "evaluate", fr.run_id, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["run_id"] == fr.run_id and (data["n"], data["k"], data["labelled"]) == (64, 3, 64)
    assert data["supervised"]["acc"] == pytest.approx(60 / 64) and data["supervised"]["nmi"] == pytest.approx(1.0)
    assert {"silhouette", "davies_bouldin", "size_cv", "noise"} <= set(data["diagnostics"])
    assert data["sizes"] == [30, 20, 10]
    assert data["contingency"]["clusters"] == [0, 1, 2, -1]
    assert data["contingency"]["counts"][0] == [30, 0, 0, 0]


def test_evaluate_text_and_max_side(env, capsys):
    ws, fr = env
    code, out, _ = _run(capsys, ws, "evaluate", fr.run_id, "--max-side", "2")
    assert code == 0
    assert "acc=0.938 nmi=1.000" in out
    assert "noise=6.2%" in out
    assert "[the 2 largest clusters and labels]" in out
    assert "topic0 (100%)" in out and "topic2" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run-0000000000000000"], "error: no run 'run-0000000000000000'"),
        (["CORPUS"], "is not a run (its kind is 'corpus')"),
        (["RUN", "--max-side", "0"], "error: max_side=0 should be an integer >= 1"),
        (["RUN", "--sample", "1"], "error: sample=1 should be an integer >= 2"),
    ],
)
def test_evaluate_refusals_exit_2_with_one_line(env, capsys, argv, message):
    ws, fr = env
    argv = [{"RUN": fr.run_id, "CORPUS": fr.corpus_id}.get(a, a) for a in argv]
    code, out, err = _run(capsys, ws, "evaluate", *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
