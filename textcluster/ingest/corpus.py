"""Ingest: read, validate and normalise an input file into a stored corpus.

:func:`ingest` streams CSV, TSV, JSONL, JSON (array of objects), Parquet or
TXT (one document per line), each optionally gzipped, into the workspace
artifact ``cor-<hex>/`` (``docs.parquet`` + ``rejections.parquet``, see
docs/ARCHITECTURE.md) and returns an :class:`IngestReport`. Every input row is
either kept or rejected with a reason, so ``kept + rejected == rows_read``.

>>> from textcluster.config import CorpusSpec
>>> from textcluster.store import Workspace
>>> rep = ingest("reviews.jsonl", CorpusSpec(text_fields=("body",)), Workspace("ws"))  # doctest: +SKIP
>>> load_docs(Workspace("ws"), rep.corpus_id, columns=["doc_id", "text"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from textcluster.config import CorpusSpec
from textcluster.errors import ConfigError, CorpusError, StoreError
from textcluster.ingest import fieldpath, readers
from textcluster.progress import Meter, ProgressFn, check_cancel
from textcluster.store import CorpusManifest, Workspace, file_sha256, make_id

if TYPE_CHECKING:
    import threading

    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Column names of docs.parquet that input columns may not take (they get a ``meta_`` prefix).
RESERVED_COLUMNS = ("doc_id", "row", "text", "source_id", "label", "is_duplicate")
#: How many rejections the report lists (all of them are in rejections.parquet).
MAX_REPORTED_REJECTIONS = 1000
#: Rows looked at to check fields and to pick a text column.
SAMPLE_ROWS = 200
#: Rows per Parquet row group (and per processing chunk).
CHUNK_ROWS = 50_000
#: A chunk is also written once its texts hold this many characters (bounded memory for long texts).
CHUNK_CHARS = 32 << 20
#: Input columns kept as their own metadata column; further keys go into one JSON column.
MAX_META_COLUMNS = 1000
#: Column names that hint at the document text when none is given.
PREFERRED_TEXT_NAMES = frozenset(
    {"text", "content", "body", "document", "doc", "sentence", "message", "question",
     "review", "comment", "description", "abstract", "utterance", "prompt", "query", "post"}
)
_HASH_DTYPE = np.dtype([("a", "<u8"), ("b", "<u8")])


@dataclass(frozen=True)
class IngestReport:
    """What :func:`ingest` did.

    corpus_id: the artifact id (``cor-<16 hex>``).
    rows_read / kept / rejected: input rows, kept documents, rejected rows
        (``kept + rejected == rows_read``).
    rejections: the first 1,000 rejections as ``{"row": int, "reason": str}``
        (all of them: :func:`load_rejections`).
    duplicates: rows whose text exactly repeats an earlier kept text (flagged
        ``is_duplicate``, or rejected when ``drop_duplicates``).
    text_fields: the fields the text came from (given or picked).
    format / encoding: as read (``encoding`` is ``parquet`` for Parquet).
    notes: decisions the user should know about (picked field, latin-1 fallback, renames).
    cached: True when the corpus was already in the workspace and nothing was re-read.
    """

    corpus_id: str
    rows_read: int
    kept: int
    rejected: int
    rejections: list[dict[str, Any]]
    duplicates: int
    text_fields: list[str]
    format: str
    encoding: str
    notes: list[str] = field(default_factory=list)
    cached: bool = False
    source: str = ""
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


# -- fields ---------------------------------------------------------------------


class _Field:
    """A text/id/label field: looked up as a top-level key first, then as a path."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        try:
            self.steps: tuple[fieldpath.Step, ...] | None = fieldpath.parse(raw)
        except ConfigError:
            self.steps = None  # only usable as an exact column name
        self.top_key = raw if self.steps is None or len(self.steps) != 1 else str(self.steps[0])

    def get(self, rec: dict[str, Any]) -> Any:
        if self.raw in rec:
            return rec[self.raw]
        if self.steps is None:
            return fieldpath.MISSING
        return fieldpath.resolve_steps(rec, self.steps)


def _available_fields(sample: Iterable[dict[str, Any]], columns: list[str] | None, limit: int = 1000) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(columns or [])
    for rec in sample:
        for path, _ in fieldpath.leaf_paths(rec):
            if len(seen) >= limit:
                return list(seen)
            seen.setdefault(path, None)
    return list(seen)


def _check_fields(
    fields: list[tuple[str, _Field]], valid: list[dict[str, Any]], columns: list[str] | None,
    flat: bool, name: str,
) -> None:
    """CorpusError when a field is in no sampled row (lists the fields that exist)."""
    for role, f in fields:
        if flat:
            found = f.raw in (columns or [])
        elif valid:
            found = any(f.get(r) is not fieldpath.MISSING for r in valid)
        else:
            found = True  # nothing readable to check against; rows will say why
        if not found:
            if f.steps is None and f.raw not in (columns or []):
                fieldpath.parse(f.raw)  # raises the ConfigError that says what is wrong
            avail = _available_fields(valid, columns)
            shown = ", ".join(repr(a) for a in avail[:60]) + (" ..." if len(avail) > 60 else "")
            where = "" if flat else f"the first {SAMPLE_ROWS} rows of "
            raise CorpusError(
                f"{role} field {f.raw!r} not found in {where}{name}; fields: {shown or '(none)'}"
            )


def _last_key(path: str) -> str:
    try:
        keys = [s for s in fieldpath.parse(path) if isinstance(s, str)]
    except ConfigError:
        return path
    return keys[-1] if keys else path


def _pick_text_field(valid: list[dict[str, Any]], exclude: set[str], name: str) -> tuple[str, str]:
    """The likeliest text field of the sample and a note saying why."""
    stats: dict[str, list[float]] = {}
    for rec in valid:
        for path, v in fieldpath.leaf_paths(rec):
            if path in exclude or not isinstance(v, str) or not v.strip():
                continue
            st = stats.setdefault(path, [0, 0, 0])
            st[0] += 1
            st[1] += len(v)
            st[2] += " " in v.strip()
    scored = []
    for path, (n, total, spaced) in stats.items():
        if n < 0.5 * len(valid):
            continue
        avg = total / n
        last = _last_key(path).lower()
        bonus = 3.0 if last in PREFERRED_TEXT_NAMES else 1.0
        scored.append((avg * (0.5 + 0.5 * spaced / n) * bonus, path, avg))
    if not scored:
        avail = _available_fields(valid, None)
        raise CorpusError(
            f"no text field given and no column of {name} holds text in most of the first "
            f"{len(valid)} readable rows; fields: {', '.join(map(repr, avail[:60])) or '(none)'}; "
            f"pass text_fields (--text-field)"
        )
    scored.sort(key=lambda s: -s[0])
    _, best, avg = scored[0]
    others = ", ".join(repr(p) for _, p, _ in scored[1:4])
    note = (
        f"no text field given; picked {best!r} (average {avg:.0f} characters in the first "
        f"{len(valid)} rows" + (f"; other candidates: {others}" if others else "") + ")"
    )
    return best, note


# -- values ---------------------------------------------------------------------


def _clean_str(s: str) -> str:
    """``s`` with lone surrogates (possible from JSON escapes) replaced, so Arrow can store it."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")


_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def _as_json(v: Any) -> str:
    return _JSON.encode(v)


def _as_label(v: Any) -> str | None:
    """An id or label value as a string (None when missing or null)."""
    if v is fieldpath.MISSING or v is None:
        return None
    if isinstance(v, str):
        s = v.strip()
    elif isinstance(v, bytes):
        s = v.decode("utf-8", "replace").strip()
    elif isinstance(v, bool | dict | list):
        s = _as_json(v)
    else:
        s = str(v)
    return s


def _meta_value(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        return _as_json(v)
    return v


def _shown(v: Any) -> Any:
    v = _meta_value(v)
    return _clean_str(v) if isinstance(v, str) else v


def _stringify(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _describe(v: Any) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(v), type(v).__name__
    )


def _text_of(rec: dict[str, Any], fields: list[_Field], sep: str) -> tuple[str | None, str]:
    """The normalised text of a record, or ``(None, reason)``."""
    parts = []
    single = len(fields) == 1
    for f in fields:
        v = f.get(rec)
        if v is fieldpath.MISSING or v is None:
            if single:
                return None, f"field {f.raw!r} is {'missing' if v is fieldpath.MISSING else 'null'}"
            continue
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError:
                return None, f"field {f.raw!r} holds bytes that are not UTF-8"
        if not isinstance(v, str):
            return None, f"field {f.raw!r} is not a string (got {_describe(v)})"
        s = unicodedata.normalize("NFC", v).strip()
        if s:
            parts.append(s)
    if not parts:
        if single:
            return None, f"field {fields[0].raw!r} is empty"
        return None, "fields " + ", ".join(repr(f.raw) for f in fields) + " are all empty"
    return sep.join(parts), ""


def _text_hash(text: str) -> bytes:
    """16-byte digest of the text; UnicodeEncodeError for lone surrogates (Arrow cannot store them)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _py_to_arrow(values: list[Any], typ: Any = None) -> pa.Array:
    """An Arrow array of ``values``; mixed types or invalid strings fall back to cleaned strings."""

    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError):
        return pa.array([None if v is None else _clean_str(_stringify(v)) for v in values], pa.string())


# -- pass 1: read rows into parts -------------------------------------------------


class _Collector:
    """Buffers kept rows and rejections and writes them to Parquet parts in ``tmp``."""

    def __init__(self, tmp: Path, has_id: bool, has_label: bool, exclude: set[str], notes: list[str]):
        self.tmp, self.has_id, self.has_label = tmp, has_id, has_label
        self.exclude, self.notes = exclude, notes
        self.colmap: dict[str, str] = {}
        self.taken: set[str] = set(RESERVED_COLUMNS)
        self.meta_order: list[str] = []
        self.extra_col: str | None = None
        self.parts: list[tuple[Path, Any]] = []  # (file, schema)
        self.hashes: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.rej_parts: list[Path] = []
        self._reset()
        self._rej: list[tuple[int, str]] = []
        self.rejected = 0

    def _reset(self) -> None:
        self._row: list[int] = []
        self._text: list[str] = []
        self._id: list[str | None] = []
        self._label: list[str | None] = []
        self._meta: list[dict[str, Any]] = []
        self._hash: list[bytes] = []
        self._chars = 0
        self._present: set[str] = set()

    def column(self, key: str) -> str | None:
        """Output column name of an input key (``meta_`` prefix on a clash); None past the cap."""
        name = self.colmap.get(key)
        if name is None:
            if len(self.meta_order) >= MAX_META_COLUMNS:
                if self.extra_col is None:
                    self.extra_col = self._fresh_name("meta_extra", from_input=False)
                    self.notes.append(
                        f"more than {MAX_META_COLUMNS} metadata columns; the other keys are kept as "
                        f"one JSON object per row in {self.extra_col!r}"
                    )
                return None
            name = self._fresh_name(key)
            self.colmap[key] = name
        return name

    def _fresh_name(self, key: str, from_input: bool = True) -> str:
        """An unused column name for ``key`` (``meta_`` prefixed while taken), registered in order."""
        base = _clean_str(str(key))
        name = base
        if name in self.taken or not name:
            name = f"meta_{base}"
            while name in self.taken:
                name = f"meta_{name}"
            if from_input:
                self.notes.append(f"input column {base!r} is stored as {name!r} (the name is reserved)")
        self.taken.add(name)
        self.meta_order.append(name)
        return name

    def keep(
        self, row: int, text: str, digest: bytes, rec: dict[str, Any], id_f: _Field | None, label_f: _Field | None
    ) -> None:
        self._row.append(row)
        self._text.append(text)
        self._hash.append(digest)
        self._chars += len(text)
        if id_f is not None:
            self._id.append(_as_label(id_f.get(rec)))
        if label_f is not None:
            self._label.append(_as_label(label_f.get(rec)))
        cm, ex = self.colmap, self.exclude
        meta: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        for k, v in rec.items():
            if k in ex:
                continue
            name = cm.get(k) or self.column(k)
            if name is None:
                extra = extra or {}
                extra[k] = v
            else:
                meta[name] = _meta_value(v)
        if extra is not None and self.extra_col is not None:
            meta[self.extra_col] = _as_json(extra)
        self._meta.append(meta)
        self._present.update(meta)
        if len(self._row) >= CHUNK_ROWS or self._chars >= CHUNK_CHARS:
            self.flush()

    def reject(self, row: int, reason: str) -> None:
        self._rej.append((row, reason))
        self.rejected += 1
        if len(self._rej) >= 100_000:
            self._flush_rejections()

    def flush(self) -> None:

        if self._row:
            cols: dict[str, Any] = {
                "row": pa.array(self._row, pa.int64()),
                "text": pa.array(self._text, pa.string()),
            }
            if self.has_id:
                cols["source_id"] = _py_to_arrow(self._id, pa.string())
            if self.has_label:
                cols["label"] = _py_to_arrow(self._label, pa.string())
            present = [c for c in self.meta_order if c in self._present]
            for c in present:
                cols[c] = _py_to_arrow([m.get(c) for m in self._meta])
            table = pa.table(cols)
            p = self.tmp / f"part-{len(self.parts):05d}.parquet"
            pq.write_table(table, p)
            self.parts.append((p, table.schema))
            self.hashes.append(np.frombuffer(b"".join(self._hash), dtype=_HASH_DTYPE).copy())
            self.rows.append(np.array(self._row, dtype=np.int64))
        self._reset()
        self._flush_rejections()

    def _flush_rejections(self) -> None:

        if self._rej:
            rows, reasons = zip(*self._rej, strict=True)
            t = pa.table({"row": pa.array(rows, pa.int64()), "reason": pa.array(reasons, pa.string())})
            p = self.tmp / f"rej-{len(self.rej_parts):05d}.parquet"
            pq.write_table(t, p)
            self.rej_parts.append(p)
            self._rej = []


@dataclass
class _Pass1:
    collector: _Collector
    rows_read: int
    text_fields: list[str]
    format: str
    encoding: str
    notes: list[str]


def _choose_text_fields(
    src: readers.Source, spec: CorpusSpec, sample: list[readers.Row], exclude: set[str], name: str
) -> list[str]:
    """The text fields: the spec's, ``text`` for TXT, or the likeliest one (noted in ``src.notes``)."""
    if spec.text_fields:
        return list(spec.text_fields)
    if src.format == "txt":
        return ["text"]
    if not sample:
        raise CorpusError(f"{name} has no rows (the file is empty)")
    if src.columns is not None and len(src.columns) == 1 and src.format in ("csv", "tsv"):
        picked = src.columns[0]
        note = f"no text field given; used the only column {picked!r}"
    else:
        picked, note = _pick_text_field([r for _, r, _ in sample if r is not None], exclude, name)
    src.notes.append(note)
    return [picked]


def _read_rows(
    path: Path, spec: CorpusSpec, tmp: Path, force_latin1: bool,
    progress: ProgressFn | None, cancel: threading.Event | None,
) -> _Pass1:
    """Stream every row of ``path`` into Parquet parts under ``tmp``; may raise readers.Undecodable."""
    src = readers.open_source(
        path, spec.format, force_latin1=force_latin1, max_rows=spec.max_rows,
        max_bytes=spec.max_bytes, tmpdir=tmp, batch_rows=CHUNK_ROWS, max_ratio=spec.max_ratio,
    )
    try:
        records: Iterator[readers.Row] = src.records
        sample = list(islice(records, SAMPLE_ROWS))
        id_f = _Field(spec.id_field) if spec.id_field else None
        label_f = _Field(spec.label_field) if spec.label_field else None
        side = [(role, f) for role, f in (("id", id_f), ("label", label_f)) if f is not None]
        text_fields = _choose_text_fields(src, spec, sample, {f.raw for _, f in side}, path.name)
        fields = [_Field(f) for f in text_fields]
        valid = [r for _, r, _ in sample if r is not None]
        flat = src.format in ("csv", "tsv", "txt")
        _check_fields([("text", f) for f in fields] + side, valid, src.columns, flat, path.name)
        exclude_keys = {f.top_key for f in fields} | {f.top_key for _, f in side}
        col = _Collector(tmp, id_f is not None, label_f is not None, exclude_keys, src.notes)
        meter = Meter("ingest", src.size, progress)
        rows_read = 0
        for row, rec, reason in chain(sample, records):
            rows_read += 1
            if rows_read > spec.max_rows:
                raise CorpusError(
                    f"{path.name} has more than max_rows={spec.max_rows} rows; "
                    f"raise max_rows (--max-rows) or split the file"
                )
            if rows_read % CHUNK_ROWS == 0:
                check_cancel(cancel, "ingest")
                meter.update(src.position(), f"{rows_read:,} rows read")
            if rec is None:
                col.reject(row, reason or f"row {row}: unreadable")
                continue
            text, why = _text_of(rec, fields, spec.separator)
            if text is None:
                col.reject(row, f"row {row}: {why}")
                continue
            try:
                digest = _text_hash(text)
            except UnicodeEncodeError:
                col.reject(row, f"row {row}: text holds invalid Unicode (a lone surrogate)")
                continue
            col.keep(row, text, digest, rec, id_f, label_f)
        col.flush()
        meter.update(src.size, f"{rows_read:,} rows read")
        return _Pass1(col, rows_read, text_fields, src.format, src.encoding, src.notes)
    finally:
        src.close()


# -- pass 2: doc ids, duplicates, one schema ----------------------------------------


def _unified_schema(col: _Collector) -> pa.Schema:

    types: dict[str, set[Any]] = {}
    for _, schema in col.parts:
        for f in schema:
            types.setdefault(f.name, set())
            if not pa.types.is_null(f.type):
                types[f.name].add(f.type)
    fields = [pa.field("doc_id", pa.int64()), pa.field("row", pa.int64()), pa.field("text", pa.string())]
    if col.has_id:
        fields.append(pa.field("source_id", pa.string()))
    if col.has_label:
        fields.append(pa.field("label", pa.string()))
    fields.append(pa.field("is_duplicate", pa.bool_()))
    for name in col.meta_order:
        ts = types.get(name)
        if ts is None:
            continue
        if len(ts) == 1:
            t = next(iter(ts))
        elif ts and all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in ts):
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _cast(arr: Any, typ: Any) -> Any:

    if arr.type == typ:
        return arr
    try:
        return arr.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array([_stringify(v) for v in arr.to_pylist()], typ)


def _finish(p1: _Pass1, spec: CorpusSpec, out: Path, name: str) -> dict[str, Any]:
    """Write docs.parquet and rejections.parquet into ``out``; return the counts."""

    col = p1.collector
    if p1.rows_read == 0:
        raise CorpusError(f"{name} has no rows (the file is empty or holds only a header)")
    if not col.hashes:
        first = []
        for p in col.rej_parts[:1]:
            first = pq.read_table(p).column("reason").to_pylist()[:3]
        raise CorpusError(
            f"no usable rows in {name}: {p1.rows_read} rows read, all rejected; first reasons: "
            + "; ".join(first)
        )
    hashes = np.concatenate(col.hashes)
    rows = np.concatenate(col.rows)
    n = len(hashes)
    _, first_idx, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    first = first_idx[inverse.reshape(-1)]
    is_dup = first != np.arange(n)
    n_dup = int(is_dup.sum())
    keep = ~is_dup if spec.drop_duplicates else np.ones(n, dtype=bool)

    schema = _unified_schema(col)
    next_doc, offset = 0, 0
    with pq.ParquetWriter(out / "docs.parquet", schema) as writer:
        for part, _ in col.parts:
            t = pq.read_table(part)
            k = keep[offset : offset + t.num_rows]
            d = is_dup[offset : offset + t.num_rows][k]
            offset += t.num_rows
            t = t.filter(pa.array(k))
            arrays = []
            for f in schema:
                if f.name == "doc_id":
                    arrays.append(pa.array(np.arange(next_doc, next_doc + t.num_rows, dtype=np.int64)))
                elif f.name == "is_duplicate":
                    arrays.append(pa.array(d, pa.bool_()))
                elif f.name in t.column_names:
                    arrays.append(_cast(t.column(f.name).combine_chunks(), f.type))
                else:
                    arrays.append(pa.nulls(t.num_rows, f.type))
            next_doc += t.num_rows
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

    rej_tables = [pq.read_table(p) for p in col.rej_parts]
    if spec.drop_duplicates and n_dup:
        dup_rows = rows[is_dup]
        of = rows[first[is_dup]]
        rej_tables.append(
            pa.table({
                "row": pa.array(dup_rows, pa.int64()),
                "reason": pa.array([f"row {r}: duplicate of row {o}" for r, o in zip(dup_rows, of, strict=True)],
                                   pa.string()),
            })
        )
    rej_schema = pa.schema([("row", pa.int64()), ("reason", pa.string())])
    rej = pa.concat_tables(rej_tables) if rej_tables else rej_schema.empty_table()
    rej = rej.take(pc.sort_indices(rej, [("row", "ascending")]))
    pq.write_table(rej, out / "rejections.parquet")
    kept = int(keep.sum())
    return {
        "kept": kept,
        "rejected": rej.num_rows,
        "duplicates": n_dup,
        "rejections": rej.slice(0, MAX_REPORTED_REJECTIONS).to_pylist(),
        "columns": schema.names,
    }


# -- public API -------------------------------------------------------------------


def _check_path(path: Path) -> None:
    if not path.exists():
        raise CorpusError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise CorpusError(f"{str(path)!r} is not a file")


def _undecodable(path: Path, e: readers.Undecodable) -> CorpusError:
    label = {"utf-8": "UTF-8", "utf-16-le": "UTF-16-LE", "utf-16-be": "UTF-16-BE"}.get(e.codec, e.codec)
    where = "of the decompressed data" if path.name.lower().endswith(".gz") else ""
    return CorpusError(
        f"{path.name} is not valid {label}: {e.detail} at byte offset {e.offset}{' ' + where if where else ''}; "
        f"save it as UTF-8, or pass encoding='latin-1' (--encoding latin-1) to read it as latin-1"
    )


def _report_from_manifest(m: CorpusManifest, cached: bool) -> IngestReport:
    return IngestReport(
        corpus_id=m.id, rows_read=m.rows_read, kept=m.kept, rejected=m.rejected,
        rejections=list(m.rejections), duplicates=m.duplicates, text_fields=list(m.text_fields),
        format=m.format, encoding=m.encoding, notes=list(m.notes), cached=cached,
        source=m.source, sha256=m.sha256,
    )


def _hash_file(path: Path) -> str:
    _check_path(path)
    try:
        return file_sha256(path)
    except OSError as e:
        raise CorpusError(f"cannot read {str(path)!r}: {e.strerror or e}") from e


def _id_key(path: Path, spec: CorpusSpec) -> dict[str, Any]:
    """The spec's cache key, plus the format read from the file name when the spec leaves it to
    detection: the same bytes named ``x.csv`` and ``x.txt`` are two different corpora."""
    key = spec.cache_key()
    if spec.format is None:
        key["format"] = readers.detect_format(path, None)[0]
    return key


def corpus_id_for(path: str | Path, spec: CorpusSpec) -> str:
    """The corpus id :func:`ingest` gives ``path`` under ``spec`` (hashes the file's bytes and
    the spec, with the detected format when the spec names none)."""
    path = Path(path)
    return make_id("corpus", _hash_file(path), _id_key(path, spec))


def ingest(
    path: str | Path,
    spec: CorpusSpec | None = None,
    ws: Workspace | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> IngestReport:
    """Read ``path`` into a corpus artifact of ``ws`` and return the :class:`IngestReport`.

    ``spec`` defaults to ``CorpusSpec()`` (pick the text column, detect the format).
    The id is ``make_id("corpus", sha256(file bytes), spec.cache_key())`` (with the format
    detected from the file name when ``spec.format`` is None): ingesting
    the same bytes with the same spec again only hashes the file and returns the
    stored report with ``cached=True``. Raises :class:`CorpusError` for a missing
    or unreadable file, an unknown format, a missing field, bytes that are not
    valid in the detected encoding, inputs over ``max_rows``/``max_bytes``, and
    zero usable rows.
    """
    spec = (spec or CorpusSpec()).validate()
    ws = ws if ws is not None else Workspace()
    path = Path(path)
    sha = _hash_file(path)
    sha_id = make_id("corpus", sha, _id_key(path, spec))
    if ws.cached(sha_id):
        return _report_from_manifest(ws.manifest(sha_id), cached=True)
    with ws.lock(sha_id):
        if ws.cached(sha_id):
            return _report_from_manifest(ws.manifest(sha_id), cached=True)
        (ws.root / "tmp").mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{sha_id}.ingest.", dir=ws.root / "tmp"))
        try:
            return _ingest_into(path, spec, ws, sha_id, sha, tmp, progress, cancel)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _ingest_into(
    path: Path, spec: CorpusSpec, ws: Workspace, cid: str, sha: str, tmp: Path,
    progress: ProgressFn | None, cancel: threading.Event | None,
) -> IngestReport:
    work = tmp / "parts"
    work.mkdir()
    try:
        p1 = _read_rows(path, spec, work, False, progress, cancel)
    except readers.Undecodable as e:
        if spec.encoding != "latin-1":
            raise _undecodable(path, e) from None
        shutil.rmtree(work)
        work.mkdir()
        p1 = _read_rows(path, spec, work, True, progress, cancel)
        p1.notes.append(
            f"{path.name} is not valid UTF-8 (first bad byte at offset {e.offset}); "
            f"read the whole file as latin-1, as asked (encoding='latin-1')"
        )
    out = tmp / "out"
    out.mkdir()
    counts = _finish(p1, spec, out, path.name)
    assert counts["kept"] + counts["rejected"] == p1.rows_read, "every row is kept or rejected"
    report = IngestReport(
        corpus_id=cid, rows_read=p1.rows_read, kept=counts["kept"], rejected=counts["rejected"],
        rejections=counts["rejections"], duplicates=counts["duplicates"], text_fields=p1.text_fields,
        format=p1.format, encoding=p1.encoding, notes=p1.notes, cached=False, source=path.name, sha256=sha,
    )
    manifest = CorpusManifest(
        **{k: v for k, v in report.to_dict().items() if k not in ("corpus_id", "cached")},
        spec=spec.to_dict(), columns=counts["columns"], n_docs=counts["kept"],
    )

    def move(dest: Path) -> None:
        for f in out.iterdir():
            f.rename(dest / f.name)

    ws.write(cid, manifest, move, parents=[])
    logger.info("ingested %s into %s: %d kept, %d rejected", path.name, cid, report.kept, report.rejected)
    return report


def _sample_records(path: Path, spec: CorpusSpec, n: int) -> tuple[readers.Source, list[readers.Row]]:
    """The first ``n`` rows of ``path`` (with the latin-1 retry the spec allows)."""
    for force in (False, True):
        with tempfile.TemporaryDirectory(prefix="textcluster-peek.") as td:
            src = None
            try:
                src = readers.open_source(
                    path, spec.format, force_latin1=force, max_rows=spec.max_rows,
                    max_bytes=spec.max_bytes, tmpdir=Path(td), batch_rows=max(n, 1), max_ratio=spec.max_ratio,
                )
                return src, list(islice(src.records, n))
            except readers.Undecodable as e:
                if spec.encoding != "latin-1" or force:
                    raise _undecodable(path, e) from None
            finally:
                if src is not None:
                    src.close()
    raise AssertionError("unreachable")


def list_fields(path: str | Path, spec: CorpusSpec | None = None, sample_rows: int = 200) -> list[str]:
    """Columns and nested JSON paths seen in the first ``sample_rows`` rows of ``path``.

    Top-level columns come first in file order, each followed by the leaf paths
    below it (``request``, ``request.model``, ``request.messages[0].content``, ...);
    lists show their first 10 elements. For CSV/TSV/TXT these are the columns.
    """
    spec = (spec or CorpusSpec()).validate()
    path = Path(path)
    _check_path(path)
    src, rows = _sample_records(path, spec, sample_rows)
    return _available_fields([r for _, r, _ in rows if r is not None], src.columns)


def suggest_text_field(path: str | Path, spec: CorpusSpec | None = None) -> str | None:
    """The text field :func:`ingest` would pick for ``path`` when none is given (None: no column holds text).

    Looks at the first 200 rows only; ``spec`` supplies the format, encoding and the
    id/label fields to leave out.
    """
    spec = (spec or CorpusSpec()).validate()
    path = Path(path)
    _check_path(path)
    src, rows = _sample_records(path, spec, SAMPLE_ROWS)
    exclude = {f for f in (spec.id_field, spec.label_field) if f}
    try:
        return _choose_text_fields(src, replace(spec, text_fields=()), rows, exclude, path.name)[0]
    except CorpusError:
        return None


def preview(path: str | Path, spec: CorpusSpec | None = None, n: int = 20) -> pd.DataFrame:
    """The first ``n`` readable rows of ``path`` as a DataFrame (nothing is stored).

    Columns: ``row`` (1-based input row) then the file's top-level columns;
    nested values are shown as JSON strings. Malformed rows are left out
    (ingest lists them with reasons).
    """
    import pandas as pd  # lazily: importing pandas takes ~0.8 s, paid by the CLI's start otherwise

    spec = (spec or CorpusSpec()).validate()
    path = Path(path)
    _check_path(path)
    src, rows = _sample_records(path, spec, n)
    recs = []
    for row, rec, _ in rows:
        if rec is not None:
            recs.append({"row": row, **{_clean_str(str(k)): _shown(v) for k, v in rec.items() if k != "row"}})
    cols = ["row", *[c for c in _available_fields(recs, src.columns) if c != "row" and "[" not in c]]
    frame = pd.DataFrame.from_records(recs)
    return frame.reindex(columns=[c for c in cols if c in frame.columns] or list(frame.columns))


def load_docs(ws: Workspace, corpus_id: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``docs.parquet`` of a corpus as a DataFrame (one row per doc_id, in order).

    ``columns``: a subset to read (e.g. ``["doc_id", "text"]``); None reads all.
    Raises :class:`StoreError` for an unknown corpus or column.
    """

    p = ws.file(corpus_id, "docs.parquet")
    if columns is not None:
        names = pq.read_schema(p).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise StoreError(f"corpus {corpus_id} has no column(s) {missing}; columns: {names}")
    return pq.read_table(p, columns=list(columns) if columns is not None else None).to_pandas()


def load_rejections(ws: Workspace, corpus_id: str) -> pd.DataFrame:
    """``rejections.parquet`` of a corpus: columns ``row`` (int64) and ``reason`` (str), by row."""

    return pq.read_table(ws.file(corpus_id, "rejections.parquet")).to_pandas()


def load_report(ws: Workspace, corpus_id: str) -> IngestReport:
    """The stored :class:`IngestReport` of a corpus (``cached=True``)."""
    if not corpus_id.startswith("cor-"):
        raise StoreError(f"{corpus_id!r} is not a corpus id (they start with 'cor-')")
    return _report_from_manifest(ws.manifest(corpus_id), cached=True)
