"""Holdout validation of the CLV models (issue 14): ``validate_clv``, ``rfm-engine clv-validate``.

References for CDNOW (the sample of 2,357 customers, calibration 1997-01-01 .. 1997-09-30 =
39 weeks, holdout to 1998-06-30 = 39 weeks):

* Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
  24(2): the 1,411 customers without repeat purchases in weeks 1-39 made 0.24 repeat
  purchases each in weeks 40-78; the BG/NBD predicted 0.23 (Sec. 7).
* The paper's weekly tracking data as shipped with the R package BTYD (`cdnowSummary$cu.tracking`,
  "cumulative transactions for every week ... 78 weeks total", from brucehardie.com): 2,457
  cumulative repeat purchases at week 39, 4,339 at week 78, so 1,882 in the holdout.
* BTYD's walkthrough (McCarthy & Wadsworth, "Buy 'Til You Die - A Walkthrough", v2.4.3, CRAN,
  Sec. 4 "BG/NBD"), an independent implementation reproducing the paper's Figures 3 and 4
  on the same data: the conditional expectations by calibration frequency (`comp`, printed
  to 7 digits) and the cumulative tracking of weeks 20-25 (`cum.tracking[,20:25]`).

The other checks compare with an independent computation from the raw file by pandas.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rfm_engine.errors import ConfigError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.clv import (
    BetaGeoModel,
    GammaGammaModel,
    repeat_purchase_days,
    validate_clv,
)

from .conftest import DATA, read_cdnow
from .test_report_plots import assert_no_overlap, drawn_labels

CDNOW_FILE = DATA / "CDNOW_sample.txt"
RAW = {"delimiter": "whitespace", "header": False,
       "names": ["master_id", "customer_id", "order_date", "cds", "amount"],
       "date_format": "%Y%m%d"}
CALIBRATION_END, HOLDOUT_END = "1997-09-30", "1998-06-30"

# BTYD walkthrough v2.4.3, Sec. 4: bgnbd.PlotFreqVsConditionalExpectedFrequency(..., censor=7).
BTYD_BINS = [1411, 439, 214, 100, 62, 38, 29, 64]
BTYD_ACTUAL = [0.2367116, 0.6970387, 1.392523, 1.560000, 2.532258, 2.947368, 3.862069, 6.359375]
BTYD_EXPECTED = [0.2250893, 0.5231364, 1.044126, 1.520256, 2.163824, 2.653789, 3.503957,
                 6.157036]
# Sec. 3 "Pareto/NBD", pnbd.PlotFreqVsConditionalExpectedFrequency (printed to 3 decimals)
# and pnbd.PlotTrackingCum (weeks 20..25), with BTYD's estimates r=0.5534, alpha=10.580,
# s=0.6061, beta=11.656 (ours 0.5533, 10.578, 0.6062, 11.668; paper 0.55, 10.58, 0.61, 11.67).
BTYD_PNBD_EXPECTED = [0.138, 0.600, 1.196, 1.714, 2.399, 2.907, 3.819, 6.403]
BTYD_PNBD_TRACKING_EXPECTED = [1308.856, 1385.275, 1459.923, 1532.906, 1604.32, 1674.253]
# Same, bgnbd.PlotTrackingCum: weeks 20..25.
BTYD_TRACKING_ACTUAL = [1359, 1414, 1484, 1517, 1573, 1672]
BTYD_TRACKING_EXPECTED = [1312.458, 1387.346, 1460.392, 1531.713, 1601.418, 1669.6]
# BTYD's cdnowSummary$cu.tracking at weeks 39 and 78 (Hardie's data).
CUMULATIVE_WEEK_39, CUMULATIVE_WEEK_78 = 2457, 4339
# Tolerances: BTYD fits its own optimum (r, alpha, a, b differ from ours in the 4th digit),
# so its model figures agree to about 3e-5 relative; we allow 2e-4 (0.02 %). Actual figures
# are counts of the same data: exact (to BTYD's printed digits).
MODEL_RTOL = 2e-4


@pytest.fixture(scope="module")
def cdnow():
    calibration = load_transactions(CDNOW_FILE, as_of=CALIBRATION_END, **RAW)
    holdout = load_transactions(CDNOW_FILE, as_of=HOLDOUT_END, **RAW)
    return validate_clv(calibration, holdout)


def run(*args):
    return subprocess.run([sys.executable, "-m", "rfm_engine", *map(str, args)],
                          capture_output=True, text=True)


# ------------------------------------------------------------------ CDNOW vs published


def test_conditional_expectations_match_the_published_table(cdnow):
    table = cdnow.conditional
    assert table["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].tolist() == BTYD_BINS
    np.testing.assert_allclose(table["actual"], BTYD_ACTUAL, rtol=1e-6)
    np.testing.assert_allclose(table["predicted"], BTYD_EXPECTED, rtol=MODEL_RTOL)


def test_pareto_nbd_validation_matches_the_published_figures():
    calibration = load_transactions(CDNOW_FILE, as_of=CALIBRATION_END, **RAW)
    holdout = load_transactions(CDNOW_FILE, as_of=HOLDOUT_END, **RAW)
    result = validate_clv(calibration, holdout, model="pareto-nbd")
    assert result.fit.model == "pareto-nbd"
    table = result.conditional
    assert table["customers"].tolist() == BTYD_BINS
    np.testing.assert_allclose(table["actual"], BTYD_ACTUAL, rtol=1e-6)
    # Half a unit of the printed 3rd decimal, plus BTYD's slightly different optimum.
    np.testing.assert_allclose(table["predicted"], BTYD_PNBD_EXPECTED, atol=2e-3)
    weeks = result.tracking.set_index("week").loc[20:25]
    assert weeks["actual"].tolist() == BTYD_TRACKING_ACTUAL
    np.testing.assert_allclose(weeks["expected"], BTYD_PNBD_TRACKING_EXPECTED, rtol=MODEL_RTOL)
    assert json.loads(result.to_json())["model"] == "pareto-nbd"
    assert result.plot_calibration_holdout().get_legend().get_texts()[1].get_text() == (
        "Pareto/NBD")


def test_zero_class_matches_the_paper(cdnow):
    zero = cdnow.conditional.iloc[0]
    assert (round(zero["actual"], 2), round(zero["predicted"], 2)) == (0.24, 0.23)
    assert zero["actual"] * zero["customers"] == pytest.approx(334)


def test_tracking_matches_the_published_curve(cdnow):
    tracking = cdnow.tracking
    assert len(tracking) == 78
    assert tracking["week_end"].iloc[[0, 38, 77]].map(str).tolist() == [
        "1997-01-07", CALIBRATION_END, HOLDOUT_END]
    assert (tracking["period"] == "calibration").sum() == 39
    assert cdnow.calibration_weeks == 39
    weeks = tracking.set_index("week").loc[20:25]
    assert weeks["actual"].tolist() == BTYD_TRACKING_ACTUAL
    np.testing.assert_allclose(weeks["expected"], BTYD_TRACKING_EXPECTED, rtol=MODEL_RTOL)
    actual = tracking.set_index("week")["actual"]
    assert (actual[39], actual[78]) == (CUMULATIVE_WEEK_39, CUMULATIVE_WEEK_78)


def test_holdout_total_matches_the_published_tracking_data(cdnow):
    metrics = cdnow.metrics
    assert metrics.loc["purchases", "actual_total"] == CUMULATIVE_WEEK_78 - CUMULATIVE_WEEK_39
    # The conditional forecast of the calibration customers (sum of E[Y(39) | x, t_x, T]);
    # the tracking's unconditional forecast of weeks 40-78 is the other reading.
    predicted = cdnow.customers["expected_purchases"].sum()
    assert metrics.loc["purchases", "predicted_total"] == pytest.approx(predicted)
    tracking = cdnow.tracking.set_index("week")["expected"]
    assert 1600 < tracking[78] - tracking[39] < predicted + 20  # both under the actual 1,882


def test_errors_match_an_independent_computation_from_the_raw_file(cdnow):
    # Holdout purchase days and spend per customer by pandas from the raw file.
    raw = read_cdnow().assign(day=lambda f: pd.to_datetime(f["date"], format="%Y%m%d"),
                              amount=lambda f: f["amount"].astype(float))
    days = raw.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    days = days[days["amount"] >= 0]  # CDNOW has no returns; free CDs count as purchases
    late = days[(days["day"] > CALIBRATION_END) & (days["day"] <= HOLDOUT_END)]
    actual = late.groupby("customer_id").agg(n=("day", "size"), spend=("amount", "sum"))
    summary = cdnow.customers.set_index("customer_id")
    actual = actual.reindex(summary.index, fill_value=0)
    bgnbd, gg = cdnow.fit.bgnbd, cdnow.fit.gamma_gamma
    predicted = bgnbd.predict_purchases(39, summary).to_numpy()
    spend = predicted * gg.expected_average_value(summary).to_numpy()
    expected = {
        "purchases": (actual["n"].to_numpy(), predicted),
        "spend": (actual["spend"].to_numpy(), spend),
    }
    for name, (a, p) in expected.items():
        row = cdnow.metrics.loc[name]
        assert row["mae"] == pytest.approx(np.abs(p - a).mean(), rel=1e-9), name
        assert row["rmse"] == pytest.approx(np.sqrt(((p - a) ** 2).mean()), rel=1e-9), name
        assert row["actual_total"] == pytest.approx(a.sum()), name
    assert isinstance(cdnow.fit.bgnbd, BetaGeoModel)
    assert isinstance(cdnow.fit.gamma_gamma, GammaGammaModel)


# ------------------------------------------------------------------ small hand-made data


def test_weekly_tracking_counts_repeat_days_by_hand():
    raw = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b", "b", "c"],
        "order_date": ["2024-01-01", "2024-01-01", "2024-01-09", "2024-01-20",
                       "2024-01-03", "2024-01-16", "2024-01-18"],
        "amount": [5.0, 5.0, 8.0, 3.0, 4.0, 6.0, 9.0],
    })
    # Calibration to 01-10: a (first 01-01) and b (first 01-03); c starts in the holdout.
    # Repeat days: a 01-09 (week 2), a 01-20 (week 3), b 01-16 (week 3).
    tx = load_transactions(raw, as_of="2024-01-21")
    firsts, repeats = repeat_purchase_days(tx, "2024-01-10", "2024-01-21")
    assert firsts["customers"].tolist() == [1, 1]
    assert repeats["purchases"].sum() == 3
    model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    from rfm_engine.measurement.clv.validation import _tracking
    from rfm_engine.measurement.clv.value import CLVResult

    fit = CLVResult(pd.DataFrame(), model, GammaGammaModel.from_params(
        {"p": 6.25, "q": 3.74, "v": 15.44}), 1.5, 0.0, 1.5)
    tracking = _tracking(firsts, repeats, pd.Timestamp("2024-01-10").date(), tx.as_of, fit,
                         "W")
    assert tracking["actual"].tolist() == [0, 1, 3]
    assert tracking["period"].tolist() == ["calibration", "holdout", "holdout"]
    assert tracking["week_end"].map(str).tolist() == ["2024-01-07", "2024-01-14", "2024-01-21"]
    # Expected: a from day 0, b from day 2, in weeks.
    for row in tracking.itertuples():
        end = row.week * 7
        ages = np.array([end - 0, end - 2]) / 7
        assert row.expected == pytest.approx(model.expected_purchases_new(ages).sum())


def test_validation_refuses_a_holdout_before_the_calibration():
    raw = pd.DataFrame({"customer_id": ["a", "a"], "order_date": ["2024-01-01", "2024-02-01"],
                        "amount": [1.0, 2.0]})
    later = load_transactions(raw, as_of="2024-02-01")
    with pytest.raises(ConfigError, match="The holdout must end after the calibration period"):
        validate_clv(later, later)


# ------------------------------------------------------------------ command line


CLI_ARGS = ["--delimiter", "whitespace", "--no-header",
            "--names", "master_id,customer_id,order_date,cds,amount", "--date-format", "%Y%m%d"]


def test_cli_writes_the_figures_as_strict_json_and_csv(tmp_path):
    out = tmp_path / "validation.csv"
    result = run("clv-validate", CDNOW_FILE, *CLI_ARGS, "--calibration-end", CALIBRATION_END,
                 "--holdout-end", HOLDOUT_END, "-o", out)
    assert result.returncode == 0, result.stderr
    assert "1,882.00" in result.stdout and "7+" in result.stdout

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    document = json.loads((tmp_path / "validation.csv.json").read_text(),
                          parse_constant=refuse)
    assert document["format"] == "rfm-engine/CLV-validation"
    assert document["holdout_length"] == 39.0 and document["customers"] == 2357
    assert document["metrics"]["purchases"]["actual_total"] == 1882.0
    assert [r["customers"] for r in document["conditional"]] == BTYD_BINS
    assert len(document["tracking"]) == 78
    figures = pd.read_csv(tmp_path / "validation.csv.figures.csv")
    assert set(figures["table"]) == {"metrics", "conditional", "tracking"}
    week_78 = figures.query("table == 'tracking' and row == '78' and measure == 'actual'")
    assert week_78["value"].tolist() == [CUMULATIVE_WEEK_78]
    customers = pd.read_csv(out, dtype={"customer_id": str})
    assert customers["customer_id"].iloc[0] == "0001"
    assert customers["frequency_holdout"].sum() == 1882
    quality = json.loads((tmp_path / "validation.csv.quality.json").read_text())
    assert quality["rows_read"] == 6919
    for png in ("tracking.png", "calibration_holdout.png"):
        assert (tmp_path / f"validation.csv.{png}").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--calibration-end", "1998-06-30", "--holdout-end", "1997-09-30"], 2,
     "error: --holdout-end 1997-09-30 must come after --calibration-end 1998-06-30."),
    (["--calibration-end", "30/09/1997", "--holdout-end", "1998-06-30"], 2,
     "error: The '--calibration-end' parameter must be a date"),
    (["--calibration-end", "1997-01-01", "--holdout-end", "1998-06-30"], 3,
     "no CLV validation: too few repeat purchases"),
])
def test_cli_refusals_are_one_line_and_write_nothing(tmp_path, args, code, message):
    out = tmp_path / "v.csv"
    result = run("clv-validate", CDNOW_FILE, *CLI_ARGS, *args, "-o", out)
    assert result.returncode == code, result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ readable plots


def test_plots_are_readable(cdnow, tmp_path):
    from rfm_engine.io.writers import png_bytes

    from .browser import screenshot_folder

    folder = screenshot_folder(tmp_path)  # docs/ under make screenshots: the README's figures
    ax = cdnow.plot_tracking()
    labels = drawn_labels(ax)
    assert_no_overlap(labels)
    assert_no_overlap(drawn_labels(ax, "y"))
    renderer = ax.figure.canvas.get_renderer()
    note = next(t for t in ax.texts if t.get_text().startswith("end of calibration"))
    legend = ax.get_legend().get_window_extent(renderer)
    assert not note.get_window_extent(renderer).overlaps(legend)
    boundary = ax.lines[2].get_xdata()[0]
    assert boundary == 39
    assert ax.get_xlabel() and ax.get_ylabel()
    (folder / "clv-tracking.png").write_bytes(png_bytes(ax.figure))
    ax = cdnow.plot_calibration_holdout()
    labels = drawn_labels(ax)
    assert [text for text, _ in labels] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert_no_overlap(labels)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), cdnow.conditional["predicted"])
    (folder / "clv-calibration-holdout.png").write_bytes(png_bytes(ax.figure))
