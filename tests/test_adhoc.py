"""The one-off runs behind `segment`, `cluster` and `kpis` (rfm_engine.runs.adhoc), as a library.

The commands are tested through the installed `rfm-engine` elsewhere (test_cli, test_clustering,
test_kpi_report); here: what the functions return and write, and that the `kpis` command's
report is the weekly run's (one definition of the KPI report with its optional inputs).
"""

import json

import pandas as pd
import pytest

from rfm_engine.config import Config
from rfm_engine.datasets.sample_data import write_sample_data
from rfm_engine.errors import ConfigError, OutputExistsError
from rfm_engine.runs.adhoc import (
    CLUSTER_SIDES,
    read_transactions,
    run_cluster,
    run_kpis,
    run_segment,
)
from rfm_engine.runs.weekly import run_weekly

COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
           "quantity": "Quantity", "unit_price": "Price", "email": "Email"}
KINDS = ("costs", "surveys", "tickets", "leads", "subscriptions", "email_events")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("adhoc"), n_customers=400, seed=5)


@pytest.fixture
def config(sample):
    return Config().with_overrides({"input.path": str(sample["transactions"]),
                                    "columns": COLUMNS, "input.on_bad_rows": "drop"})


def test_no_input_is_a_config_error():
    with pytest.raises(ConfigError, match="No input: give INPUT or \\[input\\] path"):
        read_transactions(Config())


def test_run_segment_writes_the_table_its_summary_and_the_model(config, tmp_path):
    out = tmp_path / "seg.parquet"
    done = run_segment(config, out, save_model=tmp_path / "models" / "m.skops")
    written = pd.read_parquet(out)
    assert len(written) == len(done.segmentation.customers) > 0
    summary = pd.read_csv(tmp_path / "seg.parquet.summary.csv")
    assert summary["customers"].sum() == len(written)
    assert json.loads((tmp_path / "seg.parquet.quality.json").read_text()) == \
        done.quality.to_dict()
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert "m" in manifest["models"]
    assert len(done.notes) == 1 and "outside the models folder" in done.notes[0]


def test_run_segment_refuses_to_replace_without_force(config, tmp_path):
    out = tmp_path / "seg.csv"
    out.write_text("keep me\n")
    with pytest.raises(OutputExistsError, match="seg.csv"):
        run_segment(config, out)
    assert out.read_text() == "keep me\n"
    assert not (tmp_path / "seg.csv.summary.csv").exists()
    run_segment(config, out, force=True)
    assert pd.read_csv(out)["segment"].notna().all()


def test_run_cluster_writes_every_side_file_output_last(config, tmp_path):
    config = config.with_overrides({"clustering.k_range": [2, 4],
                                    "clustering.sample_size": 300})
    out = tmp_path / "cl.csv"
    done = run_cluster(config, out)
    assert done.paths == [tmp_path / f"cl.csv.{side}" for side in CLUSTER_SIDES] + [out]
    assert all(path.stat().st_size > 0 for path in done.paths)
    assert pd.read_csv(out)["cluster"].nunique() == done.clustering.clusterer.n_clusters_
    assert done.model().clusterer_.n_clusters_ == done.clustering.clusterer.n_clusters_


def test_kpis_command_and_weekly_run_give_the_same_report(config, sample, tmp_path):
    inputs = {kind: str(sample[kind]) for kind in KINDS}
    settings = {"kpis.period": "quarter", "kpis.churn_days": 60, "kpis.clv": False,
                "kpis.inputs": inputs, "output.no_suppression": True,
                "output.consent_required": False}
    weekly = run_weekly(config.with_overrides(settings), output_dir=tmp_path / "runs")
    done = run_kpis(config, tmp_path / "k.csv", inputs=inputs, period="quarter",
                    churn_days=60, clv=False)
    assert (tmp_path / "k.csv").read_bytes() == (weekly.run_dir / "kpis.csv").read_bytes()
    assert "costs" in pd.read_csv(tmp_path / "k.csv")
    ours = json.loads((tmp_path / "k.csv.json").read_text())
    theirs = json.loads((weekly.run_dir / "kpis.json").read_text())
    assert ours["extras"] == theirs["extras"] and "NPS" in ours["extras"]
    assert set(done.report.extras) == {"NPS", "CSAT", "CES", "First-contact resolution",
                                       "Lead-to-customer conversion",
                                       "Sales cycle (days, created to won)",
                                       "Subscription renewal rate", "Email rates per campaign"}
