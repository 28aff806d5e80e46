"""Cluster-quality controls shared by the Pipeline and Explore pages (thin: the work is in
``textcluster.cluster``).

- :func:`granularity_panel` (Explore, one call): a slider over the run's hierarchy levels
  (:func:`textcluster.cluster.hierarchy.cut_levels`) showing the groups of the chosen level,
  a button that saves the level as a run version, the centre distances in hierarchy order,
  and the clusters flagged as unstable when the run measured stability.
- :func:`auto_k_chart` (Pipeline): the automatic-k criterion against k with the chosen k
  marked, and one click to re-cluster with another k (the embedding and reduction are cached).
- :func:`noise_panel` (Pipeline): the noise share first, a hint above 30 %, and the action that
  assigns noise to the nearest cluster (a run version).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from textcluster import jobs
from textcluster.cluster import actions
from textcluster.cluster import hierarchy as hier
from textcluster.cluster.outliers import NOISE_HINT
from textcluster.cluster.versions import run_names
from textcluster.config import ClustererConfig, EncoderConfig, ReducerConfig
from textcluster.store import Workspace
from ui import cached, state
from ui.text import md
from ui.widgets import guard


def _names(ws: Workspace, run_id: str) -> dict[int, str]:
    names = run_names(ws, run_id)
    try:
        desc = cached.description(str(ws.root), run_id)
    except Exception:  # noqa: BLE001 - no description yet: ids only
        desc = {}
    for c in desc.get("clusters", []):
        names.setdefault(int(c["cluster"]), str(c.get("label", "")))
    return names


def unstable_clusters(ws: Workspace, run_id: str) -> dict[int, float]:
    """``{cluster: mean best-match Jaccard}`` of the clusters flagged unstable (empty when the
    run did not measure stability)."""
    stab = ws.manifest(run_id).stability or {}
    per = stab.get("per_cluster") or []
    return {int(c): float(per[c]) for c in stab.get("unstable", []) if c < len(per) and per[c] is not None}


def granularity_panel(ws: Workspace, run_id: str) -> None:
    """Explore's hierarchy slider, level saving, hierarchy-ordered heatmap and stability flags."""
    with guard("hierarchy"):
        m = ws.manifest(run_id)
        names = _names(ws, run_id)
        unstable = unstable_clusters(ws, run_id)
        if m.stability:
            if unstable:
                shown = ", ".join(f"{c} ({md(names.get(c, ''))}, {j:.2f})" for c, j in sorted(unstable.items()))
                st.warning(f"Unstable clusters (best-match Jaccard below {m.stability.get('threshold', 0.5)} "
                           f"across {m.stability.get('seeds')} seeds): {shown}", icon=":material/warning:")
            else:
                st.caption(f"Every cluster reappears across {m.stability.get('seeds')} seeds "
                           f"(mean best-match Jaccard {m.stability.get('mean')}).")
        levels = hier.cut_levels(ws, run_id)
        if len(levels) < 2:
            return
        k = levels[-1]
        if st.toggle("Granularity: coarser levels of the cluster hierarchy", value=False, key=f"gran_on_{run_id}",
                     help="Cut the hierarchy of this run's cluster centres into fewer clusters; no re-embedding."):
            level = st.select_slider("Clusters at this level", options=levels, value=k, key=f"gran_level_{run_id}")
            Z = hier.load(ws, run_id)
            groups = hier.cut(Z, k, int(level))
            labels = cached.run_array(str(ws.root), run_id, "labels.npy")
            sizes = np.bincount(labels[labels >= 0], minlength=k)
            rows = [
                {"group": int(g), "documents": int(sizes[groups == g].sum()),
                 "clusters": ", ".join(f"{c} {names.get(c, '')}".strip() for c in np.flatnonzero(groups == g))}
                for g in range(int(level))
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"gran_table_{run_id}")
            if level < k and st.button(f"Save this level ({level} clusters) as a run", key=f"gran_save_{run_id}"):
                res = actions.save_level(ws, run_id, int(level))
                state.set_run(res.run_id)
                st.success(f"Saved as `{res.run_id}` (a version of `{run_id}`).")
            centre_heatmap(ws, run_id, [f"{c} · {names.get(c, '')}".rstrip(" ·") for c in range(k)],
                           key=f"gran_heat_{run_id}")


def auto_k_chart(ws: Workspace, run_id: str) -> None:
    """The criterion against k of a run whose k was chosen automatically, the chosen k marked;
    a button re-clusters with another candidate k (a background job; cached stages are reused)."""
    m = ws.manifest(run_id)
    ak = m.auto_k
    if not ak:
        return
    st.subheader("Automatic k")
    df = pd.DataFrame({"k": ak["candidates"], ak["method"]: ak["scores"]}).dropna()
    df["chosen"] = df["k"] == ak["chosen"]
    base = alt.Chart(df).encode(x=alt.X("k:Q", scale=alt.Scale(type="log"), title="k (log scale)"),
                                y=alt.Y(f"{ak['method']}:Q", title=f"{ak['method']} (higher is better)"))
    chart = base.mark_line(point=True) + base.transform_filter("datum.chosen").mark_point(
        size=160, color="#e45756", filled=True)
    raw = ak.get("raw_scores") or []
    if len(raw) > 1:  # the spread of the replicates: how far apart candidates must be to mean anything
        arr = pd.DataFrame(raw, columns=ak["candidates"]).astype(float)
        band = pd.DataFrame({"k": ak["candidates"], "low": arr.min().to_numpy(), "high": arr.max().to_numpy()}).dropna()
        chart = alt.Chart(band).mark_area(opacity=0.2).encode(
            x=alt.X("k:Q", scale=alt.Scale(type="log")), y="low:Q", y2="high:Q") + chart
    rule = alt.Chart(pd.DataFrame({"k": [ak["chosen"]]})).mark_rule(color="#e45756", strokeDash=[4, 3]).encode(x="k:Q")
    st.altair_chart((chart + rule).properties(height=260), key=f"autok_chart_{run_id}")
    reps = int(ak.get("replicates") or 1)
    st.caption(f"k = {ak['chosen']} chosen without labels: k-means on a {ak['sample']:,}-row subset of the "
               f"embedding for each candidate" + (f" ({reps} seedings: the line is their mean, the band their range)" if reps > 1 else "")
               + f", scored by {ak['method']} ({ak['seconds']:.1f} s).")
    if ak.get("warning"):
        st.warning(md(ak["warning"]), icon=":material/warning:")
    c1, c2 = st.columns([1, 2])
    other = c1.selectbox("Try another k", ak["candidates"], index=ak["candidates"].index(ak["chosen"]),
                         key=f"autok_other_{run_id}")
    if c2.button(f"Re-cluster with k = {other}", key=f"autok_rerun_{run_id}", disabled=other == ak["chosen"]):
        clu = replace(ClustererConfig.from_dict(m.clusterer), k=int(other))
        enc = EncoderConfig.from_dict(m.encoder_config or ws.manifest(m.embedding_id).encoder_config or {})
        job = jobs.submit_pipeline(ws, m.corpus_id, enc, ReducerConfig.from_dict(m.reducer), clu)
        st.session_state[state.JOB] = job.id
        st.rerun()


def noise_panel(ws: Workspace, run_id: str) -> str | None:
    """The run's noise share (before its clusters), a hint above :data:`NOISE_HINT`, and the
    action that assigns noise to the nearest cluster. Returns the new version's id when the
    action ran."""
    m = ws.manifest(run_id)
    st.metric("Noise (rows in no cluster)", f"{m.noise:.1%}")
    out: Any = None
    if m.noise > NOISE_HINT:
        st.warning(
            f"{m.noise:.0%} of the documents are noise. Density methods leave rows they cannot place; "
            "try a UMAP reducer before HDBSCAN, a smaller minimum cluster size, k-means with automatic k, "
            "or assign the noise to the nearest cluster.", icon=":material/info:",
        )
    if m.noise > 0 and st.button("Assign noise to the nearest cluster", key=f"noise_assign_{run_id}"):
        res = actions.assign_noise(ws, run_id)
        state.set_run(res.run_id)
        out = res.run_id
        st.success(f"Saved as `{res.run_id}` (a version of `{run_id}`, noise {res.noise:.1%}).")
    return out


def heatmap_order(ws: Workspace, run_id: str, k: int) -> tuple[np.ndarray, str]:
    """The order of a run's ``k`` clusters on the centre-distance heatmap, and where it came from.

    ``"hierarchy"``: the leaves of the run's stored hierarchy (``hierarchy.npy``, written by the
    cluster stage and by versions; :func:`textcluster.cluster.hierarchy.leaf_order`), so the
    heatmap, the granularity levels and the saved levels agree. ``"linkage"``: a run without a
    stored hierarchy of ``k`` leaves (older runs) gets :func:`ui.map.order_by_linkage` of its
    centre distances (None when it has none: cluster id order)."""
    p = ws.path(run_id) / "hierarchy.npy"
    if p.is_file():
        Z = np.load(p)
        if Z.ndim == 2 and Z.shape == (max(k - 1, 0), 4):
            return hier.leaf_order(Z, k), "hierarchy"
    order = cached.center_order(str(ws.root), run_id)
    return (np.arange(k) if order is None or order.size != k else order), "linkage"


def centre_heatmap(ws: Workspace, run_id: str, names: list[str], key: str) -> bool:
    """The run's centre-to-centre distances as a Plotly heatmap (:func:`ui.map.heatmap`, a name
    on every row and column, zoomable), clusters in :func:`heatmap_order`, and a caption saying
    which order. ``names[c]``: the name of cluster ``c``. False when the run has no centre
    distances (nothing drawn)."""
    from ui import map as tcmap

    pair = cached.run_array(str(ws.root), run_id, "center_pairwise_distance.npy")
    if pair is None or pair.ndim != 2 or pair.shape[0] == 0 or pair.shape[0] != len(names):
        return False
    k = pair.shape[0]
    order, source = heatmap_order(ws, run_id, k)
    st.plotly_chart(tcmap.heatmap(pair, names, order=order), key=key, width="stretch", theme=None,
                    config={"displaylogo": False})
    how = ("the leaves of the run's cluster hierarchy (the tree the granularity levels cut)"
           if source == "hierarchy" else "an average-linkage tree of the centres (this run stores no hierarchy)")
    st.caption(f"Distance between cluster centres in the space the clusterer saw; rows and columns in the "
               f"order of {how}, so similar clusters sit side by side. Drag a box to zoom in; double-click "
               "to zoom out.")
    return True
