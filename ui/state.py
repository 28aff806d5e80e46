"""Session-state keys and the current workspace, corpus, run and job; the user's place.

A page reload starts a fresh session. What the user chose (the current corpus, run and
upload, and the knobs of :data:`KEPT_KEYS` / :data:`KEPT_PREFIXES`) is therefore kept in two
places: in session state across pages (:func:`keep_widgets`, run by app.py before each page,
stops Streamlit from dropping the values of widgets the shown page does not draw), and in the
workspace, ``<workspace>/app/state.json`` (:func:`remember` writes it when something changed,
:func:`restore` reads it once per session), so a reloaded tab opens where the user left.
Without that file, the current corpus and run fall back to the newest ones in the workspace,
and jobs are found through :mod:`textcluster.jobs`.

Ids read back from session state pass :func:`textcluster.store.check_id` before
use (a value that is not a full id of the right kind counts as unset), ids set by
pickers are checked on the way in, and :func:`forget` drops ids that were removed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import streamlit as st

from textcluster import jobs
from textcluster.store import Workspace, check_id, default_workspace, is_id, write_json_atomic

logger = logging.getLogger(__name__)

# Session-state keys shared by several pages (widget keys are local to each page).
CORPUS = "tc_corpus_id"
RUN = "tc_run_id"
JOB = "tc_job_id"
SAMPLE = "tc_sample_id"
SOURCE_PATH = "tc_source_path"
#: (run id, sorted doc ids) chosen on the Explore map: what the selection actions act on.
SELECTION = "tc_selection"
#: The upload the Data page works on: {"path": relative to the workspace, "name", "size"}.
UPLOAD = "tc_upload"

#: Widget keys whose values are kept across pages and reloads (value widgets only: never a
#: button, an uploader or a table, whose state Streamlit does not let a script set).
KEPT_KEYS = (
    "data_source",
    "pipe_recipe", "pipe_encoder", "pipe_encoder_model", "pipe_device", "pipe_reducer",
    "pipe_reducer_dims", "pipe_reducer_runs", "pipe_projection", "pipe_clusterer", "pipe_k_auto", "pipe_k",
    "pipe_mcs", "pipe_eps", "pipe_min_samples", "pipe_noise", "pipe_fit_size", "pipe_seed",
    "pipe_outliers", "pipe_stability", "pipe_engine",
    "explore_color_by", "explore_examples", "explore_legend_search",
)
#: Prefixes of kept widget keys (a clusterer's settings; the Data page's field choices per file).
KEPT_PREFIXES = ("pipe_params_", "data_text_", "data_id_", "data_label_", "data_dups_")
#: Where the user's place is kept, relative to the workspace.
STATE_FILE = Path("app") / "state.json"
_SAVED = "_tc_saved_state"
_RESTORED = "_tc_restored"


_SWEPT: set[str] = set()


def workspace() -> Workspace:
    """The workspace of this app: ``$TEXTCLUSTER_WORKSPACE`` or ``./workspace`` (read on every run).

    The first time this process sees a workspace, what killed processes left in it is swept
    (:meth:`Workspace.sweep_at_start`)."""
    ws = Workspace(default_workspace())
    if str(ws.root) not in _SWEPT:
        _SWEPT.add(str(ws.root))
        ws.sweep_at_start()
    return ws


def manager() -> jobs.JobManager:
    """The process-wide job manager of the workspace (shared by every tab and session)."""
    return jobs.get_manager(workspace())


def _newest(kind: str, **match: Any) -> str | None:
    for m in workspace().list(kind):
        if all(getattr(m, k, None) == v for k, v in match.items()):
            return m.id
    return None


def _stored(key: str, kind: str) -> str | None:
    """The id under ``key`` in session state when it is a full id of ``kind``, else None."""
    value = st.session_state.get(key)
    return value if is_id(value, kind) else None


def current_corpus() -> str | None:
    """The corpus chosen in this session, else the newest one in the workspace."""
    ws = workspace()
    cid = _stored(CORPUS, "corpus")
    if cid and ws.exists(cid):
        return cid
    return _newest("corpus")


def set_corpus(corpus_id: str) -> None:
    """Make ``corpus_id`` current; a run of another corpus stops being current.

    :class:`~textcluster.errors.IdError` when ``corpus_id`` is not a corpus id."""
    check_id(corpus_id, "corpus")
    if st.session_state.get(CORPUS) != corpus_id:
        st.session_state[CORPUS] = corpus_id
        st.session_state.pop(RUN, None)
        st.session_state.pop(SAMPLE, None)


def current_run() -> str | None:
    """The run chosen in this session, else the newest run in the workspace."""
    ws = workspace()
    rid = _stored(RUN, "run")
    if rid and ws.exists(rid):
        return rid
    return _newest("run")


def set_run(run_id: str) -> None:
    """Make ``run_id`` current (and its corpus).

    :class:`~textcluster.errors.IdError` when ``run_id`` is not a run id."""
    check_id(run_id, "run")
    if st.session_state.get(RUN) != run_id:
        st.session_state[RUN] = run_id
        st.session_state.pop(SAMPLE, None)


def current_sample() -> str | None:
    """The sample drawn in this session when the session holds a full sample id, else None."""
    return _stored(SAMPLE, "sample")


def forget(removed: Iterable[str]) -> None:
    """After a deletion: the current corpus, run and sample stop pointing at removed ids (the
    pages then fall back to the newest remaining ones)."""
    gone = set(removed)
    for key in (CORPUS, RUN, SAMPLE):
        if st.session_state.get(key) in gone:
            st.session_state.pop(key, None)


def kept(key: str) -> bool:
    """Whether the widget ``key`` is one whose value is kept across pages and reloads."""
    return key in KEPT_KEYS or key.startswith(KEPT_PREFIXES)


def keep_widgets() -> None:
    """Keep the kept widgets' values across pages.

    Streamlit forgets a widget's value at the end of a run that does not draw it (another
    page); a value written back through ``st.session_state`` is user state and stays."""
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and kept(key):
            st.session_state[key] = st.session_state[key]


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _place() -> dict[str, Any]:
    widgets = {k: v for k, v in st.session_state.items() if isinstance(k, str) and kept(k) and _jsonable(v)}
    return {
        "corpus": _stored(CORPUS, "corpus"),
        "run": _stored(RUN, "run"),
        "upload": st.session_state.get(UPLOAD),
        "widgets": widgets,
    }


def remember() -> None:
    """Write the user's place (current corpus, run, upload, kept widget values) to the
    workspace's ``app/state.json`` when it changed since this session last wrote it.

    app.py calls it at the start of every run: a widget's new value is in session state
    before the run that follows the change begins."""
    place = _place()
    if st.session_state.get(_SAVED) == place:
        return
    try:
        write_json_atomic(workspace().root / STATE_FILE, place)
    except OSError:  # a read-only workspace: the place is then kept for this session only
        logger.warning("could not write %s", STATE_FILE, exc_info=True)
    st.session_state[_SAVED] = place


def restore() -> None:
    """Once per session: take the place saved in the workspace (ids that no longer exist or
    are not ids are ignored, like values already set in this session)."""
    if st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    path = workspace().root / STATE_FILE
    try:
        place = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        logger.warning("ignoring an unreadable %s", STATE_FILE, exc_info=True)
        return
    if not isinstance(place, dict):
        return
    ws = workspace()
    for key, kind in ((CORPUS, "corpus"), (RUN, "run")):
        value = place.get(kind)
        if key not in st.session_state and is_id(value, kind) and ws.exists(value):
            st.session_state[key] = value
    upload = place.get("upload")
    if UPLOAD not in st.session_state and upload_path(upload) is not None:
        st.session_state[UPLOAD] = upload
    widgets = place.get("widgets")
    for key, value in (widgets.items() if isinstance(widgets, dict) else ()):
        if isinstance(key, str) and kept(key) and key not in st.session_state:
            st.session_state[key] = value
    st.session_state[_SAVED] = _place()


def upload_path(upload: Any) -> Path | None:
    """The file of a kept upload (``{"path", "name", "size"}``) when it is still in the
    workspace's ``uploads/`` folder, else None (anything else is ignored)."""
    if not isinstance(upload, dict) or not isinstance(upload.get("path"), str):
        return None
    root = (workspace().root / "uploads").resolve()
    p = (workspace().root / upload["path"]).resolve()
    if root not in p.parents or not p.is_file():
        return None
    return p


def set_upload(path: Path, name: str, size: int) -> None:
    """Make ``path`` (a file under the workspace's ``uploads/``) the Data page's upload."""
    st.session_state[UPLOAD] = {"path": str(path.relative_to(workspace().root)), "name": name, "size": int(size)}


def current_upload() -> Path | None:
    """The Data page's upload of this session (kept across pages and reloads), or None."""
    return upload_path(st.session_state.get(UPLOAD))


def forget_upload() -> None:
    """The Data page has no upload any more."""
    st.session_state.pop(UPLOAD, None)
