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
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from textcluster.errors import StoreError

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


def kind_of(artifact_id: str) -> str:
    """The artifact kind named by an id's prefix (``"emb-..."`` -> ``"embedding"``)."""
    prefix = artifact_id.split("-", 1)[0]
    if prefix not in _PREFIX_TO_KIND or "-" not in artifact_id:
        raise StoreError(
            f"{artifact_id!r} is not an artifact id; ids look like "
            + ", ".join(f"{p}-<hex>" for p in _PREFIX_TO_KIND)
        )
    return _PREFIX_TO_KIND[prefix]


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
        """Folder of a (complete or not yet written) artifact."""
        return self.root / kind_of(artifact_id) / artifact_id

    def partial_dir(self, artifact_id: str) -> Path:
        """A folder for resumable work in progress (e.g. embedding chunks); created on demand.

        It survives a killed process, is not an artifact, and is removed by
        :meth:`write` once the artifact is complete.
        """
        p = self.root / "partial" / artifact_id
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
    ) -> Path:
        """Build an artifact atomically and return its folder.

        ``writer(tmp_dir)`` writes the artifact's files into a temporary folder
        on the same file system; then ``manifest.json`` is written (with ``id``,
        ``kind``, ``created`` and ``format_version`` added) and the folder is
        renamed into place. If another process finished the same artifact
        first, its copy is kept and this one discarded.
        """
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
                "kind": kind_of(artifact_id),
                "format_version": FORMAT_VERSION,
                "created": time.time(),
                **manifest,
            }
            write_json_atomic(tmp / "manifest.json", full)
            _fsync_dir(tmp)
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
        """Remove an artifact folder (complete or not)."""
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
