"""Which pipeline stages will come from the cache: artifact ids computed, nothing run."""

from __future__ import annotations

import streamlit as st

from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.store import Workspace


@st.cache_data(show_spinner=False, max_entries=256)
def _embedding_id(corpus_id: str, encoder_json: dict) -> str:
    # Hashes the model files (not loading them): cached per (corpus, encoder settings).
    from textcluster.embed import engine as embed

    return embed.embedding_id(corpus_id, EncoderConfig.from_dict(encoder_json))


def cached_stages(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    top_n: int = 10,
) -> dict[str, bool]:
    """``{"embed": hit, "cluster": hit, "describe": hit}``: True where the artifact is already
    in the workspace, so the stage will finish at once. A later stage cannot be a hit when an
    earlier one is not (its id depends on the earlier artifact)."""
    from textcluster.cluster import runs
    from textcluster.describe import clusters as describe

    eid = _embedding_id(corpus_id, encoder.to_dict())
    out = {"embed": ws.exists(eid), "cluster": False, "describe": False}
    if out["embed"]:
        rid = runs.run_id_for(eid, reducer, clusterer)
        out["cluster"] = ws.exists(rid)
        if out["cluster"]:
            out["describe"] = ws.exists(describe.description_id_for(rid, top_n=top_n))
    return out
