"""A small labelled CSV corpus for tests: short texts on three topics with disjoint words."""

from __future__ import annotations

import csv
import random
from pathlib import Path

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
