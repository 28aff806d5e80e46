"""Fixtures of the AppTests: a workspace with an ingested corpus and a finished fast run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from apphelpers import FAST

from textcluster import corpus, jobs
from textcluster.config import CorpusSpec

# The app's own modules (ui/, pages/) live at the repository root, beside app.py.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def app_ws(tmp_workspace):
    """The temporary workspace the app under test uses ($TEXTCLUSTER_WORKSPACE)."""
    return tmp_workspace


@pytest.fixture
def app_corpus(app_ws, topic_csv):
    """The 3-topic CSV ingested with its id and label fields; returns the corpus id."""
    spec = CorpusSpec(text_fields=("text",), id_field="id", label_field="label")
    return corpus.ingest(topic_csv, spec, app_ws).corpus_id


@pytest.fixture
def app_run(app_ws, app_corpus):
    """The FAST pipeline run on :func:`app_corpus`; returns the run id."""
    snap = jobs.submit_pipeline(app_ws, app_corpus, **FAST).wait(120)
    assert snap["status"] == "done", snap["error"]
    return snap["result"]["run_id"]
