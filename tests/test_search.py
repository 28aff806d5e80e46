"""Text search: literal, case-insensitive, ranked by occurrences then doc order, limited."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from textcluster.describe.search import DEFAULT_LIMIT, search_texts
from textcluster.errors import ConfigError

TEXTS = [
    "football on sunday",  # 0: once
    "no match here",  # 1
    "Football, FOOTBALL and football",  # 2: three times
    None,  # 3: a missing text
    "football football",  # 4: twice
    "the FootBall club",  # 5: once
]


def test_ranked_by_occurrences_then_doc_order():
    hits = search_texts(TEXTS, "football")
    assert hits.doc_ids.tolist() == [2, 4, 0, 5]
    assert hits.occurrences.tolist() == [3, 2, 1, 1]
    assert hits.total == 4 and hits.doc_ids.dtype == np.int64


def test_case_insensitive_including_non_ascii():
    texts = ["École publique", "une école", "ECOLE sans accent"]
    assert search_texts(texts, "ÉCOLE").doc_ids.tolist() == [0, 1]
    assert search_texts(TEXTS, "  FOOTBALL ").query == "FOOTBALL"


def test_the_query_is_literal_never_a_regex():
    texts = ["a.b", "aXb", "(x)", "x", "price $5 [net]", "a+b", "aab"]
    assert search_texts(texts, "a.b").doc_ids.tolist() == [0]
    assert search_texts(texts, "(x)").doc_ids.tolist() == [2]
    assert search_texts(texts, "$5 [net]").doc_ids.tolist() == [4]
    assert search_texts(texts, "a+b").doc_ids.tolist() == [5]
    assert search_texts(texts, ".*").total == 0


def test_limit_caps_the_ids_but_not_the_total():
    texts = ["x"] * 20 + ["x x"] * 3
    hits = search_texts(texts, "x", limit=5)
    assert hits.doc_ids.tolist() == [20, 21, 22, 0, 1] and hits.total == 23
    assert DEFAULT_LIMIT == 500 and search_texts(["y"] * 600, "y").doc_ids.size == 500


@pytest.mark.parametrize(
    "wrap",
    [list, np.array, pd.Series, lambda t: pd.Series(t, dtype="string[pyarrow]"), pa.array,
     lambda t: pa.chunked_array([t[:3], t[3:]])],
    ids=["list", "numpy", "pandas", "pandas-arrow", "arrow", "chunked"],
)
def test_any_column_of_texts(wrap):
    assert search_texts(wrap(TEXTS), "football").doc_ids.tolist() == [2, 4, 0, 5]


def test_no_texts_and_no_hits():
    assert search_texts([], "x").total == 0
    assert search_texts([None, None], "x").doc_ids.tolist() == []
    assert search_texts(TEXTS, "cricket").total == 0


def test_bad_input_is_a_config_error():
    with pytest.raises(ConfigError, match="query='  ' is empty"):
        search_texts(TEXTS, "  ")
    with pytest.raises(ConfigError, match="query should be a string, got int"):
        search_texts(TEXTS, 3)
    with pytest.raises(ConfigError, match="limit=0 should be an integer >= 1"):
        search_texts(TEXTS, "x", limit=0)
    with pytest.raises(ConfigError, match="texts should be strings, got an array of int64"):
        search_texts([1, 2], "x")
