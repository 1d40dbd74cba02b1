"""The orders table: cleaned lines grouped into orders, with the engine's one purchase rule.

Every step that counts purchases reads its orders from here, so they all agree on what an
order is and when it is a purchase:

* an **order** is the lines of one customer under one ``order_id`` (or, without an order
  id, one customer's lines of one day);
* an order is a **purchase** when its net amount is above zero, or when it is a free
  order (net exactly zero with no return line). CDNOW has 8 customers whose only
  purchase cost $0.00; the published summaries count them.

:func:`orders_table` builds the orders of a :class:`~rfm_engine.io.loading.Transactions`
once; the features, the KPIs and before/after comparisons read it. The steps that need
another grouping or other lines take their SQL from :func:`grouped_lines_sql`, which the
orders table is built with too: the CLV summary and its holdout group a customer's lines
per *day* (the BG/NBD convention), campaign lift groups the orders of the lines dated in
its outcome window after ``as_of``. So the rule is written once, here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ..errors import InputError
from ..io.columns import CONTACT_COLUMNS
from ..io.loading import Transactions
from ..io.sources import sql_literal
from ..progress import step

__all__ = ["IS_PURCHASE", "GROUPINGS", "grouped_lines_sql", "latest_contact_sql",
           "orders_table", "drop_orders_table"]

#: SQL condition on a group of lines (an order, or a customer's day) with columns ``net``
#: (sum of amounts) and ``min_line`` (smallest amount): the group is a purchase.
IS_PURCHASE = "(net > 0 OR (net = 0 AND min_line >= 0))"
#: What :func:`grouped_lines_sql` groups a customer's lines by: orders or days.
GROUPINGS = ("order_key", "order_date")


def grouped_lines_sql(by: str = "order_key", *, where: str | None = None,
                      columns: str = "") -> str:
    """Return the SQL query grouping the lines of ``transactions`` with the purchase rule.

    The one definition of how lines become orders (or days) and when those are purchases:
    :func:`orders_table` is built from it, and the steps that need another grouping or
    other lines (the CLV summary per day, campaign lift over its outcome window) run it.

    Parameters
    ----------
    by : {"order_key", "order_date"}, default="order_key"
        Group a customer's lines per order, or per day (the BG/NBD convention: a
        customer's purchases of one day are one purchase).
    where : str, optional
        SQL condition on the lines (such as a date window); all lines without it.
    columns : str, default=""
        More aggregates of the lines, each starting with a comma.

    Returns
    -------
    str
        A ``SELECT`` on the view ``transactions`` with columns ``customer_id``, ``by``,
        ``order_date`` (first day of the group), ``order_ts`` (its last timestamp), ``net``
        (sum of amounts, exact decimal), ``min_line`` (smallest line amount), ``gross``
        (sum of the positive lines), the ``columns``, then ``is_purchase``
        (:data:`IS_PURCHASE`).

    Raises
    ------
    ValueError
        ``by`` is not one of :data:`GROUPINGS` (a programming error).

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "a"], "order_id": ["1", "1", "2"],
    ...                     "order_date": ["2024-01-01", "2024-01-01", "2024-01-01"],
    ...                     "amount": [10.0, -10.0, 0.0]})
    >>> tx = load_transactions(raw)
    >>> tx.con.sql(f"SELECT order_key, net, is_purchase FROM ({grouped_lines_sql()}) "
    ...            "ORDER BY order_key").fetchall()
    [('1', Decimal('0.0000'), False), ('2', Decimal('0.0000'), True)]
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}, got {by!r}")
    first_day = "" if by == "order_date" else "min(order_date) AS order_date, "
    condition = f"WHERE {where}" if where else ""
    return f"""
        SELECT *, {IS_PURCHASE} AS is_purchase FROM (
            SELECT customer_id, {by}, {first_day}max(order_ts) AS order_ts,
                   sum(amount) AS net, min(amount) AS min_line,
                   coalesce(sum(amount) FILTER (WHERE amount > 0), 0) AS gross {columns}
            FROM transactions {condition} GROUP BY customer_id, {by})"""


def latest_contact_sql(tx: Transactions) -> str:
    """Return the aggregates of the mapped contact columns: each one's latest non-empty value.

    One ``, arg_max(c, (order_ts, c)) FILTER (WHERE c IS NOT NULL) AS c`` per column of
    :data:`~rfm_engine.io.columns.CONTACT_COLUMNS` that ``tx`` maps (ties on the timestamp
    broken by the value itself), for a grouping of rows with ``order_ts``, such as a
    customer's lines. Empty when none is mapped.
    """
    return "".join(f", arg_max({c}, (order_ts, {c})) FILTER (WHERE {c} IS NOT NULL) AS {c}"
                   for c in CONTACT_COLUMNS if c in tx.columns)


def orders_table(tx: Transactions) -> str:
    """Build the orders table of ``tx`` once; return its name in ``tx.con``.

    Columns: ``customer_id``, ``order_key``, ``order_date`` (first day of the order),
    ``order_ts`` (its last timestamp), ``net`` (sum of amounts, exact decimal),
    ``min_line`` (smallest line amount), ``gross`` (sum of the positive lines), then
    ``is_purchase`` (:data:`IS_PURCHASE`); see :func:`grouped_lines_sql`. The contact
    columns are not in it: the customer table takes them from the lines
    (:func:`latest_contact_sql`).

    With an order id, the order ids used by more than one customer are counted in
    ``tx.report.shared_order_ids``; each customer's lines stay their own order. When more
    than ``tx.max_shared_order_fraction`` of the order ids are shared, the column mapping
    is most likely wrong (a per-store or per-day number mapped as the order id) and an
    :class:`~rfm_engine.errors.InputError` says so.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.

    Returns
    -------
    str
        Name of a temporary table of ``tx.con``, built on the first call for ``tx``.

    Raises
    ------
    InputError
        Too many order ids are shared by several customers.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "b"], "order_id": ["1", "1", "2"],
    ...                     "order_date": ["2024-01-01", "2024-01-01", "2024-01-06"],
    ...                     "amount": [10.0, -10.0, 5.0]})
    >>> tx = load_transactions(raw)
    >>> tx.con.sql(f"SELECT customer_id, net, is_purchase FROM {orders_table(tx)} "
    ...            "ORDER BY customer_id").fetchall()
    [('a', Decimal('0.0000'), False), ('b', Decimal('5.0000'), True)]
    """
    if tx._orders_table is not None:
        return tx._orders_table
    name = f"_rfm_orders_{uuid.uuid4().hex[:12]}"
    with step("grouping orders", rows=tx.report.rows_kept):
        tx.con.execute(f"CREATE TEMP TABLE {name} AS {grouped_lines_sql()}")
        tx.source.check_unchanged()
        tx._orders_table = name
        if tx.has_order_id:
            _check_shared_order_ids(tx, name)
    return name


def drop_orders_table(tx: Transactions) -> None:
    """Drop the orders table of ``tx`` if it was built (it is rebuilt when asked again)."""
    if tx._orders_table is not None:
        tx.con.execute(f"DROP TABLE IF EXISTS {tx._orders_table}")
        tx._orders_table = None


def _check_shared_order_ids(tx: Transactions, name: str) -> None:
    """Count the order ids used by several customers; refuse beyond the threshold."""
    ids, shared, example, holders = tx.con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE n > 1),
               min(order_key) FILTER (WHERE n > 1),
               arg_min(n, order_key) FILTER (WHERE n > 1)
        FROM (SELECT order_key, count(*) AS n FROM {name} GROUP BY order_key)
    """).fetchall()[0]
    judge_shared_order_ids(tx, ids, shared, example, holders, lambda: [
        row[0] for row in tx.con.execute(
            f"SELECT customer_id FROM {name} WHERE order_key = {sql_literal(example)} "
            "ORDER BY customer_id LIMIT 2").fetchall()])


def judge_shared_order_ids(tx: Any, ids: int, shared: int, example: str | None,
                           holders: int | None,
                           first_holders: Callable[[], list[str]]) -> None:
    """Record the shared order ids in ``tx.report``; refuse beyond the threshold.

    The one rule for every engine: each counts, over its orders, the order ids
    (``ids``), those used by more than one customer (``shared``), the smallest such id
    (``example``) and its number of customers (``holders``); ``first_holders`` returns
    the first two customers of ``example``, asked only when an id is shared.

    Raises
    ------
    InputError
        More than ``tx.max_shared_order_fraction`` of the order ids are shared.
    """
    tx.report.shared_order_ids = int(shared)
    if not shared:
        return
    customers = first_holders()
    column = tx.columns["order_id"]
    share = shared / ids
    what = (f"{shared:,} of {ids:,} order ids ({share:.2%}) are used by more than one "
            f"customer, such as {column!r} = {example!r} ({holders} customers: "
            f"{', '.join(map(repr, customers))}{', ...' if holders > 2 else ''})")
    if share > tx.max_shared_order_fraction:
        raise InputError(
            f"{tx.source.name}: {what}: more than max_shared_order_fraction "
            f"{tx.max_shared_order_fraction:.2%}. The order id column looks like it is not "
            "unique per order (a per-store or per-day number?): map a unique id, or raise "
            "--max-shared-order-fraction to count each customer's lines as their own order.")
    tx.report.warnings.append(f"{what}; each customer's lines count as their own order.")
