"""Describe the clusters of a run: keywords, a short label, nearest and edge examples.

Keywords come from class-based TF-IDF (c-TF-IDF): the term counts of all the
documents of a cluster are pooled into one "class document", and a term scores
high when it is frequent in that cluster and rare across clusters
(``tf(t, c) * log(1 + A / f(t))``, with ``A`` the mean number of words per
cluster and ``f(t)`` the term's count over all clusters). Terms are unigrams
and bigrams with English stop words removed. The label is the top three
keywords joined with `` / ``.

Examples are the members nearest their cluster's centre and the farthest ones
(edge cases), measured with the run's ``distances.npy`` (or
``data_center_distance.npy``), or recomputed from the embedding when the run
has neither.

The result is a ``description`` artifact (``clusters.json``), cached by
(run id, top_n, examples, max_docs, llm settings).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from textcluster.describe.allocation import waterfill
from textcluster.describe.llm import label_clusters
from textcluster.errors import ConfigError, StoreError
from textcluster.progress import Meter, check_cancel
from textcluster.store import DescriptionManifest, RunManifest, Workspace, check_id, make_id

logger = logging.getLogger(__name__)

NOISE = -1
LABEL_WORDS = 3


@dataclass(frozen=True)
class ClusterDescription:
    """One cluster: ``keywords`` best first with their c-TF-IDF ``scores``; ``nearest`` /
    ``farthest`` doc ids (nearest first / farthest first) with their distances; ``llm``: the
    optional LLM label record (see :mod:`textcluster.describe.llm`), else None."""

    cluster: int
    size: int
    label: str
    keywords: list[str]
    scores: list[float]
    nearest: list[int]
    nearest_distance: list[float]
    farthest: list[int]
    farthest_distance: list[float]
    llm: dict[str, Any] | None = None


@dataclass(frozen=True)
class Description:
    """All clusters of a run (noise, when present, is cluster -1 with keywords and no examples)."""

    description_id: str
    run_id: str
    top_n: int
    examples: int
    clusters: list[ClusterDescription] = field(default_factory=list)
    cached: bool = False

    def by_cluster(self) -> dict[int, ClusterDescription]:
        """cluster id -> its description."""
        return {c.cluster: c for c in self.clusters}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's ``--json`` output)."""
        return {
            "description_id": self.description_id,
            "run_id": self.run_id,
            "top_n": self.top_n,
            "examples": self.examples,
            "clusters": [asdict(c) for c in self.clusters],
        }


# -- keywords ----------------------------------------------------------------


def ctfidf_keywords(
    texts: list[str], labels: np.ndarray, top_n: int = 10, max_features: int = 100_000
) -> dict[int, list[tuple[str, float]]]:
    """Top ``top_n`` (term, score) pairs per label by class-based TF-IDF.

    ``texts`` (n,) and ``labels`` (n,) ints. Unigrams and bigrams, English stop
    words removed, tokens of two or more word characters. A label whose texts
    hold no usable term gets an empty list.
    """
    from scipy import (
        sparse,  # lazily: importing scipy's solvers takes ~0.3-0.7 s, paid by the CLI's start otherwise
    )
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    if len(texts) != labels.shape[0]:
        raise ConfigError(f"{len(texts)} texts but {labels.shape[0]} labels")
    groups = np.unique(labels)
    if len(texts) == 0:
        return {}
    vec = CountVectorizer(
        stop_words="english", ngram_range=(1, 2), max_features=max_features, dtype=np.float64
    )
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # empty vocabulary: only stop words / symbols
        return {int(g): [] for g in groups}
    idx = np.searchsorted(groups, labels)
    onehot = sparse.csr_matrix(
        (np.ones(len(texts)), (idx, np.arange(len(texts)))), shape=(len(groups), len(texts))
    )
    counts = (onehot @ x).toarray()  # (k, V)
    words_per_class = counts.sum(axis=1)
    tf = counts / np.maximum(words_per_class[:, None], 1.0)
    freq = counts.sum(axis=0)
    avg = words_per_class.mean()
    idf = np.log(1.0 + avg / np.maximum(freq, 1.0))
    score = tf * idf[None, :]
    terms = vec.get_feature_names_out()
    out: dict[int, list[tuple[str, float]]] = {}
    for i, g in enumerate(groups):
        row = score[i]
        top = np.lexsort((np.arange(row.size), -row))[:top_n]  # ties: vocabulary order
        out[int(g)] = [(str(terms[j]), float(row[j])) for j in top if row[j] > 0]
    return out


def make_label(keywords: list[str], words: int = LABEL_WORDS) -> str:
    """A short label: the first ``words`` keywords joined by " / ", skipping ones already covered
    (``"learning"`` after ``"machine learning"``)."""
    chosen: list[str] = []
    seen: set[str] = set()
    for kw in keywords:
        toks = set(kw.split())
        if toks <= seen:
            continue
        chosen.append(kw)
        seen |= toks
        if len(chosen) == words:
            break
    return " / ".join(chosen)


# -- distances ---------------------------------------------------------------


def member_distances(
    ws: Workspace, run_id: str, members: np.ndarray, cluster: int, emb: Any = None
) -> np.ndarray:
    """Distance of each of ``members`` (doc ids of ``cluster``) to the cluster's centre.

    Uses the run's ``distances.npy``, else the column ``cluster`` of
    ``data_center_distance.npy``, else recomputes: against ``centers.npy`` when
    the run has no reducer (centres then live in the embedding space), else
    against the mean of the members' embeddings. Returns (len(members),) float64.
    """
    d = ws.path(run_id)
    if (d / "distances.npy").is_file():
        dist = np.load(d / "distances.npy", mmap_mode="r")
        return np.asarray(dist[members], dtype=np.float64)
    if (d / "data_center_distance.npy").is_file():
        dcd = np.load(d / "data_center_distance.npy", mmap_mode="r")
        if 0 <= cluster < dcd.shape[1]:
            return np.asarray(dcd[members, cluster], dtype=np.float64)
    if emb is None:
        eid = ws.manifest(check_id(run_id, "run")).embedding_id
        if not eid or not ws.exists(eid):
            raise StoreError(
                f"run {run_id} has no distances.npy and its embedding {eid!r} is not in the workspace"
            )
        emb = np.load(ws.file(eid, "embeddings.npy"), mmap_mode="r")
    x = np.asarray(emb[members], dtype=np.float64)
    centre = None
    if _reducer_method(ws.manifest(check_id(run_id, "run"))) in ("none", None) and (d / "centers.npy").is_file():
        centers = np.load(d / "centers.npy", mmap_mode="r")
        if 0 <= cluster < centers.shape[0] and centers.shape[1] == x.shape[1]:
            centre = np.asarray(centers[cluster], dtype=np.float64)
    if centre is None:
        centre = x.mean(axis=0)
    return np.sqrt(((x - centre) ** 2).sum(axis=1))


def _reducer_method(run_manifest: RunManifest) -> str | None:
    return run_manifest.reducer.get("method")


# -- the stage ---------------------------------------------------------------


def description_id_for(
    run_id: str, top_n: int = 10, examples: int = 5, max_docs: int = 200_000, llm: Any = None
) -> str:
    """The artifact id :func:`describe` writes for these settings."""
    key = {"top_n": top_n, "examples": examples, "max_docs": max_docs}
    if llm is not None:
        key["llm"] = llm.cache_key()
    return make_id("description", run_id, key)


def describe(
    ws: Workspace,
    run_id: str,
    top_n: int = 10,
    examples: int = 5,
    max_docs: int = 200_000,
    llm: Any = None,
    progress: Any = None,
    cancel: Any = None,
) -> Description:
    """Keywords, label and examples for every cluster of ``run_id``; stored and cached.

    top_n: keywords per cluster (default 10). examples: nearest and farthest
    members kept per cluster (default 5). max_docs: keywords are counted over
    at most this many documents (a seeded subset, stratified by cluster) to
    bound time on big corpora. llm: an :class:`textcluster.describe.llm.LLMSettings` to
    add LLM labels (None: off); a failing LLM is recorded per cluster, never raised.
    progress / cancel: a :data:`~textcluster.progress.ProgressFn` and a ``threading.Event``.
    """
    if top_n < 1:
        raise ConfigError(f"top_n={top_n} should be >= 1")
    if examples < 0:
        raise ConfigError(f"examples={examples} should be >= 0")
    if max_docs < 1:
        raise ConfigError(f"max_docs={max_docs} should be >= 1")
    did = description_id_for(run_id, top_n, examples, max_docs, llm)
    if not ws.cached(did):
        ws.manifest(run_id)  # a clear StoreError for an unknown run
        with ws.lock(did):  # two processes asking at once: one computes, the other reads
            if not ws.cached(did):
                return _compute(ws, run_id, did, top_n, examples, max_docs, llm, progress, cancel)
    d = load_description(ws, did)
    return Description(d.description_id, d.run_id, d.top_n, d.examples, d.clusters, cached=True)


def _compute(
    ws: Workspace, run_id: str, did: str, top_n: int, examples: int, max_docs: int, llm: Any,
    progress: Any, cancel: Any,
) -> Description:

    meter = Meter("describe", 2, progress, estimate=False)
    meter.update(0, "counting keywords")
    run_m = ws.manifest(check_id(run_id, "run"))
    labels = np.asarray(np.load(ws.file(run_id, "labels.npy"), mmap_mode="r"))
    corpus_id = ws.corpus_of(run_id)
    texts_all = _texts(ws, corpus_id)
    if len(texts_all) != labels.shape[0]:
        raise StoreError(
            f"run {run_id} has {labels.shape[0]} labels but corpus {corpus_id} has {len(texts_all)} docs"
        )
    keep = _subset(labels, max_docs)
    kw = ctfidf_keywords([texts_all[i] for i in keep], labels[keep], top_n=top_n)
    check_cancel(cancel, "describe")
    meter.update(1, "finding examples")

    ids, counts = np.unique(labels, return_counts=True)
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], ids)
    emb = None
    clusters: list[ClusterDescription] = []
    for c, n, s in zip(ids, counts, starts, strict=True):
        c = int(c)
        words = kw.get(c, [])
        keywords = [w for w, _ in words]
        near, near_d, far, far_d = [], [], [], []
        if c != NOISE and examples > 0:
            members = np.sort(order[s : s + n]).astype(np.int64)
            if emb is None and not (ws.path(run_id) / "distances.npy").is_file():
                eid = run_m.embedding_id
                if eid and ws.exists(eid):
                    emb = np.load(ws.file(eid, "embeddings.npy"), mmap_mode="r")
            dist = member_distances(ws, run_id, members, c, emb)
            o = np.lexsort((members, dist))
            k = min(examples, members.size)
            near, near_d = members[o[:k]].tolist(), dist[o[:k]].tolist()
            o_far = np.lexsort((members, -dist))
            far, far_d = members[o_far[:k]].tolist(), dist[o_far[:k]].tolist()
        label = "noise" if c == NOISE else (make_label(keywords) or f"cluster {c}")
        clusters.append(
            ClusterDescription(c, int(n), label, keywords, [w for _, w in words], near, near_d, far, far_d)
        )

    if llm is not None:

        prompts = {
            cd.cluster: [texts_all[i] for i in cd.nearest] for cd in clusters if cd.cluster != NOISE
        }
        kws = {cd.cluster: cd.keywords for cd in clusters}
        records = label_clusters(prompts, llm, keywords=kws, progress=progress)
        clusters = [
            ClusterDescription(**{**asdict(cd), "llm": records[cd.cluster].to_dict()})
            if cd.cluster in records
            else cd
            for cd in clusters
        ]

    check_cancel(cancel, "describe")
    desc = Description(did, run_id, top_n, examples, clusters)

    def write(d: Path) -> None:
        (d / "clusters.json").write_text(
            json.dumps(desc.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )

    manifest = DescriptionManifest(
        run_id=run_id,
        corpus_id=corpus_id,
        top_n=top_n,
        examples=examples,
        max_docs=max_docs,
        llm=llm.to_manifest() if llm is not None else None,
        n_clusters=len(clusters),
    )
    ws.write(did, manifest, write, parents=[run_id])
    meter.update(2)
    return desc


def load_description(ws: Workspace, description_id: str) -> Description:
    """A stored description (``clusters.json``)."""
    p = ws.file(description_id, "clusters.json")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StoreError(f"{p} is unreadable: {e}") from e
    cl = [ClusterDescription(**c) for c in raw["clusters"]]
    return Description(raw["description_id"], raw["run_id"], raw["top_n"], raw["examples"], cl)


def latest_description(ws: Workspace, run_id: str) -> Description | None:
    """The newest stored description of ``run_id``, or None."""
    for m in ws.list("description"):
        if m.run_id == run_id:
            try:
                return load_description(ws, m.id)
            except StoreError:
                continue
    return None


def _texts(ws: Workspace, corpus_id: str) -> list[str]:

    t = pq.read_table(ws.file(corpus_id, "docs.parquet"), columns=["doc_id", "text"])
    ids = t.column("doc_id").to_numpy()
    texts = t.column("text").to_pylist()
    if not np.array_equal(ids, np.arange(len(ids))):
        out = [""] * len(ids)
        for i, s in zip(ids, texts, strict=True):
            out[int(i)] = s
        texts = out
    return [s or "" for s in texts]


def _subset(labels: np.ndarray, max_docs: int, seed: int = 0) -> np.ndarray:
    """Row indices: all rows, or a seeded stratified subset of ``max_docs`` rows."""
    n = labels.shape[0]
    if n <= max_docs:
        return np.arange(n)
    ids, counts = np.unique(labels, return_counts=True)
    q = waterfill(dict(zip(ids.tolist(), counts.tolist(), strict=True)), max_docs, "proportional")
    rng = np.random.default_rng(seed)
    parts = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in q.items() if k]
    return np.sort(np.concatenate(parts))
