"""Fixtures of the AppTests: a workspace with an ingested corpus and a finished fast run."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from apphelpers import FAST

from textcluster import jobs
from textcluster.config import CorpusSpec
from textcluster.ingest import corpus

# No UMAP warm-up thread in the AppTests (it would compile numba for a minute beside them).
os.environ.setdefault("TEXTCLUSTER_NO_WARMUP", "1")

# The app's own modules (ui/, views/) live at the repository root, beside app.py.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def app_ws(tmp_workspace):
    """The temporary workspace the app under test uses ($TEXTCLUSTER_WORKSPACE)."""
    return tmp_workspace


@pytest.fixture(scope="session")
def _template(tmp_path_factory):
    """A workspace built once per session: the 3-topic CSV ingested, and the FAST run on it."""
    from topic_corpus import write_topic_csv

    from textcluster.store import Workspace

    d = tmp_path_factory.mktemp("app-template")
    ws = Workspace(d / "workspace")
    spec = CorpusSpec(text_fields=("text",), id_field="id", label_field="label")
    cid = corpus.ingest(write_topic_csv(d / "topics.csv"), spec, ws).corpus_id
    snap = jobs.submit_pipeline(ws, cid, **FAST, manager=jobs.JobManager(ws)).wait(120)
    assert snap["status"] == "done", snap["error"]
    shutil.rmtree(ws.root / "jobs")  # each test starts without jobs
    return ws.root, cid, snap["result"]["run_id"]


def _copy_template(template, app_ws, with_run: bool):
    root, cid, rid = template
    shutil.copytree(root, app_ws.root)
    if not with_run:
        for kind in ("embedding", "run", "description"):
            shutil.rmtree(app_ws.root / kind, ignore_errors=True)
    return cid, rid


@pytest.fixture
def app_corpus(app_ws, _template):
    """The 3-topic CSV ingested with its id and label fields (no run yet); returns the corpus id."""
    return _copy_template(_template, app_ws, with_run=False)[0]


@pytest.fixture
def app_run(app_ws, _template):
    """The FAST pipeline run on the 3-topic corpus (copied into the test's workspace); returns the run id."""
    return _copy_template(_template, app_ws, with_run=True)[1]
