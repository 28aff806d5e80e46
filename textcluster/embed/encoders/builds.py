"""Models built from other models on first use (an ONNX int8 export, a distilled static model),
cached in the workspace under ``<workspace>/models/<name>/``.

A build runs once per workspace: two processes asking for the same model take the same
inter-process lock (``locks/_model-<name>.lock``); the second waits and then reads what the
first wrote. The model is built in ``<workspace>/tmp/`` and renamed into place, so the
folder under ``models/`` is complete or absent (a build killed half-way leaves only a
``tmp/`` folder, swept later).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from textcluster.errors import EncoderError
from textcluster.store import Workspace, write_json_atomic

logger = logging.getLogger(__name__)

#: The file written last into a built model's folder: its presence marks the build complete.
DONE_FILE = "build.json"


def build_key(kind: str, source_fingerprint: str, recipe: str) -> str:
    """``<kind>-<16 hex>``: the folder name of a model built by ``recipe`` from a source model."""
    h = hashlib.sha256(f"{kind}\0{source_fingerprint}\0{recipe}".encode()).hexdigest()[:16]
    return f"{kind}-{h}"


def default_build_workspace() -> Workspace:
    """The workspace used when an encoder is run without one (``encode_texts`` without ``ws``):
    ``$TEXTCLUSTER_WORKSPACE`` or the default workspace folder."""
    return Workspace()


def built_model(ws: Workspace, key: str, build: Callable[[Path], dict], what: str) -> Path:
    """The folder ``<ws>/models/<key>/``, built by ``build(tmp_folder) -> info`` when absent.

    ``info`` is written to ``build.json`` last. Safe under several processes (one builds,
    the others wait on the lock and reuse the result) and under a kill (the half-built folder
    stays in ``tmp/``). Raises what ``build`` raises; other failures are an
    :class:`EncoderError` naming ``what``.
    """
    final = ws.root / "models" / key
    if (final / DONE_FILE).is_file():
        return final
    with ws.lock(f"_model-{key}"):
        if (final / DONE_FILE).is_file():
            return final
        tmp = ws.root / "tmp" / f"model-{key}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            logger.info("building %s into %s", what, final)
            info = build(tmp)
            write_json_atomic(tmp / DONE_FILE, info)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # a folder without build.json: an older, incomplete copy
                shutil.rmtree(final)
            os.replace(tmp, final)
        except EncoderError:
            raise
        except Exception as e:  # noqa: BLE001  (exporters raise many types; all mean "cannot build")
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise EncoderError(f"cannot build {what}: {type(e).__name__}: {first[:300]}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
