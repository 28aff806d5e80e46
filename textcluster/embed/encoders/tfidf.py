"""``tfidf``: TF-IDF fitted on the corpus itself, reduced by truncated SVD.

No model, no GPU: the fast baseline. Fitting is deterministic (fixed SVD seed).
The fitted state (vocabulary, idf weights, SVD components) is saved in the
embedding artifact as plain JSON/npy files (no pickle), so
:func:`textcluster.embed.engine.encode_texts` maps new texts into the same space.
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
RECIPE_VERSION = 1
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

    def _counter(self, vocabulary: dict[str, int] | None = None, min_df: int = 1) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(
            lowercase=True, stop_words="english", min_df=min_df,
            max_features=None if vocabulary else MAX_FEATURES, vocabulary=vocabulary, dtype=np.float64,
        )

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        """Fit vocabulary, idf and SVD on ``texts`` (the whole corpus)."""
        from sklearn.decomposition import TruncatedSVD

        texts = list(texts)
        counter = self._counter(min_df=2 if len(texts) >= 100 else 1)
        try:
            counts = counter.fit_transform(texts)
        except ValueError as e:  # empty vocabulary
            raise EncoderError(f"tfidf found no words to index in {len(texts)} texts: {e}") from e
        vocab = {str(k): int(v) for k, v in counter.vocabulary_.items()}
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        # sklearn's smooth idf: log((1 + n) / (1 + df)) + 1
        self.vocabulary_ = vocab
        self.idf_ = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float64)
        x = self._weigh(counts)
        n_comp = min(self.dims, x.shape[1] - 1, x.shape[0] - 1)
        if x.shape[1] <= self.dims or n_comp < 1:
            self.components_ = None
        else:
            from threadpoolctl import threadpool_limits

            svd = TruncatedSVD(n_components=n_comp, algorithm="randomized", n_iter=5, random_state=self.seed)
            # One BLAS thread: byte-for-byte repeatable, and on a busy machine OpenBLAS threads
            # spin-wait (measured 10x slower with 2 threads under load).
            with threadpool_limits(limits=1, user_api="blas"):
                svd.fit(x)
            self.components_ = svd.components_.astype(np.float32)
        return self

    def _weigh(self, counts: Any) -> Any:
        from sklearn.preprocessing import normalize

        x = counts.astype(np.float64)
        x.data = np.log(x.data) + 1.0  # sublinear tf
        x = x.multiply(self.idf_).tocsr()
        return normalize(x, norm="l2", copy=False)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "idf_"):
            raise EncoderError("tfidf is not fitted; fit it on the corpus or load a saved state")
        counts = self._counter(vocabulary=self.vocabulary_).transform(list(texts))
        x = self._weigh(counts)
        if self.components_ is None:
            return np.asarray(x.todense(), dtype=np.float32)
        return np.asarray(x @ self.components_.T.astype(np.float64), dtype=np.float32)

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
