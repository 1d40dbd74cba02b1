"""The marketers' page (``rfm-engine ui``, issue 12): data, list building, every page.

Two real weekly runs of a small generated sample (with suppression and consent files) in
one folder are the fixture; the list builder is checked against the lists the run itself
wrote, and every page and control is driven through Streamlit's ``AppTest``.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rfm_engine.campaigns.plan import DEFAULT_PLAN
from rfm_engine.campaigns.suppression import SuppressionList
from rfm_engine.config import load_config
from rfm_engine.datasets.sample_data import write_sample_data
from rfm_engine.errors import ComplianceError, ConfigError
from rfm_engine.runs import weekly
from rfm_engine.ui import app as app_module
from rfm_engine.ui.folders import RunFolder, customer_history, run_folders, segment_trends
from rfm_engine.ui.lists import (
    AUDIT_FILE,
    ListSpec,
    build_list,
    export_list,
    record_download,
    run_list_download,
)
from rfm_engine.ui.server import RUNS_ENV, streamlit_command

RFM = str(Path(sys.executable).with_name("rfm-engine"))
APP = str(Path(app_module.__file__))
WEEK1, WEEK2 = "2025-12-24", "2025-12-31"
MAPPING = {
    "customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
    "quantity": "Quantity", "unit_price": "Price", "email": "Email",
    "first_name": "First Name", "country": "Country", "channel": "Channel",
    "product_id": "StockCode", "category": "Category",
}


def _config(folder: Path, sample: dict, layout: str) -> Path:
    lines = ["[input]", f"path = {json.dumps(str(sample['transactions']))}", "[columns]"]
    lines += [f'{key} = "{value}"' for key, value in MAPPING.items()]
    lines += ["[output]", f'format = "{layout}"',
              f"suppression = [{json.dumps(str(sample['suppression']))}]",
              f"consent = {json.dumps(str(sample['consent']))}",
              "[clustering]", "enabled = true", "n_clusters = 3",
              "[kpis]", "clv = false", "[kpis.inputs]",
              f"costs = {json.dumps(str(sample['costs']))}",
              f"surveys = {json.dumps(str(sample['surveys']))}"]
    path = folder / f"{layout}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two weekly runs (mailchimp layout, suppression and consent) in one folder."""
    folder = tmp_path_factory.mktemp("ui")
    sample = write_sample_data(folder / "sample", n_customers=500, seed=5)
    config = load_config(_config(folder, sample, "mailchimp"))
    out = folder / "out"
    for day in (WEEK1, WEEK2):
        weekly.run_weekly(config.with_overrides({"features.as_of": day}), output_dir=out)
    return out


@pytest.fixture
def latest(runs):
    return RunFolder(runs / WEEK2)


def app_test(runs, monkeypatch) -> AppTest:
    monkeypatch.setenv(RUNS_ENV, str(runs))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    return at


def test_run_folders_and_what_a_run_holds(runs, latest):
    assert [r.as_of.isoformat() for r in run_folders(runs)] == [WEEK1, WEEK2]
    assert run_folders(runs / "missing") == []
    table = latest.segment_table
    assert table["customers"].sum() == len(latest.customers)
    assert (table["orders"] == table["segment"].map(
        latest.customers.groupby("segment")["frequency"].sum()).fillna(0)).all()
    positive = table["orders"] > 0
    assert (table.loc[positive, "aov"]
            == table.loc[positive, "revenue"] / table.loc[positive, "orders"]).all()
    counts = latest.rf_counts
    assert counts.to_numpy().sum() == len(latest.customers)
    assert list(counts.index) == sorted(counts.index, reverse=True)
    assert latest.transitions is not None and latest.triggers  # the second run has both
    trends = segment_trends(run_folders(runs))
    assert set(trends["as_of"].astype(str)) == {WEEK1, WEEK2}


def test_customer_history_reads_one_id_across_runs(runs, latest):
    some = latest.customers["customer_id"].iloc[0]
    history = customer_history(run_folders(runs), f"  {some} ")
    assert history["customer_id"].eq(some).all() and len(history) >= 1
    assert "email" not in history
    assert customer_history(run_folders(runs), "no-such-id").empty


@pytest.mark.parametrize("campaign", [c for c in DEFAULT_PLAN if c.name in (
    "retention_reward_champions", "resurrection_at_risk", "activation_second_order")],
    ids=lambda c: c.name)
def test_built_list_equals_the_runs_own_export(runs, campaign):
    # The first run has no contact history, so the same segments, name and holdout give
    # the list the weekly run wrote, byte for byte (suggestion columns included).
    run = RunFolder(runs / WEEK1)
    spec = ListSpec(campaign.segments, name=campaign.name, campaign_type=campaign.type,
                    holdout_fraction=campaign.holdout_fraction)
    built = build_list(run, spec)
    written = run.customers[run.customers["campaign"] == campaign.name]
    assert built.counts["targets"] == int((written["group"] == "target").sum())
    assert built.counts["suppressed"] == int((written["group"] == "suppressed").sum()) > 0 \
        or campaign.name != "retention_reward_champions"
    download = export_list(built, "mailchimp")
    assert download.data == (runs / WEEK1 / "campaigns" / f"{campaign.name}.csv").read_bytes()
    assert download.file_name == f"{campaign.name}.csv"


def test_filters_narrow_the_list_and_suppression_is_applied(latest):
    everyone = ListSpec(("champions", "loyal_customers"), holdout_fraction=0.0)
    built = build_list(latest, everyone)
    assert built.counts["candidates"] == latest.customers["segment"].isin(
        everyone.segments).sum()
    recent = ListSpec(everyone.segments, holdout_fraction=0.0, recency_days=(0, 10),
                      monetary=(100, 1e9), frequency=(2, 1000))
    narrowed = build_list(latest, recent)
    kept = narrowed.customers
    assert 0 < len(kept) < len(built.customers)
    assert kept["recency_days"].between(0, 10).all() and (kept["monetary"] >= 100).all()
    assert (kept["frequency"] >= 2).all()
    # a customer suppressed by id is never a target, whatever the filters
    target = built.targets["customer_id"].iloc[0]
    again = build_list(latest, everyone, suppressions=SuppressionList(customer_ids=[target]))
    row = again.customers.set_index("customer_id").loc[target]
    assert row["group"] == "suppressed"
    assert target not in export_list(again, "generic").data.decode()


def test_holdout_cap_channel_and_layouts(latest):
    spec = ListSpec(("champions",), holdout_fraction=0.5, max_size=5)
    built = build_list(latest, spec)
    assert built.counts["targets"] == 5 and built.counts["holdout"] >= 1
    push = build_list(latest, ListSpec(("champions",), channel="push"))
    download = export_list(push, "mailchimp")  # other channels: generic, without email
    assert download.layout == "generic"
    header = download.data.decode().splitlines()[0]
    # as the weekly run writes push/SMS lists: the email column is there, always empty
    assert header == "customer_id,email,first_name,segment,campaign"
    assert "@" not in download.data.decode()
    for layout, first in (("klaviyo", "Email Address"), ("hubspot", "Email"),
                          ("braze", "external_id")):
        assert export_list(built, layout).data.decode().startswith(first)
    with pytest.raises(ConfigError, match="'name' must be a slug"):
        build_list(latest, ListSpec(("champions",), name="My list!"))
    with pytest.raises(ConfigError, match="export format must be one of"):
        export_list(built, "excel")


def test_export_leaves_out_what_the_layouts_tool_refuses(latest):
    # Issue 14: the list is built before the layout is chosen; Mailchimp refuses a non-ASCII
    # address prefix and keeps 255 characters of a first name, Klaviyo takes both.
    import dataclasses

    built = build_list(latest, ListSpec(("champions",), holdout_fraction=0.0))
    customers = built.customers.copy()
    zoe, longname = built.targets["customer_id"].iloc[:2]
    customers.loc[customers["customer_id"] == zoe, "email"] = "zoë.refused@example.com"
    customers.loc[customers["customer_id"] == longname, "first_name"] = "N" * 300
    changed = dataclasses.replace(built, customers=customers)
    mailchimp = export_list(changed, "mailchimp")
    assert mailchimp.refused == 2
    assert sum(f["rows"] for f in mailchimp.files) == built.counts["targets"] - 2
    assert "zoë" not in mailchimp.data.decode() and "N" * 256 not in mailchimp.data.decode()
    klaviyo = export_list(changed, "klaviyo")
    assert klaviyo.refused == 0 and "zoë.refused@example.com" in klaviyo.data.decode()


def test_an_email_list_needs_the_runs_suppression_file(latest, tmp_path):
    # the run's suppression file gone: an email list is refused, as the weekly run would
    moved = RunFolder(latest.path)
    moved.manifest["config"]["output"]["suppression"] = []
    with pytest.raises(ComplianceError, match="need a suppression source"):
        build_list(moved, ListSpec(("champions",)))
    assert build_list(moved, ListSpec(("champions",), channel="sms")).counts["candidates"] > 0


def test_download_audit_records_no_address(tmp_path, latest):
    import shutil

    run = RunFolder(shutil.copytree(latest.path, tmp_path / WEEK2))
    built = build_list(run, ListSpec(("champions",)))
    download = export_list(built, "mailchimp")
    record = record_download(run, download, built=built)
    record_download(run, run_list_download(run, "retention_loyal"), source="run list")
    lines = (run.path / AUDIT_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["source"] for line in lines] == ["built list", "run list"]
    assert json.loads(lines[0]) == record
    assert record["rows"] == built.counts["targets"] and record["spec"]["segments"] == [
        "champions"]
    assert len(record["sha256"]) == 64 and "@" not in "\n".join(lines)


# --- the page, through AppTest ------------------------------------------------------------------


def test_overview_page(runs, monkeypatch):
    at = app_test(runs, monkeypatch)
    assert at.sidebar.radio(key="page").value == "Overview"
    assert at.sidebar.selectbox(key="as_of").value == WEEK2
    assert f"run of {WEEK2}" in at.header[0].value
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Customers", "Revenue", "Segments"]
    customers = len(RunFolder(runs / WEEK2).customers)
    assert at.metric[0].value == f"{customers:,}"
    segments = at.dataframe[0].value
    assert {"segment", "customers", "share", "revenue share", "orders", "AOV"} <= set(segments)
    assert len(at.get("plotly_chart")) == 2  # R x F heatmap, revenue treemap
    at.sidebar.selectbox(key="as_of").set_value(WEEK1).run()
    assert f"run of {WEEK1}" in at.header[0].value


def test_trends_page(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "Trends")
    assert len(at.get("plotly_chart")) == 2  # segment sizes, transition matrix
    names = at.selectbox(key="trigger").options
    assert names
    at.selectbox(key="trigger").set_value(names[-1]).run()
    trigger = RunFolder(runs / WEEK2).triggers[names[-1]]
    assert len(at.dataframe[0].value) == len(trigger)
    at.sidebar.selectbox(key="as_of").set_value(WEEK1).run()
    assert any("first in its folder" in i.value for i in at.info)


def test_campaigns_page(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "Campaigns")
    run = RunFolder(runs / WEEK2)
    at.selectbox(key="campaign").set_value("retention_loyal").run()
    targets = int(run.campaigns.set_index("campaign").loc["retention_loyal", "targets"])
    assert [m.value for m in at.metric if m.label == "Targets"] == [f"{targets:,}"]
    preview = at.dataframe[1].value
    assert "email" not in preview and len(preview) == min(targets, 200)
    at.checkbox(key="campaign_emails").check().run()
    assert "email" in at.dataframe[1].value
    buttons = at.get("download_button")
    assert len(buttons) == 1 and "as written" in buttons[0].proto.label


def test_build_a_list_page(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "Build a list")
    assert any("Pick at least one segment" in i.value for i in at.info)
    at.multiselect(key="list_segments").select("champions").run()
    run = RunFolder(runs / WEEK2)
    expected = build_list(run, ListSpec(("champions",)))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Targets"] == f"{expected.counts['targets']:,}"
    assert metrics["Suppressed"] == f"{expected.counts['suppressed']:,}"
    assert "email" not in at.dataframe[1].value
    # every control: filters, sending options, layout
    at.checkbox(key="list_has_email").check().run()
    at.slider(key="list_holdout").set_value(0.0).run()
    assert {m.label: m.value for m in at.metric}["Holdout"] == "0"
    at.number_input(key="list_max_size").set_value(3).run()
    assert {m.label: m.value for m in at.metric}["Targets"] == "3"
    at.number_input(key="list_max_size").set_value(0).run()
    low, high = at.slider(key="list_recency").value
    at.slider(key="list_recency").set_value((low, low + 30)).run()
    at.slider(key="list_monetary").set_value(at.slider(key="list_monetary").value).run()
    at.slider(key="list_orders").set_value(at.slider(key="list_orders").value).run()
    at.multiselect(key="list_country").select(at.multiselect(key="list_country").options[0]).run()
    cluster = at.multiselect(key="list_cluster").options[0]
    at.multiselect(key="list_cluster").select(cluster).run()
    kept = build_list(run, ListSpec(("champions",), has_email=True, holdout_fraction=0.0,
                                    clusters=(cluster,))).customers
    assert kept["cluster_name"].eq(cluster).all()
    at.selectbox(key="list_type").set_value("resurrection").run()
    at.text_input(key="list_name").input("december_push").run()
    at.selectbox(key="list_channel").set_value("email").run()
    at.selectbox(key="list_layout").set_value("klaviyo").run()
    assert not at.exception
    at.checkbox(key="list_emails").check().run()
    assert "email" in at.dataframe[1].value
    at.button(key="list_prepare").click().run()
    assert not at.exception and not at.error
    assert "december_push.csv" in at.success[0].value
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download the list"]
    # a bad name is one line on the page, nothing prepared
    at.text_input(key="list_name").input("Bad Name").run()
    assert "must be a slug" in at.error[0].value
    assert not at.get("download_button")


def test_customer_lookup_page(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "Customer lookup")
    run = RunFolder(runs / WEEK2)
    target = run.customers[run.customers["group"] == "target"].iloc[0]
    at.text_input(key="lookup_id").input(str(target["customer_id"])).run()
    fields = at.dataframe[0].value
    assert "email" not in set(fields["field"]) and "segment" in set(fields["field"])
    history = at.dataframe[1].value
    assert len(history) == 2 and list(history["segment"])[-1] == target["segment"]
    received = at.dataframe[2].value
    assert target["campaign"] in set(received["campaign"])
    at.text_input(key="lookup_id").input("no-such-customer").run()
    assert "No customer" in at.warning[0].value


def test_kpis_page(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "KPIs and CLV")
    assert len(at.get("plotly_chart")) == 2
    at.multiselect(key="kpi_charts").select("Revenue").select("Customers").run()
    assert len(at.get("plotly_chart")) == 3
    options = at.multiselect(key="kpi_charts").options
    assert {"Cohort retention", "Revenue by segment"} <= set(options)
    for name in options:
        at.multiselect(key="kpi_charts").select(name)
    at.run()
    assert len(at.get("plotly_chart")) == len(options) and not at.exception
    kpis = RunFolder(runs / WEEK2).kpis
    assert len(at.dataframe[0].value) == len(kpis)
    extras = at.selectbox(key="kpi_extra").options
    at.selectbox(key="kpi_extra").set_value(extras[-1]).run()
    assert not at.exception


def test_an_empty_folder_says_what_a_run_folder_is(tmp_path, monkeypatch):
    at = app_test(tmp_path, monkeypatch)
    assert "No run in" in at.error[0].value


# --- the command ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rfm_engine_ui_serves_the_page_on_loopback(runs):
    port = _free_port()
    server = subprocess.Popen([RFM, "ui", "--runs", str(runs), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as answer:
                    assert answer.read() == b"ok"
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the page did not start in 60 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in out
    assert "@" not in out + err


def test_rfm_engine_ui_refuses_a_missing_folder_and_warns_on_open_binding(tmp_path):
    result = subprocess.run([RFM, "ui", "--runs", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --runs ")
    command, env = streamlit_command(tmp_path, port=9999, host="0.0.0.0")
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    assert env[RUNS_ENV] == str(tmp_path.resolve())
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    result = subprocess.run([RFM, "ui", "--runs", str(tmp_path / "nope"), "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60)
    assert "no login" in result.stderr


def test_pages_keep_no_query_parameters(runs, monkeypatch):
    at = go(app_test(runs, monkeypatch), "Build a list")
    at.multiselect(key="list_segments").select("champions").run()
    assert dict(at.query_params) == {}


def test_no_download_where_its_audit_record_cannot_be_written(runs, monkeypatch):
    import os

    at = go(app_test(runs, monkeypatch), "Campaigns")
    assert at.get("download_button")
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == runs / WEEK2
                        else real(path, mode))
    at.run()
    assert not at.get("download_button")
    assert "downloads are off" in at.error[0].value
