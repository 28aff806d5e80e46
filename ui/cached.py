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
#: A metadata column colours the map as categories when it has at most this many values.
MAX_CATEGORIES = 40


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


@st.cache_data(show_spinner=False, max_entries=64)
def run_has(root: str, run_id: str, name: str) -> bool:
    """Whether a run has the file ``name``."""
    return (Workspace(root).path(run_id) / name).is_file()


@st.cache_data(show_spinner=False, max_entries=8)
def center_order(root: str, run_id: str) -> np.ndarray | None:
    """:func:`ui.map.order_by_linkage` of the run's centre distances (None without centres)."""
    from ui.map import order_by_linkage

    pair = run_array(root, run_id, "center_pairwise_distance.npy")
    return None if pair is None or pair.size == 0 else order_by_linkage(pair)


@st.cache_data(show_spinner=False, max_entries=8)
def cluster_colors(root: str, run_id: str) -> dict[int, str]:
    """A colour per cluster id of a run (:func:`ui.map.cluster_palette`; noise is grey).

    Centre ``i`` of ``center_pairwise_distance.npy`` is cluster ``i``."""
    from ui.map import NOISE_COLOR, cluster_palette

    labels = run_array(root, run_id, "labels.npy")
    clusters = [int(c) for c in np.unique(labels) if c >= 0]
    pair = run_array(root, run_id, "center_pairwise_distance.npy")
    k = max(clusters, default=-1) + 1
    if pair is not None and pair.ndim == 2 and pair.shape[0] >= k:
        palette = cluster_palette(pair, pair.shape[0])
    else:
        palette = cluster_palette(None, k)
    out = {c: palette[c] for c in clusters}
    out[-1] = NOISE_COLOR
    return out


@st.cache_data(show_spinner=False, max_entries=4)
def hover_texts(root: str, corpus_id: str, chars: int) -> list[str]:
    """Every text of a corpus trimmed to ``chars`` characters (``…`` when cut), HTML-escaped
    (Plotly renders hover text as HTML), in doc id order."""
    from ui.map import html_escape

    out = []
    for t in docs(root, corpus_id, ("doc_id", "text"))["text"].tolist():
        t = "" if t is None else str(t)
        out.append(html_escape(t if len(t) <= chars else t[: chars - 1] + "…"))
    return out


@st.cache_data(show_spinner=False, max_entries=8)
def colour_values(root: str, run_id: str, source: str) -> tuple[np.ndarray, list[str] | None, str]:
    """Per-row values the map is coloured by: (values, categories or None, title).

    ``source``: ``score:<file>`` (a per-row ``.npy`` of the run: a continuous scale) or
    ``column:<name>`` (a corpus column: categories when it has at most
    :data:`MAX_CATEGORIES` values, the most frequent ones then "other"; else numbers) or
    ``tag:<name>@<version>`` (a tag of the corpus, :mod:`textcluster.query.tags`: categories
    "untagged" and the tag; ``version``, a digest of the tag's doc ids, keys the cache)."""
    if source.startswith("tag:"):
        from textcluster.query.tags import load_tags
        from ui.map import tag_codes

        name = source[len("tag:"):].rsplit("@", 1)[0]
        n = int(run_array(root, run_id, "labels.npy").shape[0])
        ids = load_tags(Workspace(root), corpus_of(root, run_id)).get(name, np.zeros(0, np.int64))
        return tag_codes(n, ids), ["untagged", name], f"tag {name}"
    if source.startswith("score:"):
        name = source[len("score:"):]
        return run_array(root, run_id, name).astype(np.float32), None, name.removesuffix(".npy").replace("_", " ")
    col = source[len("column:"):]
    series = docs(root, corpus_of(root, run_id), ("doc_id", col))[col]
    if pd.api.types.is_numeric_dtype(series) and series.nunique() > MAX_CATEGORIES:
        return series.to_numpy(np.float32), None, col
    codes, cats = pd.factorize(series.astype(str).fillna("–"), sort=True)
    cats = [str(c) for c in cats]
    if len(cats) > MAX_CATEGORIES:  # the most frequent ones, the rest as "other"
        top = pd.Series(codes).value_counts().index[: MAX_CATEGORIES - 1].to_numpy()
        remap = np.full(len(cats), MAX_CATEGORIES - 1)
        remap[top] = np.arange(top.size)
        cats = [cats[i] for i in top] + ["other"]
        codes = remap[codes]
    return codes.astype(np.float32), cats, col


@st.cache_data(show_spinner=False, max_entries=6)
def map_figure(root: str, run_id: str, highlight: int | None, source: str, limit: int, hover_max: int,
               names: dict[int, str], colors: dict[int, str]):
    """The Explore map of a run (:func:`ui.map.build_map`, its figure as a dict), built once per
    (run, highlighted cluster, colour source, limits): a rerun or a second visit sends it
    without rebuilding.

    ``source``: ``cluster`` or a :func:`colour_values` source. Above ``limit`` points, a
    stratified subset of ``limit``; hover texts up to ``hover_max`` drawn points."""
    from ui import map as tcmap

    labels = run_array(root, run_id, "labels.npy")
    coords = run_array(root, run_id, "coords2d.npy")
    n = int(labels.shape[0])
    rows = scatter_rows(root, run_id, limit) if n > limit else None
    drawn = n if rows is None else int(rows.size)
    hover = None
    if drawn <= hover_max:
        hover = hover_texts(root, corpus_of(root, run_id), tcmap.HOVER_CHARS)
        if rows is not None:
            hover = [hover[i] for i in rows.tolist()]
    values, cats, title = (None, None, "") if source == "cluster" else colour_values(root, run_id, source)
    if values is not None and rows is not None:
        values = values[rows]
    cat_colors = [tcmap.GREY, tcmap.TAG_COLOR] if source.startswith("tag:") else None
    out = tcmap.build_map(coords, labels, names, colors, rows=rows, hover_texts=hover, highlight=highlight,
                          values=values, categories=cats, category_colors=cat_colors, value_title=title)
    # A plain dict (build_map's), not a go.Figure: an unpickled Figure (what a cache hit
    # returns) made st.plotly_chart drop the browser's selections (the box came back empty).
    return out
