"""Streaming readers behind :mod:`textcluster.ingest.corpus`: bytes -> text -> records.

Every reader yields ``(row, record, reason)`` triples with bounded memory:
``row`` is the 1-based row number (CSV/TSV: data record after the header;
JSONL/TXT: line; JSON: array element; Parquet: table row), ``record`` a dict
(``None`` when the row is malformed) and ``reason`` the rejection reason of a
malformed row (``None`` otherwise). Malformed rows never stop a file; a file
that is not what its name says (a ``.gz`` that is not gzip, a ``.parquet``
without ``PAR1``, a ``.json`` that is not an array) raises
:class:`~textcluster.errors.CorpusError`.

Decompressed bytes are counted against ``max_bytes`` so a decompression bomb
stops with a clear error instead of filling memory or disk.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from textcluster.errors import CorpusError

#: The one table of readable files: extension -> format. Any of them may also end in
#: :data:`GZIP_EXTENSION` (``data.csv.gz``). Format detection (:func:`detect_format`), the
#: CLI's ``--format`` choices and the app's uploader (:func:`upload_types`) all read it.
EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
    ".text": "txt",
}
#: The formats, in the order of :data:`EXTENSIONS`: the values ``format=`` (``--format``) accepts.
FORMATS: tuple[str, ...] = tuple(dict.fromkeys(EXTENSIONS.values()))
#: A readable extension followed by this is read through gzip.
GZIP_EXTENSION = ".gz"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
CHUNK_BYTES = 1 << 20
#: A single line, CSV field or JSON array element longer than this (in characters) is refused,
#: so one endless line cannot fill memory before max_bytes is reached.
MAX_RECORD_CHARS = 256 << 20
#: The inflation-ratio check (``max_ratio``) starts past this many decompressed bytes, so a small
#: file that compresses very well is never refused.
RATIO_FLOOR_BYTES = 64 << 20

Row = tuple[int, dict[str, Any] | None, str | None]


class Undecodable(Exception):
    """Raised inside a text reader at the first byte the codec cannot decode."""

    def __init__(self, offset: int, codec: str, detail: str) -> None:
        super().__init__(offset, codec, detail)
        self.offset, self.codec, self.detail = offset, codec, detail


def detect_format(path: Path, fmt: str | None) -> tuple[str, bool]:
    """``(format, gzipped_by_name)`` from ``fmt`` or the file name (``x.csv.gz`` -> ``("csv", True)``)."""
    name = path.name.lower()
    gz = name.endswith(GZIP_EXTENSION)
    stem = name[: -len(GZIP_EXTENSION)] if gz else name
    if fmt is not None:
        f = fmt.lower().lstrip(".")
        if f not in FORMATS:
            raise CorpusError(f"format={fmt!r} is not known; known formats: {', '.join(FORMATS)}")
        return f, gz
    ext = os.path.splitext(stem)[1]
    if ext not in EXTENSIONS:
        raise CorpusError(
            f"cannot tell the format of {path.name!r} from its extension {ext or '(none)'!r}; "
            f"name it {'/'.join(EXTENSIONS)} (optionally {GZIP_EXTENSION}) or pass format= "
            f"(--format) one of {', '.join(FORMATS)}"
        )
    return EXTENSIONS[ext], gz


def upload_types() -> list[str]:
    """The extensions an uploader should accept (with their dot): every key of :data:`EXTENSIONS`,
    then ``.gz`` for their gzipped forms (``x.csv.gz``; :func:`detect_format` checks the inner one).

    A file uploader matches names by their ending, so ``.gz`` admits every ``<readable>.gz``.
    The dots matter: Streamlit reads a bare ``text`` as the MIME family ``text/*``.
    """
    return [*EXTENSIONS, GZIP_EXTENSION]


def extensions_by_format() -> dict[str, list[str]]:
    """Format -> its extensions (``{"tsv": [".tsv", ".tab"], ...}``), in :data:`FORMATS` order: for help texts."""
    out: dict[str, list[str]] = {f: [] for f in FORMATS}
    for ext, fmt in EXTENSIONS.items():
        out[fmt].append(ext)
    return out


class LimitedReader:
    """A binary stream that counts the (decompressed) bytes read and stops past ``limit``."""

    def __init__(
        self, f: BinaryIO, limit: int, name: str, raw: BinaryIO, *,
        compressed_size: int | None = None, max_ratio: float | None = None,
    ) -> None:
        self.f, self.limit, self.name, self.raw = f, limit, name, raw
        self.count = 0
        # A gzip stream inflating past max_ratio x its size on disk is refused as soon as it does.
        self.ratio_limit = (
            max(RATIO_FLOOR_BYTES, int(compressed_size * max_ratio))
            if compressed_size is not None and max_ratio is not None else None
        )
        self.compressed_size, self.max_ratio = compressed_size, max_ratio

    def read(self, n: int = CHUNK_BYTES) -> bytes:
        try:
            b = self.f.read(n)
        except (OSError, EOFError, zlib.error) as e:
            raise CorpusError(
                f"{self.name}: compressed data is corrupt or truncated after "
                f"{self.count} decompressed bytes ({e})"
            ) from e
        self.count += len(b)
        if self.count > self.limit:
            raise CorpusError(
                f"{self.name}: more than max_bytes={self.limit} bytes after decompression; "
                f"refusing it (a decompression bomb?). Raise max_bytes (--max-bytes) if the file is genuine"
            )
        if self.ratio_limit is not None and self.count > self.ratio_limit:
            raise CorpusError(
                f"{self.name}: {self.compressed_size:,} compressed bytes inflated to more than "
                f"{self.count:,} bytes, over max_ratio={self.max_ratio:g} times the file's size; refusing it "
                f"(a decompression bomb?). Raise max_ratio (--max-ratio) if the file is genuine"
            )
        return b

    def position(self) -> int:
        """Bytes of the file on disk consumed so far (for progress)."""
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0


def open_bytes(
    path: Path, gz_by_name: bool, limit: int, notes: list[str], max_ratio: float | None = None
) -> LimitedReader:
    """Open ``path`` as a byte stream, gunzipping when it is gzip; checks the name against the content.

    ``limit``: decompressed bytes; ``max_ratio``: a gzip stream inflating past that many times
    the file's size (and past :data:`RATIO_FLOOR_BYTES`) is refused as it reads."""
    try:
        raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the caller via .raw
    except OSError as e:
        raise CorpusError(f"cannot read {str(path)!r}: {e.strerror or e}") from e
    head = raw.read(2)
    raw.seek(0)
    is_gz = head == GZIP_MAGIC
    if gz_by_name and not is_gz:
        raw.close()
        raise CorpusError(f"{path.name!r} ends in .gz but is not gzip data (starts with {head!r})")
    if is_gz and not gz_by_name:
        notes.append(f"{path.name} is gzip-compressed although its name does not end in .gz; decompressed it")
    if not is_gz:
        return LimitedReader(raw, limit, path.name, raw)
    size = os.fstat(raw.fileno()).st_size
    return LimitedReader(
        gzip.GzipFile(fileobj=raw, mode="rb"), limit, path.name, raw, compressed_size=size, max_ratio=max_ratio
    )


# -- text --------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)


@dataclass
class TextInfo:
    """What the text decoder found: the encoding it used (report name)."""

    encoding: str = "utf-8"


def text_chunks(src: LimitedReader, force_latin1: bool, info: TextInfo) -> Iterator[str]:
    """Decoded text of ``src`` in chunks; :class:`Undecodable` at the first bad byte.

    Detects a UTF-8 or UTF-16 (LE/BE) byte-order mark; otherwise UTF-8, or
    latin-1 when ``force_latin1``.
    """
    data = src.read(CHUNK_BYTES)
    while 0 < len(data) < 4 and (more := src.read(CHUNK_BYTES)):
        data += more  # a byte-order mark needs up to 3 bytes
    codec, skip = "utf-8", 0
    info.encoding = "utf-8"
    for bom, name, cdc in _BOMS:
        if data.startswith(bom):
            codec, skip, info.encoding = cdc, len(bom), name
            break
    if not skip and _looks_like_bomless_utf16(data):
        raise CorpusError(
            f"{src.name} looks like UTF-16 without a byte-order mark (every other byte is 0); "
            f"save it as UTF-8, or as UTF-16 with a BOM"
        )
    if force_latin1:
        codec, info.encoding = "latin-1", "latin-1"
    decoder = codecs.getincrementaldecoder(codec)("strict")
    data = data[skip:]
    offset = skip
    while True:
        nxt = src.read(CHUNK_BYTES)
        final = not nxt
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            raise Undecodable(offset - pending + e.start, codec, e.reason) from None
        offset += len(data)
        if text:
            yield text
        if final:
            return
        data = nxt


def _looks_like_bomless_utf16(data: bytes) -> bool:
    head = data[:2000]
    if len(head) < 8:
        return False
    even, odd = head[0::2], head[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    return max(zeros_even, zeros_odd) > 0.6 and min(zeros_even, zeros_odd) < 0.05


def lines(chunks: Iterator[str], keepends: bool = False) -> Iterator[str]:
    """Split text chunks on ``"\\n"`` only (not on U+2028 etc.); ``"\\r"`` before it is dropped
    unless ``keepends``. A final line without newline is yielded; the empty tail after a
    final newline is not."""
    pending: list[str] = []
    size = n = 0
    for c in chunks:
        if "\n" not in c:
            pending.append(c)
            size += len(c)
            if size > MAX_RECORD_CHARS:
                raise CorpusError(
                    f"line {n + 1} is longer than {MAX_RECORD_CHARS} characters; refusing the file "
                    f"(is it really {'CSV/TSV/JSONL/TXT' if keepends else 'line-based text'}?)"
                )
            continue
        parts = c.split("\n")
        n += len(parts) - 1
        size = len(parts[-1])
        pending.append(parts[0])
        parts[0] = "".join(pending)
        pending = [parts.pop()]
        for p in parts:
            if keepends:
                yield p + "\n"
            else:
                yield p[:-1] if p.endswith("\r") else p
    tail = "".join(pending)
    if tail:
        yield tail if keepends or not tail.endswith("\r") else tail[:-1]


# -- record readers ------------------------------------------------------------


@dataclass
class Source:
    """An open input: its records plus what was learned while opening it."""

    format: str
    records: Iterator[Row]
    text_info: TextInfo | None = None  # None for Parquet
    columns: list[str] | None = None  # known up front (CSV header, TXT, Parquet schema)
    notes: list[str] = field(default_factory=list)
    position: Callable[[], int] = lambda: 0
    size: int = 0
    close: Callable[[], None] = lambda: None

    @property
    def encoding(self) -> str:
        """The encoding used (known once the first chunk is decoded); ``parquet`` for Parquet."""
        return self.text_info.encoding if self.text_info is not None else "parquet"


def txt_records(text: Iterator[str]) -> Iterator[Row]:
    """One document per line: ``{"text": line}``."""
    for i, line in enumerate(lines(text), 1):
        yield i, {"text": line}, None


def jsonl_records(text: Iterator[str]) -> Iterator[Row]:
    """One JSON object per line; blank lines, invalid JSON and non-objects are rejected rows."""
    for i, line in enumerate(lines(text), 1):
        s = line.strip()
        if not s:
            yield i, None, f"row {i}: empty line"
            continue
        try:
            obj = json.loads(s)
        except (json.JSONDecodeError, RecursionError) as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
            col = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            yield i, None, f"row {i}: invalid JSON ({msg}{col})"
            continue
        if not isinstance(obj, dict):
            yield i, None, f"row {i}: not a JSON object (got {_json_type(obj)})"
            continue
        yield i, obj, None


def json_array_records(text: Iterator[str], name: str) -> Iterator[Row]:
    """Elements of a top-level JSON array, decoded one at a time (bounded memory).

    A file that is not an array, or whose syntax breaks, raises CorpusError
    (the element where it broke is named); elements that are not objects are
    rejected rows.
    """
    dec = json.JSONDecoder()
    it = iter(text)
    buf, pos, eof = "", 0, False

    def more(min_chars: int = 1) -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        parts = [buf[pos:]]
        got = 0
        while got < min_chars:
            c = next(it, None)
            if c is None:
                eof = True
                break
            parts.append(c)
            got += len(c)
        buf, pos = "".join(parts), 0
        return got > 0

    def skip_ws() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    first = skip_ws()
    if first != "[":
        hint = "; for one object per line name it .jsonl or pass format='jsonl'" if first == "{" else ""
        what = "empty" if not first else f"starts with {first!r}"
        raise CorpusError(f"{name} is not a JSON array of objects ({what}){hint}")
    pos += 1
    row = 0
    if skip_ws() == "]":
        return
    while True:
        row += 1
        skip_ws()
        while True:
            try:
                obj, end = dec.raw_decode(buf, pos)
            except (json.JSONDecodeError, RecursionError) as e:
                if len(buf) - pos > MAX_RECORD_CHARS:
                    raise CorpusError(
                        f"{name}: element {row} is not valid JSON or larger than "
                        f"{MAX_RECORD_CHARS} characters"
                    ) from e
                if more(max(CHUNK_BYTES, len(buf) - pos)):
                    continue
                msg = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                raise CorpusError(
                    f"{name} is not valid JSON: element {row} ({msg}); the file must be one "
                    f"array of objects (use JSONL to have bad rows skipped one by one)"
                ) from e
            if end == len(buf) and not eof and more():
                continue  # a number may go on in the next chunk
            break
        pos = end
        if isinstance(obj, dict):
            yield row, obj, None
        else:
            yield row, None, f"row {row}: not a JSON object (got {_json_type(obj)})"
        c = skip_ws()
        if c == ",":
            pos += 1
            continue
        if c == "]":
            pos += 1
            rest = skip_ws()
            if rest:
                raise CorpusError(f"{name}: unexpected text after the closing ] of the array")
            return
        got = "the end of the file" if not c else repr(c)
        raise CorpusError(f"{name} is not valid JSON: expected ',' or ']' after element {row}, got {got}")


def csv_records(text: Iterator[str], delimiter: str, name: str, notes: list[str]) -> tuple[list[str], Iterator[Row]]:
    """Header and rows of a delimited file; rows with the wrong number of fields are rejected.

    TSV is read without quoting (a quote is an ordinary character), CSV with
    ``"`` quoting as in RFC 4180.
    """
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    # Long texts are kept whole: lift the csv module's 128 KiB field limit to MAX_RECORD_CHARS
    # (process-wide, raised only, never lowered); a longer field is a rejected row.
    if csv.field_size_limit() < MAX_RECORD_CHARS:
        csv.field_size_limit(MAX_RECORD_CHARS)
    reader = csv.reader(lines(text, keepends=True), delimiter=delimiter, quoting=quoting, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise CorpusError(f"{name} is empty") from None
    except csv.Error as e:
        raise CorpusError(f"{name}: the header line is unreadable ({e})") from e
    header = _clean_header(header, notes)

    def rows() -> Iterator[Row]:
        n, i = len(header), 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                i += 1
                yield i, None, f"row {i}: unreadable CSV ({e})"
                continue
            i += 1
            if not fields:
                yield i, None, f"row {i}: empty line"
            elif len(fields) != n:
                yield i, None, f"row {i}: expected {n} fields, got {len(fields)}"
            else:
                yield i, dict(zip(header, fields, strict=True)), None

    return header, rows()


def _clean_header(header: list[str], notes: list[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for j, h in enumerate(header, 1):
        name = h.strip()
        if not name:
            name = f"column_{j}"
            notes.append(f"header column {j} has no name; called it {name!r}")
        if name in seen:
            k = 2
            while f"{name}_{k}" in seen:
                k += 1
            notes.append(f"header name {name!r} repeats; column {j} called {name}_{k!s}")
            name = f"{name}_{k}"
        seen.add(name)
        out.append(name)
    return out


def parquet_source(
    path: Path, gz: bool, max_rows: int, max_bytes: int, tmpdir: Path, notes: list[str], batch_rows: int,
    max_ratio: float | None = None,
) -> Source:
    """Open a Parquet file (gunzipped into ``tmpdir`` first when gzipped) and stream its rows."""

    name = path.name
    src = open_bytes(path, gz, max_bytes, notes, max_ratio)
    if isinstance(src.f, gzip.GzipFile):
        local = tmpdir / "input.parquet"
        with open(local, "wb") as out:
            while block := src.read(CHUNK_BYTES):
                out.write(block)
        src.raw.close()
        path = local
    else:
        src.raw.close()
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        if size >= 8:
            f.seek(-4, os.SEEK_END)
        tail = f.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        raise CorpusError(f"{name!r} is not a Parquet file (no PAR1 magic bytes; starts with {head!r})")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt footers
        raise CorpusError(f"{name!r} is not a readable Parquet file: {e}") from e
    md = pf.metadata
    if md.num_rows > max_rows:
        raise CorpusError(
            f"{name} has {md.num_rows} rows, more than max_rows={max_rows}; raise max_rows (--max-rows)"
        )
    unpacked = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    if unpacked > max_bytes:
        raise CorpusError(
            f"{name} holds {unpacked} bytes uncompressed, more than max_bytes={max_bytes}; "
            f"raise max_bytes (--max-bytes)"
        )
    done = [0]

    def records() -> Iterator[Row]:
        row = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_rows):
                for rec in batch.to_pylist():
                    row += 1
                    yield row, rec, None
                done[0] = row
        except CorpusError:
            raise
        except Exception as e:  # corrupt pages surface only while reading
            raise CorpusError(f"{name}: Parquet data unreadable after row {row}: {e}") from e

    return Source(
        format="parquet",
        records=records(),
        columns=list(pf.schema_arrow.names),
        notes=notes,
        position=lambda: done[0],
        size=md.num_rows,
        close=lambda: pf.close() if hasattr(pf, "close") else None,
    )


def open_source(
    path: Path,
    fmt: str | None,
    *,
    force_latin1: bool,
    max_rows: int,
    max_bytes: int,
    tmpdir: Path,
    batch_rows: int = 50_000,
    max_ratio: float | None = None,
) -> Source:
    """Open ``path`` and return a :class:`Source` whose ``records`` stream the rows.

    Text formats raise :class:`Undecodable` from inside ``records`` at the first
    byte that is not valid in the detected encoding.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise CorpusError(f"{str(path)!r} is a folder, not a file")
    kind, gz = detect_format(path, fmt)
    if not gz and path.stat().st_size > max_bytes:
        raise CorpusError(
            f"{path.name} has {path.stat().st_size} bytes, more than max_bytes={max_bytes}; "
            f"raise max_bytes (--max-bytes)"
        )
    notes: list[str] = []
    if kind == "parquet":
        return parquet_source(path, gz, max_rows, max_bytes, tmpdir, notes, batch_rows, max_ratio)
    src = open_bytes(path, gz, max_bytes, notes, max_ratio)
    info = TextInfo()
    text = text_chunks(src, force_latin1, info)
    columns: list[str] | None = None
    if kind == "txt":
        recs = txt_records(text)
        columns = ["text"]
    elif kind == "jsonl":
        recs = jsonl_records(text)
    elif kind == "json":
        recs = json_array_records(text, path.name)
    else:
        try:
            columns, recs = csv_records(text, "\t" if kind == "tsv" else ",", path.name, notes)
        except BaseException:
            src.raw.close()
            raise
    source = Source(
        format=kind,
        records=recs,
        text_info=info,
        columns=columns,
        notes=notes,
        position=src.position,
        size=path.stat().st_size,
        close=src.raw.close,
    )
    return source


def _json_type(obj: Any) -> str:
    if obj is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(obj), type(obj).__name__
    )
