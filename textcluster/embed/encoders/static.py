"""``static:<model>``: the mean of a model's input token vectors.

Only the tokenizer and the word-piece embedding matrix are read (straight from
the safetensors file when there is one), so loading takes a second and
encoding runs at tens of thousands of texts per second on a CPU. The vectors
ignore context and word order: a fast, rough baseline.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textcluster.embed.encoders.base import cached_model
from textcluster.embed.encoders.transformer import _TorchEncoder, bundled_minilm_path
from textcluster.errors import EncoderError

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig

#: Tensor names (suffixes) of the input embedding matrix in common architectures.
_EMBEDDING_KEYS = (
    "word_embeddings.weight", "embed_tokens.weight", "wte.weight", "shared.weight",
    "tok_embeddings.weight", "embeddings.weight",
)


def _read_embedding_matrix(path: Path) -> np.ndarray:
    """The input embedding matrix (vocab, dim) as float32, without building the model."""
    files = sorted(path.rglob("*.safetensors"))
    if files:
        from safetensors import safe_open

        for f in files:
            with safe_open(str(f), framework="pt") as st:
                for suffix in _EMBEDDING_KEYS:
                    for key in st.keys():  # noqa: SIM118  (safe_open is not a dict)
                        if key.endswith(suffix) and "position" not in key:
                            return st.get_tensor(key).float().numpy()
    import transformers

    model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    return model.get_input_embeddings().weight.detach().float().numpy()


class StaticEncoder(_TorchEncoder):
    """Mean of the input token vectors of ``model`` (special tokens left out)."""

    def load(self, device: str) -> None:
        def build() -> tuple[Any, Any]:
            import torch
            import transformers

            try:
                tok = transformers.AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                matrix = _read_embedding_matrix(self.path)
            except Exception as e:  # noqa: BLE001
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise EncoderError(
                    f"cannot load the token embeddings of {str(self.path)!r}: {type(e).__name__}: {first}"
                ) from e
            return tok, torch.from_numpy(np.ascontiguousarray(matrix)).to(device)

        # The matrix is small and the op is memory-bound: CPU is as good as any GPU here.
        self.tokenizer_, self.matrix_ = cached_model(("static", str(self.path), device), build)
        self.device_ = device

    def max_tokens(self) -> int | None:
        return self.cfg.max_length

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.cfg.max_length is None:
            return None
        ids = self.tokenizer_(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if self.device_ is None:
            raise EncoderError(f"encoder {self.name!r} is not loaded; call load(device) first")
        limit = self.cfg.max_length
        ids = self.tokenizer_(
            list(texts), add_special_tokens=False, truncation=limit is not None,
            max_length=limit, verbose=False,
        )["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        with torch.inference_mode():
            out = torch.nn.functional.embedding_bag(
                torch.from_numpy(flat).to(self.device_), self.matrix_,
                torch.from_numpy(offsets).to(self.device_), mode="mean",
            )
        return out.float().cpu().numpy()  # empty texts give zero vectors

    @property
    def dim(self) -> int:
        return int(self.matrix_.shape[1])

    def describe(self) -> dict[str, Any]:
        return {"backend": "static", "model": self.model, "path": str(self.path),
                "max_length": self.cfg.max_length}


def make_static(model: str, cfg: EncoderConfig) -> StaticEncoder:
    """Factory of ``static:<model>`` (``static:minilm`` means the bundled MiniLM)."""
    target: str | Path = bundled_minilm_path() if model == "minilm" else model
    return StaticEncoder(f"static:{model}", target, cfg)
