"""Workspace on disk: content-addressed artifacts, atomic writes, locks.

A workspace is one folder. Every artifact (a corpus, an embedding matrix, a
clustering run, a sample, ...) lives in ``<root>/<kind>/<artifact_id>/`` and
holds plain files (Parquet, ``.npy``, JSON) plus a ``manifest.json``. The
manifest is written last, and the whole folder is built in a temporary folder
and renamed into place, so a killed process never leaves a half-written
artifact that looks complete. Manifests are typed: one frozen dataclass per kind
(:class:`CorpusManifest`, :class:`EmbeddingManifest`, :class:`RunManifest`,
:class:`DescriptionManifest`, :class:`SampleManifest`) that writers build and
:meth:`Workspace.manifest` / :meth:`Workspace.list` return.

Artifact ids are ``<prefix>-<16 hex digits>`` where the digits are a hash of
the kind, the parent id, the canonical JSON of the stage config and
:data:`FORMAT_VERSION`. The same inputs therefore always map to the same id.
:func:`check_id` is the one full-grammar check; every id that comes from outside
(CLI, app, SQL scope, export) and every id joined into a path goes through it.

Lineage: every manifest records ``parents``, the ids the artifact was derived from
(embedding -> corpus, run -> embedding and its ``parent_run`` when it was derived
from another run, description and sample -> run). :meth:`Workspace.parents`,
:meth:`Workspace.dependents` and :meth:`Workspace.corpus_of` walk that graph, and
:meth:`Workspace.remove` deletes an artifact together with everything derived from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import numbers
import os
import re
import shutil
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

import numpy as np

from textcluster.errors import IdError, OutputPathError, StoreError

logger = logging.getLogger(__name__)

#: Bumped when the on-disk layout of any artifact changes; old ids stop matching.
FORMAT_VERSION = 1

#: Artifact kind -> id prefix.
KINDS: dict[str, str] = {
    "corpus": "cor",
    "embedding": "emb",
    "run": "run",
    "description": "dsc",
    "sample": "smp",
    "export": "exp",
}
_PREFIX_TO_KIND = {v: k for k, v in KINDS.items()}

ENV_WORKSPACE = "TEXTCLUSTER_WORKSPACE"
#: ``<workspace>/tags/<corpus id>.json``: a corpus's tags (textcluster.query.tags), removed with the corpus.
TAGS_DIR = "tags"


def default_workspace() -> Path:
    """The workspace folder used when none is given: ``$TEXTCLUSTER_WORKSPACE`` or ``./workspace``."""
    return Path(os.environ.get(ENV_WORKSPACE) or "workspace")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; dataclasses become dicts, tuples lists."""

    def default(o: Any) -> Any:
        if is_dataclass(o) and not isinstance(o, type):
            return asdict(o)
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, set | frozenset):
            return sorted(o)
        raise TypeError(f"cannot serialise {type(o).__name__} into an artifact config")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default, ensure_ascii=False)


def make_id(kind: str, parent: str | None, config: Any) -> str:
    """Content-addressed artifact id for a stage output.

    ``kind`` is a key of :data:`KINDS`; ``parent`` the id of the input artifact
    (or a content hash of an input file); ``config`` anything :func:`canonical_json`
    accepts. Returns e.g. ``"emb-3f2a9c0d1e4b5a67"``.
    """
    if kind not in KINDS:
        raise StoreError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
    h = hashlib.sha256()
    h.update(f"{kind}\0{parent or ''}\0{FORMAT_VERSION}\0".encode())
    h.update(canonical_json(config).encode())
    return f"{KINDS[kind]}-{h.hexdigest()[:16]}"


#: Artifact ids: a kind's prefix, a dash, 16 lowercase hex digits (nothing before or after).
ID_PATTERN = "(" + "|".join(KINDS.values()) + ")-[0-9a-f]{16}"
_ID_RE = re.compile(ID_PATTERN)
#: The id grammar in words, as error messages show it.
ID_GRAMMAR = "<prefix>-<16 lowercase hex digits> with prefix one of " + ", ".join(KINDS.values())


def _shown(text: object, limit: int = 80) -> str:
    """``repr`` of a received value, cut to ``limit`` characters (an error names it, never floods)."""
    if isinstance(text, str) and len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def check_id(text: object, kind: str | None = None) -> str:
    """``text`` when it is a complete artifact id (of ``kind``, when given); else :class:`IdError`.

    The grammar is ``^(cor|emb|run|dsc|smp|exp)-[0-9a-f]{16}$`` matched in full: no
    path separators, dots, upper-case hex, whitespace or trailing newline get through,
    so a checked id is safe to join into a path or to quote in SQL. ``kind`` is a key of
    :data:`KINDS` (``"run"``, ``"sample"``, ...). The error names the text received and
    the grammar (or the kind expected and the kind received).
    """
    if kind is not None and kind not in KINDS:
        raise StoreError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
    if not isinstance(text, str) or _ID_RE.fullmatch(text) is None:
        if kind is None:
            raise IdError(f"{_shown(text)} is not an artifact id; ids look like {ID_GRAMMAR}")
        raise IdError(
            f"{_shown(text)} is not {_a(kind)} id; {kind} ids look like {KINDS[kind]}-<16 lowercase hex digits>"
        )
    if kind is not None and not text.startswith(KINDS[kind] + "-"):
        got = _PREFIX_TO_KIND[text.split("-", 1)[0]]
        raise IdError(
            f"{text!r} is {_a(got)} id; expected {_a(kind)} id ({KINDS[kind]}-<16 lowercase hex digits>)"
        )
    return text


def is_id(text: object, kind: str | None = None) -> bool:
    """True when :func:`check_id` accepts ``text`` (for filtering, where no error is wanted)."""
    try:
        check_id(text, kind)
    except IdError:
        return False
    return True


def kind_of(artifact_id: str) -> str:
    """The artifact kind of a full id (``"emb-..."`` -> ``"embedding"``); :class:`IdError` for
    anything that is not an id (see :func:`check_id`)."""
    return _PREFIX_TO_KIND[check_id(artifact_id).split("-", 1)[0]]


# -- typed manifests -----------------------------------------------------------------------
#
# One frozen dataclass per artifact kind holds what its stage writes into ``manifest.json``.
# Writers build one (a misspelled field is a TypeError, a missing required one too, a value of
# the wrong type a StoreError) and hand it to Workspace.write; readers get one back from
# Workspace.manifest / Workspace.list and use attributes. ``to_dict`` gives the same JSON keys
# the stages always wrote; ``from_dict`` reads manifests written by older versions (missing
# optional keys take their defaults, unknown keys are kept in ``extra``).

#: Field metadata: leave the key out of ``to_dict`` when the value is None (the file never had it).
_OMIT_NONE = {"omit_none": True}
#: Fields filled in by :meth:`Workspace.write`; required when a manifest is read back.
_WRITTEN_BY_STORE = ("id",)


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not get_args(tp) else str(tp).replace("typing.", "")


def _conform(value: Any, tp: Any) -> tuple[bool, Any]:
    """(ok, value) for ``value`` checked against the annotation ``tp``; numpy scalars become
    Python numbers and ints become floats where a float is expected (JSON keeps them apart)."""
    if tp is Any:
        return True, value
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        for arg in args:
            ok, v = _conform(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        if isinstance(value, bool) or (getattr(value, "shape", None) == () and value.dtype.kind == "b"):
            return True, bool(value)
        return False, value
    if tp is int:
        return (True, int(value)) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else (False, value)
    if tp is float:
        return (True, float(value)) if isinstance(value, numbers.Real) and not isinstance(value, bool) else (False, value)
    if tp is str:
        return isinstance(value, str), value
    if origin is list:
        if not isinstance(value, list | tuple):
            return False, value
        done = [_conform(v, args[0]) for v in value]
        if not all(ok for ok, _ in done):
            return False, value
        new = [v for _, v in done]
        return True, value if isinstance(value, list) and all(a is b for a, b in zip(new, value, strict=True)) else new
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return False, value
        done = {k: _conform(v, args[1]) for k, v in value.items()}
        if not all(ok for ok, _ in done.values()):
            return False, value
        new = {k: v for k, (_, v) in done.items()}
        same = isinstance(value, dict) and all(new[k] is value[k] for k in value)
        return True, value if same else new
    raise TypeError(f"manifest field type {tp!r} is not supported")  # a bug in a Manifest class


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """The fields every ``manifest.json`` has; one subclass per artifact kind.

    ``id``, ``format_version``, ``created`` and ``parents`` are filled in by
    :meth:`Workspace.write` (a writer leaves them at their defaults). ``parents`` is None for a
    manifest written before lineage was recorded (:func:`parents_of` then derives them).
    ``checksums`` (set by :meth:`Workspace.write`): ``{relative file name: {"sha256", "size",
    "mtime_ns"}}`` of every file of the artifact but the manifest, checked by
    :meth:`Workspace.verify` (None for an artifact written before checksums existed).
    ``extra``: keys of the file that this version does not know, kept so that nothing read is
    lost and ``to_dict`` gives them back.
    """

    kind: ClassVar[str] = ""

    id: str = ""
    format_version: int = FORMAT_VERSION
    created: float = 0.0
    parents: list[str] | None = field(default=None, metadata=_OMIT_NONE)
    checksums: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            ok, new = _conform(value, hints[f.name])
            if not ok:
                where = f" of {self.id}" if self.id else ""
                raise StoreError(
                    f"{self.kind} manifest{where}: {f.name}={_shown(value)} should be {_type_name(hints[f.name])}"
                )
            if new is not value:
                object.__setattr__(self, f.name, new)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json``: ``kind``, every field (a field marked to be
        omitted when None is left out then), and the ``extra`` keys."""
        out = dict(self.extra)
        out["kind"] = self.kind
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.metadata.get("omit_none")):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], artifact: str | None = None) -> Self:
        """The typed manifest of the JSON object ``data`` (as read from ``manifest.json``).

        Keys this version does not know go to ``extra``; a missing optional key takes its
        default. :class:`StoreError`, naming the artifact (``data["id"]``, else ``artifact``)
        and the key, when ``data`` is not an object, its ``kind`` is not this class's, a
        required key is missing, or a value has the wrong type.
        """
        name = artifact or "?"
        if not isinstance(data, Mapping):
            raise StoreError(f"manifest of {name} is not a JSON object (got {type(data).__name__})")
        if isinstance(data.get("id"), str):
            name = data["id"]
        if "kind" not in data:
            raise StoreError(f"manifest of {name} has no 'kind' (a required key)")
        if data["kind"] != cls.kind:
            raise StoreError(f"manifest of {name} says kind={_shown(data['kind'])}; expected {cls.kind!r}")
        known = {f.name for f in fields(cls)} - {"extra"}
        for key in [*_WRITTEN_BY_STORE, *_required(cls)]:
            if key not in data:
                raise StoreError(f"manifest of {cls.kind} {name} has no {key!r} (a required key)")
        extra = {k: v for k, v in data.items() if k not in known and k != "kind"}
        return cls(**{k: data[k] for k in known if k in data}, extra=extra)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


@functools.cache
def _required(cls: type) -> tuple[str, ...]:
    """Fields without a default: a writer must give them and a reader needs them."""
    return tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)


@dataclass(frozen=True, kw_only=True)
class CorpusManifest(Manifest):
    """``corpus/<id>/manifest.json``: the ingest report, the spec, and where the bytes came from.

    kept: documents in ``docs.parquet`` (rows ``0..kept-1``); rows_read / rejected / duplicates /
    rejections (the first 1,000, ``{"row", "reason"}``) / text_fields / format / encoding /
    notes: the :class:`~textcluster.ingest.corpus.IngestReport`; source: the input's file name;
    sha256: of its bytes; spec: ``CorpusSpec.to_dict()``; columns: of ``docs.parquet``;
    n_docs: the same as ``kept``.
    """

    kind: ClassVar[str] = "corpus"

    kept: int
    rows_read: int = 0
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    text_fields: list[str] = field(default_factory=list)
    format: str = ""
    encoding: str = ""
    notes: list[str] = field(default_factory=list)
    source: str = ""
    sha256: str = ""
    spec: dict[str, Any] | None = None
    columns: list[str] = field(default_factory=list)
    n_docs: int | None = None


@dataclass(frozen=True, kw_only=True)
class EmbeddingManifest(Manifest):
    """``embedding/<id>/manifest.json``: the matrix's shape and how it was made.

    n x dim: the shape of ``embeddings.npy``; corpus_id: the corpus embedded; encoder: the
    encoder's name; encoder_config: ``EncoderConfig.to_dict()``; model_fingerprint: what
    identifies the weights; model: the encoder's resolved settings; dtype; normalized (L2);
    truncated: texts cut at the model's length; seconds: compute time; device: where it ran
    (comma-separated when several); files: role -> file name.
    """

    kind: ClassVar[str] = "embedding"

    n: int
    dim: int
    corpus_id: str | None = None
    encoder: str = ""
    encoder_config: dict[str, Any] | None = None
    model_fingerprint: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    normalized: bool | None = None
    truncated: int = 0
    seconds: float = 0.0
    device: str = ""
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunManifest(Manifest):
    """``run/<id>/manifest.json``: every setting of a clustering run and what it found.

    embedding_id (and corpus_id): the input; n x dim: its shape; reducer / clusterer: the
    configs' ``to_dict()``; k: clusters found; noise: share of rows labelled -1. The rest:
    space_dim (the clusterer's space), k_centers, noise_before_assign, clusterer_params (as
    validated), seed, assign_mode (``centroid`` | ``model`` | ``knn``), can_mark_noise, fit_rows,
    projection (``{"method", "cached"}``), data_center_distance (written or skipped), metrics
    (named scores), metrics_space (the space they were computed in, when recorded), timings
    (seconds by step), versions (library versions), notes, backend, peak_rss_bytes, history
    (self-training curves, when any), encoder / encoder_config (copied from the embedding).
    parent_run: the run this one was derived from (None when computed from an embedding).
    Versions (:mod:`textcluster.cluster.versions`) also record edit (the JSON edit that made
    them), label_map (parent cluster id -> own id, list of candidate ids, or -1) and names
    (cluster id as text -> name; any run may carry names).
    auto_k: the sweep that chose k when ``k="auto"`` (``{method, candidates, scores, chosen,
    k_range, sample, seed, seconds, warning, raw_scores, replicates}``: ``scores`` is the mean
    of ``replicates`` fits per candidate, ``raw_scores`` each fit's curve); outliers: ``{q, marked}`` when ``outliers`` was set;
    stability: ``{seeds, per_cluster, mean, unstable, seconds}`` when ``stability`` was set.
    """

    kind: ClassVar[str] = "run"

    embedding_id: str
    n: int
    dim: int
    k: int
    noise: float
    reducer: dict[str, Any]
    clusterer: dict[str, Any]
    parent_run: str | None = None
    corpus_id: str | None = None
    encoder: str | None = None
    encoder_config: dict[str, Any] | None = None
    space_dim: int | None = None
    k_centers: int | None = None
    noise_before_assign: float | None = None
    clusterer_params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    assign_mode: str = "centroid"
    can_mark_noise: bool = False
    fit_rows: int | None = None
    projection: dict[str, Any] = field(default_factory=dict)
    data_center_distance: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    metrics_space: str | None = field(default=None, metadata=_OMIT_NONE)
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    backend: str | None = None
    peak_rss_bytes: int | None = field(default=None, metadata=_OMIT_NONE)
    history: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    edit: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    label_map: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    names: dict[str, str] | None = field(default=None, metadata=_OMIT_NONE)
    auto_k: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    outliers: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    stability: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)


@dataclass(frozen=True, kw_only=True)
class DescriptionManifest(Manifest):
    """``description/<id>/manifest.json``: how ``clusters.json`` was made.

    run_id (and corpus_id): what was described; top_n keywords and examples per cluster;
    max_docs: rows the keywords were counted on; llm: the LLM settings (never the key) or None;
    n_clusters: clusters described (noise included).
    """

    kind: ClassVar[str] = "description"

    run_id: str
    corpus_id: str | None = None
    top_n: int = 10
    examples: int = 5
    max_docs: int = 200_000
    llm: dict[str, Any] | None = None
    n_clusters: int | None = None


@dataclass(frozen=True, kw_only=True)
class SampleManifest(Manifest):
    """``sample/<id>/manifest.json``: the rows ``sample.parquet`` holds and the policy behind them.

    run_id (and embedding_id, corpus_id): what was sampled; n: rows drawn; policy:
    ``SamplingPolicy.to_dict()`` with cluster labels resolved to ids; requested_policy: the policy
    as asked, when it named clusters otherwise; available: rows the policy could draw from;
    per_cluster: cluster id (as text) -> rows drawn.
    """

    kind: ClassVar[str] = "sample"

    run_id: str
    n: int
    policy: dict[str, Any]
    embedding_id: str | None = None
    corpus_id: str | None = None
    requested_policy: dict[str, Any] | None = field(default=None, metadata=_OMIT_NONE)
    available: int | None = None
    per_cluster: dict[str, int] = field(default_factory=dict)


#: Artifact kind -> its manifest class (exports are files outside the workspace: no manifest).
MANIFEST_TYPES: dict[str, type[Manifest]] = {
    cls.kind: cls for cls in (CorpusManifest, EmbeddingManifest, RunManifest, DescriptionManifest, SampleManifest)
}


def manifest_type(kind: str) -> type[Manifest]:
    """The manifest class of an artifact kind; :class:`StoreError` for a kind without one."""
    if kind not in MANIFEST_TYPES:
        if kind in KINDS:
            raise StoreError(f"{kind} artifacts have no manifest in the workspace")
        raise StoreError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
    return MANIFEST_TYPES[kind]


def manifest_from_dict(data: Mapping[str, Any], artifact_id: str) -> Manifest:
    """The typed manifest of artifact ``artifact_id`` from its JSON object: the class is the one of
    the id's kind, and a file whose ``kind`` disagrees with the id's prefix is a :class:`StoreError`."""
    return manifest_type(kind_of(artifact_id)).from_dict(data, artifact_id)


#: Where an old manifest (written before ``parents`` was recorded) names its parent, nearest first.
_LEGACY_PARENT_KEYS: dict[str, tuple[str, ...]] = {
    "corpus": (),
    "embedding": ("corpus_id",),
    "run": ("embedding_id", "corpus_id"),
    "description": ("run_id", "embedding_id", "corpus_id"),
    "sample": ("run_id", "embedding_id", "corpus_id"),
    "export": ("sample_id", "run_id"),
}


def parents_of(manifest: Manifest | Mapping[str, Any]) -> list[str]:
    """The ids an artifact was derived from, read from its manifest (typed, or its raw JSON dict).

    ``parents`` when recorded; for older manifests, derived from the nearest of their
    ``corpus_id`` / ``embedding_id`` / ``run_id`` keys (plus ``parent_run`` for a run).
    Entries that are not ids are skipped (and logged).
    """
    if isinstance(manifest, Mapping):
        get = manifest.get
    else:
        def get(key: str) -> Any:
            return getattr(manifest, key, None)

    raw = get("parents")
    if not isinstance(raw, list):
        raw = []
        for key in _LEGACY_PARENT_KEYS.get(str(get("kind")), ()):
            if get(key):
                raw.append(get(key))
                break
        if get("parent_run"):
            raw.append(get("parent_run"))
    out: list[str] = []
    for p in raw:
        if is_id(p) and p not in out:
            out.append(p)
        elif not is_id(p):
            logger.warning("manifest of %s names a parent that is not an id: %s", get("id"), _shown(p))
    return out


def label_of(manifest: Manifest) -> str:
    """A short human label of an artifact from its manifest (no id): the corpus's file name and
    size, the encoder and matrix shape, the run's method and k, the sample's size and policy."""
    m = manifest
    bits: list[str] = []
    if isinstance(m, CorpusManifest):
        if m.source:
            bits.append(m.source.replace("\\", "/").rsplit("/", 1)[-1])
        bits.append(f"{m.kept:,} docs")
    elif isinstance(m, EmbeddingManifest):
        if m.encoder:
            bits.append(m.encoder)
        bits.append(f"{m.n:,} × {m.dim}")
    elif isinstance(m, RunManifest):
        how = str(m.clusterer.get("method") or "")
        if m.reducer.get("method") and m.reducer["method"] != "none" and how:
            how = f"{m.reducer['method']} → {how}"
        if how:
            bits.append(how)
        bits.append(f"k={m.k}")
        if m.parent_run:
            bits.append(f"from {m.parent_run}")
    elif isinstance(m, DescriptionManifest):
        if m.n_clusters is not None:
            bits.append(f"{m.n_clusters} clusters described")
        if m.llm:
            bits.append("LLM labels")
    elif isinstance(m, SampleManifest):
        bits.append(f"{m.n:,} rows")
        if m.policy.get("allocation"):
            bits.append(f"{m.policy['allocation']}/{m.policy.get('within', '?')}")
    return " · ".join(bits)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class DamagedArtifactError(StoreError):
    """A file of an artifact is missing or differs from the size or SHA-256 its manifest
    recorded when it was written (names the artifact, the file and what differs)."""


ENV_VERIFY_FULL_BYTES = "TEXTCLUSTER_VERIFY_FULL_BYTES"
#: Files up to this size are fully re-hashed when verified; larger files are checked by size and
#: modification time (a changed time triggers a full hash). ``TEXTCLUSTER_VERIFY_FULL_BYTES``.
DEFAULT_VERIFY_FULL_BYTES = 64 << 20

# (path, size, mtime_ns, inode) of files this process has fully hashed and found intact.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def verify_full_bytes() -> int:
    """The size up to which :meth:`Workspace.verify` re-hashes a file (env
    ``TEXTCLUSTER_VERIFY_FULL_BYTES``, default 64 MiB; 0: only size and time, unless asked)."""
    raw = os.environ.get(ENV_VERIFY_FULL_BYTES, "").strip()
    if not raw:
        return DEFAULT_VERIFY_FULL_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StoreError(f"{ENV_VERIFY_FULL_BYTES}={raw!r} should be a whole number of bytes >= 0")
    return value


def checksum_files(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative name: {"sha256", "size", "mtime_ns"}}`` of every regular file under ``folder``
    except ``manifest.json`` (what :meth:`Workspace.write` records; each file is read once)."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        rel = p.relative_to(folder).as_posix()
        if rel == "manifest.json":
            continue
        st = p.stat()
        out[rel] = {"sha256": file_sha256(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def _check_file(artifact_id: str, p: Path, rel: str, want: Mapping[str, Any], full: bool | None) -> None:
    """:class:`DamagedArtifactError` when ``p`` is not the file recorded as ``want``."""
    where = f"artifact {artifact_id}: file {rel!r} ({p})"
    try:
        st = p.stat()
    except OSError as e:
        raise DamagedArtifactError(f"{where} is missing ({e.strerror}); the artifact is damaged") from e
    if st.st_size != want.get("size"):
        raise DamagedArtifactError(
            f"{where} has {st.st_size:,} bytes; {want.get('size'):,} were written: the artifact is damaged"
        )
    key = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _VERIFIED:
        return
    if full is None:
        full = st.st_size <= verify_full_bytes() or st.st_mtime_ns != want.get("mtime_ns")
    if not full:
        return
    got = file_sha256(p)
    if got != want.get("sha256"):
        raise DamagedArtifactError(
            f"{where} has SHA-256 {got[:16]}..., {str(want.get('sha256'))[:16]}... was written: "
            "the artifact is damaged"
        )
    _VERIFIED.add(key)


ENV_TMP_MAX_AGE_HOURS = "TEXTCLUSTER_TMP_MAX_AGE_HOURS"
#: Leftovers of killed processes (``tmp/`` entries, ``.*.tmp`` files of :func:`atomic_path`,
#: ``.incoming-*`` uploads) older than this are swept at start (``TEXTCLUSTER_TMP_MAX_AGE_HOURS``).
DEFAULT_TMP_MAX_AGE_HOURS = 24.0
ENV_PARTIAL_MAX_AGE_DAYS = "TEXTCLUSTER_PARTIAL_MAX_AGE_DAYS"
#: ``partial/<id>/`` (resumable work) untouched for this long and not locked is swept
#: (``TEXTCLUSTER_PARTIAL_MAX_AGE_DAYS``); 0 keeps it forever.
DEFAULT_PARTIAL_MAX_AGE_DAYS = 30.0
#: The sweep at start runs at most once per this many seconds per workspace (a marker file).
SWEEP_EVERY_SECONDS = 3600.0
_SWEEP_MARKER = ".last-sweep"


def _env_age(name: str, default: float, unit: float) -> float:
    """Seconds from the env var ``name`` (a number of ``unit`` seconds), else ``default``."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not (value >= 0 and value < float("inf")):
        raise StoreError(f"{name}={raw!r} should be a finite number >= 0")
    return value * unit


def _newest_mtime(p: Path) -> float:
    """The newest modification time of ``p`` and of what is directly in it (a folder being
    written into keeps a fresh time)."""
    newest = p.lstat().st_mtime
    if p.is_dir() and not p.is_symlink():
        with os.scandir(p) as it:
            for e in it:
                with contextlib.suppress(OSError):
                    newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
    return newest


class Workspace:
    """A folder of content-addressed artifacts.

    Parameters
    ----------
    root:
        Folder of the workspace; created on first write. Defaults to
        :func:`default_workspace`.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_workspace()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- paths -------------------------------------------------------------
    def path(self, artifact_id: str) -> Path:
        """Folder of a (complete or not yet written) artifact; :class:`IdError` for a text that is
        not a full artifact id (so nothing like ``run-../../x`` ever reaches a path join)."""
        return self.root / kind_of(artifact_id) / artifact_id

    def cache_dir(self, embedding_id: str) -> Path:
        """``<root>/cache/<embedding_id>/``: results derived from one embedding that do not depend
        on ``k`` (the UMAP-reduced matrix, the 2-D projection). Not an artifact: safe to delete,
        and removed with its embedding by :meth:`remove`."""
        return self.root / "cache" / check_id(embedding_id, "embedding")

    def tags_file(self, corpus_id: str) -> Path:
        """``<root>/tags/<corpus_id>.json``: a corpus's tags (:mod:`textcluster.query.tags`). Not an
        artifact; removed with its corpus by :meth:`remove`."""
        return self.root / TAGS_DIR / f"{check_id(corpus_id, 'corpus')}.json"

    def partial_dir(self, artifact_id: str) -> Path:
        """A folder for resumable work in progress (e.g. embedding chunks); created on demand.

        It survives a killed process, is not an artifact, and is removed by
        :meth:`write` once the artifact is complete.
        """
        p = self.root / "partial" / check_id(artifact_id)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def exists(self, artifact_id: str) -> bool:
        """True when the artifact is complete (its manifest is in place)."""
        return (self.path(artifact_id) / "manifest.json").is_file()

    def manifest(self, artifact_id: str) -> Manifest:
        """The typed manifest of a complete artifact (a :class:`RunManifest` for a ``run-`` id, ...).

        :class:`StoreError` when the artifact is missing, its file is unreadable, its ``kind``
        disagrees with the id's prefix, or a required key is missing (see :meth:`Manifest.from_dict`).
        """
        p = self.path(artifact_id) / "manifest.json"
        if not p.is_file():
            known = [m.id for m in self.list(kind_of(artifact_id))][:20]
            raise StoreError(
                f"no {kind_of(artifact_id)} {artifact_id!r} in workspace {str(self.root)!r}"
                + (f"; known: {', '.join(known)}" if known else "")
            )
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"manifest of {artifact_id!r} is unreadable: {e}") from e
        return manifest_from_dict(data, artifact_id)

    def file(self, artifact_id: str, name: str) -> Path:
        """Path of one file of a complete artifact; :class:`StoreError` if the artifact or file is
        missing, :class:`DamagedArtifactError` if it differs from what was written (see
        :meth:`verify`: size always; the SHA-256 of a small file or of one whose time changed)."""
        m = self.manifest(artifact_id)
        p = self.path(artifact_id) / name
        want = (m.checksums or {}).get(name)
        if want is not None:
            _check_file(artifact_id, p, name, want, None)
        elif not p.exists():
            raise StoreError(f"artifact {artifact_id!r} has no file {name!r}")
        return p

    def verify(self, artifact_id: str, *, full: bool | None = None) -> None:
        """Check every file of a complete artifact against the checksums its manifest recorded
        when it was written; :class:`DamagedArtifactError` naming the first file that differs.

        ``full=None`` (the default, the cheap check used on every cache hit): every file's size;
        the SHA-256 of files up to :func:`verify_full_bytes` (64 MiB), of larger files whose
        modification time changed, and each file at most once per process while it stays
        unchanged. ``full=True``: the SHA-256 of every file; ``full=False``: sizes only. An
        artifact written before checksums existed passes (there is nothing to compare).
        """
        m = self.manifest(artifact_id)
        folder = self.path(artifact_id)
        for rel, want in sorted((m.checksums or {}).items()):
            _check_file(artifact_id, folder / rel, rel, want, full)

    def cached(self, artifact_id: str) -> bool:
        """True when the artifact is complete and intact (:meth:`verify`), so a stage may serve
        it; a damaged one is logged, moved out of the way (its dependents are kept: the stage
        recomputes the same id) and False is returned, so the stage computes it again."""
        if not self.exists(artifact_id):
            return False
        try:
            self.verify(artifact_id)
        except DamagedArtifactError as e:
            logger.warning("%s; recomputing it", e)
            with self._workspace_lock(shared=False):
                self._remove_tree(self.path(artifact_id), self.root.resolve())
            return False
        return True

    def list(self, kind: str) -> list[Manifest]:
        """Typed manifests of all complete artifacts of a kind, newest first.

        A manifest that cannot be read or typed (see :meth:`manifest`) is skipped and logged."""
        cls = manifest_type(kind)
        out = []
        d = self.root / kind
        if d.is_dir():
            for sub in d.iterdir():
                m = sub / "manifest.json"
                if m.is_file():
                    try:
                        out.append(cls.from_dict(json.loads(m.read_text(encoding="utf-8")), sub.name))
                    except (OSError, json.JSONDecodeError, StoreError) as e:
                        logger.warning("skipping manifest %s: %s", m, e)
        out.sort(key=lambda m: m.created, reverse=True)
        return out

    # -- writing -----------------------------------------------------------
    def write(
        self,
        artifact_id: str,
        manifest: Manifest | Callable[[], Manifest],
        writer: Callable[[Path], None] | None = None,
        *,
        parents: Iterable[str] | None = None,
        parent_run: str | None = None,
    ) -> Path:
        """Build an artifact atomically and return its folder.

        ``manifest``: the typed manifest of the id's kind (a :class:`RunManifest` for a
        ``run-`` id, ...), or a function without arguments returning one, called after
        ``writer`` (for values known only once the files are written: timings, peak memory).
        ``writer(tmp_dir)`` writes the artifact's files into a temporary folder
        on the same file system; then ``manifest.json`` is written (with ``id``,
        ``kind``, ``created`` and ``format_version`` set) and the folder is
        renamed into place. If another process finished the same artifact
        first, its copy is kept and this one discarded.

        ``parents``: the ids the artifact was derived from (checked ids, recorded as
        the manifest's ``parents``); each must still exist when the folder is renamed
        into place (a parent removed meanwhile raises :class:`StoreError`, so no
        orphan appears). ``parent_run`` (runs only): the run this run was derived
        from, recorded as ``parent_run`` (None when it was not) and added to ``parents``.
        None for ``parents`` records nothing; readers then derive the parents from the
        manifest's ``corpus_id`` / ``embedding_id`` / ``run_id`` (see :func:`parents_of`).
        :class:`StoreError` when the manifest is not of the id's kind.
        """
        kind = kind_of(artifact_id)
        lineage: dict[str, Any] = {}
        if parent_run is not None and kind != "run":
            raise StoreError(f"parent_run={parent_run!r} is for runs only; {artifact_id!r} is a {kind}")
        if parents is not None or parent_run is not None:
            plist = [check_id(p) for p in (parents or ())]
            if parent_run is not None and check_id(parent_run, "run") not in plist:
                plist.append(parent_run)
            if artifact_id in plist:
                raise StoreError(f"artifact {artifact_id!r} cannot be its own parent")
            lineage["parents"] = plist
        if kind == "run":
            lineage["parent_run"] = parent_run
        if isinstance(manifest, Manifest) or not callable(manifest):
            self._check_manifest(artifact_id, manifest)  # before any work is done
        final = self.path(artifact_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{artifact_id}.", dir=tmp_root))
        try:
            if writer is not None:
                writer(tmp)
            m = manifest if isinstance(manifest, Manifest) else manifest()
            self._check_manifest(artifact_id, m)
            m = replace(
                m, id=artifact_id, format_version=FORMAT_VERSION, created=time.time(),
                checksums=checksum_files(tmp), **lineage,
            )
            full = m.to_dict()
            write_json_atomic(tmp / "manifest.json", full)
            _fsync_dir(tmp)
            # Shared: writers do not block each other, only a concurrent remove().
            with self._workspace_lock(shared=True):
                gone = [p for p in lineage.get("parents", ()) if not self.exists(p)]
                if gone:
                    raise StoreError(
                        f"cannot write {artifact_id}: its parent {', '.join(gone)} is not in workspace "
                        f"{str(self.root)!r} (removed while it was being built?)"
                    )
                if final.exists() and not (final / "manifest.json").is_file():
                    # Left by an older crash between rename steps: not complete, safe to replace.
                    shutil.rmtree(final, ignore_errors=True)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if (final / "manifest.json").is_file():
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        raise
                _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(self.root / "partial" / artifact_id, ignore_errors=True)
        return final

    @staticmethod
    def _check_manifest(artifact_id: str, manifest: Any) -> None:
        want = manifest_type(kind_of(artifact_id))
        if not isinstance(manifest, want):
            got = type(manifest).__name__
            raise StoreError(
                f"{artifact_id} is {_a(want.kind)}: its manifest should be a {want.__name__}, got {got}"
            )

    # -- lineage -----------------------------------------------------------
    def parents(self, artifact_id: str) -> list[str]:
        """The ids ``artifact_id`` was derived from (empty for a corpus); see :func:`parents_of`."""
        return parents_of(self.manifest(artifact_id))

    def children(self) -> dict[str, list[str]]:
        """Every complete artifact's id -> the ids derived directly from it (sorted), from one
        read of all manifests."""
        out: dict[str, list[str]] = {}
        for kind in MANIFEST_TYPES:
            for m in self.list(kind):
                if not is_id(m.id):
                    continue
                for p in parents_of(m):
                    out.setdefault(p, []).append(m.id)
        return {k: sorted(v) for k, v in out.items()}

    def dependents(self, artifact_id: str) -> list[str]:
        """Every artifact derived from ``artifact_id``, directly or not, children before parents
        (the order to delete them in); ``artifact_id`` itself is not in the list.

        :class:`StoreError` when ``artifact_id`` is not in the workspace.
        """
        self.manifest(artifact_id)
        children = self.children()
        order: list[str] = []
        done: set[str] = {artifact_id}
        # Iterative post-order walk: an artifact is listed after all of its own dependents.
        stack: list[tuple[str, Iterator[str]]] = [(artifact_id, iter(children.get(artifact_id, ())))]
        while stack:
            node, it = stack[-1]
            nxt = next((c for c in it if c not in done), None)
            if nxt is None:
                stack.pop()
                if node != artifact_id:
                    order.append(node)
                continue
            done.add(nxt)
            stack.append((nxt, iter(children.get(nxt, ()))))
        return order

    def corpus_of(self, artifact_id: str) -> str:
        """The corpus an artifact derives from (itself for a corpus), walking up its parents.

        A manifest that records ``corpus_id`` answers at once; otherwise its parents are
        followed. :class:`StoreError` when the artifact is missing or no corpus is named.
        """
        check_id(artifact_id)
        seen: set[str] = set()
        todo = [artifact_id]
        while todo:
            aid = todo.pop(0)
            m = self.manifest(aid)
            if m.kind == "corpus":
                return aid
            cid = getattr(m, "corpus_id", None)
            if is_id(cid, "corpus"):
                return str(cid)
            seen.add(aid)
            todo.extend(p for p in parents_of(m) if p not in seen and p not in todo)
        raise StoreError(
            f"cannot find the corpus of {kind_of(artifact_id)} {artifact_id}: neither its manifest nor "
            "its parents' name a corpus_id or a parent corpus"
        )

    # -- removal -----------------------------------------------------------
    def removal_plan(self, artifact_id: str) -> list[dict[str, str]]:
        """What :meth:`remove` of ``artifact_id`` would remove, in that order (children first,
        the artifact last): one ``{"kind", "id", "label"}`` per artifact (label: :func:`label_of`).
        Pass the ids to :meth:`remove` as ``expected`` once the user has confirmed."""
        out = []
        for aid in [*self.dependents(artifact_id), artifact_id]:
            out.append({"kind": kind_of(aid), "id": aid, "label": label_of(self.manifest(aid))})
        return out

    def remove(self, artifact_id: str, *, expected: Iterable[str] | None = None) -> list[str]:
        """Remove an artifact and everything derived from it; returns the removed ids, children first.

        Runs under an exclusive workspace lock (a concurrent :meth:`write` of a child
        waits, then fails because its parent is gone). An embedding's caches
        (:meth:`cache_dir`) go with it. Symbolic links are never followed out of the
        workspace: an artifact folder that is a link is unlinked (its target is kept),
        and an artifact whose folder resolves outside the workspace is refused before
        anything is removed. A corpus's tags file (``tags/<corpus id>.json``) goes with the
        corpus. ``expected``: the ids the caller showed the user (e.g. from
        :meth:`dependents`); when the workspace has changed since, nothing is removed and
        :class:`StoreError` says what would be removed now.
        """
        check_id(artifact_id)
        with self._workspace_lock(shared=False):
            order = [*self.dependents(artifact_id), artifact_id]
            if expected is not None and set(expected) != set(order):
                raise StoreError(
                    f"the workspace changed since the list was made; removing {artifact_id} would now "
                    f"remove {', '.join(order)}: look again and confirm"
                )
            inside = self.root.resolve()
            for aid in order:  # check everything before removing anything
                p = self.path(aid)
                if not p.is_symlink() and not p.resolve().is_relative_to(inside):
                    raise StoreError(
                        f"{aid}: its folder {p} resolves outside the workspace {str(self.root)!r}; "
                        "refusing to remove it (remove it by hand)"
                    )
            for aid in order:
                self._remove_tree(self.path(aid), inside)
                self._remove_tree(self.root / "partial" / aid, inside)
                if kind_of(aid) == "embedding":
                    self._remove_tree(self.cache_dir(aid), inside)
                if kind_of(aid) == "corpus":  # its tags name its doc ids: they go with it
                    tags = self.tags_file(aid)
                    if tags.is_file() or tags.is_symlink():
                        tags.unlink()
                logger.info("removed %s", aid)
        return order

    def _remove_tree(self, p: Path, inside: Path) -> None:
        """Remove a folder of the workspace without following links out of it: a link is
        unlinked; a folder resolving outside ``inside`` is left (and logged); a folder is first
        renamed into ``tmp/`` (so it vanishes at once) and then deleted."""
        if p.is_symlink():
            p.unlink()
            return
        if not p.exists():
            return
        if not p.resolve().is_relative_to(inside):
            logger.warning("not removing %s: it resolves outside the workspace", p)
            return
        trash_root = self.root / "tmp"
        trash_root.mkdir(parents=True, exist_ok=True)
        trash = Path(tempfile.mkdtemp(prefix=f"{p.name}.removed.", dir=trash_root))
        try:
            os.rename(p, trash / p.name)
        except OSError:
            trash.rmdir()
            shutil.rmtree(p)  # another file system: delete in place (rmtree does not follow links)
            return
        shutil.rmtree(trash)

    @contextlib.contextmanager
    def _workspace_lock(self, shared: bool) -> Iterator[None]:
        """``<root>/locks/_workspace.lock`` (no artifact id starts with ``_``): shared while an
        artifact is renamed into place, exclusive while artifacts are removed."""
        d = self.root / "locks"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "_workspace.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive inter-process lock (``fcntl.flock``) on ``<root>/locks/<name>.lock``.

        Used so two processes computing the same artifact do the work once.
        """
        d = self.root / "locks"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"{name}.lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _lock_held(self, name: str) -> bool:
        """True when another open file holds ``locks/<name>.lock`` (a process is computing it)."""
        p = self.root / "locks" / f"{name}.lock"
        if not p.is_file():
            return False
        with open(p, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def sweep(
        self, *, max_age: float | None = None, partial_max_age: float | None = None, now: float | None = None
    ) -> list[Path]:
        """Remove what killed processes left behind; returns what was removed.

        Swept: entries of ``tmp/`` (folders being built or removed), ``.*.tmp`` files of
        :func:`atomic_path` and ``.incoming-*`` upload staging files in ``jobs/``, ``uploads/``,
        ``uploads/*/`` and ``cache/*/*/``, all untouched for ``max_age`` seconds (default
        :data:`DEFAULT_TMP_MAX_AGE_HOURS`, env ``TEXTCLUSTER_TMP_MAX_AGE_HOURS``); and
        ``partial/<id>/`` folders untouched for ``partial_max_age`` seconds (default 30 days, env
        ``TEXTCLUSTER_PARTIAL_MAX_AGE_DAYS``; 0 keeps them) or whose artifact is complete. Nothing
        whose artifact lock is held (a process is computing it) is touched.
        """
        max_age = _env_age(ENV_TMP_MAX_AGE_HOURS, DEFAULT_TMP_MAX_AGE_HOURS, 3600) if max_age is None else max_age
        if partial_max_age is None:
            partial_max_age = _env_age(ENV_PARTIAL_MAX_AGE_DAYS, DEFAULT_PARTIAL_MAX_AGE_DAYS, 86400)
        now = time.time() if now is None else now
        removed: list[Path] = []
        inside = self.root.resolve()

        def stale(p: Path, age: float) -> bool:
            try:
                return now - _newest_mtime(p) > age
            except OSError:
                return False

        def drop(p: Path) -> None:
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except OSError as e:
                logger.warning("could not sweep %s: %s", p, e)
                return
            removed.append(p)

        tmp_root = self.root / "tmp"
        if tmp_root.is_dir():
            for p in tmp_root.iterdir():
                if p.name == _SWEEP_MARKER:
                    continue
                owner = p.name.split(".", 1)[0]
                if is_id(owner) and self._lock_held(owner):
                    continue
                if stale(p, max_age):
                    drop(p)
        folders = [self.root / "jobs", self.root / "uploads"]
        for pattern in ("uploads/*", "cache/*/*"):
            folders += [d for d in self.root.glob(pattern) if d.is_dir() and not d.is_symlink()]
        for d in folders:
            if not d.is_dir():
                continue
            for p in d.iterdir():
                leftover = p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".incoming-"))
                if leftover and p.is_file() and stale(p, max_age):
                    drop(p)
        partial = self.root / "partial"
        if partial.is_dir():
            for p in partial.iterdir():
                if not is_id(p.name) or p.is_symlink() or self._lock_held(p.name):
                    continue
                if not p.resolve().is_relative_to(inside):
                    continue
                if self.exists(p.name) or (partial_max_age > 0 and stale(p, partial_max_age)):
                    drop(p)
        for p in removed:
            logger.info("swept %s", p)
        return removed

    def sweep_at_start(self) -> list[Path]:
        """:meth:`sweep`, at most once an hour per workspace (a marker file in ``tmp/``), never
        raising: what the app and the CLI call when they start (one ``stat`` when recently swept)."""
        marker = self.root / "tmp" / _SWEEP_MARKER
        try:
            if time.time() - marker.stat().st_mtime < SWEEP_EVERY_SECONDS:
                return []
        except OSError:
            pass
        if not self.root.is_dir():
            return []
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            return self.sweep()
        except (OSError, StoreError) as e:
            logger.warning("sweeping %s failed: %s", self.root, e)
            return []

    def delete(self, artifact_id: str) -> None:
        """Remove one artifact folder (complete or not), leaving what was derived from it;
        :meth:`remove` is the safe way to delete (dependents, lock, no links followed)."""
        shutil.rmtree(self.path(artifact_id), ignore_errors=True)


# The process's umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """The one way textcluster writes a file: yield a temporary path beside ``path``; when the
    block ends without an error, the file is flushed to disk and renamed over ``path``.

    A reader therefore sees the old file or the complete new one, never a torn one; on an
    error (or a kill) the temporary file is removed (or left as a dot-file ending in
    ``.tmp``) and ``path`` is untouched. ``mode``: the file's permission bits (default: the
    usual ``0o666`` less the umask; ``mkstemp`` alone would give ``0o600``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _naming(e, path) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        # The temporary name means nothing to the user: name the file they asked for.
        if e.filename is None or os.fsdecode(e.filename) == name:
            raise _naming(e, path) from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output_path(ws: Workspace, path: str | os.PathLike[str], what: str = "output") -> Path:
    """Return ``path`` when it resolves (symlinks and ``..`` followed) outside the workspace;
    else :class:`~textcluster.errors.OutputPathError` naming both. Every command that writes a
    path given by a user calls this first, so an export can never overwrite an artifact."""
    p = Path(path)
    try:
        resolved = p.expanduser().resolve()
        root = ws.root.expanduser().resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, an unreadable folder
        raise OutputPathError(f"{what} path {str(p)!r} cannot be resolved: {e}") from e
    if resolved == root or root in resolved.parents:
        raise OutputPathError(
            f"{what} path {str(p)!r} resolves to {str(resolved)!r}, inside the workspace "
            f"{str(ws.root)!r}; write it outside the workspace (its files are artifacts)"
        )
    return p


def _naming(e: OSError, path: Path) -> OSError:
    """The same kind of OSError (errno, reason) with ``path`` as its file name."""
    if e.filename is not None and os.fsdecode(e.filename) == str(path):
        return e
    return type(e)(e.errno, e.strerror or str(e), str(path))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON (sorted keys) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)


def save_npy_atomic(path: str | os.PathLike[str], array: Any) -> None:
    """Write ``array`` as ``.npy`` (no pickle) to ``path`` through :func:`atomic_path`."""

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _json_default(o: Any) -> Any:
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
