"""``textcluster embed CORPUS_ID --encoder NAME``: embed a corpus (cached, resumable).

``--json`` prints ``embedding_id``, ``n``, ``dim``, ``seconds``, ``cached``,
``truncated``, ``device``, ``encoder`` and ``path``. ``--list-encoders`` lists
the registry instead.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from textcluster.cli import artifact_id
from textcluster.cli.engine_args import add_engine_options, engine_from_args
from textcluster.config import EncoderConfig
from textcluster.embed.encoders import available_encoders
from textcluster.errors import ConfigError
from textcluster.pipeline import embed_corpus


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``embed`` subcommand to ``sub``."""
    d = EncoderConfig()
    p = sub.add_parser(
        "embed",
        parents=[common],
        help="turn a corpus into vectors with an encoder (cached; a killed job resumes)",
        description="Embed every text of a corpus. The result is cached by corpus, encoder settings "
        "and model fingerprint; a killed job resumes from its last finished chunk.",
    )
    p.add_argument("corpus_id", metavar="CORPUS_ID", nargs="?", type=artifact_id("corpus"), help="id of an ingested corpus (cor-...)")
    p.add_argument("--encoder", default=d.name, metavar="NAME",
                   help="minilm (default), tfidf, st:<model>, hf:<model>, static:<model>, int8:minilm (ONNX int8), "
                        "m2v:minilm (fast preview); see --list-encoders")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"texts per batch of average length (default {d.batch_size}); short texts go in larger batches")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=d.device,
                   help="auto: cuda, then mps, then cpu")
    p.add_argument("--pooling", choices=["mean", "cls", "last-token"], default=None,
                   help="hf: models only (default: last-token for decoder LLMs, else mean)")
    p.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's own, at most 512 for hf:)")
    p.add_argument("--instruction", default="", help="prefix put before every text (instruction-tuned models)")
    p.add_argument("--dims", type=int, default=None,
                   help="tfidf: SVD dimensions (default 256); neural encoders: keep the first N dimensions")
    p.add_argument("--dtype", choices=["float32", "float16"], default=d.dtype, help="storage dtype of the matrix")
    p.add_argument("--no-normalize", action="store_true", help="keep raw vectors (default: L2-normalised)")
    p.add_argument("--chunk-rows", type=int, default=d.chunk_rows, help="rows per checkpointed chunk")
    p.add_argument("--list-encoders", action="store_true", help="list the encoders and exit")
    add_engine_options(p, "the encoding")
    p.set_defaults(handler=handle)


def config_from_args(args: argparse.Namespace) -> EncoderConfig:
    """The :class:`EncoderConfig` the command line asks for (validated)."""
    return EncoderConfig(
        name=args.encoder,
        pooling=args.pooling,
        max_length=args.max_length,
        instruction=args.instruction,
        normalize=not args.no_normalize,
        dims=args.dims,
        dtype=args.dtype,
        batch_size=args.batch_size,
        device=args.device,
        chunk_rows=args.chunk_rows,
    ).validate()


def handle(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Run the embed stage; returns (JSON data, human text)."""

    if args.list_encoders:
        infos = available_encoders()
        data = {"encoders": [asdict(i) for i in infos]}
        width = max(len(i.name) for i in infos)
        return data, "\n".join(f"{i.name:<{width}}  {i.help}" for i in infos)
    if not args.corpus_id:
        raise ConfigError("CORPUS_ID is missing; run `textcluster ingest FILE` first, or pass --list-encoders")

    cfg = config_from_args(args)
    res = embed_corpus(ws, args.corpus_id, cfg, engine_from_args(args), progress=ui.progress())
    data = res.to_dict()
    how = "cached" if res.cached else f"computed on {res.device} in {res.seconds:.1f} s"
    text = (
        f"{res.embedding_id}: {res.n} x {res.dim} ({res.encoder}, {how})"
        + (f"; {res.truncated} texts truncated" if res.truncated else "")
    )
    return data, text
