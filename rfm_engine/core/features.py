"""Per-customer features computed in DuckDB: the RFM customer table and the CLV summary.

Two different "recencies" live here, and their names keep them apart:

* ``recency_days`` (customer table, RFM): days from the customer's **last** purchase to
  ``as_of``. Small is good.
* ``recency`` (CLV summary, lifetimes/pymc-marketing convention): the customer's **age at
  their last purchase**, i.e. time from first to last purchase. Large is good.
"""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, EmptyResultError
from ..io.columns import CONTACT_COLUMNS
from ..io.loading import Transactions
from ..io.sources import sql_literal
from ..progress import step
from .orders import grouped_lines_sql, latest_contact_sql, orders_table

__all__ = ["CUSTOMER_COLUMNS", "CLV_SUMMARY_COLUMNS", "TIME_UNITS", "customer_features",
           "arrow_frame", "clv_summary", "clv_summary_frame", "count_customers",
           "record_customers", "time_unit_days"]

#: Columns of the customer table, in order (contact columns follow when mapped).
CUSTOMER_COLUMNS = ("customer_id", "recency_days", "frequency", "monetary", "avg_order_value",
                    "first_purchase", "last_purchase", "tenure_days")
#: Columns of the CLV summary (lifetimes / pymc-marketing names).
CLV_SUMMARY_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value")
#: Days per time unit of the CLV summary: lifetimes' ``freq_multiplier``,
#: pymc-marketing's ``time_scaler``.
TIME_UNITS = {"D": 1.0, "W": 7.0, "M": 30.4375}
_ARROW_DATES = {pa.date32(): pd.ArrowDtype(pa.date32())}


def _as_of_sql(tx: Transactions) -> str:
    return f"DATE {sql_literal(tx.as_of.isoformat())}"


def customer_features(tx: Transactions) -> pd.DataFrame:
    """Compute the RFM customer table, one row per customer, sorted by ``customer_id``.

    Orders are grouped by ``order_id`` (or by customer and day without one). Every
    order counts in ``monetary`` (net, returns included); an order counts in
    ``frequency`` only when it is a purchase: net amount above zero, or a free order
    (net exactly zero and no return line). Customers with no purchase are left out and
    counted in the data-quality report.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.

    Returns
    -------
    DataFrame
        ``customer_id`` (str), ``recency_days`` (int, days from the last purchase to
        ``as_of``; 0 for a purchase on ``as_of``), ``frequency`` (int, purchases),
        ``monetary`` (float, net revenue), ``avg_order_value`` (monetary /
        frequency), ``first_purchase``, ``last_purchase`` (dates), ``tenure_days`` (days
        from the first purchase to ``as_of``), then the latest known ``email``,
        ``first_name`` and ``country`` when mapped.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                     "order_date": ["2024-01-01", "2024-01-11", "2024-01-06"],
    ...                     "amount": [10.0, 30.0, 5.0]})
    >>> customer_features(load_transactions(raw))[["customer_id", "recency_days",
    ...                                           "frequency", "monetary"]]
      customer_id  recency_days  frequency  monetary
    0           a             0          2      40.0
    1           b             5          1       5.0
    """
    contact = [c for c in CONTACT_COLUMNS if c in tx.columns]
    as_of = _as_of_sql(tx)
    orders = orders_table(tx)
    with step("computing customer features", rows=tx.report.rows_kept):
        # The contact columns come straight from the lines, one grouping per customer: in
        # the orders grouping, string aggregates over millions of orders cost 4x as much.
        # Each grouping goes into a table, then the sorted rows are read: at 50M lines the
        # groupings, the join and the sort in one query ran out of DuckDB's memory limit;
        # apart, each spills.
        suffix = uuid.uuid4().hex[:12]
        contacts, features = f"_rfm_contacts_{suffix}", f"_rfm_features_{suffix}"
        try:
            if contact:
                tx.con.execute(f"CREATE TEMP TABLE {contacts} AS SELECT customer_id "
                               f"{latest_contact_sql(tx)} FROM transactions GROUP BY customer_id")
            tx.con.execute(f"""
                CREATE TEMP TABLE {features} AS
                SELECT customer_id,
                       count(*) FILTER (WHERE is_purchase) AS frequency,
                       count(*) FILTER (WHERE NOT is_purchase) AS _other_orders,
                       sum(net) AS monetary,
                       min(order_date) FILTER (WHERE is_purchase) AS first_purchase,
                       max(order_date) FILTER (WHERE is_purchase) AS last_purchase
                FROM {orders} GROUP BY customer_id
            """)
            table = tx.con.sql(f"""
                SELECT customer_id,
                       date_diff('day', last_purchase, {as_of}) AS recency_days,
                       frequency,
                       CAST(monetary AS DOUBLE) AS monetary,
                       CAST(round(monetary / nullif(frequency, 0), 4) AS DOUBLE)
                           AS avg_order_value,
                       first_purchase, last_purchase,
                       date_diff('day', first_purchase, {as_of}) AS tenure_days
                       {''.join(f", {c}" for c in contact)}, _other_orders
                FROM {features} {f"LEFT JOIN {contacts} USING (customer_id)" if contact else ""}
                ORDER BY customer_id
            """).to_arrow_table()
        finally:
            for name in (contacts, features):
                tx.con.execute(f"DROP TABLE IF EXISTS {name}")
    tx.source.check_unchanged()
    return customer_frame(tx, table)


def customer_frame(tx: Any, table: pa.Table) -> pd.DataFrame:
    """Keep the buyers of a per-customer Arrow table, count the report's customers.

    Shared by the engines (DuckDB here, Spark in ``rfm_engine.engines.spark``): ``table``
    has the customer table's columns plus ``_other_orders``, sorted by ``customer_id``;
    ``tx`` is the engine's transactions (``report``, ``source``, ``as_of``).

    Raises
    ------
    EmptyResultError
        No customer with a purchase.
    """
    buyers = pc.greater(table["frequency"], 0)
    other_orders = int(pc.sum(table["_other_orders"]).as_py() or 0)
    n_customers = len(buyers)
    table = table.filter(buyers).drop_columns("_other_orders")
    record_customers(tx, other_orders, n_customers, len(table))
    return arrow_frame(table)


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """Return a customer table read as Arrow as pandas, with every engine's types.

    Dates stay Arrow date32 (4 bytes a value, not a datetime.date object of ~40): at
    millions of customers that is most of the table's memory; Parquet still gets DATE.
    """
    return table.to_pandas(types_mapper=_ARROW_DATES.get)


def record_customers(tx: Any, other_orders: int, customers: int, buyers: int) -> None:
    """Record the order and customer counts of the data-quality report; refuse no buyer.

    Shared by the engines (the Spark engine counts where its customer table lives).

    Parameters
    ----------
    tx : Transactions
        The engine's transactions (``report``, ``source``, ``as_of``).
    other_orders : int
        Orders that are not purchases.
    customers : int
        Customers with any order.
    buyers : int
        Customers with a purchase (the customer table's rows).

    Raises
    ------
    EmptyResultError
        No customer with a purchase.
    """
    _set_counts(tx, other_orders, customers, buyers)
    if not buyers:
        raise EmptyResultError(
            f"{tx.source.name}: no customer with a purchase (an order with net amount > 0) "
            f"on or before {tx.as_of}."
        )


def _set_counts(tx: Transactions, other_orders: int, customers: int, buyers: int) -> None:
    """Record the order and customer counts of the data-quality report."""
    report = tx.report
    report.non_positive_orders = int(other_orders)
    report.customers_without_purchase = int(customers) - int(buyers)
    report.customers = int(buyers)


def count_customers(tx: Transactions) -> None:
    """Fill the data-quality report's order and customer counts, if no step did yet.

    :func:`customer_features` records them as it goes; the steps that do not build the
    customer table (the CLV summary, the KPIs) call this, so every command's report
    carries the real ``non_positive_orders``, ``customers_without_purchase`` and
    ``customers`` (customers with a purchase), by the same purchase rule.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`; ``tx.report`` is updated.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                     "order_date": ["2024-01-01", "2024-01-11", "2024-01-06"],
    ...                     "amount": [10.0, 30.0, -5.0]})
    >>> tx = load_transactions(raw)
    >>> count_customers(tx)
    >>> tx.report.customers, tx.report.customers_without_purchase, tx.report.non_positive_orders
    (1, 1, 1)
    """
    if tx.report.customers:  # customer_features (or an earlier call) counted them
        return
    orders = orders_table(tx)
    with step("counting customers"):
        other_orders, customers, buyers = tx.con.execute(f"""
            SELECT count(*) FILTER (WHERE NOT is_purchase),
                   count(DISTINCT customer_id),
                   count(DISTINCT customer_id) FILTER (WHERE is_purchase)
            FROM {orders}
        """).fetchall()[0]
    tx.source.check_unchanged()
    _set_counts(tx, other_orders, customers, buyers)


def time_unit_days(time_unit: str) -> float:
    """Return the days of a CLV summary's time unit (:data:`TIME_UNITS`), for every engine.

    Raises
    ------
    ConfigError
        ``time_unit`` is not one of :data:`TIME_UNITS`.
    """
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    return TIME_UNITS[time_unit]


def clv_summary(tx: Transactions, *, time_unit: str = "D") -> pd.DataFrame:
    """Summarise transactions the way BG/NBD and Gamma-Gamma models take them.

    A customer's purchases on one day are merged into one purchase, as in lifetimes'
    ``summary_data_from_transaction_data``; a day counts when it is a purchase (net
    amount above zero, or a free order: net zero without a return line). The days are
    not derived from the orders table: the customer's lines are grouped per day by
    :func:`~rfm_engine.core.orders.grouped_lines_sql`, the function the orders table is
    built with, so the purchase rule is the same one (a return dated after its order
    counts on its own day). The data-quality report's customer counts are filled too
    (:func:`count_customers`).

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`; ``as_of`` ends the calibration period.
    time_unit : {"D", "W", "M"}, default="D"
        Unit of ``recency`` and ``T``: days, weeks of 7 days or months of 30.4375 days.

    Returns
    -------
    DataFrame
        ``customer_id``, ``frequency`` (repeat purchase days: purchase days - 1),
        ``recency`` (age at the last purchase: first to last purchase), ``T`` (age at
        ``as_of``: first purchase to ``as_of``), ``monetary_value`` (mean net value of the
        repeat purchase days; 0 without repeats).

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "a"],
    ...                     "order_date": ["2024-01-01", "2024-01-08", "2024-01-15"],
    ...                     "amount": [10.0, 20.0, 40.0]})
    >>> clv_summary(load_transactions(raw), time_unit="W")
      customer_id  frequency  recency    T  monetary_value
    0           a          2      2.0  2.0            30.0
    """
    days = time_unit_days(time_unit)
    as_of = _as_of_sql(tx)
    count_customers(tx)
    with step("computing CLV summary"):
        # The purchase days first, into a table: grouping the lines and numbering each
        # customer's days in one query ran out of DuckDB's memory limit at 50M lines
        # (the window held the grouping's pipeline); apart, both spill.
        purchase_days = f"_rfm_days_{uuid.uuid4().hex[:12]}"
        tx.con.execute(f"""
            CREATE TEMP TABLE {purchase_days} AS SELECT customer_id, order_date, net
            FROM ({grouped_lines_sql("order_date")}) WHERE is_purchase
        """)
        try:
            frame = tx.con.execute(f"""
                WITH ranked AS (
                    SELECT *,
                           row_number() OVER (PARTITION BY customer_id ORDER BY order_date) AS n
                    FROM {purchase_days}
                )
                SELECT customer_id,
                       count(*) - 1 AS frequency,
                       date_diff('day', min(order_date), max(order_date)) / {days} AS recency,
                       date_diff('day', min(order_date), {as_of}) / {days} AS "T",
                       CAST(coalesce(avg(net) FILTER (WHERE n > 1), 0) AS DOUBLE)
                           AS monetary_value
                FROM ranked GROUP BY customer_id ORDER BY customer_id
            """).df()
        finally:
            tx.con.execute(f"DROP TABLE IF EXISTS {purchase_days}")
    tx.source.check_unchanged()
    return clv_summary_frame(tx, frame)


def clv_summary_frame(tx: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """End a CLV summary computed by an engine: refuse an empty one, type ``frequency``.

    Shared by the engines (DuckDB here, Spark in ``rfm_engine.engines.spark``); ``frame``
    has :data:`CLV_SUMMARY_COLUMNS` sorted by ``customer_id``.

    Raises
    ------
    EmptyResultError
        No customer with a purchase.
    """
    if frame.empty:
        raise EmptyResultError(f"{tx.source.name}: no customer with a purchase on or before "
                               f"{tx.as_of}.")
    frame["frequency"] = frame["frequency"].astype("int64")
    return frame
