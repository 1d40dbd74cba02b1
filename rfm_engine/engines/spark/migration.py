"""Segment migration against the previous run, on Spark.

:func:`migrate` is :func:`rfm_engine.measurement.migration.migrate` for a Spark DataFrame of
customers: one full outer join with the previous run's customers on ``customer_id`` gives
each current customer's ``previous_segment`` and ``segment_since`` (the previous
``segment_since`` when the segment is unchanged, else ``as_of``), and the counts of moves
(a few rows: segment x segment, with ``(new)`` and ``(gone)``) are aggregated on Spark and
handed to :meth:`Migration.from_moves <rfm_engine.measurement.migration.Migration.from_moves>`,
so the matrix, shares, moved share and heatmap are the pandas code's. The previous run's
``customers.parquet`` is read by Spark whether it is one file (a DuckDB run) or a folder of
part files (a Spark run).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ...core.features import arrow_frame
from ...errors import InputError
from ...io._validation import as_date, require_columns
from ...measurement.migration import GONE, NEW, Migration
from .features import arrow_customers
from .session import pandas_conversion

__all__ = ["SparkMigration", "migrate"]


class SparkMigration(Migration):
    """A :class:`~rfm_engine.measurement.migration.Migration` whose customers are on Spark.

    ``customers`` is a Spark DataFrame (lazy: cache it when it is used more than once); the
    matrix and the other counts are pandas, as for the DuckDB engine. :meth:`entered`
    collects one segment's entrants to the driver, so
    :func:`~rfm_engine.measurement.migration.trigger_lists` works unchanged.
    """

    customers: DataFrame  # type: ignore[assignment]

    def entered(self, segment: str) -> pd.DataFrame:
        """Return the customers in ``segment`` now who were elsewhere (or new) before.

        Parameters
        ----------
        segment : str
            A segment name.

        Returns
        -------
        pandas.DataFrame
            Rows of :attr:`customers`, ordered by ``customer_id`` (the order of the DuckDB
            engine's customer table).
        """
        now = F.col("segment") == segment
        before = F.coalesce(F.col("previous_segment") == segment, F.lit(False))
        rows = self.customers.filter(now & ~before)
        with pandas_conversion():  # the DuckDB engine's types (dates as date32)
            return arrow_frame(arrow_customers(rows.toArrow()))


def migrate(
    current: DataFrame,
    previous: str | Path | DataFrame | None,
    as_of: dt.date | str,
    *,
    order: Sequence[str] | None = None,
    previous_as_of: dt.date | str | None = None,
) -> SparkMigration:
    """Compare this run's segments with the previous run's, on Spark.

    The same result as :func:`rfm_engine.measurement.migration.migrate`.

    Parameters
    ----------
    current : pyspark.sql.DataFrame
        This run's customers (``customer_id``, ``segment``). Existing ``previous_segment``
        and ``segment_since`` columns are replaced.
    previous : str, Path, pyspark.sql.DataFrame or None
        The previous run's ``customers.parquet`` (a file or a folder of part files), its
        table, or None for a first run. Read: ``customer_id``, ``segment`` and
        ``segment_since`` when that run had it (a date, or ISO text).
    as_of : date or str
        As-of date of this run.
    order : sequence of str, optional
        Segment order of the matrix (e.g. ``RuleSet.segments``).
    previous_as_of : date or str, optional
        As-of date of the previous run: the ``segment_since`` of unchanged customers when
        the previous table has none.

    Returns
    -------
    SparkMigration
        ``customers``: ``current`` plus ``previous_segment`` (text, null for new customers)
        and ``segment_since`` (a date). The counts are computed (one Spark job).

    Raises
    ------
    MissingColumnsError
        If a table lacks ``customer_id`` or ``segment``.
    InputError
        If a customer id is missing or repeated, a segment is missing, or a
        ``segment_since`` is not a date.
    """
    day = as_date(as_of, "as_of")
    _check(current, "current")
    spark = current.sparkSession
    kept = [c for c in current.columns if c not in ("previous_segment", "segment_since")]
    now = current.select(*kept)
    if previous is None:
        customers = now.withColumn("previous_segment", F.lit(None).cast("string")) \
                       .withColumn("segment_since", F.lit(day))
        rows = now.groupBy("segment").agg(F.count(F.lit(1)).alias("customers")).collect()
        moves = pd.DataFrame({"from": NEW, "to": [r["segment"] for r in rows],
                              "customers": [r["customers"] for r in rows]},
                             columns=["from", "to", "customers"])
        return SparkMigration.from_moves(customers, moves, day, order=order,
                                         has_previous=False)
    before = (spark.read.parquet(str(previous)) if isinstance(previous, str | Path)
              else previous)
    _check(before, "previous")
    since = _since(before)
    if previous_as_of is not None:
        since = F.coalesce(since, F.lit(as_date(previous_as_of, "previous_as_of")))
    before = before.select("customer_id", F.col("segment").cast("string").alias("_before"),
                           since.alias("_since"))
    joined = (now.withColumn("_now", F.lit(True))
              .join(before, "customer_id", "full_outer"))
    unchanged = F.col("_before") == F.col("segment")
    customers = joined.filter(F.col("_now")).select(
        *kept, F.col("_before").alias("previous_segment"),
        F.when(unchanged, F.col("_since")).otherwise(F.lit(day)).alias("segment_since"))
    source = F.coalesce(F.col("_before"), F.lit(NEW))
    target = F.when(F.col("_now"), F.col("segment").cast("string")).otherwise(F.lit(GONE))
    rows = (joined.groupBy(source.alias("from"), target.alias("to"))
            .agg(F.count(F.lit(1)).alias("customers")).collect())
    moves = pd.DataFrame([r.asDict() for r in rows], columns=["from", "to", "customers"])
    return SparkMigration.from_moves(customers, moves, day, order=order, has_previous=True)


def _check(frame: DataFrame, name: str) -> None:
    """Check as the pandas migration does: ids present and unique, segments present."""
    require_columns(pd.DataFrame(columns=frame.columns), ["customer_id", "segment"],
                    f"{name} customer table")
    ids = F.col("customer_id")
    row = frame.agg(F.count(F.lit(1)).alias("rows"),
                    F.count_distinct(ids).alias("ids"),
                    F.count_if(ids.isNull()).alias("no_id"),
                    F.min(F.when(F.col("segment").isNull(), ids)).alias("no_segment"),
                    F.count_if(F.col("segment").isNull()).alias("segments_missing")).first()
    if row["no_id"]:
        raise InputError(f"{name} customer table: {row['no_id']:,} row(s) without a "
                         "customer_id; every customer needs an id.")
    if row["ids"] != row["rows"]:
        repeated = [r[0] for r in frame.groupBy(ids).count().filter(F.col("count") > 1)
                    .orderBy(ids).limit(3).collect()]
        raise InputError(f"{name} customer table: customer_id must be unique, got "
                         f"{row['rows'] - row['ids']:,} duplicated id(s), e.g. {repeated}.")
    if row["segments_missing"]:
        raise InputError(f"{name} customer table: segment is missing for "
                         f"{row['segments_missing']:,} customer(s), e.g. customer_id "
                         f"{row['no_segment']!r}.")


def _since(previous: DataFrame) -> Column:
    """Return the previous table's ``segment_since`` as a date column (null when absent)."""
    if "segment_since" not in previous.columns:
        return F.lit(None).cast("date")
    kind = previous.schema["segment_since"].dataType
    column = F.col("segment_since")
    if isinstance(kind, T.DateType):
        return column
    if isinstance(kind, T.TimestampType | T.TimestampNTZType):
        return F.to_date(column)
    text = F.trim(column.cast("string"))
    parsed = F.try_to_date(F.substring(text, 1, 10), "yyyy-MM-dd")
    bad = previous.filter(text.isNotNull() & parsed.isNull()).select(
        "customer_id", "segment_since").limit(1).collect()
    if bad:
        raise InputError(f"previous customer table, customer_id {bad[0][0]!r}, column "
                         f"'segment_since': got {bad[0][1]!r}, expected a date (YYYY-MM-DD).")
    return parsed
