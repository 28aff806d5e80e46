"""Session-state keys and the current workspace, corpus, run and job.

A page reload starts a fresh session, so nothing here is the only copy of
anything: the current corpus and run fall back to the newest ones in the
workspace, and jobs are found through :mod:`textcluster.jobs`.

Ids read back from session state pass :func:`textcluster.store.check_id` before
use (a value that is not a full id of the right kind counts as unset), ids set by
pickers are checked on the way in, and :func:`forget` drops ids that were removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st

from textcluster import jobs
from textcluster.store import Workspace, check_id, default_workspace, is_id

# Session-state keys shared by several pages (widget keys are local to each page).
CORPUS = "tc_corpus_id"
RUN = "tc_run_id"
JOB = "tc_job_id"
SAMPLE = "tc_sample_id"
SOURCE_PATH = "tc_source_path"
#: (run id, sorted doc ids) chosen on the Explore map: what the selection actions act on.
SELECTION = "tc_selection"


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
