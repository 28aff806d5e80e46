"""Workspace page: artifacts by kind, delete with dependents after a confirmation."""

from __future__ import annotations

from apphelpers import APP, assert_clean, open_page
from streamlit.testing.v1 import AppTest

from textcluster.store import kind_of
from ui import state


def _tables(at):
    """The artifact tables shown, by kind (read-only tables carry no key in AppTest)."""
    return {kind_of(t.value["id"].iloc[0]): t.value for t in at.dataframe if "what" in t.value.columns}


def _plan(at):
    """The table of what a deletion removes (None when no deletion waits for confirmation)."""
    plans = [t.value for t in at.dataframe if "kind" in t.value.columns]
    return plans[0] if plans else None


def test_lists_artifacts_by_kind_with_labels(app_ws, app_run):
    at = open_page("views/workspace.py")
    assert_clean(at)
    tables = _tables(at)
    assert set(tables) == {"corpus", "embedding", "run", "description"}
    assert tables["corpus"]["what"].tolist() == ["topics.csv · 60 docs"]
    run = tables["run"]
    assert run["id"].tolist() == [app_run] and run["what"].tolist() == ["kmeans · k=3"]
    assert run["from"].tolist() == [app_ws.manifest(app_run).embedding_id]
    assert [s.value for s in at.subheader][:5] == [
        "Corpora (1)", "Embeddings (1)", "Clustering runs (1)", "Descriptions (1)", "Samples (0)"]


def test_delete_shows_dependents_then_removes_after_confirming(app_ws, app_run):
    cid = app_ws.corpus_of(app_run)
    eid = app_ws.manifest(app_run).embedding_id
    (did,) = app_ws.dependents(app_run)
    at = open_page("views/workspace.py")
    at.session_state[state.RUN] = app_run  # the run is current in this session
    at.session_state[state.CORPUS] = cid
    at.selectbox(key="workspace_pick").set_value(eid).run()
    at.button(key="workspace_delete").click().run()
    assert_clean(at)
    # Nothing is gone yet: the page lists what would go, children first, and asks.
    plan = _plan(at)
    assert plan["id"].tolist() == [did, app_run, eid]
    assert plan["kind"].tolist() == ["description", "run", "embedding"]
    assert "deletes 3 artifacts" in at.warning[0].value
    assert app_ws.exists(eid) and app_ws.exists(app_run)
    at.button(key="workspace_confirm").click().run()
    assert_clean(at)
    assert not app_ws.exists(eid) and not app_ws.exists(app_run) and not app_ws.exists(did)
    assert app_ws.exists(cid)
    assert "Deleted 3 artifacts" in at.success[0].value
    # The session no longer points at the removed run; the corpus stays current.
    assert state.RUN not in at.session_state and at.session_state[state.CORPUS] == cid
    assert set(_tables(at)) == {"corpus"} and _plan(at) is None


def test_cancel_keeps_everything(app_ws, app_run):
    at = open_page("views/workspace.py")
    at.selectbox(key="workspace_pick").set_value(app_run).run()
    at.button(key="workspace_delete").click().run()
    assert _plan(at)["id"].tolist()[-1] == app_run
    at.button(key="workspace_cancel").click().run()
    assert_clean(at)
    assert app_ws.exists(app_run)
    assert _plan(at) is None


def test_stored_ids_of_the_wrong_grammar_or_kind_count_as_unset(app_ws, app_run):
    cid = app_ws.corpus_of(app_run)
    at = AppTest.from_file(APP, default_timeout=60)  # the default page, under app.py's sidebar
    at.session_state[state.CORPUS] = app_run  # an existing artifact, but not a corpus
    at.session_state[state.RUN] = "run-../../x"
    at.run()
    assert_clean(at)
    captions = [c.value for c in at.sidebar.caption]
    assert f"Corpus: `{cid}`" in captions and f"Run: `{app_run}`" in captions  # the newest ones
