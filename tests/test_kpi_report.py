"""The KPI report and the `kpis` command, on generated data with every optional input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rfm_engine import customer_features, load_transactions, segment_customers
from rfm_engine.datasets.sample_data import write_crm_inputs, write_sample
from rfm_engine.io.crm_inputs import read_input
from rfm_engine.reports.kpi_report import build_kpi_report, costs_per_period, input_kpis

RFM = str(Path(sys.executable).with_name("rfm-engine"))
COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
           "quantity": "Quantity", "unit_price": "Price"}
KINDS = ("costs", "surveys", "tickets", "leads", "subscriptions", "email_events")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kpi")
    paths = write_sample(folder, n_customers=600, seed=4)
    transactions = pd.read_csv(paths["transactions"], dtype=str, keep_default_na=False)
    paths.update(write_crm_inputs(folder, transactions, seed=4))
    return paths


@pytest.fixture(scope="module")
def report(sample):
    tx = load_transactions(sample["transactions"], columns=COLUMNS)
    segments = segment_customers(customer_features(tx)).customers[["customer_id", "segment"]]
    inputs = {kind: read_input(kind, sample[kind]) for kind in KINDS}
    notes = []
    extras = input_kpis(inputs, notes=notes)
    built = build_kpi_report(tx, segments=segments, costs=costs_per_period(inputs["costs"]),
                             extras=extras)
    return built, segments, notes


def test_report_has_every_part(report):
    built, segments, notes = report
    assert notes == []
    frame = built.to_frame()
    assert {"cac", "clv_to_cac"} <= set(frame)
    by_segment = built.by_segment.to_frame()
    latest = by_segment[by_segment.period == by_segment.period.iloc[-1]]
    assert latest.active_customers.sum() == frame.active_customers.iloc[-1]
    assert set(built.extras) == {"NPS", "CSAT", "CES", "First-contact resolution",
                                 "Lead-to-customer conversion",
                                 "Sales cycle (days, created to won)",
                                 "Subscription renewal rate", "Email rates per campaign"}
    assert built.extras["NPS"]["nps"].between(-100, 100).all()
    assert built.clv is not None and (built.clv.customers.clv >= 0).all()


def test_html_has_plots_and_no_addresses(report):
    built = report[0]
    html = built.to_html()
    assert html.count("data:image/png;base64,") == 5
    assert "@" not in html
    assert "Email rates per campaign" in html


def test_kpi_table_has_human_headers_and_scrolls_in_its_box(report):
    built = report[0]
    html = built.to_html(table_file="kpis.csv")
    table = html[html.index("<h2>KPIs per period</h2>"):]
    table = table[:table.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert headers[:4] == ["Period", "Customers at start", "New customers", "Active customers"]
    assert {"Retention rate", "Average order value", "Revenue (net)",
            "Acquisition cost per new customer"} <= set(headers)
    assert not [h for h in headers if "_" in h]  # no raw column names
    assert '<th class=num title="retention_rate">Retention rate</th>' in table
    assert table.startswith("<h2>KPIs per period</h2>\n<div class=table><table>")
    assert ".table{max-width:100%;overflow-x:auto" in html
    assert '<a href="kpis.csv">kpis.csv</a>' in html
    assert "<a href" not in built.to_html()
    rows = re.findall(r"<tr><td>([^<]*)</td>", table)
    assert rows == built.kpis.period_labels()
    assert re.search(r"<th[^>]*>CSAT mean</th>", html)  # the optional inputs' tables too


def test_metrics_come_from_the_latest_complete_period(report):
    built = report[0]
    frame = built.to_frame()
    complete = frame[~frame.partial.astype(bool)].iloc[-1]
    metrics = built.metrics()
    assert metrics["period"]["revenue"] == pytest.approx(complete.revenue)
    assert metrics["predicted_clv"]["total"] == pytest.approx(built.clv.customers.clv.sum())
    assert json.loads(built.to_json())["latest_period"] == str(complete.period)


def test_kpis_command_writes_table_cohorts_report(sample, tmp_path, monkeypatch):
    out = tmp_path / "k.csv"
    mapping = ",".join(f"{k}={v}" for k, v in COLUMNS.items())
    args = [RFM, "kpis", sample["transactions"], "--columns", mapping, "--period", "quarter",
            "--by", "segment", "--no-clv", "-o", out]
    for kind in KINDS:
        args += [f"--{kind.replace('_', '-')}", sample[kind]]
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert {"period", "segment", "retention_rate", "churn_rate"} <= set(table)
    assert table.period.str.contains("Q").all()
    cohorts = pd.read_csv(tmp_path / "k.csv.cohorts.csv")
    assert (cohorts["0"] == 100).all()
    assert "NPS" in json.loads((tmp_path / "k.csv.json").read_text())["extras"]
    assert (tmp_path / "k.csv.html").read_text().startswith("<!DOCTYPE html>")
    assert "NPS" in result.stdout


def test_bad_optional_input_is_a_one_line_error(sample, tmp_path):
    bad = tmp_path / "surveys.csv"
    bad.write_text("response_id,date,survey,score\nR1,2024-01-01,nps,11\n")
    mapping = ",".join(f"{k}={v}" for k, v in COLUMNS.items())
    result = subprocess.run([RFM, "kpis", str(sample["transactions"]), "--columns", mapping,
                             "--surveys", str(bad), "-o", str(tmp_path / "k.csv")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "row 1, column 'score'" in result.stderr
    assert not (tmp_path / "k.csv").exists()


def test_an_engine_may_give_the_clv_summary_itself(sample, report):
    from rfm_engine.core.features import clv_summary

    tx = load_transactions(sample["transactions"], columns=COLUMNS)
    asked = []

    def summarise(unit):
        asked.append(unit)
        summary = clv_summary(tx, time_unit=unit)
        return summary[summary.customer_id != summary.customer_id.iloc[0]]  # one left out

    given = build_kpi_report(tx, clv_time_unit="D", clv_summary=summarise)
    assert asked == ["D"]  # asked once, in the report's time unit
    default = build_kpi_report(tx, clv_time_unit="D")
    assert len(given.clv.customers) == len(default.clv.customers) - 1
    assert given.to_frame().equals(default.to_frame())  # the period KPIs do not use it
