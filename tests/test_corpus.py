"""Ingest: formats, fields, normalisation, rejections, encodings, limits, cache."""

from __future__ import annotations

import codecs
import gzip
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textcluster.config import CorpusSpec
from textcluster.errors import ConfigError, CorpusError, JobCancelled, StoreError
from textcluster.ingest import corpus, readers
from textcluster.ingest.corpus import ingest, list_fields, load_docs, load_rejections, preview
from textcluster.store import Workspace

DATA = Path(__file__).parent / "data"


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def docs(ws, rep):
    return load_docs(ws, rep.corpus_id)


def column(ws, rep, name):
    """A docs.parquet column as a Python list (None for nulls, unlike pandas' NaN)."""
    return pq.read_table(ws.file(rep.corpus_id, "docs.parquet"), columns=[name]).column(name).to_pylist()


def check_counts(rep, ws=None):
    assert rep.kept + rep.rejected == rep.rows_read
    if ws is not None:
        assert len(load_docs(ws, rep.corpus_id, ["doc_id"])) == rep.kept
        assert len(load_rejections(ws, rep.corpus_id)) == rep.rejected


# -- formats -------------------------------------------------------------------

CSV = 'id,text,label\n1,hello world,a\n2,"quoted, with ""comma""",b\n3,  ,c\n4,hello world,a\n5,x,y,z\n6,"two\nlines",b\n'


def test_csv_keeps_rejects_and_flags(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", CSV), CorpusSpec(text_fields=("text",), id_field="id", label_field="label"), ws)
    check_counts(rep, ws)
    assert (rep.rows_read, rep.kept, rep.rejected, rep.duplicates) == (6, 4, 2, 1)
    assert rep.format == "csv" and rep.encoding == "utf-8" and rep.text_fields == ["text"]
    assert rep.rejections == [
        {"row": 3, "reason": "row 3: field 'text' is empty"},
        {"row": 5, "reason": "row 5: expected 3 fields, got 4"},
    ]
    d = docs(ws, rep)
    assert list(d.columns) == ["doc_id", "row", "text", "source_id", "label", "is_duplicate"]
    assert d["doc_id"].tolist() == [0, 1, 2, 3]
    assert d["row"].tolist() == [1, 2, 4, 6]
    assert d["text"].tolist() == ["hello world", 'quoted, with "comma"', "hello world", "two\nlines"]
    assert d["source_id"].tolist() == ["1", "2", "4", "6"]
    assert d["is_duplicate"].tolist() == [False, False, True, False]
    assert rep.corpus_id.startswith("cor-") and len(rep.corpus_id) == 20


def test_docs_parquet_dtypes_follow_the_contract(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", CSV), CorpusSpec(text_fields=("text",), id_field="id"), ws)
    schema = pq.read_schema(ws.file(rep.corpus_id, "docs.parquet"))
    assert schema.field("doc_id").type == pa.int64()
    assert schema.field("row").type == pa.int64()
    assert schema.field("text").type == pa.string()
    assert schema.field("source_id").type == pa.string()
    assert schema.field("is_duplicate").type == pa.bool_()
    assert "label" not in schema.names  # no label field given
    rej = pq.read_schema(ws.file(rep.corpus_id, "rejections.parquet"))
    assert rej.names == ["row", "reason"] and rej.field("row").type == pa.int64()
    m = ws.manifest(rep.corpus_id)
    assert m.kind == "corpus" and m.source == "a.csv" and len(m.sha256) == 64
    assert m.spec["text_fields"] == ["text"] and m.kept == rep.kept


def test_tsv_has_no_quoting(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.tsv", 'text\tn\nsay "hi\t1\nplain\t2\n'), CorpusSpec(text_fields=("text",)), ws)
    assert docs(ws, rep)["text"].tolist() == ['say "hi', "plain"]
    assert rep.format == "tsv"


def test_jsonl_nested_path_and_rejections(tmp_path, ws):
    lines = [
        {"id": 1, "request": {"messages": [{"content": "hi there"}]}},
        "{not json",
        {"id": 2, "request": {"messages": []}},
        [1, 2],
        "",
        {"id": 3, "request": {"messages": [{"content": 7}]}},
        {"id": 4, "request": {"messages": [{"content": None}]}},
        {"id": 5, "request": {"messages": [{"content": {"a": 1}}]}},
        {"id": 6, "request": {"messages": [{"content": " \t "}]}},
        {"id": 7, "request": {"messages": [{"content": "  e\u0301t\u00e9  "}]}},
    ]
    body = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    spec = CorpusSpec(text_fields=("request.messages[0].content",), id_field="id")
    rep = ingest(write(tmp_path / "c.jsonl", body), spec, ws)
    check_counts(rep, ws)
    reasons = {r["row"]: r["reason"] for r in rep.rejections}
    assert reasons[2].startswith("row 2: invalid JSON")
    assert reasons[3] == "row 3: field 'request.messages[0].content' is missing"
    assert reasons[4] == "row 4: not a JSON object (got array)"
    assert reasons[5] == "row 5: empty line"
    assert reasons[6] == "row 6: field 'request.messages[0].content' is not a string (got a number)"
    assert reasons[7] == "row 7: field 'request.messages[0].content' is null"
    assert reasons[8] == "row 8: field 'request.messages[0].content' is not a string (got an object)"
    assert reasons[9] == "row 9: field 'request.messages[0].content' is empty"
    d = docs(ws, rep)
    assert d["text"].tolist() == ["hi there", "\u00e9t\u00e9"]  # NFC + trimmed
    assert d["row"].tolist() == [1, 10]
    assert d["source_id"].tolist() == ["1", "7"]
    assert json.loads(d["request"][0]) == {"messages": [{"content": "hi there"}]}  # nested -> JSON string


def test_jsonl_fixture_with_chat_messages(ws):
    rep = ingest(DATA / "chat.jsonl", CorpusSpec(text_fields=("request.messages[-1].content",), label_field="meta.topic"), ws)
    d = docs(ws, rep)
    assert d["text"].tolist() == ["How do I reset my card PIN?", "Is there a fee for transfers abroad?"]
    assert d["label"].tolist() == ["cards", "fees"]


def test_json_array(tmp_path, ws):
    body = json.dumps([{"t": "one", "n": 1}, 5, {"t": "two", "n": 2.5}, {"t": "three"}])
    rep = ingest(write(tmp_path / "a.json", body), CorpusSpec(text_fields=("t",)), ws)
    check_counts(rep, ws)
    assert rep.rejections == [{"row": 2, "reason": "row 2: not a JSON object (got number)"}]
    d = docs(ws, rep)
    assert d["text"].tolist() == ["one", "two", "three"]
    assert d["n"].tolist()[:2] == [1.0, 2.5]  # int + float in one column -> float


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('{"t": "a"}\n{"t": "b"}\n', "not a JSON array of objects .*jsonl"),
        ("42", "not a JSON array"),
        ("", "not a JSON array of objects \\(empty\\)"),
        ('[{"t": "a"}, {"t": ', "not valid JSON: element 2"),
        ('[{"t": "a"} {"t": "b"}]', "expected ',' or ']' after element 1"),
        ('[{"t": "a"}] junk', "unexpected text after"),
    ],
)
def test_json_that_is_not_an_array_of_objects(tmp_path, ws, body, match):
    with pytest.raises(CorpusError, match=match):
        ingest(write(tmp_path / "a.json", body), CorpusSpec(text_fields=("t",)), ws)


def test_json_array_elements_split_across_read_chunks(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 7)
    items = [{"t": f"text number {i}", "n": 123456789 + i} for i in range(40)]
    rep = ingest(write(tmp_path / "a.json", json.dumps(items, indent=1)), CorpusSpec(text_fields=("t",)), ws)
    d = docs(ws, rep)
    assert d["text"].tolist() == [x["t"] for x in items]
    assert d["n"].tolist() == [x["n"] for x in items]


def _parquet(path: Path) -> Path:
    t = pa.table({
        "body": ["first doc", "second doc", None, "first doc"],
        "meta": [{"title": "A", "tags": ["x"]}, {"title": "B", "tags": []}, {"title": "C", "tags": ["y"]}, None],
        "turns": [["u1", "a1"], ["u2"], [], ["u4"]],
        "score": [1, 2, 3, 4],
    })
    pq.write_table(t, path)
    return path


def test_parquet_structs_and_lists(tmp_path, ws):
    p = _parquet(tmp_path / "a.parquet")
    rep = ingest(p, CorpusSpec(text_fields=("body",), label_field="meta.title"), ws)
    check_counts(rep, ws)
    assert rep.format == "parquet" and rep.encoding == "parquet"
    assert rep.rejections == [{"row": 3, "reason": "row 3: field 'body' is null"}]
    d = docs(ws, rep)
    assert column(ws, rep, "label") == ["A", "B", None]
    assert d["score"].tolist() == [1, 2, 4]
    assert json.loads(d["meta"][0]) == {"title": "A", "tags": ["x"]}
    rep2 = ingest(p, CorpusSpec(text_fields=("turns[0]", "turns[1]"), separator=" | "), ws)
    assert docs(ws, rep2)["text"].tolist() == ["u1 | a1", "u2", "u4"]
    assert "turns[0]" in list_fields(p) and "meta.title" in list_fields(p)


def test_parquet_without_magic_is_refused(tmp_path, ws):
    with pytest.raises(CorpusError, match="not a Parquet file"):
        ingest(write(tmp_path / "a.parquet", "text\nhello\n"), CorpusSpec(), ws)
    body = b"PAR1" + b"\0" * 20 + b"PAR1"
    with pytest.raises(CorpusError, match="not a readable Parquet file"):
        ingest(write(tmp_path / "b.parquet", body), CorpusSpec(), ws)


def test_txt_one_document_per_line(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.txt", "first line\r\n\nthird\u2028same line\n   \nlast"), CorpusSpec(), ws)
    check_counts(rep, ws)
    assert rep.text_fields == ["text"] and rep.notes == []
    assert docs(ws, rep)["text"].tolist() == ["first line", "third\u2028same line", "last"]
    assert docs(ws, rep)["row"].tolist() == [1, 3, 5]
    assert [r["row"] for r in rep.rejections] == [2, 4]
    with pytest.raises(CorpusError, match="text field 'body' not found in a.txt; fields: 'text'"):
        ingest(tmp_path / "a.txt", CorpusSpec(text_fields=("body",)), ws)


_SAMPLES = {
    "csv": "text,n\nalpha beta,1\ngamma,2\n",
    "tsv": "text\tn\nalpha beta\t1\ngamma\t2\n",
    "jsonl": '{"text": "alpha beta", "n": 1}\n{"text": "gamma", "n": 2}\n',
    "json": '[{"text": "alpha beta", "n": 1}, {"text": "gamma", "n": 2}]',
    "txt": "alpha beta\ngamma\n",
}


@pytest.mark.parametrize("fmt", [*_SAMPLES, "parquet"])
def test_every_format_and_its_gz_form(tmp_path, ws, fmt):
    plain = tmp_path / f"s.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"text": ["alpha beta", "gamma"], "n": [1, 2]}), plain)
    else:
        write(plain, _SAMPLES[fmt])
    gz = tmp_path / f"s.{fmt}.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = ingest(plain, CorpusSpec(text_fields=("text",)), ws)
    b = ingest(gz, CorpusSpec(text_fields=("text",)), ws)
    assert a.format == b.format == fmt
    assert a.corpus_id != b.corpus_id  # different bytes
    assert docs(ws, a)["text"].tolist() == docs(ws, b)["text"].tolist() == ["alpha beta", "gamma"]
    assert preview(gz)["row"].tolist() == [1, 2]


def test_gz_name_without_gzip_content(tmp_path, ws):
    with pytest.raises(CorpusError, match="ends in .gz but is not gzip"):
        ingest(write(tmp_path / "a.csv.gz", "text\nhello\n"), CorpusSpec(), ws)


def test_gzip_content_without_gz_name_is_read_and_noted(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", gzip.compress(b"text\nhello there\n")), CorpusSpec(), ws)
    assert docs(ws, rep)["text"].tolist() == ["hello there"]
    assert any("gzip-compressed" in n for n in rep.notes)


def test_truncated_gzip(tmp_path, ws):
    data = gzip.compress(("text\n" + "some words here\n" * 5000).encode())
    with pytest.raises(CorpusError, match="corrupt or truncated"):
        ingest(write(tmp_path / "a.csv.gz", data[: len(data) // 2]), CorpusSpec(), ws)


def test_unknown_extension_and_format_override(tmp_path, ws):
    p = write(tmp_path / "notes.dat", "one doc\nanother doc\n")
    with pytest.raises(CorpusError, match=r"cannot tell the format of 'notes.dat'.*--format"):
        ingest(p, CorpusSpec(), ws)
    assert ingest(p, CorpusSpec(format="txt"), ws).kept == 2
    with pytest.raises(CorpusError, match="format='xml' is not known"):
        ingest(p, CorpusSpec(format="xml"), ws)


def test_format_detection_reads_the_one_table():
    assert readers.detect_format(Path("X.TAB.GZ"), None) == ("tsv", True)
    for ext, fmt in readers.EXTENSIONS.items():
        assert readers.detect_format(Path(f"data{ext}"), None) == (fmt, False)
        assert readers.detect_format(Path(f"data{ext}.gz"), None) == (fmt, True)
    with pytest.raises(CorpusError, match=r"name it \.csv/\.tsv/\.tab/.*/\.text \(optionally \.gz\)") as e:
        readers.detect_format(Path("notes.dat"), None)
    assert all(ext in str(e.value) for ext in readers.EXTENSIONS)
    # Every readable extension is uploadable, and nothing else but gzip.
    assert readers.upload_types() == [*readers.EXTENSIONS, ".gz"]
    assert readers.extensions_by_format()["parquet"] == [".parquet", ".pq"]


# -- encodings -------------------------------------------------------------------

TEXT = "text\ncafé crème\nnaïve ☕\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_unicode_encodings(tmp_path, ws, data, encoding):
    rep = ingest(write(tmp_path / "a.csv", data), CorpusSpec(), ws)
    assert rep.encoding == encoding
    assert docs(ws, rep)["text"].tolist() == ["café crème", "naïve ☕"]
    assert rep.text_fields == ["text"]  # the BOM is not part of the header name


def test_invalid_utf8_names_the_byte_offset(tmp_path, ws):
    data = "text\ncafé\n".encode() + "crème\n".encode("latin-1")
    p = write(tmp_path / "a.csv", data)
    offset = data.index(b"\xe8")
    with pytest.raises(CorpusError, match=rf"not valid UTF-8: invalid continuation byte at byte offset {offset};.*latin-1"):
        ingest(p, CorpusSpec(), ws)
    rep = ingest(p, CorpusSpec(encoding="latin-1"), ws)
    assert rep.encoding == "latin-1"
    assert any("read the whole file as latin-1" in n and str(offset) in n for n in rep.notes)
    assert docs(ws, rep)["text"].tolist() == ["cafÃ©", "crème"]


def test_invalid_utf8_offset_is_absolute_across_read_chunks(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 5)
    data = ("é" * 20).encode() + b"\xff\n"
    with pytest.raises(CorpusError, match="at byte offset 40;"):
        ingest(write(tmp_path / "a.txt", data), CorpusSpec(), ws)


# -- fields -----------------------------------------------------------------------


def test_several_text_fields_are_joined(tmp_path, ws):
    body = '{"title": "T1", "body": "B1"}\n{"title": "T2", "body": null}\n{"title": " ", "body": ""}\n{"title": "T4", "body": 4}\n'
    spec = CorpusSpec(text_fields=("title", "body"), separator="\n\n")
    rep = ingest(write(tmp_path / "a.jsonl", body), spec, ws)
    assert docs(ws, rep)["text"].tolist() == ["T1\n\nB1", "T2"]
    assert rep.rejections == [
        {"row": 3, "reason": "row 3: fields 'title', 'body' are all empty"},
        {"row": 4, "reason": "row 4: field 'body' is not a string (got a number)"},
    ]


def test_text_field_picked_by_name_and_length(tmp_path, ws):
    rows = [{"id": f"a-very-long-identifier-{i:04d}", "body": f"short words {i}", "n": i} for i in range(30)]
    rep = ingest(write(tmp_path / "a.jsonl", "\n".join(map(json.dumps, rows))), CorpusSpec(), ws)
    assert rep.text_fields == ["body"]
    assert rep.notes[0].startswith("no text field given; picked 'body'")
    rows = [{"k": "x", "long": f"some longer sentence with words {i}", "short": "ab cd"} for i in range(30)]
    rep = ingest(write(tmp_path / "b.jsonl", "\n".join(map(json.dumps, rows))), CorpusSpec(), ws)
    assert rep.text_fields == ["long"]
    rows = [{"n": 1, "meta": {"summary": f"nested text number {i} here"}} for i in range(5)]
    rep = ingest(write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))), CorpusSpec(), ws)
    assert rep.text_fields == ["meta.summary"]


def test_no_text_column_to_pick(tmp_path, ws):
    with pytest.raises(CorpusError, match="no text field given and no column .* holds text"):
        ingest(write(tmp_path / "a.jsonl", '{"n": 1}\n{"n": 2}\n'), CorpusSpec(), ws)


def test_missing_field_lists_fields_and_nested_paths(tmp_path, ws):
    p = write(tmp_path / "a.jsonl", json.dumps({"request": {"messages": [{"content": "x"}]}, "id": 1}) + "\n")
    with pytest.raises(CorpusError, match=r"text field 'body' not found in the first 200 rows of a.jsonl; "
                       r"fields: 'request', 'request.messages\[0\].content', 'id'"):
        ingest(p, CorpusSpec(text_fields=("body",)), ws)
    with pytest.raises(CorpusError, match="label field 'topic' not found"):
        ingest(p, CorpusSpec(text_fields=("request.messages[0].content",), label_field="topic"), ws)
    with pytest.raises(CorpusError, match="id field 'uid' not found in a.csv; fields: 'text'"):
        ingest(write(tmp_path / "a.csv", "text\nx\n"), CorpusSpec(id_field="uid"), ws)
    with pytest.raises(ConfigError, match=r"field path 'a\[x\]'"):
        ingest(p, CorpusSpec(text_fields=("a[x]",)), ws)


def test_csv_column_with_dots_and_brackets_is_a_plain_column(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", "meta.title,price[usd\nHello there,3\n"), CorpusSpec(text_fields=("meta.title",), label_field="price[usd"), ws)
    d = docs(ws, rep)
    assert d["text"].tolist() == ["Hello there"] and d["label"].tolist() == ["3"]


def test_metadata_columns_renamed_on_clash_and_mixed_types(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_ROWS", 2)
    rows = [
        {"body": "a b", "text": 1, "row": "r", "meta_text": "m", "x": 1},
        {"body": "c d", "text": 2, "x": "one"},
        {"body": "e f", "x": 3, "late": True},
        {"body": "g h", "x": None},
        {"body": "i j", "x": 5, "nest": {"k": [1, 2]}},
    ]
    rep = ingest(write(tmp_path / "a.jsonl", "\n".join(map(json.dumps, rows))), CorpusSpec(text_fields=("body",)), ws)
    d = docs(ws, rep)
    assert list(d.columns) == ["doc_id", "row", "text", "is_duplicate", "meta_text", "meta_row", "meta_meta_text", "x", "late", "nest"]
    assert d["text"].tolist() == ["a b", "c d", "e f", "g h", "i j"]
    assert d["doc_id"].tolist() == [0, 1, 2, 3, 4]
    assert d["meta_text"].tolist()[:2] == [1, 2]
    assert column(ws, rep, "x") == ["1", "one", "3", None, "5"]  # mixed types across chunks -> strings
    assert d["nest"].tolist()[4] == '{"k": [1, 2]}'
    assert any("'text' is stored as 'meta_text'" in n for n in rep.notes)


def test_duplicate_and_empty_csv_header_names(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", "text,a,a,\nhello,1,2,3\n"), CorpusSpec(text_fields=("text",)), ws)
    assert list(docs(ws, rep).columns)[-3:] == ["a", "a_2", "column_4"]
    assert len(rep.notes) == 2


def test_lone_surrogates_from_json_escapes(tmp_path, ws):
    body = '{"t": "bad \\ud800 text", "m": "x"}\n{"t": "good", "m": "bad \\udc80"}\n'
    rep = ingest(write(tmp_path / "a.jsonl", body), CorpusSpec(text_fields=("t",)), ws)
    assert rep.rejections == [{"row": 1, "reason": "row 1: text holds invalid Unicode (a lone surrogate)"}]
    assert docs(ws, rep)["m"].tolist() == ["bad ?"]


def test_long_texts_are_kept_whole(tmp_path, ws):
    long = "word " * 60_000 + "end"
    rep = ingest(write(tmp_path / "a.csv", f'text\n"{long}"\nshort\n'), CorpusSpec(), ws)
    assert docs(ws, rep)["text"].tolist() == [long, "short"]
    rep = ingest(write(tmp_path / "a.jsonl", json.dumps({"t": long}) + "\n"), CorpusSpec(), ws)
    assert docs(ws, rep)["text"].tolist() == [long]


# -- duplicates ---------------------------------------------------------------------


def test_drop_duplicates_rejects_with_the_first_row(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_ROWS", 2)
    p = write(tmp_path / "a.txt", "a\nb\na\n\nb\na\nc\n")
    flagged = ingest(p, CorpusSpec(), ws)
    assert flagged.duplicates == 3 and flagged.kept == 6
    assert docs(ws, flagged)["is_duplicate"].tolist() == [False, False, True, True, True, False]
    dropped = ingest(p, CorpusSpec(drop_duplicates=True), ws)
    check_counts(dropped, ws)
    assert dropped.corpus_id != flagged.corpus_id
    assert (dropped.kept, dropped.rejected, dropped.duplicates) == (3, 4, 3)
    assert [r["reason"] for r in dropped.rejections] == [
        "row 3: duplicate of row 1", "row 4: field 'text' is empty",
        "row 5: duplicate of row 2", "row 6: duplicate of row 1",
    ]
    d = docs(ws, dropped)
    assert d["doc_id"].tolist() == [0, 1, 2] and d["text"].tolist() == ["a", "b", "c"]
    assert not d["is_duplicate"].any()


def test_duplicates_compare_normalised_text(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.txt", "caf\u00e9\n  cafe\u0301  \nCafé\n"), CorpusSpec(), ws)
    assert docs(ws, rep)["is_duplicate"].tolist() == [False, True, False]


# -- errors and limits -----------------------------------------------------------------


def test_missing_file_folder_and_empty_files(tmp_path, ws):
    with pytest.raises(CorpusError, match="no such file"):
        ingest(tmp_path / "nope.csv", CorpusSpec(), ws)
    with pytest.raises(CorpusError, match="is not a file"):
        ingest(tmp_path, CorpusSpec(), ws)
    for name in ("e.csv", "e.txt", "e.jsonl"):
        with pytest.raises(CorpusError, match="empty"):
            ingest(write(tmp_path / name, ""), CorpusSpec(), ws)
    with pytest.raises(CorpusError, match="no rows .*only a header"):
        ingest(write(tmp_path / "h.csv", "text,label\n"), CorpusSpec(text_fields=("text",)), ws)


def test_zero_usable_rows(tmp_path, ws):
    with pytest.raises(CorpusError, match=r"no usable rows in a.txt: 3 rows read, all rejected; first reasons: row 1: field 'text' is empty"):
        ingest(write(tmp_path / "a.txt", " \n\t\n \n"), CorpusSpec(), ws)


def test_decompression_bomb_is_refused(tmp_path, ws):
    bomb = write(tmp_path / "bomb.txt.gz", gzip.compress(b"aaaa aaaa\n" * 2_000_000))  # 20 MB inside, ~20 KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(CorpusError, match="more than max_bytes=1048576 bytes after decompression"):
        ingest(bomb, CorpusSpec(max_bytes=1 << 20), ws)
    assert not any((ws.root / "corpus").glob("*")) if (ws.root / "corpus").exists() else True
    assert not any((ws.root / "tmp").iterdir())  # nothing left behind


def test_size_and_row_limits(tmp_path, ws):
    p = write(tmp_path / "a.txt", "x y\n" * 100)
    with pytest.raises(CorpusError, match="more than max_bytes=50"):
        ingest(p, CorpusSpec(max_bytes=50), ws)
    with pytest.raises(CorpusError, match="more than max_rows=10 rows"):
        ingest(p, CorpusSpec(max_rows=10), ws)
    pq.write_table(pa.table({"text": ["a"] * 20}), tmp_path / "a.parquet")
    with pytest.raises(CorpusError, match="has 20 rows, more than max_rows=5"):
        ingest(tmp_path / "a.parquet", CorpusSpec(max_rows=5), ws)
    with pytest.raises(ConfigError, match="max_rows=0"):
        ingest(p, CorpusSpec(max_rows=0), ws)


# -- cache, progress, cancel ----------------------------------------------------------


def test_second_ingest_is_a_cache_hit_without_reading(tmp_path, ws, monkeypatch):
    p = write(tmp_path / "a.csv", CSV)
    spec = CorpusSpec(text_fields=("text",))
    first = ingest(p, spec, ws)
    assert not first.cached

    def boom(*a, **k):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(readers, "open_source", boom)
    again = ingest(p, spec, ws)
    assert again.cached and again.corpus_id == first.corpus_id
    assert {**again.to_dict(), "cached": False} == first.to_dict()
    # A copy with another name is the same bytes: same corpus. The limits are not in the key.
    copy = write(tmp_path / "copy.csv", p.read_bytes())
    assert ingest(copy, CorpusSpec(text_fields=("text",), max_rows=99), ws).corpus_id == first.corpus_id
    assert corpus.corpus_id_for(p, spec) == first.corpus_id
    assert corpus.load_report(ws, first.corpus_id).kept == first.kept


def test_the_same_bytes_under_another_format_are_another_corpus(tmp_path, ws):
    """Detected from the name, the format is part of the id: the bytes of a CSV named .txt are
    one document per line, not the cached CSV's rows."""
    data = b"text,label\nalpha beta,a\ngamma delta,b\n"
    as_csv = ingest(write(tmp_path / "x.csv", data), CorpusSpec(), ws)
    as_txt = ingest(write(tmp_path / "x.txt", data), CorpusSpec(), ws)
    assert as_csv.corpus_id != as_txt.corpus_id and not as_txt.cached
    assert (as_csv.kept, as_txt.kept) == (2, 3)
    assert corpus.corpus_id_for(tmp_path / "x.txt", CorpusSpec()) == as_txt.corpus_id
    # a format named in the spec keeps one id whatever the file is called
    named = ingest(write(tmp_path / "y.dat", data), CorpusSpec(format="csv"), ws)
    assert corpus.corpus_id_for(tmp_path / "x.csv", CorpusSpec(format="csv")) == named.corpus_id


def test_progress_and_cancel(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_ROWS", 10)
    p = write(tmp_path / "a.txt", "".join(f"line {i}\n" for i in range(100)))
    seen = []
    ingest(p, CorpusSpec(), ws, progress=seen.append)
    assert seen and seen[-1].stage == "ingest" and seen[-1].done == seen[-1].total == p.stat().st_size
    assert seen[-1].message == "100 rows read" and seen[0].message == "10 rows read"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled, match="ingest cancelled"):
        ingest(p, CorpusSpec(drop_duplicates=True), ws, cancel=cancel)
    blank = write(tmp_path / "blank.txt", "\n" * 100 + "x\n")  # rejected rows are checked too
    with pytest.raises(JobCancelled):
        ingest(blank, CorpusSpec(), ws, cancel=cancel)


def test_suggest_text_field(tmp_path):
    rows = [{"id": f"id-{i:09d}", "title": f"short {i}", "details": "a much longer sentence with words"} for i in range(5)]
    p = write(tmp_path / "a.jsonl", "\n".join(map(json.dumps, rows)))
    assert corpus.suggest_text_field(p) == "details"
    assert corpus.suggest_text_field(p, CorpusSpec(label_field="details")) == "title"
    assert corpus.suggest_text_field(write(tmp_path / "b.txt", "x\n")) == "text"
    assert corpus.suggest_text_field(write(tmp_path / "c.jsonl", '{"n": 1}\n')) is None


def test_report_lists_at_most_1000_rejections(tmp_path, ws):
    p = write(tmp_path / "a.txt", "\n" * 1500 + "x\n")
    rep = ingest(p, CorpusSpec(), ws)
    assert rep.rejected == 1500 and len(rep.rejections) == 1000
    assert rep.rejections[-1]["row"] == 1000
    assert load_rejections(ws, rep.corpus_id)["row"].tolist() == list(range(1, 1501))


# -- list_fields, preview, load ----------------------------------------------------------


def test_list_fields_and_preview(tmp_path):
    p = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in [
        {"id": 1, "request": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}},
        "garbage",
        {"id": 2, "extra": "e"},
    ]).replace('"garbage"', "{garbage"))
    assert list_fields(p) == ["id", "request", "request.model", "request.messages[0].role",
                              "request.messages[0].content", "extra"]
    assert list_fields(write(tmp_path / "a.csv", "x,y\n1,2\n")) == ["x", "y"]
    frame = preview(p, n=5)
    assert frame["row"].tolist() == [1, 3]
    assert list(frame.columns) == ["row", "id", "request", "extra"]
    assert json.loads(frame["request"][0])["model"] == "m"
    assert len(preview(write(tmp_path / "b.txt", "a\nb\nc\n"), n=2)) == 2


def test_list_fields_of_undecodable_file(tmp_path):
    p = write(tmp_path / "a.csv", b"t\xe9xt\nx\n")
    with pytest.raises(CorpusError, match="byte offset 1"):
        list_fields(p)
    assert list_fields(p, CorpusSpec(encoding="latin-1")) == ["téxt"]


def test_load_docs_columns_and_errors(tmp_path, ws):
    rep = ingest(write(tmp_path / "a.csv", CSV), CorpusSpec(text_fields=("text",)), ws)
    assert list(load_docs(ws, rep.corpus_id, ["doc_id", "text"]).columns) == ["doc_id", "text"]
    with pytest.raises(StoreError, match=r"has no column\(s\) \['nope'\]"):
        load_docs(ws, rep.corpus_id, ["nope"])
    with pytest.raises(StoreError, match="no corpus 'cor-0000000000000000'"):
        load_docs(ws, "cor-0000000000000000")


# -- demo ------------------------------------------------------------------------------


def test_demo_corpus_ingests(ws):
    from textcluster.ingest import demo

    path = demo.demo_corpus_path()
    assert path.name == "banking77.csv.gz" and demo.demo_license_path().is_file()
    assert "CC BY 4.0" in demo.DEMO_CREDIT and "Casanueva" in demo.DEMO_CREDIT
    rep = ingest(path, demo.DEMO_SPEC, ws)
    assert (rep.rows_read, rep.kept, rep.rejected) == (10003, 10003, 0)
    labels = load_docs(ws, rep.corpus_id, ["label"])["label"]
    assert labels.nunique() == 77 and labels[0] == "card_arrival"


def test_write_banking77_csv_maps_ids_to_names(tmp_path, ws):
    from textcluster.ingest import demo

    src = tmp_path / "b77"
    src.mkdir()
    write(src / "train_text.txt", "where is my card?\nhow to top up\n")
    write(src / "train_labels.txt", "0\ntop_up\n")
    write(src / "categories.json", json.dumps(["card_arrival", "top_up"]))
    out = tmp_path / "b.csv.gz"
    assert demo.write_banking77_csv(src, out) == 2
    first = out.read_bytes()
    demo.write_banking77_csv(src, out)
    assert out.read_bytes() == first  # reproducible bytes
    rep = ingest(out, demo.DEMO_SPEC, ws)
    assert load_docs(ws, rep.corpus_id, ["label"])["label"].tolist() == ["card_arrival", "top_up"]


def test_chunks_are_bounded_by_characters_too(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 10)
    p = write(tmp_path / "a.txt", "".join(f"document number {i}\n" for i in range(7)) + "document number 0\n")
    rep = ingest(p, CorpusSpec(), ws)
    assert pq.ParquetFile(ws.file(rep.corpus_id, "docs.parquet")).metadata.num_row_groups == 8
    d = docs(ws, rep)
    assert d["doc_id"].tolist() == list(range(8)) and d["is_duplicate"].tolist() == [False] * 7 + [True]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named(tmp_path, ws, codec):
    with pytest.raises(CorpusError, match="looks like UTF-16 without a byte-order mark"):
        ingest(write(tmp_path / "a.csv", TEXT, codec), CorpusSpec(), ws)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5])
def test_tiny_read_chunks_split_boms_and_characters(tmp_path, ws, monkeypatch, chunk):
    monkeypatch.setattr(readers, "CHUNK_BYTES", chunk)
    for i, (data, enc) in enumerate([(codecs.BOM_UTF8 + TEXT.encode(), "utf-8-sig"),
                                     (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le")]):
        rep = ingest(write(tmp_path / f"a{i}.csv", data), CorpusSpec(), ws)
        assert rep.encoding == enc
        assert docs(ws, rep)["text"].tolist() == ["café crème", "naïve ☕"]


def test_an_endless_line_is_refused_before_it_fills_memory(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(readers, "MAX_RECORD_CHARS", 1000)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 100)
    p = write(tmp_path / "a.txt.gz", gzip.compress(b"ok line\n" + b"x" * 5000 + b"\nlast\n"))
    with pytest.raises(CorpusError, match="line 2 is longer than 1000 characters"):
        ingest(p, CorpusSpec(), ws)
    ok = write(tmp_path / "b.txt", b"ok line\n" + b"x" * 900 + b"\nlast\n")
    assert ingest(ok, CorpusSpec(), ws).kept == 3


def test_too_many_metadata_columns_go_into_one_json_column(tmp_path, ws, monkeypatch):
    monkeypatch.setattr(corpus, "MAX_META_COLUMNS", 2)
    rows = [{"text": f"doc {i}", "a": i, "b": i, f"k{i}": i, "meta_extra": "x"} for i in range(3)]
    rep = ingest(write(tmp_path / "a.jsonl", "\n".join(map(json.dumps, rows))), CorpusSpec(text_fields=("text",)), ws)
    d = docs(ws, rep)
    assert list(d.columns)[-3:] == ["a", "b", "meta_extra"]
    assert [json.loads(x) for x in d["meta_extra"]] == [{f"k{i}": i, "meta_extra": "x"} for i in range(3)]
    assert rep.notes == ["more than 2 metadata columns; the other keys are kept as one JSON object per row in "
                         "'meta_extra'"]
