"""The encoder registry: one name -> factory table, which the CLI's and the app's choices come from.

The built-in backends are registered when this module is imported; heavy libraries
(torch, transformers, sentence-transformers, scikit-learn) load only when an encoder is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textcluster.embed.encoders.base import Encoder, check_model_source, model_roots
from textcluster.embed.encoders.distilled import make_m2v
from textcluster.embed.encoders.onnx import make_int8, require_onnx
from textcluster.embed.encoders.static import make_static
from textcluster.embed.encoders.tfidf import make_tfidf
from textcluster.embed.encoders.transformer import (
    bundled_minilm_path,
    make_hf,
    make_minilm,
    make_st,
)
from textcluster.errors import EncoderError

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig


@dataclass(frozen=True)
class EncoderInfo:
    """One registry entry, as the CLI and the app list it.

    name: the key (``minilm``) or the key with a placeholder (``st:<model>``).
    help: one line for a user.
    needs_model: True when it runs a neural model (slow on CPU, benefits from a GPU).
    takes_model: True when the name needs a ``:<model>`` part.
    """

    name: str
    help: str
    needs_model: bool
    takes_model: bool


#: Keys whose model part ``minilm`` means the bundled all-MiniLM-L6-v2.
BUNDLED_ALIAS = ("static", "int8", "m2v")

Factory = Callable[[str, "EncoderConfig"], Encoder]

_REGISTRY: dict[str, tuple[EncoderInfo, Factory]] = {}


def register_encoder(
    key: str, factory: Factory, help: str, *, needs_model: bool, takes_model: bool
) -> None:
    """Add (or replace) an encoder in the registry.

    ``factory(model, cfg)`` gets the part after ``key:`` ("" for plain keys)
    and the config, and returns an :class:`Encoder` without loading anything.
    """
    shown = f"{key}:<model>" if takes_model else key
    _REGISTRY[key] = (EncoderInfo(shown, help, needs_model, takes_model), factory)


def available_encoders() -> list[EncoderInfo]:
    """Every registered encoder, in registration order (``minilm`` first)."""
    return [info for info, _ in _REGISTRY.values()]


def parse_name(name: str) -> tuple[str, str]:
    """Split ``"st:org/model"`` into ``("st", "org/model")``; ``"minilm"`` into ``("minilm", "")``.

    Raises :class:`EncoderError` for unknown keys (listing the known ones) and for
    a missing or unexpected ``:<model>`` part.
    """
    key, sep, model = (name or "").strip().partition(":")
    if key not in _REGISTRY:
        raise EncoderError(
            f"unknown encoder {name!r}; known: "
            + ", ".join(info.name for info in available_encoders())
        )
    info = _REGISTRY[key][0]
    if info.takes_model and not model.strip():
        raise EncoderError(f"encoder {name!r} needs a model: {info.name}, e.g. {key}:<hub name or local path>")
    if not info.takes_model and sep:
        raise EncoderError(f"encoder {key!r} takes no model, got {name!r}")
    return key, model.strip()


def check_encoder_source(name: str) -> str:
    """``name`` when it is safe where model paths are restricted (the app's model box): a
    registered encoder, with a hub-style model name or a local folder under
    :func:`~textcluster.embed.encoders.base.model_roots` (``$TEXTCLUSTER_MODEL_DIRS`` and the
    bundled model's folder); ``static:minilm``, ``int8:minilm``, ``m2v:minilm`` are the bundled model. :class:`EncoderError`
    otherwise (unknown encoder, or a folder outside those roots: ``st:/usr`` is never walked).
    The CLI does not call it: a path typed there is the user's own."""
    key, model = parse_name(name)
    if not model or (key in BUNDLED_ALIAS and model == "minilm"):
        return name
    extra: list[Path] = []
    with contextlib.suppress(EncoderError):
        extra.append(bundled_minilm_path())
    check_model_source(model, model_roots(extra))
    return name


def usable_encoder(name: str) -> tuple[str, str | None]:
    """``(name, None)`` when the encoder can run here, else the float encoder of the same model
    and a note saying why (the app shows it): ``int8:<model>`` without ONNX Runtime falls back
    to ``minilm`` (for ``int8:minilm``) or ``st:<model>``."""
    key, model = parse_name(name)
    if key != "int8":
        return name, None
    try:
        require_onnx()
    except EncoderError as e:
        fallback = "minilm" if model == "minilm" else f"st:{model}"
        return fallback, f"{e} Using the float model {fallback!r} instead."
    return name, None


def get_encoder(cfg: EncoderConfig) -> Encoder:
    """Build the encoder named by ``cfg.name`` (nothing is loaded yet)."""
    key, model = parse_name(cfg.name)
    return _REGISTRY[key][1](model, cfg)


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
register_encoder(
    "int8", make_int8,
    "a sentence-transformers model through ONNX Runtime with int8 weights, built on first use "
    "(int8:minilm = bundled; needs the fast extra): about 2x faster on a CPU",
    needs_model=True, takes_model=True,
)
register_encoder(
    "m2v", make_m2v,
    "fast preview: a Model2Vec-style static model distilled from a model on first use (m2v:minilm = bundled)",
    needs_model=True, takes_model=True,
)
