"""Workspace on disk: content-addressed artifacts, atomic writes, locks.

A workspace is one folder. Every artifact (a corpus, an embedding matrix, a
clustering run, a sample, ...) lives in ``<root>/<kind>/<artifact_id>/`` and
holds plain files (Parquet, ``.npy``, JSON) plus a ``manifest.json``. The
manifest is written last, and the whole folder is built in a temporary folder
and renamed into place, so a killed process never leaves a half-written
artifact that looks complete.

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
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from textcluster.errors import IdError, StoreError

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


#: Where an old manifest (written before ``parents`` was recorded) names its parent, nearest first.
_LEGACY_PARENT_KEYS: dict[str, tuple[str, ...]] = {
    "corpus": (),
    "embedding": ("corpus_id",),
    "run": ("embedding_id", "corpus_id"),
    "description": ("run_id", "embedding_id", "corpus_id"),
    "sample": ("run_id", "embedding_id", "corpus_id"),
    "export": ("sample_id", "run_id"),
}


def parents_of(manifest: dict[str, Any]) -> list[str]:
    """The ids an artifact was derived from, read from its manifest.

    ``manifest["parents"]`` when recorded; for older manifests, derived from the
    nearest of their ``corpus_id`` / ``embedding_id`` / ``run_id`` keys (plus
    ``parent_run`` for a run). Entries that are not ids are skipped (and logged).
    """
    raw = manifest.get("parents")
    if not isinstance(raw, list):
        raw = []
        for key in _LEGACY_PARENT_KEYS.get(str(manifest.get("kind")), ()):
            if manifest.get(key):
                raw.append(manifest[key])
                break
        if manifest.get("parent_run"):
            raw.append(manifest["parent_run"])
    out: list[str] = []
    for p in raw:
        if is_id(p) and p not in out:
            out.append(p)
        elif not is_id(p):
            logger.warning("manifest of %s names a parent that is not an id: %s", manifest.get("id"), _shown(p))
    return out


def label_of(manifest: dict[str, Any]) -> str:
    """A short human label of an artifact from its manifest (no id): the corpus's file name and
    size, the encoder and matrix shape, the run's method and k, the sample's size and policy."""
    kind = manifest.get("kind")
    bits: list[str] = []
    if kind == "corpus":
        src = manifest.get("source") or manifest.get("source_name") or manifest.get("file_name")
        if src:
            bits.append(str(src).replace("\\", "/").rsplit("/", 1)[-1])
        n = manifest.get("kept", manifest.get("n_docs"))
        if isinstance(n, int):
            bits.append(f"{n:,} docs")
    elif kind == "embedding":
        if manifest.get("encoder"):
            bits.append(str(manifest["encoder"]))
        n, dim = manifest.get("n"), manifest.get("dim")
        if isinstance(n, int) and isinstance(dim, int):
            bits.append(f"{n:,} × {dim}")
    elif kind == "run":
        clu = manifest.get("clusterer") if isinstance(manifest.get("clusterer"), dict) else {}
        red = manifest.get("reducer") if isinstance(manifest.get("reducer"), dict) else {}
        how = str(clu.get("method") or "")
        if red.get("method") and red["method"] != "none" and how:
            how = f"{red['method']} → {how}"
        if how:
            bits.append(how)
        k = manifest.get("k", clu.get("k"))
        if k is not None:
            bits.append(f"k={k}")
        if manifest.get("parent_run"):
            bits.append(f"from {manifest['parent_run']}")
    elif kind == "description":
        if manifest.get("n_clusters") is not None:
            bits.append(f"{manifest['n_clusters']} clusters described")
        if manifest.get("llm"):
            bits.append("LLM labels")
    elif kind == "sample":
        if isinstance(manifest.get("n"), int):
            bits.append(f"{manifest['n']:,} rows")
        pol = manifest.get("policy") if isinstance(manifest.get("policy"), dict) else {}
        if pol.get("allocation"):
            bits.append(f"{pol['allocation']}/{pol.get('within', '?')}")
    elif manifest.get("file"):
        bits.append(str(manifest["file"]))
    return " · ".join(bits)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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

    def manifest(self, artifact_id: str) -> dict[str, Any]:
        """The manifest of a complete artifact; :class:`StoreError` if missing."""
        p = self.path(artifact_id) / "manifest.json"
        if not p.is_file():
            known = [m["id"] for m in self.list(kind_of(artifact_id))][:20]
            raise StoreError(
                f"no {kind_of(artifact_id)} {artifact_id!r} in workspace {str(self.root)!r}"
                + (f"; known: {', '.join(known)}" if known else "")
            )
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"manifest of {artifact_id!r} is unreadable: {e}") from e

    def file(self, artifact_id: str, name: str) -> Path:
        """Path of one file of a complete artifact; :class:`StoreError` if the artifact or file is missing."""
        self.manifest(artifact_id)
        p = self.path(artifact_id) / name
        if not p.exists():
            raise StoreError(f"artifact {artifact_id!r} has no file {name!r}")
        return p

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Manifests of all complete artifacts of a kind, newest first."""
        if kind not in KINDS:
            raise StoreError(f"unknown artifact kind {kind!r}; known: {sorted(KINDS)}")
        out = []
        d = self.root / kind
        if d.is_dir():
            for sub in d.iterdir():
                m = sub / "manifest.json"
                if m.is_file():
                    try:
                        out.append(json.loads(m.read_text(encoding="utf-8")))
                    except (OSError, json.JSONDecodeError):
                        logger.warning("skipping unreadable manifest %s", m)
        out.sort(key=lambda m: m.get("created", 0), reverse=True)
        return out

    # -- writing -----------------------------------------------------------
    def write(
        self,
        artifact_id: str,
        manifest: dict[str, Any],
        writer: Callable[[Path], None] | None = None,
        *,
        parents: Iterable[str] | None = None,
        parent_run: str | None = None,
    ) -> Path:
        """Build an artifact atomically and return its folder.

        ``writer(tmp_dir)`` writes the artifact's files into a temporary folder
        on the same file system; then ``manifest.json`` is written (with ``id``,
        ``kind``, ``created`` and ``format_version`` added) and the folder is
        renamed into place. If another process finished the same artifact
        first, its copy is kept and this one discarded.

        ``parents``: the ids the artifact was derived from (checked ids, recorded as
        the manifest's ``parents``); each must still exist when the folder is renamed
        into place (a parent removed meanwhile raises :class:`StoreError`, so no
        orphan appears). ``parent_run`` (runs only): the run this run was derived
        from, recorded as ``parent_run`` (None when it was not) and added to ``parents``.
        None for ``parents`` records nothing; readers then derive the parents from the
        manifest's ``corpus_id`` / ``embedding_id`` / ``run_id`` (see :func:`parents_of`).
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
        final = self.path(artifact_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{artifact_id}.", dir=tmp_root))
        try:
            if writer is not None:
                writer(tmp)
            full = {
                "id": artifact_id,
                "kind": kind,
                "format_version": FORMAT_VERSION,
                "created": time.time(),
                **manifest,
                **lineage,
            }
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

    # -- lineage -----------------------------------------------------------
    def parents(self, artifact_id: str) -> list[str]:
        """The ids ``artifact_id`` was derived from (empty for a corpus); see :func:`parents_of`."""
        return parents_of(self.manifest(artifact_id))

    def children(self) -> dict[str, list[str]]:
        """Every complete artifact's id -> the ids derived directly from it (sorted), from one
        read of all manifests."""
        out: dict[str, list[str]] = {}
        for kind in KINDS:
            for m in self.list(kind):
                if not is_id(m.get("id")):
                    continue
                for p in parents_of(m):
                    out.setdefault(p, []).append(m["id"])
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
            if m.get("kind", kind_of(aid)) == "corpus":
                return aid
            cid = m.get("corpus_id")
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
        anything is removed. ``expected``: the ids the caller showed the user (e.g. from
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    import numpy as np

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
