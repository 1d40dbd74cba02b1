"""The orders table: built once per load, shared order ids counted and refused past a share."""

import numpy as np
import pandas as pd
import pytest

from rfm_engine import customer_features, load_transactions
from rfm_engine.core.features import count_customers
from rfm_engine.core.orders import drop_orders_table, orders_table
from rfm_engine.errors import InputError


def _lines(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": rng.choice([f"c{i}" for i in range(60)], n),
        "order_id": rng.choice([f"o{i}" for i in range(150)], n).astype(object),
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
        "amount": rng.choice([-5.0, 0.0, 12.5, 40.0], n),
        "product_id": [f"p{i}" for i in range(n)],  # no line is a duplicate of another
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_order_ids_are_counted_as_pandas_counts_them(seed):
    raw = _lines(seed)
    holders = raw.groupby("order_id")["customer_id"].nunique()
    tx = load_transactions(raw, max_shared_order_fraction=1.0)
    customers = customer_features(tx)
    assert tx.report.shared_order_ids == int((holders > 1).sum()) > 0
    assert any("are used by more than one customer" in w for w in tx.report.warnings)
    # each customer's lines of a shared id are that customer's own order
    per_order = raw.groupby(["customer_id", "order_id"])["amount"].agg(["sum", "min"])
    purchase = (per_order["sum"] > 0) | ((per_order["sum"] == 0) & (per_order["min"] >= 0))
    expected = purchase.groupby(level="customer_id").sum()
    got = customers.set_index("customer_id")["frequency"]
    pd.testing.assert_series_equal(got, expected[expected > 0].rename("frequency"),
                                   check_names=False, check_dtype=False)


def test_too_many_shared_order_ids_are_refused_naming_one():
    raw = _lines(0)
    share = (raw.groupby("order_id")["customer_id"].nunique() > 1).mean()
    with pytest.raises(InputError, match=r"used by more than one customer, such as 'order_id' = "):
        customer_features(load_transactions(raw, max_shared_order_fraction=share * 0.99))
    tx = load_transactions(raw, max_shared_order_fraction=share)  # at the limit: accepted
    assert customer_features(tx)["frequency"].sum() > 0


def test_without_an_order_id_nothing_is_shared():
    raw = _lines(0).drop(columns="order_id")
    tx = load_transactions(raw)
    customer_features(tx)
    assert tx.report.shared_order_ids == 0


def test_the_table_is_built_once_per_load_and_rebuilt_after_a_drop():
    tx = load_transactions(_lines(3), max_shared_order_fraction=1.0)
    name = orders_table(tx)
    count_customers(tx)
    customer_features(tx)
    assert orders_table(tx) == name
    n_orders = tx.con.sql(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    assert n_orders == len(_lines(3).groupby(["customer_id", "order_id"]))
    drop_orders_table(tx)
    assert not tx.con.sql(f"SELECT * FROM duckdb_tables() WHERE table_name = '{name}'").fetchall()
    assert orders_table(tx) != name


# ------------------------------------------------------- every consumer, one purchase rule

# order id, customer, day of March 2024, amount. Each purchase of a customer is on its own
# day, so the CLV summary's purchase days are its orders.
AGREEMENT_LINES = [
    ("1", "a", 1, 10.0), ("1", "a", 1, 5.0),    # purchase, 15
    ("2", "a", 2, 20.0), ("2", "a", 2, -20.0),  # returned within the order: no purchase
    ("3", "a", 3, 8.0),                         # purchase
    ("4", "b", 4, 0.0),                         # free order: b's only purchase
    ("5", "c", 5, 15.0),                        # order id 5 is shared by c and d:
    ("5", "d", 6, 7.0),                         # each customer's lines are their own order
    ("6", "e", 7, -12.0),                       # only a return: no purchase
    ("7", "f", 8, 30.0), ("8", "f", 9, -30.0),  # purchase, then returned in another order
]
#: customer: (purchases, net revenue), worked out by hand
AGREEMENT_EXPECTED = {"a": (2, 23.0), "b": (1, 0.0), "c": (1, 15.0), "d": (1, 7.0),
                      "f": (1, 0.0)}


def test_every_consumer_counts_the_same_orders_purchases_revenue_and_customers(tmp_path):
    import datetime as dt
    import json

    from rfm_engine import clv_summary, transaction_kpis
    from rfm_engine.measurement.lift import _period_kpis, campaign_lift

    raw = pd.DataFrame([(o, c, f"2024-03-{d:02d}", a) for o, c, d, a in AGREEMENT_LINES],
                       columns=["order_id", "customer_id", "order_date", "amount"])
    raw["product_id"] = [f"p{i}" for i in range(len(raw))]  # no line is a duplicate
    tx = load_transactions(raw, as_of="2024-03-31", max_shared_order_fraction=0.5)
    buyers = sorted(AGREEMENT_EXPECTED)
    purchases = sum(n for n, _ in AGREEMENT_EXPECTED.values())
    revenue = 23.0 + 0.0 + 15.0 + 7.0 - 12.0 + 0.0  # every order, the return-only one too

    features = customer_features(tx).set_index("customer_id")
    assert features.index.tolist() == buyers
    assert {c: (int(r.frequency), r.monetary) for c, r in features.iterrows()} == (
        AGREEMENT_EXPECTED)
    assert (tx.report.shared_order_ids, tx.report.non_positive_orders,
            tx.report.customers, tx.report.customers_without_purchase) == (1, 3, 5, 1)

    kpis = transaction_kpis(tx, period="month").to_frame()
    assert len(kpis) == 1
    month = kpis.iloc[0]
    assert (month.orders, month.active_customers, month.new_customers) == (purchases, 5, 5)
    assert month.revenue == pytest.approx(revenue)

    clv = clv_summary(tx).set_index("customer_id")
    assert clv.index.tolist() == buyers
    assert (clv["frequency"] + 1).to_dict() == features["frequency"].to_dict()

    periods, _ = _period_kpis(tx, "month")  # before/after's KPIs
    assert periods[["orders", "active_customers", "new_customers"]].iloc[0].tolist() == [
        purchases, 5, 5]
    assert periods["revenue"].iloc[0] == pytest.approx(revenue)

    # lift over a window holding all the lines: every buyer converted, with its revenue
    run = tmp_path / "2024-02-29"
    run.mkdir()
    pd.DataFrame({"customer_id": list("abcdef"), "campaign": "c", "group": "target"}
                 ).to_parquet(run / "customers.parquet")
    (run / "manifest.json").write_text(json.dumps({"as_of": "2024-02-29", "config": {}}))
    report = campaign_lift(run, tx, days=31, n_boot=0)
    assert report.window == (dt.date(2024, 2, 29), dt.date(2024, 3, 31))
    outcomes = report.outcomes.set_index("customer_id")
    assert outcomes.index[outcomes["converted"]].sort_values().tolist() == buyers
    assert outcomes.loc[buyers, "revenue"].to_dict() == features["monetary"].to_dict()
    assert outcomes["revenue"].sum() == pytest.approx(revenue)
