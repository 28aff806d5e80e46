"""Read-only SQL over the workspace with DuckDB, in a sandbox.

Four views are built from the artifacts' files (nothing is copied; Parquet
files are scanned through ``pyarrow.dataset`` and ``.npy`` arrays are wrapped as
Arrow arrays over memory maps):

- ``docs``: ``doc_id``, ``text``, the corpus's metadata columns, ``corpus_id`` and
  ``tags`` (the names of the document's tags, a list; NULL when none) (several corpora are
  stacked ``UNION ALL BY NAME``).
- ``assignments``: ``doc_id``, ``run_id``, ``cluster``, ``distance``,
  ``probability``, ``outlier_score`` (distance to the centre as a quantile within the
  cluster, NULL for noise), ``x``, ``y``, ``corpus_id``, ``cluster_name`` (one row per document
  per run; the name given by a rename edit, else NULL).
- ``clusters``: ``run_id``, ``cluster``, ``size``, ``share``, ``label``,
  ``keywords`` (label and keywords from the run's newest description, else NULL),
  ``cluster_name`` (as above).
- ``samples``: ``sample_id``, ``doc_id``, ``cluster``, ``rank``, ``run_id``.
- ``tags``: ``corpus_id``, ``tag``, ``doc_id`` (one row per tagged document, see
  :mod:`textcluster.query.tags`).

Scoped to a run (``run_id=...``), ``docs`` holds that run's corpus and the other
views that run only.

User SQL is code, so it runs as DuckDB's security guide says: the statement is
parsed with DuckDB's own parser and must be exactly one ``SELECT``; it runs on a
fresh connection where the views were created first and then
``enable_external_access=false`` and ``lock_configuration=true`` were set, so
it cannot read or write files, attach databases, load extensions or change
settings (and, before the lock, a memory and a thread limit); the clock starts
before the statement is parsed and a timer interrupts it after ``timeout``
seconds; a statement over :data:`MAX_SQL_BYTES` is refused unparsed; at most
``limit`` rows and :data:`MAX_RESULT_BYTES` bytes come back. When the workspace
holds several runs, a query without a run scope is refused unless ``all_runs``
is given (every view then has ``run_id``). Refusals and failures raise
:class:`~textcluster.errors.QueryError` (:class:`~textcluster.errors.LimitError`
when a limit was reached).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from textcluster.cluster.outliers import outlier_scores
from textcluster.cluster.versions import run_names
from textcluster.describe.clusters import latest_description
from textcluster.errors import ConfigError, LimitError, QueryError
from textcluster.query.tags import tag_table
from textcluster.store import Workspace, check_id

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
DEFAULT_TIMEOUT = 10.0
#: DuckDB memory limit of a sandboxed connection (it spills to ``<workspace>/tmp/duckdb`` beyond).
MEMORY_LIMIT = os.environ.get("TEXTCLUSTER_SQL_MEMORY_LIMIT", "2GB")


def env_int(name: str, default: int) -> int:
    """An integer > 0 from the environment variable ``name``; ``default`` when unset (a bad
    value is logged and ignored, so that a typo cannot stop the library from importing)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        logger.warning("$%s=%r is not an integer > 0; using %d", name, text, default)
        return default
    return value


#: DuckDB worker threads of a sandboxed connection (``$TEXTCLUSTER_SQL_THREADS``; default: at most 4).
THREADS = env_int("TEXTCLUSTER_SQL_THREADS", min(4, os.cpu_count() or 1))
#: Longest statement accepted, in UTF-8 bytes; longer ones are refused before parsing.
MAX_SQL_BYTES = 100_000
#: Most bytes (Arrow buffers) a :func:`query` result may hold; beyond, it is refused.
MAX_RESULT_BYTES = 128 * 1024 * 1024
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
VIEWS = ("docs", "assignments", "clusters", "samples", "tags")
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


def name_column(labels: np.ndarray, names: dict[int, str]) -> Any:
    """The ``cluster_name`` of each row of ``labels`` (n,) as an Arrow string array (null for
    noise and unnamed clusters), built through a dictionary so a million rows cost one take."""
    n = labels.shape[0]
    if not names:
        return pa.nulls(n, pa.string())
    top = max(max(names), int(labels.max(initial=-1))) + 1
    dictionary = pa.array([names.get(i) for i in range(top)], pa.string())
    lab = np.asarray(labels, dtype=np.int32)
    idx = pa.array(np.maximum(lab, 0), pa.int32(), mask=lab < 0)
    return dictionary.take(idx)


def _assignments_table(ws: Workspace, run_id: str) -> Any:

    d = ws.path(run_id)
    labels = np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")
    n = labels.shape[0]

    def col(arr: np.ndarray | None, dtype: Any) -> Any:
        if arr is None:
            return pa.nulls(n, dtype)
        return pa.array(np.ascontiguousarray(arr), dtype)

    coords = _npy(d / "coords2d.npy")
    dist = _npy(d / "distances.npy")
    score = _npy(d / "outlier_score.npy")
    if score is None and dist is not None:  # runs saved before scores were stored, versions
        score = outlier_scores(np.asarray(labels), np.asarray(dist))
    return pa.table(
        {
            "doc_id": pa.array(np.arange(n, dtype=np.int64)),
            "cluster": col(labels.astype(np.int32, copy=False), pa.int32()),
            "distance": col(dist, pa.float32()),
            "probability": col(_npy(d / "probabilities.npy"), pa.float32()),
            "outlier_score": pa.array(np.ascontiguousarray(score), pa.float32(), from_pandas=True)
            if score is not None else pa.nulls(n, pa.float32()),
            "x": col(None if coords is None else coords[:, 0], pa.float32()),
            "y": col(None if coords is None else coords[:, 1], pa.float32()),
            "cluster_name": name_column(labels, run_names(ws, run_id)),
        }
    )


def _clusters_table(ws: Workspace, runs: list[str]) -> Any:


    cols: dict[str, list[Any]] = {
        k: [] for k in ("run_id", "cluster", "size", "share", "label", "keywords", "cluster_name")
    }
    for rid in runs:
        labels = np.load(ws.file(rid, "labels.npy"), mmap_mode="r")
        counts_all = np.bincount(np.asarray(labels, dtype=np.int64) + 1)  # O(n); index 0 is noise
        ids = np.flatnonzero(counts_all) - 1
        counts = counts_all[ids + 1]
        desc = latest_description(ws, rid)
        by = desc.by_cluster() if desc is not None else {}
        names = run_names(ws, rid)
        for c, n in zip(ids.tolist(), counts.tolist(), strict=True):
            cd = by.get(c)
            cols["run_id"].append(rid)
            cols["cluster"].append(c)
            cols["size"].append(n)
            cols["share"].append(n / max(1, labels.shape[0]))
            cols["label"].append(cd.label if cd else ("noise" if c == -1 else None))
            cols["keywords"].append(list(cd.keywords) if cd else None)
            cols["cluster_name"].append(names.get(c))
    return pa.table(
        {
            "run_id": pa.array(cols["run_id"], pa.string()),
            "cluster": pa.array(cols["cluster"], pa.int32()),
            "size": pa.array(cols["size"], pa.int64()),
            "share": pa.array(cols["share"], pa.float64()),
            "label": pa.array(cols["label"], pa.string()),
            "keywords": pa.array(cols["keywords"], pa.list_(pa.string())),
            "cluster_name": pa.array(cols["cluster_name"], pa.string()),
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


def check_scope(ws: Workspace, run_id: str | None, all_runs: bool = False) -> None:
    """Refuse (:class:`QueryError`, listing the runs) a query over a workspace of several runs
    that names no run: its views would silently mix them. ``all_runs=True`` allows it."""
    if run_id is not None:
        if all_runs:
            raise ConfigError("give run_id (CLI --run) or all_runs (CLI --all-runs), not both")
        return
    if all_runs:
        return
    runs = sorted(m.id for m in ws.list("run"))
    if len(runs) > 1:
        shown = ", ".join(runs[:20]) + (f", ... ({len(runs)} in all)" if len(runs) > 20 else "")
        raise QueryError(
            f"the workspace holds {len(runs)} runs ({shown}) and the views would mix them: "
            "name one with run_id=... (CLI --run RUN_ID), or query them together with "
            "all_runs=True (CLI --all-runs; every view then has a run_id column)"
        )


def _engine_settings(memory_limit: str | None, threads: int | None) -> tuple[str, int]:
    mem = MEMORY_LIMIT if memory_limit is None else str(memory_limit).strip()
    if not _MEMORY_RE.match(mem):  # quoted into a SET statement: only a plain size passes
        raise ConfigError(f"memory_limit={mem!r} should be a size such as '2GB' or '512MiB'")
    n = THREADS if threads is None else threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads={n!r} should be an integer >= 1")
    return mem, n


def connect(
    ws: Workspace,
    run_id: str | None = None,
    sandbox: bool = True,
    *,
    all_runs: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Session:
    """A :class:`Session` whose connection has the views ``docs``, ``assignments``, ``clusters``, ``samples``.

    run_id: scope the views to one run and its corpus (None: the whole workspace).
    all_runs: (without run_id) ``docs`` gets a ``run_id`` column too, one row per document per
    run of its corpus (a corpus without a run: NULL), like the other views.
    sandbox: after the views exist, set the memory limit (``memory_limit``, default
    :data:`MEMORY_LIMIT`) and the thread count (``threads``, default :data:`THREADS`), disable
    file/network access and lock the configuration (always True for user SQL;
    :mod:`textcluster.query.export` uses it too).
    """
    import duckdb

    if run_id is not None:
        check_id(run_id, "run")
    mem, threads = _engine_settings(memory_limit, threads)
    con = duckdb.connect(":memory:")
    keep: list[Any] = []
    try:
        # -- docs
        parts, tag_parts = [], []
        docs_cols: set[str] = set()
        for i, cid in enumerate(_corpora(ws, run_id)):
            check_id(cid, "corpus")  # quoted into the view's SQL below
            src = ds.dataset(str(ws.file(cid, "docs.parquet")), format="parquet")
            keep.append(src)
            docs_cols.update(src.schema.names)
            con.register(f"_docs_{i}", src)
            ours = [c for c in ("corpus_id", "tags") if c in src.schema.names]  # input columns: ours win
            star = f"d.* EXCLUDE ({', '.join(ours)})" if ours else "d.*"
            tt = tag_table(ws, cid)
            if tt.num_rows:
                keep.append(tt)
                con.register(f"_tags_{i}", tt)
                tag_parts.append(f"SELECT '{cid}' AS corpus_id, tag, doc_id FROM _tags_{i}")
                parts.append(
                    f"SELECT {star}, '{cid}' AS corpus_id, t.tags FROM _docs_{i} d LEFT JOIN "
                    f"(SELECT doc_id, list(tag ORDER BY tag) AS tags FROM _tags_{i} GROUP BY doc_id) t "
                    "USING (doc_id)"
                )
            else:
                parts.append(f"SELECT {star}, '{cid}' AS corpus_id, NULL::VARCHAR[] AS tags FROM _docs_{i} d")
        if not parts:
            parts = ["SELECT NULL::BIGINT AS doc_id, NULL::VARCHAR AS text, NULL::VARCHAR AS corpus_id, "
                     "NULL::VARCHAR[] AS tags LIMIT 0"]
        runs = _runs(ws, run_id)
        if all_runs and run_id is None:
            # one row per document per run of its corpus, so that every view carries run_id
            con.execute("CREATE VIEW _docs_all AS " + " UNION ALL BY NAME ".join(parts))
            owner = pa.table({"run_id": pa.array(runs, pa.string()),
                              "corpus_id": pa.array([ws.corpus_of(r) for r in runs], pa.string())})
            keep.append(owner)
            con.register("_run_corpus", owner)
            own = " EXCLUDE (run_id)" if "run_id" in docs_cols else ""
            con.execute(
                f"CREATE VIEW docs AS SELECT d.*{own}, r.run_id FROM _docs_all d "
                "LEFT JOIN _run_corpus r USING (corpus_id)"
            )
        else:
            con.execute("CREATE VIEW docs AS " + " UNION ALL BY NAME ".join(parts))
        # -- assignments
        parts = []
        for i, rid in enumerate(runs):
            check_id(rid, "run")  # quoted into the view's SQL below
            cid = check_id(ws.corpus_of(rid), "corpus")
            t = _assignments_table(ws, rid)
            keep.append(t)
            con.register(f"_asg_{i}", t)
            parts.append(
                f"SELECT doc_id, '{rid}' AS run_id, cluster, distance, probability, outlier_score, x, y, "
                f"'{cid}' AS corpus_id, cluster_name FROM _asg_{i}"
            )
        if not parts:
            parts = [
                "SELECT NULL::BIGINT AS doc_id, NULL::VARCHAR AS run_id, NULL::INTEGER AS cluster, "
                "NULL::FLOAT AS distance, NULL::FLOAT AS probability, NULL::FLOAT AS outlier_score, "
                "NULL::FLOAT AS x, NULL::FLOAT AS y, "
                "NULL::VARCHAR AS corpus_id, NULL::VARCHAR AS cluster_name LIMIT 0"
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
        # -- tags
        con.execute("CREATE VIEW tags AS " + (" UNION ALL ".join(tag_parts) if tag_parts else
                    "SELECT NULL::VARCHAR AS corpus_id, NULL::VARCHAR AS tag, NULL::BIGINT AS doc_id LIMIT 0"))
        if sandbox:
            # bounded memory; a big sort spills under the workspace, not the current folder
            spill = str(ws.root.resolve() / "tmp" / "duckdb").replace("'", "''")
            con.execute(f"SET memory_limit='{mem}'")
            con.execute(f"SET threads={threads:d}")
            con.execute(f"SET temp_directory='{spill}'")
            for s in _SANDBOX_SETTINGS:
                con.execute(s)
    except BaseException:
        con.close()
        raise
    return Session(con, run_id, sandbox, keep)


# -- checking and running user SQL -------------------------------------------------


def check_sql(sql: str, max_sql_bytes: int = MAX_SQL_BYTES) -> str:
    """Return the single SELECT statement in ``sql`` or raise :class:`QueryError`.

    A statement longer than ``max_sql_bytes`` (UTF-8; default :data:`MAX_SQL_BYTES`) is
    refused before it is parsed (:class:`LimitError`): parsing is not interruptible.

    Uses DuckDB's parser (``duckdb.extract_statements``): exactly one statement,
    of type SELECT (this includes ``WITH``, ``VALUES``, ``FROM x``, ``DESCRIBE``,
    ``SHOW``, ``SUMMARIZE``). Everything else (COPY, EXPORT, ATTACH, INSTALL,
    LOAD, SET, PRAGMA, CREATE, INSERT, ...) is refused.
    """
    import duckdb

    if not isinstance(sql, str) or not sql.strip():
        raise QueryError("empty SQL: give one SELECT statement")
    _positive("max_sql_bytes", max_sql_bytes)
    size = len(sql.encode("utf-8", errors="surrogatepass"))
    if size > max_sql_bytes:
        raise LimitError(
            f"the statement is {size:,} bytes, over the limit of {max_sql_bytes:,} bytes "
            "(max_sql_bytes; CLI --max-sql-bytes); long IN (...) lists belong in a table",
            "max_sql_bytes", max_sql_bytes,
        )
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


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} should be a finite number > 0")


def deadline_of(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` at which ``timeout`` seconds from now end (None: never)."""
    if timeout is None:
        return None
    _positive("timeout", timeout)
    return time.monotonic() + float(timeout)


def timeout_error(timeout: float | None) -> LimitError:
    """The error of a query or export stopped at its time limit."""
    return LimitError(
        f"stopped at the time limit of {timeout or 0:g} s (timeout; CLI --timeout): "
        "add filters or a LIMIT, or raise the limit",
        "timeout", timeout or 0,
    )


def _left(deadline: float | None, timeout: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise timeout_error(timeout)
    return left


def _with_timeout(con: Any, deadline: float | None, timeout: float | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on ``con``, interrupting the connection at ``deadline`` (``timeout``: for the message)."""
    import duckdb

    fired = threading.Event()

    def stop() -> None:
        fired.set()
        con.interrupt()

    left = _left(deadline, timeout)
    timer = threading.Timer(left, stop) if left is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        return fn()
    except duckdb.InterruptException as e:
        raise timeout_error(timeout) from e
    except duckdb.PermissionException as e:
        raise QueryError(f"refused by the sandbox: {' '.join(str(e).split())}") from e
    except (duckdb.Error, pa.ArrowException, OSError) as e:  # an Arrow stream reports errors as OSError
        # the timer may fire just after a fetch ends: its interrupt then hits the next fetch
        if fired.is_set() or (deadline is not None and time.monotonic() >= deadline):
            raise timeout_error(timeout) from e
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
    *,
    all_runs: bool = False,
    max_sql_bytes: int = MAX_SQL_BYTES,
    max_result_bytes: int = MAX_RESULT_BYTES,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Any:
    """Run one read-only SELECT over the workspace views; returns a ``pyarrow.Table``.

    limit: at most this many rows come back (default 1000); when more exist
    the table's schema metadata has ``textcluster.truncated = b"true"`` (see
    :func:`is_truncated`). timeout: seconds for the whole call, parsing and building the
    views included (default 10; None: no limit). run_id: scope the views to one run;
    all_runs: allow a workspace of several runs without a scope (see :func:`check_scope`).
    max_sql_bytes: longest statement (default :data:`MAX_SQL_BYTES`); max_result_bytes:
    largest result (default :data:`MAX_RESULT_BYTES`); memory_limit, threads: DuckDB's
    (defaults :data:`MEMORY_LIMIT`, :data:`THREADS`).
    Raises :class:`QueryError` when refused or failing, :class:`LimitError` past a limit.
    """
    deadline = deadline_of(timeout)  # the clock starts before parsing
    if limit < 0:
        raise QueryError(f"limit={limit} should be >= 0")
    _positive("max_result_bytes", max_result_bytes)
    stmt = check_sql(sql, max_sql_bytes)
    check_scope(ws, run_id, all_runs)
    _left(deadline, timeout)
    with connect(ws, run_id=run_id, sandbox=True, all_runs=all_runs, memory_limit=memory_limit,
                 threads=threads) as s:

        def run() -> Any:
            rel = s.con.sql(stmt)
            if rel is None:  # pragma: no cover - check_sql only lets SELECT through
                raise QueryError("the statement returned no rows")
            reader = rel.limit(limit + 1).to_arrow_reader(4096)
            try:
                batches, size = [], 0
                while True:
                    try:
                        b = reader.read_next_batch()
                    except StopIteration:
                        break
                    size += b.nbytes
                    if size > max_result_bytes:
                        raise LimitError(
                            f"the result holds more than {max_result_bytes:,} bytes (max_result_bytes; "
                            "CLI --max-result-bytes): select fewer rows or columns, or export it",
                            "max_result_bytes", max_result_bytes,
                        )
                    batches.append(b)
                return pa.Table.from_batches(batches, schema=reader.schema)
            finally:
                reader.close()

        t = _with_timeout(s.con, deadline, timeout, run)
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
    *,
    deadline: float | None = None,
    all_runs: bool = False,
    max_sql_bytes: int = MAX_SQL_BYTES,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> Iterator[Any]:
    """Stream the result of one checked SELECT as ``pyarrow.RecordBatch`` es (no row cap).

    The first item is the result's ``pyarrow.Schema``; record batches follow. The
    same sandbox and scope rules as :func:`query`. ``timeout`` (seconds, None: none)
    limits the whole stream, from now or from ``deadline`` (a ``time.monotonic()``
    value) when given: a fetch past it is interrupted (:class:`LimitError`).
    """
    if deadline is None:
        deadline = deadline_of(timeout)
    stmt = check_sql(sql, max_sql_bytes)
    check_scope(ws, run_id, all_runs)
    _left(deadline, timeout)
    with connect(ws, run_id=run_id, sandbox=True, all_runs=all_runs, memory_limit=memory_limit,
                 threads=threads) as s:
        reader = _with_timeout(s.con, deadline, timeout, lambda: s.con.sql(stmt).to_arrow_reader(batch_rows))
        try:
            yield reader.schema
            while True:
                try:
                    batch = _with_timeout(s.con, deadline, timeout, reader.read_next_batch)
                except StopIteration:
                    break
                yield batch
        finally:
            reader.close()
