"""Names offered for a run's clusters, from their keywords and, when an LLM is set, from it.

The user decides: :func:`suggest_names` only proposes (it writes a description artifact, as
``describe`` does, and nothing else); accepted names are stored as a rename version with
:func:`textcluster.cluster.edits.rename`, so they carry over to exports, SQL and ``assign``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textcluster.cluster.edits import NAME_MAX
from textcluster.cluster.versions import run_names
from textcluster.describe.clusters import NOISE, describe
from textcluster.store import Workspace


@dataclass(frozen=True)
class NameSuggestion:
    """One cluster: its ``size``, the ``current`` name (None when unnamed), the name from its
    keywords (the description's label) and the LLM's (None when no LLM was asked or it failed)."""

    cluster: int
    size: int
    current: str | None
    keywords: str
    llm: str | None = None

    def best(self) -> str:
        """The name to offer first: the current one, else the LLM's, else the keywords'."""
        return self.current or self.llm or self.keywords


def _llm_name(record: dict[str, Any] | None) -> str | None:
    if not record or not record.get("ok"):
        return None
    name = record.get("topic") or next(iter(record.get("topics") or []), None)
    name = " ".join(str(name).split()) if name else None
    return name[:NAME_MAX] if name else None


def suggest_names(ws: Workspace, run_id: str, llm: Any = None, progress: Any = None) -> list[NameSuggestion]:
    """A :class:`NameSuggestion` per cluster of ``run_id`` (noise left out), largest first.

    ``llm``: :class:`textcluster.describe.llm.LLMSettings` to also ask the LLM (None: keywords only;
    a failing LLM leaves ``llm`` None for that cluster, never raises)."""
    d = describe(ws, run_id, llm=llm, progress=progress)
    names = run_names(ws, run_id)
    out = [
        NameSuggestion(c.cluster, c.size, names.get(c.cluster), (c.label or f"cluster {c.cluster}")[:NAME_MAX],
                       _llm_name(c.llm))
        for c in d.clusters if c.cluster != NOISE
    ]
    return sorted(out, key=lambda s: (-s.size, s.cluster))
