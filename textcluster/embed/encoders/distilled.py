"""``m2v:<model>``: a fast-preview static encoder distilled from a transformer (Model2Vec's recipe).

``m2v:minilm`` distils the bundled all-MiniLM-L6-v2. On first use, offline, and cached in the
workspace (``models/m2v-<hash>/``, see :mod:`~textcluster.embed.encoders.builds`):

1. every token of the model's own tokenizer vocabulary (``[unusedN]`` placeholders left
   out) goes through the model as ``[CLS] token [SEP]``; its vector is the mean of the
   output states (Model2Vec's ``mean`` pooling);
2. PCA to :data:`PCA_DIMS` dimensions;
3. each token vector is weighted by SIF with Zipf-estimated frequencies
   (``sif / (sif + p(rank))``, rank = token id order, :data:`SIF_COEFFICIENT`).

A text's vector is the mean of its tokens' vectors (no special tokens), as Model2Vec's
``StaticModel`` computes it. The ``model2vec`` package's own ``distill`` needs its
``distill`` extra (``skeletoken``), which is not needed here: the same steps take a few
lines of numpy and torch. Encoding runs at tens of thousands of texts per second on a CPU,
at a quality cost (measured in docs/encoders.md): a first look, not the final map.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textcluster.embed.encoders.base import cached_model
from textcluster.embed.encoders.builds import build_key, built_model, default_build_workspace
from textcluster.embed.encoders.static import StaticEncoder
from textcluster.embed.encoders.transformer import bundled_minilm_path
from textcluster.errors import EncoderError
from textcluster.progress import Meter, ProgressFn

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig
    from textcluster.store import Workspace

RECIPE = "m2v-mean-pca256-sif1e-4-v1"
PCA_DIMS = 256
SIF_COEFFICIENT = 1e-4
VECTORS_FILE = "vectors.npy"
_REMOVE = re.compile(r"\[unused\d+\]")
_BATCH = 1024


def distill_static(
    source: Path, out: Path, pca_dims: int = PCA_DIMS, sif: float = SIF_COEFFICIENT,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Distil ``source`` into ``out``: ``vectors.npy`` (vocab, dims) float32 and ``tokenizer/``.

    Rows of removed tokens (special tokens, ``[unusedN]``) are zero. ``progress`` gets
    reports of stage ``build`` counting tokens (ETA from the measured rate). Returns the build info.
    """
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(source), local_files_only=True, dtype=torch.float32).eval()
    vocab = tok.get_vocab()
    size = max(len(tok), max(vocab.values()) + 1)
    special = set(tok.all_special_ids)
    keep = np.array(sorted(i for t, i in vocab.items() if i not in special and not _REMOVE.fullmatch(t)),
                    dtype=np.int64)
    if keep.size < 2:
        raise EncoderError(f"the tokenizer of {str(source)!r} has no usable vocabulary to distil")
    bos = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
    eos = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
    hidden = int(model.config.hidden_size)
    raw = np.zeros((keep.size, hidden), dtype=np.float32)
    meter = Meter("build", int(keep.size), progress)
    meter.update(0, f"distilling {keep.size:,} tokens (first use; cached in the workspace)")
    with torch.inference_mode():
        for s in range(0, keep.size, _BATCH):
            ids = torch.from_numpy(keep[s : s + _BATCH]).unsqueeze(1)
            parts = [*([torch.full_like(ids, bos)] if bos is not None else []), ids,
                     *([torch.full_like(ids, eos)] if eos is not None else [])]
            input_ids = torch.cat(parts, dim=1)
            mask = torch.ones_like(input_ids)
            h = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            raw[s : s + ids.shape[0]] = h.mean(1).float().numpy()
            meter.update(s + ids.shape[0], "distilling the static model (first use)")
    raw = np.nan_to_num(raw)
    dims = min(pca_dims, hidden, keep.size - 1)
    centred = raw - raw.mean(0)
    eigvals, eigvecs = np.linalg.eigh(centred.T.astype(np.float64) @ centred / (keep.size - 1))
    comps = eigvecs[:, ::-1][:, :dims]
    reduced = (centred @ comps).astype(np.float32)
    proba = 1.0 / np.arange(2, keep.size + 2)
    proba /= proba.sum()
    reduced *= (sif / (sif + proba)).astype(np.float32)[:, None]
    vectors = np.zeros((size, dims), dtype=np.float32)
    vectors[keep] = reduced
    np.save(out / VECTORS_FILE, vectors)
    tok.save_pretrained(str(out / "tokenizer"))
    return {"recipe": RECIPE, "source": str(source), "dims": dims, "tokens": int(keep.size),
            "pca_dims": pca_dims, "sif_coefficient": sif}


class DistilledStaticEncoder(StaticEncoder):
    """Mean of distilled token vectors (:func:`distill_static`), built on first use."""

    builds_model = True

    def __init__(self, name: str, model: str | Path, cfg: EncoderConfig) -> None:
        super().__init__(name, model, cfg)
        self.ws_: Workspace | None = None

    def set_workspace(self, ws: Workspace, progress: ProgressFn | None = None) -> None:
        """The workspace whose ``models/`` folder caches the distilled model; ``progress``
        follows a first-use distillation."""
        self.ws_ = ws
        self.progress_ = progress

    def _key(self) -> str:
        return build_key("m2v", super().fingerprint(), RECIPE)

    def fingerprint(self) -> str:
        return self._key().split("-")[-1]

    def model_dir(self) -> Path:
        """The distilled model's folder (distilled now if absent)."""
        return built_model(self.ws_ or default_build_workspace(), self._key(),
                           lambda out: distill_static(self.path, out, progress=getattr(self, "progress_", None)), f"the static model distilled from {self.model!r}")

    def load(self, device: str) -> None:
        folder = self.model_dir()

        def build() -> tuple[Any, Any]:
            import torch
            import transformers

            tok = transformers.AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
            matrix = np.load(folder / VECTORS_FILE, allow_pickle=False)
            return tok, torch.from_numpy(np.ascontiguousarray(matrix))

        self.tokenizer_, self.matrix_ = cached_model(("m2v", str(folder)), build)
        self.device_ = "cpu"  # a table look-up: the CPU is as fast as any GPU here

    def describe(self) -> dict[str, Any]:
        return {"backend": "model2vec-distilled", "model": self.model, "path": str(self.path),
                "recipe": RECIPE, "max_length": self.cfg.max_length}


def make_m2v(model: str, cfg: EncoderConfig) -> DistilledStaticEncoder:
    """Factory of ``m2v:<model>`` (``m2v:minilm`` means the bundled MiniLM)."""
    target: str | Path = bundled_minilm_path() if model == "minilm" else model
    return DistilledStaticEncoder(f"m2v:{model}", target, cfg)
