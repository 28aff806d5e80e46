"""Pipeline: choose encoder, reducer and clusterer; launch a background job and follow it."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from textcluster import jobs
from textcluster.cluster.registry import CLUSTERERS
from textcluster.config import REDUCERS, ClustererConfig, EncoderConfig, ReducerConfig, recipe
from textcluster.embed.encoders.registry import (
    BUNDLED_ALIAS,
    available_encoders,
    check_encoder_source,
    usable_encoder,
)
from textcluster.errors import EncoderError
from ui import cached, plan, state
from ui.engine import engine_picker
from ui.granularity import auto_k_chart, noise_panel
from ui.text import md
from ui.widgets import (
    guard,
    is_finished,
    job_progress,
    method_params,
    pick_corpus,
    recent_jobs,
    training_curves,
)

REDUCER_HELP = {
    "none": "cluster the embeddings as they are (best for k-means on normalised vectors)",
    "pca": "linear projection to a few dimensions (fast, deterministic, assigns new texts exactly)",
    "umap": "non-linear manifold projection (best before HDBSCAN; slow first call while numba compiles)",
    "smooth": "each vector -> mean of itself and its 10 nearest neighbours (same dimension); "
    "+4 ACC points for k-means on short texts",
}
POLL_S = 1.0

st.title("Pipeline")
ws = state.workspace()
corpus_id = pick_corpus("pipeline_corpus")
if corpus_id is None:
    st.stop()
corpus_m = cached.manifest(str(ws.root), corpus_id)
n_docs = corpus_m.n_docs or corpus_m.kept

# -- settings --------------------------------------------------------------------
defaults_enc, defaults_red, defaults_clu = EncoderConfig(), ReducerConfig(), ClustererConfig()
use_recipe = st.toggle(
    "Quality recipe: UMAP ensemble (5 × 5-d) + k-means", key="pipe_recipe",
    help="The most accurate general setting measured on the labelled short-text benchmarks "
    "(docs/clustering.md): five UMAPs with distinct seeds, concatenated, then k-means with 10 "
    "restarts. Replaces the reducer and clusterer below; k, seed, fit subset and the 2-D map still "
    "apply. Costs five UMAP fits (about a minute for 20k rows on 2 CPU cores).",
)
col_enc, col_red, col_clu = st.columns(3)
with col_enc:
    st.subheader("Encoder")
    infos = {i.name: i for i in available_encoders()}
    names = list(infos)
    enc_choice = st.selectbox(
        "Encoder",
        names,
        index=names.index(defaults_enc.name) if defaults_enc.name in names else 0,
        key="pipe_encoder",
        help="Turns each text into a vector.",
    )
    info = infos[enc_choice]
    st.caption(info.help)
    enc_name = enc_choice
    if info.takes_model:
        bundled = enc_choice.split(":", 1)[0] in BUNDLED_ALIAS  # 'minilm' is the bundled model
        model = st.text_input(
            "Model (hub name or local folder)", key=f"pipe_encoder_model_{enc_choice.split(':', 1)[0]}" if bundled else "pipe_encoder_model",
            value="minilm" if bundled else "", placeholder="org/model or /path",
        )
        enc_name = f"{enc_choice.split(':', 1)[0]}:{model.strip()}" if model.strip() else ""
        if enc_name:  # only hub names and folders under $TEXTCLUSTER_MODEL_DIRS; nothing else is read
            try:
                check_encoder_source(enc_name)
            except EncoderError as e:
                st.error(f"model: {jobs.error_message(e)}", icon=":material/error:")
                enc_name = ""
        if enc_name:  # int8 without ONNX Runtime: the float model, with a visible note
            enc_name, note = usable_encoder(enc_name)
            if note:
                st.warning(md(note), icon=":material/info:")
    device = st.selectbox(
        "Device", ["auto", "cpu", "cuda", "mps"], key="pipe_device",
        help="auto picks a GPU when there is one. Does not change the vectors.",
    )

with col_red:
    st.subheader("Reducer")
    red_method = st.selectbox(
        "Reducer", list(REDUCERS), index=list(REDUCERS).index(defaults_red.method), key="pipe_reducer",
        help="Dimension reduction before clustering.",
    )
    st.caption(REDUCER_HELP.get(red_method, ""))
    red_dims = defaults_red.dims
    if red_method in ("pca", "umap"):
        red_dims = st.number_input("Dimensions", 2, 512, defaults_red.dims, key="pipe_reducer_dims")
    red_runs = defaults_red.runs
    if red_method == "umap":
        red_runs = st.number_input(
            "UMAP runs (ensemble)", 1, 50, defaults_red.runs, key="pipe_reducer_runs",
            help="Fit this many UMAPs with distinct seeds and cluster their concatenated coordinates. "
            "5 runs + k-means was the most accurate general setting on the labelled benchmarks, "
            "at 5x the UMAP time.",
        )
    projections = ["auto", "umap", "pca"]
    projection = st.selectbox(
        "2-D map", projections, index=projections.index(defaults_red.projection), key="pipe_projection",
        help="How the Explore map is drawn (for looking only): auto = UMAP up to 200k rows, PCA above. "
        "PCA is instant; UMAP shows local structure better.",
    )

with col_clu:
    st.subheader("Clusterer")
    methods = list(CLUSTERERS)
    method = st.selectbox(
        "Clusterer", methods, index=methods.index(defaults_clu.method), key="pipe_clusterer",
        help="How documents are grouped.",
    )
    cinfo = CLUSTERERS[method]
    st.caption(cinfo.help + (" · may mark rows as noise" if cinfo.can_mark_noise else ""))
    k = defaults_clu.k
    if cinfo.uses_k or use_recipe:  # the recipe is k-means: it needs k whatever is chosen here
        auto_k = st.checkbox(
            "Choose k automatically", value=True, key="pipe_k_auto",
            help="k-means on a 5,000-row subset of the embedding for k = 2 .. 200, scored by silhouette; "
            "the best k is used and the curve is shown with the result (docs/clustering.md).",
        )
        k = "auto" if auto_k else st.number_input("Clusters (k)", 2, 10_000, 20, key="pipe_k")
    min_cluster_size, eps = defaults_clu.min_cluster_size, defaults_clu.eps
    min_samples = defaults_clu.min_samples
    if "min_cluster_size" in cinfo.fields:
        min_cluster_size = st.number_input(
            "Minimum cluster size", 2, 100_000, defaults_clu.min_cluster_size, key="pipe_mcs"
        )
    if "eps" in cinfo.fields:
        eps = st.number_input("Radius (eps)", 0.001, 100.0, defaults_clu.eps, key="pipe_eps", format="%.3f")
    if "min_samples" in cinfo.fields:
        min_samples = st.number_input(
            "Minimum samples (0 = the method's default)", 0, 100_000, 0, key="pipe_min_samples",
            help="Neighbours a point needs to be a core point; higher marks more rows as noise.",
        ) or None
    params = method_params(cinfo, key=f"pipe_params_{method}") if not use_recipe else {}
    stability = st.checkbox(
        "Measure stability (5 seeds)", value=False, key="pipe_stability",
        help="Reruns the clusterer with 5 seeds on the same reduction and flags clusters that do not "
        "reappear (best-match Jaccard below 0.5) in Explore.",
    )
    outliers = 0.0
    if cinfo.assign == "centroid" or use_recipe:
        outliers = st.number_input(
            "Mark the farthest share of each cluster as noise (0 = none)", 0.0, 0.5, 0.0, step=0.01,
            key="pipe_outliers",
            help="Every document gets an outlier score (distance to its centre as a quantile within its "
            "cluster; a SQL column). A share Q here turns the farthest Q of each cluster into noise.",
        )
    noise = "keep"
    if cinfo.can_mark_noise:
        noise = st.radio(
            "Noise", ["keep", "assign"], horizontal=True, key="pipe_noise",
            help="keep: noise rows stay -1; assign: each goes to its nearest cluster.",
        )

c1, c2 = st.columns(2)
fit_size = c1.number_input(
    "Fit subset size (0 = all rows)", 0, 100_000_000, 0, step=1000, key="pipe_fit_size",
    help="Fit the clusterer on this many seeded rows and assign the rest: how big corpora stay fast.",
)
seed = c2.number_input("Seed", 0, 2**31 - 1, 0, key="pipe_seed")

enc_cfg = EncoderConfig(name=enc_name or enc_choice, device=device)
red_cfg = ReducerConfig(method=red_method, dims=int(red_dims), projection=projection, runs=int(red_runs))
k_value = k if k == "auto" else int(k)
quality_controls = {"stability": 5 if stability else None, "outliers": float(outliers) or None}
clu_cfg = ClustererConfig(
    method=method, k=k_value, min_cluster_size=int(min_cluster_size), eps=float(eps),
    min_samples=None if min_samples is None else int(min_samples),
    fit_size=int(fit_size) or None, noise=noise, seed=int(seed), params=params, **quality_controls,
)
if use_recipe:
    red_cfg, clu_cfg = recipe(
        "quality", k_value, seed=int(seed),
        fit_size=int(fit_size) or None, projection=projection,
    )
    clu_cfg = replace(clu_cfg, **quality_controls)
    st.info(
        f"Quality recipe: reducer umap × {red_cfg.runs} runs ({red_cfg.dims}-d each), "
        f"k-means k={clu_cfg.k}, n_init={clu_cfg.params['n_init']}. The reducer and clusterer "
        "choices above are not used.",
        icon=":material/auto_awesome:",
    )

# -- what will come from the cache -------------------------------------------------
with guard("cache check"):
    if not enc_name:
        st.caption("Enter a model name or folder for this encoder.")
    else:
        marks = plan.cached_stages(ws, corpus_id, enc_cfg, red_cfg, clu_cfg)
        st.markdown(
            "**Stages:** "
            + " → ".join(
                f"{name} {':material/inventory_2: cached' if hit else ':material/play_arrow: to run'}"
                for name, hit in marks.items()
            )
        )

engine_cfg = engine_picker()  # shown only when $TEXTCLUSTER_RAY_ADDRESS is set (docs/scale.md)
launch = st.button(
    "Launch", type="primary", key="pipe_launch", disabled=not enc_name,
    help="Runs in the background; you can use the other pages meanwhile.",
)
if launch:
    with guard("launch"):
        job = jobs.submit_pipeline(ws, corpus_id, enc_cfg, red_cfg, clu_cfg, engine=engine_cfg)
        st.session_state[state.JOB] = job.id

# -- the job: the one of this session, else the newest one (a reload finds it) -----
mgr = state.manager()
job = None
jid = st.session_state.get(state.JOB)
if jobs.is_job_id(jid):  # anything else in the session (tampered, stale) is ignored
    job = mgr.get(jid)
if job is None:
    job = mgr.latest("pipeline")
if job is None:
    st.stop()

running = not job.finished


@st.fragment(run_every=POLL_S if running else None)
def job_panel() -> None:
    with guard("job"):
        snap = job.snapshot()
        job_progress(snap)
        if not is_finished(snap):
            if st.button("Cancel", key="pipe_cancel", icon=":material/stop_circle:"):
                job.cancel()
                st.toast("Cancelling at the next batch boundary…")
        elif running:  # it finished while we watched: refresh the whole page once
            st.rerun()
        if not is_finished(snap) and snap["result"].get("description_id"):
            # the clusters are written and described; only the 2-D map is left: show them now
            shown = st.session_state.get("pipe_clusters_shown")
            if shown != snap["result"].get("run_id"):
                st.session_state["pipe_clusters_shown"] = snap["result"].get("run_id")
                st.rerun()


st.divider()
job_panel()

snap = job.snapshot()
# clusters are shown as soon as they are described: the 2-D map (the job's last stage) may still run
clusters_ready = snap["status"] == "done" or (not is_finished(snap) and bool(snap["result"].get("description_id")))
run_id = snap["result"].get("run_id") if clusters_ready else None
if run_id and ws.exists(run_id):
    state.set_run(run_id)
    with guard("run summary"):
        run_m = cached.manifest(str(ws.root), run_id)
        st.success(f"Run `{run_id}` is ready.", icon=":material/check_circle:")
        noise_panel(ws, run_id)  # the noise share before the clusters
        st.page_link("views/explore.py", label="Explore the clusters", icon=":material/arrow_forward:")
        auto_k_chart(ws, run_id)
        timings = run_m.timings
        if timings:
            st.caption("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if isinstance(v, int | float)))
        history = run_m.history
        if history:
            st.subheader("Self-training curves")
            training_curves(history)

with st.expander("Recent jobs"):
    st.dataframe(pd.DataFrame(recent_jobs(ws, mgr.list("pipeline", limit=20))), hide_index=True,
                 width="stretch", key="pipe_jobs")
