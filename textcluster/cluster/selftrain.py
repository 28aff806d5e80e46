"""Self-training deep clusterer for short texts (autoencoder + KL sharpening).

The method of Hadifar et al. (2019), "A Self-Training Approach for Short Text
Clustering", itself deep embedded clustering (DEC, Xie et al. 2016) on frozen
sentence vectors:

1. an autoencoder over the embeddings is trained with a reconstruction loss (MSE);
2. cluster centres are initialised by k-means in its latent space;
3. encoder and centres are refined jointly: soft assignments ``Q`` (Student's t
   kernel between latent points and centres) are pulled towards a sharpened
   target ``P`` (``q**2 / cluster frequency``, renormalised) that weights the
   confident points, by minimising ``KL(P || Q)``. ``P`` is refreshed every
   ``update_interval`` steps; training stops when fewer than ``tol`` of the labels
   changed between two refreshes, or after ``max_iter`` steps.

Everything random is seeded: the weights (``torch.manual_seed`` inside a forked
RNG, so the caller's global state is left as it was), the batch order (a
``torch.Generator``) and the k-means initialisation (``random_state``). On the CPU,
deterministic torch algorithms are switched on for the duration of ``fit`` and
``predict`` and restored afterwards, so the same seed gives the same labels.

torch and scikit-learn are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from textcluster.cluster.graphward import GraphWardClusterer
from textcluster.cluster.protocol import ClustererInfo, Hooks, Param
from textcluster.config import ClustererConfig
from textcluster.embed.devices import resolve_device
from textcluster.errors import ConfigError
from textcluster.progress import Meter, ProgressFn, check_cancel

log = logging.getLogger(__name__)

INITS = ("kmeans", "graph-ward")
_CHUNK = 8192  # rows per forward pass when encoding a whole matrix


class NotFittedError(ConfigError):
    """``predict`` was called before ``fit``."""


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a hard dependency
        raise ConfigError(
            "the self-training clusterer needs torch: pip install 'torch==2.13.0'"
        ) from e
    return torch


@contextmanager
def _deterministic(device: str) -> Iterator[None]:
    """Deterministic torch algorithms on the CPU for the duration of the block."""
    torch = _torch()
    if device != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def _mlp(sizes: list[int], last_activation: bool) -> Any:
    nn = _torch().nn
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def student_t(z: Any, centers: Any, alpha: float = 1.0) -> Any:
    """Soft assignments ``Q`` (n, k): Student's t kernel between rows of ``z`` and ``centers``.

    ``q_ij ∝ (1 + ||z_i - mu_j||² / alpha) ** (-(alpha + 1) / 2)``, each row sums to 1.
    Works on torch tensors (z: (n, m), centers: (k, m)).
    """
    torch = _torch()
    d2 = torch.cdist(z, centers).pow(2)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over rows of KL(p_i || q_i)."""
    return float((p * (np.log(p + 1e-12) - np.log(q + 1e-12))).sum(axis=1).mean())


def target_distribution(q: np.ndarray) -> np.ndarray:
    """Sharpened target ``P`` (n, k) from ``Q``: ``q² / f_j`` with ``f_j = Σ_i q_ij``, rows sum to 1.

    Squaring favours confident points; dividing by the cluster frequency keeps big
    clusters from swallowing the others.
    """
    w = q**2 / q.sum(axis=0, keepdims=True)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


class SelfTrainingClusterer:
    """Autoencoder + k-means init + KL(P || Q) self-training, on a dense matrix.

    Parameters (all stored as given; ``fit`` validates them):
        k: number of clusters (default 20).
        seed: seeds weights, batch order and the k-means initialisation (default 0).
        hidden: encoder layer widths; the decoder mirrors them (default (256, 256, 512): on
            MiniLM vectors as good as DEC's (500, 500, 2000) and three times cheaper).
        latent_dim: width of the latent space (default 20).
        pretrain_epochs: autoencoder epochs over the data (default 15; capped so that at
            most ``max_pretrain_steps`` batches run, which bounds the cost on big inputs).
        max_pretrain_steps: cap on autoencoder batches (default 1000).
        max_iter: cap on self-training steps (batches) (default 1000).
        update_interval: ``T``, steps between two refreshes of the target ``P`` (default 100).
        tol: stop when fewer than this share of the labels changed at a refresh (default 0.001).
        batch_size: rows per step (default 256).
        lr: Adam learning rate for the autoencoder (default 1e-3); the self-training phase
            uses ``lr * refine_lr_ratio`` (default ratio 0.1).
        alpha: degrees of freedom of the Student's t kernel (default 1.0).
        n_init: k-means restarts in the latent space (default 10).
        init: how the latent centres start: ``kmeans`` (default; k-means on the latent
            codes) or ``graph-ward`` (:class:`textcluster.cluster.graphward.GraphWardClusterer` on the
            input rows, 10 neighbours; centres = mean latent code of each ward cluster).
            ``graph-ward`` suits many small topics of unequal sizes.
        device: ``auto`` (CUDA, then MPS, then CPU) | ``cpu`` | ``cuda`` | ``mps``.
        progress: optional :data:`~textcluster.progress.ProgressFn` (stage ``cluster``).
        cancel: optional ``threading.Event``; checked between epochs / refreshes.

    Fitted attributes:
        labels_ (n,) int64; cluster_centers_ (k, d) float32, the mean of each cluster's
        rows of ``X`` (input space); latent_centers_ (k, latent_dim) float32;
        n_iter_ (self-training steps run); history_ (dict: ``pretrain_loss`` per epoch,
        ``kl_loss``: KL(P || Q) on all rows at the end of each refresh period (P of that
        period), ``kl_loss_start``: the same at the start of each period, ``label_change``:
        share of labels changed at each refresh, ``refresh_step``: the step of each refresh,
        ``stop_reason``: ``tol`` | ``max_iter``, ``seconds``);
        device_ (the device used).
    """

    can_mark_noise = False

    def __init__(
        self,
        k: int = 20,
        seed: int = 0,
        *,
        hidden: tuple[int, ...] = (256, 256, 512),
        latent_dim: int = 20,
        pretrain_epochs: int = 15,
        max_pretrain_steps: int = 1000,
        max_iter: int = 1000,
        update_interval: int = 100,
        tol: float = 0.001,
        batch_size: int = 256,
        lr: float = 1e-3,
        refine_lr_ratio: float = 0.1,
        alpha: float = 1.0,
        n_init: int = 10,
        init: str = "kmeans",
        device: str = "auto",
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.k = k
        self.seed = seed
        self.hidden = hidden
        self.latent_dim = latent_dim
        self.pretrain_epochs = pretrain_epochs
        self.max_pretrain_steps = max_pretrain_steps
        self.max_iter = max_iter
        self.update_interval = update_interval
        self.tol = tol
        self.batch_size = batch_size
        self.lr = lr
        self.refine_lr_ratio = refine_lr_ratio
        self.alpha = alpha
        self.n_init = n_init
        self.init = init
        self.device = device
        self.progress = progress
        self.cancel = cancel

    # ------------------------------------------------------------------ checks
    def _check_params(self, n: int) -> None:
        def positive_int(name: str, v: Any, low: int = 1) -> None:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ConfigError(f"{name}={v!r} should be an integer >= {low}")

        positive_int("k", self.k)
        positive_int("latent_dim", self.latent_dim)
        positive_int("pretrain_epochs", self.pretrain_epochs, 0)
        positive_int("max_pretrain_steps", self.max_pretrain_steps, 0)
        positive_int("max_iter", self.max_iter, 0)
        positive_int("update_interval", self.update_interval)
        positive_int("batch_size", self.batch_size)
        positive_int("n_init", self.n_init)
        if not self.hidden or any(
            not isinstance(h, (int, np.integer)) or h < 1 for h in self.hidden
        ):
            raise ConfigError(f"hidden={self.hidden!r} should be a non-empty tuple of widths >= 1")
        if not 0.0 <= self.tol < 1.0:
            raise ConfigError(f"tol={self.tol!r} should be in [0, 1)")
        if not self.lr > 0 or not self.refine_lr_ratio > 0:
            raise ConfigError(
                f"lr={self.lr!r} and refine_lr_ratio={self.refine_lr_ratio!r} should be > 0"
            )
        if not self.alpha > 0:
            raise ConfigError(f"alpha={self.alpha!r} should be > 0")
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r} should be one of {', '.join(INITS)}")
        if n < self.k:
            raise ConfigError(f"n_samples={n} should be >= k={self.k}")

    @staticmethod
    def _check_X(X: Any, d: int | None = None) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ConfigError(f"X should be a 2-D matrix (n, d); got shape {X.shape}")
        if d is not None and X.shape[1] != d:
            raise ConfigError(f"X has {X.shape[1]} columns; the clusterer was fitted on {d}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        if not np.isfinite(X).all():
            raise ConfigError("X contains NaN or infinite values")
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError("this SelfTrainingClusterer is not fitted yet: call fit(X) first")

    # ------------------------------------------------------------------ helpers
    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _encode(self, Xs: np.ndarray) -> np.ndarray:
        """Latent codes (n, latent_dim) of already scaled rows, in chunks."""
        torch = _torch()
        out = []
        self.encoder_.eval()
        with torch.no_grad():
            for i in range(0, len(Xs), _CHUNK):
                xb = torch.from_numpy(Xs[i : i + _CHUNK]).to(self.device_)
                out.append(self.encoder_(xb).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def _soft(self, Xs: np.ndarray) -> np.ndarray:
        torch = _torch()
        z = torch.from_numpy(self._encode(Xs))
        mu = torch.from_numpy(self.latent_centers_)
        return student_t(z, mu, self.alpha).numpy().astype(np.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray) -> SelfTrainingClusterer:
        """Train on ``X`` (n, d) float32 and set ``labels_``, centres and ``history_``; returns self."""
        X = self._check_X(X)
        n, d = X.shape
        self._check_params(n)
        torch = _torch()
        device = resolve_device(self.device)
        t0 = time.perf_counter()
        # Centre each feature and scale globally so the mean squared entry is 1:
        # sentence vectors have tiny entries, which makes a raw MSE vanish.
        self.mean_ = X.mean(axis=0).astype(np.float32)
        Xc = X - self.mean_
        self.scale_ = np.float32(max(float(np.sqrt((Xc**2).mean())), 1e-12))
        Xs = np.ascontiguousarray(Xc / self.scale_, dtype=np.float32)
        self.device_ = device
        self.history_: dict[str, Any] = {
            "pretrain_loss": [],
            "kl_loss": [],
            "label_change": [],
            "kl_loss_start": [],
            "refresh_step": [],
            "stop_reason": None,
        }
        with torch.random.fork_rng(devices=[]), _deterministic(device):
            torch.manual_seed(self.seed)
            gen = torch.Generator().manual_seed(self.seed)
            sizes = [d, *self.hidden, self.latent_dim]
            self.encoder_ = _mlp(sizes, last_activation=False).to(device)
            decoder = _mlp(sizes[::-1], last_activation=False).to(device)
            Xt = torch.from_numpy(Xs).to(device)
            self._pretrain(Xt, decoder, gen)
            z = self._encode(Xs)
            self._init_centers(z, X)
            self._refine(Xt, Xs, gen)
            q = self._soft(Xs)
        self.labels_ = q.argmax(axis=1).astype(np.int64)
        self.probabilities_ = q.max(axis=1).astype(np.float32)
        self.cluster_centers_ = self._input_centers(X, q)
        self.history_["seconds"] = round(time.perf_counter() - t0, 3)
        return self

    def _batches(self, n: int, gen: Any) -> Iterator[Any]:
        torch = _torch()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, self.batch_size):
            yield perm[i : i + self.batch_size]

    def _pretrain(self, Xt: Any, decoder: Any, gen: Any) -> None:
        torch = _torch()
        n = Xt.shape[0]
        per_epoch = -(-n // self.batch_size)
        epochs = min(self.pretrain_epochs, -(-self.max_pretrain_steps // per_epoch))
        params = list(self.encoder_.parameters()) + list(decoder.parameters())
        opt = torch.optim.Adam(params, lr=self.lr)
        meter = Meter("cluster", epochs, self.progress)
        self.encoder_.train()
        decoder.train()
        for epoch in range(epochs):
            check_cancel(self.cancel, "self-training")
            total = 0.0
            for idx in self._batches(n, gen):
                xb = Xt[idx.to(Xt.device)]
                loss = torch.nn.functional.mse_loss(decoder(self.encoder_(xb)), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            self.history_["pretrain_loss"].append(total / n)
            meter.update(epoch + 1, f"autoencoder epoch {epoch + 1}/{epochs}")

    def _init_centers(self, z: np.ndarray, X: np.ndarray) -> None:
        if self.init == "graph-ward":
            labels = GraphWardClusterer(self.k, self.seed).fit(X).labels_
            self.latent_centers_ = np.stack(
                [z[labels == j].mean(axis=0) for j in range(self.k)]
            ).astype(np.float32)
            self.init_labels_ = labels.astype(np.int64)
            return
        from sklearn.cluster import KMeans

        km = KMeans(self.k, n_init=self.n_init, random_state=self.seed).fit(z)
        self.latent_centers_ = km.cluster_centers_.astype(np.float32)
        self.init_labels_ = km.labels_.astype(np.int64)

    def _refine(self, Xt: Any, Xs: np.ndarray, gen: Any) -> None:
        torch = _torch()
        n = Xt.shape[0]
        mu = torch.nn.Parameter(torch.from_numpy(self.latent_centers_.copy()).to(Xt.device))
        opt = torch.optim.Adam([*self.encoder_.parameters(), mu], lr=self.lr * self.refine_lr_ratio)
        meter = Meter("cluster", self.max_iter, self.progress)
        h = self.history_
        prev = self.init_labels_
        step = 0
        p_np: np.ndarray | None = None
        p_all: Any = None
        batches: Iterator[Any] = iter(())
        while True:
            if step % self.update_interval == 0 or step == self.max_iter:
                check_cancel(self.cancel, "self-training")
                self.latent_centers_ = mu.detach().cpu().numpy().astype(np.float32)
                q = self._soft(Xs)
                labels = q.argmax(axis=1)
                if p_np is not None:
                    # The objective of the period that just ended, on all rows, at its end.
                    h["kl_loss"].append(_kl(p_np, q))
                    changed = float((labels != prev).mean())
                    h["label_change"].append(changed)
                    h["refresh_step"].append(step)
                    meter.update(step, f"refine: {changed:.2%} of labels changed")
                    if changed < self.tol:
                        h["stop_reason"] = "tol"
                        break
                if step == self.max_iter:
                    h["stop_reason"] = "max_iter"
                    break
                prev = labels
                p_np = target_distribution(q)
                h["kl_loss_start"].append(_kl(p_np, q))
                p_all = torch.from_numpy(p_np).to(Xt.device)
                self.encoder_.train()
            idx = next(batches, None)
            if idx is None:
                batches = self._batches(n, gen)
                idx = next(batches)
            idx = idx.to(Xt.device)
            qb = student_t(self.encoder_(Xt[idx]), mu, self.alpha)
            pb = p_all[idx]
            # KL(P || Q) summed over clusters, averaged over the batch.
            loss = (pb * (torch.log(pb + 1e-12) - torch.log(qb + 1e-12))).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        self.latent_centers_ = mu.detach().cpu().numpy().astype(np.float32)
        self.n_iter_ = step

    def _input_centers(self, X: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Mean of each cluster's rows of X; an empty cluster gets its most confident row."""
        centers = np.empty((self.k, X.shape[1]), dtype=np.float32)
        for j in range(self.k):
            members = self.labels_ == j
            if members.any():
                centers[j] = X[members].mean(axis=0)
            else:
                centers[j] = X[int(q[:, j].argmax())]
        return centers

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Soft assignments ``Q`` (n, k) float32 of new rows (Student's t in the latent space)."""
        self._check_fitted()
        X = self._check_X(X, len(self.mean_))
        with _deterministic(self.device_):
            return self._soft(np.ascontiguousarray(self._scale(X), dtype=np.float32))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Cluster (n,) int64 of each row: argmax of :meth:`predict_proba`.

        On the training rows this equals ``labels_`` exactly (same encoder, same centres).
        """
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    def predict_strength(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster (n,) int32 and its soft assignment (n,) float32 of each row."""
        q = self.predict_proba(X)
        return q.argmax(axis=1).astype(np.int32), q.max(axis=1).astype(np.float32)

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_


def _make(cfg: ClustererConfig, params: dict[str, Any], hooks: Hooks) -> SelfTrainingClusterer:
    return SelfTrainingClusterer(k=cfg.k, seed=cfg.seed, progress=hooks.progress, cancel=hooks.cancel, **params)


SELF_TRAINING = ClustererInfo(
    name="self-training",
    help="self-training deep clusterer (autoencoder + KL sharpening, torch); needs k",
    factory=_make,
    fields=("k",),
    params={
        "hidden": Param("ints", (256, 256, 512), "encoder layer widths (the decoder mirrors them)", low=1),
        "latent_dim": Param("int", 20, "width of the latent space", low=1),
        "pretrain_epochs": Param("int", 15, "autoencoder epochs", low=0),
        "max_pretrain_steps": Param("int", 1000, "cap on autoencoder batches", low=0),
        "max_iter": Param("int", 1000, "cap on self-training steps", low=0),
        "update_interval": Param("int", 100, "steps between two refreshes of the target", low=1),
        "tol": Param("float", 0.001, "stop when fewer than this share of labels changed", low=0, high=0.999999),
        "batch_size": Param("int", 256, "rows per step", low=1),
        "lr": Param("float", 1e-3, "Adam learning rate of the autoencoder", low=1e-12),
        "refine_lr_ratio": Param("float", 0.1, "learning rate of the refinement / lr", low=1e-12),
        "alpha": Param("float", 1.0, "degrees of freedom of the Student's t kernel", low=1e-12),
        "n_init": Param("int", 10, "k-means restarts in the latent space", low=1),
        "init": Param("str", "kmeans", "how the latent centres start", choices=INITS),
        "device": Param("str", "auto", "where torch trains", choices=("auto", "cpu", "cuda", "mps")),
    },
    assign="knn",
    has_probabilities=True,
    takes_hooks=True,
)
