"""``textcluster cluster``, ``textcluster run`` and ``textcluster assign``.

- ``cluster EMBEDDING_ID [options]``: cluster an embedding into a run (cached).
- ``run FILE --text-field F [--label-field L] [--encoder NAME] [options]``: ingest, embed
  and cluster in one process (UMAP compiles at most once).
- ``assign RUN_ID FILE [--text-field F]``: label new texts with a saved run, no refit.

``--json`` for ``cluster`` / ``run`` prints ``run_id``, ``n``, ``k`` (clusters found),
``noise`` (share), ``metrics`` and ``timings`` (seconds per step), plus ids and notes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from textcluster.cli import artifact_id
from textcluster.cli.engine_args import add_engine_options, engine_from_args
from textcluster.cluster.autok import parse_k_range
from textcluster.cluster.outliers import NOISE_HINT
from textcluster.cluster.registry import CLUSTERERS
from textcluster.cluster.runs import cluster, validate_run
from textcluster.cluster.versions import run_names
from textcluster.config import (
    RECIPES,
    REDUCERS,
    ClustererConfig,
    CorpusSpec,
    EncoderConfig,
    ReducerConfig,
    recipe,
)
from textcluster.errors import ConfigError
from textcluster.ingest.corpus import ingest, load_docs
from textcluster.pipeline import assign_texts, run_pipeline
from textcluster.store import atomic_path, check_output_path


def k_value(text: str) -> int | str:
    """An argparse ``type=`` for ``--k``: ``auto`` or a whole number of at least 1."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} should be 'auto' or a whole number of at least 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} should be 'auto' or a whole number of at least 1")
    return value


def k_range_value(text: str) -> tuple[int, int]:
    """An argparse ``type=`` for ``--k-range MIN:MAX`` (2 <= MIN <= MAX)."""
    try:
        return parse_k_range(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def outlier_share(text: str) -> float:
    """An argparse ``type=`` for ``--outliers Q``: a share in (0, 0.5]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; --outliers takes a share in (0, 0.5]") from None
    if not (0.0 < value <= 0.5):
        raise argparse.ArgumentTypeError(f"{text!r} should be a share in (0, 0.5], e.g. 0.05")
    return value


def stability_seeds(text: str) -> int:
    """An argparse ``type=`` for ``--stability N``: a whole number of seeds, at least 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seeds") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r} should be at least 2 seeds to compare (N >= 2)")
    return value


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    r, c = ReducerConfig(), ClustererConfig()

    g = p.add_argument_group("reducer and clusterer")
    g.add_argument("--recipe", choices=RECIPES, default=None,
                   help="a named setting that replaces --reducer/--dims/--runs/--method and sets n_init: "
                        "quality = UMAP ensemble (5 x 5-d) + k-means n_init=10, the most accurate general "
                        "setting on the labelled benchmarks (docs/clustering.md); --k, --seed, --fit-size, "
                        "--projection still apply")
    g.add_argument("--reducer", choices=REDUCERS, default=r.method, help=f"dimension reduction before clustering (default {r.method})")
    g.add_argument("--dims", type=int, default=r.dims, help=f"output dimensions of pca/umap (default {r.dims})")
    g.add_argument("--n-neighbors", type=int, default=r.n_neighbors, help=f"UMAP neighbours (default {r.n_neighbors})")
    g.add_argument("--min-dist", type=float, default=r.min_dist, help=f"UMAP min_dist (default {r.min_dist})")
    g.add_argument("--metric", default=r.metric, help=f"UMAP metric (default {r.metric})")
    g.add_argument("--runs", type=int, default=r.runs,
                   help="UMAP ensemble: fit this many UMAPs (distinct seeds) and concatenate them "
                        f"(default {r.runs}; 5 with --param n_init=10 is the quality recipe of docs/clustering.md)")
    g.add_argument("--smooth-neighbors", type=int, default=r.smooth_neighbors,
                   help=f"neighbours averaged by --reducer smooth (default {r.smooth_neighbors})")
    g.add_argument("--projection", choices=["auto", "umap", "pca"], default=r.projection,
                   help="2-D plot coordinates: auto = UMAP up to 200k rows, PCA above (plots only)")
    g.add_argument("--method", choices=list(CLUSTERERS), default=c.method,
                   help="; ".join(f"{name}: {info.help}" for name, info in CLUSTERERS.items()))
    g.add_argument("--k", type=k_value, default=c.k,
                   help="number of clusters for methods that take one, or auto: chosen without labels by a "
                        "k-means sweep scored by silhouette on a 5,000-row subset of the embedding "
                        f"(default {c.k}; docs/clustering.md)")
    g.add_argument("--k-range", type=k_range_value, default=None, metavar="MIN:MAX",
                   help="with --k auto: the range of k searched (default 2:min(200, rows/10))")
    g.add_argument("--outliers", type=outlier_share, default=None, metavar="Q",
                   help="mark the farthest share Q of each cluster (by distance to its centre, as a quantile "
                        "within the cluster) as noise; Q in (0, 0.5] (default: none)")
    g.add_argument("--stability", type=stability_seeds, default=None, metavar="N",
                   help="rerun the clusterer with N seeds (N >= 2) on the same reduction and store each "
                        "cluster's best-match Jaccard (default: not measured)")
    g.add_argument("--min-cluster-size", type=int, default=c.min_cluster_size, help=f"hdbscan (default {c.min_cluster_size})")
    g.add_argument("--min-samples", type=int, default=None, help="hdbscan / dbscan density (default: the method's)")
    g.add_argument("--eps", type=float, default=c.eps, help=f"dbscan radius (default {c.eps})")
    g.add_argument("--fit-size", type=int, default=None,
                   help="fit on this many seeded rows and assign the rest in chunks (default: all rows)")
    g.add_argument("--noise", choices=["keep", "assign"], default=c.noise,
                   help="keep noise as -1, or assign it to the nearest cluster (default keep)")
    g.add_argument("--seed", type=int, default=c.seed, help=f"seed of every random step (default {c.seed})")
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, JSON value (e.g. n_init=3, covariance_type=\"full\"); repeatable. "
                        "Settings per method: " + "; ".join(
                            f"{name}: {', '.join(info.params) or 'none'}" for name, info in CLUSTERERS.items()))


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} should look like KEY=VALUE")
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def configs_from_args(args: argparse.Namespace) -> tuple[ReducerConfig, ClustererConfig]:
    """The reducer and clusterer configs the command line asks for, validated against the
    clusterer registry (an unknown ``--param`` key, a wrong type or an out-of-range value is
    a :class:`~textcluster.errors.ConfigError` naming it)."""
    if getattr(args, "recipe", None):
        reducer, clusterer = recipe(
            args.recipe, args.k, seed=args.seed, fit_size=args.fit_size, projection=args.projection
        )
        extra = _params(args.param)
        if extra:  # --param still adds or overrides method settings (e.g. n_init=3)
            clusterer = ClustererConfig(**{**clusterer.to_dict(), "params": {**clusterer.params, **extra}})
        clusterer = ClustererConfig(**{**clusterer.to_dict(), "k_range": args.k_range,
                                       "outliers": args.outliers, "stability": args.stability})
    else:
        reducer = ReducerConfig(
            method=args.reducer, dims=args.dims, n_neighbors=args.n_neighbors, min_dist=args.min_dist,
            metric=args.metric, projection=args.projection, smooth_neighbors=args.smooth_neighbors,
            runs=args.runs,
        )
        clusterer = ClustererConfig(
            method=args.method, k=args.k, min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
            eps=args.eps, fit_size=args.fit_size, noise=args.noise, seed=args.seed, params=_params(args.param),
            k_range=args.k_range, outliers=args.outliers, stability=args.stability,
        )
    validate_run(reducer, clusterer)
    return reducer, clusterer


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``cluster``, ``run`` and ``assign`` subcommands to ``sub``."""
    p = sub.add_parser(
        "cluster", parents=[common], help="cluster an embedding into a run (cached)",
        description="Reduce (optional) and cluster an embedding; writes a run artifact with labels, "
        "centres, distances, a 2-D projection and metrics. The same settings are a cache hit.",
    )
    p.add_argument("embedding_id", metavar="EMBEDDING_ID", type=artifact_id("embedding"), help="id of an embedding (emb-...)")
    _add_cluster_options(p)
    p.set_defaults(handler=handle_cluster)

    p = sub.add_parser(
        "run", parents=[common], help="ingest, embed and cluster a file in one go",
        description="Ingest FILE, embed it and cluster it, in one process; each stage is cached.",
    )
    p.add_argument("file", metavar="FILE", help="input file (.csv .tsv .jsonl .json .parquet .txt, optionally .gz)")
    p.add_argument("--text-field", action="append", default=[], metavar="F",
                   help="column or nested path holding the text; repeat to join several (default: the likeliest)")
    p.add_argument("--label-field", metavar="F", help="column holding a class label (scores the run; never fits)")
    p.add_argument("--id-field", metavar="F", help="column holding a document id")
    p.add_argument("--encoder", default="minilm", metavar="NAME", help="minilm (default), tfidf, int8:minilm (ONNX int8), m2v:minilm (fast preview), st:<model>, hf:<model>, ...")
    p.add_argument("--encoder-dims", type=int, default=None, help="tfidf: SVD dimensions")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="device for the encoder")
    _add_cluster_options(p)
    add_engine_options(p, "the embedding stage")
    p.set_defaults(handler=handle_run)

    p = sub.add_parser(
        "assign", parents=[common], help="label new texts with a saved run (no refit)",
        description="Read FILE with the corpus readers, embed its texts with the run's encoder, map them "
        "through the run's reducer and give each the run's cluster. Prints or writes labels per row.",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"), help="id of a run (run-...)")
    p.add_argument("file", metavar="FILE", help="file of new texts")
    p.add_argument("--text-field", action="append", default=[], metavar="F", help="column holding the text")
    p.add_argument("--output", type=Path, default=None, help="write row,cluster,distance as CSV/Parquet here")
    add_engine_options(p, "the encoding and labelling")
    p.set_defaults(handler=handle_assign)


def _summary(data: dict[str, Any]) -> str:
    m = data.get("metrics", {})
    shown = ", ".join(f"{k}={v:.3f}" for k, v in m.items() if isinstance(v, float) and k in (
        "acc", "nmi", "ari", "silhouette", "davies_bouldin"))
    t = data.get("timings", {})
    lines = [
        f"run {data['run_id']}{' (cached)' if data.get('cached') is True else ''}: "
        f"{data['n']:,} rows, noise {data['noise']:.1%}, {data['k']} clusters",
        noise_hint(data["noise"]),
        _auto_k_line(data.get("auto_k")),
        f"metrics: {shown}" if shown else "",
        f"seconds: {t.get('total', 0.0):.2f}" if t else "",
    ]
    lines += [f"note: {n}" for n in data.get("notes", [])]
    return "\n".join(x for x in lines if x)


def noise_hint(noise: float) -> str:
    """A hint when more than 30 % of the rows are noise (empty otherwise)."""
    if noise <= NOISE_HINT:
        return ""
    return (f"hint: {noise:.0%} of the rows are noise (above {NOISE_HINT:.0%}): try --noise assign, a larger "
            "--min-cluster-size with a UMAP reducer, or k-means (--method kmeans --k auto)")


def _auto_k_line(auto: dict[str, Any] | None) -> str:
    if not auto:
        return ""
    best = max((s for s in auto["scores"] if s is not None), default=float("nan"))
    return (f"k chosen automatically: {auto['chosen']} ({auto['method']} {best:.3f}, best of "
            f"{len(auto['candidates'])} candidates k={auto['candidates'][0]}..{auto['candidates'][-1]})")


def handle_cluster(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Run the cluster stage; returns (JSON data, human text)."""

    reducer, clusterer = configs_from_args(args)
    res = cluster(ws, args.embedding_id, reducer, clusterer, progress=ui.progress())
    data = res.to_dict()
    return data, _summary(data)


def handle_run(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Ingest, embed and cluster FILE; returns (JSON data, human text)."""

    reducer, clusterer = configs_from_args(args)
    spec = CorpusSpec(text_fields=tuple(args.text_field), label_field=args.label_field, id_field=args.id_field)
    encoder = EncoderConfig(name=args.encoder, dims=args.encoder_dims, device=args.device).validate()
    res = run_pipeline(args.file, spec, encoder, reducer, clusterer, ws, progress=ui.progress(),
                       engine_cfg=engine_from_args(args))
    data = res.to_dict()
    return data, f"corpus {res.corpus_id}, embedding {res.embedding_id}\n" + _summary(data)


def handle_assign(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    """Label the texts of FILE with a saved run; returns (JSON data, human text)."""
    import pandas as pd  # lazily: importing pandas takes ~0.8 s, paid by the CLI's start otherwise


    ws.manifest(args.run_id)  # a clear error for an unknown run before reading the file
    engine_cfg = engine_from_args(args)
    out = None if args.output is None else check_output_path(ws, args.output, "--output")  # before any write
    rep = ingest(args.file, CorpusSpec(text_fields=tuple(args.text_field)), ws, progress=ui.progress())
    docs = load_docs(ws, rep.corpus_id, columns=["row", "text"])
    res = assign_texts(ws, args.run_id, docs["text"].tolist(), engine_cfg, progress=ui.progress())
    table = pd.DataFrame({"row": docs["row"].to_numpy(), "cluster": res.labels, "distance": res.distances})
    names = run_names(ws, args.run_id)  # an edited version's names; none for a plain run
    if names:
        table["cluster_name"] = [names.get(int(c)) for c in res.labels]
    data: dict[str, Any] = {
        "run_id": args.run_id,
        "corpus_id": rep.corpus_id,
        "n": int(len(table)),
        "rejected": int(rep.rejected),
        "mode": res.mode,
        "seconds": res.seconds,
    }
    if out is not None:
        with atomic_path(out) as tmp:  # a failed write leaves no half file at --output
            if out.suffix.lower() == ".parquet":
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
        data["output"] = str(out)
        text = f"{len(table):,} rows labelled with {args.run_id} -> {out}"
    else:
        data["labels"] = [{"row": int(r), "cluster": int(c), **({"cluster_name": names.get(int(c))} if names else {})}
                          for r, c in zip(table["row"], table["cluster"], strict=True)]
        cols = ["row", "cluster", "cluster_name"] if names else ["row", "cluster"]
        text = table[cols].to_csv(index=False, lineterminator="\n")
    return data, text
