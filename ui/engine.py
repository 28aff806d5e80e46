"""The engine picker of the Pipeline page: offered only when a Ray address is configured
(``$TEXTCLUSTER_RAY_ADDRESS``: ``auto``, ``ray://host:port`` or ``host:port``); otherwise
every job runs on the local engine and nothing is shown."""

from __future__ import annotations

import streamlit as st

from textcluster.engines import ENV_RAY_ADDRESS, EngineConfig, configured_ray_address
from textcluster.errors import ConfigError
from ui.text import md


def engine_picker(key: str = "pipe_engine") -> EngineConfig | None:
    """A local / Ray choice when ``$TEXTCLUSTER_RAY_ADDRESS`` is set; returns the Ray
    :class:`EngineConfig` when chosen, else None (the local engine)."""
    address = configured_ray_address()
    if address is None:
        return None
    try:
        cfg = EngineConfig(name="ray", address=address).validate()
    except ConfigError as e:
        st.warning(md(f"{ENV_RAY_ADDRESS}: {e}"), icon=":material/warning:")
        return None
    choice = st.radio(
        "Engine", ["local", "ray"], horizontal=True, key=key,
        help="Where the embedding stage runs. ray: the chunks are encoded by actors of the Ray "
        "cluster (one per GPU, else one per CPU); the embedding, its id and every later result are "
        "the same as on the local engine. Progress and cancel work alike.",
    )
    if choice != "ray":
        return None
    st.caption(md(f"Ray cluster: {address} (from {ENV_RAY_ADDRESS})"))
    return cfg
