"""Device choice, thread count and out-of-memory recognition."""

from __future__ import annotations

import os

import pytest

from textcluster.embed import devices
from textcluster.errors import ConfigError


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert devices.resolve_device("auto") == "cuda"
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    assert devices.resolve_device("auto") == "mps"
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.resolve_device("auto") == "cpu"
    assert devices.resolve_device("cpu") == "cpu"


def test_missing_or_unknown_device_is_a_config_error(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match=r"device='cuda' was asked for, but torch sees no CUDA GPU"):
        devices.resolve_device("cuda")
    with pytest.raises(ConfigError, match=r"device='tpu' should be one of auto, cpu, cuda, mps"):
        devices.resolve_device("tpu")


def test_cores_follow_the_affinity_mask():
    assert devices.available_cores() == len(os.sched_getaffinity(0))


def test_threads_left_alone_when_omp_is_set(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert devices.configure_torch_threads() == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    try:
        assert devices.configure_torch_threads() == devices.available_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_cpu_computes_in_float32():
    import torch

    assert devices.torch_dtype("cpu") == torch.float32
    assert devices.torch_dtype("mps") == torch.float16


def test_oom_recognised():
    import torch

    assert devices.is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert devices.is_oom(RuntimeError("MPS backend out of memory"))
    assert not devices.is_oom(RuntimeError("shape mismatch"))
    assert not devices.is_oom(ValueError("out of memory"))
