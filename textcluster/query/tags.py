"""Tags: named sets of documents of a corpus, stored in the workspace, shown in the query views.

A tag is a name (1 to :data:`TAG_NAME_MAX` characters, no control characters) and a set of
``doc_id`` s of one corpus. A selection on the map, a text search result or a SQL result
becomes a tag with :func:`tag_docs`. The tags of a corpus live in one JSON file,
``<workspace>/tags/<corpus_id>.json`` (``{"format_version", "corpus_id", "tags": {name:
{"doc_ids": [...sorted], "updated": ISO time}}}``), rewritten atomically
(:func:`textcluster.store.write_json_atomic`) under a workspace lock, so a reader sees the
old file or the new one. Tags are not artifacts: changing one changes no id. Every view of
:mod:`textcluster.query.sql` sees them (``docs.tags``, a list of names, and the ``tags``
view) and so do run exports (a ``tags`` column when the corpus has tags).
:func:`textcluster.query.selection.doc_ids_from` reads a selection from a file or a SELECT.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import numpy as np
import pyarrow as pa

from textcluster.errors import ConfigError, StoreError, check_label_text
from textcluster.store import Workspace, check_id, write_json_atomic

#: Longest tag name, in characters.
TAG_NAME_MAX = 100
TAGS_FORMAT = 1


def check_tag_name(name: object) -> str:
    """The tag name, trimmed; :class:`ConfigError` when it is empty, longer than
    :data:`TAG_NAME_MAX` characters or holds a control character."""
    return check_label_text(name, "tag name", TAG_NAME_MAX)


def _read(ws: Workspace, corpus_id: str) -> dict[str, Any]:
    p = ws.tags_file(corpus_id)
    if not p.is_file():
        return {"format_version": TAGS_FORMAT, "corpus_id": corpus_id, "tags": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StoreError(f"the tags of corpus {corpus_id} ({p.name}) are unreadable: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("tags"), dict):
        raise StoreError(f"the tags file of corpus {corpus_id} ({p.name}) has no 'tags' object")
    return data


def load_tags(ws: Workspace, corpus_id: str) -> dict[str, np.ndarray]:
    """Tag name -> sorted unique doc ids (int64) of a corpus (empty when it has no tags)."""
    data = _read(ws, corpus_id)
    return {name: np.asarray(t.get("doc_ids", []), dtype=np.int64) for name, t in sorted(data["tags"].items())}


def list_tags(ws: Workspace, corpus_id: str) -> list[dict[str, Any]]:
    """``[{"name", "docs", "updated"}]`` of a corpus's tags, by name."""
    data = _read(ws, corpus_id)
    return [{"name": n, "docs": len(t.get("doc_ids", [])), "updated": t.get("updated")}
            for n, t in sorted(data["tags"].items())]


def _n_docs(ws: Workspace, corpus_id: str) -> int:
    return int(ws.manifest(check_id(corpus_id, "corpus")).kept)


def check_doc_ids(ws: Workspace, corpus_id: str, doc_ids: Any) -> np.ndarray:
    """``doc_ids`` as sorted unique int64; :class:`ConfigError` naming the first id outside
    ``0..n-1`` of the corpus, or when there is none."""
    ids = np.unique(np.asarray(doc_ids, dtype=np.int64).reshape(-1))
    if ids.size == 0:
        raise ConfigError("no documents given (an empty selection)")
    n = _n_docs(ws, corpus_id)
    bad = ids[(ids < 0) | (ids >= n)]
    if bad.size:
        raise ConfigError(
            f"doc id {int(bad[0])} is not a document of corpus {corpus_id} (ids run 0..{n - 1}); "
            f"{bad.size} such id(s) given"
        )
    return ids


def tag_docs(ws: Workspace, corpus_id: str, name: str, doc_ids: Any, *, mode: str = "add") -> int:
    """Add ``doc_ids`` to the tag ``name`` of a corpus (``mode="add"``, creating it), make them
    its only documents (``"replace"``) or take them out of it (``"remove"``; a tag left empty
    is deleted). Returns the number of documents the tag holds afterwards."""
    if mode not in ("add", "replace", "remove"):
        raise ConfigError(f"mode={mode!r} should be add, replace or remove")
    name = check_tag_name(name)
    ids = check_doc_ids(ws, corpus_id, doc_ids)
    with ws.lock(f"tags-{check_id(corpus_id, 'corpus')}"):
        data = _read(ws, corpus_id)
        old = np.asarray(data["tags"].get(name, {}).get("doc_ids", []), dtype=np.int64)
        if mode == "remove" and name not in data["tags"]:
            raise ConfigError(f"corpus {corpus_id} has no tag {name!r}; tags: {', '.join(sorted(data['tags'])) or 'none'}")
        new = {"add": lambda: np.union1d(old, ids), "replace": lambda: ids,
               "remove": lambda: np.setdiff1d(old, ids)}[mode]()
        if new.size:
            data["tags"][name] = {"doc_ids": new.tolist(), "updated": _now()}
        else:
            data["tags"].pop(name, None)
        data["format_version"], data["corpus_id"] = TAGS_FORMAT, corpus_id
        write_json_atomic(ws.tags_file(corpus_id), data)
    return int(new.size)


def delete_tag(ws: Workspace, corpus_id: str, name: str) -> int:
    """Delete the tag ``name`` of a corpus; returns how many documents it held
    (:class:`ConfigError` when there is no such tag)."""
    name = check_tag_name(name)
    with ws.lock(f"tags-{check_id(corpus_id, 'corpus')}"):
        data = _read(ws, corpus_id)
        if name not in data["tags"]:
            raise ConfigError(f"corpus {corpus_id} has no tag {name!r}; tags: {', '.join(sorted(data['tags'])) or 'none'}")
        held = len(data["tags"].pop(name).get("doc_ids", []))
        write_json_atomic(ws.tags_file(corpus_id), data)
    return held


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def tag_table(ws: Workspace, corpus_id: str) -> pa.Table:
    """One row per (document, tag): ``doc_id`` int64, ``tag`` string (the ``tags`` view)."""
    tags = load_tags(ws, corpus_id)
    ids = [v for v in tags.values()]
    names = [np.full(v.size, i, dtype=np.int32) for i, v in enumerate(tags.values())]
    if not ids:
        return pa.table({"doc_id": pa.array([], pa.int64()), "tag": pa.array([], pa.string())})
    dictionary = pa.array(list(tags), pa.string())
    codes = pa.array(np.concatenate(names))
    return pa.table({
        "doc_id": pa.array(np.concatenate(ids)),
        "tag": pa.DictionaryArray.from_arrays(codes, dictionary).cast(pa.string()),
    })


def doc_tag_lists(tags: dict[str, np.ndarray], doc_ids: np.ndarray) -> pa.Array:
    """For each of ``doc_ids``, the list of its tag names (sorted; null when none): the ``tags``
    column of a run export, one batch at a time."""
    doc_ids = np.asarray(doc_ids, dtype=np.int64)
    out: list[list[str] | None] = [None] * doc_ids.size
    for name, members in tags.items():
        hit = np.flatnonzero(np.isin(doc_ids, members, assume_unique=False))
        for i in hit.tolist():
            if out[i] is None:
                out[i] = [name]
            else:
                out[i].append(name)  # type: ignore[union-attr]
    return pa.array(out, pa.list_(pa.string()))
