"""``textcluster compare RUN_A RUN_B``: ARI, NMI, matched clusters and what split, merged,
appeared and vanished between two runs of the same corpus (see :mod:`textcluster.cluster.compare`).

``--json`` prints ``run_a``, ``run_b``, ``n``, ``ari``, ``nmi``, ``overlap``, ``contingency``
(``rows``: clusters of A, ``cols``: clusters of B, ``counts``, ``matched``: the number of
leading diagonal pairs), ``changes`` (``kind``, ``a``, ``b``, ``docs``, ``text``) and the names.
"""

from __future__ import annotations

import argparse
from typing import Any

from textcluster.cli import artifact_id, positive_int
from textcluster.cluster.compare import OVERLAP, compare_runs
from textcluster.errors import ConfigError

#: Rows and columns of the contingency the text output shows.
SHOW = 12


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < v <= 1):
        raise argparse.ArgumentTypeError(f"{text!r} should be a share in (0, 1], e.g. 0.5")
    return v


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``compare`` subcommand."""
    p = sub.add_parser(
        "compare", parents=[common], help="compare two runs of one corpus (ARI, NMI, splits, merges)",
        description="Agreement of two runs of the same corpus (two methods, two k, a run and its edit): "
        "ARI and NMI, the contingency with matching clusters on the diagonal, and a plain list of "
        "what split, merged, appeared and vanished.",
    )
    p.add_argument("run_a", metavar="RUN_A", type=artifact_id("run"))
    p.add_argument("run_b", metavar="RUN_B", type=artifact_id("run"))
    p.add_argument("--overlap", type=_share, default=OVERLAP,
                   help=f"share of a cluster that links it in a split or merge (default {OVERLAP})")
    p.add_argument("--show", type=positive_int, default=SHOW,
                   help=f"rows and columns of the contingency printed (default {SHOW}; --json has all)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    if args.run_a == args.run_b:
        raise ConfigError(f"give two different runs; got {args.run_a} twice")
    c = compare_runs(ws, args.run_a, args.run_b, overlap=args.overlap)
    lines = [f"A {c.run_a}  vs  B {c.run_b}: {c.n:,} documents",
             f"ARI {c.ari:.4f}  NMI {c.nmi:.4f}  ({c.matched} matched pairs)"]
    if c.changes:
        lines.append("changes:")
        lines += [f"  {x.kind:<9} {x.text}" for x in c.changes]
    else:
        lines.append("no cluster split, merged, appeared or vanished")
    s = args.show
    rows, cols = c.rows[:s], c.cols[:s]
    width = max(6, *(len(f"{v:,}") for v in c.counts[:s, :s].ravel().tolist()), *(len(str(x)) for x in cols))
    lines.append("contingency (rows: A, columns: B; matches on the diagonal):")
    lines.append(" " * 8 + "".join(f"{b:>{width + 1}}" for b in cols))
    for i, a in enumerate(rows):
        lines.append(f"{a:>8}" + "".join(f"{v:>{width + 1},}" for v in c.counts[i, :s].tolist()))
    if len(c.rows) > s or len(c.cols) > s:
        lines.append(f"... {len(c.rows)} x {len(c.cols)} in all (raise --show, or --json)")
    return c.to_dict(), "\n".join(lines)
