"""Ingest: read, validate and normalise an input file into a stored corpus (stage 1).

``corpus`` is the stage (:func:`ingest`, loaders, field listing and preview), ``readers``
the streaming byte/record readers of each format (and ``EXTENSIONS``, the one table of
readable extensions), ``fieldpath`` the nested field paths (``request.messages[0].content``),
``uploads`` keeps uploaded files in the workspace and ``demo`` is the bundled demo corpus.
"""

from __future__ import annotations

from textcluster.ingest.corpus import (
    IngestReport,
    corpus_id_for,
    ingest,
    list_fields,
    load_docs,
    load_rejections,
    load_report,
    preview,
    suggest_text_field,
)

__all__ = [
    "IngestReport", "corpus_id_for", "ingest", "list_fields", "load_docs", "load_rejections",
    "load_report", "preview", "suggest_text_field",
]
