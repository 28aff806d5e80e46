"""`textcluster ingest` through textcluster.cli.main."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from textcluster.cli import main
from textcluster.cli.ingest import parse_size


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_json_report(tmp_path, capsys):
    f = tmp_path / "a.csv"
    f.write_text("uid,body,topic\n1,hello there,x\n2,,y\n3,hello there,x\n", encoding="utf-8")
    ws = str(tmp_path / "ws")
    code, out, err = run(capsys, "ingest", str(f), "--workspace", ws, "--json", "--text-field", "body",
                         "--id-field", "uid", "--label-field", "topic")
    assert code == 0 and err == ""
    rep = json.loads(out)
    assert {k: rep[k] for k in ("rows_read", "kept", "rejected", "duplicates", "cached", "format", "encoding")} == {
        "rows_read": 3, "kept": 2, "rejected": 1, "duplicates": 1, "cached": False, "format": "csv", "encoding": "utf-8"}
    assert rep["rejections"] == [{"row": 2, "reason": "row 2: field 'body' is empty"}]
    assert rep["text_fields"] == ["body"] and rep["corpus_id"].startswith("cor-")
    assert os.path.isfile(os.path.join(ws, "corpus", rep["corpus_id"], "docs.parquet"))
    code, out, _ = run(capsys, "ingest", str(f), "--workspace", ws, "--json", "--text-field", "body",
                       "--id-field", "uid", "--label-field", "topic")
    again = json.loads(out)
    assert code == 0 and again["cached"] is True and again["corpus_id"] == rep["corpus_id"]


def test_ingest_options_change_the_corpus(tmp_path, capsys):
    f = tmp_path / "notes.dat"
    f.write_text("t\u00e9st\nother\nother\n", encoding="latin-1")
    ws = str(tmp_path / "ws")
    code, out, err = run(capsys, "ingest", str(f), "--workspace", ws, "--json", "--format", "txt",
                         "--encoding", "latin-1", "--drop-duplicates", "--max-rows", "10", "--max-bytes", "1K")
    assert code == 0, err
    rep = json.loads(out)
    assert (rep["kept"], rep["rejected"], rep["encoding"]) == (2, 1, "latin-1")
    assert rep["rejections"][0]["reason"] == "row 3: duplicate of row 2"
    assert any("latin-1" in n for n in rep["notes"])


def test_human_output(tmp_path, capsys):
    f = tmp_path / "a.txt"
    f.write_text("one\n\ntwo\n", encoding="utf-8")
    code, out, _ = run(capsys, "ingest", str(f), "--workspace", str(tmp_path / "ws"))
    assert code == 0
    assert "rows read 3, kept 2, rejected 1, duplicates 0" in out
    assert "row 2: field 'text' is empty" in out


def test_separator_escape(tmp_path, capsys):
    f = tmp_path / "a.jsonl"
    f.write_text('{"a": "x", "b": "y"}\n', encoding="utf-8")
    ws = tmp_path / "ws"
    code, out, _ = run(capsys, "ingest", str(f), "--workspace", str(ws), "--json",
                       "--text-field", "a", "--text-field", "b", "--separator", "\\t")
    assert code == 0
    from textcluster.ingest.corpus import load_docs
    from textcluster.store import Workspace

    assert load_docs(Workspace(ws), json.loads(out)["corpus_id"])["text"].tolist() == ["x\ty"]


def test_list_fields(tmp_path, capsys):
    f = tmp_path / "a.jsonl"
    f.write_text('{"request": {"messages": [{"content": "hi"}]}, "id": 1}\n', encoding="utf-8")
    code, out, _ = run(capsys, "ingest", str(f), "--list-fields", "--json", "--workspace", str(tmp_path / "ws"))
    assert code == 0
    assert json.loads(out)["fields"] == ["request", "request.messages[0].content", "id"]
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    ("content", "extra", "match"),
    [
        (None, [], "no such file"),
        ("text\nhello\n", ["--text-field", "body"], "text field 'body' not found in a.csv; fields: 'text'"),
        ("text\n\n \n", [], "no usable rows"),
        (b"text\n\xff\n", [], "not valid UTF-8: invalid start byte at byte offset 5"),
        ("text\n" + "x\n" * 20, ["--max-rows", "5"], "more than max_rows=5"),
        ("text\nhello\n", ["--max-rows", "0"], "--max-rows 0 should be >= 1"),
    ],
)
def test_errors_exit_2_with_one_error_line(tmp_path, capsys, content, extra, match):
    f = tmp_path / "a.csv"
    if isinstance(content, str):
        f.write_text(content, encoding="utf-8")
    elif content is not None:
        f.write_bytes(content)
    code, out, err = run(capsys, "ingest", str(f), "--workspace", str(tmp_path / "ws"), "--json", *extra)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert match in lines[0]


def test_bad_max_bytes_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["ingest", str(tmp_path / "a.csv"), "--max-bytes", "lots"])
    assert e.value.code == 2
    assert "error: argument --max-bytes: 'lots' is not a size" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "n"), [("123", 123), ("1K", 1024), ("500M", 500 << 20), ("8G", 8 << 30), ("1.5gib", 3 << 29)])
def test_parse_size(text, n):
    assert parse_size(text) == n


def test_parse_size_rejects_junk():
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        parse_size("8X")


def test_format_choices_and_help_come_from_the_readers_table():
    from textcluster.cli import build_parser
    from textcluster.ingest import readers

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    ingest = sub.choices["ingest"]
    fmt = next(a for a in ingest._actions if a.dest == "format")
    assert fmt.choices is readers.FORMATS  # the table's tuple itself, not a copy typed again
    assert tuple(dict.fromkeys(readers.EXTENSIONS.values())) == readers.FORMATS
    help_text = ingest.format_help()
    for ext in readers.EXTENSIONS:  # .tab, .pq, .text too
        assert ext in help_text


def test_every_readable_extension_is_read_by_its_format(tmp_path, capsys):
    """.tab, .pq and .text (and their .gz) read like .tsv, .parquet and .txt."""
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcluster.ingest.readers import EXTENSIONS

    content = {
        "csv": b"text\nhello there\n",
        "tsv": b"text\nhello there\n",
        "jsonl": b'{"text": "hello there"}\n',
        "json": b'[{"text": "hello there"}]',
        "txt": b"hello there\n",
    }
    pq.write_table(pa.table({"text": ["hello there"]}), tmp_path / "t.parquet")
    content["parquet"] = (tmp_path / "t.parquet").read_bytes()
    for ext, fmt in EXTENSIONS.items():
        for gz in (False, True):
            f = tmp_path / f"in{ext}{'.gz' if gz else ''}"
            f.write_bytes(gzip.compress(content[fmt]) if gz else content[fmt])
            ws = str(tmp_path / f"ws-{f.name}")  # same bytes under two names: two workspaces
            code, out, err = run(capsys, "ingest", str(f), "--workspace", ws, "--json")
            assert code == 0, (f.name, err)
            rep = json.loads(out)
            assert (rep["format"], rep["kept"], rep["text_fields"]) == (fmt, 1, ["text"]), f.name
