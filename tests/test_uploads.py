"""Uploads: content-addressed folders, sanitised names, dedupe, streamed saves."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from textcluster.errors import CorpusError
from textcluster.ingest import corpus
from textcluster.ingest.readers import EXTENSIONS, detect_format
from textcluster.ingest.uploads import MAX_NAME_CHARS, safe_upload_name, save_upload
from textcluster.store import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("topics.csv", "topics.csv"),
        ("../../x.csv", "x.csv"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\evil.jsonl", "evil.jsonl"),
        ("C:\\Users\\me\\my data (v2).tsv", "my_data_v2_.tsv"),
        ("", "upload"),
        (".", "upload"),
        ("..", "upload"),
        ("///", "upload"),
        ("§§§", "upload"),
        (".bashrc", "bashrc"),
        (".csv", "upload.csv"),
        ("..csv.gz", "upload.csv.gz"),
        (".hidden.txt", "hidden.txt"),
        ("a\x00b.csv", "a_b.csv"),
        ("données.csv", "donn_es.csv"),
    ],
)
def test_names_are_sanitised(name, expected):
    assert safe_upload_name(name) == expected


def test_long_names_are_cut_but_keep_their_extensions():
    name = "x" * 1000 + ".jsonl.gz"
    safe = safe_upload_name(name)
    assert len(safe) == MAX_NAME_CHARS and safe.endswith("x.jsonl.gz")
    assert detect_format(Path(safe), None) == ("jsonl", True)
    plain = safe_upload_name("y" * 500)
    assert plain == "y" * MAX_NAME_CHARS


def test_a_name_that_is_not_a_string_is_a_corpus_error():
    with pytest.raises(CorpusError, match="should be a string, got bytes"):
        safe_upload_name(b"x.csv")


def test_every_readable_extension_survives_sanitising():
    for ext in EXTENSIONS:
        for name in (f"data{ext}", f"data{ext}.gz"):
            assert safe_upload_name(name) == name


def test_save_is_content_addressed_and_stays_inside_the_uploads_folder(ws):
    data = b"id,text\n1,hello world\n"
    path = save_upload(ws, "../../../outside.csv", data)
    digest = hashlib.sha256(data).hexdigest()
    assert path == ws.root / "uploads" / digest / "outside.csv"
    assert path.read_bytes() == data
    assert not (ws.root.parent / "outside.csv").exists()
    assert path.resolve().is_relative_to((ws.root / "uploads").resolve())


def test_the_same_bytes_are_stored_once(ws):
    data = b"id,text\n1,hello world\n"
    first = save_upload(ws, "a.csv", data)
    mtime = first.stat().st_mtime_ns
    os.utime(first, ns=(0, 0))  # a rewrite would move the time forward again
    again = save_upload(ws, "a.csv", data)
    assert again == first and first.stat().st_mtime_ns == 0 != mtime
    streamed = save_upload(ws, "a.csv", io.BytesIO(data))
    assert streamed == first and first.stat().st_mtime_ns == 0
    # Same bytes, other name: the same folder (one hash), a file per name.
    other = save_upload(ws, "a.tsv", data)
    assert other.parent == first.parent and other.name == "a.tsv"
    # Other bytes: another folder.
    assert save_upload(ws, "a.csv", data + b"2,again\n").parent != first.parent
    assert len(list((ws.root / "uploads").iterdir())) == 2  # no staging or temp files left


class OneWay:
    """A stream that can only be read (a socket, a pipe): no seek, no tell."""

    def __init__(self, data, text=False):
        self.buf = io.StringIO(data.decode()) if text else io.BytesIO(data)

    def read(self, n=-1):
        return self.buf.read(n)


@pytest.mark.parametrize("wrap", [io.BytesIO, OneWay], ids=["seekable", "one-way"])
def test_a_stream_is_saved_in_chunks_with_its_hash(ws, wrap):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB chunk
    path = save_upload(ws, "big.txt", wrap(data))
    assert path.parent.name == hashlib.sha256(data).hexdigest()
    assert path.read_bytes() == data
    os.utime(path, ns=(0, 0))
    assert save_upload(ws, "big.txt", wrap(data)) == path == save_upload(ws, "big.txt", data)
    assert path.stat().st_mtime_ns == 0  # found, not written again
    leftovers = [p for p in (ws.root / "uploads").rglob("*") if p != path and p != path.parent]
    assert leftovers == []


def test_a_seekable_stream_is_read_from_where_it_stands(ws):
    f = io.BytesIO(b"HEADER-TO-SKIP" + b"id,text\n1,hi\n")
    f.seek(len(b"HEADER-TO-SKIP"))
    assert save_upload(ws, "x.csv", f).read_bytes() == b"id,text\n1,hi\n"


def test_bad_data_is_a_corpus_error_and_leaves_nothing(ws):
    with pytest.raises(CorpusError, match="bytes or a binary stream, got str"):
        save_upload(ws, "x.csv", "id,text\n")
    with pytest.raises(CorpusError, match="gave str, not bytes"):
        save_upload(ws, "x.csv", io.StringIO("id,text\n"))
    with pytest.raises(CorpusError, match="gave str, not bytes"):
        save_upload(ws, "x.csv", OneWay(b"id,text\n", text=True))
    files = [p for p in (ws.root / "uploads").rglob("*") if p.is_file()]
    assert files == []


def test_a_saved_upload_is_ingested_like_the_original(ws, topic_csv):
    path = save_upload(ws, "../topics.csv", topic_csv.read_bytes())
    report = corpus.ingest(path, None, ws)
    assert report.kept == 60 and report.source == "topics.csv"
