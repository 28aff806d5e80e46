"""CLI: ``textcluster rm ID`` (dry run, confirmation, --yes, JSON)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from fakes_run import make_run

from textcluster.cli import main
from textcluster.config import SamplingPolicy
from textcluster.describe import sampling
from textcluster.store import Workspace


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def env(tmp_path):
    ws = Workspace(tmp_path / "ws")
    fr = make_run(ws)
    sid = sampling.sample(ws, fr.run_id, SamplingPolicy(size=5)).sample_id
    return ws, fr, sid


def _run(capsys, ws, *argv):
    code = main([*argv, "--workspace", str(ws.root)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_dry_run_lists_children_first_and_removes_nothing(env, capsys):
    ws, fr, sid = env
    code, out, _ = _run(capsys, ws, "rm", fr.embedding_id, "--dry-run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "would remove 3 artifacts (children first):"
    assert [ln.split()[:2] for ln in lines[1:]] == [
        ["sample", sid], ["run", fr.run_id], ["embedding", fr.embedding_id]]
    assert "5 rows" in lines[1] and "kmeans · k=3" in lines[2] and "fake · 60 × 8" in lines[3]
    code, out, _ = _run(capsys, ws, "rm", fr.embedding_id, "--dry-run", "--json")
    data = json.loads(out)
    assert code == 0 and list(data) == ["would_remove"]
    assert data["would_remove"][0] == {"kind": "sample", "id": sid, "label": "5 rows · sqrt/random"}
    assert all(ws.exists(a) for a in (sid, fr.run_id, fr.embedding_id))


def test_yes_json_removes_and_reports(env, capsys):
    ws, fr, sid = env
    code, out, err = _run(capsys, ws, "rm", fr.run_id, "--yes", "--json")
    assert code == 0, err
    assert json.loads(out) == {"removed": [
        {"kind": "sample", "id": sid, "label": "5 rows · sqrt/random"},
        {"kind": "run", "id": fr.run_id, "label": "kmeans · k=3"},
    ]}
    assert not ws.exists(fr.run_id) and not ws.exists(sid) and ws.exists(fr.embedding_id)
    code, out, _ = _run(capsys, ws, "rm", fr.corpus_id, "-y")
    assert code == 0 and out.splitlines()[0] == "removed 2 artifacts:"
    assert ws.list("corpus") == [] and ws.list("embedding") == []


def test_without_yes_a_non_terminal_stdin_is_refused(env, capsys, monkeypatch):
    ws, fr, _ = env
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: not a terminal
    code, out, err = _run(capsys, ws, "rm", fr.run_id)
    assert code == 2 and out == ""
    assert err.startswith("error: rm ") and err.count("\n") == 1
    assert "would remove 2 artifacts" in err and "pass --yes" in err
    assert ws.exists(fr.run_id)


def test_a_terminal_is_asked_and_only_yes_removes(env, capsys, monkeypatch):
    ws, fr, sid = env
    monkeypatch.setattr(sys, "stdin", _Tty("n\n"))
    code, out, err = _run(capsys, ws, "rm", fr.run_id)
    assert code == 0 and out.strip() == "nothing removed"
    assert sid in err and "Remove these 2 artifacts? [y/N]" in err
    assert ws.exists(fr.run_id) and ws.exists(sid)
    monkeypatch.setattr(sys, "stdin", _Tty("y\n"))
    code, out, _ = _run(capsys, ws, "rm", fr.run_id, "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)["removed"]] == [sid, fr.run_id]
    assert not ws.exists(fr.run_id)


def test_unknown_id_is_an_error_line(env, capsys):
    ws, _, _ = env
    code, _, err = _run(capsys, ws, "rm", "run-0123456789abcdef", "--yes")
    assert code == 2 and err.startswith("error: no run 'run-0123456789abcdef' in workspace")


def test_rm_in_a_script_without_yes(env):
    """The real console: stdin from a pipe, one error line, exit 2, nothing removed."""
    ws, fr, _ = env
    p = subprocess.run(
        [sys.executable, "-m", "textcluster", "rm", fr.corpus_id, "--workspace", str(ws.root)],
        input="y\n", capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("error: ") and "pass --yes" in p.stderr and p.stderr.count("\n") == 1
    assert ws.exists(fr.corpus_id)
