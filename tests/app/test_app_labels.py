"""One-line labels of artifacts in the pickers."""

from __future__ import annotations

from textcluster.store import RunManifest
from ui.widgets import run_label


def _run(**fields) -> RunManifest:
    return RunManifest(**{"embedding_id": "emb-1", "n": 100, "dim": 5, "noise": 0.0, **fields})


def test_run_label_names_the_reducer_and_the_umap_ensemble() -> None:
    base = {"id": "run-1", "clusterer": {"method": "kmeans"}, "k": 20}
    assert run_label(_run(**base, reducer={"method": "none", "dims": 5, "runs": 1})) == "run-1 · kmeans · 20 clusters"
    assert run_label(_run(**base, reducer={"method": "umap", "dims": 5, "runs": 5})) == "run-1 · umap 5-d ×5 → kmeans · 20 clusters"
    assert run_label(_run(**base, reducer={"method": "smooth", "dims": 5})) == "run-1 · smooth → kmeans · 20 clusters"
    assert run_label(_run(id="run-2", clusterer={}, reducer={}, k=3)) == "run-2 · 3 clusters"


def test_display_path_is_relative_or_home_based(tmp_path) -> None:
    from ui.widgets import display_path

    home, cwd = tmp_path / "home", tmp_path / "home" / "project"
    (cwd / "workspace").mkdir(parents=True)
    assert display_path(cwd / "workspace", cwd=cwd, home=home) == "workspace"
    assert display_path(cwd, cwd=cwd, home=home) == "."
    assert display_path(home / "data" / "ws", cwd=cwd, home=home) == "~/data/ws"
    assert display_path(home, cwd=cwd, home=home) == "~"
    elsewhere = tmp_path / "elsewhere"
    assert display_path(elsewhere, cwd=cwd, home=home) == str(elsewhere.resolve())
