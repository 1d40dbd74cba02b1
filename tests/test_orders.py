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
