"""Field paths into nested records: ``meta.title``, ``request.messages[0].content``.

A path is a column name or a chain of steps: ``.key`` (a key of an object),
``[3]`` / ``[-1]`` (an element of a list) and ``["odd.key"]`` (a key that holds
dots, brackets or quotes). A field that is exactly a top-level key of the record
always wins, so a CSV column literally named ``meta.title`` is found as such.

>>> resolve({"request": {"messages": [{"content": "hi"}]}}, "request.messages[0].content")
'hi'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from textcluster.errors import ConfigError

Step = str | int


class _Missing:
    """The value of a path that does not exist in a record."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

_PLAIN_KEY = re.compile(r"[^.\[\]\"']+")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


@lru_cache(maxsize=256)
def parse(path: str) -> tuple[Step, ...]:
    """Steps of a path: ``'a.b[0]["c.d"]'`` -> ``("a", "b", 0, "c.d")``.

    Raises :class:`~textcluster.errors.ConfigError` naming the path and the
    position of the first character that does not fit.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"field path {path!r} should be a non-empty string")
    steps: list[Step] = []
    i, n = 0, len(path)
    expect_key = True  # at the start, or right after a dot
    while i < n:
        c = path[i]
        if c == "[":
            m = _INDEX.match(path, i)
            if m:
                steps.append(int(m.group(1)))
                i = m.end()
            elif path.startswith(('["', "['"), i):
                i = _parse_quoted(path, i + 1, steps)
            else:
                raise ConfigError(
                    f"field path {path!r}: expected [<integer>] or [\"key\"] at position {i}"
                )
            expect_key = False
        elif c == "." and not expect_key:
            i += 1
            expect_key = True
            if i == n:
                raise ConfigError(f"field path {path!r} ends with a dot")
        elif expect_key:
            m = _PLAIN_KEY.match(path, i)
            if not m:
                raise ConfigError(f"field path {path!r}: unexpected {c!r} at position {i}")
            steps.append(m.group(0))
            i = m.end()
            expect_key = False
        else:
            raise ConfigError(f"field path {path!r}: unexpected {c!r} at position {i}")
    return tuple(steps)


def _parse_quoted(path: str, i: int, steps: list[Step]) -> int:
    """Parse ``"..."]`` or ``'...']`` starting at the quote ``path[i]``; return the index after ``]``."""
    quote = path[i]
    j = i + 1
    while j < len(path):
        if path[j] == "\\":
            j += 2
            continue
        if path[j] == quote:
            break
        j += 1
    if j >= len(path) or not path.startswith("]", j + 1):
        raise ConfigError(f"field path {path!r}: unterminated [{quote}...{quote}] at position {i - 1}")
    raw = path[i + 1 : j]
    if quote == '"':
        try:
            key = json.loads(f'"{raw}"')
        except json.JSONDecodeError as e:
            raise ConfigError(f"field path {path!r}: bad escape in quoted key ({e.msg})") from e
    else:
        key = raw.replace("\\'", "'").replace("\\\\", "\\")
    steps.append(key)
    return j + 2


def format_path(steps: Iterable[Step], quote_all: bool = False) -> str:
    """The path text of a sequence of steps (the inverse of :func:`parse`).

    ``quote_all`` writes every key as ``["key"]`` (used when the plain form
    would be mistaken for a top-level column name that contains dots).
    """
    out = []
    for k, s in enumerate(steps):
        if isinstance(s, int):
            out.append(f"[{s}]")
        elif not quote_all and _PLAIN_KEY.fullmatch(s) and s.strip() == s:
            out.append(s if k == 0 else f".{s}")
        else:
            out.append(f"[{json.dumps(s, ensure_ascii=False)}]")
    return "".join(out)


def resolve(record: Any, path: str) -> Any:
    """The value at ``path`` in ``record`` (dicts and lists), or :data:`MISSING`.

    A path that is exactly a top-level key is looked up as that key first.
    """
    if isinstance(record, dict) and path in record:
        return record[path]
    return resolve_steps(record, parse(path))


def resolve_steps(record: Any, steps: tuple[Step, ...]) -> Any:
    """Walk ``steps`` down ``record``; :data:`MISSING` where a step does not exist."""
    cur = record
    for s in steps:
        if isinstance(cur, dict):
            if isinstance(s, int):
                return MISSING
            if s not in cur:
                return MISSING
            cur = cur[s]
        elif isinstance(cur, list | tuple):
            if isinstance(s, str):
                if not re.fullmatch(r"-?\d+", s):
                    return MISSING
                s = int(s)
            if not -len(cur) <= s < len(cur):
                return MISSING
            cur = cur[s]
        else:
            return MISSING
    return cur


def leaf_paths(
    record: Any, max_depth: int = 6, max_items: int = 10
) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for every top-level key and every nested leaf below it.

    Lists show their first ``max_items`` elements (``messages[0]``, ``messages[1]``, ...);
    nesting deeper than ``max_depth`` steps is not followed. Top-level keys are
    always listed (also when their value is an object), nested containers only
    through their leaves. Every path resolves (:func:`resolve`) to its value.
    """
    if not isinstance(record, dict):
        return
    for key, value in record.items():
        yield str(key), value
        if isinstance(value, dict | list) and value:
            for path, v in _walk(value, (str(key),), max_depth, max_items):
                text = format_path(path)
                yield (format_path(path, quote_all=True) if text in record else text), v


def _walk(value: Any, prefix: tuple[Step, ...], max_depth: int, max_items: int):
    if len(prefix) >= max_depth:
        return
    if isinstance(value, dict):
        items: Iterable[tuple[Step, Any]] = ((str(k), v) for k, v in value.items())
    else:
        items = enumerate(value[:max_items])
    for step, v in items:
        path = (*prefix, step)
        if isinstance(v, dict | list) and v:
            yield from _walk(v, path, max_depth, max_items)
        else:
            yield path, v
