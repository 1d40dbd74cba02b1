import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from rfm_engine.core.features import clv_summary
from rfm_engine.errors import ConfigError, DataError, EmptyResultError, MissingColumnsError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.clv import (
    CLV_FORMAT,
    BetaGeoModel,
    GammaGammaModel,
    IndependenceWarning,
    customer_lifetime_value,
    fit_clv,
    holdout_purchases,
    plot_calibration_holdout,
    plot_frequency_recency,
    plot_probability_alive_matrix,
    simulate_summary,
)

from .conftest import DATA, read_cdnow

# Published estimates on the CDNOW sample, calibration to 1997-09-30 in weeks.
# BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way", Table 1.
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_BGNBD_LL = -9582.4
# Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves".
PAPER_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
# Half a unit in the last published digit, plus a little optimiser slack.
BGNBD_TOL = {"r": 0.002, "alpha": 0.02, "a": 0.002, "b": 0.002}
GG_TOL = {"p": 0.02, "q": 0.02, "v": 0.1}
CDNOW_KWARGS = {"columns": {"order_date": "date"}, "date_format": "%Y%m%d"}


def _published_summary() -> pd.DataFrame:
    return pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").rename(
        columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}
    )


PUBLISHED = _published_summary()
CDNOW = read_cdnow()
CALIBRATION = load_transactions(CDNOW, as_of="1997-09-30", **CDNOW_KWARGS)
OURS = clv_summary(CALIBRATION, time_unit="W")
BGNBD = BetaGeoModel().fit(PUBLISHED)
GG = GammaGammaModel().fit(PUBLISHED)


def _by_id(summary: pd.DataFrame, ids: list[int]) -> pd.DataFrame:
    return summary.set_index("customer_id").loc[ids]


# ---------------------------------------------------------------- CDNOW reproduction


@pytest.mark.parametrize("source", ["published summary", "clv_summary"])
def test_cdnow_bgnbd_reproduces_the_paper(source):
    summary = PUBLISHED if source == "published summary" else OURS
    model = BetaGeoModel().fit(summary)
    assert model.converged_
    assert model.n_customers_ == 2357
    for name, published in PAPER_BGNBD.items():
        assert abs(model.params_[name] - published) <= BGNBD_TOL[name], name
    assert model.log_likelihood_ == pytest.approx(PAPER_BGNBD_LL, abs=0.05)


@pytest.mark.parametrize("source", ["published summary", "clv_summary"])
def test_cdnow_gamma_gamma_reproduces_the_paper(source):
    summary = PUBLISHED if source == "published summary" else OURS
    model = GammaGammaModel().fit(summary)
    assert model.converged_
    assert model.n_customers_ == 946
    assert model.n_excluded_ == 0
    for name, published in PAPER_GG.items():
        assert abs(model.params_[name] - published) <= GG_TOL[name], name


def test_published_summary_and_ours_give_the_same_fit():
    # The published file rounds recency, T and zbar to 2 decimals; nothing else differs.
    ours_bgnbd, ours_gg = BetaGeoModel().fit(OURS), GammaGammaModel().fit(OURS)
    for name, value in BGNBD.params_.items():
        assert ours_bgnbd.params_[name] == pytest.approx(value, rel=1e-3), name
    for name, value in GG.params_.items():
        assert ours_gg.params_[name] == pytest.approx(value, rel=1e-3), name


def test_nelder_mead_finds_the_same_optimum():
    model = BetaGeoModel(method="Nelder-Mead").fit(PUBLISHED)
    for name, value in BGNBD.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-4), name
    gg = GammaGammaModel(method="Nelder-Mead").fit(PUBLISHED)
    for name, value in GG.params_.items():
        assert gg.params_[name] == pytest.approx(value, rel=1e-4), name


def test_fitted_likelihood_beats_the_rounded_published_params():
    published = BetaGeoModel.from_params(PAPER_BGNBD)
    assert BGNBD.score(PUBLISHED) >= published.score(PUBLISHED)
    assert published.score(PUBLISHED) * 2357 == pytest.approx(PAPER_BGNBD_LL, abs=0.05)


@pytest.mark.parametrize("name", ["r", "alpha", "a", "b"])
@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_bgnbd_likelihood_at_published_params_beats_perturbed(name, factor):
    published = BetaGeoModel.from_params(PAPER_BGNBD)
    perturbed = BetaGeoModel.from_params({**PAPER_BGNBD, name: PAPER_BGNBD[name] * factor})
    assert published.score(PUBLISHED) > perturbed.score(PUBLISHED)


@pytest.mark.parametrize("name", ["p", "q", "v"])
@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_gamma_gamma_likelihood_at_published_params_beats_perturbed(name, factor):
    published = GammaGammaModel.from_params(PAPER_GG)
    perturbed = GammaGammaModel.from_params({**PAPER_GG, name: PAPER_GG[name] * factor})
    assert published.score(PUBLISHED) > perturbed.score(PUBLISHED)


def test_hardie_spreadsheet_conditional_expectation():
    # Hardie's BG/NBD spreadsheet (brucehardie.com/notes/004), as checked by lifetimes'
    # test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet.
    customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    for model in (BGNBD, BetaGeoModel.from_params(PAPER_BGNBD)):
        assert model.predict_purchases(39, customer).iloc[0] == pytest.approx(1.226, abs=1e-3)


def test_hardie_spreadsheet_unconditional_expectation():
    # Same spreadsheet, cumulative repeat purchases of a new customer (lifetimes'
    # test_expectation_returns_same_value_Hardie_excel_sheet). The sheet used the exact
    # optimum: the rounded published params give 1.8605 at t=78.
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(BGNBD.expected_purchases_new(times), expected, atol=1e-3)
    assert isinstance(BGNBD.expected_purchases_new(39), float)
    assert BGNBD.expected_purchases_new(0) == 0


def test_lifetimes_documentation_predictions():
    # lifetimes README (Quickstart, "Ranking customers from best to worst"): expected
    # purchases in the next week of the five best CDNOW customers.
    best = _by_id(PUBLISHED, [509, 841, 1981, 157, 1516])
    expected = [0.424877, 0.474738, 0.486526, 0.662396, 0.710623]
    np.testing.assert_allclose(BGNBD.predict_purchases(1, best), expected, rtol=1e-4)


def test_lifetimes_documentation_gamma_gamma():
    # lifetimes README ("Estimating Customers' Lifetime Value").
    assert GG.frequency_monetary_corr_ == pytest.approx(0.113884, abs=1e-6)
    some = _by_id(PUBLISHED, [1, 2, 3, 6, 9])
    expected = [24.658616, 18.911480, 35.171003, 71.462851, 27.282408]
    np.testing.assert_allclose(GG.expected_average_value(some), expected, rtol=1e-4)
    assert GG.expected_average_value(PUBLISHED).mean() == pytest.approx(35.2529588256, rel=1e-5)


def test_lifetimes_documentation_clv():
    # lifetimes README: customer_lifetime_value(time=12, discount_rate=0.01) on this
    # weekly summary, whose old implementation stepped 30 periods at a time and
    # discounted by 1.01 per step. The same cash flows in our terms: horizon 360 weeks,
    # step 30, rate 1.01 ** (1/30) - 1 per week.
    some = _by_id(PUBLISHED, [1, 2, 3, 6, 7, 9])
    got = customer_lifetime_value(BGNBD, GG, some, horizon=360, step=30,
                                  discount_rate=1.01 ** (1 / 30) - 1)
    expected = [140.096211, 18.943467, 38.180574, 1003.868107, 28.109683, 167.418216]
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert got.name == "clv"
    assert got.index.tolist() == [1, 2, 3, 6, 7, 9]


def test_cdnow_holdout_zero_class_matches_the_paper():
    # Paper, Sec. 7: the 1,411 customers without repeat purchases in weeks 1-39 made
    # 334 purchases in weeks 40-78 (0.24 each); the BG/NBD predicted 0.23.
    full = load_transactions(CDNOW, as_of="1998-06-30", **CDNOW_KWARGS)
    holdout = holdout_purchases(full, "1997-09-30", "1998-06-30", time_unit="W")
    assert holdout["customer_id"].tolist() == OURS["customer_id"].tolist()
    assert (holdout["duration_holdout"] == 39.0).all()
    zero = OURS["frequency"].to_numpy() == 0
    assert zero.sum() == 1411
    assert holdout["frequency_holdout"].to_numpy()[zero].sum() == 334
    predicted = BetaGeoModel().fit(OURS).predict_purchases(39, OURS).to_numpy()[zero].mean()
    assert round(predicted, 2) == 0.23
    ax = plot_calibration_holdout(OURS, holdout, BGNBD)
    actual_line, model_line = ax.lines[:2]
    assert actual_line.get_ydata()[0] == pytest.approx(334 / 1411)
    assert len(model_line.get_ydata()) == 8  # frequencies 0..6 and 7+
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "7+"


# ---------------------------------------------------------------- properties


def test_probability_alive_is_one_without_repeat_purchases():
    p_alive = BGNBD.probability_alive(PUBLISHED)
    zero = PUBLISHED["frequency"] == 0
    assert (p_alive[zero] == 1.0).all()
    assert ((p_alive > 0) & (p_alive <= 1)).all()
    assert p_alive.name == "p_alive"


_params = st.fixed_dictionaries({
    "r": st.floats(0.05, 5), "alpha": st.floats(0.5, 50), "a": st.floats(0.1, 5),
    "b": st.floats(0.1, 10),
})


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_params, st.integers(1, 60), st.floats(1, 100), st.floats(0, 1), st.floats(0, 1))
def test_more_recent_last_purchase_means_more_alive(params, x, big_t, u1, u2):
    model = BetaGeoModel.from_params(params)
    early, late = sorted([u1 * big_t, u2 * big_t])
    customers = pd.DataFrame({"frequency": [x, x], "recency": [early, late], "T": big_t})
    p_early, p_late = model.probability_alive(customers)
    assert 0 < p_early <= p_late <= 1
    e_early, e_late = model.predict_purchases(10, customers)
    assert 0 <= e_early <= e_late * (1 + 1e-9)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(_params, st.integers(0, 60), st.floats(0.1, 100), st.floats(0.1, 50))
def test_expected_purchases_grow_with_the_window(params, x, big_t, t):
    model = BetaGeoModel.from_params(params)
    customer = pd.DataFrame({"frequency": [x], "recency": [big_t if x else 0.0], "T": [big_t]})
    short, long = (model.predict_purchases(w, customer).iloc[0] for w in (t, 2 * t))
    assert 0 < short <= long
    assert np.isfinite(long)


def test_heavy_buyers_stay_finite():
    # Plain 2F1(r+x, b+x; ...) overflows for such x; the Euler form does not. A customer
    # who bought x times by T and just bought again is almost surely alive and buys at
    # about (r + x) / (alpha + T) a week, less a little drop-out.
    model = BetaGeoModel.from_params(PAPER_BGNBD)
    heavy = pd.DataFrame({"frequency": [500, 5000], "recency": [39.0, 39.0], "T": [39.0, 39.0]})
    assert np.isfinite(model.score(heavy))
    np.testing.assert_allclose(model.probability_alive(heavy), 1.0, atol=2e-3)
    rate = (PAPER_BGNBD["r"] + heavy["frequency"]) / (PAPER_BGNBD["alpha"] + 39.0)
    np.testing.assert_allclose(model.predict_purchases(1, heavy), rate, rtol=0.05)
    assert (model.predict_purchases(1, heavy) < rate).all()


def test_clv_grows_with_horizon_and_falls_with_discount_rate():
    some = PUBLISHED.iloc[:200]
    short = customer_lifetime_value(BGNBD, GG, some, horizon=12)
    long = customer_lifetime_value(BGNBD, GG, some, horizon=52)
    cheap = customer_lifetime_value(BGNBD, GG, some, horizon=52, discount_rate=0.05)
    assert (long > short).all()
    assert (cheap < long).all()
    # Without discounting the steps telescope to expected purchases times expected value.
    flat = customer_lifetime_value(BGNBD, GG, some, horizon=52, discount_rate=0.0, step=5)
    np.testing.assert_allclose(
        flat, BGNBD.predict_purchases(52, some) * GG.expected_average_value(some), rtol=1e-12
    )


def test_horizon_not_a_multiple_of_step():
    some = PUBLISHED.iloc[:50]
    one_step = customer_lifetime_value(BGNBD, GG, some, horizon=10, discount_rate=0.01, step=7)
    value = GG.expected_average_value(some)
    first = BGNBD.predict_purchases(7, some)
    second = BGNBD.predict_purchases(10, some) - first
    expected = first * value / 1.01 ** 7 + second * value / 1.01 ** 10
    np.testing.assert_allclose(one_step, expected, rtol=1e-12)


def test_frequency_zero_gets_the_population_mean():
    mean = GG.params_["p"] * GG.params_["v"] / (GG.params_["q"] - 1)
    assert GG.population_mean_ == pytest.approx(mean)
    zero = pd.DataFrame({"frequency": [0], "monetary_value": [123.0]})
    assert GG.expected_average_value(zero).iloc[0] == pytest.approx(mean)


def test_parameters_are_recovered_from_simulated_data():
    ages = np.random.default_rng(7).uniform(27, 39, 20_000)
    summary = simulate_summary(20_000, T=ages, random_state=0)
    bgnbd, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    for name, truth in PAPER_BGNBD.items():
        assert bgnbd.params_[name] == pytest.approx(truth, rel=0.15), name
    for name, truth in PAPER_GG.items():
        assert gg.params_[name] == pytest.approx(truth, rel=0.15), name


def test_simulation_is_reproducible():
    one = simulate_summary(500, T=39.0, random_state=3)
    pd.testing.assert_frame_equal(one, simulate_summary(500, T=39.0, random_state=3))
    assert not one.equals(simulate_summary(500, T=39.0, random_state=4))
    assert (one["recency"] <= one["T"]).all()
    assert (one.loc[one.frequency == 0, ["recency", "monetary_value"]] == 0).all().all()


def test_array_input_matches_frame_input():
    columns = ["frequency", "recency", "T"]
    head = PUBLISHED.iloc[:100]
    np.testing.assert_allclose(BGNBD.probability_alive(head[columns].to_numpy()),
                               BGNBD.probability_alive(head))
    model = BetaGeoModel().fit(PUBLISHED[columns].to_numpy())
    assert model.params_ == pytest.approx(BGNBD.params_)


def test_sklearn_conventions():
    model = BetaGeoModel(max_iter=50)
    assert model.get_params() == {"method": "L-BFGS-B", "max_iter": 50}
    assert not hasattr(clone(model), "params_")
    with pytest.raises(NotFittedError):
        model.probability_alive(PUBLISHED)
    assert GammaGammaModel().get_params() == {"method": "L-BFGS-B", "max_iter": 2000,
                                              "max_correlation": 0.3}


def test_inputs_are_not_modified():
    before = OURS.copy()
    fit_clv(OURS)
    pd.testing.assert_frame_equal(OURS, before)


# ---------------------------------------------------------------- result object


def test_fit_clv_result_and_params_json(tmp_path):
    result = fit_clv(OURS, horizon=52, discount_rate=0.002)
    assert list(result.customers.columns) == [
        "customer_id", "p_alive", "expected_purchases", "expected_average_value", "clv"]
    assert result.customers["customer_id"].tolist() == OURS["customer_id"].tolist()
    np.testing.assert_allclose(result.customers["expected_purchases"],
                               result.bgnbd.predict_purchases(52, OURS))
    params = result.params
    assert list(params) == ["bgnbd", "gamma_gamma"]
    assert list(params["bgnbd"]) == ["r", "alpha", "a", "b"]
    assert list(params["gamma_gamma"]) == ["p", "q", "v"]
    assert all(type(v) is float for model in params.values() for v in model.values())

    path = result.write_params(tmp_path / "clv_params.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"model": "bgnbd",
                                                            "time_unit": None, **params}
    assert [p.name for p in tmp_path.iterdir()] == ["clv_params.json"]  # no temp file left
    reloaded = BetaGeoModel.from_params(json.loads(path.read_text())["bgnbd"])
    np.testing.assert_allclose(reloaded.predict_purchases(52, OURS),
                               result.customers["expected_purchases"], rtol=1e-12)

    document = json.loads(result.to_json())
    assert document["format"] == CLV_FORMAT
    assert document["params"] == params
    assert document["horizon"] == 52.0 and document["discount_rate"] == 0.002
    assert document["fit"]["bgnbd"]["n_customers"] == 2357
    assert document["fit"]["gamma_gamma"]["n_customers"] == 946
    assert document["totals"]["customers"] == 2357
    assert document["totals"]["clv"] == pytest.approx(result.customers["clv"].sum())


# ---------------------------------------------------------------- plots


def test_plots_return_axes():
    for plot in (plot_frequency_recency, plot_probability_alive_matrix):
        ax = plot(BGNBD)
        assert isinstance(ax, Axes)
        image = ax.get_images()[0].get_array()
        assert image.shape == (40, 30)  # recency 0..39 by frequency 0..29 (the data's maxima)
        assert np.ma.is_masked(image[1, 0])  # frequency 0 with recency > 0 cannot occur
    ax = Figure().add_subplot()
    assert plot_probability_alive_matrix(BGNBD, ax, max_frequency=5, max_recency=10) is ax
    assert ax.get_images()[0].get_array().shape == (11, 6)


def test_matrix_plots_need_ranges_for_a_model_without_data():
    model = BetaGeoModel.from_params(PAPER_BGNBD)
    with pytest.raises(ConfigError, match="Pass max_frequency and max_recency"):
        plot_frequency_recency(model)
    with pytest.raises(ConfigError, match="'max_frequency' parameter must be an int >= 1"):
        plot_frequency_recency(model, max_frequency=0, max_recency=10)


def test_calibration_plot_counts_missing_customers_as_zero():
    calibration = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [0, 0, 2],
                                "recency": [0.0, 0.0, 30.0], "T": [38.0, 38.0, 38.0]})
    holdout = pd.DataFrame({"customer_id": ["b", "c"], "frequency_holdout": [3, 1],
                            "duration_holdout": [39.0, 39.0]})
    ax = plot_calibration_holdout(calibration, holdout, BGNBD, max_frequency=2)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.5, 1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2+"]


def test_calibration_plot_bad_holdout():
    calibration = OURS.iloc[:3]
    holdout = pd.DataFrame({"customer_id": OURS.customer_id.iloc[:2], "frequency_holdout": 1,
                            "duration_holdout": [39.0, 40.0]})
    with pytest.raises(DataError, match="one holdout length shared by every customer"):
        plot_calibration_holdout(calibration, holdout, BGNBD)
    twice = pd.concat([holdout.assign(duration_holdout=39.0)] * 2)
    with pytest.raises(DataError, match="row 3, column 'customer_id'.*one row per customer"):
        plot_calibration_holdout(calibration, twice, BGNBD)
    with pytest.raises(MissingColumnsError, match="missing column.*'duration_holdout'"):
        plot_calibration_holdout(calibration, holdout.drop(columns="duration_holdout"), BGNBD)


# ---------------------------------------------------------------- holdout helper


def test_holdout_purchases_counts_purchase_days_after_calibration(tiny):
    tx = load_transactions(tiny, as_of="2024-01-31")
    got = holdout_purchases(tx, "2024-01-15", "2024-01-31", "D")
    # a: buys 01-01, 01-11, 01-31 -> one holdout day; b: first buys 01-21 (after the
    # calibration end, so not a calibration customer); c: 01-30 nets to a return.
    assert got.to_dict("records") == [
        {"customer_id": "a", "frequency_holdout": 1, "duration_holdout": 16.0},
        {"customer_id": "c", "frequency_holdout": 0, "duration_holdout": 16.0},
    ]


@pytest.mark.parametrize(("start", "end", "match"), [
    ("2024-01-20", "2024-01-10", "Need calibration_end < holdout_end"),
    ("2024-01-10", "2024-02-20", r"<= the transactions' as_of \(2024-01-31\)"),
    ("10/01/2024", "2024-01-20", "'calibration_end' parameter must be a date"),
])
def test_holdout_purchases_bad_dates(tiny, start, end, match):
    tx = load_transactions(tiny, as_of="2024-01-31")
    with pytest.raises(ConfigError, match=match):
        holdout_purchases(tx, start, end)


def test_holdout_purchases_bad_time_unit(tiny):
    with pytest.raises(ConfigError, match="'time_unit' parameter must be one of D, W, M"):
        holdout_purchases(load_transactions(tiny), "2024-01-10", "2024-01-31", "Y")


# ---------------------------------------------------------------- bad inputs and warnings


def _summary(**changes) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [0, 2, 1],
                          "recency": [0.0, 8.0, 3.0], "T": [10.0, 10.0, 9.0],
                          "monetary_value": [0.0, 20.0, 15.0]})
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(("changes", "match"), [
    ({"frequency": (1, -1)}, r"row 2, column 'frequency': got -1, expected a whole number >= 0"),
    ({"frequency": (2, 1.5)}, r"row 3, column 'frequency': got 1.5, expected a whole number"),
    ({"recency": (1, 12.0)}, r"row 2, column 'recency': got 12.0, expected at most T"),
    ({"recency": (0, 2.0)}, r"row 1, column 'recency'.*expected 0 for a customer with frequency"),
    ({"recency": (2, np.nan)}, r"row 3, column 'recency': got nan, expected a finite number"),
    ({"T": (0, "soon")}, r"row 1, column 'T': got 'soon', expected a finite number"),
    ({"T": (1, -4.0)}, r"row 2, column 'T': got -4.0"),
])
def test_bad_summary_values(changes, match):
    summary = _summary(**changes)
    with pytest.raises(DataError, match=match):
        BetaGeoModel().fit(summary)
    with pytest.raises(DataError, match=match):
        BGNBD.predict_purchases(1, summary)
    with pytest.raises(DataError, match=match):
        fit_clv(summary)


def test_bad_monetary_value():
    with pytest.raises(DataError, match=r"row 2, column 'monetary_value': got inf"):
        GammaGammaModel().fit(_summary(monetary_value=(1, np.inf)))


def test_missing_columns():
    with pytest.raises(MissingColumnsError, match=r"missing column\(s\) 'T'; available"):
        BetaGeoModel().fit(_summary().drop(columns="T"))
    with pytest.raises(MissingColumnsError, match="missing column.*'customer_id'"):
        fit_clv(_summary().drop(columns="customer_id"))
    with pytest.raises(ConfigError, match=r"2-D with 3 columns \(frequency, recency, T\)"):
        BetaGeoModel().fit(np.zeros((4, 2)))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"horizon": 0}, "The 'horizon' parameter must be a finite number > 0.0. Got 0 instead."),
    ({"discount_rate": -0.1}, "'discount_rate' parameter must be a finite number >= 0.0"),
    ({"step": float("nan")}, "'step' parameter must be a finite number > 0.0. Got nan"),
    ({"horizon": "12"}, "'horizon' parameter must be a finite number"),
])
def test_bad_clv_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        customer_lifetime_value(BGNBD, GG, PUBLISHED.iloc[:3], **kwargs)
    with pytest.raises(ConfigError, match=match):
        fit_clv(OURS, **kwargs)


def test_bad_estimator_parameters():
    with pytest.raises(ConfigError, match="'method' parameter of BetaGeoModel must be one of"):
        BetaGeoModel(method="BFGS").fit(PUBLISHED)
    with pytest.raises(ConfigError, match="'max_iter' parameter must be an int >= 1. Got 0"):
        GammaGammaModel(max_iter=0).fit(PUBLISHED)
    with pytest.raises(ConfigError, match="'max_correlation' parameter must be a finite number "
                                          ">= 0.0 and <= 1.0"):
        GammaGammaModel(max_correlation=2).fit(PUBLISHED)
    with pytest.raises(ConfigError, match="exactly the keys r, alpha, a, b"):
        BetaGeoModel.from_params({"r": 1.0, "alpha": 1.0, "a": 1.0})
    with pytest.raises(ConfigError, match="The 'q' parameter must be a finite number > 0.0"):
        GammaGammaModel.from_params({"p": 1.0, "q": -1.0, "v": 1.0})
    with pytest.raises(ConfigError, match="'t' parameter must be a finite number >= 0.0"):
        BGNBD.predict_purchases(-1, PUBLISHED)
    with pytest.raises(ConfigError, match="'t' parameter must be finite numbers >= 0"):
        BGNBD.expected_purchases_new([1, np.nan])


def test_gamma_gamma_needs_repeat_buyers():
    with pytest.raises(EmptyResultError, match="no repeat buyer"):
        GammaGammaModel().fit(_summary(frequency=(1, 0), recency=(1, 0.0)).iloc[:2])


def test_gamma_gamma_leaves_out_non_positive_spend():
    summary = PUBLISHED.copy()
    summary.loc[summary.frequency > 0, "monetary_value"] = summary.monetary_value.where(
        summary.customer_id % 100 != 1, 0.0)
    with pytest.warns(UserWarning, match=r"(\d+) repeat buyer\(s\) with monetary_value <= 0"):
        model = GammaGammaModel().fit(summary)
    assert model.n_excluded_ > 0
    assert model.n_customers_ == 946 - model.n_excluded_


def test_gamma_gamma_warns_on_correlated_spend():
    summary = simulate_summary(3000, T=39.0, random_state=2)
    summary["monetary_value"] = np.where(summary.frequency > 0,
                                         5.0 * summary.frequency + summary.monetary_value, 0.0)
    with pytest.warns(IndependenceWarning, match=r"Pearson r = 0\.\d+ over \d+ repeat buyers"):
        model = GammaGammaModel().fit(summary)
    assert model.frequency_monetary_corr_ > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GammaGammaModel(max_correlation=0.99).fit(summary)


def test_convergence_warnings():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = BetaGeoModel(max_iter=2).fit(PUBLISHED)
    assert not model.converged_
    # Six repeat buyers cannot tell customer heterogeneity from noise: q and v run off.
    few = pd.DataFrame({"frequency": [1, 4, 2, 7, 3, 1],
                        "monetary_value": [12, 80, 25, 60, 15, 150]})
    with pytest.warns(ConvergenceWarning, match=r"no finite maximum on these data \(q = .*too few"):
        model = GammaGammaModel().fit(few)
    assert not model.converged_


def test_a_equal_to_one_is_the_limit_not_nan():
    customers = pd.DataFrame({"frequency": [1, 1], "recency": [0.0, 0.5], "T": [1.0, 1.0]})
    at_one = BetaGeoModel.from_params({"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})
    near = [BetaGeoModel.from_params({"r": 1.0, "alpha": 1.0, "a": a, "b": 1.0})
            for a in (0.999, 1.001)]
    got = at_one.predict_purchases(10, customers).to_numpy()
    sides = [m.predict_purchases(10, customers).to_numpy() for m in near]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, (sides[0] + sides[1]) / 2, rtol=1e-4)
    assert np.isfinite(at_one.expected_purchases_new(10))
