"""Shared fixtures: a small labelled CSV corpus and an isolated workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from topic_corpus import write_topic_csv

from textcluster.store import ENV_WORKSPACE, Workspace


@pytest.fixture
def topic_csv(tmp_path: Path) -> Path:
    """A 60-row, 3-topic labelled CSV (columns id, text, label); see tests/topic_corpus.py."""
    return write_topic_csv(tmp_path / "topics.csv")


@pytest.fixture
def tmp_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty workspace, also set as ``$TEXTCLUSTER_WORKSPACE`` for the app and the CLI."""
    root = tmp_path / "workspace"
    monkeypatch.setenv(ENV_WORKSPACE, str(root))
    return Workspace(root)
