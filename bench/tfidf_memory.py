"""Peak resident memory of the ``tfidf`` embedding stage on a synthetic corpus.

    python bench/tfidf_memory.py --rows 200000 [--dims 256] [--code DIR] [--workspace DIR]

Builds (once per row count, seeded) a corpus of short texts: 4-30 words drawn from
a Zipf-distributed vocabulary of 300,000 made-up words, with a topic word mix so
that the texts have structure. Then runs :func:`textcluster.embed.engine.embed`
with ``--encoder tfidf`` in a fresh process (``--code DIR``: the textcluster
sources to import, e.g. an older commit unpacked with ``git archive``) and prints
its peak RSS (``ru_maxrss``), wall time and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 300_000
TOPICS = 50

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from textcluster.config import EncoderConfig
from textcluster.embed.engine import embed
from textcluster.store import Workspace
ws_root, cid, dims = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
ws = Workspace(Path(ws_root))
r = embed(ws, cid, EncoderConfig(name="tfidf", dims=dims))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if len(sys.argv) > 4:  # keep the first rows' vectors to compare recipes
    import numpy as np
    np.save(sys.argv[4], np.load(r.path, mmap_mode="r")[: int(sys.argv[5])])
ws.delete(r.embedding_id)  # the next run computes again
print(json.dumps({"embedding_id": r.embedding_id, "n": r.n, "dim": r.dim, "seconds": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(peak / 1024, 1)}))
"""


def make_words(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 11, VOCAB)
    chars = letters[rng.integers(0, 26, (VOCAB, 10))]
    words = {"".join(row[:k]) for row, k in zip(chars, lengths, strict=True)}
    return np.array(sorted(words))


def build(ws_root: Path, rows: int) -> str:
    """The corpus id of a seeded ``rows``-row synthetic corpus in ``ws_root`` (built once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from textcluster.store import CorpusManifest, Workspace, make_id

    ws = Workspace(ws_root)
    cid = make_id("corpus", f"bench-tfidf-{rows}", {})
    if ws.cached(cid):
        return cid
    rng = np.random.default_rng(0)
    words = make_words(rng)
    v = len(words)
    zipf = 1.0 / np.arange(1, v + 1) ** 1.05
    zipf /= zipf.sum()
    lengths = rng.integers(4, 31, rows)
    total = int(lengths.sum())
    idx = rng.choice(v, size=total, p=zipf)
    # a third of each text's words come from its topic's own 200 words
    topic = rng.integers(0, TOPICS, rows)
    topic_words = rng.integers(0, v, (TOPICS, 200))
    own = rng.random(total) < 0.33
    per_word_topic = np.repeat(topic, lengths)
    idx[own] = topic_words[per_word_topic[own], rng.integers(0, 200, int(own.sum()))]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    texts = [" ".join(words[idx[a:b]]) for a, b in zip(starts, ends, strict=True)]
    ws.write(cid, CorpusManifest(sha256=f"bench-tfidf-{rows}", source="synthetic.csv", kept=rows),
             lambda d: pq.write_table(pa.table({
                 "doc_id": np.arange(rows, dtype=np.int64), "row": np.arange(1, rows + 1, dtype=np.int64),
                 "text": texts}), d / "docs.parquet"))
    return cid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--code", type=Path, default=ROOT, help="textcluster sources to measure (default: this checkout)")
    ap.add_argument("--workspace", type=Path, default=None, help="keep the corpus here between runs")
    ap.add_argument("--save", type=Path, default=None, help="write the first --save-rows vectors here (.npy)")
    ap.add_argument("--save-rows", type=int, default=20_000)
    args = ap.parse_args()
    ws_root = args.workspace or Path(tempfile.mkdtemp(prefix="tfidf-bench-"))
    ws_root.mkdir(parents=True, exist_ok=True)
    cid = build(ws_root, args.rows)
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
    cmd = [sys.executable, "-c", CHILD, str(ws_root), cid, str(args.dims)]
    if args.save:
        cmd += [str(args.save.resolve()), str(args.save_rows)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(rows=args.rows, code=str(args.code))
    print(f"rows={args.rows:,} dims={res['dim']} peak RSS {res['peak_rss_mb']:,.0f} MB in {res['seconds']} s")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
