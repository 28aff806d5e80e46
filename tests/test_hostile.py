"""Hostile cases of issue 15: each one failed on the main of the issue, and must keep failing cleanly.

Sections belong to the items fixed by different changes; keep each section's tests together.
"""

from __future__ import annotations

import csv
import json
import time

import duckdb
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run

from textcluster.cli import main
from textcluster.config import SamplingPolicy
from textcluster.describe.sampling import sample
from textcluster.errors import ConfigError, LimitError, OutputPathError, QueryError
from textcluster.query import sql as sqlmod
from textcluster.query.export import export, export_bytes
from textcluster.query.sql import query
from textcluster.store import Workspace

# -- issue 15: queries and exports ---------------------------------------------------


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """A workspace with a single run (unscoped SQL is allowed there)."""
    ws = Workspace(tmp_path_factory.mktemp("hostile-q") / "ws")
    fr = make_run(ws, sizes=(6, 5), seed=3)
    return ws, fr


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A workspace with two runs (of two corpora) and a sample of the first."""
    ws = Workspace(tmp_path_factory.mktemp("hostile-q2") / "ws")
    fr = make_run(ws, sizes=(6, 5), seed=3)
    fr2 = make_run(ws, sizes=(4, 4, 4), seed=4, tag="two")
    smp = sample(ws, fr.run_id, SamplingPolicy(size=4, allocation="equal"))
    return ws, fr, fr2, smp


def _cli(capsys, ws, *argv):
    code = main([*argv, "--workspace", str(ws.root)])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code, err):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _csv_rows(path):
    with open(path, encoding="utf-8", newline="") as f:  # keep a carriage return inside a cell
        return list(csv.reader(f))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# 1a. An output path inside the workspace would overwrite an artifact.


def _inside_paths(ws, fr, tmp_path):
    art = ws.file(fr.run_id, "labels.npy")
    link = tmp_path / "ws-link"
    link.symlink_to(ws.root.resolve(), target_is_directory=True)
    return {
        "artifact": art,
        "dotdot": tmp_path / "elsewhere" / ".." / art.relative_to(tmp_path),
        "symlinked folder": link / "run" / fr.run_id / "labels.npy",
        "new file in the workspace": ws.root / "export.csv",
        "workspace root": ws.root,
    }


@pytest.mark.parametrize(
    "which", ["artifact", "dotdot", "symlinked folder", "new file in the workspace", "workspace root"]
)
def test_export_inside_the_workspace_is_refused(tmp_path_factory, which):
    tmp = tmp_path_factory.mktemp("inside")
    ws = Workspace(tmp / "ws")
    fr = make_run(ws, sizes=(6, 5), seed=3)
    out = _inside_paths(ws, fr, tmp)[which]
    art = ws.file(fr.run_id, "labels.npy")
    before = art.read_bytes()
    listing = sorted(str(p) for p in ws.root.rglob("*"))
    with pytest.raises(OutputPathError, match="inside the workspace") as e:
        export(ws, out, "csv", run_id=fr.run_id)
    assert str(out) in str(e.value)
    assert art.read_bytes() == before
    assert sorted(str(p) for p in ws.root.rglob("*")) == listing  # nothing written, no sidecar


def test_cli_export_and_assign_inside_the_workspace_exit_2(one, capsys):
    ws, fr = one
    art = ws.file(fr.run_id, "labels.npy")
    before = art.read_bytes()
    code, _, err = _cli(capsys, ws, "export", "--run", fr.run_id, "--format", "csv", "--out", str(art))
    line = _one_error_line(code, err)
    assert str(art) in line
    corpora = len(ws.list("corpus"))
    code, _, err = _cli(capsys, ws, "assign", fr.run_id, str(art), "--output", str(art))
    line = _one_error_line(code, err)
    assert "--output" in line and str(art) in line
    assert art.read_bytes() == before
    assert len(ws.list("corpus")) == corpora  # refused before the file was even ingested


# 2. SQL exports have a time, a row and a byte limit; the partial file is removed.


@pytest.mark.parametrize(
    ("sql", "limits", "which"),
    [
        ("SELECT * FROM range(1000000000000)", {"max_rows": 100_000}, "max_rows"),
        ("SELECT range, repeat('x', 100) AS pad FROM range(1000000000000)", {"max_bytes": 2_000_000}, "max_bytes"),
        ("SELECT count(*) FROM range(100000000000) a, range(1000) b", {"timeout": 0.5}, "timeout"),
        ("SELECT * FROM range(1000000000000)", {"timeout": 1.0}, "timeout"),  # stops while writing, too
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_sql_export_stops_at_its_limits_and_leaves_nothing(one, tmp_path, sql, limits, which, fmt):
    ws, _ = one
    out = tmp_path / f"big.{fmt}"
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=f"{which}.*CLI --{which.replace('_', '-')}") as e:
        export(ws, out, sql=sql, **limits)
    assert time.perf_counter() - t0 < 20
    assert e.value.limit == which and "nothing was written" in str(e.value)
    assert _leftovers(tmp_path) == []  # no file, no temporary file, no sidecar


def test_cli_sql_export_limit_is_one_error_line(one, capsys, tmp_path):
    ws, _ = one
    out = tmp_path / "f.csv"
    code, _, err = _cli(capsys, ws, "export", "--sql", "select * from range(1000000000000)", "--out", str(out),
                        "--max-rows", "50000")
    line = _one_error_line(code, err)
    assert "50,000 rows" in line and "--max-rows" in line
    assert _leftovers(tmp_path) == []


def test_export_limits_are_checked(one, tmp_path):
    ws, fr = one
    for bad in ({"max_rows": 0}, {"max_bytes": -1}, {"timeout": float("nan")}, {"timeout": float("inf")}):
        with pytest.raises(ConfigError):
            export(ws, tmp_path / "x.csv", run_id=fr.run_id, **bad)
    # a run export is limited too (by rows here), not only SQL
    with pytest.raises(LimitError, match="max_rows"):
        export(ws, tmp_path / "x.csv", run_id=fr.run_id, max_rows=5)
    assert _leftovers(tmp_path) == []


def test_download_bytes_are_capped(one):
    ws, _ = one
    with pytest.raises(LimitError, match="max_bytes.*the download was not built") as e:
        export_bytes(ws, "csv", sql="SELECT repeat('x', 1000) FROM range(100000)", max_bytes=1_000_000)
    assert "textcluster-export-" not in str(e.value)  # the temporary file is no concern of the user


# 3. Query limits cannot be bypassed: statement size, clock before parsing, engine limits, result bytes.


def test_a_huge_in_list_is_refused_before_parsing(one):
    ws, _ = one
    stmt = "SELECT count(*) FROM docs WHERE doc_id IN (" + ",".join(str(i) for i in range(200_000)) + ")"
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match="max_sql_bytes") as e:
        query(ws, stmt)
    assert time.perf_counter() - t0 < 1
    assert e.value.limit == "max_sql_bytes"
    # and an export of it is refused the same way
    with pytest.raises(LimitError, match="max_sql_bytes"):
        export(ws, "/nonexistent/never.csv", sql=stmt)


def test_the_clock_starts_before_parsing(one, monkeypatch):
    ws, _ = one
    real = duckdb.extract_statements

    def slow(sql):  # a statement that takes long to parse
        time.sleep(0.6)
        return real(sql)

    monkeypatch.setattr(duckdb, "extract_statements", slow)
    with pytest.raises(LimitError, match="time limit of 0.3 s"):
        query(ws, "SELECT 1", timeout=0.3)


def test_sandbox_sets_memory_and_thread_limits(one):
    ws, _ = one
    t = query(ws, "SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m",
              threads=1, memory_limit="300MB")
    row = t.to_pylist()[0]
    assert row["t"] == 1 and row["m"].startswith("28")  # DuckDB shows 300 MB as 286.1 MiB
    t = query(ws, "SELECT current_setting('threads') AS t")
    assert t.to_pylist()[0]["t"] == sqlmod.THREADS
    with pytest.raises(ConfigError, match="memory_limit"):  # it is quoted into SQL: only a size passes
        query(ws, "SELECT 1", memory_limit="1GB'; SET lock_configuration=false; --")
    with pytest.raises(ConfigError, match="threads"):
        query(ws, "SELECT 1", threads=0)


def test_result_bytes_are_capped(one):
    ws, _ = one
    with pytest.raises(LimitError, match="max_result_bytes") as e:
        query(ws, "SELECT repeat('x', 1000000) AS s FROM range(50)", max_result_bytes=10_000_000, limit=100)
    assert "--max-result-bytes" in str(e.value)
    assert query(ws, "SELECT repeat('x', 1000) AS s FROM range(5)", max_result_bytes=10_000_000).num_rows == 5


# 5. CSV formula injection.

FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tlead", "\rlead", "ok", "a=b"]


def _formula_sql():
    rows = ", ".join("(" + "'" + f.replace("'", "''") + "', " + str(i - 3) + ")" for i, f in enumerate(FORMULAS))
    return f'SELECT t AS "=cmd", n FROM (VALUES {rows}) v(t, n)'


def test_csv_cells_that_start_a_formula_are_neutralised(one, tmp_path):
    ws, _ = one
    r = export(ws, tmp_path / "f.csv", sql=_formula_sql())
    got = _csv_rows(r.path)
    assert got[0] == ["'=cmd", "n"]  # a header cell comes from user data too
    assert [row[0] for row in got[1:]] == ["'" + f if f[0] in "=+-@\t\r" else f for f in FORMULAS]
    assert [row[1] for row in got[1:]] == [str(i - 3) for i in range(len(FORMULAS))]  # numbers stay numbers
    prov = json.loads(r.provenance_path.read_text())
    assert prov["csv_neutralised"] is True and prov["neutralised_cells"] == 7


def test_raw_csv_and_other_formats_stay_exact(one, tmp_path, capsys):
    ws, _ = one
    r = export(ws, tmp_path / "raw.csv", sql=_formula_sql(), raw_csv=True)
    got = _csv_rows(r.path)
    assert [row[0] for row in got[1:]] == FORMULAS and got[0][0] == "=cmd"
    assert json.loads(r.provenance_path.read_text())["csv_neutralised"] is False
    r = export(ws, tmp_path / "f.jsonl", sql=_formula_sql())
    assert [json.loads(x)["=cmd"] for x in r.path.read_text().splitlines()] == FORMULAS
    assert r.provenance["csv_neutralised"] is None
    r = export(ws, tmp_path / "f.parquet", sql=_formula_sql())
    assert pq.read_table(r.path).column("=cmd").to_pylist() == FORMULAS
    code, _, _ = _cli(capsys, ws, "export", "--sql", _formula_sql(), "--out", str(tmp_path / "cli.csv"), "--raw-csv")
    assert code == 0 and (tmp_path / "cli.csv").read_text(encoding="utf-8").splitlines()[1].startswith('"=HYPER')


# 12. Queries do not silently mix runs.


def test_unscoped_query_over_several_runs_is_refused(two, capsys):
    ws, fr, fr2, _ = two
    with pytest.raises(QueryError, match="2 runs") as e:
        query(ws, "SELECT count(*) FROM clusters")
    assert fr.run_id in str(e.value) and fr2.run_id in str(e.value) and "--all-runs" in str(e.value)
    code, _, err = _cli(capsys, ws, "query", "SELECT count(*) FROM clusters")
    line = _one_error_line(code, err)
    assert fr.run_id in line and fr2.run_id in line
    assert query(ws, "SELECT count(*) AS n FROM clusters", run_id=fr.run_id).column("n").to_pylist() == [2]


def test_all_runs_gives_every_view_a_run_id(two, capsys):
    ws, fr, fr2, smp = two
    for v in ("docs", "assignments", "clusters", "samples"):
        assert "run_id" in query(ws, f"SELECT * FROM {v} LIMIT 0", all_runs=True).schema.names, v
    t = query(ws, "SELECT run_id, count(*) AS n FROM docs GROUP BY run_id ORDER BY n DESC", all_runs=True)
    assert t.to_pylist() == [{"run_id": fr2.run_id, "n": 12}, {"run_id": fr.run_id, "n": 11}]
    code, out, _ = _cli(capsys, ws, "query", "SELECT count(*) AS n FROM clusters", "--all-runs", "--json")
    assert code == 0 and json.loads(out)["rows"] == [{"n": 5}]
    with pytest.raises(ConfigError):
        query(ws, "SELECT 1", run_id=fr.run_id, all_runs=True)


def test_unscoped_sql_export_over_several_runs_is_refused(two, capsys, tmp_path):
    ws, fr, fr2, _ = two
    with pytest.raises(QueryError, match="2 runs"):
        export(ws, tmp_path / "q.csv", sql="SELECT * FROM clusters")
    code, _, err = _cli(capsys, ws, "export", "--sql", "SELECT * FROM clusters", "--out", str(tmp_path / "q.csv"))
    _one_error_line(code, err)
    assert _leftovers(tmp_path) == []
    code, _, _ = _cli(capsys, ws, "export", "--sql", "SELECT * FROM clusters", "--run", fr2.run_id,
                      "--out", str(tmp_path / "q.csv"))
    assert code == 0 and len((tmp_path / "q.csv").read_text().splitlines()) == 1 + 3
    r = export(ws, tmp_path / "all.csv", sql="SELECT * FROM clusters", all_runs=True)
    assert r.rows == 5


def test_a_bad_limit_in_the_environment_does_not_break_the_import(monkeypatch):
    monkeypatch.setenv("TEXTCLUSTER_SQL_THREADS", "many")
    assert sqlmod.env_int("TEXTCLUSTER_SQL_THREADS", 2) == 2
    monkeypatch.setenv("TEXTCLUSTER_SQL_THREADS", "3")
    assert sqlmod.env_int("TEXTCLUSTER_SQL_THREADS", 2) == 3
