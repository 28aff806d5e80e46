"""Label maps: a user's file that names a run's clusters, applied as a run version.

A map is JSON or CSV. Each entry is either

- ``cluster -> label``: the cluster by id (``"3"``) or by its current name; or
- ``label -> seed terms``: the clusters holding those terms get the label (a term is looked
  up as a document text of the run's corpus, exactly, then case-insensitively, and otherwise
  assigned to a cluster like a new text; a vocabulary run's tokens are its documents).

JSON: one object, ``{"3": "ANIMAL", "fruit": "FOOD", "METAL": ["iron", "gold"]}`` (a string
value maps a cluster, a list of strings gives seed terms). CSV: a header ``cluster,label``
(one cluster per line) or ``label,terms`` (a label, then one or more cells of seed terms).

:func:`parse_label_map` checks the file alone (duplicate keys, empty labels, wrong types)
and :func:`resolve_label_map` checks it against a run (unknown clusters, seeds that fall in
no cluster, a cluster claimed by two labels); every error names the line. :func:`apply_label_map`
writes the result as a run version (``derive_run`` with the edit ``{"op": "label_map",
"labels": {id: label}}`` and the names): the same map on the same run is the same id, the
labels of the rows do not change, and unmapped clusters keep their id (and any name they had).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textcluster.cluster.runs import assign
from textcluster.cluster.versions import derive_run, resolve_cluster, run_names
from textcluster.errors import ConfigError
from textcluster.ingest.corpus import load_docs

#: The largest label map file read (bytes).
MAX_MAP_BYTES = 4 << 20
#: The longest label (characters).
MAX_LABEL_CHARS = 200
_INT = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class MapEntry:
    """One entry of a label map: ``line`` (1-based, in the file), ``label``, and either
    ``cluster`` (an id or a name: ``kind == "cluster"``) or ``terms`` (``kind == "seeds"``)."""

    line: int
    kind: Literal["cluster", "seeds"]
    label: str
    cluster: int | str | None = None
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelMap:
    """A parsed label map: its entries in file order and where it came from."""

    entries: tuple[MapEntry, ...]
    source: str = "<map>"

    def to_dict(self) -> dict[str, Any]:
        """The map as the JSON object a file would hold (cluster keys as strings)."""
        out: dict[str, Any] = {}
        for e in self.entries:
            if e.kind == "cluster":
                out[str(e.cluster)] = e.label
            else:
                out[e.label] = list(e.terms)
        return out


@dataclass
class ResolvedMap:
    """A label map checked against a run: ``labels`` (cluster id -> label), and per seed
    entry which clusters its terms fell in (``seeds``: ``{"line", "label", "terms": [{"term",
    "cluster", "how"}]}``); ``notes`` for what the user should know (a seed term in noise)."""

    run_id: str
    labels: dict[int, str]
    seeds: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class LabelMapError(ConfigError):
    """An invalid label map; the message names the file and the line."""


def _err(source: str, line: int | None, msg: str) -> LabelMapError:
    where = f"{source}, line {line}" if line else source
    return LabelMapError(f"label map {where}: {msg}")


def _label(source: str, line: int, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _err(source, line, f"the label of {what} should be text, got {type(value).__name__}")
    label = " ".join(value.split())
    if not label:
        raise _err(source, line, f"the label of {what} is empty")
    if len(label) > MAX_LABEL_CHARS:
        raise _err(source, line, f"the label of {what} has {len(label)} characters (at most {MAX_LABEL_CHARS})")
    return label


def _cluster_key(text: str) -> int | str:
    t = text.strip()
    return int(t) if _INT.match(t) else t


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _parse_json(text: str, source: str) -> list[MapEntry]:
    """Entries of a JSON object, each with the line of its key (json.loads drops duplicates
    and positions, so the top-level object is walked here; values are read by json)."""
    dec = json.JSONDecoder()
    ws = re.compile(r"\s*")
    i = ws.match(text, 0).end()
    if i >= len(text) or text[i] != "{":
        raise _err(source, _line_of(text, i), 'a JSON label map is one object, e.g. {"3": "ANIMAL"} or '
                                              '{"ANIMAL": ["dog", "cat"]}')
    i = ws.match(text, i + 1).end()
    entries: list[MapEntry] = []
    seen: dict[str, int] = {}
    if i < len(text) and text[i] == "}":
        return entries
    while True:
        line = _line_of(text, i)
        if i >= len(text) or text[i] != '"':
            raise _err(source, line, "expected a quoted key")
        try:
            key, i = json.decoder.scanstring(text, i + 1)
            i = ws.match(text, i).end()
            if i >= len(text) or text[i] != ":":
                raise _err(source, _line_of(text, i), f"expected ':' after the key {key!r}")
            i = ws.match(text, i + 1).end()
            value, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise _err(source, e.lineno, f"malformed JSON: {e.msg}") from None
        if key.strip() in seen:
            raise _err(source, line, f"duplicate key {key!r} (first on line {seen[key.strip()]})")
        seen[key.strip()] = line
        if not key.strip():
            raise _err(source, line, "empty key")
        entries.append(_entry(source, line, key, value))
        i = ws.match(text, i).end()
        if i < len(text) and text[i] == ",":
            i = ws.match(text, i + 1).end()
            continue
        if i < len(text) and text[i] == "}":
            break
        raise _err(source, _line_of(text, i), "expected ',' or '}'")
    rest = text[i + 1 :].strip()
    if rest:
        raise _err(source, _line_of(text, i + 1 + text[i + 1 :].index(rest[0])), "extra text after the object")
    return entries


def _entry(source: str, line: int, key: str, value: Any) -> MapEntry:
    if isinstance(value, str):
        return MapEntry(line, "cluster", _label(source, line, value, f"cluster {key!r}"), cluster=_cluster_key(key))
    if isinstance(value, list):
        label = _label(source, line, key, "a seed list")
        terms = _terms(source, line, value, label)
        return MapEntry(line, "seeds", label, terms=terms)
    raise _err(source, line, f"the value of {key!r} should be a label (text) or a list of seed terms, "
                             f"got {type(value).__name__}")


def _terms(source: str, line: int, values: list[Any], label: str) -> tuple[str, ...]:
    out = []
    for v in values:
        if not isinstance(v, str):
            raise _err(source, line, f"the seed terms of {label!r} should be text, got {type(v).__name__}")
        if v.strip():
            out.append(" ".join(v.split()))
    if not out:
        raise _err(source, line, f"the seed list of {label!r} is empty")
    return tuple(dict.fromkeys(out))


def _parse_csv(text: str, source: str) -> list[MapEntry]:
    rows = list(csv.reader(io.StringIO(text)))
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        return []
    hline, header = numbered[0]
    head = [c.strip().lower() for c in header]
    if head[:2] == ["cluster", "label"]:
        kind = "cluster"
    elif head[:1] == ["label"] and len(head) >= 2 and head[1] in ("terms", "term", "seeds"):
        kind = "seeds"
    else:
        raise _err(source, hline, f"a CSV label map starts with a header 'cluster,label' or 'label,terms', "
                                  f"got {','.join(header)[:80]!r}")
    entries: list[MapEntry] = []
    seen: dict[str, int] = {}
    for line, r in numbered[1:]:
        cells = [c.strip() for c in r]
        if kind == "cluster":
            if len([c for c in cells[2:] if c]):
                raise _err(source, line, f"expected 2 cells (cluster,label), got {len(cells)}")
            key = cells[0]
            label = cells[1] if len(cells) > 1 else ""
            if not key:
                raise _err(source, line, "the cluster cell is empty")
            if key in seen:
                raise _err(source, line, f"duplicate cluster {key!r} (first on line {seen[key]})")
            seen[key] = line
            entries.append(MapEntry(line, "cluster", _label(source, line, label, f"cluster {key!r}"),
                                    cluster=_cluster_key(key)))
        else:
            label = _label(source, line, cells[0], "a seed row")
            if label in seen:
                raise _err(source, line, f"duplicate label {label!r} (first on line {seen[label]})")
            seen[label] = line
            entries.append(MapEntry(line, "seeds", label, terms=_terms(source, line, cells[1:], label)))
    return entries


def parse_label_map(
    data: str | bytes, fmt: Literal["json", "csv"] | None = None, source: str = "<map>",
    max_bytes: int = MAX_MAP_BYTES,
) -> LabelMap:
    """Parse a label map's text (JSON or CSV; ``fmt`` None: JSON when it starts with ``{``).

    :class:`LabelMapError` (a :class:`ConfigError`) naming ``source`` and the line for
    malformed text, duplicate keys, empty labels or seed lists, and values of the wrong type.
    """
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise _err(source, None, f"{len(data):,} bytes; at most {max_bytes:,} (label-map --max-bytes)")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise _err(source, None, f"not UTF-8 (byte offset {e.start})") from None
    text = data.lstrip("\ufeff")
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("{") else "csv"
    if fmt not in ("json", "csv"):
        raise ConfigError(f"label map format {fmt!r} should be json or csv")
    entries = _parse_json(text, source) if fmt == "json" else _parse_csv(text, source)
    if not entries:
        raise _err(source, None, "no entries")
    return LabelMap(tuple(entries), source)


def read_label_map(path: str | Path, max_bytes: int = MAX_MAP_BYTES) -> LabelMap:
    """:func:`parse_label_map` of a file (format from the suffix ``.json`` / ``.csv``, else sniffed),
    refused above ``max_bytes`` (4 MiB) before it is read."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no such label map file: {str(p)!r}")
    if p.stat().st_size > max_bytes:
        raise _err(p.name, None, f"{p.stat().st_size:,} bytes; at most {max_bytes:,} (label-map --max-bytes)")
    suffix = p.suffix.lower()
    fmt = "json" if suffix == ".json" else "csv" if suffix in (".csv", ".txt") else None
    return parse_label_map(p.read_bytes(), fmt, source=p.name, max_bytes=max_bytes)


# -- against a run ---------------------------------------------------------------------


def _seed_clusters(ws: Any, run_id: str, terms: list[str]) -> dict[str, tuple[int, str]]:
    """term -> (cluster, how): ``document`` (a document's text is the term), ``document
    (case-insensitive)``, or ``assigned`` (encoded and assigned like a new text)."""
    m = ws.manifest(run_id)
    corpus_id = m.corpus_id or ws.manifest(m.embedding_id).corpus_id
    labels = np.load(ws.file(run_id, "labels.npy"), mmap_mode="r")
    docs = load_docs(ws, corpus_id, columns=["text"])["text"]
    want = set(terms)
    lower = {t.lower() for t in terms}
    exact: dict[str, Counter] = {}
    folded: dict[str, Counter] = {}
    for i, t in enumerate(docs.tolist()):
        if t in want:
            exact.setdefault(t, Counter())[int(labels[i])] += 1
        tl = t.lower()
        if tl in lower:
            folded.setdefault(tl, Counter())[int(labels[i])] += 1
    out: dict[str, tuple[int, str]] = {}
    rest = []
    for t in terms:
        if t in exact:
            out[t] = (exact[t].most_common(1)[0][0], "document")
        elif t.lower() in folded:
            out[t] = (folded[t.lower()].most_common(1)[0][0], "document (case-insensitive)")
        else:
            rest.append(t)
    if rest:
        res = assign(ws, run_id, rest)
        for t, c in zip(rest, res.labels.tolist(), strict=True):
            out[t] = (int(c), "assigned")
    return out


def resolve_label_map(ws: Any, run_id: str, lmap: LabelMap) -> ResolvedMap:
    """Check ``lmap`` against run ``run_id``: cluster id -> label.

    Cluster entries name a cluster by id (0..k-1) or by its name in the run; seed entries
    give their label to every cluster holding one of their terms (a cluster holding seeds of
    several labels takes the label with the most seeds there). A cluster entry wins over
    seeds. :class:`LabelMapError` naming the line for an unknown cluster, a cluster mapped
    twice, seeds that all fall in noise, or a cluster with equally many seeds of two labels.
    """
    src = lmap.source
    explicit: dict[int, tuple[str, int]] = {}
    for e in lmap.entries:
        if e.kind != "cluster":
            continue
        try:
            cid = resolve_cluster(ws, run_id, e.cluster)
        except ConfigError as ex:
            raise _err(src, e.line, f"unknown cluster {e.cluster!r}: {ex}") from None
        if cid in explicit:
            raise _err(src, e.line, f"cluster {cid} is mapped twice (first on line {explicit[cid][1]})")
        explicit[cid] = (e.label, e.line)
    seed_entries = [e for e in lmap.entries if e.kind == "seeds"]
    resolved = ResolvedMap(run_id, {c: lab for c, (lab, _) in explicit.items()})
    if not seed_entries:
        return resolved
    where = _seed_clusters(ws, run_id, sorted({t for e in seed_entries for t in e.terms}))
    votes: dict[int, Counter] = {}
    lines: dict[tuple[int, str], int] = {}
    for e in seed_entries:
        info = []
        hit = 0
        for t in e.terms:
            c, how = where[t]
            info.append({"term": t, "cluster": c, "how": how})
            if c < 0:
                resolved.notes.append(f"line {e.line}: seed term {t!r} of {e.label!r} falls in noise; ignored")
                continue
            hit += 1
            votes.setdefault(c, Counter())[e.label] += 1
            lines.setdefault((c, e.label), e.line)
        if not hit:
            raise _err(src, e.line, f"no seed term of {e.label!r} falls in a cluster of run {run_id} (all noise)")
        resolved.seeds.append({"line": e.line, "label": e.label, "terms": info})
    for c, counter in sorted(votes.items()):
        if c in explicit:
            continue
        top = counter.most_common()
        if len(top) > 1 and top[0][1] == top[1][1]:
            a, b = top[0][0], top[1][0]
            raise _err(src, max(lines[(c, a)], lines[(c, b)]),
                       f"cluster {c} holds as many seed terms of {a!r} (line {lines[(c, a)]}) as of {b!r} "
                       f"(line {lines[(c, b)]}); map it explicitly or change the seeds")
        resolved.labels[c] = top[0][0]
    return resolved


def label_map_edit(labels: dict[int, str]) -> dict[str, Any]:
    """The run version's ``edit``: ``{"op": "label_map", "labels": {"<id>": label}}`` (sorted ids)."""
    return {"op": "label_map", "labels": {str(c): labels[c] for c in sorted(labels)}}


@dataclass
class AppliedMap:
    """What :func:`apply_label_map` did: the version ``run_id``, its ``parent``, the labels
    given (cluster id -> label), the clusters left ``unmapped``, seed details, notes, and
    whether the version already existed (``cached``)."""

    run_id: str
    parent: str
    labels: dict[int, str]
    unmapped: list[int]
    seeds: list[dict[str, Any]]
    notes: list[str]
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (label keys as strings)."""
        return {"run_id": self.run_id, "parent": self.parent,
                "labels": {str(c): v for c, v in sorted(self.labels.items())},
                "unmapped": self.unmapped, "seeds": self.seeds, "notes": self.notes, "cached": self.cached}


def apply_label_map(ws: Any, run_id: str, lmap: LabelMap) -> AppliedMap:
    """Write the run version of ``run_id`` named by ``lmap`` (see :func:`resolve_label_map`).

    The rows keep their clusters; the version records ``parent_run``, the edit
    (:func:`label_map_edit`) and the names; the same map on the same run is a cache hit.
    """
    resolved = resolve_label_map(ws, run_id, lmap)
    labels = np.asarray(np.load(ws.file(run_id, "labels.npy")), dtype=np.int64)
    res = derive_run(ws, run_id, labels, edit=label_map_edit(resolved.labels), names=dict(resolved.labels))
    k = int(ws.manifest(run_id).k)
    return AppliedMap(
        run_id=res.run_id, parent=run_id, labels=resolved.labels,
        unmapped=[c for c in range(k) if c not in resolved.labels], seeds=resolved.seeds,
        notes=resolved.notes, cached=bool(getattr(res, "cached", False)),
    )


def export_label_map(ws: Any, run_id: str, fmt: Literal["json", "csv"] = "json") -> str:
    """A run's cluster names as a label map file's text (JSON ``{"id": name}`` or CSV
    ``cluster,label``), which :func:`parse_label_map` reads back."""
    return format_label_map(run_names(ws, run_id), fmt)


def format_label_map(labels: dict[int, str], fmt: Literal["json", "csv"] = "json") -> str:
    """``{cluster id: label}`` as a label map file's text (JSON or CSV), ids in order."""
    items = sorted((int(c), str(v)) for c, v in labels.items())
    if fmt == "json":
        return json.dumps({str(c): v for c, v in items}, ensure_ascii=False, indent=1) + "\n"
    if fmt != "csv":
        raise ConfigError(f"label map format {fmt!r} should be json or csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cluster", "label"])
    w.writerows(items)
    return buf.getvalue()
