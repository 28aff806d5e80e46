"""``textcluster serve``: the same operations over HTTP (FastAPI + uvicorn).

:class:`~textcluster.serve.service.Service` loads the served runs and their models once and
runs batched inference on one thread; :func:`~textcluster.serve.app.build_asgi` is the
application (FastAPI behind a token and body-size guard); :func:`serve` checks the address,
loads everything, then runs uvicorn until interrupted. See docs/serve.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from textcluster.serve.app import ENV_TOKEN, build_asgi, check_token, create_app, is_loopback
from textcluster.serve.service import ServeLimits, Service
from textcluster.store import Workspace

__all__ = ["ENV_TOKEN", "ServeLimits", "Service", "build_asgi", "check_token", "create_app", "is_loopback", "serve"]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve(
    ws: Workspace,
    runs: Sequence[str],
    vocab_runs: Sequence[str] = (),
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    limits: ServeLimits | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``runs`` (and vocabulary runs) on ``host:port`` until interrupted.

    The token is read from ``$TEXTCLUSTER_API_TOKEN``; without one a non-loopback ``host`` is
    refused (:class:`~textcluster.errors.ConfigError`) before anything loads. Every run is
    checked and its model loaded before the port opens. ``on_ready(url)`` is called then.
    """
    import uvicorn

    token = os.environ.get(ENV_TOKEN) or None
    check_token(token, host)
    service = Service(ws, list(runs), list(vocab_runs), limits)
    app = build_asgi(service, token)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    if on_ready is not None:
        on_ready(url)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    timeout_graceful_shutdown=5)
    finally:
        service.close()
