"""Widgets shared by the pages: error guard, artifact pickers, job progress."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import streamlit as st

from textcluster.jobs import FINISHED, error_message
from textcluster.store import CorpusManifest, RunManifest, label_of
from ui import state
from ui.text import md

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show any error raised inside as ``st.error`` (readable text, no traceback) and go on.

    Streamlit's own control flow (rerun, stop, switch page) derives from
    BaseException and passes through untouched.
    """
    try:
        yield
    except Exception as e:
        if not _is_textcluster_error(e):
            logger.exception("error in the app%s", f" ({what})" if what else "")
        prefix = f"{what}: " if what else ""
        st.error(md(prefix + error_message(e)), icon=":material/error:")


def _is_textcluster_error(e: Exception) -> bool:
    from textcluster.errors import TextclusterError

    return isinstance(e, TextclusterError)


def fmt_seconds(s: float | None) -> str:
    """``"1 h 02 min"``, ``"3 min 05 s"``, ``"12.3 s"``; a dash when unknown."""
    if s is None:
        return "–"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def short(artifact_id: str | None) -> str:
    """An id as shown in pickers."""
    return artifact_id or "–"


def display_path(path: Any, cwd: Any = None, home: Any = None) -> str:
    """``path`` as a person would type it: relative to ``cwd`` when inside it, else with the
    home folder as ``~``, else absolute (``cwd`` / ``home`` default to the process's)."""
    from pathlib import Path

    p = Path(path).resolve()
    for base, prefix in ((cwd or Path.cwd(), ""), (home or Path.home(), "~/")):
        try:
            rel = p.relative_to(Path(base).resolve())
        except ValueError:
            continue
        return prefix + str(rel) if str(rel) != "." else (prefix.rstrip("/") or ".")
    return str(p)


def corpus_label(m: CorpusManifest) -> str:
    """A corpus manifest as one line: id, then the store's label (source file, kept rows)."""
    return f"{m.id} · {label_of(m)}"


def run_label(m: RunManifest) -> str:
    """A run manifest as one line: id, reducer (when there is one) and method, clusters.

    ``run-... · umap 5-d ×5 → kmeans · 20 clusters`` for a UMAP-ensemble run."""
    method = m.clusterer.get("method")
    red = m.reducer
    bits = [m.id]
    if method:
        how = str(method)
        rmethod = red.get("method")
        if rmethod and rmethod != "none":
            r = str(rmethod)
            if rmethod in ("pca", "umap"):
                r += f" {red.get('dims')}-d"
            if int(red.get("runs") or 1) > 1:
                r += f" ×{red['runs']}"
            how = f"{r} → {how}"
        bits.append(how)
    bits.append(f"{m.k} clusters")
    return " · ".join(bits)


def when(created: float | None) -> str:
    """A manifest's creation time as ``2026-12-03 10:42`` (local time); a dash when unknown."""
    if not created:
        return "–"
    return dt.datetime.fromtimestamp(float(created)).strftime("%Y-%m-%d %H:%M")


def corpus_choice(m: CorpusManifest) -> str:
    """A corpus in a picker: file name and size, date, then the id.

    ``support.csv · 120 docs · 2026-12-03 10:42 · cor-…``"""
    return f"{label_of(m)} · {when(m.created)} · {m.id}"


def run_choice(m: RunManifest, corpus: CorpusManifest | None) -> str:
    """A run in a picker: its corpus (name and size), encoder, method, k, date, then the id.

    ``support.csv (120 docs) · tfidf · pca → kmeans · k=3 · 2026-12-03 10:42 · run-…``"""
    bits = []
    if corpus is not None:
        name = label_of(corpus).split(" · ")
        bits.append(f"{name[0]} ({name[1]})" if len(name) > 1 else name[0])
    encoder = m.encoder or (m.encoder_config or {}).get("name")
    if encoder:
        bits.append(str(encoder))
    bits.append(label_of(m))
    bits += [when(m.created), m.id]
    return " · ".join(bits)


def _run_choices(manifests: list) -> dict[str, str]:
    ws = state.workspace()
    corpora: dict[str, CorpusManifest | None] = {}
    out = {}
    for m in manifests:
        cid = m.corpus_id
        if cid not in corpora:
            try:
                corpora[cid] = ws.manifest(cid) if cid and ws.exists(cid) else None
            except Exception:  # a damaged or foreign corpus manifest: the run is still listed
                corpora[cid] = None
        out[m.id] = run_choice(m, corpora[cid])
    return out


def _pick(kind: str, title: str, empty: str, label, current, set_current, key: str) -> str | None:
    """A select box over the workspace's artifacts of ``kind``, newest first, the current one
    chosen; None when there is none. ``label(manifests) -> {id: text}``."""
    manifests = state.workspace().list(kind)  # newest first
    if not manifests:
        st.info(empty, icon=":material/info:")
        return None
    ids = [m.id for m in manifests]
    labels = label(manifests)
    cur = current()
    chosen = st.selectbox(title, ids, index=ids.index(cur) if cur in ids else 0, format_func=labels.get, key=key)
    if chosen:
        set_current(chosen)
    return chosen


def pick_corpus(key: str) -> str | None:
    """A select box over the corpora of the workspace (newest first, the current one chosen;
    each shown by :func:`corpus_choice`); None when empty."""
    return _pick("corpus", "Corpus", "No corpus yet: load one on the **Data** page.",
                 lambda ms: {m.id: corpus_choice(m) for m in ms}, state.current_corpus, state.set_corpus, key)


def pick_run(key: str) -> str | None:
    """A select box over the clustering runs (newest first, the current one chosen; each shown
    by :func:`run_choice`); None when there is none."""
    return _pick("run", "Clustering run", "No clustering run yet: launch one on the **Pipeline** page.",
                 _run_choices, state.current_run, state.set_run, key)


def run_or_stop(key: str) -> str:
    """:func:`pick_run` for a page that needs a run: its id, or the page stops after the hint
    that there is none."""
    run_id = pick_run(key)
    if run_id is None:
        st.stop()
    return run_id


_STAGE_ICON = {
    "pending": ":material/schedule:",
    "running": ":material/autorenew:",
    "done": ":material/check_circle:",
    "cached": ":material/inventory_2:",
    "failed": ":material/error:",
    "cancelled": ":material/block:",
}


def job_progress(snap: dict[str, Any]) -> None:
    """Draw a job snapshot: one progress bar per stage, elapsed time, ETA, device, error."""
    status = snap["status"]
    head = f"**Job `{snap['id']}`** · {status}"
    if snap.get("label"):
        head += f" · {md(snap['label'])}"
    st.markdown(head)
    cols = st.columns(3)
    cols[0].metric("Elapsed", fmt_seconds(snap.get("elapsed_s")))
    cols[1].metric("ETA (current stage)", fmt_seconds(snap.get("eta_s")) if status == "running" else "–")
    cols[2].metric("Device", (snap.get("device") or "–").upper() if snap.get("device") else "–")
    for stg in snap["stages"]:
        text = f"{stg['name']} · {stg['status']}"
        if stg["status"] == "cached":
            text += " (from the cache)"
        if stg.get("total"):
            text += f" · {stg['done']:,}/{stg['total']:,}"
        if stg.get("elapsed_s"):
            text += f" · {fmt_seconds(stg['elapsed_s'])}"
        if stg["status"] == "running" and stg.get("eta_s") is not None:
            text += f" · ETA {fmt_seconds(stg['eta_s'])}"
        if stg.get("message") and stg["status"] != "failed":
            text += f" · {md(stg['message'])}"
        frac = 1.0 if stg["status"] in ("done", "cached") else float(stg.get("fraction") or 0.0)
        st.progress(min(1.0, max(0.0, frac)), text=text)  # names and counts are ours, messages escaped
    if status == "failed":
        st.error(md(snap.get("error") or "the job failed"), icon=":material/error:")
    elif status in ("cancelled", "interrupted"):
        st.warning(md(snap.get("error") or status), icon=":material/block:")


def recent_jobs(ws: Any, snaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the "Recent jobs" table: job, status, corpus (name and size), k, what, elapsed
    seconds, device, run and error of each pipeline job snapshot."""
    names: dict[str, str] = {}
    rows = []
    for s in snaps:
        cfg = s.get("config") or {}
        cid = cfg.get("corpus_id")
        if isinstance(cid, str) and cid not in names:
            try:
                names[cid] = label_of(ws.manifest(cid)) if ws.exists(cid) else f"{cid} (deleted)"
            except Exception:  # an id that is not a corpus id, a damaged manifest: show the id
                names[cid] = str(cid)
        clusterer = cfg.get("clusterer") or {}
        rows.append({
            "job": s["id"], "status": s["status"], "corpus": names.get(cid, "–"),
            "k": clusterer.get("k"), "what": s.get("label", ""),
            "elapsed": round(s.get("elapsed_s") or 0.0, 1), "device": s.get("device"),
            "run": (s.get("result") or {}).get("run_id"), "error": s.get("error"),
        })
    return rows


def is_finished(snap: dict[str, Any]) -> bool:
    """True once a job snapshot is final."""
    return snap["status"] in FINISHED


def training_curves(history: dict[str, Any]) -> None:
    """Line charts of a self-training run's ``history`` (from its run manifest).

    Autoencoder pre-training loss per epoch; KL(P||Q) and the share of labels that
    changed at each refresh, against the training step.
    """
    import pandas as pd

    pre = history.get("pretrain_loss") or []
    if pre:
        st.markdown("Autoencoder pre-training loss per epoch")
        frame = pd.DataFrame({"epoch": range(1, len(pre) + 1), "pretrain loss": pre})
        st.line_chart(frame, x="epoch", y="pretrain loss")
    kl = history.get("kl_loss") or []
    if kl:
        change = list(history.get("label_change") or [])[: len(kl)]
        steps = list(history.get("refresh_step") or [])[: len(kl)]
        frame = pd.DataFrame(
            {
                "step": steps if len(steps) == len(kl) else list(range(1, len(kl) + 1)),
                "KL(P||Q)": kl,
                "labels changed": change + [None] * (len(kl) - len(change)),
            }
        )
        st.markdown("Self-training: KL loss and share of labels changed at each refresh")
        st.line_chart(frame, x="step", y=["KL(P||Q)", "labels changed"])
    if history.get("stop_reason"):
        seconds = history.get("seconds")
        st.caption(
            f"Stopped by: {md(history['stop_reason'])}"
            + (f" after {fmt_seconds(seconds)}" if isinstance(seconds, int | float) else "")
        )


def method_params(info: Any, key: str) -> dict[str, Any]:
    """An expander with one input per parameter of a clusterer's schema (its registry entry);
    returns the parameters the user changed from their defaults (what goes into
    ``ClustererConfig.params``). Values are checked by the registry when the job is submitted."""
    out: dict[str, Any] = {}
    if not info.params:
        return out
    with st.expander(f"{info.name} settings"):
        for name, spec in info.params.items():
            wkey = f"{key}_{name}"
            label = f"{name} ({spec.allowed()})"
            if spec.type == "bool":
                value: Any = st.checkbox(name, value=bool(spec.default), key=wkey, help=spec.help)
            elif spec.type == "str":
                choices = list(spec.choices or ())
                value = st.selectbox(name, choices, index=choices.index(spec.default), key=wkey, help=spec.help)
            else:  # numbers, lists and values such as "auto": typed as JSON
                shown = "" if spec.default is None else json.dumps(list(spec.default) if isinstance(
                    spec.default, tuple) else spec.default)
                text = st.text_input(label, value=shown, key=wkey, help=spec.help).strip()
                if not text:
                    value = None if spec.nullable else spec.default
                else:
                    try:
                        value = json.loads(text)
                    except json.JSONDecodeError:
                        value = text  # e.g. auto without quotes; the registry says what is allowed
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            if value != default:
                out[name] = value
    return out
