"""``textcluster tag``: named sets of documents of a corpus (see :mod:`textcluster.query.tags`).

- ``tag ID add NAME --docs FILE_OR_SQL``: add documents to a tag (creating it);
  ``--replace`` makes them its only documents.
- ``tag ID remove NAME [--docs FILE_OR_SQL]``: take documents out of a tag, or delete it.
- ``tag ID list``: the corpus's tags and their sizes.

ID is a corpus or a run (its corpus); ``--docs`` SQL is scoped to the run, or for a corpus to its
newest run (so ``docs`` holds that corpus only). Tags show in
the query views (``docs.tags``, the ``tags`` view) and in run exports (a ``tags`` column).
"""

from __future__ import annotations

import argparse
from typing import Any

from textcluster.cli import artifact_id
from textcluster.errors import ConfigError
from textcluster.query import tags as T
from textcluster.query.selection import doc_ids_from
from textcluster.store import kind_of


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``tag`` subcommand."""
    p = sub.add_parser(
        "tag", help="named sets of documents (tags): add, remove, list",
        description="Tag documents of a corpus; tags are a column of the query views and exports.",
    )
    p.add_argument("target", metavar="ID", type=artifact_id(), help="a corpus (cor-...) or a run (run-...)")
    ops = p.add_subparsers(dest="op", metavar="ACTION", parser_class=type(p))
    ops.required = True
    docs_help = ("a file of doc ids (one per line, or CSV/JSONL/Parquet with doc_id) or one SELECT "
                 "returning doc_id over the views")
    o = ops.add_parser("add", parents=[common], help="add documents to a tag")
    o.add_argument("name", metavar="NAME", help=f"1 to {T.TAG_NAME_MAX} characters")
    o.add_argument("--docs", required=True, metavar="FILE_OR_SQL", help=docs_help)
    o.add_argument("--replace", action="store_true", help="the tag then holds only these documents")
    o.set_defaults(handler=_handle)
    o = ops.add_parser("remove", parents=[common], help="take documents out of a tag, or delete it")
    o.add_argument("name", metavar="NAME")
    o.add_argument("--docs", default=None, metavar="FILE_OR_SQL", help=docs_help + " (default: the whole tag)")
    o.set_defaults(handler=_handle)
    o = ops.add_parser("list", parents=[common], help="the tags of the corpus")
    o.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    kind = kind_of(args.target)
    if kind not in ("corpus", "run"):
        raise ConfigError(f"ID should be a corpus or a run; {args.target} is {kind}")
    ws.manifest(args.target)
    cid = ws.corpus_of(args.target)
    # SQL is scoped to a run of the corpus, so that its docs view holds this corpus only
    run_id = args.target if kind == "run" else next((m.id for m in ws.list("run") if ws.corpus_of(m.id) == cid), None)
    if args.op == "list":
        rows = T.list_tags(ws, cid)
        text = "\n".join(f"{r['name']}\t{r['docs']:,} docs" for r in rows) or f"corpus {cid} has no tags"
        return {"corpus_id": cid, "tags": rows}, text
    if args.op == "add":
        ids = doc_ids_from(ws, args.docs, run_id=run_id, corpus_id=cid)
        held = T.tag_docs(ws, cid, args.name, ids, mode="replace" if args.replace else "add")
        name = T.check_tag_name(args.name)
        return ({"corpus_id": cid, "tag": name, "docs": held, "given": int(ids.size)},
                f"tag {name!r}: {held:,} docs")
    name = T.check_tag_name(args.name)
    if args.docs is None:
        held = T.delete_tag(ws, cid, name)
        return {"corpus_id": cid, "tag": name, "deleted": True, "docs": 0}, f"tag {name!r} deleted ({held:,} docs)"
    ids = doc_ids_from(ws, args.docs, run_id=run_id, corpus_id=cid)
    held = T.tag_docs(ws, cid, name, ids, mode="remove")
    return {"corpus_id": cid, "tag": name, "deleted": held == 0, "docs": held}, f"tag {name!r}: {held:,} docs"
