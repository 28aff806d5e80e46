"""The user's place: restored from the workspace in a new session; picker and job labels."""

from __future__ import annotations

import json

import pytest
from apphelpers import assert_clean, open_page

from textcluster.store import CorpusManifest, RunManifest
from ui.state import STATE_FILE
from ui.widgets import corpus_choice, recent_jobs, run_choice, when


def test_a_new_session_takes_the_knobs_and_corpus_saved_in_the_workspace(app_ws, app_corpus, topic_csv):
    saved = {"corpus": app_corpus, "run": None, "upload": {"path": "../../etc/passwd", "name": "x", "size": 1},
             "widgets": {"pipe_k_auto": False, "pipe_k": 7, "pipe_encoder": "tfidf", "pipe_launch": True, "not_a_knob": 1}}
    (app_ws.root / STATE_FILE).parent.mkdir(parents=True)
    (app_ws.root / STATE_FILE).write_text(json.dumps(saved))
    at = open_page("views/pipeline.py")  # a new session, as after a reload of the tab
    assert_clean(at)
    assert at.number_input(key="pipe_k").value == 7
    assert at.selectbox(key="pipe_encoder").value == "tfidf"
    assert at.selectbox(key="pipeline_corpus").value == app_corpus
    # only kept widget keys are restored, and an upload outside uploads/ is ignored
    assert at.button(key="pipe_launch").value is False and "not_a_knob" not in at.session_state
    assert "tc_upload" not in at.session_state


def test_pickers_show_corpus_size_encoder_method_k_and_date():
    cm = CorpusManifest(id="cor-0123456789abcdef", kept=1200, source="tickets.csv", created=1_700_000_000.0)
    rm = RunManifest(id="run-0123456789abcdef", embedding_id="emb-0123456789abcdef", n=1200, dim=8, k=12,
                     noise=0.0, reducer={"method": "pca"}, clusterer={"method": "kmeans"}, encoder="tfidf",
                     corpus_id=cm.id, created=1_700_000_000.0)
    assert corpus_choice(cm) == f"tickets.csv · 1,200 docs · {when(cm.created)} · cor-0123456789abcdef"
    assert run_choice(rm, cm) == (f"tickets.csv (1,200 docs) · tfidf · pca → kmeans · k=12 · {when(rm.created)}"
                                  " · run-0123456789abcdef")


def test_recent_jobs_name_the_corpus_and_k(app_ws, app_corpus):
    snaps = [{"id": "job-1", "status": "done", "label": "tfidf · none · kmeans", "elapsed_s": 1.23,
              "config": {"corpus_id": app_corpus, "clusterer": {"k": 9}}, "result": {"run_id": None}},
             {"id": "job-2", "status": "failed", "config": {"corpus_id": "cor-ffffffffffffffff",
                                                           "clusterer": {"k": 4}}, "result": {}}]
    rows = recent_jobs(app_ws, snaps)
    assert rows[0]["corpus"].endswith("60 docs") and rows[0]["k"] == 9
    assert rows[1]["corpus"] == "cor-ffffffffffffffff (deleted)" and rows[1]["k"] == 4


@pytest.mark.parametrize("page", ["views/explore.py", "views/sample.py", "views/export.py", "views/evaluate.py",
                                  "views/labels.py"])
def test_a_page_that_needs_a_run_says_so_and_stops_when_there_is_none(app_corpus, page):
    at = open_page(page)
    assert_clean(at)
    assert [i.value for i in at.info] == ["No clustering run yet: launch one on the **Pipeline** page."]
    assert len(at.title) == 1  # the page's own title, then nothing of the page below the picker
    assert not at.selectbox and not at.button and not at.dataframe
