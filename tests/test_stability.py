import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from rfm_engine import (
    ConfigError,
    EmptyResultError,
    RuleSet,
    customer_features,
    load_transactions,
    segment_customers,
)
from rfm_engine.datasets.sample_data import generate_transactions
from rfm_engine.io.loading import connect
from rfm_engine.measurement.stability import STABILITY_COLUMNS, StabilityReport, stability_report

RETAIL = {"customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
          "quantity": "Quantity", "unit_price": "Price"}
# Two bins, segments on F only: f_score 2 is "frequent", 1 "occasional".
F_RULES = RuleSet.from_toml('name = "f2"\nn_bins = 2\n'
                            '[[rules]]\nsegment = "frequent"\nf = 2\n'
                            '[[rules]]\nsegment = "occasional"\nf = 1')


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_transactions(n_customers=800, seed=7)


@pytest.fixture
def edges_move() -> pd.DataFrame:
    """Week 1 (as of 2024-01-31): a, b, c, d with 1, 2, 3, 4 purchases of 10.0.

    Week 2 (as of 2024-02-07): nobody of a-d buys; e, f, g, h buy once each on 2024-02-05.

    With 2 bins:
    - frequency median: week 1 2.5 (a, b -> 1; c, d -> 2); refitted week 2: median of
      1,1,1,1,1,2,3,4 = 1, so b (2 purchases, unchanged) gets f 2 and turns "frequent".
      Frozen (2.5): b keeps f 1. a, c, d keep their f either way.
    - monetary median: week 1 25 (a 10, b 20 -> 1; c 30, d 40 -> 2); refitted week 2:
      median 10, so b (20) gets m 2. Frozen: no m change.
    - recency: week 1 a 21, b 11, c 6, d 2 days -> median 8.5 (c, d -> 2); week 2 a 28,
      b 18, c 13, d 9: frozen edge 8.5 gives c and d r 1; refitted median of
      2,2,2,2,9,13,18,28 = 5.5 gives c and d r 1 as well.
    """
    return pd.DataFrame({
        "customer_id": list("abbcccdddd") + list("efgh"),
        "order_date": ["2024-01-10", "2024-01-05", "2024-01-20", "2024-01-03", "2024-01-12",
                       "2024-01-25", "2024-01-02", "2024-01-09", "2024-01-16", "2024-01-29"]
                      + ["2024-02-05"] * 4,
        "amount": 10.0,
    })


def test_refitting_moves_a_customer_whose_own_values_did_not_move(edges_move):
    report = stability_report(edges_move, as_of_dates=["2024-01-31", "2024-02-07"],
                              rules=F_RULES, n_bins=2)
    row = report.to_frame().iloc[0].to_dict()
    assert row == {
        "week": 1, "previous_as_of": dt.date(2024, 1, 31), "as_of": dt.date(2024, 2, 7),
        "customers": 4, "new_customers": 4,
        "moved_frozen": 0.0, "moved_refit": 0.25, "refit_cost": 0.25, "refit_only": 0.25,
        "r_changed_frozen": 0.5, "f_changed_frozen": 0.0, "m_changed_frozen": 0.0,
        "r_changed_refit": 0.5, "f_changed_refit": 0.25, "m_changed_refit": 0.25,
    }
    first, second = report.scorers
    assert [e.tolist() for e in first.bin_edges_] == [[8.5], [2.5], [25.0]]
    assert [e.tolist() for e in second.bin_edges_] == [[5.5], [1.0], [10.0]]
    assert report.warnings == []


def test_identical_weeks_move_nobody(sample):
    as_of = "2025-06-30"
    report = stability_report(sample, as_of_dates=[as_of, as_of], columns=RETAIL)
    row = report.to_frame().iloc[0]
    n_customers = len(customer_features(load_transactions(sample, columns=RETAIL,
                                                          as_of=as_of)))
    assert row["customers"] == n_customers and row["new_customers"] == 0
    assert (row[STABILITY_COLUMNS[5:]] == 0.0).all()


def test_weeks_end_on_the_latest_date_seven_days_apart(sample):
    report = stability_report(sample, weeks=4, columns=RETAIL)
    latest = load_transactions(sample, columns=RETAIL).as_of
    assert report.as_of_dates == [latest - dt.timedelta(days=d) for d in (21, 14, 7, 0)]
    frame = report.to_frame()
    assert list(frame.columns) == STABILITY_COLUMNS
    assert frame["week"].tolist() == [1, 2, 3]
    assert frame["as_of"].tolist() == report.as_of_dates[1:]
    assert frame["previous_as_of"].tolist() == report.as_of_dates[:-1]
    # Exact identities (no claim that one scorer moves fewer customers than the other).
    np.testing.assert_allclose(frame["refit_cost"], frame["moved_refit"] - frame["moved_frozen"])
    assert (frame["refit_only"] <= frame["moved_refit"]).all()
    assert (frame["refit_only"] >= frame["refit_cost"] - 1e-12).all()
    assert len(report.scorers) == 4


def test_as_of_ends_the_weeks(sample):
    report = stability_report(sample, weeks=2, as_of="2025-03-31", columns=RETAIL)
    assert report.as_of_dates == [dt.date(2025, 3, 24), dt.date(2025, 3, 31)]


def test_matches_separate_loads_and_segmentations(sample):
    d1, d2 = "2025-09-01", "2025-09-08"
    report = stability_report(sample, as_of_dates=[d1, d2], columns=RETAIL)
    before = segment_customers(customer_features(
        load_transactions(sample, columns=RETAIL, as_of=d1)))
    now = customer_features(load_transactions(sample, columns=RETAIL, as_of=d2))
    frozen = segment_customers(now, scorer=before.scorer).customers
    refit = segment_customers(now).customers
    keys = before.customers[["customer_id", "segment", "r_score"]]
    both_f = keys.merge(frozen, on="customer_id", suffixes=("_0", "_1"))
    both_r = keys.merge(refit, on="customer_id", suffixes=("_0", "_1"))
    row = report.to_frame().iloc[0]
    assert row["customers"] == len(both_f)
    assert row["new_customers"] == len(now) - len(both_f)
    assert row["moved_frozen"] == (both_f["segment_0"] != both_f["segment_1"]).mean()
    assert row["moved_refit"] == (both_r["segment_0"] != both_r["segment_1"]).mean()
    assert row["r_changed_refit"] == (both_r["r_score_0"] != both_r["r_score_1"]).mean()


def test_window_days_applies_to_every_week(sample):
    d1, d2 = "2025-09-01", "2025-09-08"
    report = stability_report(sample, as_of_dates=[d1, d2], columns=RETAIL, window_days=180)
    first = customer_features(load_transactions(sample, columns=RETAIL, as_of=d1,
                                                window_days=180))
    second = customer_features(load_transactions(sample, columns=RETAIL, as_of=d2,
                                                 window_days=180))
    common = set(first["customer_id"]) & set(second["customer_id"])
    row = report.to_frame().iloc[0]
    assert row["customers"] == len(common)
    assert row["new_customers"] == len(set(second["customer_id"]) - set(first["customer_id"]))


def test_a_given_connection_keeps_its_transactions_view(sample):
    con = connect()
    stability_report(sample, as_of_dates=["2025-06-02", "2025-06-09"], columns=RETAIL, con=con)
    kept = load_transactions(sample, columns=RETAIL, as_of="2025-06-09").report.rows_kept
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == kept
    assert con.execute("SELECT max(order_date) FROM transactions").fetchone()[0] == \
        dt.date(2025, 6, 9)


def test_writers(edges_move, tmp_path):
    report = stability_report(edges_move, as_of_dates=["2024-01-31", "2024-02-07"],
                              rules=F_RULES, n_bins=2)
    data = json.loads(report.to_json())
    assert data["as_of_dates"] == ["2024-01-31", "2024-02-07"]
    assert data["summary"]["moved_refit"] == 0.25 and data["summary"]["customer_weeks"] == 4
    assert data["weeks"][0]["as_of"] == "2024-02-07"
    text = str(report)
    assert "2024-02-07" in text and "25.0%" in text and "+25.0%" in text
    path = report.write_html(tmp_path / "stability.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "<script" not in html


def test_plot_returns_axes_with_both_lines(edges_move):
    report = stability_report(edges_move, as_of_dates=["2024-01-24", "2024-01-31",
                                                       "2024-02-07"], rules=F_RULES, n_bins=2)
    ax = report.plot()
    assert isinstance(ax, Axes)
    assert len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(),
                               report.to_frame()["moved_refit"])
    from matplotlib.figure import Figure
    given = Figure().add_subplot()
    assert report.plot(ax=given) is given


def test_no_customer_in_both_weeks_gives_nan_shares():
    frame = pd.DataFrame({"customer_id": ["a"], "r_score": [1], "f_score": [1],
                          "m_score": [1], "segment": ["x"]})
    other = frame.assign(customer_id="b")
    report = StabilityReport([dt.date(2024, 1, 1), dt.date(2024, 1, 8)], [frame, other],
                             [frame, other])
    row = report.to_frame().iloc[0]
    assert row["customers"] == 0 and row["new_customers"] == 1
    assert row[STABILITY_COLUMNS[5:]].isna().all()
    assert json.loads(report.to_json())["summary"]["moved_frozen"] is None
    assert "n/a" in str(report)


def test_a_week_before_any_purchase_is_named(edges_move):
    with pytest.raises(EmptyResultError, match=r"no customer with a purchase .* 2023-12-31"):
        stability_report(edges_move, as_of_dates=["2023-12-31", "2024-01-31"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"weeks": 1}, r"The 'weeks' parameter must be an int >= 2\. Got 1 instead\."),
    ({"as_of_dates": ["2024-01-31"]}, r"'as_of_dates' parameter must hold at least two dates"),
    ({"as_of_dates": "2024-01-31"}, r"'as_of_dates' parameter must be a list"),
    ({"as_of_dates": ["2024-02-07", "2024-01-31"]},
     r"ascending order; 2024-01-31 comes after 2024-02-07"),
    ({"as_of_dates": ["2024-01-31", "31/01/2024"]},
     r"The 'as_of_dates' parameter must be a date .* Got '31/01/2024' instead"),
    ({"as_of_dates": ["2024-01-31", "2024-02-07"], "as_of": "2024-02-07"},
     r"either 'as_of_dates' or 'as_of'"),
    ({"window_days": 0}, r"The 'window_days' parameter must be a positive int\. Got 0"),
    ({"n_bins": 1}, r"'n_bins' parameter of RFMScorer"),
])
def test_bad_parameters_are_named(edges_move, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        stability_report(edges_move, **kwargs)
