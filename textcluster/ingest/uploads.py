"""Keep an uploaded file in the workspace: ``<ws>/uploads/<sha256>/<safe name>``.

The folder is named by the SHA-256 of the bytes, so the same upload is stored once
however often it arrives; the file keeps a sanitised form of its original name, whose
extension tells :func:`~textcluster.ingest.readers.detect_format` the format. The name
never leaves its folder: only its last path component is kept (``../../x.csv`` is
``x.csv``), characters other than ``A-Z a-z 0-9 . _ -`` become ``_``, leading dots are
dropped (no hidden files, no ``..``), and a long name is cut to :data:`MAX_NAME_CHARS`
keeping its extension.

Writes go through :func:`textcluster.store.atomic_path`: a reader sees the whole file or
none of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from textcluster.errors import CorpusError
from textcluster.ingest.readers import EXTENSIONS, GZIP_EXTENSION
from textcluster.store import Workspace, atomic_path, write_bytes_atomic

#: Uploads live in this folder of the workspace.
UPLOADS_DIR = "uploads"
#: A saved name is at most this long (well under the 255 bytes most file systems allow).
MAX_NAME_CHARS = 120
#: The stem used when a name has none (empty, only dots, or only an extension such as ``.csv``).
FALLBACK_STEM = "upload"
_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"(?:\.[A-Za-z0-9]{1,12}){1,2}$")


def safe_upload_name(name: str) -> str:
    """The file name an upload called ``name`` is saved under (see the module docstring).

    ``"../../x.csv"`` -> ``"x.csv"``; ``"C:\\\\data\\\\my file.csv"`` -> ``"my_file.csv"``;
    ``".csv"`` -> ``"upload.csv"``; ``""`` -> ``"upload"``; a name longer than
    :data:`MAX_NAME_CHARS` keeps its (up to two) extensions and loses the end of its stem.
    """
    if not isinstance(name, str):
        raise CorpusError(f"an upload's name should be a string, got {type(name).__name__} {name!r}")
    base = re.split(r"[/\\]", name)[-1]
    safe = _UNSAFE.sub("_", base)
    stripped = safe.lstrip(".")
    if not stripped.strip("_"):
        return FALLBACK_STEM
    if stripped != safe and _is_only_extension("." + stripped):
        stripped = FALLBACK_STEM + "." + stripped  # ".csv" names the format, not the file
    if len(stripped) > MAX_NAME_CHARS:
        m = _SUFFIX.search(stripped)
        suffix = m.group(0) if m else ""
        stripped = stripped[: MAX_NAME_CHARS - len(suffix)].rstrip(".") + suffix
    return stripped


def _is_only_extension(name: str) -> bool:
    low = name.lower()
    if low.endswith(GZIP_EXTENSION) and low != GZIP_EXTENSION:
        low = low[: -len(GZIP_EXTENSION)]
    return low in EXTENSIONS or low == GZIP_EXTENSION


def save_upload(ws: Workspace, name: str, data: bytes | bytearray | memoryview | BinaryIO) -> Path:
    """Store an upload in ``ws`` and return its path, ``<ws>/uploads/<sha256>/<safe name>``.

    ``data``: the bytes, or a binary stream read from where it stands to its end in 1 MiB
    chunks (a large upload is never held in memory whole). The same bytes under the same
    name are written once: a later call hashes them and returns the existing path without
    writing (a seekable stream is hashed first and written only when new; another stream
    is written to a staging file while hashed, then renamed or dropped). The same bytes
    under another name share the folder, each name its own file (the extension may name
    another format). Raises :class:`CorpusError` for a name that is not a string or data
    that is neither bytes nor a binary stream.
    """
    safe = safe_upload_name(name)
    root = ws.root / UPLOADS_DIR
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        path = root / hashlib.sha256(view).hexdigest() / safe
        if not path.is_file():
            write_bytes_atomic(path, bytes(view))
        return path
    if not callable(getattr(data, "read", None)):
        raise CorpusError(
            f"upload {name!r}: data should be bytes or a binary stream, got {type(data).__name__}"
        )
    if _seekable(data):
        start = data.tell()
        digest = hashlib.sha256()
        for chunk in _chunks(data, name):
            digest.update(chunk)
        path = root / digest.hexdigest() / safe
        if not path.is_file():
            data.seek(start)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                for chunk in _chunks(data, name):
                    f.write(chunk)
        return path
    # The hash (and so the folder) is known only at the end: stream into a staging file,
    # completed through atomic_path, then rename it into its folder.
    digest = hashlib.sha256()
    staging = root / f".incoming-{uuid.uuid4().hex}"
    try:
        with atomic_path(staging) as tmp, open(tmp, "wb") as f:
            for chunk in _chunks(data, name):
                digest.update(chunk)
                f.write(chunk)
        path = root / digest.hexdigest() / safe
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable()) and isinstance(f.tell(), int)
    except (AttributeError, OSError, ValueError):
        return False


def _chunks(f: BinaryIO, name: str) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise CorpusError(
                f"upload {name!r}: the stream gave {type(chunk).__name__}, not bytes "
                f"(open the file in binary mode)"
            )
        yield bytes(chunk)
