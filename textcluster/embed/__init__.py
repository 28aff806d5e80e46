"""Embed: texts of a corpus -> one cached, resumable ``n x dim`` matrix (stage 2).

``engine`` is the stage (:func:`embed`, :func:`encode_texts` for new texts), ``encoders``
the name -> factory registry of encoders, ``devices`` the device and thread choice.
"""

from __future__ import annotations

from textcluster.embed.engine import EmbedResult, embed, embedding_id, encode_texts, load_embeddings

__all__ = ["EmbedResult", "embed", "embedding_id", "encode_texts", "load_embeddings"]
