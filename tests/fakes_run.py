"""Build small corpus / embedding / run artifacts directly with Workspace.write.

They follow docs/ARCHITECTURE.md exactly, so the describe, sampling, sql and
export tests do not depend on the ingest, embed and cluster stages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textcluster.store import (
    MANIFEST_TYPES,
    CorpusManifest,
    EmbeddingManifest,
    Manifest,
    RunManifest,
    Workspace,
    make_id,
)

TOPICS = [
    ["football", "goal", "match", "team", "league", "striker", "referee"],
    ["python", "code", "function", "bug", "compiler", "variable", "debugger"],
    ["recipe", "bake", "oven", "flour", "sugar", "butter", "dough"],
    ["planet", "telescope", "galaxy", "orbit", "star", "astronomer", "comet"],
    ["guitar", "concert", "album", "song", "drummer", "melody", "chorus"],
]
NOISE_WORDS = ["random", "stuff", "misc", "whatever", "thing", "various", "odd"]


#: The required fields of each kind's manifest, at empty values (no parent named).
REQUIRED_FIELDS: dict[str, dict] = {
    "corpus": {"kept": 0},
    "embedding": {"n": 0, "dim": 0},
    "run": {"embedding_id": "", "n": 0, "dim": 0, "k": 0, "noise": 0.0, "reducer": {}, "clusterer": {}},
    "description": {"run_id": ""},
    "sample": {"run_id": "", "n": 0, "policy": {}},
}


def blank(kind: str, **fields) -> Manifest:
    """A manifest of ``kind`` with only its required fields (empty) plus ``fields``: for tests of
    the store that need an artifact, not its content."""
    return MANIFEST_TYPES[kind](**{**REQUIRED_FIELDS[kind], **fields})


@dataclass
class FakeRun:
    corpus_id: str
    embedding_id: str
    run_id: str
    labels: np.ndarray
    emb: np.ndarray
    texts: list[str]
    sha256: str


def make_run(
    ws: Workspace,
    sizes: tuple[int, ...] = (30, 20, 10),
    n_noise: int = 0,
    dim: int = 8,
    seed: int = 0,
    with_distances: bool = True,
    reducer: str = "none",
    tag: str = "",
    run_manifest: dict | None = None,
) -> FakeRun:
    """A corpus, an embedding and a k-means-like run with ``len(sizes)`` clusters (+ noise rows).

    Cluster c's texts use topic words of ``TOPICS[c % 5]``; vectors are c's centre
    plus small noise; rows are shuffled so clusters interleave in doc_id order.
    ``run_manifest``: extra keys of the run manifest (e.g. stored ``metrics``).
    """
    rng = np.random.default_rng(seed)
    k = len(sizes)
    centers = rng.normal(size=(k, dim)).astype(np.float32) * 3
    labels = np.concatenate([np.full(s, c, np.int32) for c, s in enumerate(sizes)] + [np.full(n_noise, -1, np.int32)])
    perm = rng.permutation(labels.size)
    labels = labels[perm]
    n = labels.size
    emb = np.empty((n, dim), np.float32)
    texts = []
    for i, c in enumerate(labels):
        if c >= 0:
            emb[i] = centers[c] + rng.normal(scale=0.5, size=dim)
            words = TOPICS[c % len(TOPICS)]
        else:
            emb[i] = rng.normal(scale=3, size=dim)
            words = NOISE_WORDS
        pick = rng.choice(words, size=4, replace=True)
        texts.append(f"The {pick[0]} and {pick[1]} {tag} with {pick[2]} {pick[3]} number {i}")
    sha = hashlib.sha256(("\n".join(texts) + tag + str(seed)).encode()).hexdigest()

    corpus_id = make_id("corpus", sha, {"text_fields": ["text"]})

    def w_corpus(d: Path) -> None:
        pq.write_table(
            pa.table(
                {
                    "doc_id": pa.array(np.arange(n), pa.int64()),
                    "row": pa.array(np.arange(1, n + 1), pa.int64()),
                    "text": pa.array(texts, pa.string()),
                    "lang": pa.array(["en" if i % 3 else "fr" for i in range(n)], pa.string()),
                    "label": pa.array([f"topic{c}" for c in labels], pa.string()),
                    "is_duplicate": pa.array([False] * n, pa.bool_()),
                }
            ),
            d / "docs.parquet",
        )
        pq.write_table(pa.table({"row": pa.array([], pa.int64()), "reason": pa.array([], pa.string())}),
                       d / "rejections.parquet")

    ws.write(corpus_id, CorpusManifest(sha256=sha, source="fake.csv", format="csv", kept=n,
                                       spec={"text_fields": ["text"]}), w_corpus)

    embedding_id = make_id("embedding", corpus_id, {"name": "fake", "dim": dim})

    def w_emb(d: Path) -> None:
        np.save(d / "embeddings.npy", emb)

    ws.write(embedding_id, EmbeddingManifest(corpus_id=corpus_id, encoder="fake",
                                             encoder_config={"name": "fake", "normalize": False},
                                             model_fingerprint="fake-fp-123", n=n, dim=dim), w_emb)

    run_id = make_id("run", embedding_id, {"k": k, "seed": seed, "reducer": reducer})
    dcd = np.sqrt(((emb[:, None, :] - centers[None]) ** 2).sum(-1)).astype(np.float32)
    own = np.where(labels >= 0, dcd[np.arange(n), np.maximum(labels, 0)], np.nan).astype(np.float32)

    def w_run(d: Path) -> None:
        np.save(d / "labels.npy", labels)
        np.save(d / "centers.npy", centers)
        if with_distances:
            np.save(d / "distances.npy", own)
            np.save(d / "data_center_distance.npy", dcd)
        np.save(d / "coords2d.npy", emb[:, :2].copy())
        np.save(d / "probabilities.npy", np.where(labels >= 0, 0.9, 0.0).astype(np.float32))
        ids, counts = np.unique(labels[labels >= 0], return_counts=True)
        pq.write_table(
            pa.table({"cluster": pa.array(ids, pa.int32()), "size": pa.array(counts, pa.int64()),
                      "share": pa.array(counts / n, pa.float64()),
                      "medoid_doc_id": pa.array([int(np.flatnonzero(labels == c)[0]) for c in ids], pa.int64())}),
            d / "clusters.parquet",
        )

    ws.write(run_id, RunManifest(corpus_id=corpus_id, embedding_id=embedding_id,
                                 reducer={"method": reducer, "dims": dim},
                                 clusterer={"method": "kmeans", "k": k, "seed": seed},
                                 seed=seed, n=n, dim=dim, k=k, noise=float(np.mean(labels < 0)),
                                 **(run_manifest or {})), w_run)
    return FakeRun(corpus_id, embedding_id, run_id, labels, emb, texts, sha)


def rewrite_table(ws: Workspace, artifact_id: str, name: str, table: pa.Table) -> None:
    """Replace the Parquet file ``name`` of an artifact with ``table`` and record its new
    checksum, as an artifact written with that table would have (tests that vary a corpus's
    columns; an edit in place is otherwise a damaged artifact)."""
    import json

    from textcluster.store import checksum_files, write_json_atomic

    folder = ws.path(artifact_id)
    pq.write_table(table, folder / name)
    m = json.loads((folder / "manifest.json").read_text())
    m["checksums"] = checksum_files(folder)
    write_json_atomic(folder / "manifest.json", m)


def real_chain(folder: Path) -> tuple[Workspace, dict[str, str]]:
    """corpus -> embedding -> run -> (description, sample) of the 3-topic CSV, built by the real
    stages (tfidf, k-means k=3) in ``folder/ws``; returns the workspace and the ids by kind."""
    from topic_corpus import write_topic_csv

    from textcluster.cluster import runs
    from textcluster.config import (
        ClustererConfig,
        CorpusSpec,
        EncoderConfig,
        ReducerConfig,
        SamplingPolicy,
    )
    from textcluster.describe import clusters as describe
    from textcluster.describe import sampling
    from textcluster.embed import embed
    from textcluster.ingest import corpus

    ws = Workspace(folder / "ws")
    cid = corpus.ingest(write_topic_csv(folder / "topics.csv"), CorpusSpec(text_fields=("text",)), ws).corpus_id
    eid = embed(ws, cid, EncoderConfig(name="tfidf")).embedding_id
    rid = runs.cluster(ws, eid, ReducerConfig(projection="pca"), ClustererConfig(k=3)).run_id
    did = describe.describe(ws, rid, top_n=3, examples=1).description_id
    sid = sampling.sample(ws, rid, SamplingPolicy(size=6)).sample_id
    return ws, {"corpus": cid, "embedding": eid, "run": rid, "description": did, "sample": sid}
