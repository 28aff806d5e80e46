"""``textcluster vocab``, ``vocab-stats`` and ``pivot``: a model's own word vectors (docs/vocab.md).

- ``vocab [--encoder NAME] [--min-length N] [--keep-subwords] [clusterer options]``: cluster the
  input embedding matrix (cosine) into an ordinary run over a vocabulary corpus.
- ``vocab-stats TERM ... [--run RUN_ID | --encoder NAME] [--top N]``: per term, its nearest
  tokens and the quantiles of its cosine similarity to the vocabulary.
- ``pivot TERM ... [--run RUN_ID | --encoder NAME]``: the term closest to all the others.
"""

from __future__ import annotations

import argparse
from typing import Any

from textcluster.cli import artifact_id, positive_int
from textcluster.cli.cluster import _add_cluster_options, configs_from_args
from textcluster.vocab import (
    DEFAULT_MIN_LENGTH,
    VocabSpec,
    load_vocabulary,
    pivot,
    term_stats,
    vocab_artifacts,
    vocab_run,
)


def _vocab_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vocabulary")
    g.add_argument("--encoder", default="minilm", metavar="NAME",
                   help="whose input word vectors: minilm (bundled, default), st:<model>, hf:<model>, static:<model>")
    g.add_argument("--min-length", type=positive_int, default=DEFAULT_MIN_LENGTH,
                   help=f"leave out tokens shorter than this many characters (default {DEFAULT_MIN_LENGTH})")
    g.add_argument("--keep-subwords", action="store_true",
                   help="keep word pieces that continue a word (##ing); special tokens are always left out")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``vocab``, ``vocab-stats`` and ``pivot``."""
    p = sub.add_parser(
        "vocab", parents=[common], help="cluster a model's vocabulary (its input word vectors)",
        description="Extract the input embedding matrix of a model, leave out special tokens, word pieces and "
        "short tokens (unless asked), and cluster the unit vectors (cosine) with any clusterer. The result is "
        "an ordinary run over a vocabulary corpus (one document per token; metadata token_id).",
    )
    _vocab_options(p)
    _add_cluster_options(p)
    # UMAP would compile for a minute and map 30k tokens slowly: plain vectors, PCA plot by default.
    p.set_defaults(handler=handle_vocab, reducer="none", projection="pca")

    for name, helptext, handler in (
        ("vocab-stats", "per term: nearest tokens and quantiles of its cosine similarity to the vocabulary",
         handle_stats),
        ("pivot", "the pivot of a set of terms: the one closest to all the others", handle_pivot),
    ):
        p = sub.add_parser(name, parents=[common], help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("terms", nargs="+", metavar="TERM", help="words (quote a term of several words)")
        p.add_argument("--run", type=artifact_id("run"), default=None, metavar="RUN_ID",
                       help="a vocabulary run (textcluster vocab) whose vocabulary to use")
        _vocab_options(p)
        if name == "vocab-stats":
            p.add_argument("--top", type=positive_int, default=10, help="nearest tokens listed per term (default 10)")
        p.set_defaults(handler=handler)


def handle_vocab(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Cluster the vocabulary; returns (JSON data, human text)."""
    reducer, clusterer = configs_from_args(args)
    spec = VocabSpec(encoder=args.encoder, min_length=args.min_length, keep_subwords=args.keep_subwords)
    res = vocab_run(ws, spec, reducer, clusterer, progress=ui.progress())
    data = res.to_dict()
    text = (f"vocabulary of {res.encoder}: {res.kept:,} of {res.vocab_size:,} tokens kept "
            f"(corpus {res.corpus_id}, embedding {res.embedding_id})\n"
            f"run {res.run_id}{' (cached)' if res.cached else ''}: {res.k} clusters, noise {res.noise:.1%}")
    return data, text


def _vocabulary(args: argparse.Namespace, ws: Any) -> Any:
    if args.run is not None:
        return load_vocabulary(ws, ws.manifest(args.run).embedding_id)
    spec = VocabSpec(encoder=args.encoder, min_length=args.min_length, keep_subwords=args.keep_subwords)
    return load_vocabulary(ws, vocab_artifacts(ws, spec).embedding_id)


def handle_stats(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Nearest tokens and similarity quantiles per term."""
    vocab = _vocabulary(args, ws)
    rows = term_stats(vocab, args.terms, top=args.top)
    lines = []
    for r in rows:
        q = r["quantiles"]
        lines.append(f"{r['term']}{'' if r['in_vocabulary'] else ' (not a token: mean of its pieces)'}")
        lines.append("  nearest: " + ", ".join(f"{x['token']} {x['similarity']:.3f}" for x in r["nearest"]))
        lines.append("  cosine to the vocabulary: " + " ".join(f"{k}={v:.3f}" for k, v in q.items())
                     + f" mean={r['mean']:.3f}")
    return {"embedding_id": vocab.embedding_id, "terms": rows}, "\n".join(lines)


def handle_pivot(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """The pivot term of a set."""
    vocab = _vocabulary(args, ws)
    res = pivot(vocab, args.terms)
    text = f"pivot: {res['pivot']}\n" + "\n".join(
        f"  {s['term']}: mean cosine to the others {s['mean_similarity']:.3f}" for s in res["scores"])
    return {"embedding_id": vocab.embedding_id, **res}, text
