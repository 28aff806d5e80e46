"""Find the documents whose text contains a word or phrase.

The match is literal and case-insensitive: the query is never a regular expression
(``a.b`` finds ``a.b``, not ``aXb``), and case is compared with Unicode case folding
as Arrow's ``count_substring(ignore_case=True)`` does it (``FOOTBALL`` finds
``football``, ``ÉCOLE`` finds ``école``). Leading and trailing whitespace of the query
is ignored.

Ranking: the documents with the most occurrences of the query come first
(non-overlapping occurrences, as :meth:`str.count` counts them), ties in document
order (lower doc id first). At most ``limit`` ids are returned; ``total`` says how
many documents matched in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textcluster.errors import ConfigError

#: The default cap on the ids returned.
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class SearchHits:
    """What :func:`search_texts` found.

    doc_ids: (m,) int64, ranked (most occurrences first, then doc order), ``m <= limit``.
    occurrences: (m,) int64, the occurrences of the query in each of those documents.
    total: the number of documents that contain the query (may exceed ``m``).
    query: the query as matched (surrounding whitespace removed).
    """

    doc_ids: np.ndarray = field(repr=False)
    occurrences: np.ndarray = field(repr=False)
    total: int
    query: str


def search_texts(texts: Sequence[str | None] | Any, query: str, limit: int = DEFAULT_LIMIT) -> SearchHits:
    """The documents of ``texts`` that contain ``query``, ranked (see the module docstring).

    ``texts``: one text per document, doc id = position (``docs.parquet``'s ``text``
    column in doc_id order: a list, a NumPy or pandas array, or a pyarrow array); a
    missing text (None) never matches. ``query``: a literal word or phrase, not empty.
    ``limit``: the most ids returned, >= 1 (default 500).
    """

    if not isinstance(query, str):
        raise ConfigError(f"query should be a string, got {type(query).__name__} {query!r}")
    q = query.strip()
    if not q:
        raise ConfigError(f"query={query!r} is empty; give a word or phrase to search for")
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise ConfigError(f"limit={limit!r} should be an integer >= 1")
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, from_pandas=True)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
        raise ConfigError(f"texts should be strings, got an array of {arr.type}")
    if pa.types.is_null(arr.type) or len(arr) == 0:
        counts = np.zeros(len(arr), dtype=np.int64)
    else:
        counts = pc.count_substring(arr, q, ignore_case=True).fill_null(0).to_numpy(zero_copy_only=False)
        counts = counts.astype(np.int64, copy=False)
    hit = np.flatnonzero(counts)
    order = hit[np.argsort(-counts[hit], kind="stable")][:limit]
    return SearchHits(doc_ids=order.astype(np.int64), occurrences=counts[order], total=int(hit.size), query=q)
