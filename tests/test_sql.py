"""Sandboxed SQL: views, ordinary queries, hostile statements refused, timeouts, row caps."""

from __future__ import annotations

import duckdb
import pytest
from fakes_run import make_run

from textcluster.config import SamplingPolicy
from textcluster.describe.clusters import describe
from textcluster.describe.sampling import sample
from textcluster.errors import ConfigError, QueryError
from textcluster.query.sql import check_sql, connect, is_truncated
from textcluster.query.sql import query as _query
from textcluster.store import Workspace


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("sqlws")
    ws = Workspace(root / "ws")
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=4)
    fr2 = make_run(ws, sizes=(6, 5), seed=1, tag="two")
    describe(ws, fr.run_id, top_n=5, examples=2)
    smp = sample(ws, fr.run_id, SamplingPolicy(size=9, allocation="equal"))
    secret = root / "secret.csv"
    secret.write_text("password\nhunter2\n")
    return ws, fr, fr2, smp, secret


def query(ws, sql, **kw):
    """This workspace holds two runs: unscoped queries ask for all of them."""
    kw.setdefault("all_runs", kw.get("run_id") is None)
    return _query(ws, sql, **kw)


def test_views_have_the_documented_columns(env):
    ws, fr, *_ = env
    cols = {
        v: query(ws, f"SELECT * FROM {v} LIMIT 0").schema.names
        for v in ("docs", "assignments", "clusters", "samples", "tags")
    }
    assert {"doc_id", "text", "lang", "corpus_id", "tags"} <= set(cols["docs"])
    assert cols["assignments"] == ["doc_id", "run_id", "cluster", "distance", "probability", "outlier_score", "x", "y",
                                   "corpus_id", "cluster_name"]
    assert cols["clusters"] == ["run_id", "cluster", "size", "share", "label", "keywords", "cluster_name"]
    assert cols["tags"] == ["corpus_id", "tag", "doc_id"]
    assert cols["samples"] == ["sample_id", "doc_id", "cluster", "rank", "run_id"]


def test_whole_workspace_and_scoped_views(env):
    ws, fr, fr2, *_ = env
    t = query(ws, "SELECT corpus_id, count(*) AS n FROM docs GROUP BY corpus_id ORDER BY n DESC")
    assert t.column("n").to_pylist() == [64, 11]
    t = query(ws, "SELECT DISTINCT run_id FROM assignments", run_id=fr2.run_id)
    assert t.column("run_id").to_pylist() == [fr2.run_id]
    assert query(ws, "SELECT count(*) AS n FROM docs", run_id=fr2.run_id).column("n").to_pylist() == [11]


ORDINARY = [
    "SELECT doc_id, text FROM docs WHERE lang = 'en' ORDER BY doc_id LIMIT 5",
    "SELECT a.cluster, count(*) AS n FROM assignments a JOIN docs d USING (doc_id, corpus_id) GROUP BY a.cluster",
    "WITH big AS (SELECT * FROM clusters WHERE size > 5) SELECT label, size FROM big ORDER BY size DESC",
    "SELECT doc_id, cluster, row_number() OVER (PARTITION BY cluster ORDER BY distance) AS r FROM assignments",
    # over all runs, docs has run_id too: join it with (doc_id, run_id)
    "SELECT s.rank, d.text, c.label FROM samples s JOIN docs d USING (doc_id, run_id) JOIN clusters c USING (run_id, cluster)",
    "FROM clusters SELECT cluster, keywords[1] AS top",
    "SELECT unnest(keywords) AS kw, count(*) FROM clusters GROUP BY kw",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(x, y)",
    "DESCRIBE docs",
    "SELECT 1; ",
    "SELECT quantile_cont(distance, 0.5) FROM assignments WHERE cluster >= 0",
]


@pytest.mark.parametrize("sql", ORDINARY)
def test_ordinary_queries_work(env, sql):
    ws, *_ = env
    t = query(ws, sql, limit=500)
    assert t.num_columns >= 1


def test_join_group_by_gives_right_numbers(env):
    ws, fr, *_ = env
    t = query(
        ws,
        "SELECT c.cluster, c.size, count(*) AS n FROM assignments a JOIN clusters c USING (run_id, cluster) "
        "GROUP BY ALL ORDER BY c.cluster",
        run_id=fr.run_id,
    )
    assert t.column("cluster").to_pylist() == [-1, 0, 1, 2]
    assert t.column("n").to_pylist() == t.column("size").to_pylist() == [4, 30, 20, 10]


def _hostile(secret):
    return [
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM read_csv_auto('{secret}')",
        f"SELECT * FROM '{secret}'",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM read_json_auto('/etc/passwd')",
        "SELECT * FROM read_parquet('/tmp/*.parquet')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM parquet_metadata('/tmp/x.parquet')",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
        f"COPY docs TO '{secret}.out'",
        f"COPY (SELECT * FROM docs) TO '{secret}.out' (FORMAT csv)",
        f"EXPORT DATABASE '{secret.parent}/dump'",
        f"ATTACH '{secret.parent}/x.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET threads = 1",
        "RESET lock_configuration",
        "PRAGMA enable_profiling",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT * FROM docs",
        "CREATE MACRO m(x) AS x",
        "INSERT INTO docs VALUES (1)",
        "UPDATE docs SET text = ''",
        "DELETE FROM docs",
        "DROP VIEW docs",
        "SELECT 1; SELECT 2",
        f"SELECT 1; COPY docs TO '{secret}.out'",
        "CALL pragma_version()",
        "EXPLAIN ANALYZE SELECT 1",
        "CHECKPOINT",
        "VACUUM",
        "USE memory",
        "DETACH memory",
        "SELECT * FROM query('ATTACH ''/tmp/x.db''')",
        "",
        "SELEC 1",
    ]


def test_at_least_20_hostile_statements_listed(env):
    *_, secret = env
    assert len(_hostile(secret)) >= 20


@pytest.mark.parametrize("i", range(39))
def test_hostile_sql_is_refused(env, i):
    ws, *_, secret = env
    sql = _hostile(secret)[i]
    with pytest.raises(QueryError, match=r"(only|sandbox|refused|parse|empty|failed|SELECT)"):
        query(ws, sql)
    assert not (secret.parent / "secret.csv.out").exists()
    assert not (secret.parent / "dump").exists()
    assert not (secret.parent / "x.duckdb").exists()


def test_refusals_name_what_was_received(env):
    ws, *_ = env
    with pytest.raises(QueryError, match="got a statement of type COPY"):
        check_sql("COPY docs TO 'x.csv'")
    with pytest.raises(QueryError, match="one statement is allowed; got 2"):
        check_sql("SELECT 1; SELECT 2")
    with pytest.raises(QueryError, match="refused by the sandbox: .*file system operations are disabled"):
        query(ws, "SELECT * FROM read_text('/etc/hostname')")


def test_sandbox_settings_are_locked(env):
    ws, *_ = env
    t = query(ws, "SELECT current_setting('enable_external_access') AS a, current_setting('lock_configuration') AS b, "
                  "current_setting('memory_limit') AS m, current_setting('python_enable_replacements') AS r")
    row = t.to_pylist()[0]
    assert (row["a"], row["b"], row["r"]) == (False, True, False)
    assert row["m"].startswith("1.8") or row["m"].startswith("2")  # 2GB, shown in GiB by DuckDB
    # even code holding the connection cannot turn access back on
    with connect(ws) as s, pytest.raises(duckdb.Error, match="locked"):  # DuckDB's own refusal
        s.con.execute("SET enable_external_access = true")


def test_python_variables_are_not_visible(env):
    ws, *_ = env
    leaked = __import__("pyarrow").table({"x": [1]})  # noqa: F841 - would be found by replacement scan
    with pytest.raises(QueryError, match="leaked"):
        query(ws, "SELECT * FROM leaked")


def test_row_cap_and_truncation_flag(env):
    ws, *_ = env
    t = query(ws, "SELECT * FROM range(100)", limit=7)
    assert t.num_rows == 7 and is_truncated(t)
    t = query(ws, "SELECT * FROM range(7)", limit=7)
    assert t.num_rows == 7 and not is_truncated(t)
    t = query(ws, "SELECT * FROM range(10) ORDER BY range DESC", limit=3)
    assert t.column(0).to_pylist() == [9, 8, 7]


def test_slow_query_times_out(env):
    import time

    ws, *_ = env
    t0 = time.perf_counter()
    with pytest.raises(QueryError, match="time limit of 0.5 s"):
        query(ws, "SELECT count(*) FROM range(100000000000) a, range(1000) b", timeout=0.5)
    assert time.perf_counter() - t0 < 5


def test_bad_limits(env):
    ws, *_ = env
    with pytest.raises(QueryError, match="limit=-1"):
        query(ws, "SELECT 1", limit=-1)
    with pytest.raises(ConfigError, match="timeout=0"):  # a setting, not a query, is wrong
        query(ws, "SELECT 1", timeout=0)


def test_empty_workspace_has_empty_views(tmp_path):
    ws = Workspace(tmp_path / "empty")
    for v in ("docs", "assignments", "clusters", "samples"):
        assert query(ws, f"SELECT count(*) AS n FROM {v}").column("n").to_pylist() == [0]
