"""Cached loaders for the pages: ``st.cache_data`` keyed by (workspace root, artifact id).

Artifacts never change once written (their id is a hash of their inputs), so a
cache entry keyed by the id is never stale. Models are not loaded here: the
encoders keep their own per-process model cache, and the app never needs a
model outside a job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from textcluster.cluster import maps
from textcluster.store import Manifest, Workspace

#: Above this many points the scatter draws a stratified subset per cluster.
MAX_SCATTER_POINTS = 50_000


@st.cache_data(show_spinner=False, max_entries=64)
def manifest(root: str, artifact_id: str) -> Manifest:
    """The typed manifest of an artifact (a frozen dataclass: ``st.cache_data`` pickles it)."""
    return Workspace(root).manifest(artifact_id)


@st.cache_data(show_spinner="Loading documents…", max_entries=4)
def docs(root: str, corpus_id: str, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """``docs.parquet`` of a corpus (all columns, or only ``columns``)."""
    from textcluster.ingest import corpus

    return corpus.load_docs(Workspace(root), corpus_id, columns=list(columns) if columns else None)


@st.cache_data(show_spinner=False, max_entries=8)
def run_array(root: str, run_id: str, name: str) -> np.ndarray | None:
    """One ``.npy`` file of a run, fully read (None when the run does not have it)."""
    ws = Workspace(root)
    p = ws.path(run_id) / name
    if not p.is_file():
        return None
    return np.load(p)


def run_map(root: str, run_id: str) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The run's 2-D map and ``{"method", "final"}`` (:func:`textcluster.cluster.maps.load_map`):
    not cached here, since the final map replaces the provisional one when its job finishes
    (reading n x 2 floats is fast). ``(None, {})`` when the run has no map."""
    try:
        return maps.load_map(Workspace(root), run_id)
    except (OSError, ValueError):
        return None, {}


@st.cache_data(show_spinner=False, max_entries=8)
def run_clusters(root: str, run_id: str) -> pd.DataFrame:
    """``clusters.parquet`` of a run: cluster, size, share, medoid_doc_id."""
    return pd.read_parquet(Workspace(root).file(run_id, "clusters.parquet"))


@st.cache_data(show_spinner="Describing clusters…", max_entries=8)
def description(root: str, run_id: str, top_n: int = 10, examples: int = 5) -> dict[str, Any]:
    """Keywords, labels and examples of every cluster (computed once, then from the workspace)."""
    from textcluster.describe import clusters as describe

    return describe.describe(Workspace(root), run_id, top_n=top_n, examples=examples).to_dict()


@st.cache_data(show_spinner=False, max_entries=8)
def scatter_rows(root: str, run_id: str, max_points: int = MAX_SCATTER_POINTS) -> np.ndarray:
    """Rows of a run the scatter draws: :func:`textcluster.describe.sampling.stratified_subset`."""
    from textcluster.describe.sampling import stratified_subset

    return stratified_subset(run_array(root, run_id, "labels.npy"), max_points)


@st.cache_data(show_spinner=False, max_entries=64)
def corpus_of(root: str, run_id: str) -> str:
    """The corpus id behind a run (walking up its parents)."""
    return Workspace(root).corpus_of(run_id)


@st.cache_data(show_spinner=False, max_entries=64)
def corpus_columns(root: str, corpus_id: str) -> list[str]:
    """Column names of a corpus's ``docs.parquet`` (the label fields a run can be scored against)."""
    from textcluster.cluster.evaluate import corpus_columns as columns

    return columns(Workspace(root), corpus_id)


@st.cache_data(show_spinner="Scoring…", max_entries=16)
def evaluation(root: str, run_id: str, label_field: str | None = None) -> dict[str, Any]:
    """``evaluate_run(..., label_field=...).to_dict()``: scores against labels, diagnostics, sizes, cluster x label."""
    from textcluster.cluster.evaluate import evaluate_run

    return evaluate_run(Workspace(root), run_id, label_field=label_field).to_dict()
