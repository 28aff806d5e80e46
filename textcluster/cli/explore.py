"""CLI: ``describe``, ``sample``, ``query`` and ``export`` (exploring and taking out a run)."""

from __future__ import annotations

import argparse
from typing import Any

import pyarrow.dataset as ds

from textcluster.cli import artifact_id, positive_int, seconds
from textcluster.config import SamplingPolicy
from textcluster.describe.clusters import describe
from textcluster.describe.llm import LLMSettings
from textcluster.describe.sampling import plan, sample
from textcluster.errors import ConfigError
from textcluster.query import export as _exp
from textcluster.query import sql as _sql
from textcluster.query.export import export
from textcluster.query.sql import is_truncated, query

PREVIEW_ROWS = 20


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the describe, sample, query and export subcommands."""
    p = sub.add_parser(
        "describe", parents=[common], help="keywords, labels and examples of a run's clusters",
        description="Keywords (c-TF-IDF), a short label and the examples nearest / farthest from "
        "each centre; optional LLM labels. Cached as a description artifact.",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"))
    p.add_argument("--top-n", type=int, default=10, help="keywords per cluster (default 10)")
    p.add_argument("--examples", type=int, default=5, help="nearest and farthest examples (default 5)")
    p.add_argument("--llm", choices=("off", "topics", "single"), default="off",
                   help="LLM labels: topics (several labels) or single (topic + educational score 0-5)")
    p.add_argument("--llm-base-url", default=None, help="OpenAI-compatible base URL ($TEXTCLUSTER_LLM_BASE_URL)")
    p.add_argument("--llm-model", default=None, help="model name ($TEXTCLUSTER_LLM_MODEL)")
    p.add_argument("--llm-local-model", default=None, help="path of a local transformers model instead")
    p.add_argument("--llm-timeout", type=seconds, default=30.0, help="seconds per LLM request (default 30)")
    p.set_defaults(handler=_describe)

    p = sub.add_parser(
        "sample", parents=[common], help="draw a representative subset of a run",
        description="Share a budget of N rows across clusters and pick rows inside each; "
        "stored as a sample artifact (or only previewed with --preview).",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"))
    p.add_argument("--size", type=positive_int, required=True, help="total rows N (met exactly when enough exist)")
    p.add_argument("--allocation", choices=("equal", "proportional", "sqrt"), default="sqrt")
    p.add_argument("--within", choices=("random", "diverse", "nearest"), default="random")
    p.add_argument("--noise", default="exclude", help="exclude | include | quota:F (F in 0..1)")
    p.add_argument("--clusters", default=None, help="only these cluster ids or labels, comma separated")
    p.add_argument("--exclude-clusters", default=None, help="never these cluster ids or labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preview", action="store_true", help="show the per-cluster quotas, draw nothing")
    p.set_defaults(handler=_sample)

    p = sub.add_parser(
        "query", parents=[common], help="read-only SQL over docs, assignments, clusters, samples",
        description="One SELECT over the views docs, assignments, clusters and samples, in a "
        "sandbox (no files, no settings), with a row limit and a time limit.",
    )
    p.add_argument("sql", metavar="SQL")
    p.add_argument("--limit", type=positive_int, default=PREVIEW_ROWS, help=f"rows shown (default {PREVIEW_ROWS})")
    p.add_argument("--timeout", type=seconds, default=_sql.DEFAULT_TIMEOUT,
                   help=f"seconds before the query is stopped, parsing included (default {_sql.DEFAULT_TIMEOUT:g})")
    p.add_argument("--max-result-bytes", type=positive_int, default=_sql.MAX_RESULT_BYTES,
                   help=f"largest result, in bytes (default {_sql.MAX_RESULT_BYTES:,})")
    _scope_and_engine(p, "scope")
    p.set_defaults(handler=_query)

    p = sub.add_parser(
        "export", parents=[common], help="export a run, a sample or a query with provenance",
        description="Write CSV, JSONL or Parquet plus <out>.provenance.json.",
    )
    p.add_argument("--run", default=None, type=artifact_id("run"),
                   help="a run: all docs with their cluster; with --sql: the run the views are scoped to")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--sample", default=None, type=artifact_id("sample"),
                     help="a sample: the sampled docs with cluster and rank")
    src.add_argument("--sql", default=None, help="one SELECT over the workspace views")
    p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default=None,
                   help="default: from --out's suffix")
    p.add_argument("--out", required=True, help="output file (outside the workspace)")
    p.add_argument("--timeout", type=seconds, default=_exp.EXPORT_TIMEOUT,
                   help=f"seconds for the whole export (default {_exp.EXPORT_TIMEOUT:g})")
    p.add_argument("--max-rows", type=positive_int, default=_exp.EXPORT_MAX_ROWS,
                   help=f"most rows (default {_exp.EXPORT_MAX_ROWS:,})")
    p.add_argument("--max-bytes", type=positive_int, default=_exp.EXPORT_MAX_BYTES,
                   help=f"largest file, in bytes (default {_exp.EXPORT_MAX_BYTES:,})")
    p.add_argument("--raw-csv", action="store_true",
                   help="write CSV cells as they are (default: a cell starting with = + - @ tab CR gets a leading ')")
    _scope_and_engine(p, None)
    p.set_defaults(handler=_export)


def _scope_and_engine(p: Any, run_dest: str | None) -> None:
    """--run (for query), --all-runs, --max-sql-bytes, --memory-limit, --threads."""
    if run_dest is not None:
        p.add_argument("--run", dest=run_dest, default=None, type=artifact_id("run"),
                       help="scope the views to one run (needed when the workspace holds several)")
    p.add_argument("--all-runs", action="store_true",
                   help="query every run together (every view then has run_id)")
    p.add_argument("--max-sql-bytes", type=int, default=_sql.MAX_SQL_BYTES,
                   help=f"longest statement, in bytes (default {_sql.MAX_SQL_BYTES:,})")
    p.add_argument("--memory-limit", default=None,
                   help=f"DuckDB memory limit such as 2GB (default {_sql.MEMORY_LIMIT})")
    p.add_argument("--threads", type=int, default=None,
                   help=f"DuckDB threads (default {_sql.THREADS})")


# -- handlers -------------------------------------------------------------------


def _describe(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:

    llm = None
    if args.llm != "off":

        llm = LLMSettings.from_env(mode=args.llm, base_url=args.llm_base_url, model=args.llm_model,
                                   local_model=args.llm_local_model, timeout=args.llm_timeout)
    d = describe(ws, args.run_id, top_n=args.top_n, examples=args.examples, llm=llm, progress=ui.progress())
    data = d.to_dict()
    data["cached"] = d.cached
    texts = _texts_of(ws, args.run_id, [c.nearest[0] for c in d.clusters if c.nearest])
    lines = [f"{d.description_id} ({len(d.clusters)} clusters{', cached' if d.cached else ''})"]
    for c in d.clusters:
        lines.append(f"[{c.cluster}] {c.label}  (n={c.size})")
        lines.append("    keywords: " + ", ".join(c.keywords))
        if c.llm:
            got = c.llm.get("topics") if c.llm.get("ok") else f"failed: {c.llm.get('error')}"
            lines.append(f"    llm: {got}" + (f" score={c.llm['score']}" if c.llm.get("score") is not None else ""))
        if c.nearest:
            lines.append("    e.g.: " + _short(texts.get(c.nearest[0], "")))
    return data, "\n".join(lines)


def _texts_of(ws: Any, run_id: str, doc_ids: list[int]) -> dict[int, str]:
    if not doc_ids:
        return {}

    t = ds.dataset(str(ws.file(ws.corpus_of(run_id), "docs.parquet"))).to_table(
        columns=["doc_id", "text"], filter=ds.field("doc_id").isin(doc_ids)
    )
    return dict(zip(t.column("doc_id").to_pylist(), t.column("text").to_pylist(), strict=True))


def _short(s: str, n: int = 100) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def _id_list(s: str | None) -> tuple[int | str, ...] | None:
    if s is None:
        return None
    out: list[int | str] = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            out.append(part)
    return tuple(out)


def parse_noise(s: str) -> tuple[str, float]:
    """``exclude`` | ``include`` | ``quota:F`` -> (noise, noise_quota)."""
    if s in ("exclude", "include"):
        return s, 0.0
    if s.startswith("quota:"):
        try:
            f = float(s.split(":", 1)[1])
        except ValueError:
            f = -1.0
        if 0.0 <= f <= 1.0:
            return "quota", f
    raise ConfigError(f"--noise {s!r} should be exclude, include or quota:F with F in [0, 1]")


def _sample(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:

    noise, quota = parse_noise(args.noise)
    policy = SamplingPolicy(
        size=args.size, allocation=args.allocation, within=args.within, noise=noise, noise_quota=quota,
        clusters=_id_list(args.clusters), exclude_clusters=_id_list(args.exclude_clusters) or (),
        seed=args.seed,
    ).validate()
    if args.preview:
        q = plan(ws, args.run_id, policy)
        n = sum(q.values())
        data = {"sample_id": None, "preview": True, "run_id": args.run_id, "n": n,
                "per_cluster": {str(k): v for k, v in q.items()}, "policy": policy.to_dict()}
        text = f"preview: {n} rows from {len(q)} groups\n" + _quota_lines(q)
        return data, text
    r = sample(ws, args.run_id, policy, progress=ui.progress())
    data = {"sample_id": r.sample_id, "preview": False, "run_id": r.run_id, "n": r.n,
            "per_cluster": {str(k): v for k, v in r.per_cluster.items()}, "policy": policy.to_dict(),
            "cached": r.cached}
    text = f"{r.sample_id}: {r.n} rows{' (cached)' if r.cached else ''}\n" + _quota_lines(r.per_cluster)
    return data, text


def _quota_lines(q: dict[int, int]) -> str:
    return "\n".join(f"  cluster {k:>4}: {v}" for k, v in q.items())


def _query(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:

    t = query(ws, args.sql, limit=args.limit, timeout=args.timeout, run_id=args.scope, all_runs=args.all_runs,
              max_sql_bytes=args.max_sql_bytes, max_result_bytes=args.max_result_bytes,
              memory_limit=args.memory_limit, threads=args.threads)
    trunc = is_truncated(t)
    data = {"columns": t.schema.names, "rows": t.to_pylist(), "n": t.num_rows, "truncated": trunc}
    df = t.to_pandas()
    text = df.to_string(index=False, max_colwidth=60) if t.num_rows else "(no rows)"
    if trunc:
        text += f"\n... more rows; showing the first {args.limit} (raise --limit or use export)"
    return data, text


def _export(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:

    if not (args.run or args.sample or args.sql):
        raise ConfigError("give one of --run, --sample, --sql (--run with --sql scopes the query)")
    if args.sample and args.run:
        raise ConfigError("give --run or --sample, not both")
    if args.all_runs and args.sql is None:
        raise ConfigError("--all-runs goes with --sql")
    r = export(ws, args.out, args.format, run_id=args.run, sample_id=args.sample, sql=args.sql,
               timeout=args.timeout, max_rows=args.max_rows, max_bytes=args.max_bytes, raw_csv=args.raw_csv,
               all_runs=args.all_runs, max_sql_bytes=args.max_sql_bytes,
               memory_limit=args.memory_limit, threads=args.threads)
    data = {"path": str(r.path), "provenance": str(r.provenance_path), "rows": r.rows,
            "columns": r.columns, "format": r.format}
    return data, f"wrote {r.rows} rows to {r.path} (provenance: {r.provenance_path.name})"
