"""A selection of documents named by a file or by one SELECT: the CLI's ``--docs FILE_OR_SQL``.

:func:`doc_ids_from` reads a set of documents from a file (one id per line, or a CSV /
JSONL / Parquet file with a ``doc_id`` column) or from one SELECT over the views of
:mod:`textcluster.query.sql` that returns ``doc_id`` (``tag`` and ``edit move`` take it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from textcluster.errors import ConfigError
from textcluster.query.sql import MAX_SQL_BYTES, iter_batches
from textcluster.query.tags import check_doc_ids
from textcluster.store import Workspace, check_id

#: Most documents :func:`doc_ids_from` reads from a file or a query.
MAX_SELECTION = 50_000_000
_SQL_START = re.compile(r"^\s*(\(|(select|with|from|values)\s)", re.IGNORECASE)


def is_sql(source: str) -> bool:
    """True when ``source`` reads as a SQL statement rather than a file name."""
    return bool(_SQL_START.match(source))


def doc_ids_from(
    ws: Workspace, source: str, *, run_id: str | None = None, corpus_id: str | None = None,
    timeout: float | None = 60.0, max_sql_bytes: int = MAX_SQL_BYTES, max_docs: int = MAX_SELECTION,
    all_runs: bool = False,
) -> np.ndarray:
    """The doc ids named by ``source``: one SELECT over the views (scoped to ``run_id``) whose
    result has a ``doc_id`` column, or a file: plain text with one id per line (``#`` comments
    and blank lines skipped), or ``.csv`` / ``.jsonl`` / ``.parquet`` with a ``doc_id`` column.
    Checked against the corpus (``corpus_id``, else ``run_id``'s); returns sorted unique int64.
    ``all_runs``: (without ``run_id``) let the SELECT read a workspace of several runs.
    :class:`ConfigError` naming what is wrong (no such file, no ``doc_id`` column, a value that
    is not an id, more than ``max_docs``)."""
    cid = corpus_id or (ws.corpus_of(check_id(run_id, "run")) if run_id else None)
    if cid is None:
        raise ConfigError("doc_ids_from needs the corpus_id or the run_id the documents belong to")
    text = source.strip()
    if is_sql(text) and not Path(text).is_file():
        if run_id is None and [m.id for m in ws.list("corpus")] != [cid]:
            raise ConfigError(f"selecting documents of corpus {cid} by SQL needs one of its runs (the views "
                              "would hold other corpora too): give a run id, or a file of doc ids")
        parts: list[np.ndarray] = []
        stream = iter_batches(ws, text, run_id=run_id, timeout=timeout, max_sql_bytes=max_sql_bytes,
                              all_runs=all_runs and run_id is None)
        schema = next(stream)
        if "doc_id" not in schema.names:
            raise ConfigError(f"the query returns no doc_id column (columns: {', '.join(schema.names)})")
        total = 0
        for b in stream:
            col = b.column(b.schema.get_field_index("doc_id"))
            if col.null_count:
                raise ConfigError("the query returns a NULL doc_id")
            parts.append(col.to_numpy(zero_copy_only=False).astype(np.int64))
            total += b.num_rows
            if total > max_docs:
                raise ConfigError(f"the query returns more than {max_docs:,} documents")
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return check_doc_ids(ws, cid, ids)
    return check_doc_ids(ws, cid, _ids_in_file(Path(text), max_docs))


def _ids_in_file(path: Path, max_docs: int) -> np.ndarray:
    if not path.is_file():
        raise ConfigError(f"--docs {str(path)!r} is neither a SELECT nor a readable file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".jsonl", ".ndjson", ".parquet", ".pq"):
        import pandas as pd  # lazily: pandas takes ~0.8 s to import

        try:
            if suffix == ".csv":
                df = pd.read_csv(path, usecols=lambda c: c == "doc_id")
            elif suffix in (".parquet", ".pq"):
                df = pd.read_parquet(path, columns=["doc_id"])
            else:
                df = pd.read_json(path, lines=True)
        except (ValueError, OSError, KeyError) as e:
            raise ConfigError(f"cannot read doc ids from {path.name}: {' '.join(str(e).split())[:200]}") from e
        if "doc_id" not in df.columns:
            raise ConfigError(f"{path.name} has no doc_id column")
        col = df["doc_id"]
        if col.isna().any() or not np.all(np.mod(col.to_numpy(dtype=np.float64), 1) == 0):
            raise ConfigError(f"{path.name}: the doc_id column holds values that are not whole numbers")
        ids = col.to_numpy(dtype=np.int64)
    else:
        out: list[int] = []
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                try:
                    out.append(int(s))
                except ValueError:
                    raise ConfigError(f"{path.name} line {lineno}: {s[:40]!r} is not a doc id") from None
                if len(out) > max_docs:
                    break
        ids = np.asarray(out, dtype=np.int64)
    if ids.size > max_docs:
        raise ConfigError(f"{path.name} names more than {max_docs:,} documents")
    return ids
