"""Optional LLM labels for clusters (off by default).

A prompt shows a cluster's nearest examples (and its keywords) and asks either
for a few topic labels (``mode="topics"``) or for one topic plus an
educational-value score from 0 to 5 (``mode="single"``). The reply must be a
JSON object; anything else is recorded as a failure for that cluster.

Two back ends:

- an OpenAI-compatible HTTP endpoint (``POST <base>/v1/chat/completions``)
  called with :mod:`urllib` (no extra dependency). Base URL, model and key come
  from arguments or ``TEXTCLUSTER_LLM_BASE_URL`` / ``TEXTCLUSTER_LLM_MODEL`` /
  ``TEXTCLUSTER_LLM_API_KEY``. The key is never stored in a manifest.
- a local ``transformers`` text-generation model (``local_model=PATH``).

:func:`label_clusters` never raises for one bad cluster: a timeout, an HTTP
error or a malformed reply becomes ``LLMLabel(ok=False, error=...)``. Clients
raise :class:`LLMError` (a :class:`~textcluster.errors.TextclusterError`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from textcluster.errors import ConfigError, TextclusterError
from textcluster.progress import Meter

logger = logging.getLogger(__name__)

ENV_BASE_URL = "TEXTCLUSTER_LLM_BASE_URL"
ENV_MODEL = "TEXTCLUSTER_LLM_MODEL"
ENV_API_KEY = "TEXTCLUSTER_LLM_API_KEY"
ENV_MAX_REPLY_BYTES = "TEXTCLUSTER_LLM_MAX_REPLY_BYTES"
PROMPT_VERSION = 1
MODES = ("topics", "single")
#: Default cap on one HTTP reply's body (``LLMSettings.max_reply_bytes``, env
#: ``TEXTCLUSTER_LLM_MAX_REPLY_BYTES``).
DEFAULT_MAX_REPLY_BYTES = 1 << 20
#: A reply text kept in ``clusters.json`` (``LLMLabel.raw``) is cut to this many characters.
MAX_RAW_CHARS = 4000
_READ_BYTES = 1 << 16

# -- secrets -----------------------------------------------------------------------

REDACTED = "***"
# Query parameters whose values are secrets (``?api_key=...``, ``&token=...``, ``sig=``...).
_SECRET_PARAM = re.compile(r"(?i)(key|token|secret|password|passwd|auth|sig|signature|credential)")
# Secret-looking strings in free text (an error body echoing the header, an OpenAI-style key).
_SECRET_TEXT = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+|\b(sk|pk|rk)-[A-Za-z0-9_\-]{8,}")


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials: no ``user:password@`` and the value of every query parameter
    named like a secret (``key``, ``api_key``, ``token``, ``sig``, ...) replaced by ``***``. What
    manifests, ids, logs and errors hold, so a key placed in the URL is never stored or shown."""
    if not url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if query:
        q = "&".join(
            f"{urllib.parse.quote(k, safe='')}="
            + (REDACTED if _SECRET_PARAM.search(k) else urllib.parse.quote(v, safe=''))
            for k, v in query
        )
    else:
        q = parts.query
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, q, ""))


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries (user info, secret-named query values), to redact from text."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    out = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        out += [userinfo, *userinfo.split(":", 1)]
    out += [v for k, v in urllib.parse.parse_qsl(parts.query) if _SECRET_PARAM.search(k)]
    return [x for x in out if len(x) >= 4]


def redact(text: str, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with each of ``secrets`` (their raw and URL-quoted forms) and anything that looks
    like a bearer token or an ``sk-...`` key replaced by ``***``."""
    for sec in sorted({x for x in secrets if x and len(x) >= 4}, key=len, reverse=True):
        for form in {sec, urllib.parse.quote(sec, safe=""), urllib.parse.quote_plus(sec)}:
            text = text.replace(form, REDACTED)
    return _SECRET_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, text)


class LLMError(TextclusterError):
    """The LLM endpoint or model failed, timed out, or replied in an unusable form."""


@dataclass(frozen=True)
class LLMSettings:
    """How to ask an LLM for labels.

    mode: ``topics`` (up to ``max_topics`` labels) | ``single`` (one topic + score 0..5).
    base_url / model / api_key: OpenAI-compatible endpoint (see :meth:`from_env`).
    local_model: path of a local transformers text-generation model (used instead of HTTP).
    timeout: the total deadline of one request, in seconds (default 30): connecting, sending and
        reading the whole reply; a server trickling bytes is cut off when it passes.
    max_reply_bytes: a reply body larger than this is refused (default 1 MiB; env
        ``TEXTCLUSTER_LLM_MAX_REPLY_BYTES``).
    max_examples: examples shown per cluster (default 5), each cut to ``max_chars`` characters
    (default 400).
    The API key (and any key placed in ``base_url``: user info, ``?key=``/``?token=``...) is
    never stored: manifests and ids hold :func:`redact_url` of the URL, errors are redacted.
    """

    mode: Literal["topics", "single"] = "topics"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    local_model: str | None = None
    timeout: float = 30.0
    max_examples: int = 5
    max_chars: int = 400
    max_topics: int = 3
    temperature: float = 0.0
    max_tokens: int = 200
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    def __repr__(self) -> str:
        shown = {**asdict(self), "base_url": redact_url(self.base_url)}
        shown.pop("api_key")
        return "LLMSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, **overrides: Any) -> LLMSettings:
        """Settings from ``TEXTCLUSTER_LLM_*`` environment variables; non-None overrides win."""
        env = {
            "base_url": os.environ.get(ENV_BASE_URL) or None,
            "model": os.environ.get(ENV_MODEL) or None,
            "api_key": os.environ.get(ENV_API_KEY) or None,
        }
        raw_cap = os.environ.get(ENV_MAX_REPLY_BYTES, "").strip()
        if raw_cap:
            if not raw_cap.isdigit():
                raise ConfigError(f"${ENV_MAX_REPLY_BYTES}={raw_cap!r} should be a whole number of bytes")
            env["max_reply_bytes"] = int(raw_cap)
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env).validate()

    def validate(self) -> LLMSettings:
        if self.mode not in MODES:
            raise ConfigError(f"llm mode={self.mode!r} should be 'topics' or 'single'")
        if not self.local_model and not self.base_url:
            raise ConfigError(
                f"LLM labels need a base URL (--llm-base-url or ${ENV_BASE_URL}) or a local model path"
            )
        if not self.local_model and not self.model:
            raise ConfigError(f"LLM labels need a model name (--llm-model or ${ENV_MODEL})")
        if not (self.timeout > 0 and self.timeout < float("inf")):
            raise ConfigError(f"llm timeout={self.timeout} should be a finite number of seconds > 0")
        if self.max_reply_bytes < 1:
            raise ConfigError(f"llm max_reply_bytes={self.max_reply_bytes} should be >= 1")
        if self.max_examples < 1:
            raise ConfigError(f"max_examples={self.max_examples} should be >= 1")
        return self

    def cache_key(self) -> dict[str, Any]:
        """What changes the labels (no key, no timeout; the URL without its secrets)."""
        return {
            "mode": self.mode,
            "base_url": redact_url(self.base_url),
            "model": self.model,
            "local_model": self.local_model,
            "max_examples": self.max_examples,
            "max_chars": self.max_chars,
            "max_topics": self.max_topics,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "prompt_version": PROMPT_VERSION,
        }

    def to_manifest(self) -> dict[str, Any]:
        """Safe to store: :meth:`cache_key` plus the limits; never the API key or a URL's secrets."""
        return {**self.cache_key(), "timeout": self.timeout, "max_reply_bytes": self.max_reply_bytes}


@dataclass(frozen=True)
class LLMLabel:
    """The LLM's answer for one cluster: ``topics`` (topics mode) or ``topic`` + ``score``
    (single mode); ``ok=False`` with ``error`` when it failed; ``raw``: the reply text."""

    cluster: int
    ok: bool
    topics: list[str] = field(default_factory=list)
    topic: str | None = None
    score: int | None = None
    error: str | None = None
    raw: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- prompts and replies --------------------------------------------------------

_SYSTEM = "You label clusters of documents. Reply with one JSON object and nothing else."


def build_messages(
    examples: Sequence[str], settings: LLMSettings, keywords: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """Chat messages asking for labels of one cluster from its nearest ``examples``."""
    shown = []
    for i, t in enumerate(examples[: settings.max_examples], 1):
        t = " ".join(str(t).split())
        if len(t) > settings.max_chars:
            t = t[: settings.max_chars] + "..."
        shown.append(f"{i}. {t}")
    body = "Documents from one cluster, the most typical first:\n" + "\n".join(shown)
    if keywords:
        body += "\nDistinctive keywords: " + ", ".join(keywords[:10])
    if settings.mode == "topics":
        body += (
            f"\n\nGive up to {settings.max_topics} short topic labels (2-5 words each) that describe"
            ' these documents. Reply exactly as {"topics": ["...", "..."]}.'
        )
    else:
        body += (
            "\n\nGive the single main topic (2-5 words) and rate the educational value of such"
            " documents from 0 (none) to 5 (excellent, like a good textbook)."
            ' Reply exactly as {"topic": "...", "score": 0}.'
        )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": body}]


def _json_object(text: str) -> dict[str, Any]:
    s = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", s, flags=re.S)
    if fence:
        s = fence.group(1).strip()
    try:
        obj = json.loads(s)
    except json.JSONDecodeError:
        a, b = s.find("{"), s.rfind("}")
        if a < 0 or b <= a:
            raise LLMError(f"reply holds no JSON object: {text[:120]!r}") from None
        try:
            obj = json.loads(s[a : b + 1])
        except json.JSONDecodeError as e:
            raise LLMError(f"reply is not valid JSON ({e.msg}): {text[:120]!r}") from None
    if not isinstance(obj, dict):
        raise LLMError(f"reply should be a JSON object, got {type(obj).__name__}: {text[:120]!r}")
    return obj


def parse_reply(text: str, mode: str, max_topics: int = 3) -> tuple[list[str], str | None, int | None]:
    """(topics, topic, score) from a reply; :class:`LLMError` when malformed.

    topics mode: ``{"topics": [str, ...]}`` (1..max_topics non-empty strings kept).
    single mode: ``{"topic": str, "score": int 0..5}`` (a whole-number float is accepted).
    """
    obj = _json_object(text)
    if mode == "topics":
        topics = obj.get("topics")
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise LLMError(f"'topics' should be a list of strings, got {topics!r:.120}")
        topics = [t.strip() for t in topics if t.strip()][:max_topics]
        if not topics:
            raise LLMError("'topics' is empty")
        return topics, None, None
    topic, score = obj.get("topic"), obj.get("score")
    if not isinstance(topic, str) or not topic.strip():
        raise LLMError(f"'topic' should be a non-empty string, got {topic!r:.120}")
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score.strip())
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        raise LLMError(f"'score' should be an integer from 0 to 5, got {score!r:.60}")
    return [topic.strip()], topic.strip(), score


# -- clients ---------------------------------------------------------------------


class ChatClient(Protocol):
    def complete(self, messages: list[dict[str, str]]) -> str: ...


def chat_url(base_url: str) -> str:
    """``.../v1/chat/completions`` from a base URL given with or without ``/v1``."""
    u = base_url.rstrip("/")
    if u.endswith("/chat/completions"):
        return u
    if u.endswith("/v1"):
        return u + "/chat/completions"
    return u + "/v1/chat/completions"


class _Deadline:
    """Shuts down the sockets of one request when its total deadline passes, so a server that
    trickles bytes (each within the socket timeout) cannot hold the request beyond it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def check(self) -> None:
        if self.expired or time.monotonic() > self.end:
            raise TimeoutError


def _deadline_opener(deadline: _Deadline, proxies: dict[str, str] | None) -> urllib.request.OpenerDirector:
    """A urllib opener whose HTTP(S) connections register their sockets with ``deadline``."""

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            deadline.track(self.sock)

    class SConn(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            deadline.track(self.sock)

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(Conn, req)

    class SHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> Any:
            return self.do_open(SConn, req, context=self._context)

    handlers: list[Any] = [Handler(), SHandler()]
    if proxies is not None:
        handlers.append(urllib.request.ProxyHandler(proxies))
    return urllib.request.build_opener(*handlers)


class OpenAIChatClient:
    """POSTs to an OpenAI-compatible ``/v1/chat/completions`` with urllib; returns the reply text.

    ``timeout`` is the total deadline of a request (connect, send, the whole reply); a reply body
    over ``max_reply_bytes`` is refused; the key and any secret in the URL are redacted from every
    error (``self.shown_url`` is the URL as errors show it).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int = 200,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self.url = chat_url(base_url)
        self.shown_url = redact_url(self.url) or ""
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_reply_bytes = max_reply_bytes
        self._secrets = [api_key, *url_secrets(self.url)]
        host = urllib.parse.urlparse(self.url).hostname or ""
        self._proxies: dict[str, str] | None = {} if host in ("127.0.0.1", "localhost", "::1") else None

    def __repr__(self) -> str:
        return f"OpenAIChatClient({self.shown_url!r}, {self.model!r})"

    def _error(self, text: str) -> LLMError:
        return LLMError(redact(text, self._secrets))

    def _read(self, resp: Any, deadline: _Deadline) -> bytes:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.max_reply_bytes:
            raise self._error(
                f"LLM endpoint {self.shown_url} announced a reply of {int(length):,} bytes, more than "
                f"max_reply_bytes={self.max_reply_bytes:,}; raise it (${ENV_MAX_REPLY_BYTES}) if genuine"
            )
        chunks, total = [], 0
        while True:
            deadline.check()
            block = resp.read1(_READ_BYTES) if hasattr(resp, "read1") else resp.read(_READ_BYTES)
            if not block:
                deadline.check()  # a shut-down socket reads as the end of the reply
                missing = getattr(resp, "length", None)
                if isinstance(missing, int) and missing > 0:
                    raise self._error(
                        f"LLM endpoint {self.shown_url} failed: the reply was cut short "
                        f"({missing:,} announced bytes never came)"
                    )
                return b"".join(chunks)
            total += len(block)
            if total > self.max_reply_bytes:
                raise self._error(
                    f"LLM endpoint {self.shown_url} sent more than max_reply_bytes={self.max_reply_bytes:,} "
                    f"bytes; refusing the reply (raise it with ${ENV_MAX_REPLY_BYTES} if genuine)"
                )
            chunks.append(block)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant's message text; :class:`LLMError` on HTTP errors, timeouts or odd replies."""
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers=headers, method="POST"
        )
        timed_out = f"LLM endpoint {self.shown_url} timed out after {self.timeout:g} s (the total deadline)"
        with _Deadline(self.timeout) as deadline:
            opener = _deadline_opener(deadline, self._proxies)
            try:
                with opener.open(req, timeout=self.timeout) as resp:
                    body = self._read(resp, deadline)
            except urllib.error.HTTPError as e:
                try:
                    detail = e.read(200).decode("utf-8", errors="replace") if e.fp else ""
                except (OSError, http.client.HTTPException):
                    detail = ""
                raise self._error(f"LLM endpoint {self.shown_url} answered HTTP {e.code}: {detail}") from None
            except TimeoutError:
                raise self._error(timed_out) from None
            except urllib.error.URLError as e:
                if isinstance(e.reason, TimeoutError) or deadline.expired:
                    raise self._error(timed_out) from None
                raise self._error(f"cannot reach LLM endpoint {self.shown_url}: {e.reason}") from None
            except (OSError, http.client.HTTPException, ValueError) as e:  # resets, bad URLs
                if deadline.expired:
                    raise self._error(timed_out) from None
                raise self._error(f"LLM endpoint {self.shown_url} failed: {e!r}") from None
        try:
            obj = json.loads(body)
            content = obj["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError):
            raise self._error(f"LLM endpoint {self.shown_url} sent no chat completion: {body[:120]!r}") from None
        if not isinstance(content, str):
            raise self._error(f"LLM endpoint {self.shown_url} sent a non-text message: {content!r:.120}")
        return redact(content, self._secrets)


class LocalChatClient:
    """A local transformers text-generation model (loaded on first use)."""

    def __init__(self, model_path: str, max_tokens: int = 200) -> None:
        self.model_path = model_path
        self.max_tokens = max_tokens
        self._pipe: Any = None

    def complete(self, messages: list[dict[str, str]]) -> str:
        if self._pipe is None:
            try:
                from transformers import pipeline
            except ImportError as e:  # pragma: no cover - a core dependency
                raise LLMError("local LLM labels need transformers: pip install transformers") from e
            try:
                self._pipe = pipeline("text-generation", model=self.model_path)
            except Exception as e:  # noqa: BLE001 - any loader failure becomes a typed error
                raise LLMError(f"cannot load local model {self.model_path!r}: {e}") from e
        tok = self._pipe.tokenizer
        if getattr(tok, "chat_template", None):
            prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = "\n\n".join(m["content"] for m in messages) + "\n\n"
        try:
            out = self._pipe(prompt, max_new_tokens=self.max_tokens, do_sample=False, return_full_text=False)
        except Exception as e:  # noqa: BLE001
            raise LLMError(f"local model {self.model_path!r} failed: {e}") from e
        return str(out[0]["generated_text"])


def make_client(settings: LLMSettings) -> ChatClient:
    """The client the settings name: local model if given, else the HTTP endpoint."""
    settings.validate()
    if settings.local_model:
        return LocalChatClient(settings.local_model, settings.max_tokens)
    return OpenAIChatClient(
        settings.base_url or "",
        settings.model or "",
        settings.api_key,
        settings.timeout,
        settings.temperature,
        settings.max_tokens,
        settings.max_reply_bytes,
    )


def _kept(raw: str | None) -> str | None:
    """A reply text as ``clusters.json`` keeps it: at most :data:`MAX_RAW_CHARS` characters."""
    if raw is None or len(raw) <= MAX_RAW_CHARS:
        return raw
    return raw[:MAX_RAW_CHARS] + f"... [{len(raw) - MAX_RAW_CHARS:,} more characters not kept]"


def label_clusters(
    examples: Mapping[int, Sequence[str]],
    settings: LLMSettings,
    keywords: Mapping[int, Sequence[str]] | None = None,
    client: ChatClient | None = None,
    progress: Any = None,
) -> dict[int, LLMLabel]:
    """Ask the LLM about each cluster; returns cluster id -> :class:`LLMLabel`.

    examples: cluster id -> its nearest texts (best first). A failure for one
    cluster (timeout, HTTP error, malformed reply) is recorded in its label with
    ``ok=False`` and the others go on.
    """

    client = client or make_client(settings)
    meter = Meter("llm", len(examples), progress)
    out: dict[int, LLMLabel] = {}
    for i, (c, texts) in enumerate(examples.items()):
        raw = None
        try:
            msgs = build_messages(list(texts), settings, (keywords or {}).get(c))
            raw = client.complete(msgs)
            topics, topic, score = parse_reply(raw, settings.mode, settings.max_topics)
            out[c] = LLMLabel(int(c), True, topics, topic, score, None, _kept(raw))
        except LLMError as e:
            logger.warning("LLM label for cluster %s failed: %s", c, e)
            out[c] = LLMLabel(int(c), False, error=str(e), raw=_kept(raw))
        meter.update(i + 1)
    return out
