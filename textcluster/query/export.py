"""Export a run, a sample or a SQL query as CSV, JSONL or Parquet, with provenance.

Rows stream from the sandboxed DuckDB session of :mod:`textcluster.query.sql` in
Arrow record batches into a pyarrow writer, so a big run is never held in
memory at once. The file is written under a temporary name and renamed into
place. Beside it, ``<out>.provenance.json`` says where the rows came from
(corpus hash, encoder and model fingerprint, reducer, clusterer, seed,
sampling policy, SQL, row count, creation time, textcluster version); a
Parquet file carries the same JSON in its file key-value metadata under
``textcluster.provenance`` (``pyarrow.parquet.read_metadata(path).metadata``).

What each source exports:

- a run: every document of its corpus (``doc_id``, ``text``, metadata columns)
  with ``run_id``, ``cluster``, ``distance``, ``probability``, ``x``, ``y``,
  ``cluster_label`` when the run was described, ``cluster_name`` when it has names (a
  rename edit) and ``tags`` (a list of tag names) when the corpus has tags; ordered by
  ``doc_id``. (A corpus column with one of these names is replaced by the run's.)
- a sample: the sampled documents with ``sample_id``, ``cluster``, ``rank``,
  ``cluster_label`` and ``cluster_name``; ordered by ``cluster``, ``rank``.
- SQL: the rows of one checked SELECT (see :func:`textcluster.query.sql.check_sql`).

Limits: every export stops at a time limit, a row limit and a byte limit
(:data:`EXPORT_TIMEOUT`, :data:`EXPORT_MAX_ROWS`, :data:`EXPORT_MAX_BYTES`); the
partial file is removed and :class:`~textcluster.errors.LimitError` says which
limit and how to raise it. The output path may not resolve inside the workspace.
In CSV, a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading ``'`` so that a spreadsheet does not run it as a formula
(OWASP's advice; ``raw_csv=True`` turns it off); JSONL and Parquet stay exact.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

import textcluster
from textcluster.cluster.versions import run_names
from textcluster.describe.clusters import latest_description
from textcluster.errors import ConfigError, LimitError, QueryError
from textcluster.query.sql import (
    MAX_SQL_BYTES,
    check_scope,
    check_sql,
    deadline_of,
    env_int,
    iter_batches,
    name_column,
    timeout_error,
)
from textcluster.query.tags import doc_tag_lists, load_tags
from textcluster.store import Workspace, atomic_path, check_id, check_output_path, write_json_atomic

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "parquet")
PROVENANCE_KEY = b"textcluster.provenance"
Format = Literal["csv", "jsonl", "parquet"]

#: Seconds an export may take in all (a 1M-row run takes about 4 s).
EXPORT_TIMEOUT = 600.0
#: Rows an export may hold.
EXPORT_MAX_ROWS = 20_000_000
#: Bytes an export file may reach (checked after each batch).
EXPORT_MAX_BYTES = 16 * 1024**3
#: Bytes of a download built in memory by :func:`export_bytes` (``$TEXTCLUSTER_DOWNLOAD_MAX_BYTES``).
DOWNLOAD_MAX_BYTES = env_int("TEXTCLUSTER_DOWNLOAD_MAX_BYTES", 512 * 1024**2)
#: A CSV text cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = r"^[=+\-@\t\r]"


@dataclass(frozen=True)
class ExportResult:
    """path: the exported file; provenance_path: ``<path>.provenance.json``; rows, columns, format."""

    path: Path
    provenance_path: Path
    rows: int
    columns: list[str]
    format: str
    provenance: dict[str, Any]


# -- what to export --------------------------------------------------------------


def _one_source(run_id: str | None, sample_id: str | None, sql: str | None) -> str:
    given = [n for n, v in (("run_id", run_id), ("sample_id", sample_id), ("sql", sql)) if v]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of run_id, sample_id, sql; got {given or 'none'}")
    return given[0]


def _has_label(ws: Workspace, run_id: str) -> bool:

    return latest_description(ws, run_id) is not None


def source_sql(ws: Workspace, run_id: str | None = None, sample_id: str | None = None) -> tuple[str, str]:
    """The (scope run id, SELECT) that exports a run or a sample."""
    if sample_id is not None:
        sid = check_id(sample_id, "sample")
        rid = ws.manifest(sid).run_id
        if not rid:
            raise ConfigError(f"sample {sid} names no run_id in its manifest")
        return rid, (
            "SELECT s.sample_id, s.cluster, s.rank, c.label AS cluster_label, c.cluster_name, "
            "d.* EXCLUDE (corpus_id) "
            "FROM samples s JOIN docs d USING (doc_id) "
            "LEFT JOIN clusters c ON c.run_id = s.run_id AND c.cluster = s.cluster "
            f"WHERE s.sample_id = '{sid}' ORDER BY s.cluster, s.rank"
        )
    rid = check_id(run_id, "run")
    label = ", c.label AS cluster_label" if _has_label(ws, rid) else ""
    if run_names(ws, rid):
        label += ", a.cluster_name"
    if load_tags(ws, ws.corpus_of(rid)):
        label += ", d.tags"
    return rid, (
        "SELECT d.* EXCLUDE (corpus_id, tags), a.run_id, a.cluster, a.distance, a.probability, a.x, a.y"
        f"{label} FROM docs d JOIN assignments a USING (doc_id) "
        "LEFT JOIN clusters c ON c.run_id = a.run_id AND c.cluster = a.cluster "
        "ORDER BY d.doc_id"
    )


def run_batches(ws: Workspace, run_id: str, batch_rows: int = 65_536) -> Iterator[Any]:
    """Stream a run's export without a join: the schema first, then record batches.

    Reads ``docs.parquet`` batch by batch and gathers each batch's cluster,
    distance, probability and coordinates from the run's memory-mapped ``.npy``
    files by ``doc_id`` (the label from the newest description, the name from the
    run's names, the tags from the corpus's tags), so memory
    stays at one batch however big the run. Rows keep the corpus order (doc_id).
    """


    d = ws.path(check_id(run_id, "run"))
    labels = np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")

    def opt(name: str) -> Any:
        return np.load(d / name, mmap_mode="r") if (d / name).is_file() else None

    dist, prob, xy = opt("distances.npy"), opt("probabilities.npy"), opt("coords2d.npy")
    desc = latest_description(ws, run_id)
    label_of = None
    if desc is not None:
        label_of = {c.cluster: c.label for c in desc.clusters}
    src = ds.dataset(str(ws.file(ws.corpus_of(run_id), "docs.parquet")), format="parquet")
    extra = [
        pa.field("run_id", pa.string()), pa.field("cluster", pa.int32()), pa.field("distance", pa.float32()),
        pa.field("probability", pa.float32()), pa.field("x", pa.float32()), pa.field("y", pa.float32()),
    ]
    if label_of is not None:
        extra.append(pa.field("cluster_label", pa.string()))
    names = run_names(ws, run_id)
    if names:
        extra.append(pa.field("cluster_name", pa.string()))
    tags = load_tags(ws, ws.corpus_of(run_id))
    if tags:
        extra.append(pa.field("tags", pa.list_(pa.string())))
    base = [f for f in src.schema if f.name not in {e.name for e in extra} | {"corpus_id"}]
    schema = pa.schema(base + extra)
    yield schema

    def take(arr: Any, idx: np.ndarray, col: int | None = None) -> Any:
        if arr is None:
            return pa.nulls(idx.size, pa.float32())
        v = arr[idx] if col is None else arr[idx, col]
        return pa.array(np.asarray(v, dtype=np.float32))

    for b in src.to_batches(columns=[f.name for f in base], batch_size=batch_rows):
        idx = b.column(b.schema.get_field_index("doc_id")).to_numpy().astype(np.int64)
        cl = np.asarray(labels[idx], dtype=np.int32)
        cols = [*b.columns, pa.array(np.full(idx.size, run_id, dtype=object), pa.string()), pa.array(cl),
                take(dist, idx), take(prob, idx), take(xy, idx, 0), take(xy, idx, 1)]
        if label_of is not None:
            cols.append(pa.array([label_of.get(int(c)) for c in cl], pa.string()))
        if names:
            cols.append(name_column(cl, names))
        if tags:
            cols.append(doc_tag_lists(tags, idx))
        yield pa.RecordBatch.from_arrays(cols, schema=schema)


# -- provenance ----------------------------------------------------------------


def lineage(ws: Workspace, run_id: str) -> dict[str, Any]:
    """Where a run comes from: corpus (id, sha256, source), embedding (encoder, model
    fingerprint) and run (reducer, clusterer, seed) settings, read from the manifests."""
    rm = ws.manifest(check_id(run_id, "run"))
    out: dict[str, Any] = {"run_id": run_id}
    eid = rm.embedding_id
    em = ws.manifest(eid) if eid and ws.exists(eid) else None
    cid = ws.corpus_of(run_id)
    cm = ws.manifest(cid) if ws.exists(cid) else None
    out["corpus"] = {
        "corpus_id": cid,
        "sha256": (cm.sha256 or None) if cm else None,
        "source": (cm.source or None) if cm else None,
        "rows": cm.kept if cm else None,
    }
    out["embedding"] = {
        "embedding_id": eid,
        "encoder": (em.encoder or None) if em else None,
        "encoder_config": em.encoder_config if em else None,
        "model": (em.model or None) if em else None,
        "model_fingerprint": (em.model_fingerprint or None) if em else None,
        "dim": em.dim if em else None,
    }
    out["reducer"] = rm.reducer
    out["clusterer"] = rm.clusterer
    out["seed"] = rm.seed if rm.seed is not None else rm.clusterer.get("seed")
    out["parameters"] = rm.clusterer_params or None
    return out


def provenance(
    ws: Workspace,
    run_id: str | None = None,
    sample_id: str | None = None,
    sql: str | None = None,
    rows: int | None = None,
    columns: list[str] | None = None,
    fmt: str | None = None,
) -> dict[str, Any]:
    """The provenance record of an export (also usable on its own, e.g. next to a download).

    For SQL without ``run_id``, ``runs`` lists the lineage of every run in the workspace.
    """

    source = _one_source(run_id if not sql else None, sample_id, sql)
    rec: dict[str, Any] = {
        "textcluster_version": textcluster.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": {"run_id": "run", "sample_id": "sample", "sql": "sql"}[source],
        "format": fmt,
        "rows": rows,
        "columns": columns,
        "sql": sql,
        "run_id": run_id,
        "sample_id": sample_id,
        "sampling_policy": None,
        "csv_neutralised": None,
    }
    if sample_id is not None:
        sm = ws.manifest(check_id(sample_id, "sample"))
        rec["sampling_policy"] = sm.policy
        rec["run_id"] = run_id = sm.run_id
    if run_id is not None:
        rec.update({k: v for k, v in lineage(ws, run_id).items() if k != "run_id"})
    else:
        rec["runs"] = [lineage(ws, m.id) for m in ws.list("run")]
        rec["corpora"] = [{"corpus_id": m.id, "sha256": m.sha256 or None} for m in ws.list("corpus")]
    return rec


# -- writers -------------------------------------------------------------------


def _jsonable(v: Any) -> Any:
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, float) and v != v:  # NaN is not JSON
        return None
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "item"):
        return v.item()
    if not isinstance(v, str | int | float | bool | type(None)):
        return str(v)
    return v


@dataclass(frozen=True)
class _Limits:
    out: Path
    timeout: float | None
    deadline: float | None
    max_rows: int
    max_bytes: int

    def rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise LimitError(
                f"export stopped: more than {self.max_rows:,} rows (max_rows; CLI --max-rows); "
                "add a WHERE or LIMIT, or raise the limit",
                "max_rows", self.max_rows,
            )

    def check(self, path: Path) -> None:
        size = path.stat().st_size
        if size > self.max_bytes:
            raise LimitError(
                f"export stopped: the file passed {self.max_bytes:,} bytes (max_bytes; CLI --max-bytes); "
                "select fewer rows or columns, or raise the limit",
                "max_bytes", self.max_bytes,
            )
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise timeout_error(self.timeout)


def _write_stream(
    stream: Iterator[Any], path: Path, fmt: str, prov: dict[str, Any], path_name: str,
    limits: _Limits, neutralise: bool,
) -> tuple[int, list[str], int]:
    """Write the stream to ``path``; returns (rows, columns, CSV cells neutralised)."""
    schema = next(stream)
    rows = neutralised = 0
    if fmt == "parquet":
        meta = dict(schema.metadata or {})
        meta.pop(b"textcluster.truncated", None)
        schema = schema.with_metadata(meta)
        with pq.ParquetWriter(str(path), schema) as w:
            for b in stream:
                limits.rows(rows + b.num_rows)
                w.write_table(pa.Table.from_batches([b], schema=schema))
                rows += b.num_rows
                limits.check(path)
            # the footer is written at close, so the final row count can go in
            final = {**prov, "rows": rows, "columns": list(schema.names), "file": path_name}
            w.add_key_value_metadata(
                {PROVENANCE_KEY.decode(): json.dumps(final, ensure_ascii=False, default=str)}
            )
    elif fmt == "csv":
        names, neutralised = _csv_names(schema, neutralise)
        with pcsv.CSVWriter(str(path), _csv_schema(schema, names)) as w:
            for b in stream:
                limits.rows(rows + b.num_rows)
                b, n = _csv_batch(b, names, neutralise)
                w.write_batch(b)
                rows += b.num_rows
                neutralised += n
                limits.check(path)
        schema = _csv_schema(schema, names)
    elif fmt == "jsonl":
        with open(path, "wb") as f:
            for b in stream:
                limits.rows(rows + b.num_rows)
                for rec in b.to_pylist():
                    line = json.dumps({k: _jsonable(v) for k, v in rec.items()}, ensure_ascii=False)
                    f.write(line.encode("utf-8", errors="surrogatepass") + b"\n")
                rows += b.num_rows
                f.flush()
                limits.check(path)
    else:  # pragma: no cover - checked by the caller
        raise ConfigError(f"format={fmt!r} should be one of {', '.join(FORMATS)}")
    limits.check(path)  # the Parquet footer, the last buffered bytes
    return rows, list(schema.names), neutralised


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_names(schema: Any, neutralise: bool) -> tuple[list[str], int]:
    """The header cells (column names come from user files too)."""
    if not neutralise:
        return list(schema.names), 0
    names = [_neutral(n) for n in schema.names]
    return names, sum(a != b for a, b in zip(names, schema.names, strict=True))


def _csv_schema(schema: Any, names: list[str] | None = None) -> Any:

    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_nested(f.type) or pa.types.is_dictionary(f.type) else f
        for f in schema
    ]
    if names is not None:
        fields = [f.with_name(n) for f, n in zip(fields, names, strict=True)]
    return pa.schema(fields)


def _csv_batch(batch: Any, names: list[str], neutralise: bool) -> tuple[Any, int]:
    """CSV cannot hold lists/structs: write them as JSON strings. With ``neutralise``, a text
    cell starting like a formula (:data:`FORMULA_START`) gets a leading ``'``; returns the
    batch and the number of cells changed."""

    cols, changed = [], 0
    for f, col in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_nested(f.type):
            col = pa.array(
                [None if v is None else json.dumps(_jsonable(v), ensure_ascii=False) for v in col.to_pylist()],
                pa.string(),
            )
        elif pa.types.is_dictionary(f.type):
            col = col.cast(pa.string())
        if neutralise and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            mask = pc.fill_null(pc.match_substring_regex(col, FORMULA_START), False)
            n = pc.sum(mask).as_py() or 0
            if n:
                col = pc.if_else(mask, pc.binary_join_element_wise("'", col, ""), col)
                changed += n
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=_csv_schema(batch.schema, names)), changed


def _format_of(out: Path, fmt: str | None) -> str:
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".")
        fmt = {"ndjson": "jsonl", "pq": "parquet"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r} should be one of {', '.join(FORMATS)} (or an out path ending so)")
    return fmt


def export(
    ws: Workspace,
    out: str | os.PathLike[str],
    fmt: Format | None = None,
    *,
    run_id: str | None = None,
    sample_id: str | None = None,
    sql: str | None = None,
    timeout: float | None = EXPORT_TIMEOUT,
    max_rows: int = EXPORT_MAX_ROWS,
    max_bytes: int = EXPORT_MAX_BYTES,
    raw_csv: bool = False,
    all_runs: bool = False,
    max_sql_bytes: int = MAX_SQL_BYTES,
    memory_limit: str | None = None,
    threads: int | None = None,
    batch_rows: int = 65_536,
) -> ExportResult:
    """Write a run, a sample or one SELECT to ``out`` and ``<out>.provenance.json``.

    Give exactly one of ``run_id``, ``sample_id``, ``sql`` (``run_id`` together
    with ``sql`` scopes the SQL's views to that run; ``all_runs`` lets SQL without a run
    read a workspace of several runs, see :func:`textcluster.query.sql.check_scope`).
    fmt: ``csv`` | ``jsonl`` | ``parquet``; None: from ``out``'s suffix. ``out`` may not
    resolve inside the workspace (:class:`~textcluster.errors.OutputPathError`).
    Limits: ``timeout`` seconds in all (default :data:`EXPORT_TIMEOUT`; None: none),
    ``max_rows`` (:data:`EXPORT_MAX_ROWS`), ``max_bytes`` of the file
    (:data:`EXPORT_MAX_BYTES`); past one, the partial file is removed and
    :class:`~textcluster.errors.LimitError` names the limit. raw_csv: write CSV cells
    exactly (default: neutralise formulas). max_sql_bytes, memory_limit, threads: as in
    :func:`textcluster.query.sql.query`.
    Rows stream in batches of ``batch_rows``.
    Raises :class:`QueryError` for refused or failing SQL, :class:`ConfigError` for bad arguments.
    """
    deadline = deadline_of(timeout)
    for name, v in (("max_rows", max_rows), ("max_bytes", max_bytes)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{name}={v!r} should be an integer > 0")
    out = Path(out)
    prov_path = out.with_name(out.name + ".provenance.json")
    check_output_path(ws, out, "export")
    check_output_path(ws, prov_path, "provenance")
    fmt = _format_of(out, fmt)
    engine = {"memory_limit": memory_limit, "threads": threads}
    if sql:
        _one_source(None, sample_id, sql)
        check_sql(sql, max_sql_bytes)  # refused before anything is written
        check_scope(ws, run_id, all_runs)
        stream = iter_batches(ws, sql, run_id=run_id, timeout=timeout, batch_rows=batch_rows,
                              deadline=deadline, all_runs=all_runs, max_sql_bytes=max_sql_bytes, **engine)
    elif run_id:
        _one_source(run_id, sample_id, None)
        ws.manifest(check_id(run_id, "run"))
        stream = run_batches(ws, run_id, batch_rows)
    else:
        _one_source(run_id, sample_id, None)
        scope, stmt = source_sql(ws, sample_id=sample_id)
        stream = iter_batches(ws, stmt, run_id=scope, timeout=timeout, batch_rows=batch_rows,
                              deadline=deadline, **engine)
    neutralise = fmt == "csv" and not raw_csv
    prov = provenance(ws, run_id=run_id, sample_id=sample_id, sql=sql or None, fmt=fmt)
    prov["csv_neutralised"] = neutralise if fmt == "csv" else None
    limits = _Limits(out, timeout, deadline, max_rows, max_bytes)
    try:
        with atomic_path(out) as tmp:
            rows, columns, changed = _write_stream(stream, tmp, fmt, prov, out.name, limits, neutralise)
    except LimitError as e:
        raise LimitError(f"{e}; nothing was written to {str(out)!r}", e.limit, e.value) from e
    prov = {**prov, "rows": rows, "columns": columns, "file": out.name}
    if fmt == "csv":
        prov["neutralised_cells"] = changed
    try:
        write_json_atomic(prov_path, prov)
    except BaseException:
        # An export without its provenance is not one we can vouch for: take the file back.
        out.unlink(missing_ok=True)
        raise
    logger.info("exported %d rows to %s", rows, out)
    return ExportResult(out, prov_path, rows, columns, fmt, prov)


def export_bytes(
    ws: Workspace,
    fmt: Format,
    *,
    run_id: str | None = None,
    sample_id: str | None = None,
    sql: str | None = None,
    timeout: float | None = EXPORT_TIMEOUT,
    max_rows: int = EXPORT_MAX_ROWS,
    max_bytes: int = DOWNLOAD_MAX_BYTES,
    raw_csv: bool = False,
) -> bytes:
    """The bytes :func:`export` would write (for download buttons), under the same limits but
    at most ``max_bytes`` (default :data:`DOWNLOAD_MAX_BYTES`), since they are held in memory.
    Parquet bytes carry the provenance in their metadata; for CSV/JSONL call
    :func:`provenance` to show it."""
    fmt = _format_of(Path(f"x.{fmt}"), fmt)
    with tempfile.TemporaryDirectory(prefix="textcluster-export-") as d:
        try:
            r = export(ws, Path(d) / f"export.{fmt}", fmt, run_id=run_id, sample_id=sample_id, sql=sql,
                       timeout=timeout, max_rows=max_rows, max_bytes=max_bytes, raw_csv=raw_csv)
        except LimitError as e:  # name the limit, not the temporary file
            base = e.__cause__ if isinstance(e.__cause__, LimitError) else e
            raise LimitError(f"{base}; the download was not built", base.limit, base.value) from e
        return r.path.read_bytes()


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance of an exported file: its sidecar JSON, else a Parquet file's metadata."""
    p = Path(path)
    side = p.with_name(p.name + ".provenance.json")
    if side.is_file():
        return json.loads(side.read_text(encoding="utf-8"))
    if p.suffix.lower() in (".parquet", ".pq"):

        meta = pq.read_metadata(p).metadata or {}
        if PROVENANCE_KEY in meta:
            return json.loads(meta[PROVENANCE_KEY])
    raise QueryError(f"{p} has no provenance (no {side.name} and no Parquet metadata)")
