"""Typed errors raised by textcluster.

Every error says what was received and how to fix it. The CLI turns any
:class:`TextclusterError` into one ``error: ...`` line on stderr and exit code 2;
the app shows it as a readable message.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TextclusterError(Exception):
    """Base class of every error textcluster raises on purpose."""


class CorpusError(TextclusterError, ValueError):
    """An input file cannot be read or has no usable rows (names the file, row or field)."""


class ConfigError(TextclusterError, ValueError):
    """A setting is impossible (names the value received and the allowed range)."""


class EncoderError(TextclusterError):
    """An encoder name is unknown or its model cannot be loaded."""


class StoreError(TextclusterError):
    """A workspace artifact is missing, incomplete or unreadable."""


class IdError(StoreError, ValueError):
    """A text that should be an artifact id does not follow the id grammar, or names another kind
    (names the text received and the grammar: ``<prefix>-<16 lowercase hex digits>``)."""


class OutputPathError(StoreError, ValueError):
    """A user-given output path resolves inside the workspace (names the path and the workspace)."""


class QueryError(TextclusterError):
    """A SQL statement was refused by the sandbox, failed, or timed out."""


class LimitError(QueryError):
    """A query or an export went past one of its limits (time, rows, bytes, statement size).

    ``limit`` names it (``timeout``, ``max_rows``, ``max_bytes``, ``max_sql_bytes``,
    ``max_result_bytes``), ``value`` is its setting; the message says how to raise it."""

    def __init__(self, message: str, limit: str, value: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.value = value


class JobCancelled(TextclusterError):
    """A running stage was cancelled by the user between two batches."""


class EngineError(TextclusterError):
    """A distributed engine (Ray) cannot be reached or used, or lost its workers for good
    (names the address and what to check)."""


def check_label_text(value: object, what: str, max_chars: int) -> str:
    """A user-given short name (a cluster name, a tag), trimmed; :class:`ConfigError` naming
    ``what`` when it is not text, empty, longer than ``max_chars`` characters or holds a control
    character (a newline, a tab, ...). The one check behind cluster names and tag names."""
    if not isinstance(value, str):
        raise ConfigError(f"a {what} should be text; got {type(value).__name__}")
    s = value.strip()
    if not s:
        raise ConfigError(f"a {what} cannot be empty")
    if len(s) > max_chars:
        raise ConfigError(f"the {what} is {len(s)} characters long; at most {max_chars} are allowed")
    if _CONTROL.search(s):
        raise ConfigError(f"the {what} {s[:40]!r} holds a control character (a newline, a tab, ...)")
    return s
