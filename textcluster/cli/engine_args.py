"""``--engine`` and ``--ray-address`` (and the Ray sizing flags), shared by ``embed``,
``assign`` and ``run``: where the embedding and assignment work runs. Results and artifact
ids are the same on every engine."""

from __future__ import annotations

import argparse

from textcluster.cli import positive_int, seconds
from textcluster.engines import DEFAULT_CONNECT_TIMEOUT, ENGINES, EngineConfig, check_address
from textcluster.errors import ConfigError


def ray_address(text: str) -> str:
    """An argparse ``type=``: ``auto``, ``ray://host:port`` or ``host:port``."""
    try:
        return check_address(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_engine_options(p: argparse.ArgumentParser, what: str) -> None:
    """Add the engine flags to a subcommand; ``what`` names the work that moves."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help=f"where {what} runs: local (this process, default) or ray (a Ray cluster; "
                        "the same results and ids)")
    g.add_argument("--ray-address", type=ray_address, default=None, metavar="ADDRESS",
                   help="with --engine ray: auto (the cluster `ray start` made on this machine), "
                        "ray://host:port or host:port (default: start a local Ray instance)")
    g.add_argument("--ray-actors", type=positive_int, default=None, metavar="N",
                   help="encoder actors (default: one per GPU, else one per CPU of the cluster)")
    g.add_argument("--ray-cpus", type=positive_int, default=None, metavar="N",
                   help="CPUs of a local Ray instance (default: all cores)")
    g.add_argument("--ray-timeout", type=seconds, default=DEFAULT_CONNECT_TIMEOUT, metavar="S",
                   help=f"seconds allowed to reach a Ray cluster (default {DEFAULT_CONNECT_TIMEOUT:g})")


def engine_from_args(args: argparse.Namespace) -> EngineConfig:
    """The :class:`EngineConfig` the command line asks for; the Ray flags need ``--engine ray``."""
    if args.engine == "local":
        given = [f for f, v in (("--ray-address", args.ray_address), ("--ray-actors", args.ray_actors),
                                ("--ray-cpus", args.ray_cpus)) if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} applies to --engine ray only (got --engine local)")
    return EngineConfig(
        name=args.engine, address=args.ray_address, actors=args.ray_actors, num_cpus=args.ray_cpus,
        connect_timeout=args.ray_timeout,
    ).validate()
