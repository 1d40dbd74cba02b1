"""The orders table and the customer features on Spark."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ...core.features import customer_frame, record_customers
from ...core.orders import grouped_lines_sql, judge_shared_order_ids
from ...io.columns import CONTACT_COLUMNS
from ...progress import step
from .loading import SparkTransactions, _round4
from .session import pandas_conversion

__all__ = ["arrow_customers", "customer_features", "customer_frame_spark", "orders_frame"]


# --- orders and features ------------------------------------------------------------------

def orders_frame(tx: SparkTransactions) -> DataFrame:
    """Build the orders of ``tx`` once (cached): :func:`~rfm_engine.core.orders.grouped_lines_sql`.

    The same SQL text as the DuckDB engine's orders table, with the purchase rule
    :data:`~rfm_engine.core.orders.IS_PURCHASE`; order ids used by several customers are
    counted (and refused beyond ``max_shared_order_fraction``) the same way.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id, order_key, order_date, order_ts, net, min_line, gross, is_purchase``.

    Raises
    ------
    InputError
        Too many order ids are shared by several customers.
    """
    if tx._orders is not None:
        return tx._orders
    with step("grouping orders (spark)"):
        tx.frame.createOrReplaceTempView("transactions")
        orders = tx.hold(tx.spark.sql(grouped_lines_sql()))
        tx.spark.catalog.dropTempView("transactions")
        tx._orders = orders
        if tx.has_order_id:
            _check_shared_order_ids(tx, orders)
    return orders


def _check_shared_order_ids(tx: SparkTransactions, orders: DataFrame) -> None:
    """Count the shared order ids in Spark; the rule is the DuckDB engine's.

    See :func:`rfm_engine.core.orders.judge_shared_order_ids`.
    """
    shared_key = F.col("n") > 1
    ids, shared, example, holders = (
        orders.groupBy("order_key").agg(F.count(F.lit(1)).alias("n"))
        .agg(F.count(F.lit(1)), F.count_if(shared_key),
             F.min(F.when(shared_key, F.col("order_key"))),
             F.min_by(F.when(shared_key, F.col("n")),
                      F.when(shared_key, F.col("order_key")))).first())
    judge_shared_order_ids(tx, ids, shared, example, holders, lambda: [
        r[0] for r in orders.filter(F.col("order_key") == example)
        .select("customer_id").orderBy("customer_id").limit(2).collect()])


def customer_frame_spark(tx: SparkTransactions) -> DataFrame:
    """Compute the RFM customer table on Spark and keep it there (persisted).

    The rows and columns of :func:`rfm_engine.core.features.customer_features` (buyers
    only; not sorted: a Spark DataFrame has no order), as a Spark DataFrame for the steps
    that run on Spark (scoring, segments, campaigns); the counts of ``tx.report``
    (``non_positive_orders``, ``customers_without_purchase``, ``customers``) are taken by
    one aggregation, by the same rule (:func:`~rfm_engine.core.features.record_customers`).

    Returns
    -------
    pyspark.sql.DataFrame
        ``customer_id, recency_days, frequency, monetary, avg_order_value,
        first_purchase, last_purchase, tenure_days`` and the mapped contact columns.

    Raises
    ------
    EmptyResultError
        No customer with a purchase.
    """
    table = tx.hold(_customer_table(tx))
    with step("counting customers (spark)"):
        other, customers, buyers = table.agg(
            F.coalesce(F.sum("_other_orders"), F.lit(0)), F.count(F.lit(1)),
            F.count_if(F.col("frequency") > 0)).first()
    tx.source.check_unchanged()
    record_customers(tx, int(other), int(customers), int(buyers))
    return table.filter(F.col("frequency") > 0).drop("_other_orders")


def customer_features(tx: SparkTransactions) -> pd.DataFrame:
    """Compute the RFM customer table on Spark; collect it to the driver.

    The same table as :func:`rfm_engine.core.features.customer_features` (columns, types,
    order by ``customer_id``, counts in ``tx.report``): orders aggregated per customer in
    Spark, the latest contact values per customer from the lines, then one row per
    customer collected as Arrow (the customer table must fit the driver; the lines need
    not). :func:`customer_frame_spark` keeps the table on Spark instead.

    Returns
    -------
    DataFrame

    Raises
    ------
    EmptyResultError
        No customer with a purchase.
    """
    table = _customer_table(tx)
    with step("collecting customer features (spark)"), pandas_conversion():
        arrow = table.toArrow()
    tx.source.check_unchanged()
    return customer_frame(tx, arrow_customers(arrow))


def arrow_customers(arrow: pa.Table) -> pa.Table:
    """Type and sort a customer table collected from Spark as the DuckDB engine's.

    Large strings become strings; rows are sorted by ``customer_id``.
    """
    arrow = arrow.cast(pa.schema([_plain_field(f) for f in arrow.schema]))
    return arrow.take(pc.sort_indices(arrow, [("customer_id", "ascending")]))


def _customer_table(tx: SparkTransactions) -> DataFrame:
    """Every customer's features (buyers or not) and ``_other_orders``, lazily."""
    orders = orders_frame(tx)
    as_of = F.lit(tx.as_of)
    contact = [c for c in CONTACT_COLUMNS if c in tx.columns]
    purchase = F.col("is_purchase")
    per_customer = orders.groupBy("customer_id").agg(
        F.count_if(purchase).alias("frequency"),
        F.count_if(~purchase).alias("_other_orders"),
        F.sum("net").alias("_net"),
        F.min(F.when(purchase, F.col("order_date"))).alias("first_purchase"),
        F.max(F.when(purchase, F.col("order_date"))).alias("last_purchase"),
    )
    monetary = F.col("_net").cast("double")
    table = per_customer.select(
        "customer_id",
        F.datediff(as_of, "last_purchase").cast("bigint").alias("recency_days"),
        "frequency",
        monetary.alias("monetary"),
        # DuckDB divides the decimal by the count in DOUBLE, then round(x, 4).
        _round4(monetary / F.nullif(F.col("frequency"), F.lit(0))).cast("double")
        .alias("avg_order_value"),
        "first_purchase", "last_purchase",
        F.datediff(as_of, "first_purchase").cast("bigint").alias("tenure_days"),
        "_other_orders",
    )
    if contact:  # latest non-empty value; ties on the timestamp broken by the value
        latest = tx.frame.groupBy("customer_id").agg(*(
            F.max_by(F.col(c), F.when(F.col(c).isNotNull(),
                                      F.struct("order_ts", c))).alias(c)
            for c in contact))
        table = table.join(latest, "customer_id", "left")
        table = table.select(*(c for c in table.columns if c != "_other_orders"),
                             "_other_orders")
    return table


def _plain_field(f: pa.Field) -> pa.Field:
    """Spark's Arrow types as DuckDB's: large strings as strings."""
    if pa.types.is_large_string(f.type):
        return pa.field(f.name, pa.string())
    return f
