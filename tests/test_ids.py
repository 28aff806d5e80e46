"""Hostile artifact ids: the full id grammar in the store, the CLI, SQL scopes and exports."""

from __future__ import annotations

import pytest
from fakes_run import blank, make_run

from textcluster.cli import main
from textcluster.errors import IdError, StoreError
from textcluster.query import export, sql
from textcluster.store import ID_GRAMMAR, Workspace, check_id, is_id, kind_of

GOOD = "run-0123456789abcdef"

HOSTILE = [
    "run-../../x",  # path traversal
    "run-abc/..",
    "run-0123456789abcdef/../../etc",
    "../run-0123456789abcdef",
    "/tmp/run-0123456789abcdef",
    "xyz-0123456789abcdef",  # unknown prefix
    "RUN-0123456789abcdef",
    "run-0123456789ABCDEF",  # upper-case hex
    "run-0123456789abcde",  # too short
    "run-0123456789abcdef0",  # too long
    "run-0123456789abcdeg",  # not hex
    "run-0123456789abcdef\n",  # trailing newline ($ would let it through)
    "run-0123456789abcdef\x00",  # NUL
    "run-01234567\x0089abcdef",
    " run-0123456789abcdef",
    "run_0123456789abcdef",
    "run-",
    "",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_check_id_rejects_hostile_text_naming_it_and_the_grammar(bad):
    with pytest.raises(IdError) as e:
        check_id(bad)
    msg = str(e.value)
    assert msg.startswith(repr(bad)) and "is not an artifact id" in msg and ID_GRAMMAR in msg
    assert "\n" not in msg and "\x00" not in msg  # shown escaped: one readable line
    assert not is_id(bad)
    with pytest.raises(IdError):
        kind_of(bad)


@pytest.mark.parametrize("bad", [None, 12, b"run-0123456789abcdef", ["run-0123456789abcdef"]])
def test_check_id_rejects_non_strings(bad):
    with pytest.raises(IdError, match="is not an artifact id"):
        check_id(bad)


def test_check_id_accepts_every_kind_and_checks_the_kind():
    for prefix, kind in [("cor", "corpus"), ("emb", "embedding"), ("run", "run"), ("dsc", "description"),
                         ("smp", "sample"), ("exp", "export")]:
        aid = f"{prefix}-0123456789abcdef"
        assert check_id(aid) == aid and check_id(aid, kind) == aid and kind_of(aid) == kind
    with pytest.raises(IdError, match=r"'smp-0123456789abcdef' is a sample id; expected a run id \(run-<16"):
        check_id("smp-0123456789abcdef", "run")
    with pytest.raises(IdError, match=r"'run-\.\./x' is not an embedding id; embedding ids look like emb-<16"):
        check_id("run-../x", "embedding")
    with pytest.raises(StoreError, match="unknown artifact kind 'model'"):
        check_id(GOOD, "model")


def test_a_long_text_is_cut_in_the_message():
    with pytest.raises(IdError) as e:
        check_id("run-" + "a" * 10_000)
    assert len(str(e.value)) < 400 and "(10004 characters)" in str(e.value)


@pytest.mark.parametrize("bad", ["run-../../x", "run-abc/..", "cor-0123456789abcdef\n", "emb-0123456789abcdef\x00"])
def test_workspace_paths_reject_hostile_ids_and_create_nothing(tmp_path, bad):
    ws = Workspace(tmp_path / "ws")
    for call in (ws.path, ws.exists, ws.manifest, ws.partial_dir, ws.parents, ws.dependents, ws.corpus_of,
                 ws.remove, ws.delete, ws.cache_dir):
        with pytest.raises(IdError, match="is not an"):
            call(bad)
    with pytest.raises(IdError):
        ws.write(bad, blank("run"))
    with pytest.raises(IdError):
        ws.write("run-0123456789abcdef", blank("run"), parents=[bad])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created, inside or outside


def test_cache_dir_is_for_embeddings_only(tmp_path):
    ws = Workspace(tmp_path)
    assert ws.cache_dir("emb-0123456789abcdef") == tmp_path / "cache" / "emb-0123456789abcdef"
    with pytest.raises(IdError, match="is a run id; expected an embedding id"):
        ws.cache_dir(GOOD)


# -- SQL scope and exports ----------------------------------------------------------


@pytest.fixture
def fake(tmp_path):
    ws = Workspace(tmp_path / "ws")
    return ws, make_run(ws, sizes=(6, 4))


@pytest.mark.parametrize("bad", ["run-' OR 1=1 --", "run-0123456789abcdef'", "run-0123456789abcdef\n"])
def test_sql_scope_takes_only_run_ids(fake, bad):
    ws, _ = fake
    with pytest.raises(IdError, match="is not a run id"):
        sql.query(ws, "SELECT 1", run_id=bad)


def test_sql_scope_names_the_wrong_kind(fake):
    ws, fr = fake
    with pytest.raises(IdError, match=f"'{fr.corpus_id}' is a corpus id; expected a run id"):
        sql.query(ws, "SELECT 1", run_id=fr.corpus_id)


def test_export_checks_run_and_sample_ids(fake, tmp_path):
    ws, fr = fake
    out = tmp_path / "o.csv"
    with pytest.raises(IdError, match="'run-../../x' is not a run id"):
        export.export(ws, out, run_id="run-../../x")
    with pytest.raises(IdError, match=f"'{fr.run_id}' is a run id; expected a sample id"):
        export.export(ws, out, sample_id=fr.run_id)
    with pytest.raises(IdError, match="is not a run id"):
        export.lineage(ws, "run-abc/..")
    assert not out.exists()


# -- the CLI ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "{bad}"],
        ["cluster", "{bad}"],
        ["assign", "{bad}", "new.csv"],
        ["describe", "{bad}"],
        ["sample", "{bad}", "--size", "3"],
        ["query", "SELECT 1", "--run", "{bad}"],
        ["export", "--run", "{bad}", "--out", "x.csv"],
        ["export", "--sample", "{bad}", "--out", "x.csv"],
        ["rm", "{bad}", "--yes"],
    ],
)
@pytest.mark.parametrize("bad", ["run-../../x", "cor-0123456789ABCDEF", "smp-0123456789abcdef\n", "dsc-0123\x00"])
def test_cli_id_arguments_are_one_error_line_and_exit_2(argv, bad, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main([a.replace("{bad}", bad) for a in argv] + ["--workspace", str(tmp_path / "ws")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and repr(bad) in errors[0] and "ids look like" in errors[0]
    assert "Traceback" not in err and not (tmp_path / "ws").exists()


def test_cli_wrong_kind_is_named(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["describe", "smp-0123456789abcdef", "--workspace", str(tmp_path)])
    assert e.value.code == 2
    assert "error: argument RUN_ID: 'smp-0123456789abcdef' is a sample id; expected a run id" in capsys.readouterr().err
