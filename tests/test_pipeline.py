"""`run_pipeline`: ingest -> embed -> cluster in one call; only the changed stage reruns."""

from __future__ import annotations

from pathlib import Path

from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.store import Workspace


def test_pipeline_runs_and_caches_stages(tmp_path: Path) -> None:
    from topic_corpus import write_topic_csv

    from textcluster.pipeline import run_pipeline

    f = write_topic_csv(tmp_path / "t.csv", per_topic=20)
    ws = Workspace(tmp_path / "ws")
    spec = CorpusSpec(text_fields=("text",), label_field="label")
    enc = EncoderConfig(name="tfidf", dims=8)
    red = ReducerConfig(projection="pca")
    a = run_pipeline(f, spec, enc, red, ClustererConfig(k=3), ws)
    assert a.run.k == 3 and a.run.metrics["acc"] > 0.9
    # the map stage: the run's own PCA map is final already (projection="pca"), nothing to compute
    assert a.cached == {"ingest": False, "embed": False, "cluster": False, "map": True}
    b = run_pipeline(f, spec, enc, red, ClustererConfig(k=4), ws)
    assert b.cached == {"ingest": True, "embed": True, "cluster": False, "map": True}
    assert b.embedding_id == a.embedding_id and b.run.run_id != a.run.run_id
    d = b.to_dict()
    assert d["run_id"] == b.run.run_id and d["corpus_id"] == a.corpus_id and "total" in d["timings"]
