"""Intervals of the CLV models (observed information, delta method) and the predicted CLV
of the segment table of every weekly run.

Coverage is checked on data simulated from known parameters; the standard errors on CDNOW
against lifetimes' published ones; the run's segment table against a fit of its own.
"""

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from rfm_engine.config import load_config
from rfm_engine.core.features import clv_summary
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import ConfigError
from rfm_engine.io.loading import load_transactions
from rfm_engine.io.writers import json_text
from rfm_engine.measurement.clv import (
    SEGMENT_CLV_COLUMNS,
    BetaGeoModel,
    CLVResult,
    GammaGammaModel,
    ParetoNBDModel,
    clv_intervals,
    fit_clv,
    parameter_uncertainty,
    segment_clv,
    simulate_summary,
)
from rfm_engine.measurement.clv.uncertainty import (
    INTERVAL_COLUMNS,
    log_standard_errors,
    observed_information,
)
from rfm_engine.measurement.clv.value import _predictions
from rfm_engine.runs import weekly

from .conftest import DATA

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
TRUE_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def _published_summary() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").rename(
        columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )


# ---------------------------------------------------------------- parameters


def test_standard_errors_match_lifetimes_on_cdnow():
    # lifetimes 0.11.3, BetaGeoFitter().fit(...).summary on the same CDNOW summary file
    # (2,357 customers): se(coef) r 0.012557, alpha 0.378221, a 0.185719, b 0.705345
    # (numdifftools' Hessian of its likelihood; ours: central differences of the gradient).
    summary = _published_summary()
    uncertainty = parameter_uncertainty(BetaGeoModel().fit(summary), summary)
    published = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for name, se in zip(uncertainty.names, uncertainty.standard_errors, strict=True):
        assert se == pytest.approx(published[name], rel=2e-4), name
    assert uncertainty.problem is None and uncertainty.n_customers == 2357


def test_information_from_values_equals_information_from_gradients():
    # A likelihood without a gradient (e.g. a plugged-in model) gets the same matrix.
    summary = simulate_summary(1500, T=39.0, random_state=3)
    model = BetaGeoModel().fit(summary)
    from rfm_engine.measurement.clv.uncertainty import _bgnbd_likelihood

    mean_loglik, n = _bgnbd_likelihood(summary)
    z = np.log(list(model.params_.values()))
    with_gradient = observed_information(mean_loglik, z, n)
    values_only = observed_information(lambda u: mean_loglik(u)[0], z, n)
    np.testing.assert_allclose(values_only, with_gradient, rtol=2e-3, atol=1e-3 * n)


def test_intervals_contain_the_estimate_and_widen_with_the_level():
    summary = simulate_summary(1000, T=52.0, random_state=4)
    result = fit_clv(summary, horizon=26, discount_rate=0.002, intervals=0.9)
    table = result.customers
    for name in ("expected_purchases", "clv"):
        low, high = table[f"{name}_low"].to_numpy(float), table[f"{name}_high"].to_numpy(float)
        point = table[name].to_numpy()
        assert np.isfinite(low).all() and np.isfinite(high).all()
        assert ((low <= point) & (point <= high)).all()
        assert (low < high).mean() > 0.99  # degenerate only where the prediction is 0
    wide = clv_intervals(result, summary, level=0.99)
    narrow = clv_intervals(result, summary, level=0.5)
    for key, unc in result.intervals.parameters.items():
        low, high = unc.interval(0.9)
        assert ((low < unc.estimate) & (unc.estimate < high)).all(), key
        assert (wide.parameters[key].interval(0.99)[0] < low).all()
        assert (narrow.parameters[key].interval(0.5)[1] < high).all()
    assert (wide.customers["clv_high"] > table["clv_high"]).all()


def test_delta_method_on_the_log_scale_matches_a_hand_computation():
    # One customer, one parameter moved at a time: the gradient of log E[Y] by hand, by a
    # wider step than the module's, and sqrt(g' Cov g).
    summary = simulate_summary(1000, T=39.0, random_state=5)
    model = BetaGeoModel().fit(summary)
    unc = parameter_uncertainty(model, summary)
    customer = summary.iloc[[0]]

    def predict(params):
        return {"y": BetaGeoModel.from_params(params).predict_purchases(20, customer).to_numpy()}

    got = log_standard_errors(predict, unc)["y"][0]
    g = []
    for j, name in enumerate(unc.names):
        up, down = dict(model.params_), dict(model.params_)
        up[name] *= math.exp(1e-3)
        down[name] *= math.exp(-1e-3)
        g.append((math.log(predict(up)["y"][0]) - math.log(predict(down)["y"][0])) / 2e-3)
        assert unc.names[j] == name
    g = np.array(g)
    assert got == pytest.approx(math.sqrt(g @ unc.log_covariance @ g), rel=1e-4)


# ---------------------------------------------------------------- coverage


# 60 simulated data sets of 800 customers (ages 20-78 weeks) from the published CDNOW
# parameters: each nominal 90% interval should hold the true value in about 54 of 60.
# Tolerance: a two-sided binomial test per parameter at p >= 0.001 (for 60 draws at 0.9:
# 47 to 60 pass); and over all 7 parameters together (420 intervals, correlated within a
# data set) between 85% and 95%, so that intervals too wide to fail are caught too.
# benchmarks/clv_uncertainty.py runs 1,000 data sets (results in the README).
REPS, N = 60, 800


@pytest.fixture(scope="module")
def coverage():
    ages = np.random.default_rng(99).uniform(20, 78, N)
    profiles = pd.DataFrame({"customer_id": ["light", "lapsed", "heavy"],
                             "frequency": [1, 4, 12], "recency": [10.0, 15.0, 50.0],
                             "T": [52.0, 60.0, 52.0], "monetary_value": [20.0, 35.0, 60.0]})
    truth = _predictions(BetaGeoModel.from_params(TRUE_BGNBD),
                         GammaGammaModel.from_params(TRUE_GG), profiles, 39.0, 0.0, 1.0)
    params = {name: 0 for name in (*TRUE_BGNBD, *TRUE_GG)}
    predictions = {name: np.zeros(len(profiles)) for name in ("expected_purchases", "clv")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit notes (e.g. correlated spend) are not at issue
        for rep in range(REPS):
            summary = simulate_summary(N, T=ages, random_state=10_000 + rep)
            result = fit_clv(summary, horizon=39.0, discount_rate=0.0)
            bands = clv_intervals(result, summary, level=0.9, customers=profiles)
            for unc in bands.parameters.values():
                low, high = unc.interval(0.9)
                true = {**TRUE_BGNBD, **TRUE_GG}
                for name, lo, hi in zip(unc.names, low, high, strict=True):
                    params[name] += bool(lo <= true[name] <= hi)
            for name in predictions:
                low = bands.customers[f"{name}_low"].to_numpy(float)
                high = bands.customers[f"{name}_high"].to_numpy(float)
                predictions[name] += (low <= truth[name]) & (truth[name] <= high)
    return params, predictions


def test_parameter_intervals_cover_the_true_parameters(coverage):
    params, _ = coverage
    for name, hits in params.items():
        assert binomtest(hits, REPS, 0.9).pvalue >= 0.001, (name, hits)
    pooled = sum(params.values()) / (REPS * len(params))
    assert 0.85 <= pooled <= 0.95, params


def test_prediction_intervals_cover_the_true_expectations(coverage):
    # The intervals are for the model's expectation at the true parameters (the parameter
    # uncertainty), not for what a customer will actually buy.
    _, predictions = coverage
    for name, hits in predictions.items():
        for profile, count in enumerate(hits):
            assert binomtest(int(count), REPS, 0.9).pvalue >= 0.001, (name, profile, count)


# ---------------------------------------------------------------- output


def test_params_document_is_strict_json_with_intervals(tmp_path):
    summary = simulate_summary(800, T=39.0, random_state=6)
    result = fit_clv(summary, horizon=39, intervals=0.8)
    path = result.write_params(tmp_path / "params.json")
    document = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert set(document) == {"model", "time_unit", "bgnbd", "gamma_gamma", "intervals"}
    intervals = document["intervals"]
    assert intervals["level"] == 0.8 and "observed information" in intervals["method"]
    for key, names in (("bgnbd", "r alpha a b"), ("gamma_gamma", "p q v")):
        assert list(intervals[key]) == names.split()
        for name, entry in intervals[key].items():
            assert entry["low"] < document[key][name] == entry["estimate"] < entry["high"]
        matrix = np.array(intervals["log_covariance"][key]["matrix"])
        assert np.allclose(matrix, matrix.T) and (np.linalg.eigvalsh(matrix) > 0).all()
    # The saved parameters still load as they always did.
    BetaGeoModel.from_params(document["bgnbd"])
    assert "intervals" in json.loads(result.to_json())
    assert list(result.customers.columns[-4:]) == list(INTERVAL_COLUMNS)


def test_no_maximum_gives_null_intervals_and_says_why():
    # Gamma-Gamma parameters that are not the maximum of these data (read from elsewhere):
    # the information there is not positive definite, so there is no interval to give.
    summary = simulate_summary(600, T=39.0, random_state=7)
    fitted = fit_clv(summary, horizon=39)
    elsewhere = GammaGammaModel.from_params({"p": 6.0, "q": 40.0, "v": 15.0})
    unc = parameter_uncertainty(elsewhere, summary)
    assert unc.problem is not None and "not positive definite" in unc.problem
    assert all(v["low"] is None and v["high"] is None for v in unc.to_dict(0.9).values())
    result = CLVResult(fitted.customers, fitted.bgnbd, elsewhere, 39.0, 0.01, 1.0)
    bands = clv_intervals(result, summary, level=0.9)
    assert bands.warnings == [unc.problem]
    assert bands.customers["clv_low"].isna().all()  # null (pd.NA), not NaN
    assert str(bands.customers["clv_low"].dtype) == "Float64"
    assert bands.customers["expected_purchases_low"].notna().all()  # BG/NBD is fine
    assert "n/a" in str(bands) and json.loads(json_text(bands.to_dict()))


@pytest.mark.parametrize("level", [0, 1, 1.5, -0.1, float("nan"), True, "0.9"])
def test_bad_level_is_refused(level):
    summary = simulate_summary(200, T=39.0, random_state=8)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        fit_clv(summary, intervals=level)


def test_cli_adds_interval_columns_and_params(tmp_path, cdnow):
    source = tmp_path / "cdnow.csv"
    cdnow.to_csv(source, index=False)
    out, params = tmp_path / "clv.csv", tmp_path / "params.json"
    args = [*RFM, "clv", str(source), "--columns", "order_date=date", "--date-format", "%Y%m%d",
            "--as-of", "1997-09-30", "--time-unit", "W", "--horizon", "39"]
    done = subprocess.run([*args, "-o", str(out), "--params-out", str(params), "--intervals",
                           "0.9"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "90% intervals, BG/NBD: r [" in done.stdout
    table = pd.read_csv(out)
    assert list(table.columns) == ["customer_id", "p_alive", "expected_purchases",
                                   "expected_average_value", "clv", *INTERVAL_COLUMNS]
    for name in ("expected_purchases", "clv"):
        assert (table[f"{name}_low"] <= table[name]).all()
        assert (table[name] <= table[f"{name}_high"]).all()
    document = json.loads(params.read_text())
    se = {k: v["se"] for k, v in document["intervals"]["bgnbd"].items()}
    assert se["alpha"] == pytest.approx(0.378, rel=0.01)  # lifetimes: 0.378221 (above)
    # Default: no intervals, the table as before.
    plain = tmp_path / "plain.csv"
    done = subprocess.run([*args, "-o", str(plain)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert list(pd.read_csv(plain).columns)[-1] == "clv"
    bad = subprocess.run([*args, "-o", str(tmp_path / "bad.csv"), "--intervals", "90"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--intervals" in bad.stderr and not (tmp_path / "bad.csv").exists()


# ---------------------------------------------------------------- segment table


def test_segment_clv_sums_and_means_per_segment():
    summary = pd.DataFrame({"segment": ["a", "b", "empty"], "customers": [2, 1, 0]})
    customers = pd.DataFrame({"customer_id": ["1", "2", "3"], "segment": ["a", "a", "b"]})

    class Fit:  # what segment_clv reads of a CLVResult
        customers = pd.DataFrame({"customer_id": ["3", "1", "2"], "clv": [5.0, 1.0, 2.0],
                                  "p_alive": [0.5, 0.2, 0.4]})

    table = segment_clv(summary, customers, Fit())
    assert table["predicted_clv"].tolist() == [3.0, 5.0, 0.0]
    assert table["mean_clv"].tolist()[:2] == [1.5, 5.0]
    assert table["mean_p_alive"].iloc[:2].round(12).tolist() == [0.3, 0.5]
    assert table["mean_clv"].isna().iloc[2] and table["mean_p_alive"].isna().iloc[2]
    assert table.loc[2, "mean_clv"] is pd.NA  # null, never NaN
    unfit = segment_clv(summary, customers, None)
    assert unfit[list(SEGMENT_CLV_COLUMNS)].isna().all().all()
    assert list(unfit.columns) == [*summary.columns, *SEGMENT_CLV_COLUMNS]


def test_segment_clv_from_parquet_files_equals_the_table(tmp_path):
    """The Spark run's (customer_id, segment) as Parquet parts, joined by DuckDB."""
    from rfm_engine.measurement.kpis import SegmentFiles

    rng = np.random.default_rng(3)
    ids = [f"c{i}" for i in range(500)]
    customers = pd.DataFrame({"customer_id": ids, "segment": rng.choice(["a", "b", "c"], 500)})
    (tmp_path / "parts").mkdir()
    for number, rows in enumerate((customers.iloc[::2], customers.iloc[1::2])):
        rows.to_parquet(tmp_path / "parts" / f"part-{number:05d}.parquet", index=False)
    summary = pd.DataFrame({"segment": ["a", "b", "c", "empty"], "customers": [1, 1, 1, 0]})

    class Fit:
        customers = pd.DataFrame({"customer_id": ids[::-1] + ["gone"],
                                  "clv": rng.random(501) * 100, "p_alive": rng.random(501)})

    expected = segment_clv(summary, customers, Fit())
    got = segment_clv(summary, SegmentFiles(tmp_path / "parts"), Fit())
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def _config(folder: Path, transactions: Path, extra: str = "") -> Path:
    mapping = {"customer_id": "Customer ID", "order_id": "Invoice",
               "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
               "email": "Email", "first_name": "First Name", "country": "Country"}
    lines = ["[input]", f"path = {json.dumps(str(transactions))}", "[columns]"]
    lines += [f'{key} = "{value}"' for key, value in mapping.items()]
    lines += ["[features]", 'as_of = "2025-12-31"', "[output]", "no_suppression = true", extra]
    path = folder / "weekly.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    return write_sample(folder, n_customers=300, seed=21)


def test_weekly_segment_table_has_the_runs_predicted_clv(sample, tmp_path):
    config = load_config(_config(tmp_path, sample["transactions"]))
    result = weekly.run_weekly(config, output_dir=tmp_path / "out")
    written = pd.read_csv(result.run_dir / "segments.csv")
    assert list(written.columns[-3:]) == list(SEGMENT_CLV_COLUMNS)
    # An independent fit on the same transactions, grouped by the run's segments.
    tx = load_transactions(sample["transactions"], **config.load_options())
    fit = fit_clv(clv_summary(tx, time_unit="W"), horizon=config.kpis.clv_horizon,
                  discount_rate=0.0)
    customers = pd.read_parquet(result.run_dir / "customers.parquet")
    joined = customers[["customer_id", "segment"]].merge(fit.customers, on="customer_id")
    assert len(joined) == len(customers)
    expected = joined.groupby("segment")[["clv", "p_alive"]].agg(["sum", "mean"])
    for _, row in written.iterrows():
        if row["customers"] == 0:
            assert row["predicted_clv"] == 0 and pd.isna(row["mean_clv"])
            continue
        segment = expected.loc[row["segment"]]
        assert row["predicted_clv"] == pytest.approx(segment[("clv", "sum")], rel=1e-9)
        assert row["mean_clv"] == pytest.approx(segment[("clv", "mean")], rel=1e-9)
        assert row["mean_p_alive"] == pytest.approx(segment[("p_alive", "mean")], rel=1e-9)
    assert written["predicted_clv"].sum() == pytest.approx(fit.customers["clv"].sum())
    html = (result.run_dir / "summary.html").read_text()
    assert "Mean predicted CLV" in html and "Mean P(alive)" in html
    assert "Predicted CLV: none" not in html
    assert "spend in the next 52 weeks (undiscounted)" in html
    # The marketers' page reads them from segments.csv (once, no duplicate columns).
    from rfm_engine.ui.folders import RunFolder

    shown = RunFolder(result.run_dir).segment_table
    assert {"predicted_clv", "mean_clv", "mean_p_alive", "orders", "aov"} <= set(shown)
    assert not [c for c in shown if c.endswith(("_x", "_y"))]
    pd.testing.assert_series_equal(shown["mean_clv"], written["mean_clv"])


def test_weekly_run_without_repeat_buyers_writes_nulls_and_the_reason_once(sample, tmp_path):
    # Keep each customer's first invoice only: (almost) nobody came back, BG/NBD cannot be
    # fitted (the few left, under ids the loader normalizes alike, do not identify it).
    lines = pd.read_csv(sample["transactions"], dtype=str, keep_default_na=False)
    first = lines.groupby("Customer ID", sort=False)["Invoice"].transform("first")
    once = tmp_path / "once.csv"
    lines[lines["Invoice"] == first].to_csv(once, index=False)
    result = weekly.run_weekly(load_config(_config(tmp_path, once)), output_dir=tmp_path / "out")
    text = (result.run_dir / "segments.csv").read_text()
    assert "nan" not in text.lower()
    written = pd.read_csv(result.run_dir / "segments.csv")
    assert written[list(SEGMENT_CLV_COLUMNS)].isna().all().all()
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    reasons = [w for w in manifest["warnings"] if "predicted CLV" in w]
    assert len(reasons) == 1 and "cannot be fitted" in reasons[0]
    html = (result.run_dir / "summary.html").read_text()
    assert html.count("Predicted CLV: none in this run") == 1
    assert reasons[0].removeprefix("predicted CLV skipped: ")[:40] in html


def test_pareto_nbd_standard_errors_match_clvtools_on_cdnow():
    # CLVTools (R), tests/testthat/test_correctness_pnbd_nocovstaticcov.R: Pareto/NBD on the
    # CDNOW sample in weeks, params.nocov.se = r 0.0476264, alpha 0.8427222, s 0.1872594,
    # beta 6.2105448. A likelihood without gradient: the information from its values.
    summary = _published_summary()
    uncertainty = parameter_uncertainty(ParetoNBDModel().fit(summary), summary)
    published = {"r": 0.0476264, "alpha": 0.8427222, "s": 0.1872594, "beta": 6.2105448}
    assert uncertainty.model == "pareto_nbd" and uncertainty.problem is None
    for name, se in zip(uncertainty.names, uncertainty.standard_errors, strict=True):
        assert se == pytest.approx(published[name], rel=1e-3), name


def test_terminal_segment_table_shows_the_predicted_clv_and_nulls_as_n_a():
    from rfm_engine.cli import format_summary

    summary = pd.DataFrame({"segment": ["a", "b"], "customers": [2, 0], "share": [1.0, 0.0],
                            "revenue": [10.0, 0.0], "revenue_share": [1.0, 0.0],
                            "mean_recency_days": [3.0, None], "mean_frequency": [1.0, None],
                            "mean_monetary": [5.0, None]})
    customers = pd.DataFrame({"customer_id": ["1", "2"], "segment": ["a", "a"]})

    class Fit:
        customers = pd.DataFrame({"customer_id": ["1", "2"], "clv": [1000.0, 2000.0],
                                  "p_alive": [0.5, 1.0]})

    lines = format_summary(segment_clv(summary, customers, Fit())).splitlines()
    assert lines[0].split()[-3:] == ["pred_CLV", "mean_CLV", "P_alive"]
    assert lines[1].split()[-3:] == ["3,000", "1,500.00", "75.0%"]
    assert lines[2].split()[-3:] == ["0", "n/a", "n/a"]
    unfit = format_summary(segment_clv(summary, customers, None))
    assert "nan" not in unfit.lower() and "<NA>" not in unfit


def test_pareto_nbd_fit_gets_intervals_end_to_end():
    # fit_clv(model="pareto-nbd", intervals=...): the registered likelihood and the
    # model's own predictions, through the same code as BG/NBD.
    summary = _published_summary()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_clv(summary, model="pareto-nbd", horizon=39, discount_rate=0.0,
                         intervals=0.9)
    table = result.customers
    for name in ("expected_purchases", "clv"):
        low, high = table[f"{name}_low"].to_numpy(float), table[f"{name}_high"].to_numpy(float)
        assert ((low <= table[name]) & (table[name] <= high)).all(), name
    document = json.loads(json_text(result.params_document()))
    assert document["model"] == "pareto-nbd"
    se = {k: v["se"] for k, v in document["intervals"]["pareto_nbd"].items()}
    assert se["beta"] == pytest.approx(6.2105448, rel=1e-3)  # CLVTools, as above
    assert "Pareto/NBD: r [" in str(result.intervals)
