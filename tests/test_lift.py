"""Campaign lift (target vs holdout) and before/after KPI comparisons."""

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.axes import Axes
from scipy import stats

from rfm_engine.errors import ConfigError, InputError, MissingColumnsError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.lift import (
    BEFORE_AFTER_COLUMNS,
    LIFT_COLUMNS,
    TOTAL,
    LiftReport,
    _bootstrap_means,
    _newcombe,
    _period_kpis,
    _wilson,
    before_after,
    campaign_lift,
)

AS_OF = dt.date(2024, 1, 31)  # window (2024-01-31, 2024-03-01] with days=30 (2024 is leap)
Z95 = stats.norm.ppf(0.975)

# customer, campaign, group
CUSTOMERS = [
    ("t1", "winback", "target"), ("t2", "winback", "target"), ("t3", "winback", "target"),
    ("t4", "winback", "target"), ("h1", "winback", "holdout"), ("h2", "winback", "holdout"),
    ("s1", "winback", "suppressed"),
    ("l1", "loyal", "target"), ("l2", "loyal", "target"),
    ("k1", "loyal", "holdout"), ("k2", "loyal", "holdout"),
    ("x1", "nohold", "target"),
    ("n1", None, "none"), ("e1", "loyal", "excluded"),
]
# customer, date, amount (no order id: one order per customer and day)
TRANSACTIONS = [
    ("t1", "2024-02-05", 50.0),                               # converts: 50
    ("t2", "2024-01-10", 30.0), ("t2", "2024-01-31", 100.0),  # on as_of: not in the window
    ("t3", "2024-03-01", 20.0),                               # as_of + 30: in the window
    ("t4", "2024-03-02", 30.0),                               # as_of + 31: outside
    ("t4", "2024-02-15", 25.0), ("t4", "2024-02-15", -25.0),  # order nets to 0: no purchase
    ("h1", "2024-02-10", 40.0), ("h1", "2024-02-12", -40.0),  # converts, net revenue 0
    ("l1", "2024-02-20", 10.0),
    ("k2", "2024-01-15", 60.0),                               # before the window
    ("x1", "2024-02-01", 5.0),
    ("s1", "2024-02-01", 500.0), ("n1", "2024-02-02", 70.0), ("e1", "2024-02-03", 9.0),
]


def _raw() -> pd.DataFrame:
    return pd.DataFrame(TRANSACTIONS, columns=["customer_id", "order_date", "amount"])


def _write_run(root, customers=CUSTOMERS, as_of=AS_OF, config=None):
    run = root / as_of.isoformat()
    run.mkdir()
    pd.DataFrame(customers, columns=["customer_id", "campaign", "group"]).to_parquet(
        run / "customers.parquet")
    (run / "manifest.json").write_text(json.dumps({"as_of": as_of.isoformat(),
                                                   "config": config or {}}))
    return run


@pytest.fixture
def run_dir(tmp_path):
    return _write_run(tmp_path)


def _row(report, campaign):
    table = report.to_frame()
    return table[table["campaign"] == campaign].iloc[0]


# ------------------------------------------------------------------ hand-made run


def test_hand_made_run_spelled_out(run_dir):
    report = campaign_lift(run_dir, _raw(), days=30, n_boot=200)
    table = report.to_frame()
    assert list(table.columns) == LIFT_COLUMNS
    assert table["campaign"].tolist() == ["loyal", "nohold", "winback", TOTAL]

    win = _row(report, "winback")  # suppressed s1 is not part of the experiment
    assert (win.n_target, win.n_holdout) == (4, 2)
    assert (win.converters_target, win.converters_holdout) == (2, 1)  # t1, t3 | h1
    assert (win.conversion_target, win.conversion_holdout, win.abs_lift) == (0.5, 0.5, 0.0)
    assert win.rel_lift == 0.0
    assert win.revenue_per_customer_target == 17.5  # (50 + 0 + 20 + 0) / 4
    assert win.revenue_per_customer_holdout == 0.0  # h1 bought 40 and returned 40
    assert win.revenue_diff == 17.5
    assert win.incremental_revenue == 70.0  # 17.5 * 4 targets
    assert win.p_value == pytest.approx(1.0) and not win.significant

    loyal = _row(report, "loyal")  # e1 (excluded) bought but is ignored
    assert (loyal.conversion_target, loyal.conversion_holdout, loyal.abs_lift) == (0.5, 0, 0.5)
    assert math.isnan(loyal.rel_lift)  # holdout rate 0: ratio undefined
    assert (loyal.revenue_diff, loyal.incremental_revenue) == (5.0, 10.0)
    assert loyal.incremental_converters == 1.0

    nohold = _row(report, "nohold")
    assert (nohold.n_target, nohold.n_holdout, nohold.conversion_target) == (1, 0, 1.0)
    assert math.isnan(nohold.abs_lift) and math.isnan(nohold.p_value)

    # Total: winback and loyal, stratified, weights 4/6 and 2/6 (nohold has no holdout).
    total = _row(report, TOTAL)
    assert (total.n_target, total.n_holdout) == (6, 4)
    assert total.conversion_target == pytest.approx(3 / 6)
    assert total.conversion_holdout == pytest.approx(4 / 6 * 0.5 + 2 / 6 * 0.0)
    assert total.abs_lift == pytest.approx(1 / 6)
    assert total.revenue_diff == pytest.approx(4 / 6 * 17.5 + 2 / 6 * 5.0)
    assert total.incremental_revenue == pytest.approx(70.0 + 10.0)
    assert math.isnan(total.p_value_holm)
    assert table.loc[table["campaign"] != TOTAL, "p_value_holm"].notna().sum() == 2


def test_welch_interval_of_the_hand_made_run_is_scipys(run_dir):
    win = _row(campaign_lift(run_dir, _raw(), n_boot=0), "winback")
    result = stats.ttest_ind([50.0, 0.0, 20.0, 0.0], [0.0, 0.0], equal_var=False)
    ci = result.confidence_interval(0.95)
    assert (win.revenue_diff_ci_low, win.revenue_diff_ci_high) == pytest.approx(
        (ci.low, ci.high))
    assert win.revenue_p_value == pytest.approx(result.pvalue)
    assert (win.incremental_revenue_ci_low, win.incremental_revenue_ci_high) == pytest.approx(
        (4 * ci.low, 4 * ci.high))
    assert math.isnan(win.revenue_diff_boot_ci_low)  # n_boot=0


@pytest.mark.parametrize(("day", "converted"), [
    ("2024-01-30", False), ("2024-01-31", False),  # on as_of: before the campaign
    ("2024-02-01", True), ("2024-03-01", True),    # first and last day of the window
    ("2024-03-02", False),
])
def test_window_is_after_as_of_up_to_and_including_as_of_plus_days(tmp_path, day, converted):
    customers = [("a", "c", "target"), ("b", "c", "holdout")]
    run = _write_run(tmp_path, customers)
    raw = pd.DataFrame({"customer_id": ["a", "b"], "order_date": [day, "2024-03-05"],
                        "amount": [12.0, 1.0]})
    report = campaign_lift(run, raw, days=30, n_boot=0)
    outcome = report.outcomes.set_index("customer_id").loc["a"]
    assert bool(outcome.converted) is converted
    assert outcome.revenue == (12.0 if converted else 0.0)
    assert report.window == (AS_OF, dt.date(2024, 3, 1))



def test_a_free_order_in_the_window_is_a_conversion(tmp_path):
    # The engine's one purchase rule (rfm_engine.core.orders): a free order (net 0, no
    # return line) is a purchase; an order returned within itself (net 0) is not.
    customers = [("free", "c", "target"), ("refunded", "c", "target"),
                 ("paid", "c", "holdout"), ("idle", "c", "holdout")]
    run = _write_run(tmp_path, customers)
    raw = pd.DataFrame({
        "customer_id": ["free", "refunded", "refunded", "paid", "idle"],
        "order_id": ["1", "2", "2", "3", "4"],
        "order_date": ["2024-02-05", "2024-02-06", "2024-02-06", "2024-02-07", "2024-01-05"],
        "amount": [0.0, 30.0, -30.0, 12.0, 9.0],
        "product_id": ["p1", "p2", "p3", "p4", "p5"],
    })
    report = campaign_lift(run, raw, days=30, n_boot=0)
    outcomes = report.outcomes.set_index("customer_id")
    assert outcomes["converted"].to_dict() == {"free": True, "refunded": False, "paid": True,
                                               "idle": False}
    assert outcomes["revenue"].to_dict() == {"free": 0.0, "refunded": 0.0, "paid": 12.0,
                                             "idle": 0.0}
    row = _row(report, "c")
    assert (row.converters_target, row.converters_holdout) == (1, 1)


def test_before_after_counts_a_free_order_as_a_purchase():
    raw = pd.DataFrame({"customer_id": ["a", "b", "b"], "order_id": ["1", "2", "2"],
                        "order_date": ["2024-01-03", "2024-01-04", "2024-01-04"],
                        "amount": [0.0, 5.0, -5.0], "product_id": ["p1", "p2", "p3"]})
    frame, _ = _period_kpis(load_transactions(raw), "month")
    assert frame[["orders", "active_customers", "new_customers"]].iloc[0].tolist() == [
        1, 1, 1]  # a's free order; b's order is returned within itself
    assert frame["revenue"].iloc[0] == 0.0


def test_loaded_transactions_give_the_same_report(run_dir):
    from_source = campaign_lift(run_dir, _raw(), n_boot=50).to_frame()
    from_loaded = campaign_lift(run_dir, load_transactions(_raw()), n_boot=50).to_frame()
    pd.testing.assert_frame_equal(from_source, from_loaded)


def test_source_is_read_with_the_runs_columns_and_input_options(tmp_path):
    config = {"columns": {"customer_id": "Customer ID", "order_date": "Date",
                          "amount": "Total"},
              "input": {"path": "ignored.csv", "date_format": "%d/%m/%Y"}}
    run = _write_run(tmp_path, config=config)
    raw = _raw()
    raw["order_date"] = pd.to_datetime(raw["order_date"]).dt.strftime("%d/%m/%Y")
    raw = raw.rename(columns={"customer_id": "Customer ID", "order_date": "Date",
                              "amount": "Total"})
    canonical = tmp_path / "canonical"
    canonical.mkdir()
    expected = campaign_lift(_write_run(canonical), _raw(), n_boot=0).to_frame()
    pd.testing.assert_frame_equal(campaign_lift(run, raw, n_boot=0).to_frame(), expected)
    with pytest.raises(MissingColumnsError, match="'Customer ID'"):
        campaign_lift(run, _raw(), n_boot=0)
    canonical_names = campaign_lift(run, _raw(), columns={}, date_format=None, n_boot=0)
    pd.testing.assert_frame_equal(canonical_names.to_frame(), expected)


# ------------------------------------------------------------------ warnings and errors


def test_warns_on_tiny_and_empty_holdouts(run_dir):
    warnings = campaign_lift(run_dir, _raw(), n_boot=0).warnings
    assert any("'winback': holdout of 2 customers (< 30)" in w for w in warnings)
    assert any("'loyal': holdout of 2 customers" in w for w in warnings)
    assert any("'nohold': empty holdout" in w for w in warnings)
    assert not any("incomplete" in w for w in warnings)  # data run to 2024-03-02


def test_warns_when_the_window_runs_past_the_data(run_dir):
    report = campaign_lift(run_dir, _raw(), days=60, n_boot=0)
    (message,) = [w for w in report.warnings if w.startswith("Data incomplete")]
    assert "(2024-01-31, 2024-03-31]" in message and "(2024-03-02)" in message
    assert "only 31 of 60 days" in message
    assert "Data incomplete" in str(report)


def test_warns_when_no_transaction_follows_as_of(run_dir):
    tx = load_transactions(_raw(), as_of="2024-01-31")  # cut at the run's as_of
    report = campaign_lift(run_dir, tx, n_boot=0)
    assert any(w.startswith("No transaction after the run's as_of 2024-01-31")
               for w in report.warnings)
    assert report.to_frame()["converters_target"].sum() == 0


def test_missing_run_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"manifest\.json: no such file"):
        campaign_lift(tmp_path, _raw())
    (tmp_path / "manifest.json").write_text('{"config": {}}')
    (tmp_path / "customers.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="expected JSON with an ISO 'as_of' date"):
        campaign_lift(tmp_path, _raw())


def test_customers_without_group_column(tmp_path):
    run = tmp_path / "2024-01-31"
    run.mkdir()
    pd.DataFrame({"customer_id": ["a"], "campaign": ["c"]}).to_parquet(
        run / "customers.parquet")
    (run / "manifest.json").write_text('{"as_of": "2024-01-31"}')
    with pytest.raises(MissingColumnsError, match="missing column.*'group'"):
        campaign_lift(run, _raw())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"days": 0}, "'days' parameter must be an int >= 1. Got 0"),
    ({"alpha": 1.5}, r"'alpha' parameter must be a float in \(0, 1\). Got 1.5"),
    ({"n_boot": -1}, "'n_boot' parameter must be an int >= 0"),
    ({"seed": "x"}, "'seed' parameter must be an int >= 0. Got 'x'"),
])
def test_bad_parameters(run_dir, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        campaign_lift(run_dir, _raw(), **kwargs)


# ------------------------------------------------------------------ statistics vs references


def _outcomes(counts: dict[str, tuple[int, int, int, int]], *, seed: int = 0,
              revenue: bool = True) -> pd.DataFrame:
    """Per campaign (n_target, converters_target, n_holdout, converters_holdout)."""
    rng = np.random.default_rng(seed)
    frames = []
    for campaign, (n_t, x_t, n_h, x_h) in counts.items():
        for group, n, x in (("target", n_t, x_t), ("holdout", n_h, x_h)):
            converted = np.zeros(n, dtype=bool)
            converted[rng.choice(n, x, replace=False)] = True
            spend = np.where(converted, rng.lognormal(3.0, 1.0, n), 0.0) if revenue else 0.0
            frames.append(pd.DataFrame({
                "customer_id": [f"{campaign}-{group}-{i}" for i in range(n)],
                "campaign": campaign, "group": group, "converted": converted,
                "revenue": spend}))
    return pd.concat(frames, ignore_index=True)


def _simulate(seed: int, p_t: float, p_h: float, n_t: int, n_h: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = {"ab": (n_t, int(rng.binomial(n_t, p_t)), n_h, int(rng.binomial(n_h, p_h)))}
    return _outcomes(counts, seed=seed, revenue=False)


def test_z_test_p_value_matches_scipy_chi2_for_known_counts():
    report = LiftReport(_outcomes({"c": (1000, 120, 1000, 80)}), as_of=AS_OF, n_boot=0)
    row = _row(report, "c")
    chi2 = stats.chi2_contingency([[120, 880], [80, 920]], correction=False)
    assert row.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    pooled = 200 / 2000
    z = 0.04 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert row.z == pytest.approx(z)
    assert row.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert row.significant and row.abs_lift == pytest.approx(0.04)
    # Katz log interval of the ratio 1.5
    se = math.sqrt(1 / 120 - 1 / 1000 + 1 / 80 - 1 / 1000)
    assert row.rel_lift == pytest.approx(0.5)
    assert (row.rel_lift_ci_low, row.rel_lift_ci_high) == pytest.approx(
        (1.5 * math.exp(-Z95 * se) - 1, 1.5 * math.exp(Z95 * se) - 1))


def test_newcombe_interval_reproduces_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:873, table II, 56/70 - 48/80, method 10.
    low, high = _newcombe(56, 70, 48, 80, Z95)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (81, 1000)])
def test_wilson_interval_is_scipys(x, n):
    ci = stats.binomtest(x, n).proportion_ci(0.95, method="wilson")
    assert _wilson(x, n, Z95) == pytest.approx((ci.low, ci.high))


@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_newcombe_interval_holds_the_estimate_within_bounds(n_t, n_h, data):
    x_t, x_h = data.draw(st.integers(0, n_t)), data.draw(st.integers(0, n_h))
    low, high = _newcombe(x_t, n_t, x_h, n_h, Z95)
    assert -1 - 1e-12 <= low <= x_t / n_t - x_h / n_h <= high <= 1 + 1e-12


def test_welch_interval_per_campaign_is_scipys_and_the_total_reduces_to_it():
    outcomes = _outcomes({"c": (400, 60, 300, 30)}, seed=5)
    table = LiftReport(outcomes, as_of=AS_OF, n_boot=0).to_frame()
    t = outcomes.loc[outcomes["group"] == "target", "revenue"]
    h = outcomes.loc[outcomes["group"] == "holdout", "revenue"]
    result = stats.ttest_ind(t, h, equal_var=False)
    ci = result.confidence_interval(0.95)
    row, total = table.iloc[0], table.iloc[1]
    assert (row.revenue_diff, row.revenue_diff_ci_low, row.revenue_diff_ci_high) == (
        pytest.approx((t.mean() - h.mean(), ci.low, ci.high)))
    assert row.revenue_p_value == pytest.approx(result.pvalue)
    # One campaign: the stratified total is the same test (Wald instead of Newcombe).
    for column in ("revenue_diff_ci_low", "revenue_diff_ci_high", "revenue_p_value",
                   "p_value", "rel_lift_ci_low", "rel_lift_ci_high", "incremental_revenue"):
        assert total[column] == pytest.approx(row[column]), column


def test_simulated_true_effect_is_detected():
    covered = 0
    for seed in range(10):
        report = LiftReport(_simulate(seed, 0.12, 0.08, 4000, 4000), as_of=AS_OF, n_boot=0)
        row = _row(report, "ab")
        assert row.significant and row.abs_lift_ci_low > 0, seed
        covered += row.abs_lift_ci_low < 0.04 < row.abs_lift_ci_high
    assert covered >= 8  # a 95% interval holds the true lift most of the time


def test_simulated_null_effect_is_mostly_not_detected():
    false_positives = sum(
        bool(_row(LiftReport(_simulate(seed, 0.08, 0.08, 2000, 2000), as_of=AS_OF,
                             n_boot=0), "ab").significant)
        for seed in range(100, 120))
    assert false_positives <= 3


def test_stratified_total_is_not_fooled_by_different_holdout_shares():
    # Same 5-point lift in both campaigns, very different base rates and holdout shares:
    # naively pooled groups would show a negative lift (Simpson's paradox).
    counts = {"big_base": (1000, 550, 1000, 500), "small_base": (9000, 900, 100, 5)}
    total = _row(LiftReport(_outcomes(counts), as_of=AS_OF, n_boot=0), TOTAL)
    assert total.abs_lift == pytest.approx(0.05)
    assert total.conversion_holdout == pytest.approx(0.1 * 0.5 + 0.9 * 0.05)
    naive = (550 + 900) / 10000 - (500 + 5) / 1100
    assert naive < 0


def test_holm_adjusts_over_campaigns():
    counts = {"a": (1000, 120, 1000, 80), "b": (1000, 100, 1000, 95),
              "c": (1000, 130, 1000, 85)}
    table = LiftReport(_outcomes(counts), as_of=AS_OF, n_boot=0).to_frame().set_index(
        "campaign")
    p = table.loc[["a", "b", "c"], "p_value"].sort_values()
    holm = table.loc[p.index, "p_value_holm"]
    expected = np.minimum(np.maximum.accumulate(p.to_numpy() * [3, 2, 1]), 1)
    assert holm.to_numpy() == pytest.approx(expected)


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_is_reproducible_with_the_seed_and_per_campaign():
    counts = {"a": (500, 60, 200, 15)}
    outcomes = _outcomes(counts, seed=1)
    columns = ["revenue_diff_boot_ci_low", "revenue_diff_boot_ci_high"]

    def boot(frame, seed):
        return _row(LiftReport(frame, as_of=AS_OF, n_boot=500, seed=seed), "a")[columns]

    first = boot(outcomes, 7).tolist()
    assert boot(outcomes, 7).tolist() == first
    assert boot(outcomes, 8).tolist() != first
    more = pd.concat([outcomes, _outcomes({"b": (300, 20, 100, 5)}, seed=2)])
    assert boot(more, 7).tolist() == first  # another campaign does not shift a's draws
    low, high = first
    row = _row(LiftReport(outcomes, as_of=AS_OF, n_boot=0), "a")
    assert low < row.revenue_diff < high
    assert (high - low) == pytest.approx(row.revenue_diff_ci_high - row.revenue_diff_ci_low,
                                         rel=0.25)  # close to the Welch width


def test_sparse_bootstrap_has_the_distribution_of_the_plain_one():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(800) < 0.1, rng.lognormal(3, 1, 800), 0.0)
    sparse = _bootstrap_means(values, 4000, np.random.default_rng(1))
    plain = values[np.random.default_rng(2).integers(0, 800, (4000, 800))].mean(axis=1)
    assert stats.ks_2samp(sparse, plain).pvalue > 0.01
    assert sparse.mean() == pytest.approx(values.mean(), rel=0.01)
    assert sparse.std() == pytest.approx(values.std() / math.sqrt(800), rel=0.05)


# ------------------------------------------------------------------ writers


def test_writers(run_dir):
    report = campaign_lift(run_dir, _raw(), n_boot=100)
    data = json.loads(report.to_json())
    assert data["window"] == {"start_exclusive": "2024-01-31", "end_inclusive": "2024-03-01",
                              "days": 30}
    assert [c["campaign"] for c in data["campaigns"]] == ["loyal", "nohold", "winback", TOTAL]
    assert data["campaigns"][1]["abs_lift"] is None  # NaN written as null
    assert data["campaigns"][2]["incremental_revenue"] == 70.0
    assert data["warnings"] == report.warnings
    text = str(report)
    assert "winback" in text and "(total)" in text and "warning: Campaign 'nohold'" in text
    ax = report.plot()
    assert isinstance(ax, Axes) and len(ax.containers) == 4  # one error bar per row
    assert isinstance(report.plot(metric="revenue_diff"), Axes)
    with pytest.raises(ConfigError, match="'metric' parameter of LiftReport.plot must be"):
        report.plot(metric="nope")
    assert report.to_frame() is not report.table


def test_outcomes_need_their_columns():
    with pytest.raises(MissingColumnsError, match="outcomes: missing column.*'revenue'"):
        LiftReport(pd.DataFrame({"customer_id": [], "campaign": [], "group": [],
                                 "converted": []}), as_of=AS_OF)


# ------------------------------------------------------------------ before / after

KPIS = pd.DataFrame({
    "period": ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"],
    "revenue": [100.0, 110.0, 90.0, 150.0, 160.0, 140.0],
    "orders": [10, 11, 9, 12, 13, 11],
})


def test_before_after_on_a_hand_made_series():
    report = before_after(KPIS, "2024-04-01", metrics=["revenue", "orders"], periods=3)
    table = report.to_frame().set_index("metric")
    assert list(report.to_frame().columns) == BEFORE_AFTER_COLUMNS
    revenue = table.loc["revenue"]
    assert (revenue.before_mean, revenue.after_mean, revenue.difference) == (100, 150, 50)
    assert revenue["pct_change"] == 0.5
    result = stats.ttest_ind([150, 160, 140], [100, 110, 90], equal_var=False)
    ci = result.confidence_interval(0.95)
    assert (revenue.t, revenue.p_value) == pytest.approx((result.statistic, result.pvalue))
    assert (revenue.ci_low, revenue.ci_high) == pytest.approx((ci.low, ci.high))
    assert revenue.significant
    orders = table.loc["orders"]
    assert (orders.before_mean, orders.after_mean) == (10, 12)
    assert orders.p_value == pytest.approx(
        stats.ttest_ind([12, 13, 11], [10, 11, 9], equal_var=False).pvalue)
    assert report.warnings == []
    assert "observational" in str(report)
    assert json.loads(report.to_json())["observational"] is True
    assert isinstance(report.plot(), Axes)


def test_before_after_leaves_out_the_period_holding_a_mid_period_date():
    report = before_after(KPIS, "2024-04-15", metrics=["revenue"], periods=3)
    series = report.series
    assert series.loc[series["side"] == "before", "period"].astype(str).tolist() == [
        "2024-01-01", "2024-02-01", "2024-03-01"]
    assert series.loc[series["side"] == "after", "period"].astype(str).tolist() == [
        "2024-05-01", "2024-06-01"]
    assert report.warnings == ["Only 2 complete month(s) after 2024-04-15 (asked for 3); the "
                               "t-test needs at least 2 per side."]


def test_before_after_accepts_a_kpi_table_object():
    class KPITable:
        def to_frame(self):
            return KPIS.assign(period=pd.PeriodIndex(KPIS["period"], freq="M"))

    report = before_after(KPITable(), dt.date(2024, 4, 1), metrics=["revenue"])
    assert report.to_frame().loc[0, "difference"] == 50


TX_MONTHS = pd.DataFrame({
    "customer_id": ["a", "a", "a", "b", "b", "c", "c", "d"],
    "order_date": ["2024-01-01", "2024-02-10", "2024-03-03", "2024-01-20", "2024-03-15",
                   "2024-02-01", "2024-04-30", "2024-04-02"],
    "amount": [10.0, 20.0, 30.0, 40.0, -40.0, 50.0, 60.0, 5.0],
})


def test_before_after_from_transactions_monthly_kpis():
    report = before_after(load_transactions(TX_MONTHS), "2024-03-01", periods=2)
    series = report.series.set_index(report.series["period"].astype(str))
    # month: revenue, orders (purchases), active, new, AOV = revenue / orders
    expected = {"2024-01-01": (50, 2, 2, 2, 25.0), "2024-02-01": (70, 2, 2, 1, 35.0),
                "2024-03-01": (-10, 1, 1, 0, -10.0), "2024-04-01": (65, 2, 2, 1, 32.5)}
    metrics = ["revenue", "orders", "active_customers", "new_customers",
               "average_order_value"]
    for month, values in expected.items():
        assert series.loc[month, metrics].tolist() == pytest.approx(values), month
    table = report.to_frame().set_index("metric")
    assert table.loc["revenue", ["before_mean", "after_mean"]].tolist() == [60, 27.5]
    assert table.loc["new_customers", "pct_change"] == pytest.approx((0.5 - 1.5) / 1.5)
    assert report.warnings == []


def test_before_after_drops_a_partly_covered_period_with_a_warning():
    tx = load_transactions(TX_MONTHS, as_of="2024-04-15")  # April is cut short
    report = before_after(tx, "2024-03-01", metrics=["revenue"], periods=2)
    assert report.series["side"].tolist() == ["before", "before", "after"]
    assert any("month starting 2024-04-01 is only partly covered" in w
               for w in report.warnings)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"metrics": ["nps"]}, ConfigError, r"Metric\(s\) 'nps' not available; available: "),
    ({"period": "year"}, ConfigError, "'period' parameter must be one of month, quarter"),
    ({"periods": 0}, ConfigError, "'periods' parameter must be an int >= 1"),
])
def test_before_after_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        before_after(KPIS, "2024-04-01", **kwargs)
