"""The Explore map's legend: a searchable table of clusters (colour, name, size, keywords).

Choosing a row highlights that cluster on the map (the others turn grey); the search box
filters the rows by id, name or keyword, so 150+ clusters stay findable.
"""

from __future__ import annotations

import zlib

import pandas as pd
import streamlit as st


def legend_table(clusters: list[int], names: dict[int, str], sizes: dict[int, int],
                 keywords: dict[int, list[str]], colors: dict[int, str]) -> pd.DataFrame:
    """One row per cluster, largest first: colour (hex), cluster id, name, size, keywords."""
    frame = pd.DataFrame(
        {
            "colour": [colors.get(c, "#c8c8c8") for c in clusters],
            "cluster": clusters,
            "name": [names.get(c, str(c)) for c in clusters],
            "size": [int(sizes.get(c, 0)) for c in clusters],
            "keywords": [", ".join(keywords.get(c, [])[:6]) for c in clusters],
        }
    )
    return frame.sort_values(["size", "cluster"], ascending=[False, True], kind="stable").reset_index(drop=True)


def filter_legend(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows whose name or keywords contain ``query`` (case-insensitive; all when blank); a
    number finds the cluster of that id."""
    q = query.strip().lower()
    if not q:
        return frame
    if q.lstrip("-").isdigit():
        return frame[frame["cluster"] == int(q)].reset_index(drop=True)
    hay = frame["name"].str.lower() + " " + frame["keywords"].str.lower()
    return frame[hay.str.contains(q, regex=False)].reset_index(drop=True)


def _table_key(key: str, query: str) -> str:
    # a new search is a new table, which starts with nothing chosen
    return f"{key}_table_{zlib.crc32(query.strip().lower().encode()):08x}"


def chosen_cluster(frame: pd.DataFrame, key: str) -> int | None:
    """The cluster chosen in the legend ``key`` as the session holds it, before the legend is
    drawn (so the map can be sent to the browser first); None when none is chosen."""
    query = str(st.session_state.get(f"{key}_search") or "")
    state = st.session_state.get(_table_key(key, query)) or {}
    return _picked(filter_legend(frame, query), state)


def _picked(shown: pd.DataFrame, event) -> int | None:
    rows = ((event or {}).get("selection") or {}).get("rows") or []
    if rows and 0 <= rows[0] < len(shown):
        return int(shown["cluster"].iloc[rows[0]])
    return None


def legend(frame: pd.DataFrame, key: str) -> int | None:
    """Draw the legend (search box + table with single-row selection); returns the chosen
    cluster id, or None when none is chosen. Widget keys: ``{key}_search``, ``{key}_table_*``."""
    query = st.text_input("Find a cluster", key=f"{key}_search", placeholder="id, name or keyword")
    shown = filter_legend(frame, query)
    st.caption(f"{len(shown):,} of {len(frame):,} clusters · choose one to highlight it")
    event = st.dataframe(
        shown.style.map(lambda c: f"background-color: {c}; color: {c}", subset=["colour"]),
        hide_index=True,
        width="stretch",
        height=520,
        key=_table_key(key, query),
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "colour": st.column_config.TextColumn(" ", width=28),
            "cluster": st.column_config.NumberColumn("id", width="small"),
            "size": st.column_config.NumberColumn(format="localized", width="small"),
        },
    )
    return _picked(shown, event)
