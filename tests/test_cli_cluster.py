"""CLI: `textcluster cluster`, `run` and `assign` (JSON shape, exit code 2 on bad settings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from test_runs import TOPICS, write_embedding

from textcluster.cli import main
from textcluster.store import Workspace


@pytest.fixture(scope="module")
def ws_emb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("cliws")
    X, y = make_blobs(200, n_features=8, centers=3, cluster_std=0.5, random_state=1)
    eid = write_embedding(Workspace(root), X.astype(np.float32), [str(v) for v in y])
    return root, eid


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cluster_json_shape(ws_emb, capsys) -> None:
    root, eid = ws_emb
    data = _json(capsys, ["cluster", eid, "--k", "3", "--projection", "pca", "--json", "--workspace", str(root)])
    assert data["run_id"].startswith("run-") and data["n"] == 200 and data["k"] == 3
    assert data["noise"] == 0.0
    assert {"acc", "nmi", "ari", "silhouette", "davies_bouldin"} <= set(data["metrics"])
    assert all(0.0 <= data["metrics"][m] <= 1.0 for m in ("acc", "nmi"))
    assert {"reduce", "cluster", "total"} <= set(data["timings"])
    again = _json(capsys, ["cluster", eid, "--k", "3", "--projection", "pca", "--json", "--workspace", str(root)])
    assert again["cached"] is True and again["run_id"] == data["run_id"]


def test_cluster_hdbscan_with_params_and_text_output(ws_emb, capsys) -> None:
    root, eid = ws_emb
    assert main(["cluster", eid, "--method", "hdbscan", "--min-cluster-size", "10", "--reducer", "pca",
                 "--dims", "3", "--projection", "pca", "--noise", "assign", "--workspace", str(root)]) == 0
    out = capsys.readouterr().out
    assert "3 clusters" in out and "noise 0.0%" in out


def test_cluster_smooth_reducer(ws_emb, capsys) -> None:
    root, eid = ws_emb
    data = _json(capsys, ["cluster", eid, "--reducer", "smooth", "--smooth-neighbors", "5", "--k", "3",
                          "--projection", "pca", "--json", "--workspace", str(root)])
    assert data["metrics"]["acc"] > 0.95
    m = Workspace(root).manifest(data["run_id"])
    assert m.reducer["method"] == "smooth" and m.reducer["smooth_neighbors"] == 5
    assert m.assign_mode == "knn"


def test_impossible_k_exits_2_naming_the_value(ws_emb, capsys) -> None:
    root, eid = ws_emb
    assert main(["cluster", eid, "--k", "500", "--workspace", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "k=500 should be <= n_samples=200" in err


def test_run_then_assign(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(60):
        words = TOPICS[i % 3].split()
        lines.append(f"{' '.join(rng.choice(words, size=5))} n{i},t{i % 3}")
    f = tmp_path / "in.csv"
    f.write_text("body,topic\n" + "\n".join(lines) + "\n", encoding="utf-8")
    root = str(tmp_path / "ws")
    data = _json(capsys, ["run", str(f), "--text-field", "body", "--label-field", "topic", "--encoder", "tfidf",
                          "--encoder-dims", "8", "--k", "3", "--projection", "pca", "--json", "--workspace", root])
    assert data["k"] == 3 and data["metrics"]["acc"] > 0.9
    assert data["corpus_id"].startswith("cor-") and data["embedding_id"].startswith("emb-")
    assert {"ingest", "embed", "cluster", "total"} <= set(data["timings"])
    labels = np.load(Path(root) / "run" / data["run_id"] / "labels.npy")
    got = _json(capsys, ["assign", data["run_id"], str(f), "--text-field", "body", "--json", "--workspace", root])
    assert [r["cluster"] for r in got["labels"]] == labels.tolist()
    assert [r["row"] for r in got["labels"]] == list(range(1, 61))
    out = tmp_path / "labels.csv"
    assert main(["assign", data["run_id"], str(f), "--text-field", "body", "--output", str(out), "--workspace", root]) == 0
    assert out.read_text().splitlines()[0] == "row,cluster,distance"
