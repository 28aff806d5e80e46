"""Background jobs: run one pipeline call in a thread, with progress, ETA, cancel and dedupe.

A job schedules one *work* function (for a pipeline job, a call of
:func:`textcluster.pipeline.run_corpus`); it chains nothing itself. The work function
gets a progress callback, a cancel event and a stage callback: it reports each stage's
start and end (``running`` / ``done`` / ``cached`` plus the ids it produced), and the
:class:`~textcluster.progress.Progress` reports inside a stage. The job's state (status,
one entry per stage with done / total / ETA, elapsed time, result, error, device) lives
in memory and is mirrored to ``<workspace>/jobs/<job_id>.json`` (written atomically), so
a page reload, a second browser tab or another process finds the running or finished
job.

The job id is a hash of the job kind and its full config, so submitting the
same work twice while it runs (or after it finished) returns the same job
instead of computing it again. One :class:`JobManager` exists per workspace
(:func:`get_manager`); by default it runs one job at a time and queues the
others, because every stage already uses all cores. A cancelled or failed job
submitted again runs again, and its finished stages come from the cache (the
embedding resumes from the rows already on disk).

Errors become a readable message: a :class:`~textcluster.errors.TextclusterError`
keeps its text, anything else becomes ``"<Type>: <message>"``; the traceback
goes to the log only.

Typical use::

    job = submit_pipeline(ws, corpus_id, EncoderConfig(), ReducerConfig(), ClustererConfig())
    while not job.finished:
        show(job.snapshot())          # {"status": "running", "stages": [...], ...}
    job.snapshot()["result"]["run_id"]
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textcluster import pipeline
from textcluster.config import ClustererConfig, CorpusSpec, EncoderConfig, ReducerConfig
from textcluster.embed.devices import resolve_device
from textcluster.embed.encoders.registry import available_encoders, parse_name
from textcluster.engines import EngineConfig
from textcluster.errors import CorpusError, IdError, JobCancelled, StoreError, TextclusterError
from textcluster.ingest import corpus
from textcluster.progress import Progress, ProgressFn
from textcluster.store import Workspace, canonical_json, is_id, write_json_atomic

logger = logging.getLogger(__name__)

#: Job statuses. ``interrupted``: the process that ran it stopped before it finished.
STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted"})

#: Stage statuses: ``cached`` means the step found its artifact already in the workspace.
STAGE_STATUSES = ("pending", "running", "done", "cached", "failed", "cancelled")

#: Seconds between two writes of a job file caused by progress reports alone.
WRITE_EVERY_S = 0.5

#: Bumped when the job file layout changes (older files are still read).
JOB_FORMAT = 1

#: ``on_stage(stage, status, info)``: status ``running``, ``done`` or ``cached``; ``info``
#: (ids, ``device``) is merged into the job's result.
StageFn = Callable[[str, str, Mapping[str, Any]], None]
#: ``work(progress, cancel, on_stage) -> dict | None``: the one call a job runs; the
#: returned dict is merged into the job's result.
WorkFn = Callable[[ProgressFn, threading.Event, StageFn], Mapping[str, Any] | None]


#: The grammar of a job id (a hash of the job kind and config).
JOB_ID = re.compile(r"job-[0-9a-f]{16}")


def check_job_id(text: object) -> str:
    """``text`` when it is a job id (``job-<16 hex>``, nothing before or after), else :class:`IdError`."""
    if isinstance(text, str) and JOB_ID.fullmatch(text):
        return text
    shown = repr(text)[:80]
    raise IdError(f"{shown} is not a job id; job ids look like job-<16 hex digits>")


def is_job_id(text: object) -> bool:
    """True when ``text`` is a job id (see :func:`check_job_id`)."""
    return isinstance(text, str) and JOB_ID.fullmatch(text) is not None


def job_id(kind: str, config: Any) -> str:
    """``job-<16 hex>``: a hash of the job kind and the canonical JSON of its full config."""
    h = hashlib.sha256(f"job\0{kind}\0".encode())
    h.update(canonical_json(config).encode())
    return f"job-{h.hexdigest()[:16]}"


def error_message(exc: BaseException) -> str:
    """The text shown to a user for an exception: the message of a TextclusterError, else type + message."""
    if isinstance(exc, TextclusterError):
        return " ".join(str(exc).split()) or type(exc).__name__
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Job:
    """A submitted job: its state, a cancel event and (when run here) its thread.

    Read it with :meth:`snapshot` (a deep copy, safe to use from another
    thread). A job run by another process is a read-only view that reloads its
    file on every :meth:`snapshot`; :meth:`cancel` still works through a flag file.
    """

    def __init__(self, manager: JobManager, state: dict[str, Any], local: bool) -> None:
        self._manager = manager
        self._state = state
        self._local = local
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_write = 0.0
        self._done_event = threading.Event()
        if state["status"] in FINISHED:
            self._done_event.set()

    # -- reading ---------------------------------------------------------
    @property
    def id(self) -> str:
        """The job id (``job-<16 hex>``)."""
        return self._state["id"]

    @property
    def status(self) -> str:
        """One of :data:`STATUSES`."""
        return self.snapshot()["status"]

    @property
    def finished(self) -> bool:
        """True once the job is done, failed, cancelled or interrupted."""
        return self.status in FINISHED

    @property
    def result(self) -> dict[str, Any]:
        """The merged step results (artifact ids, ...); empty until steps finish."""
        return self.snapshot()["result"]

    def snapshot(self) -> dict[str, Any]:
        """A copy of the job state with ``elapsed_s`` and ``eta_s`` filled in for now.

        Keys: ``id, kind, label, config, status, created, started, finished, elapsed_s,
        eta_s, stage (the running one), stages [{name, status, done, total, fraction,
        eta_s, rate, message, elapsed_s}], result, error, device, pid, host``.
        """
        if not self._local:
            self._reload()
        with self._lock:
            s = copy.deepcopy(self._state)
        now = time.time()
        if s.get("started"):
            s["elapsed_s"] = (s.get("finished") or now) - s["started"]
        else:
            s["elapsed_s"] = 0.0
        for st in s["stages"]:
            if st.get("started"):
                st["elapsed_s"] = (st.get("finished") or now) - st["started"]
            else:
                st["elapsed_s"] = 0.0
        running = [st for st in s["stages"] if st["status"] == "running"]
        s["stage"] = running[-1]["name"] if running else None
        s["eta_s"] = running[-1].get("eta_s") if running and s["status"] == "running" else None
        return s

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job finishes (or ``timeout`` seconds pass); return a snapshot."""
        if self._local:
            self._done_event.wait(timeout)
        else:
            end = None if timeout is None else time.monotonic() + timeout
            while not self.finished and (end is None or time.monotonic() < end):
                time.sleep(0.2)
        return self.snapshot()

    # -- control ---------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop; the running stage stops at its next batch boundary.

        A queued job is cancelled at once. Has no effect on a finished job.
        """
        self._cancel.set()
        if not self._local:
            try:
                self._manager._cancel_flag(self.id).touch()
            except OSError as e:
                logger.warning("cannot write cancel flag of %s: %s", self.id, e)
            return
        with self._lock:
            if self._state["status"] == "queued":
                self._state["status"] = "cancelled"
                self._state["finished"] = time.time()
                self._state["error"] = "cancelled before it started"
                for st in self._state["stages"]:
                    st["status"] = "cancelled"
                self._done_event.set()
        self._write(force=True)

    # -- internals -------------------------------------------------------
    def _reload(self) -> None:
        state = self._manager._read(self.id)
        if state is None:
            return
        state = self._manager._check_stale(state)
        with self._lock:
            self._state = state

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < WRITE_EVERY_S:
            return
        self._last_write = now
        with self._lock:
            state = copy.deepcopy(self._state)
        state["updated"] = time.time()
        try:
            self._manager._write(state)
        except OSError as e:  # a full disk must not kill the job itself
            logger.warning("cannot write job file of %s: %s", self.id, e)

    def _stage(self, name: str, step: str | None = None) -> dict[str, Any]:
        for st in self._state["stages"]:
            if st["name"] == name:
                return st
        st = _new_stage(name)
        # A sub-stage reported by a step (e.g. "reduce" inside "cluster") goes before the
        # first stage still pending, or before the step's own entry while that has not
        # reported yet, so the list stays in the order things happen.
        idx = next(
            (
                i
                for i, s in enumerate(self._state["stages"])
                if s["status"] == "pending" or (s["name"] == step and not s["total"])
            ),
            len(self._state["stages"]),
        )
        self._state["stages"].insert(idx, st)
        return st

    def _on_progress(self, step_name: str, p: Progress) -> None:
        if self._manager._cancel_flag(self.id).exists():
            self._cancel.set()
        with self._lock:
            name = p.stage or step_name
            st = self._stage(name, step_name)
            now = time.time()
            if st["status"] == "pending":
                st["status"] = "running"
                st["started"] = now
            st.update(
                done=int(p.done),
                total=int(p.total),
                fraction=p.fraction,
                rate=float(p.rate),
                eta_s=None if p.eta_s is None else float(p.eta_s),
                message=p.message,
            )
            if name != step_name and p.total and p.done >= p.total:
                st["status"] = "done"
                st["finished"] = now
                st["eta_s"] = 0.0
            elif name != step_name:
                # Earlier sub-stages of this step are over once a later one reports.
                for other in self._state["stages"]:
                    if other is not st and other["status"] == "running" and other.get(
                        "step"
                    ) == step_name and other["name"] != step_name:
                        other.update(status="done", finished=now, fraction=1.0, eta_s=0.0)
                st["step"] = step_name
        self._write()

    def _run(self, work: WorkFn, sem: threading.Semaphore) -> None:
        while not sem.acquire(timeout=0.2):
            if self._cancel.is_set() or self.finished:
                return
        try:
            if self.finished:  # cancelled while queued
                return
            self._run_work(work)
        finally:
            sem.release()
            self._done_event.set()

    def _on_stage(self, name: str, status: str, info: Mapping[str, Any]) -> None:
        """A stage started (``running``) or ended (``done`` / ``cached``, with its ids)."""
        if status == "running" and (self._cancel.is_set() or self._manager._cancel_flag(self.id).exists()):
            raise JobCancelled(f"job cancelled before {name}")
        with self._lock:
            now = time.time()
            st = self._stage(name)
            if status == "running":
                self._current = name
                st.update(status="running", started=now, step=name)
            else:
                for other in self._state["stages"]:
                    if other.get("step") == name and other["status"] == "running":
                        other.update(status="done", finished=now, fraction=1.0, eta_s=0.0)
                st.update(
                    status="cached" if status == "cached" else "done",
                    started=st.get("started") or now,
                    finished=now,
                    fraction=1.0,
                    eta_s=0.0,
                    message="",  # the last note ("writing") is stale once the stage is over
                )
                self._merge(info)
        self._write(force=True)

    def _merge(self, info: Mapping[str, Any]) -> None:
        if info.get("device"):
            self._state["device"] = info["device"]
        self._state["result"].update({k: v for k, v in info.items() if k != "cached"})

    def _run_work(self, work: WorkFn) -> None:
        with self._lock:
            self._state["status"] = "running"
            self._state["started"] = time.time()
        self._write(force=True)
        self._current: str | None = None
        try:
            if self._cancel.is_set() or self._manager._cancel_flag(self.id).exists():
                raise JobCancelled("job cancelled before it started")

            def progress(p: Progress) -> None:
                self._on_progress(self._current or p.stage, p)

            out = work(progress, self._cancel, self._on_stage)
            with self._lock:
                self._merge(dict(out or {}))
            self._finish("done", None, None)
        except JobCancelled as e:
            self._finish("cancelled", self._current, error_message(e))
        except Exception as e:
            if isinstance(e, TextclusterError):
                logger.info("job %s failed in %s: %s", self.id, self._current, e)
            else:
                logger.exception("job %s failed in %s", self.id, self._current)
            self._finish("failed", self._current, error_message(e))

    def _finish(self, status: str, stage: str | None, error: str | None) -> None:
        with self._lock:
            now = time.time()
            self._state.update(status=status, finished=now, error=error)
            for st in self._state["stages"]:
                if st["status"] == "running":
                    st["status"] = "failed" if status == "failed" else "cancelled"
                    st["finished"] = now
                    if stage and status == "failed":
                        st["message"] = error or ""
                elif st["status"] == "pending" and status != "done":
                    st["status"] = "cancelled" if status == "cancelled" else "pending"
        self._write(force=True)
        with contextlib.suppress(OSError):
            self._manager._cancel_flag(self.id).unlink(missing_ok=True)


def _new_stage(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": "pending",
        "done": 0,
        "total": 0,
        "fraction": 0.0,
        "rate": 0.0,
        "eta_s": None,
        "message": "",
        "started": None,
        "finished": None,
    }


class JobManager:
    """Submits, dedupes, lists and finds the jobs of one workspace.

    Use :func:`get_manager` rather than building one: one manager per workspace
    per process is what makes identical submissions share one computation.

    Parameters
    ----------
    ws: the workspace whose ``jobs/`` folder holds the job files.
    max_running: jobs of one lane run at the same time (others wait as ``queued``).
        Lanes keep short jobs (``ingest``) from waiting behind long ones (``pipeline``).
    """

    def __init__(self, ws: Workspace, max_running: int = 1) -> None:
        if max_running < 1:
            raise ValueError(f"max_running={max_running} should be >= 1")
        self.ws = ws
        self.dir = Path(ws.root) / "jobs"
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._max_running = max_running
        self._lanes: dict[str, threading.Semaphore] = {}

    def __repr__(self) -> str:
        return f"JobManager({str(self.ws.root)!r})"

    # -- public ----------------------------------------------------------
    def submit(
        self,
        kind: str,
        config: Mapping[str, Any],
        work: WorkFn,
        *,
        stages: Sequence[str] = (),
        label: str = "",
        device: str | None = None,
        lane: str = "compute",
    ) -> Job:
        """Start a job, or return the identical one already running or finished.

        kind: a short name (``pipeline``, ``ingest``, ...); config: everything that
        defines the work (hashed into the job id, so it must be JSON-able);
        work: the one call the job runs (see :data:`WorkFn`); stages: the stage names it
        will report, shown as pending until they start; label: a short human description;
        device: where it runs, when known before it starts (a stage may update it).
        lane: jobs of the same lane queue behind each other (``max_running`` at a time).
        A job that failed, was cancelled or interrupted is run again; a done job
        is returned as is while the artifacts its result names still exist.
        """
        jid = job_id(kind, config)
        with self._lock:
            known = self.get(jid)
            if known is not None and self._reusable(known):
                return known
            state = {
                "id": jid,
                "format": JOB_FORMAT,
                "kind": kind,
                "label": label,
                "config": _jsonable(config),
                "status": "queued",
                "created": time.time(),
                "started": None,
                "finished": None,
                "stages": [_new_stage(name) for name in stages],
                "result": {},
                "error": None,
                "device": device,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
            if self.dir.is_dir():
                self._cancel_flag(jid).unlink(missing_ok=True)
            job = Job(self, state, local=True)
            self._jobs[jid] = job
            job._write(force=True)
            slots = self._lanes.setdefault(lane, threading.Semaphore(self._max_running))
            t = threading.Thread(
                target=job._run, args=(work, slots), name=f"textcluster-{jid}", daemon=True
            )
            job._thread = t
            t.start()
            logger.info("submitted %s (%s)", jid, label or kind)
            return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id (running here, or read from its file), or None.

        An id that is not a job id (say, tampered session state) is :class:`IdError`.
        """
        check_job_id(job_id)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return job
            state = self._read(job_id)
            if state is None:
                return None
            state = self._check_stale(state)
            local = state.get("pid") == os.getpid() and state.get("host") == socket.gethostname()
            # A file from this very process but not in memory was left by an earlier manager
            # (its status is final after _check_stale): treat it as a finished, local record.
            return Job(self, state, local=local or state["status"] in FINISHED)

    def list(self, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Snapshots of the jobs in this workspace, newest first (optionally of one kind)."""
        ids: set[str] = set()
        if self.dir.is_dir():
            ids.update(p.stem for p in self.dir.glob("job-*.json"))
        with self._lock:
            ids.update(self._jobs)
        out = []
        for jid in ids:
            job = self.get(jid)
            if job is None:
                continue
            snap = job.snapshot()
            if kind is None or snap["kind"] == kind:
                out.append(snap)
        out.sort(key=lambda s: s.get("created") or 0, reverse=True)
        return out[:limit]

    def active(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Snapshots of the queued and running jobs, newest first."""
        return [s for s in self.list(kind) if s["status"] not in FINISHED]

    def latest(self, kind: str | None = None) -> Job | None:
        """The newest job (of a kind), running or not; None when there is none."""
        snaps = self.list(kind, limit=1)
        return self.get(snaps[0]["id"]) if snaps else None

    # -- internals -------------------------------------------------------
    def _path(self, jid: str) -> Path:
        return self.dir / f"{jid}.json"

    def _cancel_flag(self, jid: str) -> Path:
        return self.dir / f"{jid}.cancel"

    def _read(self, jid: str) -> dict[str, Any] | None:


        p = self._path(jid)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            logger.warning("skipping unreadable job file %s: %s", p, e)
            return None

    def _write(self, state: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self._path(state["id"]), state)

    def _check_stale(self, state: dict[str, Any]) -> dict[str, Any]:
        """Mark a queued/running job whose process is gone as ``interrupted``."""
        if state.get("status") in FINISHED:
            return state
        same_host = state.get("host") == socket.gethostname()
        pid = int(state.get("pid") or -1)
        if same_host:
            gone = not _pid_alive(pid) or (pid == os.getpid() and state["id"] not in self._jobs)
        else:  # cannot see the other machine's processes: trust a recent heartbeat
            gone = time.time() - float(state.get("updated") or 0) > 3600
        if not gone:
            return state
        state = dict(state)
        state.update(
            status="interrupted",
            finished=state.get("updated") or time.time(),
            error="the process running this job stopped before it finished (was the app "
            "restarted?); submit it again: finished stages come from the cache",
        )
        for st in state.get("stages", []):
            if st.get("status") in ("running", "pending"):
                st["status"] = "cancelled"
        with contextlib.suppress(OSError):
            self._write(state)
        return state

    def _reusable(self, job: Job) -> bool:
        snap = job.snapshot()
        if snap["status"] in ("queued", "running"):
            return True
        if snap["status"] != "done":
            return False
        for v in snap["result"].values():
            if isinstance(v, str) and is_id(v):
                try:
                    if not self.ws.exists(v):
                        return False
                except StoreError:
                    return False
        return True


def _jsonable(obj: Any) -> Any:


    return json.loads(canonical_json(obj))


_MANAGERS: dict[str, JobManager] = {}
_MANAGERS_LOCK = threading.Lock()


def get_manager(ws: Workspace | str | os.PathLike[str]) -> JobManager:
    """The process-wide :class:`JobManager` of a workspace (created on first use)."""
    if not isinstance(ws, Workspace):
        ws = Workspace(ws)
    key = str(Path(ws.root).resolve())
    with _MANAGERS_LOCK:
        mgr = _MANAGERS.get(key)
        if mgr is None:
            mgr = _MANAGERS[key] = JobManager(ws)
        return mgr


# -- the pipeline job: embed -> cluster (reduce inside) -> describe ---------------------


def pipeline_config(
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    top_n: int = 10,
) -> dict[str, Any]:
    """The full config of a pipeline job (hashed into its job id)."""
    return {
        "corpus_id": corpus_id,
        "encoder": encoder.to_dict(),
        "reducer": reducer.to_dict(),
        "clusterer": clusterer.to_dict(),
        "describe": {"top_n": top_n},
    }


def submit_pipeline(
    ws: Workspace,
    corpus_id: str,
    encoder: EncoderConfig,
    reducer: ReducerConfig,
    clusterer: ClustererConfig,
    top_n: int = pipeline.DEFAULT_TOP_N,
    manager: JobManager | None = None,
    engine: EngineConfig | None = None,
) -> Job:
    """Run :func:`textcluster.pipeline.run_corpus` (embed -> cluster -> describe) in the
    background; returns the :class:`Job`.

    ``engine``: where the embed stage runs (default local; a Ray engine is part of the job's
    config, not of any artifact id: its results are the local engine's).

    Stages whose artifacts are already in the workspace finish at once (marked
    ``cached``). The same corpus and configs submitted again return the same job.
    Settings are validated here, so an impossible one raises
    :class:`~textcluster.errors.ConfigError` before anything starts. Results:
    ``embedding_id``, ``run_id``, ``description_id`` and ``device``.
    """
    pipeline.validate(None, encoder, reducer, clusterer)
    if not ws.exists(corpus_id):
        ws.manifest(corpus_id)  # raises StoreError naming the known corpora
    mgr = manager or get_manager(ws)
    cfg = pipeline_config(corpus_id, encoder, reducer, clusterer, top_n)
    remote = engine is not None and not engine.validate().is_local
    if remote:  # only then: the local jobs keep their ids
        cfg["engine"] = engine.to_dict()

    def work(progress: ProgressFn, cancel: threading.Event, on_stage: StageFn) -> dict[str, Any]:
        pipeline.run_corpus(ws, corpus_id, encoder, reducer, clusterer, describe_top_n=top_n,
                            progress=progress, cancel=cancel, on_stage=on_stage, engine_cfg=engine)
        return {}

    label = f"{encoder.name} · {reducer.method} · {clusterer.method}" + (" · ray" if remote else "")
    return mgr.submit(
        "pipeline",
        cfg,
        work,
        stages=pipeline.stages(from_file=False, describe=True),
        label=label,
        device="ray" if remote else expected_device(encoder),
    )


def expected_device(encoder: EncoderConfig) -> str:
    """Where the embedding stage will run: ``cpu`` for encoders without a neural model,
    else the device :func:`textcluster.embed.devices.resolve_device` picks for ``encoder.device``."""
    key, _ = parse_name(encoder.name)
    info = {i.name.split(":", 1)[0]: i for i in available_encoders()}.get(key)
    if info is not None and not info.needs_model:
        return "cpu"
    return resolve_device(encoder.device)


# -- the ingest job ---------------------------------------------------------------------


def submit_ingest(
    ws: Workspace,
    path: str | os.PathLike[str],
    spec: CorpusSpec,
    manager: JobManager | None = None,
) -> Job:
    """Ingest a file into a corpus in the background; returns the :class:`Job`.

    The job's result holds ``corpus_id``; an already ingested file with the same
    spec finishes at once (stage ``cached``). The job id hashes the file's path,
    size and modification time with the spec, so the same upload submitted twice
    shares one job.
    """
    spec.validate()
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise CorpusError(f"cannot read {str(p)!r}: {e.strerror or e}") from e
    cfg = {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "spec": spec.to_dict()}

    def work(progress: ProgressFn, cancel: threading.Event, on_stage: StageFn) -> dict[str, Any]:
        on_stage("ingest", "running", {})
        r = corpus.ingest(p, spec, ws, progress=progress, cancel=cancel)
        on_stage("ingest", "cached" if r.cached else "done", {"corpus_id": r.corpus_id})
        return {}

    mgr = manager or get_manager(ws)
    return mgr.submit("ingest", cfg, work, stages=["ingest"], label=p.name, device="cpu", lane="io")
