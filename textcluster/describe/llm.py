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

import http.client
import json
import logging
import os
import re
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
PROMPT_VERSION = 1
MODES = ("topics", "single")


class LLMError(TextclusterError):
    """The LLM endpoint or model failed, timed out, or replied in an unusable form."""


@dataclass(frozen=True)
class LLMSettings:
    """How to ask an LLM for labels.

    mode: ``topics`` (up to ``max_topics`` labels) | ``single`` (one topic + score 0..5).
    base_url / model / api_key: OpenAI-compatible endpoint (see :meth:`from_env`).
    local_model: path of a local transformers text-generation model (used instead of HTTP).
    timeout: seconds per request (default 30). max_examples: examples shown per
    cluster (default 5), each cut to ``max_chars`` characters (default 400).
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

    @classmethod
    def from_env(cls, **overrides: Any) -> LLMSettings:
        """Settings from ``TEXTCLUSTER_LLM_*`` environment variables; non-None overrides win."""
        env = {
            "base_url": os.environ.get(ENV_BASE_URL) or None,
            "model": os.environ.get(ENV_MODEL) or None,
            "api_key": os.environ.get(ENV_API_KEY) or None,
        }
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
        if self.timeout <= 0:
            raise ConfigError(f"llm timeout={self.timeout} should be > 0 seconds")
        if self.max_examples < 1:
            raise ConfigError(f"max_examples={self.max_examples} should be >= 1")
        return self

    def cache_key(self) -> dict[str, Any]:
        """What changes the labels (no key, no timeout)."""
        return {
            "mode": self.mode,
            "base_url": self.base_url,
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
        """Safe to store: :meth:`cache_key` plus the timeout; never the API key."""
        return {**self.cache_key(), "timeout": self.timeout}


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


class OpenAIChatClient:
    """POSTs to an OpenAI-compatible ``/v1/chat/completions`` with urllib; returns the reply text."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int = 200,
    ) -> None:
        self.url = chat_url(base_url)
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        host = urllib.parse.urlparse(self.url).hostname or ""
        handlers = [urllib.request.ProxyHandler({})] if host in ("127.0.0.1", "localhost", "::1") else []
        self._opener = urllib.request.build_opener(*handlers)

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
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read()[:200].decode("utf-8", errors="replace") if e.fp else ""
            raise LLMError(f"LLM endpoint {self.url} answered HTTP {e.code}: {detail}") from e
        except TimeoutError as e:
            raise LLMError(f"LLM endpoint {self.url} timed out after {self.timeout:g} s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise LLMError(f"LLM endpoint {self.url} timed out after {self.timeout:g} s") from e
            raise LLMError(f"cannot reach LLM endpoint {self.url}: {e.reason}") from e
        except (OSError, http.client.HTTPException) as e:  # resets, truncated bodies
            raise LLMError(f"LLM endpoint {self.url} failed: {e!r}") from e
        try:
            obj = json.loads(body)
            content = obj["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as e:
            raise LLMError(
                f"LLM endpoint {self.url} sent no chat completion: {body[:120]!r}"
            ) from e
        if not isinstance(content, str):
            raise LLMError(f"LLM endpoint {self.url} sent a non-text message: {content!r:.120}")
        return content


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
    )


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
            out[c] = LLMLabel(int(c), True, topics, topic, score, None, raw)
        except LLMError as e:
            logger.warning("LLM label for cluster %s failed: %s", c, e)
            out[c] = LLMLabel(int(c), False, error=str(e), raw=raw)
        meter.update(i + 1)
    return out
