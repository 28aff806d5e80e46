"""Curation in Explore: names, merge / split / drop, acting on a selection, and run versions.

Explore calls :func:`panel` with one line. Every action writes a new run version through
:mod:`textcluster.cluster.edits` (the run shown is never changed) and makes that version the
current run, so Explore, Sample and Export follow it; the history lists the versions that led
here and lets the user go back to any of them.

A selection is a set of doc ids in session state under :data:`SELECTION` (``{"run_id",
"doc_ids", "source"}``): the map's box or lasso (Explore sets it with :func:`set_selection`),
a text search or a SQL result (both offered here). It can be tagged, exported, moved to a
cluster, or re-clustered on its own (drill down) and merged back as new clusters.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from textcluster.cluster import edits
from textcluster.cluster.runs import load_run
from textcluster.cluster.versions import run_names, version_chain
from textcluster.describe.clusters import ctfidf_keywords, make_label
from textcluster.describe.names import suggest_names
from textcluster.describe.search import search_texts
from textcluster.errors import TextclusterError
from textcluster.jobs import error_message
from textcluster.query import export, tags
from textcluster.query.selection import doc_ids_from
from ui import cached, state
from ui.text import md
from ui.widgets import guard

logger = logging.getLogger(__name__)

#: Session-state key where Explore's map keeps its box / lasso / click selection: ``(run id,
#: doc ids)`` (issue 18's ``ui.state.SELECTION``).
MAP_SELECTION = "tc_selection"
#: Session-state key of the selection made here (search, SQL or tag): ``{"run_id", "doc_ids", "source"}``.
SELECTION = "edits_selection"
#: A selection exported through SQL holds at most this many ids (bigger ones: tag, then export the tag).
EXPORT_IN_LIST_MAX = 10_000
#: Documents listed in the selection preview.
PREVIEW_ROWS = 200
SOURCES = ("the map selection", "a text search", "a SQL query", "a tag")


def set_selection(run_id: str, doc_ids: Any, source: str) -> None:
    """Make ``doc_ids`` (of ``run_id``'s corpus) the selection made here; ``source`` says how
    (``"search"``, ``"sql"``, ``"tag"``)."""
    ids = np.unique(np.asarray(doc_ids, dtype=np.int64)).tolist()
    st.session_state[SELECTION] = {"run_id": run_id, "doc_ids": ids, "source": source}


def map_selection(run_id: str) -> np.ndarray | None:
    """The doc ids selected on Explore's map for ``run_id`` (None when none)."""
    sel = st.session_state.get(MAP_SELECTION)
    if isinstance(sel, tuple | list) and len(sel) == 2 and sel[0] == run_id:
        ids = np.asarray(sel[1], dtype=np.int64).reshape(-1)
        return ids if ids.size else None
    return None


def current_selection(run_id: str, source: str) -> np.ndarray | None:
    """The doc ids of the selection made here by ``source`` for ``run_id``'s corpus, else None."""
    sel = st.session_state.get(SELECTION)
    if not isinstance(sel, dict) or not sel.get("doc_ids") or sel.get("source") != source:
        return None
    ws = state.workspace()
    try:
        if ws.corpus_of(sel["run_id"]) != ws.corpus_of(run_id):
            return None
    except Exception:  # a removed run: the selection is gone with it
        return None
    return np.asarray(sel["doc_ids"], dtype=np.int64)


def _switch(run_id: str) -> None:
    """Make ``run_id`` the current run, Explore's picker included (called from a button's callback,
    before the rerun, the one moment a widget's value may be set)."""
    state.set_run(run_id)
    st.session_state["explore_run"] = run_id
    for key in ("export_run", "sample_run", "evaluate_run"):  # other pages start from the current run
        st.session_state.pop(key, None)


def _act(work: Any, message: str) -> Any:
    """An ``on_click`` callback: ``work()`` writes a version (reading its inputs from session state,
    where a callback sees the values sent with the click), then that version becomes current and
    ``message`` (with ``{run_id}``) is shown; an error is shown instead, nothing is switched."""

    def callback() -> None:
        try:
            r = work()
        except Exception as e:  # shown by panel() on the rerun
            if not isinstance(e, TextclusterError):
                logger.exception("cluster edit")
            st.session_state["edits_error"] = error_message(e)
            return
        if r is None:
            return
        _switch(r.run_id)
        st.session_state["edits_flash"] = message.format(run_id=r.run_id)

    return callback


def panel(run_id: str) -> None:
    """The Curate section of Explore for ``run_id``: names, edits, selection, versions."""
    ws = state.workspace()
    root = str(ws.root)
    st.divider()
    if not st.toggle("Curate: names, merge, split, drop, selections, versions", key="edits_on",
                     help="Edits write new versions of the run; the run shown is never changed."):
        return
    flash = st.session_state.pop("edits_flash", None)
    if flash:
        st.success(md(flash), icon=":material/check_circle:")
    failed = st.session_state.pop("edits_error", None)
    if failed:
        st.error(md(failed), icon=":material/error:")
    if _is_sub_run(ws, run_id):
        st.info("This run is a drill-down sub-run: only the selected documents have clusters.",
                icon=":material/zoom_in:")
        st.button("Merge these clusters back into the parent run", key="edits_merge_back", type="primary",
                  on_click=_act(lambda: edits.merge_back(ws, run_id), "Merged back into version {run_id}"))
    labels = cached.run_array(root, run_id, "labels.npy")
    names = run_names(ws, run_id)
    desc = {c["cluster"]: c for c in cached.description(root, run_id).get("clusters", [])}
    clusters = [int(c) for c in np.unique(labels) if c >= 0]

    def label_of(c: int) -> str:
        name = names.get(c) or desc.get(c, {}).get("label") or f"cluster {c}"
        return f"{c} · {name}"

    t_names, t_edit, t_sel, t_versions = st.tabs(
        ["Names", "Merge · split · drop", "Selection", "Versions"], key="edits_tabs"  # stays open across reruns
    )
    with t_names, guard("names"):
        r1, r2, r3 = st.columns([2, 3, 1], vertical_alignment="bottom")
        target = r1.selectbox("Cluster", clusters, format_func=label_of, key="edits_rename_pick")
        new_name = r2.text_input("New name", key="edits_rename_name", max_chars=edits.NAME_MAX)
        ss = st.session_state
        r3.button("Rename", key="edits_rename", disabled=target is None, on_click=_act(
            lambda: edits.rename(ws, run_id, {ss["edits_rename_pick"]: ss["edits_rename_name"]}),
            f"Renamed cluster {target} in version {{run_id}}"))
        del new_name
        _names(ws, run_id)
    with t_edit, guard("edit"):
        _structure(ws, run_id, clusters, label_of)
    with t_sel, guard("selection"):
        _selection(ws, run_id, clusters, label_of)
    with t_versions, guard("versions"):
        _versions(ws, run_id)


def _names(ws: Any, run_id: str) -> None:
    st.caption("Names offered from each cluster's keywords (and from the LLM when one is set); edit them "
               "and save: the names are stored in a new version of the run.")
    llm_rows: dict[int, str] = st.session_state.get(f"edits_llm_{run_id}", {})
    offered = suggest_names(ws, run_id)
    frame = pd.DataFrame({
        "cluster": [s.cluster for s in offered],
        "size": [s.size for s in offered],
        "from keywords": [s.keywords for s in offered],
        "from the LLM": [llm_rows.get(s.cluster) for s in offered],
        "name": [s.current or "" for s in offered],
    })
    if st.button("Fill empty names with the suggestions", key="edits_fill"):
        frame["name"] = [n or llm_rows.get(c) or k for c, n, k in
                         zip(frame["cluster"], frame["name"], frame["from keywords"], strict=True)]
        st.session_state["edits_filled"] = frame["name"].tolist()
    elif st.session_state.get("edits_filled") and len(st.session_state["edits_filled"]) == len(frame):
        frame["name"] = st.session_state["edits_filled"]
    edited = st.data_editor(
        frame, key=f"edits_names_{run_id}", hide_index=True, width="stretch",
        disabled=["cluster", "size", "from keywords", "from the LLM"],
        column_config={"name": st.column_config.TextColumn("name", max_chars=edits.NAME_MAX)},
    )
    cols = st.columns(2)
    if _llm_configured() and cols[1].button("Ask the LLM for names", key="edits_llm"):
        from textcluster.describe.llm import LLMSettings

        with st.spinner("Asking the LLM..."):
            got = suggest_names(ws, run_id, llm=LLMSettings.from_env())
        st.session_state[f"edits_llm_{run_id}"] = {s.cluster: s.llm for s in got if s.llm}
        st.rerun()
    def save() -> Any:
        deltas = st.session_state.get(f"edits_names_{run_id}", {}).get("edited_rows", {})
        wanted = dict(zip(frame["cluster"].tolist(), frame["name"].tolist(), strict=True))
        for row, change in deltas.items():
            if "name" in change:
                wanted[int(frame["cluster"].iloc[int(row)])] = change["name"]
        current = {s.cluster: s.current or "" for s in offered}
        changed = {int(c): str(n).strip() for c, n in wanted.items()
                   if str(n or "").strip() and str(n).strip() != current[int(c)]}
        st.session_state.pop("edits_filled", None)
        if not changed:
            st.session_state["edits_flash"] = "No name changed."
            return None
        return edits.rename(ws, run_id, changed)

    cols[0].button("Save names", key="edits_save_names", type="primary",
                   on_click=_act(save, "Saved the names in version {run_id}"))
    del edited


def _llm_configured() -> bool:
    from textcluster.describe.llm import LLMSettings

    try:
        LLMSettings.from_env()
    except Exception:
        return False
    return True


def _structure(ws: Any, run_id: str, clusters: list[int], label_of: Any) -> None:
    st.markdown("**Merge clusters**")
    picked = st.multiselect("Clusters to merge", clusters, format_func=label_of, key="edits_merge_pick")
    name = st.text_input("Name of the merged cluster (optional)", key="edits_merge_name", max_chars=edits.NAME_MAX)
    ss = st.session_state
    st.button("Merge", key="edits_merge", disabled=len(picked) < 2, on_click=_act(
        lambda: edits.merge(ws, run_id, ss["edits_merge_pick"], name=ss["edits_merge_name"].strip() or None),
        f"Merged {len(picked)} clusters into version {{run_id}}"))
    del name
    st.markdown("**Split a cluster**")
    c1, c2 = st.columns(2)
    target = c1.selectbox("Cluster to split", clusters, format_func=label_of, key="edits_split_pick")
    k = c2.number_input("Parts (0 = choose automatically)", 0, 50, 0, key="edits_split_k")
    st.button("Split", key="edits_split", disabled=target is None, on_click=_act(
        lambda: edits.split(ws, run_id, ss["edits_split_pick"], int(ss["edits_split_k"]) or None),
        f"Split cluster {target} in version {{run_id}}"))
    del k
    st.markdown("**Drop a cluster**")
    d1, d2 = st.columns(2)
    drop = d1.selectbox("Cluster to drop", clusters, format_func=label_of, key="edits_drop_pick")
    how = d2.radio("Its documents", ["become noise", "join the nearest cluster"], key="edits_drop_how",
                   horizontal=True)
    st.button("Drop", key="edits_drop", disabled=drop is None, on_click=_act(
        lambda: edits.drop(ws, run_id, ss["edits_drop_pick"], to_nearest=ss["edits_drop_how"].startswith("join")),
        f"Dropped cluster {drop} in version {{run_id}}"))
    del how


def _selection(ws: Any, run_id: str, clusters: list[int], label_of: Any) -> None:
    root = str(ws.root)
    cid = cached.corpus_of(root, run_id)
    st.caption("Act on documents chosen on the map (box, lasso or click), by a text search, by SQL or by a "
               "tag: tag them, export them, move them, or drill into them.")
    how = st.radio("Act on", SOURCES, key="edits_sel_source", horizontal=True)
    ids: np.ndarray | None = None
    source = ""
    if how == SOURCES[0]:
        ids, source = map_selection(run_id), "the map"
        if ids is None:
            st.caption("Nothing selected on the map: drag a box or a lasso over it.")
    elif how == SOURCES[1]:
        q = st.text_input("Text search", key="edits_sel_search", placeholder="a word or phrase")
        if st.button("Select the matches", key="edits_sel_search_go", disabled=not q.strip()):
            docs = cached.docs(root, cid, ("doc_id", "text"))
            set_selection(run_id, search_texts(docs["text"], q, limit=len(docs)).doc_ids, "search")
        ids, source = current_selection(run_id, "search"), "a text search"
    elif how == SOURCES[2]:
        sql = st.text_input("SQL (one SELECT returning doc_id)", key="edits_sel_sql",
                            placeholder="SELECT doc_id FROM assignments WHERE cluster = 0")
        if st.button("Select the rows", key="edits_sel_sql_go", disabled=not sql.strip()):
            set_selection(run_id, doc_ids_from(ws, sql, run_id=run_id), "sql")
        ids, source = current_selection(run_id, "sql"), "a SQL query"
    else:
        existing = tags.list_tags(ws, cid)
        if not existing:
            st.caption("This corpus has no tags yet.")
        else:
            pick = st.selectbox("Tag", [t["name"] for t in existing], key="edits_tag_pick")
            ids, source = tags.load_tags(ws, cid).get(pick), "a tag"
    if ids is None or ids.size == 0:
        return
    labels = cached.run_array(root, run_id, "labels.npy")
    st.markdown(f"**{ids.size:,} documents selected** (from {source})")
    docs = cached.docs(root, cid, ("doc_id", "text"))
    show = ids[:PREVIEW_ROWS]
    st.dataframe(pd.DataFrame({"doc_id": show, "cluster": [label_of(int(c)) if c >= 0 else "noise"
                                                             for c in labels[show]],
                               "text": docs["text"].to_numpy()[show]}),
                 hide_index=True, width="stretch", key="edits_sel_table")
    # (a) tag
    t1, t2 = st.columns([3, 1], vertical_alignment="bottom")
    tag = t1.text_input("Tag name", key="edits_tag_name", max_chars=tags.TAG_NAME_MAX)
    if t2.button("Tag the selection", key="edits_tag", disabled=not tag.strip()):
        held = tags.tag_docs(ws, cid, tag, ids)
        st.success(f"Tag {md(tag.strip())} now holds {held:,} documents.")
    existing = tags.list_tags(ws, cid)
    if existing:
        st.caption("Tags of this corpus: " + ", ".join(f"{md(t['name'])} ({t['docs']:,})" for t in existing))
    # (b) export
    if ids.size <= EXPORT_IN_LIST_MAX:
        stmt = ("SELECT d.* EXCLUDE (corpus_id), a.cluster, a.cluster_name, a.distance FROM docs d "
                "JOIN assignments a USING (doc_id) WHERE d.doc_id IN (" + ", ".join(map(str, ids.tolist())) +
                ") ORDER BY d.doc_id")
        sig = (run_id, hash(stmt))
        if st.button("Prepare the selection as CSV", key="edits_sel_export"):
            st.session_state["edits_sel_csv"] = (sig, export.export_bytes(ws, "csv", sql=stmt, run_id=run_id))
        built = st.session_state.get("edits_sel_csv")
        data = built[1] if built and built[0] == sig else None
        if data:
            st.download_button("Selection as CSV", data=data, file_name=f"{run_id}-selection.csv", mime="text/csv",
                               key="edits_sel_dl", on_click="ignore", icon=":material/download:")
    else:
        st.caption(f"To export more than {EXPORT_IN_LIST_MAX:,} documents, tag them and export the tag "
                   "on the Export page (`WHERE list_contains(tags, '...')`).")
    # move
    m1, m2 = st.columns([3, 1], vertical_alignment="bottom")
    to = m1.selectbox("Move the selection to", clusters, format_func=label_of, key="edits_move_to")
    m2.button("Move", key="edits_move", disabled=to is None, on_click=_act(
        lambda: edits.move(ws, run_id, ids, st.session_state["edits_move_to"]),
        f"Moved {ids.size:,} documents in version {{run_id}}"))
    # (c) drill down
    st.markdown("**Drill down**: re-cluster the selection on its own")
    d1, d2 = st.columns([3, 1], vertical_alignment="bottom")
    k = d1.number_input("Parts (0 = choose automatically)", 0, 50, 0, key="edits_drill_k")
    if d2.button("Re-cluster", key="edits_drill", disabled=ids.size < 2):
        got_ids, parts = edits.subcluster(ws, run_id, ids, int(k) or None)
        texts = docs["text"].to_numpy()[got_ids].tolist()
        kw = ctfidf_keywords(texts, parts, top_n=6)
        st.session_state["edits_drill_out"] = {
            "run_id": run_id, "k": int(k) or None, "ids": got_ids.tolist(),
            "parts": [{"part": int(p), "size": int((parts == p).sum()),
                       "name": make_label([w for w, _ in kw.get(int(p), [])]) or f"part {p}"}
                      for p in np.unique(parts)],
        }
    out = st.session_state.get("edits_drill_out")
    if out and out["run_id"] == run_id and out["ids"] == ids.tolist():
        table = st.data_editor(pd.DataFrame(out["parts"]), key="edits_drill_table", hide_index=True,
                               disabled=["part", "size"], width="stretch")
        def carve() -> Any:
            names = [str(p["name"]) for p in out["parts"]]
            for row, change in st.session_state.get("edits_drill_table", {}).get("edited_rows", {}).items():
                if "name" in change:
                    names[int(row)] = str(change["name"])
            st.session_state.pop("edits_drill_out", None)
            return edits.carve(ws, run_id, ids, out["k"], names=names)

        st.button("Merge back into the run as new clusters", key="edits_carve", type="primary",
                  on_click=_act(carve, f"{len(out['parts'])} new clusters in version {{run_id}}"))
        st.button("Open as a sub-run (explore and name its clusters, then merge it back)", key="edits_drill_open",
                  on_click=_act(lambda: edits.drill(ws, run_id, ids, out["k"]),
                                "Sub-run {run_id}: only the selected documents have clusters; "
                                "merge it back from Curate when done"))
        del table


def _is_sub_run(ws: Any, run_id: str) -> bool:
    """True for a drill-down sub-run (or a version made from one inside it)."""
    m = cached.manifest(str(ws.root), run_id)
    while m.edit and m.edit.get("op") not in ("drill", "merge_back") and m.parent_run:
        m = cached.manifest(str(ws.root), m.parent_run)
    return bool(m.edit and m.edit.get("op") == "drill")


def _versions(ws: Any, run_id: str) -> None:
    chain = version_chain(ws, run_id)
    children = [m for m in ws.list("run") if m.parent_run == run_id]
    rows = []
    for rid in chain:
        m = cached.manifest(str(ws.root), rid)
        rows.append({"run": rid, "clusters": m.k, "edit": edits.describe_edit(m.edit) if m.edit else "clustered",
                     "current": "◀" if rid == run_id else ""})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="edits_history")
    targets = [r["run"] for r in rows if r["run"] != run_id] + [m.id for m in children]
    if not targets:
        st.caption("This run has no other version yet.")
        return
    labels = {r["run"]: f"{r['run']} · {r['edit']}" for r in rows}
    labels.update({m.id: f"{m.id} · {edits.describe_edit(m.edit)} (later)" for m in children})
    back = st.selectbox("Go to version", targets, format_func=labels.get, key="edits_goto")
    st.button("Go", key="edits_goto_go", on_click=_act(
        lambda: load_run(ws, st.session_state["edits_goto"]), "Now showing {run_id}"))
    del back
