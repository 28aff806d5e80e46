"""Automatic k on the labelled sets: chosen k against true k, and what each costs in ACC / NMI.

    .venv/bin/python bench/autok.py [--sets stackoverflow,...] [--seeds 3] [--workspace DIR]
    .venv/bin/python bench/autok.py --report        # print the table from the saved results

Reads ``../shared/datasets`` relative to the repository root (``--data`` to point elsewhere;
users who clone the project do not have that folder). Each set is embedded with the default
encoder through :func:`bench.quality.embedding_of` (cached in the workspace, default
``bench/.workspace``). Then, labels only to score:

1. :func:`textcluster.cluster.autok.choose_k` on the embedding (the product's automatic k,
   its default settings, seed ``--sweep-seed``, default 0), timed: the sweep's cost;
2. k-means (the project's, default settings) on all rows with the chosen k and with the
   true k, ``--seeds`` seeds each: ACC (Hungarian; with k != true k unmatched clusters count
   as errors) and NMI, as percentages.

Results are appended to ``bench/results/autok.jsonl`` (one line per set and sweep seed); a
rerun skips those already there. The report's main columns are sweep seed 0; rows of other sweep
seeds are listed beside them, to show how stable the choice is. Set OMP_NUM_THREADS (default 1 here: a shared 2-core machine).

``--baseline-k K`` instead scores k-means with the fixed K (the old default, 20) on each set,
into ``bench/results/autok_baseline.jsonl``; the report shows it as a column when present.

``--sweep SET`` instead times :func:`~textcluster.cluster.autok.choose_k` alone on that set's
embedding (``--sweep-seed``; after a warm-up) and prints one JSON line.

``--cost SET`` instead measures, in one process on that set's embedding, the cluster stage
(:func:`textcluster.cluster.runs.cluster`, no reducer, PCA plot) with ``k="auto"`` against a
fixed k (the sweep's share of a run) and with ``stability=5`` against without (the cost of
the reruns), and prints the seconds and ratios.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SHORT = ["agnews8000", "searchsnippets", "stackoverflow", "biomedical", "googlenews_ts", "googlenews_t",
         "googlenews_s", "tweet89"]
SETS = SHORT + ["banking77"]


def _kmeans_scores(X: np.ndarray, y: np.ndarray, k: int, seeds: int) -> tuple[list[float], list[float]]:
    from sklearn.metrics import normalized_mutual_info_score

    from textcluster.cluster.evaluate import cluster_accuracy
    from textcluster.cluster.kmeans import KMeansClusterer

    accs, nmis = [], []
    for s in range(seeds):
        lab = KMeansClusterer(k, seed=s).fit(X).labels_
        accs.append(cluster_accuracy(y, lab))
        nmis.append(float(normalized_mutual_info_score(y, lab)))
    return accs, nmis


def bench(args: argparse.Namespace) -> None:
    import quality

    from textcluster.cluster.autok import choose_k
    from textcluster.embed.engine import load_embeddings
    from textcluster.store import Workspace

    quality.DATA = Path(args.data)
    ws = Workspace(Path(args.workspace))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    have = ({(r["set"], r.get("sweep_seed", 0)) for r in map(json.loads, out.read_text().splitlines()) if r}
            if out.exists() else set())
    for name in args.sets.split(","):
        if (name, args.sweep_seed) in have:
            continue
        eid, n, true_k, _ = quality.embedding_of(ws, name)
        _, labels = quality.read_set(name)
        y = np.unique(np.array(labels), return_inverse=True)[1]
        X = np.ascontiguousarray(load_embeddings(ws, eid), dtype=np.float32)
        t0 = time.perf_counter()
        ak = choose_k(X, seed=args.sweep_seed)
        sweep = time.perf_counter() - t0
        acc_a, nmi_a = _kmeans_scores(X, y, ak.chosen, args.seeds)
        acc_t, nmi_t = _kmeans_scores(X, y, true_k, args.seeds)
        row = {"set": name, "n": n, "true_k": true_k, "chosen_k": ak.chosen, "sweep_seconds": round(sweep, 2),
               "acc_auto": float(np.mean(acc_a)), "nmi_auto": float(np.mean(nmi_a)),
               "acc_true": float(np.mean(acc_t)), "nmi_true": float(np.mean(nmi_t)), "seeds": args.seeds, "sweep_seed": args.sweep_seed,
               "auto_k": ak.to_dict(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
               "date": time.strftime("%Y-%m-%d")}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:15s} n={n:6d} true k={true_k:4d} sweep seed {args.sweep_seed} chosen k={ak.chosen:4d} "
              f"sweep {sweep:5.1f}s "
              f"ACC {row['acc_auto'] * 100:5.1f} (true k {row['acc_true'] * 100:5.1f}) "
              f"NMI {row['nmi_auto'] * 100:5.1f} (true k {row['nmi_true'] * 100:5.1f})", flush=True)


def baseline(args: argparse.Namespace) -> None:
    import quality

    from textcluster.embed.engine import load_embeddings
    from textcluster.store import Workspace

    quality.DATA = Path(args.data)
    ws = Workspace(Path(args.workspace))
    out = Path(args.out).with_name("autok_baseline.jsonl")
    have = {json.loads(x)["set"] for x in out.read_text().splitlines() if x} if out.exists() else set()
    for name in args.sets.split(","):
        if name in have:
            continue
        eid, n, true_k, _ = quality.embedding_of(ws, name)
        _, labels = quality.read_set(name)
        y = np.unique(np.array(labels), return_inverse=True)[1]
        X = np.ascontiguousarray(load_embeddings(ws, eid), dtype=np.float32)
        acc, nmi = _kmeans_scores(X, y, args.baseline_k, args.seeds)
        row = {"set": name, "k": args.baseline_k, "acc": float(np.mean(acc)), "nmi": float(np.mean(nmi)),
               "seeds": args.seeds, "date": time.strftime("%Y-%m-%d")}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name:15s} k={args.baseline_k} ACC {row['acc'] * 100:5.1f} NMI {row['nmi'] * 100:5.1f}", flush=True)


def cost(args: argparse.Namespace) -> None:
    import quality

    from textcluster.cluster import runs
    from textcluster.config import ClustererConfig, ReducerConfig
    from textcluster.store import Workspace

    quality.DATA = Path(args.data)
    ws = Workspace(Path(args.workspace))
    eid, n, true_k, _ = quality.embedding_of(ws, args.cost)
    red = ReducerConfig(projection="pca")
    seed = 1000 + args.cost_seed  # a seed no other run of this bench uses: nothing comes from the run cache
    out = {}
    # warm-up (imports, first-call costs), not reported
    runs.cluster(ws, eid, red, ClustererConfig(k=true_k, seed=seed + 500))
    for name, clu in (("fixed_k", ClustererConfig(k=true_k, seed=seed)), ("auto_k", ClustererConfig(seed=seed)),
                      ("fixed_k_stability5", ClustererConfig(k=true_k, seed=seed, stability=5))):
        res = runs.cluster(ws, eid, red, clu)
        assert not res.cached, "a cached run measures nothing: pass another --cost-seed"
        out[name] = {k: round(v, 2) for k, v in res.timings.items()}
        print(name, json.dumps(out[name]), flush=True)
    row = {"set": args.cost, "n": n, "k": true_k, "timings": out,
           "auto_k_over_fixed_total": round(out["auto_k"]["total"] / out["fixed_k"]["total"], 2),
           "stability5_over_fixed_total": round(out["fixed_k_stability5"]["total"] / out["fixed_k"]["total"], 2),
           "stability5_over_fixed_cluster": round((out["fixed_k_stability5"]["cluster"]
                                                   + out["fixed_k_stability5"]["stability"])
                                                  / out["fixed_k"]["cluster"], 2),
           "omp_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_1min": round(os.getloadavg()[0], 1),
           "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(row))


def sweep_cost(args: argparse.Namespace) -> None:
    """Time :func:`choose_k` alone on one set's embedding (after a warm-up on 500 rows): wall and
    CPU seconds (the CPU time of this process, which a loaded machine inflates less)."""
    import quality

    from textcluster.cluster import autok
    from textcluster.embed.engine import load_embeddings
    from textcluster.store import Workspace

    quality.DATA = Path(args.data)
    ws = Workspace(Path(args.workspace))
    eid, n, true_k, _ = quality.embedding_of(ws, args.sweep)
    X = np.ascontiguousarray(load_embeddings(ws, eid), dtype=np.float32)
    autok.choose_k(X[:500], seed=args.sweep_seed)  # imports, first-call costs; not reported
    t0, c0 = time.perf_counter(), time.process_time()
    ak = autok.choose_k(X, seed=args.sweep_seed)
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"set": args.sweep, "n": n, "d": int(X.shape[1]), "true_k": true_k, "chosen": ak.chosen,
                      "candidates": len(ak.candidates), "replicates": ak.replicates, "sample": ak.sample,
                      "sweep_seconds": round(sec, 2), "sweep_cpu_seconds": round(cpu, 2), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
                      "load_avg_1min": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d %H:%M")}))


def report(args: argparse.Namespace) -> None:
    every = [r for r in map(json.loads, Path(args.out).read_text().splitlines()) if r]
    rows = {r["set"]: r for r in every if r.get("sweep_seed", 0) == 0}
    others: dict[str, list[str]] = {}
    for r in every:
        if r.get("sweep_seed", 0) != 0:
            others.setdefault(r["set"], []).append(
                f"{r['chosen_k']} ({(r['acc_auto'] - r['acc_true']) * 100:+.1f})")
    bfile = Path(args.out).with_name("autok_baseline.jsonl")
    base = {r["set"]: r for r in map(json.loads, bfile.read_text().splitlines()) if r} if bfile.exists() else {}
    bk = next(iter(base.values()))["k"] if base else None
    lines = ["| set | n | true k | chosen k | ACC auto k | ACC true k | NMI auto k | NMI true k | sweep (s) |"
             " chosen k, other sweep seeds (ACC gap) |" + (f" ACC k={bk} |" if base else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if base else "")]
    for s in SETS:
        if s in rows:
            r = rows[s]
            lines.append(f"| {s}{'' if s in SHORT else ' (held out)'} | {r['n']:,} | {r['true_k']} | {r['chosen_k']} | "
                         f"{r['acc_auto'] * 100:.1f} | {r['acc_true'] * 100:.1f} | {r['nmi_auto'] * 100:.1f} | "
                         f"{r['nmi_true'] * 100:.1f} | {r['sweep_seconds']:.1f} | {', '.join(others.get(s, []))} |"
                         + (f" {base[s]['acc'] * 100:.1f} |" if s in base else (" |" if base else "")))
    short = [rows[s] for s in SHORT if s in rows]
    if short:
        ma = np.mean([r["acc_auto"] for r in short]) * 100
        mt = np.mean([r["acc_true"] for r in short]) * 100
        worst = min(short, key=lambda r: r["acc_auto"] - r["acc_true"])
        bs = [base[r["set"]]["acc"] for r in short if r["set"] in base]
        lines.append(f"| mean of {len(short)} short-text sets | | | | {ma:.1f} | {mt:.1f} | "
                     f"{np.mean([r['nmi_auto'] for r in short]) * 100:.1f} | "
                     f"{np.mean([r['nmi_true'] for r in short]) * 100:.1f} | | |"
                     + (f" {np.mean(bs) * 100:.1f} |" if base and len(bs) == len(short) else (" |" if base else "")))
        lines.append("")
        lines.append(f"Mean ACC gap (auto - true k): {ma - mt:+.1f} points; largest loss: {worst['set']} "
                     f"{(worst['acc_auto'] - worst['acc_true']) * 100:+.1f} points.")
    print("\n".join(lines))
    print(json.dumps({"sets": len(rows), "short_sets": len(short)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--seeds", type=int, default=3, help="k-means seeds per k when scoring (default 3)")
    p.add_argument("--sweep-seed", type=int, default=0,
                   help="seed of choose_k (its subset and k-means seedings; default 0); the report's main "
                        "columns are seed 0, other seeds are listed beside them (how stable the choice is)")
    p.add_argument("--workspace", default=str(ROOT / "bench" / ".workspace"))
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "autok.jsonl"))
    p.add_argument("--report", action="store_true", help="only print the table of the saved results")
    p.add_argument("--baseline-k", type=int, default=None, metavar="K",
                   help="score k-means with this fixed k instead (into autok_baseline.jsonl)")
    p.add_argument("--cost", metavar="SET", help="measure the sweep's and stability's cost on this set instead")
    p.add_argument("--cost-seed", type=int, default=0, help="with --cost: offsets the runs' seed (default 0)")
    p.add_argument("--sweep", metavar="SET", help="time choose_k alone on this set's embedding instead")
    args = p.parse_args()
    if args.sweep:
        sweep_cost(args)
        return
    if args.cost:
        cost(args)
        return
    if args.baseline_k:
        baseline(args)
        report(args)
        return
    if not args.report:
        if not Path(args.data).is_dir():
            raise SystemExit(f"{args.data} not found: this benchmark reads ../shared/datasets relative to the repo root")
        bench(args)
    report(args)


if __name__ == "__main__":
    main()
