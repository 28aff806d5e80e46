"""Field paths: parsing, formatting, resolving, listing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textcluster.errors import ConfigError
from textcluster.ingest import fieldpath
from textcluster.ingest.fieldpath import MISSING, format_path, leaf_paths, parse, resolve

REC = {
    "text": "top",
    "meta": {"title": "T", "tags": ["a", "b"], "odd.key": {"x": 1}},
    "request": {"messages": [{"role": "user", "content": "first"}, {"content": "second"}]},
    "meta.title": "flat column wins",
    "rows": [[1, 2], [3]],
}


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("text", ("text",)),
        ("meta.title", ("meta", "title")),
        ("request.messages[0].content", ("request", "messages", 0, "content")),
        ("request.messages[-1].content", ("request", "messages", -1, "content")),
        ("rows[0][1]", ("rows", 0, 1)),
        ('meta["odd.key"].x', ("meta", "odd.key", "x")),
        ("meta['odd.key'].x", ("meta", "odd.key", "x")),
        ('["a b"]', ("a b",)),
        ("a.0", ("a", "0")),
        ("col with spaces", ("col with spaces",)),
    ],
)
def test_parse(path, steps):
    assert parse(path) == steps


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("", "non-empty"),
        ("a.", "ends with a dot"),
        ("a..b", "unexpected '.'"),
        ("a[x]", r"expected \[<integer>\]"),
        ('a["b]', "unterminated"),
        ("a]b", "unexpected"),
        (".a", "unexpected '.'"),
    ],
)
def test_parse_rejects_bad_paths(path, match):
    with pytest.raises(ConfigError, match=match):
        parse(path)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("text", "top"),
        ("meta.title", "flat column wins"),  # an exact top-level key wins over the path
        ("meta.tags[1]", "b"),
        ("meta.tags.1", "b"),
        ("request.messages[0].content", "first"),
        ("request.messages[-1].content", "second"),
        ('meta["odd.key"].x', 1),
        ("rows[0][1]", 2),
        ("meta", REC["meta"]),
    ],
)
def test_resolve(path, value):
    assert resolve(REC, path) == value


@pytest.mark.parametrize(
    "path",
    ["nope", "meta.nope", "request.messages[5].content", "request.messages[-3]", "text.x", "text[0]",
     "meta.tags.x", "meta[0]", "request.messages[1].role"],
)
def test_resolve_missing(path):
    assert resolve(REC, path) is MISSING
    assert not MISSING


def test_resolve_null_is_not_missing():
    assert resolve({"a": {"b": None}}, "a.b") is None


def test_leaf_paths_lists_columns_and_nested_leaves():
    paths = [p for p, _ in leaf_paths(REC)]
    assert paths[:4] == ["text", "meta", '["meta"]["title"]', "meta.tags[0]"]
    assert 'meta["odd.key"].x' in paths
    assert "request.messages[0].content" in paths
    assert "request.messages[1].content" in paths
    assert "rows[1][0]" in paths
    for p, v in leaf_paths(REC):
        assert resolve(REC, p) == v


def test_leaf_paths_caps_lists_and_depth():
    rec = {"l": list(range(50)), "d": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}
    paths = [p for p, _ in leaf_paths(rec, max_depth=4, max_items=3)]
    assert paths == ["l", "l[0]", "l[1]", "l[2]", "d"]


_keys = st.one_of(st.text(min_size=1, max_size=8), st.sampled_from(["a.b", "x[0]", 'q"', "'", " s ", "0"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_keys, st.integers(-5, 20)), min_size=1, max_size=5).filter(lambda s: isinstance(s[0], str)))
def test_format_then_parse_round_trips(steps):
    assert parse(format_path(steps)) == tuple(steps)


def test_parse_is_cached():
    assert fieldpath.parse("a.b[0]") is fieldpath.parse("a.b[0]")
