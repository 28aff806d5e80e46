"""Frozen configuration dataclasses: one source of truth for defaults and UI choices.

Each stage of the pipeline is a pure function of (parent artifact id, config),
and the artifact id hashes the config's canonical JSON (see
:func:`textcluster.store.make_id`). Fields that do not change the result (for
example the batch size or the device) are listed in ``_NOT_IN_KEY`` of their
class and left out of :meth:`cache_key`.

The ``validate`` methods raise :class:`~textcluster.errors.ConfigError` naming
the value received.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

from textcluster.errors import ConfigError
from textcluster.store import canonical_json

MiB = 1 << 20
GiB = 1 << 30


def _check_int(name: str, value: Any) -> None:
    """ConfigError unless ``value`` is an integer (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} should be an integer")


class _Config:
    _NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (tuples become lists in JSON)."""
        return asdict(self)  # type: ignore[call-overload]

    def cache_key(self) -> dict[str, Any]:
        """The fields that change the stage's output; hashed into the artifact id."""
        return {k: v for k, v in self.to_dict().items() if k not in self._NOT_IN_KEY}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """Build from a dict, ignoring unknown keys; lists become tuples where the field is a tuple."""
        names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        kw = {}
        for k, v in d.items():
            if k in names:
                kw[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kw)


@dataclass(frozen=True)
class CorpusSpec(_Config):
    """How to read an input file into a corpus.

    text_fields: column names or nested paths (``request.messages[0].content``);
        several are joined with ``separator``. Empty: pick the likeliest text column.
    id_field / label_field: optional; labels are kept for evaluation only.
    format: ``csv|tsv|jsonl|json|parquet|txt`` or None to detect from the extension.
    drop_duplicates: drop exact duplicate texts (reported as rejected) instead of flagging them.
    encoding: ``auto`` (UTF-8 with/without BOM, UTF-16 with BOM; other bytes are an error
        naming the offset) or ``latin-1`` (stated fallback for undecodable files).
    max_rows / max_bytes: refuse inputs with more rows or more decompressed bytes.
    max_ratio: refuse a compressed (``.gz``) input as soon as it has inflated to more than
        ``max_ratio`` times its size on disk (and past 64 MiB): a decompression bomb is refused
        early instead of filling ``max_bytes``. Text compresses 3-15x; default 100.
    """

    text_fields: tuple[str, ...] = ()
    id_field: str | None = None
    label_field: str | None = None
    format: str | None = None
    separator: str = "\n"
    drop_duplicates: bool = False
    encoding: Literal["auto", "latin-1"] = "auto"
    max_rows: int = 10_000_000
    max_bytes: int = 8 * GiB
    max_ratio: float = 100.0

    _NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"max_rows", "max_bytes", "max_ratio"})

    def validate(self) -> CorpusSpec:
        if self.encoding not in ("auto", "latin-1"):
            raise ConfigError(f"encoding={self.encoding!r} should be 'auto' or 'latin-1'")
        if self.max_rows < 1:
            raise ConfigError(f"max_rows={self.max_rows} should be >= 1")
        if self.max_bytes < 1:
            raise ConfigError(f"max_bytes={self.max_bytes} should be >= 1")
        if not (self.max_ratio >= 1 and math.isfinite(self.max_ratio)):
            raise ConfigError(f"max_ratio={self.max_ratio} should be a finite number >= 1")
        return self


@dataclass(frozen=True)
class EncoderConfig(_Config):
    """Which encoder turns texts into vectors, and how.

    name: a registry name: ``minilm`` (default, bundled), ``tfidf``,
        ``st:<model>``, ``hf:<model>``, ``static:<model>``.
    pooling: for ``hf:`` models: ``mean`` | ``cls`` | ``last-token`` (None: last-token for
        decoder-only models, mean otherwise).
    max_length: token limit (None: the model's own limit, at most 512 for ``hf:``); longer
        texts are truncated and counted.
    instruction: a prefix put before every text (instruction-tuned models).
    normalize: L2-normalise the vectors.
    dims: for ``tfidf``: truncated-SVD dimensions (None: 256); for neural encoders: keep the
        first ``dims`` dimensions (Matryoshka models; None: all).
    dtype: storage dtype of ``embeddings.npy``.
    batch_size / device / chunk_rows do not change the vectors (left out of the cache key).
    """

    name: str = "minilm"
    pooling: Literal["mean", "cls", "last-token"] | None = None
    max_length: int | None = None
    instruction: str = ""
    normalize: bool = True
    dims: int | None = None
    dtype: Literal["float32", "float16"] = "float32"
    batch_size: int = 64
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    chunk_rows: int = 10_000

    _NOT_IN_KEY: ClassVar[frozenset[str]] = frozenset({"batch_size", "device", "chunk_rows"})

    def validate(self) -> EncoderConfig:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} should be >= 1")
        if self.chunk_rows < 1:
            raise ConfigError(f"chunk_rows={self.chunk_rows} should be >= 1")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"device={self.device!r} should be one of auto, cpu, cuda, mps")
        if self.pooling not in (None, "mean", "cls", "last-token"):
            raise ConfigError(f"pooling={self.pooling!r} should be mean, cls or last-token")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"max_length={self.max_length} should be >= 1")
        if self.dims is not None and self.dims < 1:
            raise ConfigError(f"dims={self.dims} should be >= 1")
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"dtype={self.dtype!r} should be float32 or float16")
        return self


REDUCERS = ("none", "pca", "umap", "smooth")


@dataclass(frozen=True)
class ReducerConfig(_Config):
    """Dimension reduction before clustering, and the 2-D projection for plots.

    method: ``none`` | ``pca`` | ``umap`` | ``smooth`` (each vector -> mean of itself and its
        ``smooth_neighbors`` cosine nearest neighbours, renormalised; keeps the dimension).
    dims: output dimensions for pca/umap.
    n_neighbors, min_dist, metric: UMAP settings.
    smooth_neighbors: neighbours averaged by ``smooth`` (default 10; in the cache key only
        when method is ``smooth``, so other runs keep their ids).
    runs: UMAP only: fit this many UMAPs (seeds ``seed * runs`` ... ``seed * runs + runs - 1``) and concatenate
        their coordinates (``dims * runs`` columns). One run's layout depends on its seed;
        k-means over several layouts clusters what they agree on (see docs/clustering.md).
        Default 1; in the cache key only when above 1, so other runs keep their ids.
    projection: how the 2-D plot coordinates are made: ``umap`` | ``pca`` | ``auto``
        (UMAP up to 200k rows, PCA above). The plot is for looking only.
    """

    method: Literal["none", "pca", "umap", "smooth"] = "none"
    dims: int = 5
    n_neighbors: int = 15
    min_dist: float = 0.0
    metric: str = "cosine"
    projection: Literal["auto", "umap", "pca"] = "auto"
    smooth_neighbors: int = 10
    runs: int = 1

    def cache_key(self) -> dict[str, Any]:
        """As :meth:`_Config.cache_key`; ``smooth_neighbors`` only for the smooth reducer,
        ``runs`` only for a UMAP ensemble (``runs > 1``)."""
        key = super().cache_key()
        if self.method != "smooth":
            key.pop("smooth_neighbors", None)
        if self.method != "umap" or self.runs == 1:
            key.pop("runs", None)
        return key

    def validate(self) -> ReducerConfig:
        if self.method not in REDUCERS:
            raise ConfigError(f"reducer={self.method!r} should be one of {', '.join(REDUCERS)}")
        if self.dims < 1:
            raise ConfigError(f"dims={self.dims} should be >= 1")
        if self.n_neighbors < 2:
            raise ConfigError(f"n_neighbors={self.n_neighbors} should be >= 2")
        if not 0.0 <= self.min_dist <= 1.0:
            raise ConfigError(f"min_dist={self.min_dist} should be in [0, 1]")
        if self.smooth_neighbors < 1:
            raise ConfigError(f"smooth_neighbors={self.smooth_neighbors} should be >= 1")
        if not isinstance(self.runs, int) or isinstance(self.runs, bool) or not 1 <= self.runs <= 50:
            raise ConfigError(f"runs={self.runs!r} should be an integer in [1, 50]")
        if self.runs > 1 and self.method != "umap":
            raise ConfigError(f"runs={self.runs} is for the umap reducer only (reducer={self.method!r})")
        if self.projection not in ("auto", "umap", "pca"):
            raise ConfigError(f"projection={self.projection!r} should be auto, umap or pca")
        return self


@dataclass(frozen=True)
class ClustererConfig(_Config):
    """Which clusterer, and how it is fitted.

    method: a name from :data:`textcluster.cluster.registry.CLUSTERERS` (kmeans, minibatch-kmeans,
        gmm, hdbscan, dbscan, agglomerative, self-training, graph-ward).
    k: number of clusters for methods that take one, or ``"auto"`` (the default): chosen without
        labels by :func:`textcluster.cluster.autok.choose_k` (a k-means sweep scored by silhouette
        on a subset of the embedding; docs/clustering.md).
    k_range: with ``k="auto"``: the ``(k_min, k_max)`` searched (None: 2 .. min(200, rows/10)).
    min_cluster_size / min_samples / eps: density methods.
    fit_size: fit on this many rows (seeded subset) and assign the rest; None: fit on all.
    noise: ``keep`` noise as -1, or ``assign`` it to the nearest cluster.
    seed: every random step uses it.
    params: extra method-specific settings (JSON-able), e.g. ``{"tol": 0.001}``.
    outliers: a share Q in (0, 0.5]: the farthest Q of each run's rows by outlier score (distance to
        its centre as a quantile within its cluster) become noise (-1). None (default): none.
    stability: N >= 2 reruns the clusterer with N seeds on the same reduced matrix and stores, per
        cluster, its best-match Jaccard across the reruns. None (default): not measured.
    """

    method: str = "kmeans"
    k: int | Literal["auto"] = "auto"
    min_cluster_size: int = 15
    min_samples: int | None = None
    eps: float = 0.5
    fit_size: int | None = None
    noise: Literal["keep", "assign"] = "keep"
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    k_range: tuple[int, int] | None = None
    outliers: float | None = None
    stability: int | None = None

    def __hash__(self) -> int:  # params is a dict; hash the canonical form

        return hash(canonical_json(self.to_dict()))

    def cache_key(self) -> dict[str, Any]:
        """Not defined on the config: which fields change a run depends on the method, so the
        key comes from the clusterer registry (:func:`textcluster.cluster.registry.cache_key`)."""
        raise NotImplementedError("use textcluster.cluster.registry.cache_key(cfg)")

    def validate(self) -> ClustererConfig:
        """Check the fields common to every method (types and ranges); the method name and its
        ``params`` are checked against the registry by
        :func:`textcluster.cluster.registry.validate_clusterer`."""
        if not isinstance(self.method, str):
            raise ConfigError(f"method={self.method!r} should be a clusterer name (a string)")
        if self.k != "auto":
            _check_int("k", self.k)
        for name in ("min_cluster_size", "seed"):
            _check_int(name, getattr(self, name))
        for name in ("min_samples", "fit_size"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name))
        if isinstance(self.eps, bool) or not isinstance(self.eps, int | float):
            raise ConfigError(f"eps={self.eps!r} should be a number > 0")
        if self.min_samples is not None and self.min_samples < 1:
            raise ConfigError(f"min_samples={self.min_samples} should be >= 1")
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed} should be >= 0")
        if self.k != "auto" and self.k < 1:
            raise ConfigError(f"k={self.k} should be >= 1 or 'auto'")
        if self.k_range is not None:
            kr = self.k_range
            if not (isinstance(kr, list | tuple) and len(kr) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in kr)):
                raise ConfigError(f"k_range={kr!r} should be two integers (k_min, k_max)")
            if kr[0] < 2:
                raise ConfigError(f"k range {kr[0]}:{kr[1]} should start at 2 or more (k_min={kr[0]})")
            if kr[0] > kr[1]:
                raise ConfigError(f"k range {kr[0]}:{kr[1]} is empty (k_min={kr[0]} > k_max={kr[1]})")
        if self.outliers is not None:
            q = self.outliers
            if isinstance(q, bool) or not isinstance(q, int | float) or not (0.0 < q <= 0.5):
                raise ConfigError(f"outliers={q!r} should be a share in (0, 0.5]")
        if self.stability is not None:
            _check_int("stability", self.stability)
            if self.stability < 2:
                raise ConfigError(f"stability={self.stability} should be >= 2 (seeds to compare)")
        if self.min_cluster_size < 2:
            raise ConfigError(f"min_cluster_size={self.min_cluster_size} should be >= 2")
        if self.fit_size is not None and self.fit_size < 2:
            raise ConfigError(f"fit_size={self.fit_size} should be >= 2")
        if self.noise not in ("keep", "assign"):
            raise ConfigError(f"noise={self.noise!r} should be 'keep' or 'assign'")
        if self.eps <= 0:
            raise ConfigError(f"eps={self.eps} should be > 0")
        return self


#: Names accepted by :func:`recipe` (CLI ``--recipe``, the app's recipe toggle).
RECIPES = ("quality",)


def recipe(
    name: str, k: int | Literal["auto"] = "auto", *, seed: int = 0, fit_size: int | None = None, projection: str = "auto"
) -> tuple[ReducerConfig, ClustererConfig]:
    """A named reducer + clusterer setting; ``quality`` is the most accurate general one measured.

    ``quality``: a UMAP ensemble (5 UMAPs to 5 dimensions, 15 neighbours, cosine, seeds
    ``5 * seed`` ... ``5 * seed + 4``, coordinates concatenated) then k-means with
    ``n_init=10`` in those 25 dimensions. On the eight labelled short-text sets of the
    benchmarks (bundled MiniLM, true k, 5 seeds) it gave the best mean accuracy measured
    (76.6 against 72.9 for one UMAP), with one setting for all sets; the gain is on corpora
    with many topics, and on held-out Banking77 one UMAP did better (docs/clustering.md). It costs
    five UMAP fits: about 1 minute for 20k rows on two CPU cores, where k-means on the raw
    vectors takes seconds; for hundreds of thousands of rows pair it with ``fit_size``.
    """
    if name != "quality":
        raise ConfigError(f"recipe={name!r} should be one of {', '.join(RECIPES)}")
    reducer = ReducerConfig(method="umap", dims=5, n_neighbors=15, min_dist=0.0, metric="cosine",
                            projection=projection, runs=5)  # type: ignore[arg-type]
    clusterer = ClustererConfig(method="kmeans", k=k, seed=seed, fit_size=fit_size, params={"n_init": 10})
    return reducer.validate(), clusterer.validate()


@dataclass(frozen=True)
class SamplingPolicy(_Config):
    """How to draw a representative subset of a run.

    size: total budget N (met exactly whenever enough rows exist).
    allocation: across clusters: ``equal`` | ``proportional`` | ``sqrt`` (of cluster size).
    within: inside a cluster: ``random`` | ``diverse`` (farthest-point) | ``nearest`` (to the centre).
    noise: ``exclude`` | ``include`` (noise is its own group) | ``quota`` (``noise_quota`` share of N).
    noise_quota: with ``noise="quota"``, the share of N given to noise (0..1).
    clusters: only these clusters (None: all); exclude_clusters: never these. Items are
        cluster ids or cluster labels from the run's description (resolved when sampling).
    seed: seeds every random choice.
    """

    size: int = 1000
    allocation: Literal["equal", "proportional", "sqrt"] = "sqrt"
    within: Literal["random", "diverse", "nearest"] = "random"
    noise: Literal["exclude", "include", "quota"] = "exclude"
    noise_quota: float = 0.0
    clusters: tuple[int | str, ...] | None = None
    exclude_clusters: tuple[int | str, ...] = ()
    seed: int = 0

    def validate(self) -> SamplingPolicy:
        if self.size < 1:
            raise ConfigError(f"size={self.size} should be >= 1")
        if self.allocation not in ("equal", "proportional", "sqrt"):
            raise ConfigError(f"allocation={self.allocation!r} should be equal, proportional or sqrt")
        if self.within not in ("random", "diverse", "nearest"):
            raise ConfigError(f"within={self.within!r} should be random, diverse or nearest")
        if self.noise not in ("exclude", "include", "quota"):
            raise ConfigError(f"noise={self.noise!r} should be exclude, include or quota")
        if not 0.0 <= self.noise_quota <= 1.0:
            raise ConfigError(f"noise quota={self.noise_quota} should be in [0, 1]")
        return self
