"""The CLV summary on Spark: :func:`rfm_engine.core.features.clv_summary`, same table."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F

from ...core.features import _set_counts, clv_summary_frame, time_unit_days
from ...core.orders import grouped_lines_sql
from ...progress import step
from .features import orders_frame
from .loading import SparkTransactions
from .session import pandas_conversion

__all__ = ["clv_summary", "count_customers"]


def count_customers(tx: SparkTransactions) -> None:
    """Fill the data-quality report's order and customer counts, if no step did yet.

    As :func:`rfm_engine.core.features.count_customers`, from the orders on Spark (one
    small aggregation).
    """
    if tx.report.customers:
        return
    orders = orders_frame(tx)
    with step("counting customers (spark)"):
        purchase = F.col("is_purchase")
        other, customers, buyers = orders.agg(
            F.count_if(~purchase), F.count_distinct("customer_id"),
            F.count_distinct(F.when(purchase, F.col("customer_id")))).first()
    tx.source.check_unchanged()
    _set_counts(tx, other, customers, buyers)


def clv_summary(tx: SparkTransactions, *, time_unit: str = "D") -> pd.DataFrame:
    """Summarise transactions for BG/NBD and Gamma-Gamma on Spark; collect the summary.

    The same table as :func:`rfm_engine.core.features.clv_summary` (columns, types, values
    bit for bit, order by ``customer_id``): a customer's lines grouped per day by the very
    SQL text of :func:`~rfm_engine.core.orders.grouped_lines_sql` (the purchase rule), then
    one grouping per customer (the work partitions by customer); the summary, one row per
    customer, is collected to the driver. ``monetary_value`` is the mean of the repeat
    days: the sum of the days but the first, as DuckDB's ``avg`` of a DECIMAL(38, 4)
    computes it (the exact sum in units of 0.0001 as DOUBLE, / (count x 10^4)).

    Parameters
    ----------
    tx : SparkTransactions
        From :func:`rfm_engine.engines.spark.load_transactions`.
    time_unit : {"D", "W", "M"}, default="D"
        Unit of ``recency`` and ``T``.

    Returns
    -------
    DataFrame
        ``customer_id, frequency, recency, T, monetary_value``.

    Raises
    ------
    ConfigError
        Unknown ``time_unit``.
    EmptyResultError
        No customer with a purchase.
    """
    days = time_unit_days(time_unit)
    count_customers(tx)
    with step("computing CLV summary (spark)"):
        tx.frame.createOrReplaceTempView("transactions")
        purchase_days = tx.spark.sql(grouped_lines_sql("order_date")).filter("is_purchase")
        tx.spark.catalog.dropTempView("transactions")
        n = F.count(F.lit(1))
        # Days are distinct per customer: the first day's net is min_by(net, order_date).
        repeat_units = ((F.sum("net") - F.min_by("net", "order_date")) * 10000).cast("long")
        summary = purchase_days.groupBy("customer_id").agg(
            (n - 1).alias("frequency"),
            (F.datediff(F.max("order_date"), F.min("order_date")) / days).alias("recency"),
            (F.datediff(F.lit(tx.as_of), F.min("order_date")) / days).alias("T"),
            F.when(n > 1, repeat_units.cast("double") / ((n - 1) * 10000.0))
            .otherwise(0.0).alias("monetary_value"))
        with pandas_conversion():
            frame = summary.orderBy("customer_id").toPandas()
    tx.source.check_unchanged()
    return clv_summary_frame(tx, frame)
