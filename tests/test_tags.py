"""Tags: named sets of documents stored in the workspace, a column in the views and exports."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from fakes_run import make_run

from textcluster.errors import ConfigError
from textcluster.query import tags as T
from textcluster.query.export import export
from textcluster.query.selection import doc_ids_from
from textcluster.query.sql import query
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws)


def test_tag_add_replace_remove_and_delete(env):
    ws, fr = env
    cid = fr.corpus_id
    assert T.load_tags(ws, cid) == {}
    assert T.tag_docs(ws, cid, " review ", [5, 1, 1, 3]) == 3
    assert T.tag_docs(ws, cid, "review", [7]) == 4
    assert T.load_tags(ws, cid)["review"].tolist() == [1, 3, 5, 7]
    assert T.tag_docs(ws, cid, "review", [2], mode="replace") == 1
    assert T.tag_docs(ws, cid, "other", [2, 4]) == 2
    assert [t["name"] for t in T.list_tags(ws, cid)] == ["other", "review"]
    assert T.tag_docs(ws, cid, "review", [2], mode="remove") == 0  # emptied: gone
    assert list(T.load_tags(ws, cid)) == ["other"]
    assert T.delete_tag(ws, cid, "other") == 2
    assert T.load_tags(ws, cid) == {}
    # the file is plain JSON in the workspace, outside every artifact
    data = json.loads(ws.tags_file(cid).read_text())
    assert data["corpus_id"] == cid and data["tags"] == {}


def test_removing_a_corpus_removes_its_tags_and_no_other(env, tmp_path):
    ws, fr = env
    T.tag_docs(ws, fr.corpus_id, "review", [1, 2])
    other = ws.tags_file("cor-" + "0" * 16)  # another corpus's tags file stays
    other.write_text('{"format_version": 1, "corpus_id": "cor-0000000000000000", "tags": {}}')
    removed = ws.remove(fr.corpus_id)
    assert fr.corpus_id in removed and fr.run_id in removed
    assert not ws.tags_file(fr.corpus_id).exists() and other.exists()
    assert T.load_tags(ws, fr.corpus_id) == {}  # a corpus ingested again under the id starts untagged


@pytest.mark.parametrize(("name", "ids", "match"), [
    ("", [1], "cannot be empty"),
    ("x" * 101, [1], "at most 100"),
    ("a\nb", [1], "control character"),
    ("ok", [60], "doc id 60 is not a document"),
    ("ok", [-1], "doc id -1"),
    ("ok", [], "no documents"),
])
def test_bad_tags_are_refused_and_nothing_is_written(env, name, ids, match):
    ws, fr = env
    with pytest.raises(ConfigError, match=match):
        T.tag_docs(ws, fr.corpus_id, name, ids)
    assert not ws.tags_file(fr.corpus_id).exists()


def test_tags_in_the_sql_views(env):
    ws, fr = env
    T.tag_docs(ws, fr.corpus_id, "b-tag", [0, 1, 2])
    T.tag_docs(ws, fr.corpus_id, "a-tag", [2, 9])
    t = query(ws, "SELECT doc_id, tags FROM docs WHERE tags IS NOT NULL ORDER BY doc_id", run_id=fr.run_id)
    assert t.to_pylist() == [
        {"doc_id": 0, "tags": ["b-tag"]}, {"doc_id": 1, "tags": ["b-tag"]},
        {"doc_id": 2, "tags": ["a-tag", "b-tag"]}, {"doc_id": 9, "tags": ["a-tag"]},
    ]
    # filterable, and joinable with the run's clusters
    t = query(ws, "SELECT count(*) AS n FROM docs WHERE list_contains(tags, 'a-tag')", run_id=fr.run_id)
    assert t.column("n").to_pylist() == [2]
    t = query(ws, "SELECT a.cluster, count(*) AS n FROM tags JOIN assignments a USING (doc_id) "
                  "WHERE tag = 'b-tag' GROUP BY a.cluster ORDER BY a.cluster", run_id=fr.run_id)
    want = np.unique(fr.labels[[0, 1, 2]], return_counts=True)
    assert t.column("cluster").to_pylist() == want[0].tolist()
    assert t.column("n").to_pylist() == want[1].tolist()
    # all documents still there once, tagged or not
    assert query(ws, "SELECT count(*) AS n FROM docs", run_id=fr.run_id).column("n").to_pylist() == [60]


def test_run_export_carries_the_tags(env, tmp_path):
    ws, fr = env
    T.tag_docs(ws, fr.corpus_id, "keep", [3, 4])
    r = export(ws, tmp_path / "out.parquet", run_id=fr.run_id, batch_rows=7)
    t = pq.read_table(r.path)
    tags = dict(zip(t.column("doc_id").to_pylist(), t.column("tags").to_pylist(), strict=True))
    assert tags[3] == ["keep"] and tags[4] == ["keep"] and tags[0] is None
    csv = export(ws, tmp_path / "out.csv", run_id=fr.run_id)
    assert '"[""keep""]"' in csv.path.read_text() or '["keep"]' in csv.path.read_text()


def test_doc_ids_from_a_file_or_a_select(env, tmp_path):
    ws, fr = env
    f = tmp_path / "ids.txt"
    f.write_text("# picked by hand\n3\n\n1\n3\n")
    assert doc_ids_from(ws, str(f), run_id=fr.run_id).tolist() == [1, 3]
    c = tmp_path / "ids.csv"
    c.write_text("doc_id,x\n4,a\n2,b\n")
    assert doc_ids_from(ws, str(c), run_id=fr.run_id).tolist() == [2, 4]
    got = doc_ids_from(ws, "SELECT doc_id FROM assignments WHERE cluster = 1", run_id=fr.run_id)
    assert got.tolist() == np.flatnonzero(fr.labels == 1).tolist()
    with pytest.raises(ConfigError, match="no doc_id column"):
        doc_ids_from(ws, "SELECT cluster FROM assignments", run_id=fr.run_id)
    with pytest.raises(ConfigError, match="neither a SELECT nor a readable file"):
        doc_ids_from(ws, str(tmp_path / "missing.txt"), run_id=fr.run_id)
    f.write_text("3\nthree\n")
    with pytest.raises(ConfigError, match="line 2"):
        doc_ids_from(ws, str(f), run_id=fr.run_id)
