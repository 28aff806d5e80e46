"""``tfidf``: TF-IDF fitted on the corpus itself, reduced by truncated SVD.

No model, no GPU: the fast baseline. Fitting is deterministic (fixed SVD seed).
The fitted state (vocabulary, idf weights, SVD components) is saved in the
embedding artifact as plain JSON/npy files (no pickle), so
:func:`textcluster.embed.engine.encode_texts` maps new texts into the same space.

Memory is bounded (recipe 2): the vocabulary and the document frequencies are
counted over the corpus in chunks of :data:`FIT_CHUNK_ROWS` texts (no corpus-wide
count matrix), idf comes from the whole corpus, the SVD is fitted in float32 on a
seeded sample of at most :data:`SVD_FIT_ROWS` rows, and every text is projected in
the engine's batches. Corpora of up to ``SVD_FIT_ROWS`` rows get the same SVD
input as recipe 1; on larger ones the clustering of the vectors agrees with
recipe 1's within the tolerance in docs/encoders.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textcluster.errors import EncoderError

if TYPE_CHECKING:
    from textcluster.config import EncoderConfig

#: SVD dimensions when ``EncoderConfig.dims`` is None.
DEFAULT_DIMS = 256
#: Vocabulary cap (most frequent words).
MAX_FEATURES = 50_000
#: Bumped when the TF-IDF recipe below changes (part of the fingerprint).
#: 1: whole-corpus count matrix, float64 SVD on every row. 2: streamed counts,
#: float32 SVD fitted on at most SVD_FIT_ROWS rows (bounded memory).
RECIPE_VERSION = 2
#: Texts counted at a time while fitting the vocabulary and document frequencies.
FIT_CHUNK_ROWS = 50_000
#: Most rows the SVD is fitted on (a seeded sample of the corpus when larger).
SVD_FIT_ROWS = 100_000
_STATE_DIR = "tfidf"


class TfidfEncoder:
    """TF-IDF (sublinear tf, English stop words, words seen in >= 2 documents on
    corpora of 100+ texts) followed by truncated SVD to ``dims`` dimensions.

    When the vocabulary has no more words than ``dims``, the TF-IDF vectors are
    kept as they are (dim = vocabulary size).
    """

    needs_fit = True

    def __init__(self, cfg: EncoderConfig) -> None:
        self.name = "tfidf"
        self.cfg = cfg
        self.dims = cfg.dims or DEFAULT_DIMS
        self.seed = 0

    def params(self) -> dict[str, Any]:
        return {"recipe": RECIPE_VERSION, "sublinear_tf": True, "stop_words": "english",
                "max_features": MAX_FEATURES, "dims": self.dims, "seed": self.seed}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.params(), sort_keys=True).encode()).hexdigest()[:16]

    def load(self, device: str) -> None:
        self.device_ = "cpu"

    def max_tokens(self) -> int | None:
        return None

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray | None:
        return None

    def _counter(self, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(lowercase=True, stop_words="english", vocabulary=vocabulary, dtype=np.float32)

    def _count_terms(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every term of ``texts`` with its total count and document frequency, counted
        :data:`FIT_CHUNK_ROWS` texts at a time (memory: the distinct terms, not the corpus)."""
        ids: dict[str, int] = {}
        tf = np.zeros(0, dtype=np.int64)
        df = np.zeros(0, dtype=np.int64)
        for start in range(0, len(texts), FIT_CHUNK_ROWS):
            counter = self._counter()
            try:
                counts = counter.fit_transform(texts[start : start + FIT_CHUNK_ROWS])
            except ValueError:  # no words in this chunk
                continue
            terms = counter.get_feature_names_out()
            gid = np.fromiter((ids.setdefault(t, len(ids)) for t in terms), dtype=np.int64, count=len(terms))
            if len(ids) > tf.size:
                grow = max(len(ids), 2 * tf.size) - tf.size
                tf = np.concatenate([tf, np.zeros(grow, dtype=np.int64)])
                df = np.concatenate([df, np.zeros(grow, dtype=np.int64)])
            local = counts.shape[1]
            tf[gid] += np.bincount(counts.indices, weights=counts.data, minlength=local).astype(np.int64)
            df[gid] += np.bincount(counts.indices, minlength=local)
            del counts, counter
        return list(ids), tf[: len(ids)], df[: len(ids)]

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        """Fit vocabulary and idf on every text of ``texts``, and the SVD on at most
        :data:`SVD_FIT_ROWS` of them (a seeded sample)."""
        from sklearn.decomposition import TruncatedSVD

        n = len(texts)
        terms, tf, df = self._count_terms(texts)
        keep = np.flatnonzero(df >= (2 if n >= 100 else 1))
        if keep.size == 0:
            raise EncoderError(f"tfidf found no words to index in {n} texts: empty vocabulary")
        if keep.size > MAX_FEATURES:  # the most frequent words (total count), ties by word
            by_word = sorted(keep.tolist(), key=terms.__getitem__)
            order = np.argsort(-tf[by_word], kind="stable")[:MAX_FEATURES]
            keep = np.asarray(by_word)[order]
        chosen = sorted(keep.tolist(), key=terms.__getitem__)  # indices in word order, as sklearn
        self.vocabulary_ = {terms[g]: i for i, g in enumerate(chosen)}
        # sklearn's smooth idf: log((1 + n) / (1 + df)) + 1
        self.idf_ = (np.log((1 + n) / (1 + df[chosen])) + 1.0).astype(np.float64)
        del terms, tf, df
        rows = np.arange(n) if n <= SVD_FIT_ROWS else np.sort(
            np.random.default_rng(self.seed).choice(n, SVD_FIT_ROWS, replace=False))
        n_fit = len(rows)
        n_comp = min(self.dims, len(chosen) - 1, n_fit - 1)
        if len(chosen) <= self.dims or n_comp < 1:
            self.components_ = None
            return self
        import scipy.sparse as sp
        from threadpoolctl import threadpool_limits

        x = sp.vstack([self._tfidf([texts[i] for i in rows[a : a + FIT_CHUNK_ROWS]])
                       for a in range(0, n_fit, FIT_CHUNK_ROWS)], format="csr")
        svd = TruncatedSVD(n_components=n_comp, algorithm="randomized", n_iter=5, random_state=self.seed)
        # One BLAS thread: byte-for-byte repeatable, and on a busy machine OpenBLAS threads
        # spin-wait (measured 10x slower with 2 threads under load).
        with threadpool_limits(limits=1, user_api="blas"):
            svd.fit(x)
        self.components_ = np.ascontiguousarray(svd.components_, dtype=np.float32)
        return self

    def _tfidf(self, texts: Sequence[str]) -> Any:
        """L2-normalised float32 TF-IDF rows of ``texts`` (sublinear tf) in the fitted vocabulary."""
        from sklearn.preprocessing import normalize

        x = self._counter(vocabulary=self.vocabulary_).transform(list(texts)).tocsr()
        x.data = np.log(x.data) + np.float32(1.0)  # sublinear tf
        x.data *= self.idf_.astype(np.float32)[x.indices]
        return normalize(x, norm="l2", copy=False)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "idf_"):
            raise EncoderError("tfidf is not fitted; fit it on the corpus or load a saved state")
        x = self._tfidf(texts)
        if self.components_ is None:
            return x.toarray()
        return np.asarray(x @ self.components_.T, dtype=np.float32)

    @property
    def dim(self) -> int:
        return len(self.vocabulary_) if self.components_ is None else int(self.components_.shape[0])

    def save_state(self, folder: Path) -> None:
        """Write vocabulary.json, idf.npy and (with SVD) components.npy under ``folder/tfidf/``."""
        d = Path(folder) / _STATE_DIR
        d.mkdir(parents=True, exist_ok=True)
        (d / "vocabulary.json").write_text(json.dumps(self.vocabulary_, ensure_ascii=False), encoding="utf-8")
        (d / "params.json").write_text(json.dumps(self.params()), encoding="utf-8")
        np.save(d / "idf.npy", self.idf_)
        if self.components_ is not None:
            np.save(d / "components.npy", self.components_)

    def load_state(self, folder: Path) -> TfidfEncoder:
        """Read what :meth:`save_state` wrote (no pickle)."""
        d = Path(folder) / _STATE_DIR
        if not (d / "idf.npy").is_file():
            raise EncoderError(f"no fitted tfidf state in {str(folder)!r}")
        self.vocabulary_ = json.loads((d / "vocabulary.json").read_text(encoding="utf-8"))
        self.idf_ = np.load(d / "idf.npy", allow_pickle=False)
        comp = d / "components.npy"
        self.components_ = np.load(comp, allow_pickle=False) if comp.is_file() else None
        return self

    def describe(self) -> dict[str, Any]:
        return {"backend": "tfidf", **self.params(),
                "vocabulary": len(getattr(self, "vocabulary_", {})) or None}


def make_tfidf(model: str, cfg: EncoderConfig) -> TfidfEncoder:
    """Factory of ``tfidf``."""
    return TfidfEncoder(cfg)
