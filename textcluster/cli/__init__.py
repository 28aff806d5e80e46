"""The ``textcluster`` command line: one subcommand per stage.

Every subcommand accepts ``--workspace DIR`` (default ``./workspace`` or
``$TEXTCLUSTER_WORKSPACE``) and ``--json`` (one JSON object on stdout). On
unusable input it exits with code 2 and prints one line starting with
``error:`` to stderr: a refused value, a missing artifact, and operating-system
errors too (a full or read-only disk, a file name too long: the line names the path
and the reason). Limits and timeouts are checked by argparse (:func:`seconds`,
:func:`positive_int`) before anything runs.

Subcommands live in sibling modules (``ingest.py``, ``embed.py``, ...), each
with a ``register(subparsers, common)`` function that adds its parsers and sets
``handler``. A handler takes ``(args, workspace, ui)`` and returns
``(data, text)``: ``data`` is printed as JSON with ``--json``, ``text`` otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textcluster.errors import IdError, TextclusterError
from textcluster.progress import Progress, ProgressFn
from textcluster.store import Workspace, check_id, default_workspace

# Modules under textcluster.cli that register subcommands, in help order.
COMMAND_MODULES = (
    "ingest", "embed", "cluster", "explore", "evaluate", "rm", "edit", "compare", "tag",
    "vocab", "labelmap", "serve",
)

EXIT_USAGE = 2


class UI:
    """What a handler may use to talk to the user: a progress bar on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bars: dict[str, Any] = {}

    def progress(self) -> ProgressFn | None:
        """A progress callback that draws one tqdm bar per stage on stderr (None when quiet)."""
        if self.quiet or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        def cb(p: Progress) -> None:
            bar = self._bars.get(p.stage)
            if bar is None:
                bar = self._bars[p.stage] = tqdm(total=p.total or None, desc=p.stage, file=sys.stderr)
            if p.total and bar.total != p.total:
                bar.total = p.total
            bar.n = p.done
            if p.message:
                bar.set_postfix_str(p.message, refresh=False)
            bar.refresh()

        return cb

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def artifact_id(kind: str | None = None) -> Callable[[str], str]:
    """An argparse ``type=`` accepting only a full artifact id (of ``kind``, a key of
    :data:`textcluster.store.KINDS`, when given), checked by :func:`textcluster.store.check_id`;
    anything else is the usual one ``error:`` line naming the text and the grammar, exit 2."""

    def parse(text: str) -> str:
        try:
            return check_id(text, kind)
        except IdError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = f"{kind or 'artifact'} id"
    return parse


def seconds(text: str) -> float:
    """An argparse ``type=`` for a time limit: a finite number of seconds above 0 (``inf``,
    ``nan``, ``0`` and negatives are one ``error:`` line, exit 2, before anything runs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} should be a finite number of seconds above 0, e.g. 30")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type=`` for a count or a limit: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} should be a whole number of at least 1")
    return value


def _shorten(text: str, n: int = 200) -> str:
    return text if len(text) <= n else text[: n // 2 - 2] + " ... " + text[-(n // 2 - 3):]


def os_error_message(e: OSError) -> str:
    """An operating-system error as one line naming the path(s) and the reason (no traceback):
    ``cannot use '/ro/out.csv': [Errno 30] Read-only file system``."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno is not None and e.strerror:
        reason = f"[Errno {e.errno}] {reason}"
    paths = [os.fsdecode(f) for f in (e.filename, e.filename2) if f is not None]
    if not paths:
        return reason
    return f"cannot use {' -> '.join(repr(_shorten(p)) for p in paths)}: {reason}"


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="workspace folder (default: $TEXTCLUSTER_WORKSPACE or ./workspace)",
    )
    common.add_argument("--json", action="store_true", help="print a JSON result on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    return common


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """A usage mistake is one ``error:`` line (with where to find the usage), exit code 2."""
        text = " ".join(message.split())
        print(f"error: {text} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by the docs)."""
    common = _common_parser()
    parser = _Parser(
        prog="textcluster",
        description="See what is inside a text corpus, cluster it and export a representative subset.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"textcluster.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"textcluster.cli.{name}":
                continue  # that stage is not built yet
            raise
        mod.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``textcluster`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ws = Workspace(args.workspace if args.workspace is not None else default_workspace())
    ws.sweep_at_start()  # leftovers of killed processes (at most hourly; one stat otherwise)
    ui = UI(quiet=args.json)
    try:
        data, text = args.handler(args, ws, ui)
    except TextclusterError as e:
        ui.close()
        msg = " ".join(str(e).split())
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a full or read-only disk, a name too long, a path under /proc, ...
        ui.close()
        print(f"error: {' '.join(os_error_message(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        ui.close()
        print("error: interrupted", file=sys.stderr)
        return 130
    ui.close()
    if args.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_default) + "\n")
    elif text:
        sys.stdout.write(text.rstrip("\n") + "\n")
    return 0


def _default(o: Any) -> Any:
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
