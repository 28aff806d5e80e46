"""CLI: `textcluster evaluate` (JSON shape, text summary, --label-field, exit code 2 with one error line)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run, rewrite_table

from textcluster.cli import main
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(30, 20, 10), n_noise=4)


def _run(capsys, ws, *argv):
    try:
        code = main([*argv, "--workspace", str(ws.root)])
    except SystemExit as e:  # argparse refuses a bad argument (an id of the wrong kind)
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_json(env, capsys):
    ws, fr = env
    code, out, err = _run(capsys, ws, "evaluate", fr.run_id, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["run_id"], data["label_field"], data["space"]) == (fr.run_id, "label", "embedding")
    assert (data["n"], data["k"], data["n_labelled"]) == (64, 3, 64)
    assert data["acc"] == pytest.approx(60 / 64) and data["nmi"] == pytest.approx(1.0)
    assert {"ari", "v_measure", "silhouette", "davies_bouldin", "size_cv", "size_min_share",
            "size_max_share", "noise"} <= set(data)
    assert data["noise"] == pytest.approx(4 / 64) and data["silhouette"] > 0.5
    assert data["sizes"] == [30, 20, 10]
    assert data["contingency"]["clusters"] == [0, 1, 2, -1]
    assert data["contingency"]["counts"][0] == [30, 0, 0, 0]


def test_evaluate_text_names_the_space_and_max_side(env, capsys):
    ws, fr = env
    code, out, _ = _run(capsys, ws, "evaluate", fr.run_id, "--max-side", "2")
    assert code == 0
    assert "against 'label' (64 of 64 rows have a value, 4 classes): acc=0.938 nmi=1.000" in out
    assert "label-free (embedding space: the run's embedding before any reducer, L2-normalised" in out
    assert "noise=6.2%" in out
    assert "[the 2 largest clusters and labels]" in out
    assert "topic0 (100%)" in out and "topic2" not in out


def test_evaluate_label_field_metadata_and_partial(env, capsys):
    ws, fr = env
    p = ws.file(fr.corpus_id, "docs.parquet")
    t = pq.read_table(p)
    # Half the rows have a value in "source": they alone are scored against it.
    source = [None if i % 2 else ("web" if c == 0 else "mail") for i, c in enumerate(fr.labels)]
    rewrite_table(ws, fr.corpus_id, "docs.parquet", t.append_column("source", pa.array(source, pa.string())))
    code, out, err = _run(capsys, ws, "evaluate", fr.run_id, "--label-field", "source", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["label_field"], data["n_labelled"], data["classes"]) == ("source", 32, 2)
    assert sum(map(sum, data["contingency"]["counts"])) == 32
    code, out, _ = _run(capsys, ws, "evaluate", fr.run_id, "--label-field", "lang")
    assert code == 0 and "against 'lang' (64 of 64 rows have a value, 2 classes)" in out


def test_evaluate_without_a_label_column(env, capsys):
    ws, fr = env
    p = ws.file(fr.corpus_id, "docs.parquet")
    rewrite_table(ws, fr.corpus_id, "docs.parquet", pq.read_table(p).drop_columns(["label"]))
    code, out, _ = _run(capsys, ws, "evaluate", fr.run_id, "--json")
    data = json.loads(out)
    assert code == 0 and data["label_field"] is None and data["n_labelled"] == 0
    assert all(data[k] is None for k in ("acc", "nmi", "ari", "v_measure")) and data["silhouette"] is not None
    code, out, _ = _run(capsys, ws, "evaluate", fr.run_id)
    assert "against labels: - (the corpus has no 'label' column; name one with --label-field)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run-0000000000000000"], "error: no run 'run-0000000000000000'"),
        (["CORPUS"], "is a corpus id; expected a run id"),
        (["RUN", "--max-side", "0"], "error: max_side=0 should be an integer >= 1"),
        (["RUN", "--label-field", "topic"],
         "error: label field 'topic' is not a column of corpus CORPUS; "
         "its columns: doc_id, row, text, lang, label, is_duplicate"),
    ],
)
def test_evaluate_refusals_exit_2_with_one_line(env, capsys, argv, message):
    ws, fr = env
    ids = {"RUN": fr.run_id, "CORPUS": fr.corpus_id}
    argv = [ids.get(a, a) for a in argv]
    code, out, err = _run(capsys, ws, "evaluate", *argv)
    assert code == 2 and out == ""
    assert message.replace("CORPUS", fr.corpus_id) in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
