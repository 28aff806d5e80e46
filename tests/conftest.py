"""Shared fixtures: a small labelled CSV corpus and an isolated workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_encoder import FakeEncoder
from topic_corpus import write_topic_csv

from textcluster.embed.encoders import registry as base
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


@pytest.fixture
def fake(monkeypatch):
    """Registers the encoder ``fake`` (tests/fake_encoder.py); yields (instances built, options
    passed to each new instance, e.g. ``delay``)."""
    built: list[FakeEncoder] = []
    opts: dict = {}

    def factory(model, cfg):
        enc = FakeEncoder(cfg, **opts)
        built.append(enc)
        return enc

    base.register_encoder("fake", factory, "test encoder", needs_model=False, takes_model=False)
    yield built, opts
    base._REGISTRY.pop("fake", None)
