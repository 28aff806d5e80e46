"""CLI: describe, sample, query, export (JSON shapes, exit code 2 for refused SQL)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fakes_run import make_run

from textcluster.cli import main
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=4)
    return ws, fr


def _run(capsys, *argv):
    code = main([*argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys, ws, *argv):
    code, out, err = _run(capsys, *argv, "--workspace", str(ws.root), "--json")
    assert code == 0, err
    return json.loads(out)


def test_describe_json_and_text(env, capsys):
    ws, fr = env
    d = _json(capsys, ws, "describe", fr.run_id, "--top-n", "4", "--examples", "2")
    assert d["run_id"] == fr.run_id and d["description_id"].startswith("dsc-") and not d["cached"]
    c0 = next(c for c in d["clusters"] if c["cluster"] == 0)
    assert len(c0["keywords"]) == 4 and len(c0["nearest"]) == 2 and c0["label"]
    code, out, _ = _run(capsys, "describe", fr.run_id, "--top-n", "4", "--examples", "2", "--workspace", str(ws.root))
    assert code == 0 and "cached" in out and "keywords:" in out and "e.g.:" in out


def test_sample_preview_then_draw(env, capsys):
    ws, fr = env
    p = _json(capsys, ws, "sample", fr.run_id, "--size", "12", "--allocation", "equal", "--preview")
    assert p == {
        "sample_id": None, "preview": True, "run_id": fr.run_id, "n": 12,
        "per_cluster": {"0": 4, "1": 4, "2": 4}, "policy": p["policy"],
    }
    assert not ws.list("sample")
    s = _json(capsys, ws, "sample", fr.run_id, "--size", "12", "--allocation", "equal",
              "--noise", "quota:0.25", "--exclude-clusters", "2", "--within", "diverse", "--seed", "3")
    assert s["sample_id"].startswith("smp-") and s["n"] == 12
    assert s["per_cluster"] == {"0": 5, "1": 4, "-1": 3}
    assert s["policy"]["noise"] == "quota" and s["policy"]["noise_quota"] == 0.25
    assert ws.exists(s["sample_id"])


def test_sample_bad_noise_and_unknown_cluster_exit_2(env, capsys):
    ws, fr = env
    code, _, err = _run(capsys, "sample", fr.run_id, "--size", "5", "--noise", "quota:2", "--workspace", str(ws.root))
    assert code == 2 and err.startswith("error: --noise 'quota:2'")
    code, _, err = _run(capsys, "sample", fr.run_id, "--size", "5", "--clusters", "9", "--workspace", str(ws.root))
    assert code == 2 and "clusters=[9]" in err


def test_query_json_and_limit(env, capsys):
    ws, fr = env
    q = _json(capsys, ws, "query", "SELECT cluster, count(*) AS n FROM assignments GROUP BY 1 ORDER BY 1")
    assert q["columns"] == ["cluster", "n"] and q["n"] == 4 and not q["truncated"]
    assert q["rows"][0] == {"cluster": -1, "n": 4}
    q = _json(capsys, ws, "query", "SELECT doc_id FROM docs", "--limit", "3")
    assert q["n"] == 3 and q["truncated"]
    code, out, _ = _run(capsys, "query", "SELECT doc_id FROM docs", "--limit", "3", "--workspace", str(ws.root))
    assert code == 0 and "more rows" in out


@pytest.mark.parametrize(
    "sql",
    ["DROP VIEW docs", "COPY docs TO 'x.csv'", "SELECT * FROM read_csv('/etc/passwd')", "SELECT 1; SELECT 2"],
)
def test_refused_sql_exits_2(env, capsys, sql):
    ws, _ = env
    code, out, err = _run(capsys, "query", sql, "--workspace", str(ws.root), "--json")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


def test_export_run_sample_sql(env, capsys, tmp_path):
    ws, fr = env
    e = _json(capsys, ws, "export", "--run", fr.run_id, "--format", "parquet", "--out", str(tmp_path / "r.parquet"))
    assert e["rows"] == 64 and e["format"] == "parquet" and e["provenance"].endswith("r.parquet.provenance.json")
    s = _json(capsys, ws, "sample", fr.run_id, "--size", "6")
    e = _json(capsys, ws, "export", "--sample", s["sample_id"], "--out", str(tmp_path / "s.jsonl"))
    assert e["rows"] == 6 and e["format"] == "jsonl"
    e = _json(capsys, ws, "export", "--sql", "SELECT * FROM docs WHERE lang = 'fr'", "--format", "csv",
              "--out", str(tmp_path / "q.out"))
    assert e["rows"] == len(pd.read_csv(tmp_path / "q.out")) > 0
    code, _, err = _run(capsys, "export", "--sql", "ATTACH 'x.db'", "--format", "csv", "--out",
                        str(tmp_path / "bad.csv"), "--workspace", str(ws.root))
    assert code == 2 and "ATTACH" in err and not (tmp_path / "bad.csv").exists()
