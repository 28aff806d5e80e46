"""CLI: `textcluster edit`, `history`, `compare`, `tag`, and `assign` of an edited run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes_run import make_run
from test_runs import TOPICS

from textcluster.cli import main
from textcluster.store import Workspace


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(30, 20, 10, 6), n_noise=4)


def _run(capsys, ws, *argv):
    try:
        code = main([*argv, "--workspace", str(ws.root)])
    except SystemExit as e:  # argparse refused an argument
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys, ws, *argv):
    code, out, err = _run(capsys, ws, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _runs(ws):
    return sorted(m.id for m in ws.list("run"))


def test_edit_prints_the_new_run_id_and_json(env, capsys):
    ws, fr = env
    code, out, err = _run(capsys, ws, "edit", fr.run_id, "rename", "2", "Baking")
    assert code == 0, err
    rid = out.strip()
    assert rid.startswith("run-") and rid != fr.run_id
    d = _json(capsys, ws, "edit", fr.run_id, "rename", "2", "Baking")
    assert d["run_id"] == rid and d["parent"] == fr.run_id and d["cached"] is True
    assert d["edit"] == {"op": "rename", "names": {"2": "Baking"}}
    # a cluster named by its name
    m = _json(capsys, ws, "edit", rid, "merge", "Baking", "3", "--name", "Kitchen")
    assert m["parent"] == rid and m["edit"]["op"] == "merge" and m["k"] == 3
    assert "Kitchen" in m["names"].values()
    s = _json(capsys, ws, "edit", m["run_id"], "split", "Kitchen", "--k", "2")
    assert s["k"] == 4 and s["edit"]["k"] == 2
    dr = _json(capsys, ws, "edit", s["run_id"], "drop", "0", "--to-nearest")
    assert dr["edit"] == {"op": "drop", "cluster": 0, "to_nearest": True}
    h = _json(capsys, ws, "history", dr["run_id"])
    assert [v["run_id"] for v in h["versions"]] == [fr.run_id, rid, m["run_id"], s["run_id"], dr["run_id"]]
    code, out, _ = _run(capsys, ws, "history", dr["run_id"])
    assert code == 0 and "merge 2 + 3" in out and "drop 0 (to nearest)" in out


def test_move_takes_a_file_or_a_select(env, capsys, tmp_path):
    ws, fr = env
    docs = np.flatnonzero(fr.labels == 1)[:4]
    f = tmp_path / "ids.txt"
    f.write_text("\n".join(map(str, docs)) + "\n")
    a = _json(capsys, ws, "edit", fr.run_id, "move", "--docs", str(f), "--to", "0")
    sql = f"SELECT doc_id FROM docs WHERE doc_id IN ({', '.join(map(str, docs))})"
    b = _json(capsys, ws, "edit", fr.run_id, "move", "--docs", sql, "--to", "0")
    assert a["run_id"] == b["run_id"] and b["cached"] is True  # the same documents: the same version
    labels = np.load(ws.file(a["run_id"], "labels.npy"))
    assert (labels[docs] == labels[np.flatnonzero(fr.labels == 0)[0]]).all()


@pytest.mark.parametrize(("argv", "message"), [
    (["rename", "9", "x"], "9"),
    (["rename", "1", ""], "cannot be empty"),
    (["rename", "1", "x" * 201], "at most 200"),
    (["merge", "1"], "two or more"),
    (["merge", "no-such-name", "1"], "no-such-name"),
    (["split", "3", "--k", "7"], "only 6 member"),
    (["split", "3", "--k", "0"], "whole number of at least 1"),
    (["drop", "12"], "12"),
    (["move", "--docs", "SELECT 1 AS x", "--to", "1"], "doc_id"),
])
def test_bad_input_is_one_error_line_exit_2_and_no_new_run(env, capsys, argv, message):
    ws, fr = env
    before = _runs(ws)
    code, out, err = _run(capsys, ws, "edit", fr.run_id, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error:") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
    assert _runs(ws) == before


def test_compare_a_run_and_its_merge(env, capsys):
    ws, fr = env
    m = _json(capsys, ws, "edit", fr.run_id, "merge", "1", "3")
    c = _json(capsys, ws, "compare", fr.run_id, m["run_id"])
    assert c["n"] == 70 and 0 < c["ari"] < 1
    assert [(x["kind"], x["a"]) for x in c["changes"]] == [("merged", [1, 3])]
    assert c["contingency"]["matched"] == 3
    same = _json(capsys, ws, "compare", fr.run_id, _json(capsys, ws, "edit", fr.run_id, "rename", "0", "A")["run_id"])
    assert same["ari"] == 1.0 and same["nmi"] == 1.0 and same["changes"] == []
    code, out, _ = _run(capsys, ws, "compare", fr.run_id, m["run_id"])
    assert code == 0 and "ARI" in out and "merged" in out
    code, _, err = _run(capsys, ws, "compare", fr.run_id, fr.run_id)
    assert code == 2 and err.startswith("error: give two different runs")


def test_tag_add_list_remove_and_query(env, capsys, tmp_path):
    ws, fr = env
    d = _json(capsys, ws, "tag", fr.run_id, "add", "to review",
              "--docs", "SELECT doc_id FROM assignments WHERE cluster = 2")
    assert d["docs"] == 10 and d["corpus_id"] == fr.corpus_id
    lst = _json(capsys, ws, "tag", fr.corpus_id, "list")
    assert [(t["name"], t["docs"]) for t in lst["tags"]] == [("to review", 10)]
    q = _json(capsys, ws, "query", "SELECT count(*) AS n FROM docs WHERE list_contains(tags, 'to review')",
              "--run", fr.run_id)
    assert q["rows"] == [{"n": 10}]
    code, _, err = _run(capsys, ws, "tag", fr.run_id, "add", "", "--docs", "SELECT 1 AS doc_id")
    assert code == 2 and "cannot be empty" in err
    edits_run = _json(capsys, ws, "edit", fr.run_id, "rename", "0", "x")["run_id"]  # now two runs
    r = _json(capsys, ws, "tag", fr.corpus_id, "remove", "to review", "--docs",
              f"SELECT doc_id FROM docs WHERE doc_id IN ({', '.join(map(str, np.flatnonzero(fr.labels == 2)[:4]))})")
    assert r["docs"] == 6 and edits_run != fr.run_id
    assert _json(capsys, ws, "tag", fr.run_id, "remove", "to review")["deleted"] is True


def test_assign_follows_the_edited_version_and_names(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    lines = [f"{' '.join(rng.choice(TOPICS[i % 3].split(), size=5))} n{i},t{i % 3}" for i in range(60)]
    f = tmp_path / "in.csv"
    f.write_text("body,topic\n" + "\n".join(lines) + "\n", encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    run = _json(capsys, ws, "run", str(f), "--text-field", "body", "--encoder", "tfidf", "--encoder-dims", "8",
                "--k", "3", "--projection", "pca")
    parent = np.load(ws.file(run["run_id"], "labels.npy"))
    merged = _json(capsys, ws, "edit", run["run_id"], "merge", "0", "1", "--name", "Zero and one")
    got = _json(capsys, ws, "assign", merged["run_id"], str(f), "--text-field", "body")
    child = np.load(ws.file(merged["run_id"], "labels.npy"))
    assert [r["cluster"] for r in got["labels"]] == child.tolist()
    name_of = {r["cluster"]: r.get("cluster_name") for r in got["labels"]}
    assert name_of[int(child[np.flatnonzero(parent == 0)[0]])] == "Zero and one"
    dropped = _json(capsys, ws, "edit", run["run_id"], "drop", "2")
    got = _json(capsys, ws, "assign", dropped["run_id"], str(f), "--text-field", "body")
    labels = np.array([r["cluster"] for r in got["labels"]])
    assert (labels[parent == 2] == -1).all() and (labels[parent != 2] >= 0).all()


def test_names_offers_keyword_names_and_accept_stores_them(env, capsys):
    ws, fr = env
    before = _runs(ws)
    d = _json(capsys, ws, "names", fr.run_id)
    assert [r["cluster"] for r in d["clusters"]] == [0, 1, 2, 3]
    assert all(r["offered"] == r["keywords"] and r["current"] is None for r in d["clusters"])
    assert _runs(ws) == before  # offering writes no run
    a = _json(capsys, ws, "names", fr.run_id, "--accept")
    assert a["accepted"] is True and ws.manifest(a["new_run_id"]).edit["op"] == "rename"
    again = _json(capsys, ws, "names", a["new_run_id"], "--accept")
    assert again["accepted"] is False and again["new_run_id"] is None
    code, _, err = _run(capsys, ws, "names", fr.run_id, "--llm", "topics")
    assert code == 2 and err.startswith("error:") and "base URL" in err


def test_drill_then_merge_back(env, capsys):
    ws, fr = env
    sql = "SELECT doc_id FROM assignments WHERE cluster IN (0, 1)"
    sub = _json(capsys, ws, "edit", fr.run_id, "drill", "--docs", sql, "--k", "2")
    assert sub["parent"] == fr.run_id and sub["edit"]["op"] == "drill" and sub["k"] == 2
    back = _json(capsys, ws, "edit", sub["run_id"], "merge-back")
    assert back["parent"] == fr.run_id and back["edit"]["sub_run"] == sub["run_id"]
    code, _, err = _run(capsys, ws, "edit", fr.run_id, "merge-back")
    assert code == 2 and "not a drill-down" in err
