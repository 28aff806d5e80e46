"""``int8:<model>``: a sentence-transformers model run by ONNX Runtime with int8 weights.

``int8:minilm`` is the bundled all-MiniLM-L6-v2. On first use the model is built offline
from the model's own files (no hub download) and cached in the workspace
(``models/onnx-int8-<hash>/``, see :mod:`~textcluster.embed.encoders.builds`):

1. the transformer is loaded with ``transformers`` (float32) and wrapped with the pooling of
   the sentence-transformers model (its ``modules.json`` and ``1_Pooling/config.json``: mean or
   CLS token), then exported with ``torch.onnx.export`` (dynamic batch and sequence axes);
2. the float ONNX graph is run on probe texts and compared with torch: a difference above
   :data:`EXPORT_TOLERANCE` fails the build (a broken export never gets quantised);
3. ONNX Runtime's transformer optimiser fuses LayerNorm and GELU (``opt_level=1``), the fused
   graph is checked against torch the same way, then
   ``onnxruntime.quantization.quantize_dynamic`` writes int8 weights (per channel) of the
   weight MatMuls; activations are quantised on the fly, one scale per tensor. Recipe v3
   (:data:`RECIPE`) keeps in float what costs the most fidelity for the least time: the
   embedding tables (a lookup: int8 saves memory, not time) and the second MatMul of each
   feed-forward block, whose input (the GELU output, long-tailed) loses the most to a
   per-tensor uint8 scale. On the mixed benchmark set this halves the cosine error against
   float (mean 0.9930 -> 0.9965) for about a tenth of the speed (docs/benchmarks.md). (The
   fusion is worth about 10 % over quantising the plain export.)

The ``Normalize`` module, when the model has one, is applied to the pooled vectors, so the
vectors are those of ``SentenceTransformer.encode`` up to the quantisation error (measured in
docs/encoders.md). Needs the ``fast`` extra (onnxruntime, onnx, onnxscript).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textcluster.embed.devices import available_cores
from textcluster.embed.encoders.base import cached_model
from textcluster.embed.encoders.builds import build_key, built_model, default_build_workspace
from textcluster.embed.encoders.transformer import (
    DEFAULT_MAX_LENGTH,
    _TorchEncoder,
    bundled_minilm_path,
    st_pooling,
)
from textcluster.errors import EncoderError
from textcluster.progress import Progress, ProgressFn

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig
    from textcluster.store import Workspace

logger = logging.getLogger(__name__)

#: Bumped when the export recipe changes: a new recipe is a new model (and a new embedding id).
RECIPE = "onnx-int8-v3"
#: Largest absolute difference allowed between the float ONNX export and torch on the probes.
EXPORT_TOLERANCE = 1e-4
FLOAT_FILE = "model-float.onnx"
INT8_FILE = "model-int8.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FAST_EXTRA = "pip install 'textcluster[fast]' (onnxruntime, onnx, onnxscript)"
_PROBES = [
    "How do I sort a list of dictionaries by a value in Python?",
    "ok",
    "The quick brown fox jumps over the lazy dog, then runs back into the forest to hide from the hunters.",
    "Préférences d'affichage: 日本語のテキスト and emoji 🎉",
]


def require_onnx() -> None:
    """:class:`EncoderError` naming the extra to install when ONNX Runtime or the exporter is missing."""
    missing = []
    for mod in ("onnxruntime", "onnx", "onnxscript"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise EncoderError(
            f"the int8 encoder needs {', '.join(missing)}, which is not installed: {FAST_EXTRA}; "
            "or use the float encoder 'minilm'"
        )


def _wrapper(model: Any, pooling: str) -> Any:
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.model(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
            if pooling == "cls":
                return h[:, 0]
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    return Pooled().eval()


def _feeds(tok: Any, texts: Sequence[str], max_length: int, names: Sequence[str]) -> dict[str, np.ndarray]:
    enc = tok(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    feeds = {}
    for name in names:
        arr = enc.get(name)
        if arr is None:  # models without token types (e.g. RoBERTa-style): zeros
            arr = np.zeros_like(enc["input_ids"])
        feeds[name] = np.ascontiguousarray(arr, dtype=np.int64)
    return feeds


def float_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls recipe v3 keeps in float: those fed by a GELU (the second MatMul
    of each feed-forward block). Found by walking the graph: a MatMul whose first input is
    produced by a ``Gelu``/``BiasGelu``/``FastGelu`` node (fused or not)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    gelu = {"Gelu", "BiasGelu", "FastGelu", "QuickGelu"}
    return [n.name for n in graph.node if n.op_type == "MatMul" and producer.get(n.input[0]) in gelu]


def build_onnx_int8(source: Path, out: Path) -> dict[str, Any]:
    """Export ``source`` (a sentence-transformers or transformers folder) to ``out``: the float
    ONNX file, checked against torch, then its int8 quantisation. Returns the build info
    (pooling, normalise, max length, the float export's largest difference)."""
    require_onnx()
    import onnxruntime as ort
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pooling, normalize, max_len = st_pooling(source)
    tok = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(source), local_files_only=True, dtype=torch.float32)
    model.eval()
    max_length = int(max_len or min(getattr(tok, "model_max_length", DEFAULT_MAX_LENGTH) or DEFAULT_MAX_LENGTH,
                                    DEFAULT_MAX_LENGTH))
    wrapped = _wrapper(model, pooling)
    sample = _feeds(tok, _PROBES[:2], max_length, INPUTS)
    args = tuple(torch.from_numpy(sample[k]) for k in INPUTS)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    float_path = out / FLOAT_FILE
    torch.onnx.export(
        wrapped, args, str(float_path), input_names=list(INPUTS), output_names=["sentence_embedding"],
        dynamic_shapes={k: {0: batch, 1: seq} for k in INPUTS}, dynamo=True, external_data=False,
        opset_version=18, verbose=False,
    )
    probes = _feeds(tok, _PROBES, max_length, INPUTS)
    with torch.inference_mode():
        want = wrapped(*(torch.from_numpy(probes[k]) for k in INPUTS)).numpy()

    def check(path: Path, what: str) -> float:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        diff = float(np.max(np.abs(session.run(None, probes)[0] - want)))
        if not diff <= EXPORT_TOLERANCE:
            raise EncoderError(
                f"the {what} of {str(source)!r} differs from torch by {diff:.2e} (> {EXPORT_TOLERANCE:g}); "
                "not quantised: use the float encoder"
            )
        return diff

    diff = check(float_path, "ONNX export")
    fused_path = out / "model-fused.onnx"
    from onnxruntime.transformers.optimizer import optimize_model

    cfg = model.config
    fused = optimize_model(str(float_path), model_type="bert", opt_level=1,
                           num_heads=int(getattr(cfg, "num_attention_heads", 0) or 0),
                           hidden_size=int(getattr(cfg, "hidden_size", 0) or 0))
    fused.save_model_to_file(str(fused_path))
    diff = max(diff, check(fused_path, "fused ONNX graph"))
    kept = float_matmuls(fused_path)
    quantize_dynamic(str(fused_path), str(out / INT8_FILE), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=kept,
                     extra_options={"DefaultTensorType": 1})  # 1 = float: the fused ops' outputs
    fused_path.unlink()
    float_path.unlink()  # checked above; only the int8 file is used (a quarter of the size)
    tok.save_pretrained(str(out / "tokenizer"))
    return {"recipe": RECIPE, "source": str(source), "pooling": pooling, "normalize": normalize,
            "max_length": max_length, "export_max_abs_diff": diff, "dim": int(want.shape[1]),
            "float_matmuls": len(kept)}


class OnnxInt8Encoder(_TorchEncoder):
    """A sentence-transformers model through ONNX Runtime with int8 weights (built on first use)."""

    builds_model = True

    def __init__(self, name: str, model: str | Path, cfg: EncoderConfig) -> None:
        super().__init__(name, model, cfg)
        self.ws_: Workspace | None = None

    def set_workspace(self, ws: Workspace, progress: ProgressFn | None = None) -> None:
        """The workspace whose ``models/`` folder caches the built model; ``progress`` is told
        when a first-use build starts (one export call: no finer progress)."""
        self.ws_ = ws
        self.progress_ = progress

    def fingerprint(self) -> str:
        # the source model's files and the recipe: known before (and without) building
        return build_key("onnx-int8", super().fingerprint(), RECIPE).split("-")[-1]

    def model_dir(self) -> Path:
        """The built model's folder (built now if absent)."""
        require_onnx()
        ws = self.ws_ or default_build_workspace()
        key = build_key("onnx-int8", super().fingerprint(), RECIPE)
        progress = getattr(self, "progress_", None)
        if progress is not None and not (ws.root / "models" / key / "build.json").is_file():
            progress(Progress("build", 0, 1, message="building the int8 ONNX model (first use, about 20-60 s; "
                                                     "cached in the workspace)"))
        return built_model(ws, key, lambda out: build_onnx_int8(self.path, out),
                           f"the int8 ONNX model of {self.model!r}")

    def load(self, device: str) -> None:
        folder = self.model_dir()

        def build() -> tuple[Any, Any, dict[str, Any]]:
            import onnxruntime as ort
            import transformers

            info = json.loads((folder / "build.json").read_text(encoding="utf-8"))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = available_cores()
            opts.inter_op_num_threads = 1
            session = ort.InferenceSession(str(folder / INT8_FILE), opts, providers=["CPUExecutionProvider"])
            tok = transformers.AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
            return session, tok, info

        # ONNX Runtime runs on the CPU here whatever the device: int8 is a CPU format.
        self.session_, self.tokenizer_, self.info_ = cached_model(("onnx-int8", str(folder)), build)
        self.input_names_ = [i.name for i in self.session_.get_inputs()]
        limit = int(self.info_["max_length"])
        self.max_length_ = min(self.cfg.max_length or limit, limit)
        self.device_ = "cpu"

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        self._check_loaded()
        feeds = _feeds(self.tokenizer_, texts, self.max_length_, self.input_names_)
        out = np.asarray(self.session_.run(None, feeds)[0], dtype=np.float32)
        if self.info_.get("normalize"):
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    @property
    def dim(self) -> int:
        self._check_loaded()
        return int(self.info_["dim"])

    def describe(self) -> dict[str, Any]:
        info = getattr(self, "info_", {})
        return {"backend": "onnxruntime-int8", "model": self.model, "path": str(self.path),
                "max_length": getattr(self, "max_length_", None), "pooling": info.get("pooling"),
                "export_max_abs_diff": info.get("export_max_abs_diff"), "recipe": RECIPE}


def make_int8(model: str, cfg: EncoderConfig) -> OnnxInt8Encoder:
    """Factory of ``int8:<model>`` (``int8:minilm`` means the bundled MiniLM)."""
    target: str | Path = bundled_minilm_path() if model == "minilm" else model
    return OnnxInt8Encoder(f"int8:{model}", target, cfg)
