"""A deterministic fake encoder (registered as ``fake``) and a corpus writer, for the
embedding and pipeline tests."""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

import numpy as np

from textcluster.config import EncoderConfig
from textcluster.store import CorpusManifest, Workspace, make_id


class FakeEncoder:
    """Deterministic per-text vectors; records every text it encodes (optionally to a file)."""

    needs_fit = False

    def __init__(self, cfg: EncoderConfig, log: Path | None = None, delay: float = 0.0, oom_above: int = 0,
                 hold_at: int = 0, gate: threading.Event | None = None):
        """``hold_at``/``gate``: once ``hold_at`` texts are encoded, the next batch waits for
        ``gate`` (at most 30 s), so a test can cancel at a known point whatever the machine's load."""
        self.name, self.cfg, self.log, self.delay, self.oom_above = "fake", cfg, log, delay, oom_above
        self.hold_at, self.gate = hold_at, gate
        self.seen: list[str] = []
        self.batches: list[list[str]] = []

    def fingerprint(self) -> str:
        return "fake-v1"

    def load(self, device: str) -> None:
        self.device_ = device

    def max_tokens(self) -> int | None:
        return 8

    def token_lengths(self, texts):
        return np.array([len(t.split()) for t in texts], dtype=np.int64)

    def encode_batch(self, texts):
        if self.oom_above and len(texts) > self.oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        time.sleep(self.delay)
        if self.gate is not None and self.hold_at and len(self.seen) >= self.hold_at:
            self.gate.wait(30)
        self.seen.extend(texts)
        self.batches.append(list(texts))
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as f:
                f.writelines(t + "\n" for t in texts)
                f.flush()
        return np.stack([fake_vector(t) for t in texts])

    dim = 4

    def describe(self):
        return {"backend": "fake"}


def fake_vector(text: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(text.encode())).normal(size=4).astype(np.float32)


def fake_matrix(texts) -> np.ndarray:
    x = np.stack([fake_vector(t) for t in texts])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_corpus(ws: Workspace, texts) -> str:
    """A corpus artifact with docs.parquet (doc_id, row, text), as ingest writes it."""
    import pandas as pd

    cid = make_id("corpus", "sha-" + str(zlib.crc32("\n".join(texts).encode())), {})

    def writer(tmp: Path) -> None:
        pd.DataFrame({"doc_id": np.arange(len(texts), dtype=np.int64),
                      "row": np.arange(1, len(texts) + 1, dtype=np.int64), "text": list(texts)}
                     ).to_parquet(tmp / "docs.parquet")

    ws.write(cid, CorpusManifest(kept=len(texts)), writer)
    return cid
