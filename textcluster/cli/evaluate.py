"""CLI: ``evaluate`` (how good a saved run is, against labels and without them)."""

from __future__ import annotations

import argparse
from typing import Any

from textcluster.cli import artifact_id
from textcluster.cluster.evaluate import (
    DEFAULT_LABEL_FIELD,
    MAX_CONTINGENCY_SIDE,
    METRICS_SPACE,
    METRICS_SPACE_TEXT,
    evaluate_run,
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate", parents=[common], help="score a run against a label field of its corpus, and without labels",
        description="ACC, NMI, ARI and V-measure against a column of the run's corpus (the rows with a "
        "value only), label-free scores in the embedding space (silhouette, Davies-Bouldin on a seeded "
        "sample; size spread; noise share: the numbers the run manifest holds) and the cluster-by-label "
        "table. Reads the run; writes nothing.",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"), help="id of a run (run-...)")
    p.add_argument("--label-field", metavar="F", default=None,
                   help=f"corpus column to score against: any column of its docs.parquet "
                   f"(default: {DEFAULT_LABEL_FIELD!r} when the corpus has it)")
    p.add_argument("--max-side", type=int, default=MAX_CONTINGENCY_SIDE,
                   help=f"clusters and labels kept in the cluster-by-label table, largest first "
                   f"(default {MAX_CONTINGENCY_SIDE})")
    p.set_defaults(handler=handle_evaluate)


def handle_evaluate(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Evaluate RUN_ID; returns (JSON data, human text)."""
    ev = evaluate_run(ws, args.run_id, label_field=args.label_field, max_side=args.max_side)
    lines = [f"{ev.run_id}: {ev.n:,} rows, {ev.k} clusters"]
    if ev.label_field is None:
        lines.append(f"against labels: - (the corpus has no {DEFAULT_LABEL_FIELD!r} column; name one with --label-field)")
    elif ev.supervised is None:
        lines.append(f"against {ev.label_field!r}: - (no row has a value)")
    else:
        lines.append(f"against {ev.label_field!r} ({ev.n_labelled:,} of {ev.n:,} rows have a value, "
                     f"{ev.classes} classes): " + " ".join(f"{k}={v:.3f}" for k, v in ev.supervised.items()))
    d = ev.diagnostics
    lines.append(f"label-free ({METRICS_SPACE} space: {METRICS_SPACE_TEXT}):")
    lines.append("  " + " ".join(
        f"{k}={_fmt(d.get(k), pct)}" for k, pct in (
            ("silhouette", False), ("davies_bouldin", False), ("size_cv", False),
            ("size_min_share", True), ("size_max_share", True), ("noise", True))))
    if ev.contingency is not None:
        t = ev.contingency
        lines.append("cluster  rows  main label (share of the cluster)"
                     + (f"  [the {args.max_side} largest clusters and labels]" if t.truncated else ""))
        for i, c in enumerate(t.clusters):
            row = t.counts[i]
            j = int(row.argmax())
            lines.append(f"{c:>7}  {int(row.sum()):>4}  {t.labels[j]} ({row[j] / row.sum():.0%})")
    return ev.to_dict(), "\n".join(lines)


def _fmt(v: float | None, pct: bool) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if pct else f"{v:.3f}"
