"""``textcluster rm ID [--dry-run] [--yes]``: remove an artifact and everything derived from it.

It first lists what will go (kind, id and a short label, children first: the
samples and descriptions of a run, the runs of an embedding, ...), then asks
``Remove these N artifacts? [y/N]`` on the terminal. ``--yes`` skips the question
(and is required when stdin is not a terminal, e.g. in a script); ``--dry-run``
only lists. ``--json`` prints ``{"removed": [...]}`` (with ``--dry-run``:
``{"would_remove": [...]}``), each entry ``{"kind", "id", "label"}``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from textcluster.cli import artifact_id
from textcluster.errors import ConfigError
from textcluster.store import Workspace


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``rm`` subcommand to ``sub``."""
    p = sub.add_parser(
        "rm", parents=[common], help="remove an artifact and everything derived from it",
        description="Remove an artifact (cor-, emb-, run-, dsc-, smp-) and everything derived from "
        "it, children first, after listing them and asking for confirmation.",
    )
    p.add_argument("artifact_id", metavar="ID", type=artifact_id(), help="id of any artifact (cor-..., run-..., ...)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("-y", "--yes", action="store_true",
                   help="remove without asking (required when stdin is not a terminal)")
    p.set_defaults(handler=handle)


def _lines(rows: list[dict[str, str]]) -> str:
    return "\n".join(f"  {r['kind']:<11} {r['id']}  {r['label']}".rstrip() for r in rows)


def _n(rows: list[dict[str, str]]) -> str:
    return f"{len(rows)} artifact{'s' if len(rows) != 1 else ''}"


def handle(args: argparse.Namespace, ws: Workspace, ui: Any) -> tuple[dict[str, Any], str]:
    """List, confirm (unless ``--yes``) and remove; see the module docstring."""
    rows = ws.removal_plan(args.artifact_id)
    if args.dry_run:
        return {"would_remove": rows}, f"would remove {_n(rows)} (children first):\n{_lines(rows)}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"rm {args.artifact_id} would remove {_n(rows)} and stdin is not a terminal to confirm: "
                "pass --yes to remove them (or --dry-run to only list them)"
            )
        sys.stderr.write(f"{args.artifact_id} and what was derived from it ({_n(rows)}):\n{_lines(rows)}\n")
        sys.stderr.write(f"Remove these {_n(rows)}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return {"removed": []}, "nothing removed"
    removed = set(ws.remove(args.artifact_id, expected=[r["id"] for r in rows]))
    rows = [r for r in rows if r["id"] in removed]
    return {"removed": rows}, f"removed {_n(rows)}:\n{_lines(rows)}"
