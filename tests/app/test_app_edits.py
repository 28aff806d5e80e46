"""Curate in Explore (merge, drop, names, versions) and the Compare page."""

from __future__ import annotations

from apphelpers import assert_clean, open_page

from textcluster.cluster.versions import run_names
from ui import state


def test_merge_in_explore_makes_a_version_and_compare_shows_the_merge(app_ws, app_run):
    at = open_page("views/explore.py")
    assert_clean(at)
    at.toggle(key="edits_on").set_value(True).run()
    at.multiselect(key="edits_merge_pick").select(0).select(1).run()
    at.text_input(key="edits_merge_name").input("Sport and code").run()
    at.button(key="edits_merge").click().run()
    assert_clean(at)
    new = at.session_state[state.RUN]
    assert new != app_run
    m = app_ws.manifest(new)
    assert m.parent_run == app_run and m.edit == {"op": "merge", "clusters": [0, 1], "name": "Sport and code"}
    assert "Sport and code" in run_names(app_ws, new).values()
    assert any("Merged 2 clusters" in s.value for s in at.success)
    metrics = {x.label: x.value for x in at.metric}
    assert metrics["Clusters"] == "2"  # Explore now shows the version
    # the history lists the parent and the version; going back makes the parent current again
    at.selectbox(key="edits_goto").select(app_run).run()
    at.button(key="edits_goto_go").click().run()
    assert at.session_state[state.RUN] == app_run

    at.switch_page("views/compare.py").run()
    assert_clean(at)
    at.selectbox(key="compare_a").select(app_run).run()
    at.selectbox(key="compare_b").select(new).run()
    assert_clean(at)
    metrics = {x.label: x.value for x in at.metric}
    assert float(metrics["ARI"]) < 1.0 and metrics["Matched clusters"] == "2"
    changes = at.dataframe[0].value  # the list of changes comes first
    assert changes["kind"].tolist() == ["merged"] and "Sport and code" in changes["text"].iloc[0]


def test_drop_and_a_sql_selection_tag(app_ws, app_run):
    at = open_page("views/explore.py")
    at.toggle(key="edits_on").set_value(True).run()
    at.radio(key="edits_sel_source").set_value("a SQL query").run()
    at.text_input(key="edits_sel_sql").input("SELECT doc_id FROM assignments WHERE cluster = 2").run()
    at.button(key="edits_sel_sql_go").click().run()
    assert_clean(at)
    assert any("20 documents selected" in md.value for md in at.markdown)
    at.text_input(key="edits_tag_name").input("later").run()
    at.button(key="edits_tag").click().run()
    assert_clean(at)
    from textcluster.query.tags import load_tags

    assert load_tags(app_ws, app_ws.corpus_of(app_run))["later"].size == 20
    at.selectbox(key="edits_drop_pick").select(2).run()
    at.button(key="edits_drop").click().run()
    assert_clean(at)
    new = at.session_state[state.RUN]
    assert app_ws.manifest(new).edit == {"op": "drop", "cluster": 2, "to_nearest": False}


def test_drill_down_as_a_sub_run_then_merge_back(app_ws, app_run):
    at = open_page("views/explore.py")
    at.toggle(key="edits_on").set_value(True).run()
    at.radio(key="edits_sel_source").set_value("a SQL query").run()
    at.text_input(key="edits_sel_sql").input("SELECT doc_id FROM assignments WHERE cluster IN (0, 1)").run()
    at.button(key="edits_sel_sql_go").click().run()
    at.number_input(key="edits_drill_k").set_value(2).run()
    at.button(key="edits_drill").click().run()
    assert_clean(at)
    at.button(key="edits_drill_open").click().run()
    assert_clean(at)
    sub = at.session_state[state.RUN]
    assert app_ws.manifest(sub).edit["op"] == "drill"
    at.button(key="edits_merge_back").click().run()
    assert_clean(at)
    back = at.session_state[state.RUN]
    m = app_ws.manifest(back)
    assert m.parent_run == app_run and m.edit["op"] == "merge_back" and m.edit["sub_run"] == sub
