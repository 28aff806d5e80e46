"""Escaping user-controlled text before Streamlit renders it as Markdown.

``st.markdown``, ``st.caption``, ``st.info``/``success``/``warning``/``error``, ``st.subheader``,
``st.title``, ``st.toast``, ``st.progress(text=)``, ``help=`` tooltips and ``page_link`` labels all
render Markdown (GitHub-flavoured, with Streamlit's ``:color[...]`` and ``:material/...:``
directives). A column name, a file name, a cluster label, a corpus or job label or an error text
comes from a user's file or from a model: put it through :func:`md` first, so that
``![x](http://host/img)`` shows as those characters instead of making the browser fetch an image.
Dataframe cells and select-box options are not Markdown and need nothing.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character Markdown, GFM (tables, strikethrough, autolinks), HTML,
# entities, LaTeX ($) or Streamlit's directives (:red[...], :material/x:) give a meaning to.
# A backslash before any ASCII punctuation is a literal in CommonMark.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=^\"'])")


def md(text: object) -> str:
    """``text`` (anything: ``str()`` is taken) as Markdown that renders as exactly its characters.

    Markdown's and HTML's special characters are backslash-escaped; each line is trimmed (a
    leading indent would start a code block) and lines are joined with a hard line break.
    """
    lines = str(text).splitlines() or [""]
    return "  \n".join(_SPECIAL.sub(r"\\\1", line.strip()) for line in lines)
