"""Which pipeline stages will come from the cache: artifact ids computed, nothing run."""

from __future__ import annotations

import streamlit as st

from textcluster import pipeline
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.embed import engine
from textcluster.store import Workspace


@st.cache_data(show_spinner=False, max_entries=256)
def _embedding_id(corpus_id: str, encoder_json: dict) -> str:
    # Hashes the model files (not loading them): cached per (corpus, encoder settings).
    return engine.embedding_id(corpus_id, EncoderConfig.from_dict(encoder_json))


def cached_stages(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    top_n: int = pipeline.DEFAULT_TOP_N,
) -> dict[str, bool]:
    """``{"embed": hit, "cluster": hit, "describe": hit}`` from :func:`textcluster.pipeline.plan`,
    with the embedding id cached per session."""
    eid = _embedding_id(corpus_id, encoder.to_dict())
    return pipeline.plan(ws, corpus_id, encoder, reducer, clusterer, top_n, embedding_id=eid).cached
