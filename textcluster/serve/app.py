"""The FastAPI application of ``textcluster serve`` and the guards around it.

Endpoints (OpenAPI docs at ``/docs``): ``POST /assign``, ``POST /label-terms``, ``GET /runs``,
``GET /health``. Errors: 401 (token missing or wrong, when one is set), 404 (unknown run),
413 (body over ``max_bytes``, checked before parsing; or more than ``max_texts`` texts),
422 (malformed JSON, wrong types, empty texts; ``detail`` names the field).

:func:`build_asgi` wraps the FastAPI app in one plain ASGI layer that checks the token and
the body size before FastAPI reads anything, so an oversized or unauthenticated request is
refused without being parsed.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models (defined inside
# create_app, where pydantic is imported lazily) from the annotations at definition time.
import hmac
import ipaddress
import json
from typing import Annotated, Any

from textcluster.errors import ConfigError, TextclusterError
from textcluster.serve.service import Service, TooMany, UnknownRun

ENV_TOKEN = "TEXTCLUSTER_API_TOKEN"


def create_app(service: Service) -> Any:
    """The FastAPI app answering for ``service`` (no guards: see :func:`build_asgi`)."""
    from fastapi import Body, FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

    class AssignRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        texts: list[StrictStr] = Field(description="texts to label, in order")
        run: StrictStr | None = Field(None, description="a served text run (default: the first --run)")
        examples: StrictInt = Field(0, description="per text, this many members of its cluster nearest to it")

    class TermsRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        terms: list[StrictStr] = Field(description="terms to type, e.g. masked-word predictions")
        run: StrictStr | None = Field(None, description="a served vocabulary run (default: the first --vocab-run)")

    app = FastAPI(
        title="textcluster",
        summary="Label new texts and terms with saved clustering runs.",
        version="1",
    )

    def fail(e: Exception) -> HTTPException:
        if isinstance(e, UnknownRun):
            return HTTPException(404, str(e))
        if isinstance(e, TooMany):
            return HTTPException(413, str(e))
        if isinstance(e, ConfigError):
            return HTTPException(422, str(e))
        if isinstance(e, TextclusterError):
            return HTTPException(500, f"{type(e).__name__}: {e}")
        raise e

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the service is up and its models are loaded."""
        return {"status": "ok", "runs": len(service.runs), "vocab_runs": len(service.vocab),
                "inference_batches": service.batcher.batches}

    @app.get("/runs")
    async def runs() -> dict[str, Any]:
        """The served runs (text and vocabulary), their clusters' names and encoders."""
        return {"runs": service.list_runs(), "limits": service.limits.__dict__}

    @app.post("/assign")
    async def assign(req: Annotated[AssignRequest, Body()]) -> dict[str, Any]:
        """Label each text with its cluster (and the cluster's label when the run names it)."""
        try:
            return await service.assign(list(req.texts), req.run, req.examples)
        except (TextclusterError, UnknownRun) as e:
            raise fail(e) from None

    @app.post("/label-terms")
    async def label_terms(req: Annotated[TermsRequest, Body()]) -> dict[str, Any]:
        """Per term its vocabulary cluster and label, and the majority label of the set."""
        try:
            return await service.label_terms(list(req.terms), req.run)
        except (TextclusterError, UnknownRun) as e:
            raise fail(e) from None

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Any, e: RequestValidationError) -> Any:
        # FastAPI's own 422, without echoing the input back (it can be a megabyte)
        detail = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in e.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    return app


def check_token(token: str | None, host: str) -> None:
    """Refuse to serve on a non-loopback ``host`` without a token (:class:`ConfigError`)."""
    if token:
        return
    if not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host!r} without a token: anyone who can reach that address could "
            f"call the service; set {ENV_TOKEN} (every request then needs 'Authorization: Bearer <token>') "
            "or bind 127.0.0.1"
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    h = host.strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def build_asgi(service: Service, token: str | None = None) -> Any:
    """The ASGI app to serve: the FastAPI app behind a guard that (1) answers 401 unless the
    request carries ``Authorization: Bearer <token>`` (when ``token`` is set; compared in
    constant time) and (2) answers 413 for a body over ``service.limits.max_bytes``
    (the ``Content-Length`` header, then the bytes actually received), before FastAPI parses it."""
    app = create_app(service)
    max_bytes = service.limits.max_bytes
    expected = f"Bearer {token}".encode() if token else None

    async def reply(send: Any, status: int, detail: str, extra: list | None = None) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": body})

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if expected is not None:
            got = headers.get(b"authorization", b"")
            if not hmac.compare_digest(got, expected):
                await reply(send, 401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                            [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await reply(send, 400, "Content-Length is not a number")
                return
            if declared > max_bytes:
                await reply(send, 413, f"request body of {declared:,} bytes; at most {max_bytes:,} "
                                       "(textcluster serve --max-bytes)")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            part = msg.get("body", b"")
            size += len(part)
            if size > max_bytes:
                await reply(send, 413, f"request body over {max_bytes:,} bytes (textcluster serve --max-bytes)")
                return
            chunks.append(part)
            more = bool(msg.get("more_body"))
        body = b"".join(chunks)
        delivered = False
        if scope.get("method") == "POST":
            # The API speaks JSON only: a body is read as JSON whatever its Content-Type
            # (curl -d sends form encoding), so malformed JSON is a 422, never a silent string.
            scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
                     + [(b"content-type", b"application/json")]}

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    guarded.fastapi_app = app  # type: ignore[attr-defined]
    return guarded
