"""Property: on any file, ingest either raises CorpusError or accounts for every row."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from textcluster.config import CorpusSpec
from textcluster.errors import CorpusError
from textcluster.ingest.corpus import ingest, list_fields, preview
from textcluster.store import Workspace

_words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)

_line = st.one_of(
    _words,  # plain text (also a CSV/TSV row of one field)
    st.builds(lambda a, b: f"{a},{b}", _words, _words),  # CSV-ish
    st.builds(lambda a: f'"{a}', _words),  # broken quote
    st.builds(lambda a, n: ",".join([a] * n), _words, st.integers(0, 6)),  # ragged row
    st.builds(lambda a: json.dumps({"text": a, "a": {"b": [a]}}), _words),  # valid JSON object
    st.builds(lambda a: json.dumps({"text": a})[:-1], _words),  # invalid JSON line
    st.sampled_from(["[1, 2]", "null", "{}", '{"text": 5}', '{"text": null}', '{"text": "\\ud800"}', "   ", ""]),
    st.builds(lambda n: "x" * n, st.sampled_from([1, 1000, 200_000])),  # huge line
    st.just("\x00\x01\x02"),
)

_chunk = st.one_of(
    st.builds(lambda ls: ("\n".join(ls)).encode("utf-8"), st.lists(_line, max_size=12)),
    st.builds(lambda t: t.encode("latin-1", "replace"), _words),  # mixed encodings
    st.builds(lambda t: t.encode("utf-16"), _words),
    st.binary(max_size=200),  # binary junk
    st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b"\r\n", b"\n\n", b"[", b"]", b","]),
)


_FIELDS = {
    "csv": [(), ("text",), ("text", "label")],
    "tsv": [(), ("text",), ("text", "label")],
    "txt": [(), ("text",)],
    "jsonl": [(), ("text",), ("a.b[0]",), ("text", "a.b[-1]")],
    "json": [(), ("text",), ("a.b[0]",)],
    "parquet": [(), ("text",), ("a.b[0]",), ("text", "label")],
}
_HEADERS = {"csv": b"text,label\n", "tsv": b"text\tlabel\n", "jsonl": b"", "json": b"", "txt": b"", "parquet": b""}


@st.composite
def _files(draw):
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "json", "txt", "parquet"]))
    mostly_valid = draw(st.integers(0, 9)) < 7
    if mostly_valid:
        lines = draw(st.lists(_line, min_size=0, max_size=25))
        if fmt == "json":
            body = json.dumps([json.loads(x) if x.startswith("{") and _is_json(x) else x for x in lines]).encode()
        elif fmt == "parquet":
            import io

            import pyarrow as pa

            buf = io.BytesIO()
            texts = [x if x else None for x in lines]
            pq.write_table(pa.table({"text": pa.array(texts, pa.string()),
                                     "label": [str(len(x) % 3) for x in lines],
                                     "a": [{"b": [x]} for x in lines]}), buf)
            body = buf.getvalue()
        else:
            body = _HEADERS[fmt] + "\n".join(lines).encode("utf-8")
        if draw(st.integers(0, 9)) == 0:
            body += draw(_chunk)  # a little junk at the end
    else:
        header = draw(st.sampled_from([b"", b"text\n", b"text,label\n", b"text\tlabel\n", b"["]))
        body = header + b"".join(draw(st.lists(_chunk, max_size=6)))
    gz = draw(st.sampled_from(["", "", "", "", "gz", "gz", "bad-gz"]))
    if gz == "gz":
        body = gzip.compress(body)
    elif gz == "bad-gz":
        body = gzip.compress(body)[: draw(st.integers(0, 30))]
    name = f"f.{fmt}" + (".gz" if gz else "")
    spec = CorpusSpec(
        text_fields=draw(st.sampled_from(_FIELDS[fmt])),
        drop_duplicates=draw(st.booleans()),
        encoding=draw(st.sampled_from(["auto", "latin-1"])),
        max_bytes=draw(st.sampled_from([1 << 30, 1 << 30, 5000])),
    )
    return name, body, spec


def _is_json(x: str) -> bool:
    try:
        json.loads(x)
    except ValueError:
        return False
    return True


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_files())
def test_only_corpus_errors_escape_and_every_row_is_accounted_for(case):
    name, body, spec = case
    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / name
        path.write_bytes(body)
        ws = Workspace(Path(td) / "ws")
        try:
            rep = ingest(path, spec, ws)
        except CorpusError as e:
            event(f"CorpusError: {str(e).split(':')[0][:40]}")
        else:
            event("ingested")
            assert rep.kept + rep.rejected == rep.rows_read
            assert rep.kept >= 1
            doc_rows = pq.read_table(ws.file(rep.corpus_id, "docs.parquet"), columns=["row"]).column("row").to_pylist()
            rej_rows = pq.read_table(ws.file(rep.corpus_id, "rejections.parquet")).column("row").to_pylist()
            assert len(doc_rows) == rep.kept and len(rej_rows) == rep.rejected
            assert sorted(doc_rows + rej_rows) == list(range(1, rep.rows_read + 1))
            assert len(rep.rejections) == min(rep.rejected, 1000)
            again = ingest(path, spec, ws)
            assert again.cached and again.corpus_id == rep.corpus_id
        for call in (lambda: list_fields(path, spec), lambda: preview(path, spec)):
            with contextlib.suppress(CorpusError):
                call()
