"""``textcluster serve``: label new texts and terms over HTTP (docs/serve.md).

``serve --run RUN_ID [--run RUN_ID ...] [--vocab-run RUN_ID] [--host 127.0.0.1] [--port 8000]
[--max-texts 1000] [--max-bytes 1048576] [--max-examples 20] [--max-batch 256]
[--batch-wait-ms 5]``. Binding a
non-loopback host needs ``$TEXTCLUSTER_API_TOKEN`` (refused at start otherwise: one ``error:``
line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from textcluster.cli import artifact_id, positive_int
from textcluster.serve import ServeLimits, serve


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} should be between 1 and 65535")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} should be a whole number of at least 0")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` subcommand."""
    d = ServeLimits()
    p = sub.add_parser(
        "serve", parents=[common], help="serve runs over HTTP: POST /assign, POST /label-terms",
        description="Load the runs' models once and answer POST /assign {\"texts\": [...]}, POST /label-terms "
        "{\"terms\": [...]} (vocabulary runs), GET /runs, GET /health; OpenAPI docs at /docs. Binds 127.0.0.1 "
        "by default; any other address needs $TEXTCLUSTER_API_TOKEN (then every request needs "
        "'Authorization: Bearer <token>').",
    )
    p.add_argument("--run", action="append", default=[], type=artifact_id("run"), metavar="RUN_ID",
                   help="a run that /assign labels with (repeatable; the first is the default)")
    p.add_argument("--vocab-run", action="append", default=[], type=artifact_id("run"), metavar="RUN_ID",
                   help="a vocabulary run (textcluster vocab) that /label-terms uses (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    p.add_argument("--max-texts", type=positive_int, default=d.max_texts,
                   help=f"texts or terms per request; more is 413 (default {d.max_texts})")
    p.add_argument("--max-bytes", type=positive_int, default=d.max_bytes,
                   help=f"request body bytes, checked before parsing; more is 413 (default {d.max_bytes})")
    p.add_argument("--max-examples", type=_non_negative, default=d.max_examples,
                   help=f"largest 'examples' a request may ask per text (default {d.max_examples})")
    p.add_argument("--max-batch", type=positive_int, default=d.max_batch,
                   help=f"texts the inference thread encodes together across requests (default {d.max_batch})")
    p.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                   help="how long a batch that is not full waits for more requests, in milliseconds "
                        f"(default {d.batch_wait_ms:g}; 0: no wait)")
    p.set_defaults(handler=handle_serve)


def handle_serve(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Serve until interrupted; returns when the server stops."""
    limits = ServeLimits(max_texts=args.max_texts, max_bytes=args.max_bytes,
                         max_examples=args.max_examples, max_batch=args.max_batch,
                         batch_wait_ms=args.batch_wait_ms)

    def ready(url: str) -> None:
        print(f"textcluster serve: listening on {url} (docs: {url}/docs); Ctrl-C stops", file=sys.stderr, flush=True)

    serve(ws, args.run, args.vocab_run, host=args.host, port=args.port, limits=limits, on_ready=ready)
    return {"stopped": True}, "stopped"
