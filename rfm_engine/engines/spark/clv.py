"""The CLV inputs on Spark: the summary and the holdout counts, the DuckDB engine's tables.

:func:`clv_summary` is :func:`rfm_engine.core.features.clv_summary`; :func:`holdout_purchases`
and :func:`repeat_purchase_days` are those of :mod:`rfm_engine.measurement.clv.holdout`
(what :func:`~rfm_engine.measurement.clv.validate_clv` reads): the same tables, bit for bit,
from the purchase days of the very SQL text of
:func:`~rfm_engine.core.orders.grouped_lines_sql`, aggregated on Spark and collected small
(one row per customer, or per day).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...core.features import _set_counts, clv_summary_frame, time_unit_days
from ...core.orders import grouped_lines_sql
from ...measurement.clv.holdout import _period, day_count_frames, holdout_frame
from ...progress import step
from .features import orders_frame
from .loading import SparkTransactions
from .session import pandas_conversion

__all__ = ["clv_summary", "count_customers", "holdout_purchases", "repeat_purchase_days"]


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
        purchase_days = _purchase_days(tx)
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


def _purchase_days(tx: SparkTransactions) -> DataFrame:
    """Each customer's purchase days: ``grouped_lines_sql("order_date")``, ``is_purchase``."""
    tx.frame.createOrReplaceTempView("transactions")
    days = tx.spark.sql(grouped_lines_sql("order_date")).filter("is_purchase")
    tx.spark.catalog.dropTempView("transactions")
    return days


def _as_double(units: Column) -> Column:
    """Cast a DECIMAL(_, 4) to DOUBLE as DuckDB does: its units of 0.0001 / 10^4."""
    return (units * 10000).cast("long").cast("double") / 10000.0


def holdout_purchases(tx: SparkTransactions, calibration_end: str | dt.date,
                      holdout_end: str | dt.date, time_unit: str = "D", *,
                      spend: bool = False) -> pd.DataFrame:
    """Count each calibration customer's purchase days in ``(calibration_end, holdout_end]``.

    :func:`rfm_engine.measurement.clv.holdout.holdout_purchases` on Spark, with its
    parameters: the same table (columns, types, values, order), one row per calibration
    customer, collected. The spend is the exact sum of the days' DECIMAL nets, cast to
    DOUBLE as DuckDB casts it.

    Returns
    -------
    DataFrame
        The table of :func:`~rfm_engine.measurement.clv.holdout.holdout_purchases`.
    """
    start, end = _period(tx, calibration_end, holdout_end, time_unit)
    after = F.col("order_date") > F.lit(start)
    counts = [F.count_if(after).alias("frequency_holdout")]
    if spend:
        counts.append(_as_double(F.coalesce(F.sum(F.when(after, F.col("net"))), F.lit(0)))
                      .alias("spend_holdout"))
    with step("counting holdout purchases (spark)"):
        per_customer = (_purchase_days(tx).filter(F.col("order_date") <= F.lit(end))
                        .groupBy("customer_id")
                        .agg(F.min("order_date").alias("first_day"), *counts)
                        .filter(F.col("first_day") <= F.lit(start)).drop("first_day"))
        with pandas_conversion():
            frame = per_customer.orderBy("customer_id").toPandas()
    tx.source.check_unchanged()
    return holdout_frame(frame, start, end, time_unit)


def repeat_purchase_days(tx: SparkTransactions, calibration_end: str | dt.date,
                         holdout_end: str | dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count, per day, the calibration customers' first purchases and repeat purchases.

    :func:`rfm_engine.measurement.clv.holdout.repeat_purchase_days` on Spark, with its
    parameters: the same two tables (one row per day at most), collected.

    Returns
    -------
    tuple of DataFrame
        The tables of :func:`~rfm_engine.measurement.clv.holdout.repeat_purchase_days`.
    """
    start, end = _period(tx, calibration_end, holdout_end)
    with step("counting repeat purchases per day (spark)"):
        days = (_purchase_days(tx).filter(F.col("order_date") <= F.lit(end))
                .select("customer_id", "order_date"))
        firsts = (days.groupBy("customer_id").agg(F.min("order_date").alias("first_day"))
                  .filter(F.col("first_day") <= F.lit(start)))
        # A customer's days are distinct: the first day is one row, every later one a repeat.
        per_day = (firsts.groupBy(F.col("first_day").alias("order_date"))
                   .agg(F.count(F.lit(1)).alias("customers")))
        repeats = (days.join(firsts, "customer_id").filter(F.col("order_date") > F.col("first_day"))
                   .groupBy("order_date").agg(F.count(F.lit(1)).alias("purchases")))
        with pandas_conversion():
            tables = [frame.orderBy("order_date").toPandas() for frame in (per_day, repeats)]
    tx.source.check_unchanged()
    return day_count_frames(*tables)
