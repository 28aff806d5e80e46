"""Label maps (textcluster.labelmap, `textcluster label-map`): parsing with line numbers,
resolution against a run (ids, names, seed terms), and the run version they write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_vocab_model import GROUPS, build_tiny_model

from textcluster.cli import main
from textcluster.cluster.versions import run_names, version_chain
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.errors import ConfigError
from textcluster.labelmap import (
    LabelMapError,
    apply_label_map,
    export_label_map,
    format_label_map,
    parse_label_map,
    read_label_map,
    resolve_label_map,
)
from textcluster.pipeline import run_pipeline
from textcluster.store import Workspace
from textcluster.vocab import VocabSpec, vocab_run


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, str, dict[str, int]]:
    """A vocabulary run of the tiny model (k=3) and the cluster of each group."""
    root = tmp_path_factory.mktemp("lm")
    model = build_tiny_model(root / "model")
    ws = Workspace(root / "ws")
    res = vocab_run(ws, VocabSpec(encoder=f"hf:{model}"), clusterer=ClustererConfig(k=3))
    labels = np.load(ws.path(res.run_id) / "labels.npy")
    group_of = {g: int(labels[i * 8]) for i, g in enumerate(GROUPS)}
    return ws, res.run_id, group_of


# -- parsing -----------------------------------------------------------------------------


def test_parse_json_both_forms_with_lines() -> None:
    lm = parse_label_map('{\n  "3": "ANIMAL",\n  "food things": "FOOD",\n  "METAL": ["iron", " gold ", "iron"]\n}\n')
    e = lm.entries
    assert [(x.line, x.kind, x.label) for x in e] == [(2, "cluster", "ANIMAL"), (3, "cluster", "FOOD"), (4, "seeds", "METAL")]
    assert e[0].cluster == 3 and e[1].cluster == "food things" and e[2].terms == ("iron", "gold")
    assert lm.to_dict() == {"3": "ANIMAL", "food things": "FOOD", "METAL": ["iron", "gold"]}


def test_parse_csv_both_forms() -> None:
    lm = parse_label_map("cluster,label\n0,ANIMAL\n\n2, FOOD \n", fmt="csv")
    assert [(x.line, x.cluster, x.label) for x in lm.entries] == [(2, 0, "ANIMAL"), (4, 2, "FOOD")]
    lm = parse_label_map("label,terms\nANIMAL,dog,cat\nMETAL,iron\n", fmt="csv")
    assert [(x.line, x.label, x.terms) for x in lm.entries] == [(2, "ANIMAL", ("dog", "cat")), (3, "METAL", ("iron",))]


@pytest.mark.parametrize(("text", "fmt", "match"), [
    ('{\n "1": "A",\n "1": "B"\n}', "json", r"line 3: duplicate key '1' \(first on line 2\)"),
    ('{\n "1": "A",\n "2": "  "\n}', "json", r"line 3: the label of cluster '2' is empty"),
    ('{\n "1": 5\n}', "json", r"line 2: the value of '1' should be a label \(text\) or a list"),
    ('{\n "A": []\n}', "json", r"line 2: the seed list of 'A' is empty"),
    ('{\n "A": ["x", 3]\n}', "json", r"line 2: the seed terms of 'A' should be text"),
    ('{\n "1": "A",\n "2" "B"\n}', "json", r"line 3: expected ':'"),
    ('{\n "1": "A",\n "2": [\n}', "json", r"line 4: malformed JSON"),
    ('["A"]', "json", r"line 1: a JSON label map is one object"),
    ("cluster,label\n1,A\n1,B\n", "csv", r"line 3: duplicate cluster '1' \(first on line 2\)"),
    ("cluster,label\n1,A\n2,\n", "csv", r"line 3: the label of cluster '2' is empty"),
    ("label,terms\nA,dog\nA,cat\n", "csv", r"line 3: duplicate label 'A'"),
    ("label,terms\nA\n", "csv", r"line 2: the seed list of 'A' is empty"),
    ("id,name\n1,A\n", "csv", r"line 1: a CSV label map starts with a header"),
    ("{}", "json", "no entries"),
])
def test_invalid_maps_name_the_line(text: str, fmt: str, match: str) -> None:
    with pytest.raises(LabelMapError, match=match):
        parse_label_map(text, fmt=fmt, source="m")


def test_read_label_map_by_suffix_and_format_round_trip(tmp_path: Path) -> None:
    for fmt in ("json", "csv"):
        text = format_label_map({2: "FOOD", 0: "ANIMAL, wild"}, fmt)
        p = tmp_path / f"map.{fmt}"
        p.write_text(text, encoding="utf-8")
        lm = read_label_map(p)
        assert {x.cluster: x.label for x in lm.entries} == {0: "ANIMAL, wild", 2: "FOOD"}
    with pytest.raises(ConfigError, match="no such label map file"):
        read_label_map(tmp_path / "nope.json")
    with pytest.raises(LabelMapError, match=r"map.csv: \d+ bytes; at most 10 \(label-map --max-bytes\)"):
        read_label_map(tmp_path / "map.csv", max_bytes=10)


# -- against a run ---------------------------------------------------------------------------


def test_seed_terms_label_the_clusters_holding_them(vocab) -> None:
    ws, run, group_of = vocab
    lm = parse_label_map(json.dumps({"ANIMAL": ["dog", "Cat", "kitten horse"], "METAL": ["iron", "gold"]}))
    r = resolve_label_map(ws, run, lm)
    assert r.labels == {group_of["animal"]: "ANIMAL", group_of["metal"]: "METAL"}
    how = {t["term"]: t["how"] for s in r.seeds for t in s["terms"]}
    # an exact token; a token up to case; a term that is no token, assigned like a new text
    assert how == {"dog": "document", "Cat": "document (case-insensitive)", "kitten horse": "assigned",
                   "iron": "document", "gold": "document"}


def test_explicit_entry_wins_and_conflicts_name_lines(vocab) -> None:
    ws, run, group_of = vocab
    a = group_of["animal"]
    r = resolve_label_map(ws, run, parse_label_map(json.dumps({str(a): "BEAST", "ANIMAL": ["dog"]})))
    assert r.labels == {a: "BEAST"}
    tie = parse_label_map('{\n "ANIMAL": ["dog"],\n "PET": ["cat"]\n}')
    with pytest.raises(LabelMapError, match=r"line 3: cluster \d holds as many seed terms of 'ANIMAL' \(line 2\)"):
        resolve_label_map(ws, run, tie)
    with pytest.raises(LabelMapError, match=r"line 2: unknown cluster 7: .*ids are 0..2"):
        resolve_label_map(ws, run, parse_label_map('{\n "7": "X"\n}'))
    with pytest.raises(LabelMapError, match=r"line 3: cluster 0 is mapped twice \(first on line 2\)"):
        resolve_label_map(ws, run, parse_label_map('cluster,label\n0,X\n00,Y\n', fmt="csv"))


def test_apply_writes_a_named_version_and_names_can_be_mapped_again(vocab) -> None:
    ws, run, group_of = vocab
    lm = parse_label_map(json.dumps({"ANIMAL": ["dog"], str(group_of["food"]): "FOOD"}))
    res = apply_label_map(ws, run, lm)
    m = ws.manifest(res.run_id)
    assert m.parent_run == run and version_chain(ws, res.run_id) == [run, res.run_id]
    assert m.edit == {"op": "label_map", "labels": {str(group_of["animal"]): "ANIMAL", str(group_of["food"]): "FOOD"}}
    assert run_names(ws, res.run_id) == {group_of["animal"]: "ANIMAL", group_of["food"]: "FOOD"}
    assert res.unmapped == [group_of["metal"]]
    assert np.array_equal(np.load(ws.path(res.run_id) / "labels.npy"), np.load(ws.path(run) / "labels.npy"))
    again = apply_label_map(ws, run, lm)
    assert again.run_id == res.run_id and again.cached
    # a name is a cluster reference in the next map; exported maps read back
    renamed = apply_label_map(ws, res.run_id, parse_label_map('{"ANIMAL": "FAUNA"}'))
    assert run_names(ws, renamed.run_id)[group_of["animal"]] == "FAUNA"
    assert run_names(ws, renamed.run_id)[group_of["food"]] == "FOOD"  # carried over
    exported = parse_label_map(export_label_map(ws, renamed.run_id, "csv"), fmt="csv")
    assert {x.cluster: x.label for x in exported.entries} == run_names(ws, renamed.run_id)


def test_a_text_run_takes_a_map_too(tmp_path: Path, topic_csv: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    res = run_pipeline(topic_csv, CorpusSpec(text_fields=("text",)), EncoderConfig(name="tfidf"),
                       ReducerConfig(projection="pca"), ClustererConfig(k=3), ws)
    out = apply_label_map(ws, res.run.run_id, parse_label_map('cluster,label\n0,first\n', fmt="csv"))
    assert run_names(ws, out.run_id) == {0: "first"} and sorted(out.unmapped) == [1, 2]


def test_cli_label_map(vocab, tmp_path: Path, capsys) -> None:
    ws, run, group_of = vocab
    f = tmp_path / "map.json"
    f.write_text('{\n  "METAL": ["iron"]\n}\n', encoding="utf-8")
    assert main(["label-map", run, str(f), "--json", "--workspace", str(ws.root)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parent"] == run and data["run_id"].startswith("run-") and data["run_id"] != run
    assert data["labels"] == {str(group_of["metal"]): "METAL"}
    bad = tmp_path / "bad.csv"
    bad.write_text("cluster,label\n0,A\n9,B\n", encoding="utf-8")
    assert main(["label-map", run, str(bad), "--workspace", str(ws.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: label map bad.csv, line 3: unknown cluster 9") and len(err.strip().splitlines()) == 1
