"""Encoders: texts -> vectors. One module per backend (``transformer``, ``static``, ``tfidf``),
the :class:`~textcluster.embed.encoders.base.Encoder` protocol and model-file helpers in
``base``, and one registry (``registry``) that the CLI's and the app's choices come from.
"""

from __future__ import annotations

from textcluster.embed.encoders.base import Encoder, clear_model_cache
from textcluster.embed.encoders.registry import (
    EncoderInfo,
    available_encoders,
    check_encoder_source,
    get_encoder,
    parse_name,
    register_encoder,
)

__all__ = [
    "Encoder", "EncoderInfo", "available_encoders", "check_encoder_source", "clear_model_cache", "get_encoder",
    "parse_name", "register_encoder",
]
