"""The Ray engine: the embed stage's chunks and assign's chunks encoded on a Ray cluster.

Nothing here computes a result of its own. :func:`embed` is :func:`textcluster.embed.engine.embed`
with a chunk runner: the corpus's missing chunks go through Ray Data ``map_batches`` to a
pool of actors, each of which loads the encoder once and encodes whole chunks with
:func:`~textcluster.embed.engine.encode_chunk` (the batches the local engine makes, so the
same vectors); the driver saves each chunk as it arrives, into the same
``partial/<embedding id>/`` files, and the same code writes the artifact. A chunk already on
disk is not sent, so a killed or cancelled job resumes on either engine. :func:`assign`
ships the run's :class:`~textcluster.cluster.runs.Assigner` (centres, PCA, GMM parameters;
the embedding for k-NN runs) to the actors, which encode and label chunk by chunk as the
local :func:`~textcluster.cluster.runs.assign` does.

What travels: the texts of each chunk (driver -> object store -> actor), the encoder
settings and the model's fingerprint (each actor loads the model from its own machine and
refuses different files), the vectors or labels back. The workspace stays on the driver.

Faults: an actor that dies is restarted and its chunk redone (``MAX_RESTARTS``); an address
that cannot be reached is an :class:`~textcluster.errors.EngineError` within
``connect_timeout``; a cancel stops the actors at their next batch, keeps the finished chunks
and raises :class:`~textcluster.errors.JobCancelled`.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from textcluster.cluster import runs
from textcluster.config import EncoderConfig
from textcluster.embed import engine as embed_engine
from textcluster.embed.encoders.registry import get_encoder
from textcluster.engines import EngineConfig, split_address
from textcluster.errors import EngineError, JobCancelled, TextclusterError
from textcluster.progress import Meter, ProgressFn
from textcluster.store import Workspace, check_id

logger = logging.getLogger(__name__)

#: Times an actor that died is restarted, and a chunk it held is retried, before the job fails.
MAX_RESTARTS = 3
#: Seconds between two looks of an actor at the stop flag (one tiny remote call each).
STOP_POLL_S = 0.5
#: Seconds a cancelled job waits for its actors to stop before it disconnects from Ray.
STOP_WAIT_S = 30.0
#: Env var (tests of the retry path only): the first chunk task that finds no file at this
#: path creates it and kills its actor's process, as a crash would.
ENV_CRASH_ONCE = "TEXTCLUSTER_RAY_CRASH_ONCE"

_lock = threading.Lock()
_connected: dict[str, Any] = {}  # {"key": the EngineConfig fields this process is connected with}


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the part the engine uses)
    except ImportError as e:  # pragma: no cover - the extra is installed by `make test`
        raise EngineError(
            f"the Ray engine needs Ray Data ({e}); install it with `pip install -e '.[ray]'`"
        ) from e
    return ray


# -- connecting ------------------------------------------------------------------------

def _probe(address: str, timeout: float) -> None:
    """Check that a gRPC server (a Ray head or Ray Client server) answers at ``address``
    within ``timeout`` s: TCP connect, then the HTTP/2 preface, which a gRPC server answers
    with a SETTINGS frame. Anything else would make ``ray.init`` wait for minutes."""
    host, port = split_address(address)
    deadline = time.monotonic() + timeout
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise EngineError(
            f"cannot reach the Ray cluster at {address!r}: {e.strerror or e} "
            "(is `ray start --head` running there, and is the port open?)"
        ) from None
    head = b""
    with s:
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            while len(head) < 9:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                part = s.recv(9 - len(head))
                if not part:
                    break
                head += part
        except OSError:  # a timeout or a reset: no gRPC greeting
            pass
    if len(head) < 9 or head[3] != 0x04:
        raise EngineError(
            f"{address!r} answers, but not as a Ray head node (no gRPC greeting within {timeout:g} s); "
            "pass the address printed by `ray start --head` (GCS port, default 6379) or ray://host:10001"
        )


def _resolve_auto() -> str:
    """The address ``auto`` stands for ($RAY_ADDRESS, else the cluster `ray start` left here)."""
    try:
        from ray._private.services import get_ray_address_from_environment

        found = get_ray_address_from_environment("auto", None)
    except Exception as e:  # a private helper: fall back to a clear message
        logger.info("cannot look up the address of a local Ray cluster: %s", e)
        found = os.environ.get("RAY_ADDRESS") or None
    if not found:
        raise EngineError(
            "--ray-address auto: no Ray cluster found on this machine (start one with "
            "`ray start --head`, or pass its address, or leave the address out to start a local instance)"
        )
    return found


def connect(cfg: EngineConfig) -> dict[str, float]:
    """Connect this process to the Ray cluster of ``cfg`` (or start a local instance);
    returns the cluster's resources (``CPU``, ``GPU``, ...). Reuses the connection when
    already connected with the same settings. :class:`EngineError` within
    ``cfg.connect_timeout`` seconds when the address cannot be reached."""
    cfg.validate()
    ray = _ray()
    key = (cfg.address, cfg.num_cpus, cfg.object_store_mb)
    with _lock:
        if ray.is_initialized() and _connected.get("key") == key:
            return dict(ray.cluster_resources())
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        if cfg.address is None:
            kwargs.update(include_dashboard=False, num_cpus=cfg.num_cpus)
            if cfg.object_store_mb:
                kwargs["object_store_memory"] = cfg.object_store_mb << 20
            address = None
        else:  # checked before leaving a working connection
            address = _resolve_auto() if cfg.address == "auto" else cfg.address
            _probe(address, cfg.connect_timeout)
        if ray.is_initialized():
            ray.shutdown()
        if (release := _connected.pop("release", None)) is not None:
            release.set()
        _connected.clear()
        _init(ray, address, kwargs, cfg.connect_timeout)
        _connected["key"] = key
        res = dict(ray.cluster_resources())
        logger.info("connected to Ray (%s): %s", cfg.describe(), res)
        return res


def _init(ray: Any, address: str | None, kwargs: dict[str, Any], timeout: float) -> None:
    """``ray.init`` in a keeper thread that lives until :func:`shutdown`, with a deadline.

    Ray starts a local instance's processes with a parent-death signal, which Linux ties to
    the starting *thread*: started from a job's thread, they would die with the job. The
    deadline covers a cluster that accepts connections but never answers.
    """
    ready = threading.Event()
    box: dict[str, BaseException] = {}
    release = threading.Event()

    def keeper() -> None:
        try:
            ray.init(address=address, **kwargs)
        except BaseException as e:  # handed to the caller below
            box["error"] = e
            return
        finally:
            ready.set()
        release.wait()

    th = threading.Thread(target=keeper, name="textcluster-ray", daemon=True)
    th.start()
    ready.wait(timeout if address is not None else max(timeout, 180.0))
    where = address or "a local instance"
    if not ready.is_set():
        raise EngineError(f"Ray did not connect to {where!r} within {timeout:g} s; check the address and the cluster")
    if "error" in box:
        e = box["error"]
        raise EngineError(f"cannot start or join Ray at {where!r}: {type(e).__name__}: {e}") from None
    _connected["release"] = release


def shutdown() -> None:
    """Disconnect from Ray (stops a local instance this process started)."""
    ray = _ray()
    with _lock:
        release = _connected.pop("release", None)
        _connected.clear()
        if ray.is_initialized():
            ray.shutdown()
        if release is not None:
            release.set()


# -- actors -------------------------------------------------------------------------------

class StopFlag:
    """Set by the driver when its job is cancelled; read by the actors (a Ray actor)."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        """Ask every actor to stop at its next batch."""
        self.value = True

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self.value


class _StopView:
    """``is_set()`` of the driver's :class:`StopFlag`, looked up at most every STOP_POLL_S."""

    def __init__(self, flag: Any) -> None:
        self.flag, self.last, self.value = flag, 0.0, False

    def is_set(self) -> bool:
        if self.flag is not None and not self.value and time.monotonic() - self.last >= STOP_POLL_S:
            import ray

            self.last = time.monotonic()
            self.value = bool(ray.get(self.flag.is_set.remote()))
        return self.value


def _crash_once(marker: str | None) -> None:
    if marker and not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        os._exit(1)  # the process dies as in a crash: Ray restarts the actor and retries the chunk


class ChunkEncoder:
    """A Ray Data actor: loads the encoder once, then encodes one chunk per call.

    Input rows ``{start, end, texts}``; output rows ``{start, end, vectors (r, dim),
    truncated, seconds, device}`` (``labels`` and ``distances`` instead of the vectors
    when an :class:`~textcluster.cluster.runs.Assigner` is given).
    """

    def __init__(self, cfg: dict[str, Any], fingerprint: str, stop: Any = None,
                 assigner: runs.Assigner | None = None, crash_marker: str | None = None) -> None:
        self.cfg = EncoderConfig.from_dict(cfg)
        self.encoder, self.device = embed_engine.load_encoder(self.cfg, fingerprint)
        if self.device == "cpu":  # as many torch threads as CPUs reserved: actors do not oversubscribe
            import ray
            import torch

            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
            torch.set_num_threads(max(1, int(cpus)))
        self.stop = _StopView(stop)
        self.assigner = assigner
        self.crash_marker = crash_marker

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _crash_once(self.crash_marker)
        out: dict[str, list[Any]] = {"start": [], "end": [], "truncated": [], "seconds": [], "device": []}
        results: list[Any] = []
        for start, end, texts in zip(batch["start"], batch["end"], batch["texts"], strict=True):
            t = time.perf_counter()
            vectors, truncated = embed_engine.encode_chunk(
                self.encoder, [str(x) for x in texts], self.cfg, self.device, cancel=self.stop
            )
            results.append(vectors if self.assigner is None else self.assigner.assign(vectors))
            out["start"].append(int(start))
            out["end"].append(int(end))
            out["truncated"].append(int(truncated))
            out["seconds"].append(time.perf_counter() - t)
            out["device"].append(self.device)
        arrays = {k: np.asarray(v) for k, v in out.items()}
        if self.assigner is None:
            arrays["vectors"] = np.stack(results)  # one chunk per call: (1, r, dim)
        else:
            arrays["labels"] = np.stack([r[0] for r in results])
            arrays["distances"] = np.stack([r[1] for r in results])
        return arrays


# -- running chunks -----------------------------------------------------------------------

def _plan(res: dict[str, float], cfg: EngineConfig, enc: EncoderConfig, n_chunks: int) -> dict[str, Any]:
    """Actors and the resources of each: GPU actors when the cluster has GPUs (and the
    encoder may use them), else CPU actors."""
    gpus = int(res.get("GPU", 0))
    if gpus and enc.device in ("auto", "cuda"):
        actors, per = cfg.actors or gpus, {"num_gpus": 1, "num_cpus": 1}
    else:
        cpus = int(res.get("CPU", 1))
        actors, per = cfg.actors or max(1, cpus // cfg.cpus_per_actor), {"num_cpus": cfg.cpus_per_actor}
    return {"actors": max(1, min(actors, n_chunks)), **per}


def _rows(
    chunks: list[tuple[int, int]], texts: list[str], cls_kwargs: dict[str, Any], plan: dict[str, Any],
    cancel: threading.Event | None, tick: Callable[[], None], stop: Any,
) -> Iterator[dict[str, Any]]:
    """Run the chunks through a Ray Data actor pool; yields each output row as it arrives.

    Consumed in a helper thread so that the caller can watch ``cancel`` (and report it is
    alive through ``tick``) while the actors work.
    """
    ray = _ray()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    items = [{"start": s, "end": e, "texts": texts[s:e]} for s, e in chunks]
    ds = ray.data.from_items(items, override_num_blocks=len(items))  # one block (one call) per chunk
    with warnings.catch_warnings():  # max_restarts is only reachable through ray_remote_args
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            ChunkEncoder, batch_size=1, batch_format="numpy", fn_constructor_kwargs=cls_kwargs,
            compute=ray.data.ActorPoolStrategy(size=plan["actors"]),
            num_cpus=plan["num_cpus"], num_gpus=plan.get("num_gpus"),
            max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
        )
    q: queue.Queue[tuple[str, Any]] = queue.Queue()

    def consume() -> None:
        try:
            for row in ds.iter_rows():
                q.put(("row", row))
            q.put(("end", None))
        except BaseException as e:  # handed to the caller
            q.put(("error", e))

    th = threading.Thread(target=consume, name="textcluster-ray-data", daemon=True)
    th.start()
    stopping_since: float | None = None
    failed = False
    try:
        while True:
            if stopping_since is None and cancel is not None and cancel.is_set():
                stopping_since = time.monotonic()
                stop.set.remote()  # the actors raise JobCancelled at their next batch
            try:
                kind, item = q.get(timeout=0.25)
            except queue.Empty:
                tick()
                if stopping_since is not None and time.monotonic() - stopping_since > STOP_WAIT_S:
                    logger.warning("Ray actors did not stop within %.0f s; disconnecting", STOP_WAIT_S)
                    shutdown()
                    break
                continue
            if kind == "row":
                yield item
            elif kind == "end":
                break
            elif stopping_since is None:
                failed = True
                err = _engine_error(item)
                if isinstance(err, EngineError):  # Ray itself failed: the next call connects afresh
                    _connected.pop("key", None)
                raise err
            else:
                break
    finally:
        if stopping_since is not None or failed:
            # Ray Data drops its actors by reference counting, and a failed execution leaves
            # them in reference cycles (exception, traceback, executor): without a collection
            # the idle actors would keep their CPUs (and GPUs) until some later one.
            th.join(5.0)
            item = ds = None
            while not q.empty():
                q.get_nowait()
            gc.collect()
    if stopping_since is not None:
        raise JobCancelled("cancelled by the user; the chunks finished so far are kept")


def _engine_error(e: BaseException) -> TextclusterError:
    """A failure inside Ray as a typed error (a TextclusterError raised by an actor keeps its type)."""
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, TextclusterError):
            return cause
        inner = getattr(cause, "cause", None)
        cause = inner if isinstance(inner, BaseException) else cause.__cause__
    text = " ".join(str(e).split())
    return EngineError(f"the Ray engine failed: {type(e).__name__}: {text[:500]}")


def _crash_marker() -> str | None:
    return os.environ.get(ENV_CRASH_ONCE) or None


# -- the two front doors --------------------------------------------------------------------

def embed(
    ws: Workspace, corpus_id: str, cfg: EncoderConfig | None, engine_cfg: EngineConfig,
    progress: ProgressFn | None = None, cancel: threading.Event | None = None,
) -> embed_engine.EmbedResult:
    """:func:`textcluster.embed.engine.embed` with the missing chunks encoded on Ray.

    Same artifact id, files and row order as the local engine; vectors within float
    rounding of it (the same batches). A cache hit does not connect to Ray.
    """

    def runner(work: embed_engine.ChunkWork) -> None:
        res = connect(engine_cfg)
        plan = _plan(res, engine_cfg, work.cfg, len(work.chunks))
        stop = _ray().remote(num_cpus=0)(StopFlag).remote()
        kwargs = {"cfg": work.cfg.to_dict(), "fingerprint": work.fingerprint, "stop": stop,
                  "crash_marker": _crash_marker()}
        logger.info("embedding %d chunks on Ray with %d actors", len(work.chunks), plan["actors"])
        for row in _rows(work.chunks, work.texts, kwargs, plan, work.cancel, work.tick, stop):
            work.save(int(row["start"]), int(row["end"]), np.asarray(row["vectors"], np.float32),
                      int(row["truncated"]), float(row["seconds"]), str(row["device"]))

    return embed_engine.embed(ws, corpus_id, cfg, progress, cancel, runner=runner)


def assign(
    ws: Workspace, run_id: str, texts: list[str], engine_cfg: EngineConfig,
    progress: ProgressFn | None = None, cancel: threading.Event | None = None,
) -> runs.AssignResult:
    """:func:`textcluster.cluster.runs.assign` with the chunks encoded and labelled on Ray:
    the same labels and distances. Runs of a corpus-fitted encoder (tfidf) assign locally."""
    t0 = time.perf_counter()
    ws.manifest(check_id(run_id, "run"))
    enc = runs.encoder_config_of(ws, run_id)
    if not texts or get_encoder(enc).needs_fit:
        if texts:
            logger.info("encoder %s is fitted on its corpus: assigning on the local engine", enc.name)
        return runs.assign(ws, run_id, texts, progress=progress, cancel=cancel)
    fingerprint = get_encoder(enc).fingerprint()  # the files the local assign would use
    assigner = runs.load_assigner(ws, run_id)
    if assigner.X is not None:
        assigner.X = np.ascontiguousarray(assigner.X)  # a memory map does not travel
    n = len(texts)
    chunks = [(s, min(s + enc.chunk_rows, n)) for s in range(0, n, enc.chunk_rows)]
    meter = Meter("assign", n, progress)
    meter.update(0, "connecting to Ray")
    res = connect(engine_cfg)
    plan = _plan(res, engine_cfg, enc, len(chunks))
    stop = _ray().remote(num_cpus=0)(StopFlag).remote()
    kwargs = {"cfg": enc.to_dict(), "fingerprint": fingerprint, "stop": stop, "assigner": assigner,
              "crash_marker": _crash_marker()}
    labels = np.empty(n, np.int32)
    dist = np.empty(n, np.float32)
    done = [0]
    meter.update(0, f"{len(chunks)} chunks on {plan['actors']} Ray actors")
    for row in _rows(chunks, list(texts), kwargs, plan, cancel, lambda: meter.update(done[0]), stop):
        s, e = int(row["start"]), int(row["end"])
        labels[s:e], dist[s:e] = row["labels"], row["distances"]
        done[0] += e - s
        meter.update(done[0])
    return runs.AssignResult(run_id, labels, dist, assigner.mode, time.perf_counter() - t0)
