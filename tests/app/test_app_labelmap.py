"""Labels page: a run's clusters with their labels, applied as a run version, downloadable."""

from __future__ import annotations

from apphelpers import assert_clean, open_page

from textcluster.cluster.versions import run_names
from textcluster.labelmap import apply_label_map, parse_label_map
from textcluster.store import Workspace


def test_labels_page_shows_names_and_applies_a_version(app_ws, app_run):
    named = apply_label_map(app_ws, app_run, parse_label_map('{"0": "first <b>*x*</b>", "2": "third"}')).run_id
    at = open_page("views/labels.py")
    at.selectbox(key="labels_run").set_value(named).run()
    assert_clean(at)
    shown = at.dataframe[0].value  # the data editor, as AppTest sees it
    assert shown["label"].tolist() == ["first <b>*x*</b>", "", "third"]
    assert shown["size"].sum() == app_ws.manifest(app_run).n
    at.button(key="labels_apply").click().run()
    assert_clean(at)
    newest = Workspace(app_ws.root).list("run")[0]
    assert newest.parent_run == named and run_names(app_ws, newest.id) == run_names(app_ws, named)
    assert any(newest.id in s.value for s in at.success)


def test_a_run_without_names_has_apply_disabled(app_ws, app_run):
    at = open_page("views/labels.py")
    assert_clean(at)
    assert at.button(key="labels_apply").disabled
