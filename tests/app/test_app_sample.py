"""Sample page: policy controls, quota preview, drawn sample table."""

from __future__ import annotations

from apphelpers import assert_clean, open_page

from ui import state


def test_quota_preview_and_draw(app_ws, app_run):
    at = open_page("views/sample.py")
    assert_clean(at)
    at.number_input(key="sample_size").set_value(12).run()
    at.selectbox(key="sample_allocation").set_value("equal").run()
    assert_clean(at)
    assert at.subheader[0].value == "Quotas: 12 rows from 3 clusters"
    assert at.get("vega_lite_chart")  # the quota bar chart
    at.button(key="sample_draw").click().run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) == 12 and table["doc_id"].is_unique
    assert table["cluster"].value_counts().tolist() == [4, 4, 4]
    sid = at.session_state[state.SAMPLE]
    assert app_ws.exists(sid) and app_ws.manifest(sid).run_id == app_run


def test_only_some_clusters(app_ws, app_run):
    at = open_page("views/sample.py")
    at.number_input(key="sample_size").set_value(10).run()
    at.multiselect(key="sample_only").set_value([0]).run()
    assert_clean(at)
    assert at.subheader[0].value == "Quotas: 10 rows from 1 clusters"
