"""Device choice for the encoders: ``auto`` -> cuda, then mps, then cpu.

Also the number of CPU cores this process may use (``os.sched_getaffinity``,
which respects container and ``taskset`` limits, unlike ``os.cpu_count``),
the torch dtype that fits a device, and how to recognise a GPU out-of-memory
error. torch is imported lazily, inside the functions.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from textcluster.errors import ConfigError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")


def available_cores() -> int:
    """CPU cores this process may run on (>= 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def mps_available() -> bool:
    """True when torch sees an Apple GPU (MPS)."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str = "auto") -> str:
    """Turn ``auto|cpu|cuda|mps`` (or ``cuda:1``) into a device torch can use.

    ``auto`` picks cuda, then mps, then cpu. Asking for a device that is not
    there raises :class:`ConfigError` naming it.
    """
    if device == "auto":
        if cuda_available():
            return "cuda"
        if mps_available():
            return "mps"
        return "cpu"
    base = device.split(":", 1)[0]
    if base not in DEVICES:
        raise ConfigError(f"device={device!r} should be one of {', '.join(DEVICES)}")
    if base == "cuda" and not cuda_available():
        raise ConfigError(f"device={device!r} was asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    if base == "mps" and not mps_available():
        raise ConfigError(f"device={device!r} was asked for, but torch sees no Apple GPU; use --device cpu or auto")
    return device


def torch_dtype(device: str) -> Any:
    """The compute dtype for a device: bfloat16 on CUDA GPUs that support it, else
    float16 on GPUs, float32 on CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def configure_torch_threads() -> int:
    """Set torch's intra-op threads to the cores available and return the number.

    Left alone when ``OMP_NUM_THREADS`` is set: the user chose.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
        logger.info("torch threads set to %d (cores available)", n)
    return n


def is_oom(exc: BaseException) -> bool:
    """True for a GPU (CUDA or MPS) out-of-memory error."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def empty_cache(device: str) -> None:
    """Give cached GPU memory back after an out-of-memory error."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    elif device.startswith("mps") and hasattr(torch, "mps"):
        torch.mps.empty_cache()
