import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine import (
    RFMScorer,
    customer_features,
    load_rules,
    load_transactions,
    segment_customers,
    segment_summary,
)


@pytest.fixture
def customers():
    return pd.DataFrame({
        "customer_id": ["C001", "C002", "C003", "C004", "C005"],
        "recency_days": [0, 67, 45, 8, 29],
        "frequency": [3, 1, 1, 2, 1],
        "monetary": [295.5, 35.0, 350.0, 40.0, 15.0],
    })


def test_readme_worked_example(customers):
    result = segment_customers(customers)
    got = result.customers
    assert got.rfm_cell.tolist() == ["554", "112", "215", "443", "311"]
    assert got.segment.tolist() == ["champions", "hibernating", "hibernating", "loyal_customers",
                                    "about_to_sleep"]
    assert any("'frequency'" in w and "[1, 3, 4, 5]" in w for w in result.warnings)
    assert result.effective_bins()["frequency"] == [1, 3, 4, 5]


def test_summary_counts_and_shares(customers):
    summary = segment_customers(customers).summary.set_index("segment")
    assert summary.loc["hibernating", "customers"] == 2
    assert summary.loc["hibernating", "share"] == pytest.approx(0.4)
    assert summary.loc["hibernating", "revenue"] == pytest.approx(385.0)
    assert summary.loc["hibernating", "revenue_share"] == pytest.approx(385.0 / 735.5)
    assert summary.loc["hibernating", "mean_recency_days"] == pytest.approx(56.0)
    assert summary.loc["champions", "mean_frequency"] == 3
    # every segment of the rule set is listed, empty ones with zero customers
    assert list(summary.index) == list(load_rules("rf-grid").segments)
    assert summary.loc["promising", "customers"] == 0
    assert summary.customers.sum() == 5


def test_frozen_scorer_is_applied_as_is(customers):
    with pytest.warns(UserWarning, match="tied values"):
        frozen = RFMScorer().fit(customers[["recency_days", "frequency", "monetary"]])
    later = customers.assign(monetary=customers.monetary * 10)
    result = segment_customers(later, scorer=frozen)
    assert result.scorer is frozen
    assert result.customers.m_score.tolist() == [5, 5, 5, 5, 4]


def test_bins_mismatch_with_rule_set_is_reported(customers):
    result = segment_customers(customers, n_bins=3)
    assert any("written for scores 1..5 but the scorer gives 1..3" in w for w in result.warnings)


def test_unmatched_customers_are_counted(customers):
    result = segment_customers(customers, rules="seed")
    assert any("matched no rule of 'seed'" in w for w in result.warnings)


def test_input_not_mutated(customers):
    before = customers.copy()
    segment_customers(customers)
    pd.testing.assert_frame_equal(customers, before)


def test_summary_of_empty_revenue():
    frame = pd.DataFrame({"segment": ["a"], "monetary": [0.0], "recency_days": [1],
                          "frequency": [1]})
    assert segment_summary(frame).revenue_share.tolist() == [0.0]


transactions = st.lists(
    st.tuples(st.sampled_from([f"c{i}" for i in range(12)]),
              st.dates(min_value=pd.Timestamp("2024-01-01").date(),
                       max_value=pd.Timestamp("2024-12-31").date()),
              st.floats(-50, 500, allow_nan=False).map(lambda x: round(x, 2))),
    min_size=5, max_size=60)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(transactions, st.sampled_from(["rf-grid", "classic", "seed"]), st.integers(0, 10_000))
def test_each_customer_one_segment_and_order_independent(rows, rules, seed):
    raw = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    raw["order_date"] = raw["order_date"].astype(str)
    if not (raw.groupby("customer_id").amount.sum() > 0).any():
        return
    try:
        base = segment_customers(customer_features(load_transactions(raw)), rules=rules)
    except Exception as exc:  # only "no purchase at all" may stop it
        assert "no customer with a purchase" in str(exc)
        return
    shuffled = raw.sample(frac=1, random_state=seed).reset_index(drop=True)
    again = segment_customers(customer_features(load_transactions(shuffled)), rules=rules)
    pd.testing.assert_frame_equal(base.customers, again.customers)
    got = base.customers
    assert got.customer_id.is_unique
    assert got.segment.isin(load_rules(rules).segments).all()
    assert got[["r_score", "f_score", "m_score"]].apply(lambda s: s.between(1, 5)).all().all()
    assert np.all(got.groupby("r_score").recency_days.max().diff().dropna() <= 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e12, 1e12), st.just(float("nan")),
                          st.decimals(-1e6, 1e6, places=4).map(float)), max_size=80),
       st.randoms(use_true_random=False))
def test_money_sum_is_the_exact_sum_rounded_once_in_any_order(values, rng):
    import math

    from rfm_engine.core.pipeline import money_parts, money_sum

    expected = math.fsum(v for v in values if not math.isnan(v))  # correctly rounded
    parts = money_parts(pd.Series(values, dtype="float64"))
    assert money_sum(parts) == expected
    assert parts["n"].sum() == sum(not math.isnan(v) for v in values)
    shuffled = parts.sample(frac=1, random_state=rng.randrange(2**32))
    halves = [shuffled.iloc[: len(shuffled) // 2], shuffled.iloc[len(shuffled) // 2:]]
    summed = pd.concat([h.groupby("exponent")[["high", "low"]].sum().reset_index()
                        for h in halves])  # partial sums, as an engine's partitions give
    assert money_sum(summed) == expected


def test_segment_revenue_does_not_depend_on_the_order_of_the_customers():
    frame = pd.DataFrame({"segment": ["a"] * 10 + ["b"] * 3,
                          "monetary": [0.1] * 10 + [1e16, 1.0, -1e16],
                          "recency_days": range(13), "frequency": [1] * 13})
    assert sum([0.1] * 10) != 1.0  # added in order, the floats lose the last bit
    for order in (frame, frame.iloc[::-1]):
        summary = segment_summary(order).set_index("segment")
        assert summary.loc["a", "revenue"] == 1.0 and summary.loc["b", "revenue"] == 1.0
        assert summary.loc["a", "mean_monetary"] == 0.1
        assert summary.loc["a", "revenue_share"] == 0.5
