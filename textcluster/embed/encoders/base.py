"""The Encoder protocol, the name -> factory registry, model paths and fingerprints.

An encoder name is either a plain registry key (``minilm``, ``tfidf``) or
``<key>:<model>`` (``st:sentence-transformers/all-mpnet-base-v2``,
``hf:/models/t5-base``, ``static:<model>``). :func:`get_encoder` parses the
name, looks the key up in the registry and calls its factory with the model
part and the :class:`~textcluster.config.EncoderConfig`. The same registry
feeds the app's choices through :func:`available_encoders`.

Factories only store arguments; nothing heavy happens until
:meth:`Encoder.load`. :meth:`Encoder.fingerprint` identifies the model's
files without loading them, so a cached embedding is found without touching
the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from textcluster.errors import EncoderError

if TYPE_CHECKING:
    import numpy as np


logger = logging.getLogger(__name__)


@runtime_checkable
class Encoder(Protocol):
    """What :mod:`textcluster.embed.engine` needs from a backend.

    Attributes: ``name`` (the name it was built from), ``dim`` (vector size, once
    loaded or fitted) and ``needs_fit`` (True for
    encoders fitted on the corpus itself, such as ``tfidf``; those also have
    ``fit(texts)``, ``save_state(folder)`` and ``load_state(folder)``).
    """

    name: str
    needs_fit: bool

    def fingerprint(self) -> str:
        """A hash of the model files (or the encoder's settings), computed without loading the model."""
        ...

    def load(self, device: str) -> None:
        """Load the model on ``device`` (idempotent; cached per process)."""
        ...

    def max_tokens(self) -> int | None:
        """Token limit per text after :meth:`load` (None: no limit, nothing is truncated)."""
        ...

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray | None:
        """Untruncated token counts (int64, shape (len(texts),)); None when lengths do not matter."""
        ...

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of one batch, float32 (len(texts), dim), not normalised."""
        ...

    def describe(self) -> dict[str, Any]:
        """Resolved settings for the manifest (model path, pooling, max length, ...)."""
        ...


# -- model files -------------------------------------------------------------

_WEIGHT_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "**/*.json", "*.py", "*.tiktoken"]


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


ENV_MODEL_DIRS = "TEXTCLUSTER_MODEL_DIRS"
# A Hugging Face hub name: ``name`` or ``org/name`` (letters, digits, ``._-``; no ``..``).
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def model_roots(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """The folders under which a local model folder may be used where paths are restricted
    (the app): each folder of ``$TEXTCLUSTER_MODEL_DIRS`` (separated by ``os.pathsep``, ``:``
    on Linux; default: none) plus ``extra`` (the bundled model's folder), resolved."""
    raw = [x for x in os.environ.get(ENV_MODEL_DIRS, "").split(os.pathsep) if x.strip()]
    out = []
    for r in [*raw, *extra]:
        with contextlib.suppress(OSError, RuntimeError):
            out.append(Path(r).expanduser().resolve())
    return out


def check_model_source(model: str, roots: Sequence[Path]) -> str:
    """``model`` when it may be used where local paths are restricted to ``roots``: a hub-style
    name (``org/name``) that is not an existing local path, or a local folder that resolves
    (links followed) inside one of ``roots``. :class:`EncoderError` otherwise, naming the model,
    the allowed folders and ``TEXTCLUSTER_MODEL_DIRS``; nothing is read or walked."""
    text = (model or "").strip()
    p = Path(text).expanduser()
    try:
        is_local = p.exists()
    except OSError:
        is_local = False
    if not is_local and _HUB_NAME.match(text) and ".." not in text:
        return text
    if is_local:
        try:
            real = p.resolve()
        except (OSError, RuntimeError):
            real = None
        if real is not None and any(real == r or real.is_relative_to(r) for r in roots):
            return text
    allowed = ", ".join(str(r) for r in roots) if roots else "none configured"
    raise EncoderError(
        f"model {text[:200]!r} is neither a hub name (org/model) nor a folder under the allowed model "
        f"folders ({allowed}); put the model under a folder listed in ${ENV_MODEL_DIRS} "
        f"({os.pathsep}-separated) and restart, or use the CLI, which accepts any local folder"
    )


def resolve_model_path(model: str) -> Path:
    """A local folder holding ``model``: the path itself, the hub cache, or a download.

    ``model`` is a local folder or a Hugging Face hub name. Hub names are looked
    up in the local cache first; without a cached copy they are downloaded
    (config, tokenizer and safetensors weights; ``*.bin`` only when the repo has
    no safetensors). Raises :class:`EncoderError` saying what was tried and
    whether the machine looks offline.
    """
    p = Path(model).expanduser()
    if p.exists():
        if not p.is_dir():
            raise EncoderError(f"model path {str(p)!r} is a file; pass the folder that holds config.json")
        return p.resolve()
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep == "\\" and "\\" in model
    if looks_like_path:
        raise EncoderError(f"model folder {model!r} does not exist")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover
        raise EncoderError(f"cannot look up hub model {model!r}: huggingface_hub is not installed") from e
    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # noqa: BLE001  (not cached: any hub error means "download it")
        pass
    if hub_offline():
        raise EncoderError(
            f"model {model!r} is neither a local folder nor in the Hugging Face cache, and "
            "HF_HUB_OFFLINE is set, so it cannot be downloaded; unset HF_HUB_OFFLINE, "
            "or pass a local folder"
        )
    try:
        path = Path(snapshot_download(model, allow_patterns=_WEIGHT_PATTERNS))
        if not _weight_files(path):
            path = Path(snapshot_download(model, allow_patterns=[*_WEIGHT_PATTERNS, "*.bin"]))
    except Exception as e:  # noqa: BLE001  (hub errors have many types; all mean "not loadable")
        raise EncoderError(
            f"cannot load model {model!r}: it is not a local folder and downloading it from the "
            f"Hugging Face hub failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "the machine may be offline: pass a local folder, or check the name and network"
        ) from e
    return path


def _weight_files(path: Path) -> list[Path]:
    return [f for f in path.rglob("*") if f.suffix in (".safetensors", ".bin") and f.is_file()]


def fingerprint_path(path: str | os.PathLike[str], edge: int = 1 << 20) -> str:
    """Hash of a model folder without loading it: for each file (sorted, hidden and
    README files skipped) its relative name, size, and the bytes of its first and
    last ``edge`` bytes (the whole file when small). Returns 16 hex digits."""
    root = Path(path)
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(
        f for f in root.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(root).parts)
        and f.name.lower() not in ("readme.md", "license", "license.txt")
    )
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(root) if f != root else f.name}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= 2 * edge:
                h.update(fh.read())
            else:
                h.update(fh.read(edge))
                fh.seek(size - edge)
                h.update(fh.read(edge))
    return h.hexdigest()[:16]


# -- per-process model cache ---------------------------------------------------

_MODELS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MODELS_LOCK = threading.Lock()
#: How many loaded models a process keeps (the app and a CLI batch pay loading once).
MODEL_CACHE_SIZE = 2


def cached_model(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """The model stored under ``key`` (e.g. (kind, path, device)), built once per process.

    A small LRU: the least recently used model is dropped beyond
    :data:`MODEL_CACHE_SIZE`.
    """
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    model = build()
    with _MODELS_LOCK:
        _MODELS[key] = model
        _MODELS.move_to_end(key)
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
    return model


def clear_model_cache() -> None:
    """Forget every loaded model (tests; freeing GPU memory)."""
    with _MODELS_LOCK:
        _MODELS.clear()
