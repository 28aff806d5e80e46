"""Embedding throughput: textcluster's engine against plain SentenceTransformer.encode.

Reads ../shared/datasets (relative to the repository root): the StackOverflow
titles and AgNews texts of the project's benchmark folder, which users who
clone the project do not have. For each set (a seeded subset of ``--n`` texts,
and a ``mixed`` set of half of each, shuffled) it measures documents/second of

* ``textcluster.embed.engine.embed`` (the whole stage: read the corpus, length-sorted
  token-budget batches, chunk checkpoints, the final ``.npy``) for ``minilm``,
  ``tfidf``, ``static:<bundled MiniLM folder>``, ``int8:minilm`` (ONNX Runtime, int8
  weights) and ``m2v:minilm`` (the distilled fast preview), into a fresh workspace (the
  int8 and m2v models are built once, before timing, in ``bench/.workspace/models``);
* plain ``SentenceTransformer(all-MiniLM-L6-v2).encode(texts, batch_size=64)``
  on the same texts in the same process,

with models loaded beforehand (loading is not timed), runs interleaved and
the best of ``--repeats`` kept (the machine is shared). CPU seconds are
reported too: on a busy machine they are steadier than wall time. Cosine
agreement is the per-row cosine between the engine's minilm (and int8) vectors and
SentenceTransformer's (min and mean). Prints a markdown table.

    .venv/bin/python bench/embed.py [--n 4000] [--threads 2] [--repeats 2]
    .venv/bin/python bench/embed.py --sets mixed --encoders minilm,int8,m2v   # issue 19
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared/datasets from the repository root; TEXTCLUSTER_DATASETS overrides it (a git worktree)
DATASETS = Path(os.environ.get("TEXTCLUSTER_DATASETS", ROOT.parent / "shared" / "datasets"))
SETS = {"stackoverflow": "stackoverflow/text.txt", "agnews": "agnews8000/text.txt"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="texts per set (seeded subset)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for both sides")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per method (best kept)")
    ap.add_argument("--encoders", default="minilm,tfidf,static", help="comma list")
    ap.add_argument("--sets", default="stackoverflow,agnews,mixed", help="comma list of sets to time")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads; the engine then keeps it

    import numpy as np
    import pandas as pd
    import torch
    from sentence_transformers import SentenceTransformer

    from textcluster.config import EncoderConfig
    from textcluster.embed.encoders.transformer import bundled_minilm_path
    from textcluster.embed.engine import embed, encode_texts, load_embeddings
    from textcluster.store import CorpusManifest, Workspace, make_id

    torch.set_num_threads(args.threads)
    if not DATASETS.is_dir():
        sys.exit(f"needs the benchmark data sets in {DATASETS} (../shared/datasets from the repo root)")
    print(f"reading data sets from {DATASETS}", file=sys.stderr)
    rng = np.random.default_rng(0)
    data = {}
    for name, rel in SETS.items():
        lines = (DATASETS / rel).read_text(encoding="utf-8").splitlines()
        data[name] = [lines[i] for i in rng.choice(len(lines), min(args.n, len(lines)), replace=False)]
    mixed = data["stackoverflow"][: args.n // 2] + data["agnews"][: args.n // 2]
    rng.shuffle(mixed)
    data["mixed"] = mixed
    data = {k: v for k, v in data.items() if k in args.sets.split(",")}

    minilm = str(bundled_minilm_path())
    st = SentenceTransformer(minilm, device="cpu")
    names = {"minilm": "minilm", "tfidf": "tfidf", "static": f"static:{minilm}", "int8": "int8:minilm",
             "m2v": "m2v:minilm"}
    encoders = [names[e.strip()] for e in args.encoders.split(",")]
    models_ws = Workspace(ROOT / "bench" / ".workspace")  # built int8 / m2v models, reused by every run
    for name in encoders:  # load (and build) each model once (the per-process cache keeps it)
        if name != "tfidf":
            encode_texts(["warm up"], EncoderConfig(name=name, device="cpu"), ws=models_ws)
    st.encode(["warm up"], batch_size=64)

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c

    rows = []
    for set_name, texts in data.items():
        n = len(texts)
        tok = st.tokenizer(texts)["input_ids"]
        mean_tokens = float(np.mean([len(t) for t in tok]))
        best: dict[str, tuple[float, float]] = {}
        vectors: dict[str, np.ndarray] = {}
        for rep in range(args.repeats):
            ref, w, c = timed(lambda texts=texts: st.encode(texts, batch_size=64, normalize_embeddings=True))
            vectors["st"] = ref
            best["st"] = min(best.get("st", (1e9, 1e9)), (w, c))
            for name in encoders:
                with tempfile.TemporaryDirectory() as tmp:
                    ws = Workspace(tmp)
                    (models_ws.root / "models").mkdir(parents=True, exist_ok=True)
                    (ws.root / "models").symlink_to(models_ws.root / "models")
                    cid = make_id("corpus", f"bench-{set_name}-{zlib.crc32(str(n).encode())}", {})
                    df = pd.DataFrame({"doc_id": np.arange(n), "row": np.arange(1, n + 1), "text": texts})
                    ws.write(cid, CorpusManifest(kept=n), lambda d, df=df: df.to_parquet(d / "docs.parquet"))
                    cfg = EncoderConfig(name=name, device="cpu")
                    res, w, c = timed(lambda ws=ws, cid=cid, cfg=cfg: embed(ws, cid, cfg))
                    vectors[name] = np.array(load_embeddings(ws, res.embedding_id))
                best[name] = min(best.get(name, (1e9, 1e9)), (w, c))
            print(f"{set_name} run {rep + 1}: " + ", ".join(f"{k} {n / v[0]:.0f}/s" for k, v in best.items()),
                  file=sys.stderr, flush=True)
        st_w, st_c = best["st"]
        rows.append((set_name, n, mean_tokens, "SentenceTransformer.encode(batch_size=64)", n / st_w, n / st_c, 1.0, "reference"))
        for name in encoders:
            w, c = best[name]
            if name in ("minilm", "int8:minilm"):
                cos = (vectors[name] * vectors["st"]).sum(1)
                agree = f"min {cos.min():.6f}, mean {cos.mean():.6f}"
            else:
                agree = "n/a (other vectors)"
            rows.append((set_name, n, mean_tokens, f"textcluster embed `{name if name != names['static'] else 'static:<bundled minilm>'}`",
                         n / w, n / c, st_w / w, agree))

    print(f"\n{torch.get_num_threads()} torch threads, {os.cpu_count()} cores visible, best of {args.repeats}\n")
    print("| set | texts | mean tokens | method | docs/s (wall) | docs per CPU-s | speed-up vs ST (wall) | cosine vs ST |")
    print("|---|---|---|---|---|---|---|---|")
    for s, n, mt, m, dw, dc, sp, ag in rows:
        print(f"| {s} | {n:,} | {mt:.0f} | {m} | {dw:,.0f} | {dc:,.0f} | {sp:.2f}x | {ag} |")


if __name__ == "__main__":
    main()
