"""Progress reports and cancellation shared by every long stage.

A stage takes ``progress: ProgressFn | None`` and ``cancel: threading.Event | None``.
It calls ``progress(Progress(...))`` now and then, and calls :func:`check_cancel`
between batches, which raises :class:`~textcluster.errors.JobCancelled` once the
event is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textcluster.errors import JobCancelled


@dataclass(frozen=True)
class Progress:
    """One progress report.

    stage: ``ingest`` | ``embed`` | ``reduce`` | ``cluster`` | ``project`` | ...
    done / total: units finished and expected (rows, or steps); total 0 when unknown.
    rate: units per second so far; eta_s: seconds left (None when unknown).
    message: a short human note ("loading model", "compiling UMAP (first call)").
    """

    stage: str
    done: int
    total: int
    rate: float = 0.0
    eta_s: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """done / total clipped to [0, 1] (0 when total is unknown)."""
        return min(1.0, self.done / self.total) if self.total else 0.0


ProgressFn = Callable[[Progress], None]


def check_cancel(cancel: threading.Event | None, stage: str = "") -> None:
    """Raise :class:`JobCancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise JobCancelled(f"{stage or 'job'} cancelled by the user")


class Meter:
    """Turns (done, total) updates into :class:`Progress` reports with rate and ETA.

    ``estimate=False`` is for stages counted in a few unequal steps (fit, then a 2-D map
    that may take a hundred times longer): their rate says nothing about the time left,
    so no ETA is reported rather than a wrong one.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        progress: ProgressFn | None,
        start_done: int = 0,
        estimate: bool = True,
    ):
        self.stage, self.total, self.progress = stage, total, progress
        self.t0 = time.perf_counter()
        self.start_done = start_done
        self.estimate = estimate

    def update(self, done: int, message: str = "") -> None:
        """Report ``done`` units finished (a no-op without a callback)."""
        if self.progress is None:
            return
        dt = time.perf_counter() - self.t0
        fresh = done - self.start_done
        rate = fresh / dt if dt > 0 and fresh > 0 else 0.0
        eta = (self.total - done) / rate if self.estimate and rate > 0 and self.total else None
        self.progress(Progress(self.stage, done, self.total, rate, eta, message))
