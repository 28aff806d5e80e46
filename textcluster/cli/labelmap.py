"""``textcluster label-map RUN_ID FILE``: name a run's clusters from a map file (docs/vocab.md).

FILE is JSON (``{"3": "ANIMAL", "ANIMAL": ["dog", "cat"]}``) or CSV (header ``cluster,label`` or
``label,terms``). The result is a run version (its manifest names the parent and the edit);
``--json`` prints ``run_id`` and ``parent``. An invalid map is one ``error:`` line naming the line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from textcluster.cli import artifact_id, positive_int
from textcluster.labelmap import MAX_MAP_BYTES, apply_label_map, read_label_map


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``label-map``."""
    p = sub.add_parser(
        "label-map", parents=[common], help="label a run's clusters from a CSV/JSON map (writes a run version)",
        description="Apply a label map to a run (text or vocabulary): cluster id or name -> label, or label -> "
        "seed terms (the clusters holding them get the label). Writes a named run version; unmapped clusters "
        "keep their id. The same map on the same run is the same version.",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"), help="the run to label (run-...)")
    p.add_argument("file", metavar="FILE", type=Path, help="label map: .json or .csv")
    p.add_argument("--max-bytes", type=positive_int, default=MAX_MAP_BYTES,
                   help=f"refuse map files larger than this (default {MAX_MAP_BYTES:,} bytes)")
    p.set_defaults(handler=handle_label_map)


def handle_label_map(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Parse, check and apply the map."""
    ws.manifest(args.run_id)  # a clear error for an unknown run before reading the file
    res = apply_label_map(ws, args.run_id, read_label_map(args.file, args.max_bytes))
    data = res.to_dict()
    lines = [f"run {res.run_id}{' (cached)' if res.cached else ''}: version of {res.parent} with "
             f"{len(res.labels)} labelled clusters, {len(res.unmapped)} unmapped"]
    lines += [f"  {c}: {lab}" for c, lab in sorted(res.labels.items())]
    lines += [f"note: {n}" for n in res.notes]
    return data, "\n".join(lines)
