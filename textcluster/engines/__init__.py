"""Engines: where the heavy stages run. ``local`` (this process, the default) or ``ray``
(a Ray cluster, :mod:`textcluster.engines.ray_engine`).

An engine is a setting of the one pipeline (:mod:`textcluster.pipeline`), never part of an
artifact id: the same corpus and encoder give the same embedding id, files and vectors on
either engine, and a chunk encoded by one is reused by the other when a job resumes.
This module imports nothing heavy; Ray is imported only when the Ray engine runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from textcluster.errors import ConfigError

#: The engines a pipeline call can run on.
ENGINES = ("local", "ray")
#: Env var with a Ray address the app offers (``auto``, ``ray://host:port`` or ``host:port``).
ENV_RAY_ADDRESS = "TEXTCLUSTER_RAY_ADDRESS"
#: Seconds to reach an existing Ray cluster before giving up with an EngineError.
DEFAULT_CONNECT_TIMEOUT = 30.0

_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class EngineConfig:
    """Where embedding and assignment run (none of it changes a result or an id).

    name: ``local`` (this process) or ``ray``.
    address: Ray only. None starts a local Ray instance in this process (``num_cpus``,
        ``object_store_mb``); ``auto`` joins the cluster this machine is part of
        (``ray start``); ``ray://host:port`` (Ray Client) or ``host:port`` (a head node's GCS).
    actors: encoder actors (None: one per GPU when the cluster has GPUs and the encoder
        may use them, else the cluster's CPUs / ``cpus_per_actor``; never more than chunks).
    cpus_per_actor: CPUs reserved by each CPU actor (torch threads in it); default 1.
    num_cpus / object_store_mb: size of a local instance (None: Ray's defaults, all cores
        and 30 % of memory); ignored when joining a cluster.
    connect_timeout: seconds allowed to reach a cluster (default 30); past it, an
        :class:`~textcluster.errors.EngineError`.
    """

    name: Literal["local", "ray"] = "local"
    address: str | None = None
    actors: int | None = None
    cpus_per_actor: int = 1
    num_cpus: int | None = None
    object_store_mb: int | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    def validate(self) -> EngineConfig:
        """Check every field; :class:`ConfigError` names the value received."""
        if self.name not in ENGINES:
            raise ConfigError(f"engine={self.name!r} should be one of {', '.join(ENGINES)}")
        if self.address is not None:
            check_address(self.address)
        for key in ("actors", "num_cpus", "object_store_mb"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"{key}={v!r} should be a whole number >= 1 (or None)")
        if not isinstance(self.cpus_per_actor, int) or self.cpus_per_actor < 1:
            raise ConfigError(f"cpus_per_actor={self.cpus_per_actor!r} should be a whole number >= 1")
        if not (0 < self.connect_timeout <= 3600):
            raise ConfigError(f"connect_timeout={self.connect_timeout!r} should be in (0, 3600] seconds")
        return self

    @property
    def is_local(self) -> bool:
        """True when everything runs in this process (no Ray)."""
        return self.name == "local"

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and job labels: ``local`` or ``ray (address)``."""
        return "local" if self.is_local else f"ray ({self.address or 'local instance'})"


def check_address(address: str) -> str:
    """Return a Ray address if it is ``auto``, ``ray://host:port`` or ``host:port``; else
    :class:`ConfigError` naming it."""
    if address == "auto":
        return address
    m = _ADDRESS.match(address)
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ConfigError(
            f"Ray address {address!r} should be auto, ray://host:port or host:port (e.g. 10.0.0.5:6379)"
        )
    return address


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of a ``ray://host:port`` or ``host:port`` address."""
    m = _ADDRESS.match(check_address(address))
    if m is None:
        raise ConfigError(f"Ray address {address!r} has no host:port")
    return m.group(2).strip("[]"), int(m.group(3))


def configured_ray_address() -> str | None:
    """The Ray address in ``$TEXTCLUSTER_RAY_ADDRESS`` (None when unset or empty)."""
    return os.environ.get(ENV_RAY_ADDRESS, "").strip() or None


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "ENGINES", "ENV_RAY_ADDRESS", "EngineConfig", "check_address",
    "configured_ray_address", "split_address",
]
