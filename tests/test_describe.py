"""Descriptions: c-TF-IDF keywords, labels, nearest / farthest examples, caching."""

from __future__ import annotations

import numpy as np
import pytest
from fakes_run import TOPICS, make_run

from textcluster.describe.clusters import (
    ctfidf_keywords,
    describe,
    description_id_for,
    latest_description,
    load_description,
    make_label,
)
from textcluster.errors import ConfigError, StoreError
from textcluster.store import Workspace, make_id


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


def test_ctfidf_finds_each_clusters_own_words():
    texts = ["the cat sat on the mat", "a cat and a kitten", "dogs bark loudly", "the dog and the puppy"]
    kw = ctfidf_keywords(texts, np.array([0, 0, 1, 1]), top_n=3)
    assert kw[0][0][0] == "cat"
    assert "dog" in [w for w, _ in kw[1]] or "dogs" in [w for w, _ in kw[1]]
    assert all(w not in ("the", "and", "a") for ws_ in kw.values() for w, _ in ws_)
    scores = [s for _, s in kw[0]]
    assert scores == sorted(scores, reverse=True)


def test_ctfidf_keeps_bigrams_and_handles_stop_word_only_text():
    kw = ctfidf_keywords(["machine learning rocks", "machine learning rules"], np.array([0, 0]), top_n=5)
    assert "machine learning" in [w for w, _ in kw[0]]
    assert ctfidf_keywords(["the and of", "a the"], np.array([0, 1])) == {0: [], 1: []}


def test_label_skips_covered_words():
    assert make_label(["machine learning", "learning", "machine", "neural", "net"]) == "machine learning / neural / net"
    assert make_label([]) == ""


def test_describe_finds_topics_examples_and_caches(ws):
    fr = make_run(ws, sizes=(30, 20, 10), n_noise=5)
    d = describe(ws, fr.run_id, top_n=6, examples=3)
    assert d.description_id == description_id_for(fr.run_id, 6, 3)
    assert d.description_id == make_id("description", fr.run_id, {"top_n": 6, "examples": 3, "max_docs": 200_000})
    by = d.by_cluster()
    assert set(by) == {-1, 0, 1, 2}
    for c in range(3):
        cd = by[c]
        assert cd.size == int((fr.labels == c).sum())
        top = set(cd.keywords[:4])
        assert top & set(TOPICS[c]), (c, cd.keywords)
        assert cd.label == make_label(cd.keywords)
        assert len(cd.nearest) == len(cd.farthest) == 3
        assert all(fr.labels[i] == c for i in cd.nearest + cd.farthest)
        assert cd.nearest_distance == sorted(cd.nearest_distance)
        assert cd.farthest_distance == sorted(cd.farthest_distance, reverse=True)
        assert cd.nearest_distance[0] <= cd.farthest_distance[0]
    dist = np.load(ws.file(fr.run_id, "distances.npy"))
    members = np.flatnonzero(fr.labels == 0)
    assert by[0].nearest[0] == members[np.argmin(dist[members])]
    assert by[-1].label == "noise" and by[-1].nearest == []

    again = describe(ws, fr.run_id, top_n=6, examples=3)
    assert again.cached and again.to_dict() == d.to_dict()
    assert latest_description(ws, fr.run_id).description_id == d.description_id
    assert load_description(ws, d.description_id).clusters[1] == d.clusters[1]


def test_examples_recomputed_without_distance_files(ws):
    fr = make_run(ws, sizes=(25, 15), with_distances=False)
    d = describe(ws, fr.run_id, examples=4)
    centre = np.load(ws.file(fr.run_id, "centers.npy"))[1]
    members = np.flatnonzero(fr.labels == 1)
    dist = np.linalg.norm(fr.emb[members] - centre, axis=1)
    assert d.by_cluster()[1].nearest == members[np.argsort(dist)[:4]].tolist()


def test_examples_use_member_mean_when_centres_are_in_a_reduced_space(ws):
    fr = make_run(ws, sizes=(25, 15), with_distances=False, reducer="umap")
    d = describe(ws, fr.run_id, examples=2)
    members = np.flatnonzero(fr.labels == 0)
    x = fr.emb[members].astype(np.float64)
    dist = np.linalg.norm(x - x.mean(0), axis=1)
    assert d.by_cluster()[0].nearest == members[np.argsort(dist)[:2]].tolist()


def test_max_docs_subset_still_describes_every_cluster(ws):
    fr = make_run(ws, sizes=(60, 40, 20))
    d = describe(ws, fr.run_id, max_docs=30)
    assert all(c.keywords for c in d.clusters)


def test_bad_settings_and_missing_run(ws):
    with pytest.raises(ConfigError, match="top_n=0"):
        describe(ws, "run-0000000000000000", top_n=0)
    with pytest.raises(ConfigError, match="examples=-1"):
        describe(ws, "run-0000000000000000", examples=-1)
    with pytest.raises(StoreError, match="no run 'run-0000000000000000'"):
        describe(ws, "run-0000000000000000")


def test_progress_and_cancel(ws):
    import threading

    from textcluster.errors import JobCancelled

    fr = make_run(ws, sizes=(10, 10))
    ev = threading.Event()
    ev.set()
    with pytest.raises(JobCancelled, match="describe cancelled"):
        describe(ws, fr.run_id, cancel=ev)
    assert not ws.list("description")
    seen = []
    describe(ws, fr.run_id, progress=seen.append)
    assert [p.done for p in seen] == [0, 1, 2] and seen[-1].stage == "describe"
