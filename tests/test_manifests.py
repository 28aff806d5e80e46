"""Typed manifests: one frozen dataclass per artifact kind, written by the stages, read back typed."""

from __future__ import annotations

import json
import pickle
from dataclasses import MISSING, fields

import numpy as np
import pytest
from fakes_run import REQUIRED_FIELDS, blank, real_chain

from textcluster.errors import StoreError
from textcluster.store import (
    MANIFEST_TYPES,
    CorpusManifest,
    DescriptionManifest,
    EmbeddingManifest,
    RunManifest,
    SampleManifest,
    Workspace,
    make_id,
    manifest_type,
)

CID, EID, RID = "cor-0123456789abcdef", "emb-0123456789abcdef", "run-0123456789abcdef"
DID, SID = "dsc-0123456789abcdef", "smp-0123456789abcdef"
COMMON = {"format_version": 1, "created": 1700000000.5}

#: One manifest of each kind with every key its stage writes today (as the files hold them).
FULL: dict[str, dict] = {
    "corpus": {
        **COMMON, "id": CID, "kind": "corpus", "parents": [], "rows_read": 3, "kept": 2, "rejected": 1,
        "rejections": [{"row": 2, "reason": "empty text"}], "duplicates": 0, "text_fields": ["text"],
        "format": "csv", "encoding": "utf-8", "notes": ["picked text"], "source": "a.csv", "sha256": "ab" * 32,
        "spec": {"text_fields": ["text"], "format": None}, "columns": ["doc_id", "row", "text"], "n_docs": 2,
    },
    "embedding": {
        **COMMON, "id": EID, "kind": "embedding", "parents": [CID], "corpus_id": CID, "encoder": "tfidf",
        "encoder_config": {"name": "tfidf", "dims": 8}, "model_fingerprint": "fp", "model": {"backend": "tfidf"},
        "n": 2, "dim": 8, "dtype": "float32", "normalized": True, "truncated": 0, "seconds": 0.25,
        "device": "cpu", "files": {"embeddings": "embeddings.npy"},
    },
    "run": {
        **COMMON, "id": RID, "kind": "run", "parents": [EID], "parent_run": None, "corpus_id": CID,
        "embedding_id": EID, "encoder": "tfidf", "encoder_config": {"name": "tfidf"}, "n": 2, "dim": 8,
        "space_dim": 8, "k": 2, "k_centers": 2, "noise": 0.0, "noise_before_assign": 0.0,
        "reducer": {"method": "none"}, "clusterer": {"method": "kmeans", "k": 2, "seed": 0},
        "clusterer_params": {"n_init": 1}, "seed": 0, "assign_mode": "centroid", "can_mark_noise": False,
        "fit_rows": 2, "projection": {"method": "pca", "cached": False}, "data_center_distance": True,
        "metrics": {"silhouette": 0.5}, "timings": {"load": 0.1, "total": 0.4}, "versions": {"numpy": "2.0"},
        "notes": [], "backend": None, "peak_rss_bytes": 1024, "history": {"loss": [1.0, 0.5]},
    },
    "description": {
        **COMMON, "id": DID, "kind": "description", "parents": [RID], "run_id": RID, "corpus_id": CID,
        "top_n": 10, "examples": 5, "max_docs": 200000, "llm": None, "n_clusters": 2,
    },
    "sample": {
        **COMMON, "id": SID, "kind": "sample", "parents": [RID], "run_id": RID, "embedding_id": EID,
        "corpus_id": CID, "policy": {"size": 2, "clusters": [0]}, "requested_policy": {"size": 2, "clusters": ["a"]},
        "n": 2, "available": 2, "per_cluster": {"0": 2},
    },
}
ID_OF = {"corpus": CID, "embedding": EID, "run": RID, "description": DID, "sample": SID}


def _put(ws: Workspace, aid: str, data: dict) -> None:
    """Write a manifest file by hand, as an older version (or another tool) left it."""
    d = ws.path(aid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "manifest.json").write_text(json.dumps(data), encoding="utf-8")


# -- the classes -------------------------------------------------------------------------


def test_every_kind_with_a_manifest_has_its_class():
    assert set(MANIFEST_TYPES) == {"corpus", "embedding", "run", "description", "sample"}
    assert manifest_type("run") is RunManifest and RunManifest.kind == "run"
    with pytest.raises(StoreError, match="export artifacts have no manifest"):
        manifest_type("export")
    with pytest.raises(StoreError, match="unknown artifact kind 'nope'"):
        manifest_type("nope")
    for kind, cls in MANIFEST_TYPES.items():  # what a writer must give (and the tests below remove)
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        assert required == set(REQUIRED_FIELDS[kind]), kind


@pytest.mark.parametrize("kind", sorted(FULL))
def test_round_trip_keeps_every_key_and_value(kind):
    cls = MANIFEST_TYPES[kind]
    m = cls.from_dict(FULL[kind])
    assert type(m) is cls and m.extra == {}  # the class knows every key the stage writes
    assert m.to_dict() == FULL[kind]
    assert cls.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert pickle.loads(pickle.dumps(m)) == m  # st.cache_data pickles what it caches
    with pytest.raises(AttributeError):
        m.id = "x"  # frozen


def test_attributes_are_typed_values():
    r = RunManifest.from_dict(FULL["run"])
    assert (r.embedding_id, r.k, r.noise, r.reducer["method"], r.parents) == (EID, 2, 0.0, "none", [EID])
    c = CorpusManifest.from_dict(FULL["corpus"])
    assert c.text_fields == ["text"] and c.rejections[0]["reason"] == "empty text"
    assert SampleManifest.from_dict(FULL["sample"]).per_cluster == {"0": 2}


def test_keys_that_are_none_only_sometimes_stay_out_of_the_file():
    m = blank("run", embedding_id=EID)
    d = m.to_dict()
    assert "history" not in d and "peak_rss_bytes" not in d and "metrics_space" not in d and "parents" not in d
    assert d["parent_run"] is None and d["backend"] is None  # always written, None or not
    assert "requested_policy" not in blank("sample").to_dict()


def test_numpy_scalars_become_python_numbers():
    m = RunManifest(embedding_id=EID, n=np.int64(5), dim=np.int32(3), k=np.int64(2), noise=np.float32(0.25),
                    reducer={}, clusterer={}, can_mark_noise=np.bool_(True), timings={"load": np.float64(1.5)})
    assert type(m.n) is int and type(m.noise) is float and type(m.can_mark_noise) is bool
    assert type(m.timings["load"]) is float and json.loads(json.dumps(m.to_dict()))["n"] == 5
    assert EmbeddingManifest(n=1, dim=1, seconds=2).seconds == 2.0  # an int where a float goes


def test_an_unknown_field_fails_when_the_manifest_is_built():
    with pytest.raises(TypeError, match="unexpected keyword argument 'embeding_id'"):
        RunManifest(embeding_id=EID, n=1, dim=1, k=1, noise=0.0, reducer={}, clusterer={})
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'kept'"):
        CorpusManifest(rows_read=3)


def test_a_value_of_the_wrong_type_is_a_store_error_naming_field_and_value():
    with pytest.raises(StoreError, match=r"run manifest: k='3' should be int"):
        blank("run", k="3")
    with pytest.raises(StoreError, match=r"embedding manifest: n=True should be int"):
        blank("embedding", n=True)
    with pytest.raises(StoreError, match=rf"manifest of {CID}: text_fields=\['a', 3\] should be list\[str\]"):
        CorpusManifest.from_dict({**FULL["corpus"], "text_fields": ["a", 3]})


# -- reading old and odd files -----------------------------------------------------------


def test_an_old_manifest_without_parents_and_with_an_unknown_key_loads(tmp_path):
    ws = Workspace(tmp_path)
    old_run = {k: v for k, v in FULL["run"].items() if k not in ("parents", "parent_run", "assign_mode",
                                                                    "peak_rss_bytes", "clusterer_params")}
    _put(ws, RID, {**old_run, "legacy_note": "from 0.1"})
    m = ws.manifest(RID)
    assert isinstance(m, RunManifest) and m.parents is None and m.parent_run is None
    assert m.assign_mode == "centroid" and m.clusterer_params == {} and m.peak_rss_bytes is None  # defaults
    assert m.extra == {"legacy_note": "from 0.1"} and m.to_dict()["legacy_note"] == "from 0.1"  # kept
    assert ws.parents(RID) == [EID]  # derived from embedding_id
    assert [x.id for x in ws.list("run")] == [RID]


@pytest.mark.parametrize(("kind", "key"), [(k, key) for k in sorted(REQUIRED_FIELDS) for key in ["id", *REQUIRED_FIELDS[k]]])
def test_a_missing_required_key_is_a_store_error_naming_artifact_and_key(tmp_path, kind, key):
    ws = Workspace(tmp_path)
    aid = ID_OF[kind]
    _put(ws, aid, {k: v for k, v in FULL[kind].items() if k != key})
    with pytest.raises(StoreError, match=rf"manifest of {kind} {aid} has no '{key}' \(a required key\)"):
        ws.manifest(aid)
    assert ws.list(kind) == []  # skipped (and logged) by a listing, as an unreadable file is


def test_a_kind_that_disagrees_with_the_id_prefix_is_refused(tmp_path):
    ws = Workspace(tmp_path)
    _put(ws, RID, {**FULL["embedding"], "id": RID})  # an embedding's manifest in a run's folder
    with pytest.raises(StoreError, match=rf"manifest of {RID} says kind='embedding'; expected 'run'"):
        ws.manifest(RID)
    assert ws.list("run") == []
    _put(ws, EID, {k: v for k, v in FULL["embedding"].items() if k != "kind"})
    with pytest.raises(StoreError, match=rf"manifest of {EID} has no 'kind'"):
        ws.manifest(EID)
    _put(ws, CID, ["not", "an", "object"])
    with pytest.raises(StoreError, match=rf"manifest of {CID} is not a JSON object \(got list\)"):
        ws.manifest(CID)


# -- writing -----------------------------------------------------------------------------


def test_write_takes_only_the_manifest_class_of_the_ids_kind(tmp_path):
    ws = Workspace(tmp_path)
    cid = make_id("corpus", "a", {})
    called = []
    with pytest.raises(StoreError, match=rf"{cid} is a corpus: its manifest should be a CorpusManifest, got dict"):
        ws.write(cid, {"kept": 3}, called.append)
    with pytest.raises(StoreError, match="should be a CorpusManifest, got EmbeddingManifest"):
        ws.write(cid, blank("embedding"), called.append)
    assert called == [] and not ws.exists(cid)  # refused before any file was written
    ws.write(cid, CorpusManifest(kept=3, id="ignored", created=1.0), parents=[])
    m = ws.manifest(cid)
    assert m.id == cid and m.created > 1.0 and m.parents == []  # the store's fields are the store's


def test_a_manifest_function_is_called_after_the_files(tmp_path):
    ws = Workspace(tmp_path)
    eid = make_id("embedding", None, {})
    order = []

    def files(d):
        order.append("files")

    def manifest():
        order.append("manifest")
        return EmbeddingManifest(n=4, dim=2)

    ws.write(eid, manifest, files)
    assert order == ["files", "manifest"] and ws.manifest(eid).n == 4
    rid = make_id("run", None, {})
    with pytest.raises(StoreError, match="should be a RunManifest, got SampleManifest"):
        ws.write(rid, lambda: blank("sample"))
    assert not ws.exists(rid)


# -- the real stages ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    ws, ids = real_chain(tmp_path_factory.mktemp("stages"))
    return ws, ids


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("corpus", CorpusManifest), ("embedding", EmbeddingManifest), ("run", RunManifest),
     ("description", DescriptionManifest), ("sample", SampleManifest)],
)
def test_the_stages_write_manifests_that_load_as_their_class(stages, kind, cls):
    ws, ids = stages
    m = ws.manifest(ids[kind])
    assert type(m) is cls and m.id == ids[kind] and m.extra == {}  # every key written is a field
    on_disk = json.loads((ws.path(ids[kind]) / "manifest.json").read_text(encoding="utf-8"))
    assert m.to_dict() == on_disk  # reading and writing again gives the same file
    assert [x.id for x in ws.list(kind)] == [ids[kind]]


def test_the_stages_fill_the_fields_readers_use(stages):
    ws, ids = stages
    c, e, r = ws.manifest(ids["corpus"]), ws.manifest(ids["embedding"]), ws.manifest(ids["run"])
    assert c.kept == c.n_docs == 60 and c.source == "topics.csv" and len(c.sha256) == 64
    assert e.corpus_id == ids["corpus"] and e.n == 60 and e.encoder == "tfidf" and e.encoder_config["name"] == "tfidf"
    assert r.embedding_id == ids["embedding"] and r.corpus_id == ids["corpus"] and r.k == 3 and r.n == 60
    assert r.timings["total"] >= r.timings["write"] > 0 and r.peak_rss_bytes > 0
    assert ws.manifest(ids["description"]).n_clusters == 3
    s = ws.manifest(ids["sample"])
    assert s.n == 6 and s.run_id == ids["run"] and sum(s.per_cluster.values()) == 6
