"""Exports round-trip (rows, columns) with provenance beside them and inside Parquet."""

from __future__ import annotations

import io
import json
import os
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run

from textcluster.config import SamplingPolicy
from textcluster.describe.clusters import describe
from textcluster.describe.sampling import sample
from textcluster.errors import ConfigError, QueryError
from textcluster.query.export import (
    PROVENANCE_KEY,
    export,
    export_bytes,
    provenance,
    read_provenance,
)
from textcluster.store import Workspace


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("exp") / "ws")
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=4)
    describe(ws, fr.run_id, top_n=4, examples=2)
    smp = sample(ws, fr.run_id, SamplingPolicy(size=12, allocation="equal", within="diverse", seed=5))
    return ws, fr, smp


def _read(path, fmt):
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True)
    return pq.read_table(path).to_pandas()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_run_export_round_trips(env, tmp_path, fmt):
    ws, fr, _ = env
    r = export(ws, tmp_path / f"run.{fmt}", run_id=fr.run_id)
    df = _read(r.path, fmt)
    assert len(df) == r.rows == 64
    assert list(df.columns) == r.columns
    assert {"doc_id", "text", "lang", "run_id", "cluster", "distance", "probability", "x", "y", "cluster_label"} <= set(df.columns)
    assert df["label"].tolist() == [f"topic{c}" for c in fr.labels]  # the corpus's own label column stays
    assert df["doc_id"].tolist() == list(range(64))
    assert df["cluster"].tolist() == fr.labels.tolist()
    assert df["text"].tolist() == fr.texts
    prov = json.loads(r.provenance_path.read_text())
    assert r.provenance_path.name == f"run.{fmt}.provenance.json"
    assert prov["rows"] == 64 and prov["source"] == "run" and prov["format"] == fmt
    assert prov["corpus"]["sha256"] == fr.sha256
    assert prov["embedding"]["model_fingerprint"] == "fake-fp-123"
    assert prov["embedding"]["encoder"] == "fake"
    assert prov["reducer"]["method"] == "none" and prov["clusterer"]["method"] == "kmeans"
    assert prov["seed"] == 0 and prov["textcluster_version"] and prov["created"].endswith("+00:00")
    assert read_provenance(r.path)["rows"] == 64


def test_parquet_carries_provenance_in_its_metadata(env, tmp_path):
    ws, fr, smp = env
    r = export(ws, tmp_path / "s.parquet", sample_id=smp.sample_id)
    meta = pq.read_metadata(r.path).metadata
    prov = json.loads(meta[PROVENANCE_KEY])
    assert prov["rows"] == 12 and prov["sample_id"] == smp.sample_id
    assert prov["sampling_policy"]["within"] == "diverse" and prov["sampling_policy"]["seed"] == 5
    assert prov["run_id"] == fr.run_id and prov["corpus"]["sha256"] == fr.sha256
    r.provenance_path.unlink()
    assert read_provenance(r.path)["sample_id"] == smp.sample_id


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_sample_export_has_docs_cluster_and_rank(env, tmp_path, fmt):
    ws, fr, smp = env
    r = export(ws, tmp_path / f"s.{fmt}", sample_id=smp.sample_id)
    df = _read(r.path, fmt)
    assert len(df) == 12
    assert list(df.columns[:4]) == ["sample_id", "cluster", "rank", "cluster_label"]
    assert "label" in df.columns
    assert sorted(df["doc_id"]) == sorted(smp.doc_ids.tolist())
    assert all(fr.labels[d] == c for d, c in zip(df["doc_id"], df["cluster"], strict=True))
    assert df.groupby("cluster")["rank"].apply(list).to_dict() == {0: [0, 1, 2, 3], 1: [0, 1, 2, 3], 2: [0, 1, 2, 3]}


def test_sql_export_keeps_the_sql_and_lists_to_json(env, tmp_path):
    ws, *_ = env
    sql = "SELECT run_id, cluster, size, keywords FROM clusters ORDER BY cluster"
    r = export(ws, tmp_path / "c.csv", sql=sql)
    df = pd.read_csv(r.path)
    assert len(df) == 4 and r.provenance["sql"] == sql
    assert json.loads(df["keywords"][1])[0]  # lists are JSON strings in CSV
    prov = read_provenance(r.path)
    assert prov["source"] == "sql" and len(prov["runs"]) == 1 and prov["rows"] == 4
    r = export(ws, tmp_path / "c.jsonl", sql=sql)
    rows = [json.loads(line) for line in r.path.read_text().splitlines()]
    assert isinstance(rows[1]["keywords"], list)


def test_refused_sql_leaves_no_file(env, tmp_path):
    ws, *_ = env
    with pytest.raises(QueryError, match="COPY"):
        export(ws, tmp_path / "x.csv", sql=f"COPY docs TO '{tmp_path}/y.csv'")
    with pytest.raises(QueryError, match="sandbox"):
        export(ws, tmp_path / "x.csv", sql="SELECT * FROM read_text('/etc/hostname')")
    assert list(tmp_path.iterdir()) == []


def test_export_bytes_for_download_buttons(env):
    ws, fr, smp = env
    b = export_bytes(ws, "parquet", run_id=fr.run_id)
    f = pq.ParquetFile(io.BytesIO(b))
    assert f.metadata.num_rows == 64 and PROVENANCE_KEY in f.metadata.metadata
    b = export_bytes(ws, "csv", sample_id=smp.sample_id)
    assert len(pd.read_csv(io.BytesIO(b))) == 12
    assert provenance(ws, sample_id=smp.sample_id)["sampling_policy"]["size"] == 12


def test_small_batches_stream_the_same_rows(env, tmp_path):
    ws, fr, _ = env
    r = export(ws, tmp_path / "b.parquet", run_id=fr.run_id, batch_rows=7)
    assert pq.read_table(r.path).column("doc_id").to_pylist() == list(range(64))


def test_argument_errors(env, tmp_path):
    ws, fr, smp = env
    with pytest.raises(ConfigError, match="exactly one of"):
        export(ws, tmp_path / "x.csv", run_id=fr.run_id, sample_id=smp.sample_id)
    with pytest.raises(ConfigError, match="exactly one of"):
        export(ws, tmp_path / "x.csv")
    with pytest.raises(ConfigError, match="format='xlsx'"):
        export(ws, tmp_path / "x.xlsx", run_id=fr.run_id)


def test_streamed_run_export_matches_the_sql_join(env, tmp_path):
    from textcluster.query.export import source_sql

    ws, fr, _ = env
    scope, stmt = source_sql(ws, run_id=fr.run_id)
    a = pq.read_table(export(ws, tmp_path / "a.parquet", run_id=fr.run_id, batch_rows=10).path)
    b = pq.read_table(export(ws, tmp_path / "b.parquet", sql=stmt, run_id=scope).path)
    assert a.schema.names == b.schema.names
    assert a.to_pandas().equals(b.to_pandas())  # NaN distances of noise compare equal here


def test_exported_file_has_the_usual_mode_not_0600(env, tmp_path):
    ws, fr, _ = env
    old = os.umask(0o022)
    try:
        r = export(ws, tmp_path / "shared.csv", run_id=fr.run_id)
    finally:
        os.umask(old)
    assert stat.S_IMODE(r.path.stat().st_mode) == 0o644
