"""Shared fixtures: a small labelled CSV corpus and an isolated workspace."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from textcluster.store import ENV_WORKSPACE, Workspace

TOPIC_WORDS = {
    "sport": ["football", "goal", "match", "team", "league", "striker", "referee", "season"],
    "code": ["python", "function", "bug", "compiler", "variable", "debugger", "module", "test"],
    "baking": ["recipe", "oven", "flour", "sugar", "butter", "dough", "bread", "cake"],
}


def write_topic_csv(path: Path, per_topic: int = 20, seed: int = 0) -> Path:
    """A CSV with columns id, text, label: ``per_topic`` short texts for each of 3 topics."""
    rng = random.Random(seed)
    rows = []
    for label, words in TOPIC_WORDS.items():
        for i in range(per_topic):
            text = " ".join(rng.choice(words) for _ in range(8))
            rows.append({"id": f"{label}-{i}", "text": f"{text} {i}", "label": label})
    rng.shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "text", "label"])
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def topic_csv(tmp_path: Path) -> Path:
    """A 60-row, 3-topic labelled CSV (columns id, text, label)."""
    return write_topic_csv(tmp_path / "topics.csv")


@pytest.fixture
def tmp_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty workspace, also set as ``$TEXTCLUSTER_WORKSPACE`` for the app and the CLI."""
    root = tmp_path / "workspace"
    monkeypatch.setenv(ENV_WORKSPACE, str(root))
    return Workspace(root)
