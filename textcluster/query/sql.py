"""Read-only SQL over the workspace with DuckDB, in a sandbox.

Four views are built from the artifacts' files (nothing is copied; Parquet
files are scanned through ``pyarrow.dataset`` and ``.npy`` arrays are wrapped as
Arrow arrays over memory maps):

- ``docs``: ``doc_id``, ``text``, the corpus's metadata columns and ``corpus_id``
  (several corpora are stacked ``UNION ALL BY NAME``).
- ``assignments``: ``doc_id``, ``run_id``, ``cluster``, ``distance``,
  ``probability``, ``x``, ``y``, ``corpus_id`` (one row per document per run).
- ``clusters``: ``run_id``, ``cluster``, ``size``, ``share``, ``label``,
  ``keywords`` (label and keywords from the run's newest description, else NULL).
- ``samples``: ``sample_id``, ``doc_id``, ``cluster``, ``rank``, ``run_id``.

Scoped to a run (``run_id=...``), ``docs`` holds that run's corpus and the other
views that run only.

User SQL is code, so it runs as DuckDB's security guide says: the statement is
parsed with DuckDB's own parser and must be exactly one ``SELECT``; it runs on a
fresh connection where the views were created first and then
``enable_external_access=false`` and ``lock_configuration=true`` were set, so
it cannot read or write files, attach databases, load extensions or change
settings; a timer interrupts it after ``timeout`` seconds; at most ``limit``
rows come back. Refusals and failures raise :class:`~textcluster.errors.QueryError`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from textcluster.describe.clusters import latest_description
from textcluster.errors import QueryError
from textcluster.store import Workspace, check_id

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
DEFAULT_TIMEOUT = 10.0
#: DuckDB memory limit of a sandboxed connection (it spills to ``<workspace>/tmp/duckdb`` beyond).
MEMORY_LIMIT = os.environ.get("TEXTCLUSTER_SQL_MEMORY_LIMIT", "2GB")
VIEWS = ("docs", "assignments", "clusters", "samples")
TRUNCATED_KEY = b"textcluster.truncated"

T = TypeVar("T")

# Set after the views exist; the order matters: lock_configuration last.
_SANDBOX_SETTINGS = (
    "SET python_enable_replacements=false",  # no scanning of Python variables by name
    "SET autoinstall_known_extensions=false",
    "SET autoload_known_extensions=false",
    "SET enable_external_access=false",
    "SET lock_configuration=true",
)


@dataclass
class Session:
    """A DuckDB connection with the workspace views, sandboxed unless built with ``sandbox=False``.

    ``con`` is the connection; ``run_id`` the scope (None: whole workspace). Keep the
    session alive while using ``con``: it holds the Arrow objects the views read.
    """

    con: Any
    run_id: str | None
    sandboxed: bool
    _keep: list[Any] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Close the connection."""
        try:
            self.con.close()
        finally:
            self._keep.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- building the views --------------------------------------------------------


def _corpora(ws: Workspace, run_id: str | None) -> list[str]:
    if run_id is not None:
        return [ws.corpus_of(run_id)]
    return sorted(m.id for m in ws.list("corpus"))


def _runs(ws: Workspace, run_id: str | None) -> list[str]:
    if run_id is not None:
        ws.manifest(run_id)
        return [run_id]
    return sorted(m.id for m in ws.list("run"))


def _npy(path: Any) -> np.ndarray | None:
    return np.load(path, mmap_mode="r") if path.is_file() else None


def _assignments_table(ws: Workspace, run_id: str) -> Any:

    d = ws.path(run_id)
    labels = np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")
    n = labels.shape[0]

    def col(arr: np.ndarray | None, dtype: Any) -> Any:
        if arr is None:
            return pa.nulls(n, dtype)
        return pa.array(np.ascontiguousarray(arr), dtype)

    coords = _npy(d / "coords2d.npy")
    return pa.table(
        {
            "doc_id": pa.array(np.arange(n, dtype=np.int64)),
            "cluster": col(labels.astype(np.int32, copy=False), pa.int32()),
            "distance": col(_npy(d / "distances.npy"), pa.float32()),
            "probability": col(_npy(d / "probabilities.npy"), pa.float32()),
            "x": col(None if coords is None else coords[:, 0], pa.float32()),
            "y": col(None if coords is None else coords[:, 1], pa.float32()),
        }
    )


def _clusters_table(ws: Workspace, runs: list[str]) -> Any:


    cols: dict[str, list[Any]] = {k: [] for k in ("run_id", "cluster", "size", "share", "label", "keywords")}
    for rid in runs:
        labels = np.load(ws.file(rid, "labels.npy"), mmap_mode="r")
        counts_all = np.bincount(np.asarray(labels, dtype=np.int64) + 1)  # O(n); index 0 is noise
        ids = np.flatnonzero(counts_all) - 1
        counts = counts_all[ids + 1]
        desc = latest_description(ws, rid)
        by = desc.by_cluster() if desc is not None else {}
        for c, n in zip(ids.tolist(), counts.tolist(), strict=True):
            cd = by.get(c)
            cols["run_id"].append(rid)
            cols["cluster"].append(c)
            cols["size"].append(n)
            cols["share"].append(n / max(1, labels.shape[0]))
            cols["label"].append(cd.label if cd else ("noise" if c == -1 else None))
            cols["keywords"].append(list(cd.keywords) if cd else None)
    return pa.table(
        {
            "run_id": pa.array(cols["run_id"], pa.string()),
            "cluster": pa.array(cols["cluster"], pa.int32()),
            "size": pa.array(cols["size"], pa.int64()),
            "share": pa.array(cols["share"], pa.float64()),
            "label": pa.array(cols["label"], pa.string()),
            "keywords": pa.array(cols["keywords"], pa.list_(pa.string())),
        }
    )


def _samples_source(ws: Workspace, run_id: str | None) -> tuple[Any, list[tuple[str, str]]]:

    files, owners = [], []
    for m in ws.list("sample"):
        if run_id is not None and m.run_id != run_id:
            continue
        p = ws.path(m.id) / "sample.parquet"
        if p.is_file():
            files.append(str(p))
            owners.append((m.id, m.run_id))
    schema = pa.schema(
        [("sample_id", pa.string()), ("doc_id", pa.int64()), ("cluster", pa.int32()), ("rank", pa.int32())]
    )
    if not files:
        return schema.empty_table(), owners
    return ds.dataset(sorted(files), schema=schema, format="parquet"), owners


def connect(ws: Workspace, run_id: str | None = None, sandbox: bool = True) -> Session:
    """A :class:`Session` whose connection has the views ``docs``, ``assignments``, ``clusters``, ``samples``.

    run_id: scope the views to one run and its corpus (None: the whole workspace).
    sandbox: after the views exist, set the memory limit (:data:`MEMORY_LIMIT`), disable
    file/network access and lock the configuration (always True for user SQL;
    :mod:`textcluster.query.export` uses it too).
    """
    import duckdb

    if run_id is not None:
        check_id(run_id, "run")
    con = duckdb.connect(":memory:")
    keep: list[Any] = []
    try:
        # -- docs
        parts = []
        for i, cid in enumerate(_corpora(ws, run_id)):
            check_id(cid, "corpus")  # quoted into the view's SQL below
            src = ds.dataset(str(ws.file(cid, "docs.parquet")), format="parquet")
            keep.append(src)
            con.register(f"_docs_{i}", src)
            if "corpus_id" in src.schema.names:  # an input column of that name: ours wins
                parts.append(f"SELECT * REPLACE ('{cid}' AS corpus_id) FROM _docs_{i}")
            else:
                parts.append(f"SELECT *, '{cid}' AS corpus_id FROM _docs_{i}")
        if not parts:
            parts = ["SELECT NULL::BIGINT AS doc_id, NULL::VARCHAR AS text, NULL::VARCHAR AS corpus_id LIMIT 0"]
        con.execute("CREATE VIEW docs AS " + " UNION ALL BY NAME ".join(parts))
        # -- assignments
        runs = _runs(ws, run_id)
        parts = []
        for i, rid in enumerate(runs):
            check_id(rid, "run")  # quoted into the view's SQL below
            cid = check_id(ws.corpus_of(rid), "corpus")
            t = _assignments_table(ws, rid)
            keep.append(t)
            con.register(f"_asg_{i}", t)
            parts.append(
                f"SELECT doc_id, '{rid}' AS run_id, cluster, distance, probability, x, y, "
                f"'{cid}' AS corpus_id FROM _asg_{i}"
            )
        if not parts:
            parts = [
                "SELECT NULL::BIGINT AS doc_id, NULL::VARCHAR AS run_id, NULL::INTEGER AS cluster, "
                "NULL::FLOAT AS distance, NULL::FLOAT AS probability, NULL::FLOAT AS x, NULL::FLOAT AS y, "
                "NULL::VARCHAR AS corpus_id LIMIT 0"
            ]
        con.execute("CREATE VIEW assignments AS " + " UNION ALL ".join(parts))
        # -- clusters
        ct = _clusters_table(ws, runs)
        keep.append(ct)
        con.register("_clusters", ct)
        con.execute("CREATE VIEW clusters AS SELECT * FROM _clusters")
        # -- samples
        src, owners = _samples_source(ws, run_id)
        keep.append(src)
        con.register("_samples", src)
        owner_t = pa.table(
            {"sample_id": pa.array([o[0] for o in owners], pa.string()),
             "run_id": pa.array([o[1] for o in owners], pa.string())}
        )
        keep.append(owner_t)
        con.register("_sample_runs", owner_t)
        con.execute(
            "CREATE VIEW samples AS SELECT s.sample_id, s.doc_id, s.cluster, s.rank, o.run_id "
            "FROM _samples s LEFT JOIN _sample_runs o USING (sample_id)"
        )
        if sandbox:
            # bounded memory; a big sort spills under the workspace, not the current folder
            spill = str(ws.root.resolve() / "tmp" / "duckdb").replace("'", "''")
            con.execute(f"SET memory_limit='{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory='{spill}'")
            for s in _SANDBOX_SETTINGS:
                con.execute(s)
    except BaseException:
        con.close()
        raise
    return Session(con, run_id, sandbox, keep)


# -- checking and running user SQL -------------------------------------------------


def check_sql(sql: str) -> str:
    """Return the single SELECT statement in ``sql`` or raise :class:`QueryError`.

    Uses DuckDB's parser (``duckdb.extract_statements``): exactly one statement,
    of type SELECT (this includes ``WITH``, ``VALUES``, ``FROM x``, ``DESCRIBE``,
    ``SHOW``, ``SUMMARIZE``). Everything else (COPY, EXPORT, ATTACH, INSTALL,
    LOAD, SET, PRAGMA, CREATE, INSERT, ...) is refused.
    """
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty SQL: give one SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(f"SQL does not parse: {' '.join(str(e).split())}") from e
    if len(statements) != 1:
        raise QueryError(f"only one statement is allowed; got {len(statements)}")
    st = statements[0]
    kind = getattr(st.type, "name", str(st.type))
    if kind != "SELECT":
        raise QueryError(f"only SELECT statements are allowed; got a statement of type {kind}")
    return st.query.strip().rstrip(";").strip()


def _with_timeout(con: Any, timeout: float | None, fn: Callable[[], T]) -> T:
    import duckdb

    fired = threading.Event()

    def stop() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(timeout, stop) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        return fn()
    except duckdb.InterruptException as e:
        raise QueryError(
            f"query interrupted after the time limit of {timeout:g} s; add filters or a LIMIT"
        ) from e
    except duckdb.PermissionException as e:
        raise QueryError(f"refused by the sandbox: {' '.join(str(e).split())}") from e
    except (duckdb.Error, pa.ArrowException) as e:
        if fired.is_set():
            raise QueryError(f"query interrupted after the time limit of {timeout:g} s") from e
        raise QueryError(f"query failed: {' '.join(str(e).split())}") from e
    finally:
        if timer is not None:
            timer.cancel()


def query(
    ws: Workspace,
    sql: str,
    limit: int = DEFAULT_LIMIT,
    timeout: float | None = DEFAULT_TIMEOUT,
    run_id: str | None = None,
) -> Any:
    """Run one read-only SELECT over the workspace views; returns a ``pyarrow.Table``.

    limit: at most this many rows come back (default 1000); when more exist
    the table's schema metadata has ``textcluster.truncated = b"true"`` (see
    :func:`is_truncated`). timeout: seconds before the query is interrupted
    (default 10; None: no limit). run_id: scope the views to one run.
    Raises :class:`QueryError` when refused, failing or timed out.
    """
    if limit < 0:
        raise QueryError(f"limit={limit} should be >= 0")
    if timeout is not None and timeout <= 0:
        raise QueryError(f"timeout={timeout} should be > 0 seconds")
    stmt = check_sql(sql)
    with connect(ws, run_id=run_id, sandbox=True) as s:

        def run() -> Any:
            rel = s.con.sql(stmt)
            if rel is None:  # pragma: no cover - check_sql only lets SELECT through
                raise QueryError("the statement returned no rows")
            return rel.limit(limit + 1).to_arrow_table()

        t = _with_timeout(s.con, timeout, run)
    truncated = t.num_rows > limit
    if truncated:
        t = t.slice(0, limit)
    meta = dict(t.schema.metadata or {})
    meta[TRUNCATED_KEY] = b"true" if truncated else b"false"
    return t.replace_schema_metadata(meta)


def is_truncated(table: Any) -> bool:
    """True when :func:`query` cut the result at its row limit."""
    return (table.schema.metadata or {}).get(TRUNCATED_KEY) == b"true"


def iter_batches(
    ws: Workspace,
    sql: str,
    run_id: str | None = None,
    timeout: float | None = None,
    batch_rows: int = 65_536,
) -> Iterator[Any]:
    """Stream the result of one checked SELECT as ``pyarrow.RecordBatch`` es (no row cap).

    The first item is the result's ``pyarrow.Schema``; record batches follow. The
    same sandbox as :func:`query`; ``timeout`` (seconds, None: none) limits each fetch.
    """
    stmt = check_sql(sql)
    with connect(ws, run_id=run_id, sandbox=True) as s:
        reader = _with_timeout(s.con, timeout, lambda: s.con.sql(stmt).to_arrow_reader(batch_rows))
        try:
            yield reader.schema
            while True:
                try:
                    batch = _with_timeout(s.con, timeout, reader.read_next_batch)
                except StopIteration:
                    break
                yield batch
        finally:
            reader.close()
