"""``textcluster edit`` (cluster edits as run versions) and ``textcluster history``.

- ``edit RUN_ID rename C NAME``, ``edit RUN_ID merge C1 C2 [...] [--name NAME]``,
  ``edit RUN_ID split C [--k K] [--seed S]``, ``edit RUN_ID move --docs FILE_OR_SQL --to C``,
  ``edit RUN_ID drop C [--to-nearest]``, ``edit RUN_ID carve --docs FILE_OR_SQL [--k K]``
  (a drill-down merged back), ``edit RUN_ID drill --docs FILE_OR_SQL [--k K]`` (a sub-run of those
  documents), ``edit SUB_RUN_ID merge-back``: each writes a version of RUN_ID (or finds it: the same edit on
  the same run is the same id) and prints its id; ``--json``: ``run_id``, ``parent``,
  ``edit``, ``cached``, ``k``, ``noise``. A cluster C is an id or a name.
- ``history RUN_ID``: the run's versions, root first, with their edits.
- ``names RUN_ID [--llm topics|single] [--accept]``: the names offered for each cluster (from its
  keywords, and from the LLM when asked); ``--accept`` stores them (current name, else the LLM's,
  else the keywords') as a rename version and prints its id.

Bad input (an unknown cluster, a merge of one cluster, a split into more parts than members,
an empty or too long name) is one ``error:`` line, exit 2, and no run is written.
"""

from __future__ import annotations

import argparse
from typing import Any

from textcluster.cli import artifact_id, positive_int, seconds
from textcluster.cluster import edits
from textcluster.cluster.versions import run_names, version_chain
from textcluster.describe.llm import LLMSettings
from textcluster.describe.names import suggest_names
from textcluster.query.selection import doc_ids_from


def _cluster_ref(text: str) -> str | int:
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        return s


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``edit`` and ``history`` subcommands."""
    p = sub.add_parser(
        "edit", help="edit a run's clusters: rename, merge, split, move, drop, carve (writes a version)",
        description="Write a new version of RUN_ID with one edit; the run itself is never changed. "
        "Clusters are given by id or by name. Prints the new run id.",
    )
    p.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"), help="the run to edit (run-...)")
    ops = p.add_subparsers(dest="op", metavar="EDIT", parser_class=type(p))
    ops.required = True

    o = ops.add_parser("rename", parents=[common], help="give cluster C a name")
    o.add_argument("cluster", metavar="C", type=_cluster_ref)
    o.add_argument("name", metavar="NAME", help=f"1 to {edits.NAME_MAX} characters")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("merge", parents=[common], help="merge two or more clusters into one (the lowest id)")
    o.add_argument("clusters", metavar="C", nargs="+", type=_cluster_ref)
    o.add_argument("--name", default=None, help="a name for the merged cluster")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("split", parents=[common], help="re-cluster the members of C into K parts")
    o.add_argument("cluster", metavar="C", type=_cluster_ref)
    o.add_argument("--k", type=positive_int, default=None,
                   help=f"parts (default: chosen by silhouette, 2..{edits.AUTO_K_MAX})")
    o.add_argument("--seed", type=int, default=0, help="seed of the k-means (default 0)")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("move", parents=[common], help="move documents to cluster C")
    o.add_argument("--docs", required=True, metavar="FILE_OR_SQL",
                   help="a file of doc ids (one per line, or CSV/JSONL/Parquet with doc_id) or one SELECT "
                        "returning doc_id over the views, scoped to RUN_ID")
    o.add_argument("--to", required=True, type=_cluster_ref, metavar="C", help="target cluster (id, name, or noise)")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("drop", parents=[common], help="drop cluster C (its members become noise)")
    o.add_argument("cluster", metavar="C", type=_cluster_ref)
    o.add_argument("--to-nearest", action="store_true",
                   help="send its members to the nearest remaining cluster instead of noise")
    o.set_defaults(handler=_handle)

    # carve and drill re-cluster some documents: the same three options
    recluster = argparse.ArgumentParser(add_help=False)
    recluster.add_argument("--docs", required=True, metavar="FILE_OR_SQL", help="as for move")
    recluster.add_argument("--k", type=positive_int, default=None,
                           help=f"parts (default: chosen by silhouette, 2..{edits.AUTO_K_MAX})")
    recluster.add_argument("--seed", type=int, default=0, help="seed of the k-means (default 0)")

    o = ops.add_parser("carve", parents=[common, recluster],
                       help="drill down: re-cluster some documents on their own and make them new clusters")
    o.add_argument("--name", action="append", default=[], help="a name per part, in order (repeat)")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("drill", parents=[common, recluster],
                       help="a sub-run: only these documents, re-clustered on their own (the rest is noise)")
    o.set_defaults(handler=_handle)

    o = ops.add_parser("merge-back", parents=[common],
                       help="carve the clusters of sub-run RUN_ID (drill), with their names, back into its parent")
    o.set_defaults(handler=_handle)

    h = sub.add_parser("history", parents=[common], help="a run's versions, root first, with their edits",
                       description="The chain of versions that led to RUN_ID, root first, with each edit.")
    h.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"))
    h.set_defaults(handler=_history)

    n = sub.add_parser("names", parents=[common], help="names offered for a run's clusters (keywords, LLM); --accept stores them",
                       description="Offer a name per cluster from its keywords and, with --llm, from an LLM "
                       "(TEXTCLUSTER_LLM_BASE_URL / _MODEL or the flags). --accept writes a rename version.")
    n.add_argument("run_id", metavar="RUN_ID", type=artifact_id("run"))
    n.add_argument("--llm", choices=("off", "topics", "single"), default="off", help="also ask an LLM (default off)")
    n.add_argument("--llm-base-url", default=None, help="OpenAI-compatible base URL ($TEXTCLUSTER_LLM_BASE_URL)")
    n.add_argument("--llm-model", default=None, help="model name ($TEXTCLUSTER_LLM_MODEL)")
    n.add_argument("--llm-timeout", type=seconds, default=30.0, help="seconds per LLM request (default 30)")
    n.add_argument("--accept", action="store_true",
                   help="store the offered names (current, else LLM, else keywords) as a rename version")
    n.set_defaults(handler=_names)


def _handle(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    run_id, op = args.run_id, args.op
    ws.manifest(run_id)  # an unknown run: a clear error first
    progress = ui.progress()
    if op == "rename":
        res = edits.rename(ws, run_id, {args.cluster: args.name}, progress=progress)
    elif op == "merge":
        res = edits.merge(ws, run_id, args.clusters, name=args.name, progress=progress)
    elif op == "split":
        res = edits.split(ws, run_id, args.cluster, args.k, seed=args.seed, progress=progress)
    elif op == "move":
        docs = doc_ids_from(ws, args.docs, run_id=run_id)
        res = edits.move(ws, run_id, docs, args.to, progress=progress)
    elif op == "drop":
        res = edits.drop(ws, run_id, args.cluster, to_nearest=args.to_nearest, progress=progress)
    elif op == "drill":
        docs = doc_ids_from(ws, args.docs, run_id=run_id)
        res = edits.drill(ws, run_id, docs, args.k, seed=args.seed, progress=progress)
    elif op == "merge-back":
        res = edits.merge_back(ws, run_id, progress=progress)
    else:  # carve
        docs = doc_ids_from(ws, args.docs, run_id=run_id)
        res = edits.carve(ws, run_id, docs, args.k, seed=args.seed, names=args.name or None, progress=progress)
    m = ws.manifest(res.run_id)
    edit = getattr(m, "edit", None) or m.extra.get("edit")
    data = {"run_id": res.run_id, "parent": m.parent_run, "edit": edit, "cached": bool(res.cached),
            "k": res.k, "noise": res.noise, "names": {str(k): v for k, v in run_names(ws, res.run_id).items()}}
    return data, res.run_id


def _names(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    llm = None
    if args.llm != "off":
        llm = LLMSettings.from_env(mode=args.llm, base_url=args.llm_base_url, model=args.llm_model,
                                   timeout=args.llm_timeout)
    offered = suggest_names(ws, args.run_id, llm=llm, progress=ui.progress())
    rows = [{"cluster": s.cluster, "size": s.size, "current": s.current, "keywords": s.keywords, "llm": s.llm,
             "offered": s.best()} for s in offered]
    data: dict[str, Any] = {"run_id": args.run_id, "clusters": rows}
    lines = [f"{r['cluster']:>5}  {r['size']:>9,}  {r['offered']}" + (f"   (keywords: {r['keywords']})"
             if r["offered"] != r["keywords"] else "") for r in rows]
    if args.accept:
        wanted = {r["cluster"]: r["offered"] for r in rows if r["offered"] != r["current"]}
        if wanted:
            res = edits.rename(ws, args.run_id, wanted)
            data.update({"accepted": True, "new_run_id": res.run_id, "cached": bool(res.cached)})
            lines.append(f"names stored in {res.run_id}")
        else:
            data.update({"accepted": False, "new_run_id": None})
            lines.append("every cluster already has its offered name: nothing written")
    return data, "\n".join(lines)


def _history(args: argparse.Namespace, ws: Any, ui: Any) -> tuple[dict[str, Any], str]:
    chain = version_chain(ws, args.run_id)
    rows = []
    for rid in chain:
        m = ws.manifest(rid)
        rows.append({"run_id": rid, "parent": m.parent_run, "edit": getattr(m, "edit", None) or m.extra.get("edit"),
                     "k": m.k, "noise": m.noise})
    lines = []
    for i, r in enumerate(rows):
        what = "clustered from " + str(ws.manifest(r["run_id"]).embedding_id) if r["edit"] is None else edits.describe_edit(r["edit"])
        lines.append(f"{'  ' * i}{r['run_id']}  k={r['k']}  {what}")
    return {"run_id": args.run_id, "versions": rows}, "\n".join(lines)
