"""Lineage in the workspace: parents recorded by every stage, dependents, corpus_of, remove."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakes_run import blank, make_run, real_chain

from textcluster.cluster import runs
from textcluster.config import (
    ClustererConfig,
    ReducerConfig,
    SamplingPolicy,
)
from textcluster.describe import sampling
from textcluster.errors import StoreError
from textcluster.store import Workspace, label_of, make_id, parents_of


@pytest.fixture(scope="module")
def _chain(tmp_path_factory):
    """corpus -> embedding -> run -> (description, sample), built once by the real stages."""
    ws, ids = real_chain(tmp_path_factory.mktemp("chain"))
    return ws.root, ids


@pytest.fixture
def chain(_chain, tmp_path):
    root, ids = _chain
    shutil.copytree(root, tmp_path / "ws")
    return Workspace(tmp_path / "ws"), ids


def test_every_stage_records_its_parents(chain):
    ws, ids = chain
    m = {k: ws.manifest(v) for k, v in ids.items()}
    assert m["corpus"].parents == []
    assert m["embedding"].parents == [ids["corpus"]]
    assert m["run"].parents == [ids["embedding"]] and m["run"].parent_run is None
    assert m["description"].parents == [ids["run"]]
    assert m["sample"].parents == [ids["run"]]
    assert "parent_run" not in m["embedding"].to_dict()  # a run-only field
    assert ws.parents(ids["sample"]) == [ids["run"]] and ws.parents(ids["corpus"]) == []


def test_k_independent_caches_live_under_their_embedding(chain):
    ws, ids = chain
    cache = ws.root / "cache"
    assert sorted(p.name for p in cache.iterdir()) == [ids["embedding"]]
    assert list((cache / ids["embedding"] / "projection").glob("*.npy"))
    # A second run of the same embedding (another k) takes the projection from that cache.
    r2 = runs.cluster(ws, ids["embedding"], ReducerConfig(projection="pca"), ClustererConfig(k=2))
    assert ws.manifest(r2.run_id).projection["cached"] is True


def test_dependents_are_transitive_children_first(chain):
    ws, ids = chain
    deps = ws.dependents(ids["corpus"])
    assert set(deps) == {ids["embedding"], ids["run"], ids["description"], ids["sample"]}
    pos = {a: i for i, a in enumerate(deps)}
    for aid in deps:  # every artifact comes after everything derived from it
        for p in ws.parents(aid):
            assert p == ids["corpus"] or pos[aid] < pos[p]
    assert deps[-1] == ids["embedding"]
    assert sorted(ws.dependents(ids["run"])) == sorted([ids["description"], ids["sample"]])
    assert ws.dependents(ids["sample"]) == []
    with pytest.raises(StoreError, match="no run 'run-0123456789abcdef'"):
        ws.dependents("run-0123456789abcdef")


def test_corpus_of_walks_up_from_every_kind(chain):
    ws, ids = chain
    for aid in ids.values():
        assert ws.corpus_of(aid) == ids["corpus"]


def test_remove_a_run_takes_its_description_and_sample_only(chain):
    ws, ids = chain
    removed = ws.remove(ids["run"])
    assert sorted(removed[:2]) == sorted([ids["description"], ids["sample"]]) and removed[2] == ids["run"]
    for k in ("run", "description", "sample"):
        assert not ws.exists(ids[k]) and not ws.path(ids[k]).exists()
    assert ws.exists(ids["embedding"]) and ws.exists(ids["corpus"])
    assert (ws.root / "cache" / ids["embedding"]).is_dir()  # the embedding's caches stay with it
    assert list((ws.root / "tmp").iterdir()) == []  # nothing left in the trash


def test_remove_a_corpus_takes_everything_and_the_caches(chain):
    ws, ids = chain
    removed = ws.remove(ids["corpus"])
    assert removed[-2:] == [ids["embedding"], ids["corpus"]] and len(removed) == 5
    for kind in ids:
        assert ws.list(kind) == []
    assert not (ws.root / "cache" / ids["embedding"]).exists()


def test_remove_refuses_when_the_listing_is_stale(chain):
    ws, ids = chain
    shown = [*ws.dependents(ids["run"]), ids["run"]]
    sampling.sample(ws, ids["run"], SamplingPolicy(size=3, seed=9))  # a new dependent meanwhile
    with pytest.raises(StoreError, match="the workspace changed since the list was made"):
        ws.remove(ids["run"], expected=shown)
    assert all(ws.exists(a) for a in shown)
    assert len(ws.remove(ids["run"], expected=[*ws.dependents(ids["run"]), ids["run"]])) == 4


def test_remove_unknown_id(chain):
    ws, _ = chain
    with pytest.raises(StoreError, match="no sample 'smp-0123456789abcdef'"):
        ws.remove("smp-0123456789abcdef")


def test_removal_plan_labels(chain):
    ws, ids = chain
    plan = ws.removal_plan(ids["embedding"])
    assert [r["id"] for r in plan] == [*ws.dependents(ids["embedding"]), ids["embedding"]]
    by = {r["kind"]: r["label"] for r in plan}
    assert by["embedding"].startswith("tfidf · 60 × ")
    assert by["run"] == "kmeans · k=3"
    assert by["sample"] == "6 rows · sqrt/random"
    assert by["description"] == "3 clusters described"
    assert label_of(ws.manifest(ids["corpus"])) == "topics.csv · 60 docs"


# -- writing parents -----------------------------------------------------------------


def test_write_checks_and_records_parents(tmp_path):
    ws = Workspace(tmp_path)
    cid = make_id("corpus", "a", {})
    ws.write(cid, blank("corpus"), parents=[])
    eid = make_id("embedding", cid, {})
    ws.write(eid, blank("embedding", corpus_id=cid), parents=[cid])
    r1 = make_id("run", eid, {"k": 2})
    ws.write(r1, blank("run"), parents=[eid])
    r2 = make_id("run", eid, {"edit": "merge 0 1"})
    ws.write(r2, blank("run"), parents=[eid], parent_run=r1)
    assert ws.manifest(r2).parent_run == r1 and ws.parents(r2) == [eid, r1]
    assert ws.dependents(r1) == [r2]
    assert ws.dependents(cid) == [r2, r1, eid]  # r2 derives from r1: it goes first
    with pytest.raises(StoreError, match="parent_run='run-.*' is for runs only"):
        ws.write(make_id("sample", r1, {}), blank("sample"), parents=[r1], parent_run=r1)
    with pytest.raises(StoreError, match="cannot be its own parent"):
        ws.write(make_id("run", eid, {"k": 9}), blank("run"), parents=[make_id("run", eid, {"k": 9})])
    assert ws.remove(r1) == [r2, r1]


def test_write_fails_when_a_parent_is_gone(tmp_path):
    ws = Workspace(tmp_path)
    cid = make_id("corpus", "a", {})
    eid = make_id("embedding", cid, {})
    with pytest.raises(StoreError, match=f"cannot write {eid}: its parent {cid} is not in workspace"):
        ws.write(eid, blank("embedding"), lambda d: (d / "x.npy").write_bytes(b"x"), parents=[cid])
    assert not ws.exists(eid) and list((tmp_path / "tmp").iterdir()) == []


def test_a_write_waits_for_a_removal_then_sees_its_parent_gone(tmp_path, monkeypatch):
    """remove() holds the workspace lock exclusively; a child's write renames under it shared."""
    ws = Workspace(tmp_path)
    cid = make_id("corpus", "a", {})
    ws.write(cid, blank("corpus"), parents=[])
    eid = make_id("embedding", cid, {})
    started, errors = threading.Event(), []
    real = Workspace._remove_tree

    def slow_remove_tree(self, p, inside):
        started.set()
        time.sleep(0.3)  # the writer below reaches the lock while the corpus is being removed
        real(self, p, inside)

    monkeypatch.setattr(Workspace, "_remove_tree", slow_remove_tree)
    t = threading.Thread(target=lambda: ws.remove(cid))
    t.start()
    started.wait(5)
    try:
        ws.write(eid, blank("embedding"), parents=[cid])
    except StoreError as e:
        errors.append(str(e))
    t.join()
    assert errors and "is not in workspace" in errors[0]
    assert not ws.exists(eid) and not ws.exists(cid)


# -- old manifests (written before parents were recorded) ----------------------------


def test_old_manifests_derive_parents_from_their_id_keys(tmp_path):
    ws = Workspace(tmp_path)
    fr = make_run(ws)  # writes corpus, embedding and run without parents=
    assert ws.manifest(fr.run_id).parents is None and "parents" not in ws.manifest(fr.run_id).to_dict()
    assert ws.parents(fr.embedding_id) == [fr.corpus_id]
    assert ws.parents(fr.run_id) == [fr.embedding_id]
    assert ws.parents(fr.corpus_id) == []
    assert ws.corpus_of(fr.run_id) == fr.corpus_id
    assert ws.dependents(fr.corpus_id) == [fr.run_id, fr.embedding_id]
    assert parents_of({"kind": "run", "corpus_id": fr.corpus_id}) == [fr.corpus_id]  # no embedding_id
    assert parents_of({"kind": "run", "embedding_id": fr.embedding_id, "parent_run": fr.run_id}) == [
        fr.embedding_id, fr.run_id]
    assert parents_of({"kind": "sample", "run_id": "run-../x"}) == []  # not an id: skipped


def test_corpus_of_without_corpus_id_follows_parents(tmp_path):
    ws = Workspace(tmp_path)
    cid = make_id("corpus", "a", {})
    ws.write(cid, blank("corpus"), parents=[])
    eid = make_id("embedding", cid, {})
    ws.write(eid, blank("embedding"), parents=[cid])
    rid = make_id("run", eid, {})
    ws.write(rid, blank("run"), parents=[eid])
    did = make_id("description", rid, {})
    ws.write(did, blank("description"), parents=[rid])
    assert ws.corpus_of(did) == cid
    orphan = make_id("run", None, {})
    ws.write(orphan, blank("run"))  # names no embedding and records no parents
    with pytest.raises(StoreError, match=f"cannot find the corpus of run {orphan}"):
        ws.corpus_of(orphan)


def test_dependents_survive_a_cycle_in_tampered_manifests(tmp_path):
    ws = Workspace(tmp_path)
    a, b = make_id("run", "x", {}), make_id("run", "y", {})
    ws.write(a, blank("run"))
    ws.write(b, blank("run"))
    for me, other in ((a, b), (b, a)):
        p = ws.path(me) / "manifest.json"
        m = json.loads(p.read_text())
        p.write_text(json.dumps({**m, "parents": [other]}))
    assert ws.dependents(a) == [b] and ws.dependents(b) == [a]


# -- symbolic links ---------------------------------------------------------------------


def _outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    return out


def test_remove_does_not_follow_links_out_of_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws)
    out = _outside(tmp_path)
    os.symlink(out, ws.path(fr.run_id) / "link-to-outside")
    os.symlink(out / "precious.txt", ws.path(fr.run_id) / "file-link")
    (ws.root / "cache").mkdir()
    os.symlink(out, ws.cache_dir(fr.embedding_id))  # a cache folder that is a link
    assert ws.remove(fr.corpus_id) == [fr.run_id, fr.embedding_id, fr.corpus_id]
    assert (out / "precious.txt").read_text() == "keep me"
    assert not ws.cache_dir(fr.embedding_id).is_symlink()


def test_an_artifact_folder_that_is_a_link_is_unlinked_not_emptied(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws)
    real = tmp_path / "elsewhere-run"
    shutil.move(ws.path(fr.run_id), real)
    os.symlink(real, ws.path(fr.run_id))
    assert ws.exists(fr.run_id)
    assert ws.remove(fr.run_id) == [fr.run_id]
    assert not ws.path(fr.run_id).is_symlink() and (real / "manifest.json").is_file()


def test_a_kind_folder_resolving_outside_is_refused_before_anything_goes(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws)
    shutil.move(ws.root / "run", tmp_path / "runs-elsewhere")
    os.symlink(tmp_path / "runs-elsewhere", ws.root / "run")
    with pytest.raises(StoreError, match="resolves outside the workspace"):
        ws.remove(fr.corpus_id)
    assert ws.exists(fr.run_id) and ws.exists(fr.embedding_id) and ws.exists(fr.corpus_id)
    assert np.load(tmp_path / "runs-elsewhere" / fr.run_id / "labels.npy").size == 60
