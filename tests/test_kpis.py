import datetime as dt
import functools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.axes import Axes

from rfm_engine import ConfigError, MissingColumnsError, load_transactions
from rfm_engine.measurement.kpis import (
    KPI_COLUMNS,
    UNSEGMENTED,
    KPITable,
    cohort_retention,
    plot_cohort_heatmap,
    transaction_kpis,
)

NAN = math.nan
AS_OF = "2024-04-15"


def shop_frame() -> pd.DataFrame:
    """Five customers over January to mid-April 2024 (as of 2024-04-15: April is partial).

    Orders (a purchase is an order with a net amount above zero):
      a  A1 01-05 100 | A2 01-20 50 | A3 03-10 60        repeat in Jan, back in Mar
      b  B1 01-31 40                                     one purchase, then gone
      c  C1 02-03 +80 and -20 (a return line: net 60, gross 80) | C2 02-25 25
         C3 03-02 -25 (a return order: revenue -25, not a purchase)
      d  D1 03-15 70 | D2 04-02 30                       new in Mar, again in Apr
      e  E1 01-25 20 | E2 04-10 45                       lapses, returns in Apr

    Purchases per month:      Jan a,a,b,e (4)   Feb c,c (2)   Mar a,d (2)   Apr d,e (2)
    Active customers:         Jan a,b,e         Feb c         Mar a,d       Apr d,e
    First purchase (new):     Jan a,b,e         Feb c         Mar d         Apr -
    Second purchase:          Jan a             Feb c         Mar -         Apr d,e
    Revenue (net, by order):  Jan 100+50+40+20 = 210; Feb 60+25 = 85;
                              Mar 60-25+70 = 105;     Apr 30+45 = 75
    GMV (positive lines):     Jan 210; Feb 80+25 = 105; Mar 60+70 = 130; Apr 75
    """
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "c", "c", "c", "d", "d", "e", "e"],
        "order_id": ["A1", "A2", "A3", "B1", "C1", "C1", "C2", "C3", "D1", "D2", "E1", "E2"],
        "order_date": ["2024-01-05", "2024-01-20", "2024-03-10", "2024-01-31", "2024-02-03",
                       "2024-02-03", "2024-02-25", "2024-03-02", "2024-03-15", "2024-04-02",
                       "2024-01-25", "2024-04-10"],
        "amount": [100.0, 50.0, 60.0, 40.0, 80.0, -20.0, 25.0, -25.0, 70.0, 30.0, 20.0, 45.0],
    })


def segments_frame() -> pd.DataFrame:
    """a and c are 'vip', b 'lapsed', d 'new'; e is missing (-> 'unsegmented')."""
    return pd.DataFrame({"customer_id": ["a", "c", "b", "d"],
                         "segment": ["vip", "vip", "lapsed", "new"]})


@pytest.fixture
def shop() -> pd.DataFrame:
    return shop_frame()


@pytest.fixture
def tx(shop):
    return load_transactions(shop, as_of=AS_OF)


@pytest.fixture
def segments() -> pd.DataFrame:
    return segments_frame()


def assert_columns(frame: pd.DataFrame, expected: dict[str, list]) -> None:
    for column, values in expected.items():
        got = frame[column].tolist()
        if frame[column].dtype.kind == "f":
            assert got == pytest.approx(values, nan_ok=True), column
        else:
            assert got == values, column


# --------------------------------------------------------------------------- monthly


def test_every_monthly_kpi_worked_out_by_hand(tx):
    """churn_days=30: alive at the end of day D = a purchase on D-29..D.

    Alive at the end of  Jan 31 (Jan 2..Jan 31):  a, b, e
                         Feb 29 (Jan 31..Feb 29): b (Jan 31), c
                         Mar 31 (Mar 2..Mar 31):  a (Mar 10), d (Mar 15)   (c's Mar 2 is a return)
                         Apr 15 (Mar 17..Apr 15): d (Apr 2), e (Apr 10)
    Customers at start of a month = alive at the end of the previous month.

    Jan: start 0; end a,b,e = 3; new a,b,e; nobody retained/lost/returning.
    Feb: start a,b,e = 3; end b,c = 2; new c; retained b; lost a,e = 2;
         retention (2 - 1) / 3 = 33.3%; churn 2 / 3 = 66.7%.
    Mar: start b,c = 2; end a,d = 2; new d; retained none; lost b,c = 2;
         returning a (active, not new, not alive at start);
         retention (2 - 1) / 2 = 50%; churn 2 / 2 = 100%.
    Apr: start a,d = 2; end d,e = 2; new none; retained d; lost a; returning e;
         retention (2 - 0) / 2 = 100%; churn 1 / 2 = 50%.

    Repeat in period: Jan a of a,b,e = 1/3; Feb c of c = 1/1; Mar 0/2; Apr 0/2.
    Repeat to date (>= 2 purchases so far / customers so far):
         Jan a/3; Feb a,c/4 = 50%; Mar a,c/5 = 40%; Apr a,c,d,e/5 = 80%.
    Frequency = orders / active: 4/3, 2/1, 2/2, 2/2. AOV = revenue / orders:
         210/4 = 52.5, 85/2 = 42.5, 105/2 = 52.5, 75/2 = 37.5.
    Lifespan (mean over customers so far of first..last purchase month, inclusive):
         Jan a1 b1 e1 -> 1; Feb (+c1) -> 1; Mar a3 b1 c1 d1 e1 -> 7/5 = 1.4;
         Apr a3 b1 c1 d2 e4 -> 11/5 = 2.2.
    CLV = AOV x frequency x lifespan: 52.5*4/3*1 = 70; 42.5*2*1 = 85; 52.5*1*1.4 = 73.5;
         37.5*1*2.2 = 82.5.
    """
    kpis = transaction_kpis(tx, churn_days=30)
    frame = kpis.to_frame()
    assert list(frame.columns) == [c for c in KPI_COLUMNS
                                   if c not in ("segment", "costs", "cac", "clv_net_of_cac",
                                                "clv_to_cac")]
    assert_columns(frame, {
        "period": ["2024-01", "2024-02", "2024-03", "2024-04"],
        "period_start": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1),
                         dt.date(2024, 4, 1)],
        "period_end": [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31),
                       dt.date(2024, 4, 15)],
        "partial": [False, False, False, True],
        "customers_at_start": [0, 3, 2, 2],
        "new_customers": [3, 1, 1, 0],
        "returning_customers": [0, 0, 1, 1],
        "active_customers": [3, 1, 2, 2],
        "customers_retained": [0, 1, 0, 1],
        "customers_lost": [0, 2, 2, 1],
        "customers_at_end": [3, 2, 2, 2],
        "retention_rate": [NAN, 100 / 3, 50.0, 100.0],
        "churn_rate": [NAN, 200 / 3, 100.0, 50.0],
        "orders": [4, 2, 2, 2],
        "repeat_customers": [1, 1, 0, 0],
        "repeat_rate_in_period": [100 / 3, 100.0, 0.0, 0.0],
        "customers_to_date": [3, 4, 5, 5],
        "repeat_customers_to_date": [1, 2, 2, 4],
        "repeat_rate_to_date": [100 / 3, 50.0, 40.0, 80.0],
        "purchase_frequency": [4 / 3, 2.0, 1.0, 1.0],
        "revenue": [210.0, 85.0, 105.0, 75.0],
        "gmv": [210.0, 105.0, 130.0, 75.0],
        "aov": [52.5, 42.5, 52.5, 37.5],
        "lifespan_periods": [1.0, 1.0, 1.4, 2.2],
        "clv": [70.0, 85.0, 73.5, 82.5],
    })
    ints = ["customers_at_start", "new_customers", "customers_lost", "orders",
            "customers_to_date"]
    assert (frame[ints].dtypes == "int64").all()
    assert frame["retention_rate"].dtype == "float64"
    # The customers at the end of a month are the customers at the start of the next.
    assert frame["customers_at_end"].iloc[:-1].tolist() == frame["customers_at_start"].iloc[
        1:].tolist()


@pytest.mark.parametrize(("churn_days", "expected"), [
    # None: alive = active in the month. Active: Jan a,b,e; Feb c; Mar a,d; Apr d,e.
    # Feb: start a,b,e (3), end c (1), new c, retained 0, lost 3: retention (1-1)/3 = 0,
    #      churn 100. Mar: start c (1), end a,d, new d, lost c, a returning: retention
    #      (2-1)/1 = 100, churn 100. Apr: start a,d, end d,e, retained d, lost a, e returning:
    #      retention (2-0)/2 = 100, churn 50.
    (None, {"customers_at_start": [0, 3, 1, 2], "customers_at_end": [3, 1, 2, 2],
            "customers_retained": [0, 0, 0, 1], "customers_lost": [0, 3, 1, 1],
            "returning_customers": [0, 0, 1, 1],
            "retention_rate": [NAN, 0.0, 100.0, 100.0],
            "churn_rate": [NAN, 100.0, 100.0, 50.0]}),
    # 60 days: alive at the end of D = a purchase on D-59..D.
    #   Jan 31 (Dec 3..): a,b,e; Feb 29 (Jan 1..): a,b,c,e; Mar 31 (Feb 1..): a,c,d;
    #   Apr 15 (Feb 16..): a (Mar 10), c (Feb 25), d, e.
    # Feb: start 3, end 4, new c, retained 3: retention (4-1)/3 = 100, churn 0.
    # Mar: start a,b,c,e, end a,c,d, new d, retained a,c, lost b,e: retention (3-1)/4 = 50,
    #      churn 50. Apr: start a,c,d, end a,c,d,e, e returning (not alive on Mar 31):
    #      retention (4-0)/3 = 133.3 (returning customers count as retained), churn 0.
    (60, {"customers_at_start": [0, 3, 4, 3], "customers_at_end": [3, 4, 3, 4],
          "customers_retained": [0, 3, 2, 3], "customers_lost": [0, 0, 2, 0],
          "returning_customers": [0, 0, 0, 1],
          "retention_rate": [NAN, 100.0, 50.0, 400 / 3],
          "churn_rate": [NAN, 0.0, 50.0, 0.0]}),
    # 90 days (the default): Jan 31: a,b,e; Feb 29 (Dec 2..): a,b,c,e; Mar 31 (Jan 2..): all
    # five; Apr 15 (Jan 17..): a (Jan 20), b (Jan 31), c, d, e: all five. Nobody is lost.
    # Feb: (4-1)/3 = 100; Mar: (5-1)/4 = 100; Apr: (5-0)/5 = 100.
    (90, {"customers_at_start": [0, 3, 4, 5], "customers_at_end": [3, 4, 5, 5],
          "customers_retained": [0, 3, 4, 5], "customers_lost": [0, 0, 0, 0],
          "returning_customers": [0, 0, 0, 0],
          "retention_rate": [NAN, 100.0, 100.0, 100.0],
          "churn_rate": [NAN, 0.0, 0.0, 0.0]}),
])
def test_churn_days_variants(tx, churn_days, expected):
    frame = transaction_kpis(tx, churn_days=churn_days).to_frame()
    assert_columns(frame, expected)
    # Neither the activity nor the money depends on the churn rule.
    assert_columns(frame, {"new_customers": [3, 1, 1, 0], "active_customers": [3, 1, 2, 2],
                           "clv": [70.0, 85.0, 73.5, 82.5]})


def test_default_churn_rule_is_90_days(tx):
    pd.testing.assert_frame_equal(transaction_kpis(tx).to_frame(),
                                  transaction_kpis(tx, churn_days=90).to_frame())
    assert transaction_kpis(tx).churn_days == 90


def test_complete_months_do_not_depend_on_later_transactions(shop, tx):
    """As of 2024-03-31, January to March are complete and equal the later run's rows."""
    full = transaction_kpis(tx, churn_days=30).to_frame()
    early = transaction_kpis(load_transactions(shop, as_of="2024-03-31"),
                             churn_days=30).to_frame()
    assert early["partial"].tolist() == [False, False, False]
    pd.testing.assert_frame_equal(early, full.iloc[:3])


def test_months_without_transactions_are_rows_of_zeros():
    raw = pd.DataFrame({"customer_id": ["a", "a"], "order_date": ["2024-01-10", "2024-04-30"],
                        "amount": [10.0, 30.0]})
    frame = transaction_kpis(load_transactions(raw), churn_days=None).to_frame()
    # Feb: a (active in Jan) is lost; Mar: nobody at start; Apr: a returns.
    assert_columns(frame, {
        "period": ["2024-01", "2024-02", "2024-03", "2024-04"],
        "partial": [False, False, False, False],
        "active_customers": [1, 0, 0, 1], "orders": [1, 0, 0, 1],
        "customers_at_start": [0, 1, 0, 0], "customers_lost": [0, 1, 0, 0],
        "returning_customers": [0, 0, 0, 1], "revenue": [10.0, 0.0, 0.0, 30.0],
        "aov": [10.0, NAN, NAN, 30.0], "purchase_frequency": [1.0, NAN, NAN, 1.0],
        # a's lifespan: Jan..Jan = 1 month until April, then Jan..Apr = 4.
        "lifespan_periods": [1.0, 1.0, 1.0, 4.0], "clv": [10.0, NAN, NAN, 120.0],
    })


def test_free_orders_are_purchases_and_zero_net_returns_are_not():
    """f's free order (net 0, no return line) makes f active; g's order nets to 0
    because of a return line, so g never becomes a customer (its revenue, 0, still counts).
    """
    raw = pd.DataFrame({"customer_id": ["f", "g", "g"], "order_id": ["F1", "G1", "G1"],
                        "order_date": ["2024-01-10", "2024-01-12", "2024-01-12"],
                        "amount": [0.0, 15.0, -15.0]})
    frame = transaction_kpis(load_transactions(raw)).to_frame()
    assert_columns(frame, {"active_customers": [1], "new_customers": [1], "orders": [1],
                           "revenue": [0.0], "gmv": [15.0], "aov": [0.0]})


def test_a_window_start_inside_a_month_makes_the_first_month_partial(shop):
    # The 60 days ending on 2024-03-31 start on 2024-02-01: whole months; 45 days start on
    # 2024-02-15, inside February.
    whole = transaction_kpis(load_transactions(shop, as_of="2024-03-31", window_days=60))
    assert whole.to_frame()["partial"].tolist() == [False, False]
    cut = transaction_kpis(load_transactions(shop, as_of="2024-03-31", window_days=45))
    frame = cut.to_frame()
    assert frame["period"].tolist() == ["2024-02", "2024-03"]
    assert frame["partial"].tolist() == [True, False]
    # Only C2 (Feb 25) is left in February: c is new there, with one order of 25.
    assert_columns(frame, {"new_customers": [1, 2], "orders": [1, 2],
                           "revenue": [25.0, 105.0]})


# --------------------------------------------------------------------------- quarters


def test_quarterly_kpis_worked_out_by_hand(tx):
    """Q1 = January..March, Q2 = April 1..15 (partial).

    Q1: active a (3 purchases), b (1), c (2), d (1), e (1): 5, orders 8, all new; repeat in
        period a,c = 2/5 = 40%; revenue 210+85+105 = 400; GMV 210+105+130 = 445;
        AOV 400/8 = 50; frequency 8/5 = 1.6; lifespan 1; CLV 50*1.6*1 = 80.
    Q2: active d, e; orders 2; no new; repeat in period 0; to date a,c,d,e = 4/5 = 80%;
        revenue 75; AOV 37.5; frequency 1; lifespan a1 b1 c1 d2 e2 = 7/5 = 1.4;
        CLV 37.5*1*1.4 = 52.5.
    churn_days=None: Q2 starts with Q1's five active customers and ends with d, e:
        retained 2, lost 3, retention (2-0)/5 = 40%, churn 3/5 = 60%.
    """
    frame = transaction_kpis(tx, period="quarter", churn_days=None).to_frame()
    assert_columns(frame, {
        "period": ["2024-Q1", "2024-Q2"],
        "period_start": [dt.date(2024, 1, 1), dt.date(2024, 4, 1)],
        "period_end": [dt.date(2024, 3, 31), dt.date(2024, 4, 15)],
        "partial": [False, True],
        "customers_at_start": [0, 5], "new_customers": [5, 0], "returning_customers": [0, 0],
        "active_customers": [5, 2], "customers_retained": [0, 2], "customers_lost": [0, 3],
        "customers_at_end": [5, 2], "retention_rate": [NAN, 40.0], "churn_rate": [NAN, 60.0],
        "orders": [8, 2], "repeat_customers": [2, 0], "repeat_rate_in_period": [40.0, 0.0],
        "customers_to_date": [5, 5], "repeat_customers_to_date": [2, 4],
        "repeat_rate_to_date": [40.0, 80.0], "purchase_frequency": [1.6, 1.0],
        "revenue": [400.0, 75.0], "gmv": [445.0, 75.0], "aov": [50.0, 37.5],
        "lifespan_periods": [1.0, 1.4], "clv": [80.0, 52.5],
    })
    # 90 days: every customer bought on or after Jan 17, so all five are alive on Apr 15.
    frame = transaction_kpis(tx, period="quarter").to_frame()
    assert_columns(frame, {"customers_at_start": [0, 5], "customers_at_end": [5, 5],
                           "customers_lost": [0, 0], "retention_rate": [NAN, 100.0],
                           "churn_rate": [NAN, 0.0]})


# --------------------------------------------------------------------------- segments


def test_kpis_by_segment_worked_out_by_hand(tx, segments):
    """churn_days=30 (alive sets as in the monthly test), segments vip a,c; lapsed b;
    new d; unsegmented e. Rows per month in segment order lapsed, new, vip, unsegmented.

    lapsed (b): Jan new, 40; Feb alive at start and end (Jan 31 is within 30 days of
      Feb 29): retained, retention (1-0)/1 = 100; Mar lost: churn 100; Apr nobody.
    new (d): nothing until Mar (new, 70); Apr start d, end d, 30, lifespan 2 -> CLV 60.
    vip (a, c): Jan a new, 2 orders, 150; Feb start a, end c, c new (orders 2, net 85,
      GMV 105), a lost: retention (1-1)/1 = 0, churn 100; Mar start c, end a, a returning,
      c lost: retention (1-0)/1 = 100, churn 100; revenue 60-25 = 35 (c's return),
      lifespan a3 c1 -> 2, CLV 35*1*2 = 70; Apr start a, end nobody: lost 1.
    unsegmented (e): Jan new, 20; Feb start e, end nobody: lost; Apr e returning, 45,
      lifespan Jan..Apr = 4, CLV 180.
    """
    frame = transaction_kpis(tx, by="segment", segments=segments, churn_days=30).to_frame()
    assert frame.columns[:5].tolist() == ["period", "period_start", "period_end", "partial",
                                          "segment"]
    order = ["lapsed", "new", "vip", UNSEGMENTED]
    assert frame["segment"].tolist() == order * 4
    assert frame["period"].tolist() == [p for p in ["2024-01", "2024-02", "2024-03",
                                                    "2024-04"] for _ in order]
    by = {name: rows.reset_index(drop=True) for name, rows in frame.groupby("segment")}
    assert_columns(by["lapsed"], {
        "customers_at_start": [0, 1, 1, 0], "new_customers": [1, 0, 0, 0],
        "active_customers": [1, 0, 0, 0], "customers_retained": [0, 1, 0, 0],
        "customers_lost": [0, 0, 1, 0], "customers_at_end": [1, 1, 0, 0],
        "retention_rate": [NAN, 100.0, 0.0, NAN], "churn_rate": [NAN, 0.0, 100.0, NAN],
        "orders": [1, 0, 0, 0], "revenue": [40.0, 0.0, 0.0, 0.0],
        "repeat_rate_to_date": [0.0, 0.0, 0.0, 0.0], "aov": [40.0, NAN, NAN, NAN],
        "lifespan_periods": [1.0, 1.0, 1.0, 1.0], "clv": [40.0, NAN, NAN, NAN],
    })
    assert_columns(by["new"], {
        "customers_at_start": [0, 0, 0, 1], "new_customers": [0, 0, 1, 0],
        "active_customers": [0, 0, 1, 1], "customers_retained": [0, 0, 0, 1],
        "customers_lost": [0, 0, 0, 0], "customers_at_end": [0, 0, 1, 1],
        "retention_rate": [NAN, NAN, NAN, 100.0], "churn_rate": [NAN, NAN, NAN, 0.0],
        "orders": [0, 0, 1, 1], "revenue": [0.0, 0.0, 70.0, 30.0],
        "repeat_rate_to_date": [NAN, NAN, 0.0, 100.0], "aov": [NAN, NAN, 70.0, 30.0],
        "lifespan_periods": [NAN, NAN, 1.0, 2.0], "clv": [NAN, NAN, 70.0, 60.0],
    })
    assert_columns(by["vip"], {
        "customers_at_start": [0, 1, 1, 1], "new_customers": [1, 1, 0, 0],
        "returning_customers": [0, 0, 1, 0],
        "active_customers": [1, 1, 1, 0], "customers_retained": [0, 0, 0, 0],
        "customers_lost": [0, 1, 1, 1], "customers_at_end": [1, 1, 1, 0],
        "retention_rate": [NAN, 0.0, 100.0, 0.0], "churn_rate": [NAN, 100.0, 100.0, 100.0],
        "orders": [2, 2, 1, 0], "repeat_customers": [1, 1, 0, 0],
        "repeat_rate_in_period": [100.0, 100.0, 0.0, NAN],
        "repeat_rate_to_date": [100.0, 100.0, 100.0, 100.0],
        "revenue": [150.0, 85.0, 35.0, 0.0], "gmv": [150.0, 105.0, 60.0, 0.0],
        "aov": [75.0, 42.5, 35.0, NAN], "purchase_frequency": [2.0, 2.0, 1.0, NAN],
        "lifespan_periods": [1.0, 1.0, 2.0, 2.0], "clv": [150.0, 85.0, 70.0, NAN],
    })
    assert_columns(by[UNSEGMENTED], {
        "customers_at_start": [0, 1, 0, 0], "new_customers": [1, 0, 0, 0],
        "returning_customers": [0, 0, 0, 1], "active_customers": [1, 0, 0, 1],
        "customers_lost": [0, 1, 0, 0], "customers_at_end": [1, 0, 0, 1],
        "retention_rate": [NAN, 0.0, NAN, NAN], "churn_rate": [NAN, 100.0, NAN, NAN],
        "revenue": [20.0, 0.0, 0.0, 45.0], "repeat_rate_to_date": [0.0, 0.0, 0.0, 100.0],
        "lifespan_periods": [1.0, 1.0, 1.0, 4.0], "clv": [20.0, NAN, NAN, 180.0],
    })


@pytest.mark.parametrize("churn_days", [None, 30, 90])
@pytest.mark.parametrize("period", ["month", "quarter"])
def test_segment_counts_add_up_to_the_totals(tx, segments, period, churn_days):
    total = transaction_kpis(tx, period=period, churn_days=churn_days).to_frame()
    split = transaction_kpis(tx, period=period, churn_days=churn_days, by="segment",
                             segments=segments).to_frame()
    summed = split.groupby("period", sort=False)[
        ["customers_at_start", "new_customers", "returning_customers", "active_customers",
         "customers_retained", "customers_lost", "customers_at_end", "orders",
         "repeat_customers", "customers_to_date", "repeat_customers_to_date", "revenue",
         "gmv"]].sum().reset_index()
    pd.testing.assert_frame_equal(summed, total[summed.columns])


def test_segment_ids_are_normalised_and_categories_keep_their_order(shop):
    raw = shop.assign(customer_id=shop["customer_id"].map(
        {"a": "017", "b": "18", "c": "19", "d": "20", "e": "21"}))
    segments = pd.DataFrame({
        "customer_id": [" 017", "18.0", "19", "20"],  # spaces, spreadsheet float
        "segment": pd.Categorical(["vip", "low", "vip", "low"],
                                  categories=["vip", "low", "empty"]),
    })
    frame = transaction_kpis(load_transactions(raw, as_of=AS_OF), by="segment",
                             segments=segments).to_frame()
    assert frame["segment"].tolist()[:4] == ["vip", "low", "empty", UNSEGMENTED]
    january = frame[frame["period"] == "2024-01"].set_index("segment")
    # Jan: vip a (2 orders, 150), low b (40), nobody in 'empty', unsegmented e (20).
    assert january["orders"].tolist() == [2, 1, 0, 1]
    assert january["revenue"].tolist() == [150.0, 40.0, 0.0, 20.0]


# --------------------------------------------------------------------------- costs, CLV


def test_costs_give_cac_and_clv_net_of_cac(tx):
    """CAC = costs / new customers: Jan 300/3 = 100; Feb 50/1 = 50; Mar 100/1 = 100;
    Apr no costs given -> NaN. CLV (70, 85, 73.5, 82.5) minus CAC: -30, 35, -26.5, NaN.
    """
    costs = pd.DataFrame({"period": ["2024-01", "2024-02", pd.Period("2024-03", "M")],
                          "costs": [300.0, 50.0, 100.0]})
    frame = transaction_kpis(tx, churn_days=30, costs=costs).to_frame()
    assert frame.columns[-4:].tolist() == ["costs", "cac", "clv_net_of_cac", "clv_to_cac"]
    assert_columns(frame, {"costs": [300.0, 50.0, 100.0, NAN],
                           "cac": [100.0, 50.0, 100.0, NAN],
                           "clv_net_of_cac": [-30.0, 35.0, -26.5, NAN],
                           "clv_to_cac": [0.7, 1.7, 0.735, NAN]})


def test_monthly_costs_are_summed_into_quarters(tx):
    """Q1 costs 300+50+100 = 450 for 5 new customers: CAC 90; CLV 80 - 90 = -10.
    Q2: no new customer -> CAC NaN even with costs."""
    costs = pd.DataFrame({"period": ["2024-01", "2024-02", "2024-03", "2024-04"],
                          "costs": [300.0, 50.0, 100.0, 20.0]})
    frame = transaction_kpis(tx, period="quarter", costs=costs).to_frame()
    assert_columns(frame, {"costs": [450.0, 20.0], "cac": [90.0, NAN],
                           "clv_net_of_cac": [-10.0, NAN]})
    quarterly = pd.DataFrame({"period": ["2024-Q1", pd.Period("2024Q2", "Q")],
                              "costs": [450.0, 20.0]})
    pd.testing.assert_frame_equal(
        transaction_kpis(tx, period="quarter", costs=quarterly).to_frame(), frame)


def test_segments_use_the_cac_of_the_whole_period(tx, segments):
    costs = pd.DataFrame({"period": ["2024-01"], "costs": [300.0]})
    frame = transaction_kpis(tx, by="segment", segments=segments, churn_days=30,
                             costs=costs).to_frame()
    january = frame[frame["period"] == "2024-01"]
    # 300 / 3 new customers (a, b, e) in every segment; vip CLV 150 - 100 = 50.
    assert january["cac"].tolist() == [100.0] * 4
    assert january["clv_net_of_cac"].tolist() == pytest.approx([-60.0, NAN, 50.0, -80.0],
                                                               nan_ok=True)


def test_a_fixed_lifespan_replaces_the_observed_one(tx):
    # CLV = revenue / active x 3: Jan 70*3 = 210, Feb 85*3, Mar 52.5*3, Apr 37.5*3.
    frame = transaction_kpis(tx, lifespan_periods=3).to_frame()
    assert_columns(frame, {"lifespan_periods": [3.0] * 4,
                           "clv": [210.0, 255.0, 157.5, 112.5]})


# --------------------------------------------------------------------------- cohorts


def test_cohort_matrix_worked_out_by_hand(tx):
    """Cohorts by first purchase: Jan a,b,e (3); Feb c (1); Mar d (1); April none.

    Jan cohort: Jan 3/3; Feb none of a,b,e buys -> 0; Mar a -> 1/3; Apr e -> 1/3.
    Feb cohort: Feb 1/1; Mar c only returns (not a purchase) -> 0; Apr 0; then beyond as_of.
    Mar cohort: Mar 1/1; Apr d -> 1/1.
    """
    cohorts = cohort_retention(tx)
    assert cohorts.index.name == "cohort"
    assert cohorts.index.tolist() == ["2024-01", "2024-02", "2024-03"]
    assert cohorts.columns.tolist() == ["customers", 0, 1, 2, 3]
    assert cohorts["customers"].tolist() == [3, 1, 1]
    assert cohorts["customers"].dtype == "int64"
    shares = cohorts.drop(columns="customers").to_numpy()
    np.testing.assert_allclose(shares, [[100.0, 0.0, 100 / 3, 100 / 3],
                                        [100.0, 0.0, 0.0, NAN],
                                        [100.0, 100.0, NAN, NAN]])


def test_quarterly_cohorts(tx):
    # Q1 cohort: all five; in Q2 d and e buy: 2/5 = 40%.
    cohorts = cohort_retention(tx, period="quarter")
    assert cohorts.index.tolist() == ["2024-Q1"]
    assert cohorts.to_dict(orient="list") == {"customers": [5], 0: [100.0], 1: [40.0]}


# --------------------------------------------------------------------------- invariants


def test_inputs_are_never_modified(shop, segments):
    shop_before, segments_before = shop.copy(), segments.copy()
    costs = pd.DataFrame({"period": ["2024-01"], "costs": [10.0]})
    costs_before = costs.copy()
    tx = load_transactions(shop, as_of=AS_OF)
    transaction_kpis(tx, by="segment", segments=segments, costs=costs).to_frame()
    cohort_retention(tx)
    pd.testing.assert_frame_equal(shop, shop_before)
    pd.testing.assert_frame_equal(segments, segments_before)
    pd.testing.assert_frame_equal(costs, costs_before)
    # and the connection keeps only what it had: no leftover views or tables
    names = tx.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    assert not [n for (n,) in names if "kpi" in n]


def _tables(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    tx = load_transactions(raw, as_of=AS_OF)
    kpis = transaction_kpis(tx, by="segment", segments=segments_frame(), churn_days=30)
    return kpis.to_frame(), cohort_retention(tx)


@functools.cache
def _reference() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _tables(shop_frame())


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.permutations(range(12)))
def test_shuffled_rows_give_identical_tables(order):
    shuffled = shop_frame().iloc[list(order)].reset_index(drop=True)
    kpis, cohorts = _tables(shuffled)
    expected_kpis, expected_cohorts = _reference()
    pd.testing.assert_frame_equal(kpis, expected_kpis)
    pd.testing.assert_frame_equal(cohorts, expected_cohorts)


_DAYS = st.integers(min_value=0, max_value=200)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), _DAYS,
                          st.sampled_from([-5.0, 0.0, 10.0, 25.0])),
                min_size=1, max_size=25),
       st.sampled_from([None, 7, 45]), st.sampled_from(["month", "quarter"]))
def test_accounting_identities_hold(rows, churn_days, period):
    first = dt.date(2024, 1, 1)
    raw = pd.DataFrame({"customer_id": [r[0] for r in rows],
                        "order_date": [(first + dt.timedelta(days=r[1])).isoformat()
                                       for r in rows],
                        "amount": [r[2] for r in rows]})
    tx = load_transactions(raw)
    frame = transaction_kpis(tx, period=period, churn_days=churn_days).to_frame()
    start, end = frame["customers_at_start"], frame["customers_at_end"]
    assert (frame["customers_retained"] + frame["customers_lost"] == start).all()
    assert end.iloc[:-1].tolist() == start.iloc[1:].tolist()
    assert (frame["new_customers"] + frame["returning_customers"]
            <= frame["active_customers"]).all()
    assert frame["revenue"].sum() == pytest.approx(raw["amount"].sum())
    assert frame["gmv"].sum() == pytest.approx(raw["amount"].clip(lower=0).sum())
    assert frame["customers_to_date"].iloc[-1] == tx.con.execute(
        "SELECT count(DISTINCT customer_id) FROM (SELECT customer_id, order_key, "
        "sum(amount) AS net, min(amount) AS low FROM transactions GROUP BY ALL) "
        "WHERE net > 0 OR (net = 0 AND low >= 0)").fetchall()[0][0]
    cohorts = cohort_retention(tx, period=period)
    assert cohorts["customers"].sum() == frame["new_customers"].sum()
    if churn_days is None:  # alive = active: retained / start is the strict retention
        assert (end == frame["active_customers"]).all()


# --------------------------------------------------------------------------- writers, plots


def test_text_table_for_the_cli(tx):
    costs = pd.DataFrame({"period": ["2024-01"], "costs": [1234.5]})
    text = str(transaction_kpis(tx, churn_days=30, costs=costs))
    lines = text.splitlines()
    assert lines[0] == ("KPIs per month, as of 2024-04-15 (churned: no purchase in the last "
                        "30 days; CLV lifespan: mean observed)")
    assert lines[1].split() == ["period", "start", "new", "active", "lost", "end", "retention",
                                "churn", "repeat", "repeat", "to", "date", "frequency", "AOV",
                                "revenue", "GMV", "CLV", "CAC", "CLV", "-", "CAC", "CLV/CAC"]
    assert lines[2].split() == ["2024-01", "0", "3", "3", "0", "3", "n/a", "n/a", "33.3%",
                                "33.3%", "1.33", "52.50", "210.00", "210.00", "70.00",
                                "411.50", "-341.50", "0.17"]
    assert lines[3].split()[6:8] == ["33.3%", "66.7%"]
    assert lines[5].startswith("2024-04*")
    assert lines[-1] == "* partial month: not wholly observed (as of 2024-04-15)"
    assert "segment" in str(transaction_kpis(tx, by="segment", segments=pd.DataFrame(
        {"customer_id": ["a"], "segment": ["vip"]}))).splitlines()[1]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_round_trips(tx, tmp_path, suffix):
    kpis = transaction_kpis(tx, churn_days=30)
    path = kpis.write(tmp_path / f"kpis{suffix}")
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert back.columns.tolist() == kpis.to_frame().columns.tolist()
    assert back["churn_rate"].tolist() == pytest.approx([NAN, 200 / 3, 100.0, 50.0],
                                                        nan_ok=True)
    assert back["period"].astype(str).tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    csv = kpis.to_csv(tmp_path / "kpis.txt")
    assert csv.read_text().splitlines()[0].startswith("period,period_start,period_end,partial")


def test_to_frame_returns_a_copy(tx):
    kpis = transaction_kpis(tx)
    frame = kpis.to_frame()
    frame["revenue"] = 0.0
    assert kpis.to_frame()["revenue"].tolist() == [210.0, 85.0, 105.0, 75.0]
    assert repr(kpis) == ("KPITable(period='month', periods=4, by=None, churn_days=90, "
                          "as_of=2024-04-15)")
    assert isinstance(kpis, KPITable)


def test_plots_return_axes(tx, segments):
    kpis = transaction_kpis(tx, churn_days=30)
    ax = kpis.plot_retention()
    assert isinstance(ax, Axes)
    assert [line.get_label() for line in ax.get_lines()] == ["retention rate", "churn rate"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2024-01", "2024-02", "2024-03",
                                                             "2024-04*"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [NAN, 200 / 3, 100.0, 50.0])
    ax = kpis.plot_revenue()
    assert [p.get_height() for p in ax.patches] == [210.0, 85.0, 105.0, 75.0]
    assert ax.patches[-1].get_hatch() == "//"
    by = transaction_kpis(tx, by="segment", segments=segments)
    assert len(by.plot_retention().get_lines()) == 8  # 4 segments x (retention, churn)
    assert len(by.plot_revenue().get_lines()) == 8
    heat = plot_cohort_heatmap(cohort_retention(tx))
    assert [t.get_text() for t in heat.texts] == ["100%", "0%", "33%", "33%", "100%", "0%",
                                                  "0%", "100%", "100%"]
    assert [t.get_text() for t in heat.get_yticklabels()] == [
        "2024-01 (n=3)", "2024-02 (n=1)", "2024-03 (n=1)"]
    from matplotlib.figure import Figure
    given_ax = Figure().add_subplot()
    assert kpis.plot_retention(ax=given_ax) is given_ax


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"period": "week"}, r"The 'period' parameter must be one of 'month', 'quarter'\. "
                         r"Got 'week' instead\."),
    ({"by": "country"}, r"The 'by' parameter must be one of None, 'segment'\. "
                        r"Got 'country' instead\."),
    ({"churn_days": 0}, r"The 'churn_days' parameter must be a positive int or None\. "
                        r"Got 0 instead\."),
    ({"churn_days": True}, r"'churn_days' parameter .* Got True instead"),
    ({"churn_days": 30.5}, r"'churn_days' parameter .* Got 30\.5 instead"),
    ({"lifespan_periods": 0}, r"The 'lifespan_periods' parameter must be a positive number "
                              r"or None\. Got 0 instead\."),
    ({"lifespan_periods": math.inf}, r"'lifespan_periods' parameter .* Got inf instead"),
    ({"by": "segment"}, r"by='segment' needs the 'segments' table"),
    ({"segments": pd.DataFrame({"customer_id": ["a"], "segment": ["x"]})},
     r"'segments' table is only used with by='segment'"),
])
def test_bad_parameters_are_refused(tx, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        transaction_kpis(tx, **kwargs)


def test_bad_period_of_cohorts_is_refused(tx):
    with pytest.raises(ConfigError, match=r"'period' parameter must be one of .* Got 'day'"):
        cohort_retention(tx, period="day")


@pytest.mark.parametrize(("segments", "error", "match"), [
    (pd.DataFrame({"id": ["a"], "segment": ["x"]}), MissingColumnsError,
     r"segments: missing column\(s\) 'customer_id'; available: 'id', 'segment'"),
    (pd.DataFrame({"customer_id": ["a", "a "], "segment": ["x", "y"]}), ConfigError,
     r"segments: customer_id 'a' appears 2 times; give one segment per customer\."),
    ({"a": "x"}, ConfigError, r"'segments' parameter must be a DataFrame .* Got dict"),
])
def test_bad_segments_are_refused(tx, segments, error, match):
    with pytest.raises(error, match=match):
        transaction_kpis(tx, by="segment", segments=segments)


@pytest.mark.parametrize(("costs", "period", "error", "match"), [
    (pd.DataFrame({"period": ["2024-01"]}), "month", MissingColumnsError,
     r"costs: missing column\(s\) 'costs'; available: 'period'"),
    (pd.DataFrame({"period": ["2024-Q1"], "costs": [1.0]}), "month", ConfigError,
     r"costs: period '2024-Q1' is a quarter but the KPIs are per month"),
    (pd.DataFrame({"period": ["January"], "costs": [1.0]}), "month", ConfigError,
     r"costs: period 'January' is not a month or a quarter; expected a pd\.Period or text "
     r"such as '2024-01' or '2024-Q1'\."),
    (pd.DataFrame({"period": ["2024-01", pd.Period("2024-01", "M")], "costs": [1.0, 2.0]}),
     "month", ConfigError, r"costs: period '2024-01' appears more than once"),
    (pd.DataFrame({"period": ["2024-01", "2024-Q1"], "costs": [1.0, 2.0]}), "quarter",
     ConfigError, r"costs: mix of monthly and quarterly periods"),
    (pd.DataFrame({"period": ["2024-01"], "costs": ["ten"]}), "month", ConfigError,
     r"costs: 'ten' in column 'costs' is not a number\."),
    (pd.DataFrame({"period": ["2024-01"], "costs": [-1.0]}), "month", ConfigError,
     r"costs: costs must not be negative\."),
])
def test_bad_costs_are_refused(tx, costs, period, error, match):
    with pytest.raises(error, match=match):
        transaction_kpis(tx, period=period, costs=costs)


def test_segments_read_from_parquet_files_give_the_same_tables(tx, segments, tmp_path):
    """The weekly run on Spark hands (customer_id, segment) over as Parquet files."""
    from rfm_engine.measurement.kpis import SegmentFiles

    path = tmp_path / "segments.parquet"
    segments.to_parquet(path, index=False)
    expected = transaction_kpis(tx, by="segment", segments=segments, churn_days=30).to_frame()
    got = transaction_kpis(tx, by="segment", segments=SegmentFiles(path),
                           churn_days=30).to_frame()
    pd.testing.assert_frame_equal(got, expected)
