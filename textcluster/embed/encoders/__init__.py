"""Encoders: texts -> vectors. One module per backend, one registry (see :mod:`.base`).

Importing this package registers the built-in encoders; heavy libraries
(torch, transformers, sentence-transformers, scikit-learn) load only when an
encoder is used.
"""

from __future__ import annotations

from textcluster.embed.encoders.base import (
    Encoder,
    EncoderInfo,
    available_encoders,
    clear_model_cache,
    get_encoder,
    parse_name,
    register_encoder,
)
from textcluster.embed.encoders.static import make_static
from textcluster.embed.encoders.tfidf import make_tfidf
from textcluster.embed.encoders.transformer import make_hf, make_minilm, make_st

register_encoder(
    "minilm", make_minilm, "all-MiniLM-L6-v2, bundled and offline (384 dims): the default",
    needs_model=True, takes_model=False,
)
register_encoder(
    "tfidf", make_tfidf, "TF-IDF fitted on the corpus + truncated SVD (--dims, default 256): no model, fastest",
    needs_model=False, takes_model=False,
)
register_encoder(
    "st", make_st, "any sentence-transformers model: a hub name or a local folder",
    needs_model=True, takes_model=True,
)
register_encoder(
    "hf", make_hf, "any Hugging Face model (BERT, RoBERTa, T5 encoder, decoder LLMs); --pooling mean|cls|last-token",
    needs_model=True, takes_model=True,
)
register_encoder(
    "static", make_static, "mean of a model's input token vectors (static:minilm = bundled): fast, context-free",
    needs_model=True, takes_model=True,
)

__all__ = [
    "Encoder", "EncoderInfo", "available_encoders", "clear_model_cache", "get_encoder",
    "parse_name", "register_encoder",
]
