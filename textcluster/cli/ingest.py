"""``textcluster ingest FILE``: read a file into a corpus of the workspace.

Prints the ingest report (``--json``: the whole report as one JSON object).
``--list-fields`` only lists the columns and nested paths of the file.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from textcluster.config import CorpusSpec
from textcluster.errors import ConfigError
from textcluster.ingest import corpus
from textcluster.ingest.readers import FORMATS, GZIP_EXTENSION, extensions_by_format

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"500M"`` -> 524288000; plain digits are bytes; K/M/G/T are powers of 1024."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; use e.g. 500M, 8G or a byte count")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _unescape(sep: str) -> str:
    return sep.replace("\\n", "\n").replace("\\t", "\t")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``ingest`` subcommand to ``sub``."""
    by_format = extensions_by_format()
    p = sub.add_parser(
        "ingest",
        parents=[common],
        help=f"read a {'/'.join(f.upper() for f in FORMATS)} file (or {GZIP_EXTENSION}) into a corpus",
        description="Read a file into a corpus of the workspace; bad rows are listed with reasons.",
    )
    p.add_argument("file", metavar="FILE", help=f"input file ({' '.join(e for exts in by_format.values() for e in exts)}, "
                   f"optionally {GZIP_EXTENSION})")
    p.add_argument(
        "--text-field", action="append", default=[], metavar="F",
        help="column or nested path (request.messages[0].content) holding the text; repeat to join "
        "several; default: the likeliest text column",
    )
    p.add_argument("--id-field", metavar="F", help="column holding a document id (kept as source_id)")
    p.add_argument("--label-field", metavar="F", help="column holding a class label (evaluation only)")
    p.add_argument("--format", choices=FORMATS,
                   help="input format (default: from the file name: "
                   + "; ".join(f"{' '.join(exts)} -> {f}" for f, exts in by_format.items()) + ")")
    p.add_argument("--separator", default="\n", help="joins several text fields (default: newline; \\n and \\t understood)")
    p.add_argument("--drop-duplicates", action="store_true",
                   help="reject exact duplicate texts instead of flagging them")
    p.add_argument("--encoding", choices=["auto", "latin-1"], default="auto",
                   help="auto: UTF-8 (BOM optional) or UTF-16 with BOM; latin-1: fall back to latin-1 "
                   "when the file is not valid UTF-8")
    p.add_argument("--max-rows", type=int, default=CorpusSpec.max_rows, help="refuse files with more rows")
    p.add_argument("--max-bytes", type=parse_size, default=CorpusSpec.max_bytes,
                   help="refuse files with more (decompressed) bytes, e.g. 500M, 8G (default 8G)")
    p.add_argument("--max-ratio", type=float, default=CorpusSpec.max_ratio,
                   help="refuse a .gz file inflating past this many times its size (after 64 MiB; "
                   f"a decompression bomb; default {CorpusSpec.max_ratio:g})")
    p.add_argument("--list-fields", action="store_true",
                   help="only list the columns and nested paths of FILE; store nothing")
    p.set_defaults(handler=handle)


def spec_from_args(args: argparse.Namespace) -> CorpusSpec:
    """The :class:`CorpusSpec` the command line asks for."""
    if args.max_rows < 1:
        raise ConfigError(f"--max-rows {args.max_rows} should be >= 1")
    return CorpusSpec(
        text_fields=tuple(args.text_field),
        id_field=args.id_field,
        label_field=args.label_field,
        format=args.format,
        separator=_unescape(args.separator),
        drop_duplicates=args.drop_duplicates,
        encoding=args.encoding,
        max_rows=args.max_rows,
        max_bytes=args.max_bytes,
        max_ratio=args.max_ratio,
    ).validate()


def handle(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Run ingest (or list fields) and return (report dict, human text)."""

    spec = spec_from_args(args)
    if args.list_fields:
        fields = corpus.list_fields(args.file, spec)
        return {"file": args.file, "fields": fields}, "\n".join(fields)
    report = corpus.ingest(args.file, spec, ws, progress=ui.progress())
    return report.to_dict(), _text(report)


def _text(r: Any) -> str:
    lines = [
        f"corpus {r.corpus_id}{' (cached)' if r.cached else ''}: {r.source} ({r.format}, {r.encoding})",
        f"rows read {r.rows_read}, kept {r.kept}, rejected {r.rejected}, duplicates {r.duplicates}",
        f"text from: {', '.join(r.text_fields)}",
    ]
    lines += [f"note: {n}" for n in r.notes]
    if r.rejections:
        lines.append("first rejections:")
        lines += [f"  {x['reason']}" for x in r.rejections[:10]]
        if r.rejected > 10:
            lines.append(f"  ... {r.rejected - 10} more in corpus/{r.corpus_id}/rejections.parquet")
    return "\n".join(lines)
