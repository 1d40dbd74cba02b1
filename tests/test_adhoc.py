"""The one-off runs behind the commands (rfm_engine.runs.adhoc), as a library.

The commands are tested through the installed `rfm-engine` elsewhere (test_cli, test_clustering,
test_kpi_report); here: what the functions return and write, and that the `kpis` command's
report is the weekly run's (one definition of the KPI report with its optional inputs).
"""

import json

import pandas as pd
import pytest

from rfm_engine.config import Config
from rfm_engine.datasets.sample_data import write_sample_data
from rfm_engine.errors import (
    ConfigError,
    MissingColumnsError,
    ModelNotIdentifiedError,
    OutputExistsError,
)
from rfm_engine.runs.adhoc import (
    CLUSTER_SIDES,
    CLV_SIDES,
    read_transactions,
    run_cluster,
    run_clv,
    run_clv_summary,
    run_features,
    run_kpis,
    run_lift,
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


def test_run_features_and_clv_summary_write_what_they_return(config, tmp_path):
    done = run_features(config, tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), done.table)
    assert done.table["customer_id"].is_unique and len(done.table) > 0
    assert json.loads((tmp_path / "f.parquet.quality.json").read_text()) == \
        done.quality.to_dict()
    weeks = run_clv_summary(config, tmp_path / "s.csv", time_unit="W")
    days = run_clv_summary(config, tmp_path / "d.csv")
    assert list(weeks.table.columns) == ["customer_id", "frequency", "recency", "T",
                                         "monetary_value"]
    assert (days.table["T"] / 7).round(6).equals(weeks.table["T"].round(6))
    assert len(pd.read_csv(tmp_path / "s.csv")) == len(weeks.table)


def test_run_clv_writes_predictions_plots_and_params(config, tmp_path):
    out = tmp_path / "clv.csv"
    done = run_clv(config, out, horizon=26, params_out=tmp_path / "params.json")
    assert [p.name for p in sorted(tmp_path.iterdir())] == [
        "clv.csv", *(f"clv.csv.{side}" for side in sorted(CLV_SIDES)), "params.json"]
    assert json.loads((tmp_path / "params.json").read_text()) == {
        "model": "bgnbd", "time_unit": "W", **done.result.params}
    assert pd.read_csv(out)["clv"].sum() == pytest.approx(done.result.customers["clv"].sum())


def test_run_clv_without_repeat_buyers_says_why_and_writes_nothing(tmp_path):
    tx = tmp_path / "once.csv"
    pd.DataFrame({"customer_id": ["a", "b", "c"], "order_date": ["2024-01-01"] * 3,
                  "amount": [1.0, 2.0, 3.0]}).to_csv(tx, index=False)
    with pytest.raises(ModelNotIdentifiedError,
                       match=r"once\.csv: no CLV predicted: too few repeat purchases.* "
                             "Nothing was written\\."):
        run_clv(Config().with_overrides({"input.path": str(tx)}), tmp_path / "clv.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["once.csv"]


def test_run_lift_reads_with_the_runs_options_unless_told_otherwise(config, sample, tmp_path):
    weekly = run_weekly(config.with_overrides({"output.no_suppression": True,
                                               "output.consent_required": False,
                                               "features.as_of": "2025-06-30"}),
                        output_dir=tmp_path / "runs")
    bare = Config().with_overrides({"input.path": str(sample["transactions"])})
    # The run's own [columns] and on_bad_rows read the Online Retail layout.
    report = run_lift(weekly.run_dir, bare, days=60, output=tmp_path / "lift.csv")
    assert (tmp_path / "lift.csv").is_file() and (tmp_path / "lift.csv.png").is_file()
    assert pd.read_csv(tmp_path / "lift.csv")["n_target"].sum() == \
        report.to_frame()["n_target"].sum() > 0
    # A config file's [input] and [columns] replace the run's: canonical names fail here.
    with pytest.raises(MissingColumnsError, match="'customer_id'"):
        run_lift(weekly.run_dir, bare, from_config=True)
    # --as-of cuts the outcome data: nothing after the run's as-of date is left.
    cut = run_lift(weekly.run_dir, bare.with_overrides({"features.as_of": "2025-06-30"}),
                   given={"as_of"}, days=60)
    assert cut.to_frame()["conversion_target"].fillna(0).eq(0).all()
    with pytest.raises(ConfigError, match="No transactions: give --transactions"):
        run_lift(weekly.run_dir, Config())
