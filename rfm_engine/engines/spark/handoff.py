"""What Spark hands to the driver in the weekly run: Parquet folders, and small collected tables.

The weekly run on Spark (:func:`rfm_engine.runs.weekly.run_weekly` with ``engine =
"spark"``) keeps the lines on the cluster. The steps that stay on the driver get them
through Parquet, never through the driver's memory:

* :func:`driver_transactions`: the KPI report and its cohorts are the DuckDB engine's own
  code, run on the driver over a :class:`~rfm_engine.io.loading.Transactions` whose
  orders table is the Parquet folder Spark wrote (the lines stay on Spark; the CLV
  summary the report fits is computed on Spark and collected, one row per customer).
  DuckDB streams the orders and spills to disk beyond its memory limit.
* :func:`write_customers`: the run's ``customers.parquet`` as a folder of Parquet part
  files written by Spark, ordered by ``customer_id`` (``part-00000.parquet``, ...).
* :func:`people` and :func:`without_customers`: the customers who objected to profiling
  are found on the driver (the consent records are small) and left out on Spark.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...campaigns.suppression import SuppressionList, email_ids
from ...io.loading import Transactions, connect
from ...io.sources import sql_literal
from ...progress import step
from .features import orders_frame
from .loading import SparkTransactions
from .session import pandas_conversion

__all__ = ["ROWS_PER_PART", "SparkCustomers", "collect", "driver_transactions", "in_campaigns",
           "people", "persisted", "without_customers", "write_customers", "write_parts"]

#: Rows of a part file of ``customers.parquet`` (about 100-200 MB of Parquet at most).
ROWS_PER_PART = 2_000_000
#: Columns of the lines the driver-side steps read (KPIs, CLV summary, suggestions).
_ORDERS_VIEW = "_rfm_orders_spark"


def write_parts(frame: DataFrame, path: Path, *, parts: int | None = None,
                order_by: str | None = None) -> dict[Path, int]:
    """Write a Spark DataFrame as a folder of Parquet part files; return rows per part.

    Spark's file names (a job id in each) become ``part-00000.parquet``, ... in Spark's
    order, and its marker files (``_SUCCESS``, ``.crc`` checksums) are removed, so the
    folder holds the data files only, named the same by every run.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        The table.
    path : Path
        The folder to create (it must not exist); a path the driver and the executors
        share (local mode, a shared mount such as ``/dbfs``).
    parts : int, optional
        Number of part files (default: Spark's partitions of ``frame``).
    order_by : str, optional
        Range-partition by this column and sort each part by it: read in name order, the
        parts give the rows in that order.

    Returns
    -------
    dict
        Part file to its rows (from the files' Parquet footers).
    """
    if order_by is not None:
        frame = frame.repartitionByRange(parts or frame.rdd.getNumPartitions(), order_by
                                         ).sortWithinPartitions(order_by)
    elif parts is not None:
        frame = frame.coalesce(parts)
    frame.write.mode("errorifexists").parquet(path.absolute().as_uri())
    written = sorted(p for p in path.iterdir() if p.name.startswith("part-")
                     and p.name.endswith(".parquet"))
    for other in set(path.iterdir()) - set(written):
        other.unlink() if other.is_file() else shutil.rmtree(other)
    rows: dict[Path, int] = {}
    for number, part in enumerate(written):
        renamed = part.rename(path / f"part-{number:05d}.parquet")
        rows[renamed] = pq.ParquetFile(renamed).metadata.num_rows
    return rows


def write_customers(table: DataFrame, path: Path, *, rows: int | None = None
                    ) -> dict[Path, int]:
    """Write a run's customer table as ``customers.parquet``: a folder of part files.

    Ordered by ``customer_id`` (as the DuckDB engine's single file), one part per
    :data:`ROWS_PER_PART` customers (at least one).

    Parameters
    ----------
    table : pyspark.sql.DataFrame
        The customer table.
    path : Path
        ``<staging>/customers.parquet``.
    rows : int, optional
        The table's rows, when known (else counted).

    Returns
    -------
    dict
        Part file to its rows.
    """
    rows = table.count() if rows is None else rows
    parts = max(1, math.ceil(rows / ROWS_PER_PART))
    with step("writing customers.parquet (spark)", rows=rows):
        return write_parts(table, path, parts=parts, order_by="customer_id")


class SparkCustomers:
    """A run's customer table on Spark, as the weekly run's publishing reads it.

    The Spark counterpart of :class:`rfm_engine.runs.publish.CustomerTable`: the table is
    written by Spark (:func:`write_customers`); a list is collected when it is written (a
    list is what an email tool imports: it fits the driver), and the checks collect only
    the customers they look for.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        Every customer with features, scores, segment, migration and campaign columns.
    rows : int, optional
        Its rows, when known (else counted).
    """

    def __init__(self, frame: DataFrame, *, rows: int | None = None) -> None:
        self.frame = frame
        self.rows = frame.count() if rows is None else rows
        self._out = frame.drop("email_valid")

    def targets(self, campaign: str) -> pd.DataFrame:
        """Return the targets of ``campaign``, collected, ordered by ``customer_id``.

        Sorted on the driver (one Spark job, not a range-partitioned sort's two): Python
        orders text by code point, Spark by UTF-8 bytes, the same order.
        """
        chosen = self._out.filter((F.col("campaign") == campaign)
                                  & (F.col("group") == "target"))
        return collect(chosen).sort_values("customer_id").reset_index(drop=True)

    def writers(self, path: Path) -> dict[Path, object]:
        """Return no writer: Spark writes ``customers.parquet`` (:meth:`write`)."""
        return {}

    def write(self, path: Path) -> dict[Path, int]:
        """Write ``customers.parquet`` as part files (:func:`write_customers`)."""
        return write_customers(self._out, path, rows=self.rows)

    def suppressed_email_ids(self, suppressions: SuppressionList) -> dict[str, list[str]]:
        """Email to ids of the customers suppressed by id (a broadcast join, collected)."""
        ids = sorted(suppressions.customer_ids)
        if not ids or "email" not in self.frame.columns:
            return {}
        listed = self.frame.sparkSession.createDataFrame([(i,) for i in ids],
                                                         "customer_id string")
        hit = collect(self.frame.join(F.broadcast(listed), "customer_id")
                       .select("customer_id", "email"))
        return email_ids(hit, np.ones(len(hit), dtype=bool))

    def without_consent(self) -> tuple[list[str], dict[str, list[str]]]:
        """Ids of the targets without valid consent, and email to those ids.

        Only targets are collected (the customers without consent may be most of the
        table): the lists are written from the targets, so a target without consent is
        what the check can find.
        """
        hit = collect(self.frame.filter(~F.col("email_consent") & (F.col("group") == "target"))
                       .select("customer_id", *(["email"] if "email" in self.frame.columns
                                                else [])))
        return (hit["customer_id"].tolist(),
                email_ids(hit, np.ones(len(hit), dtype=bool)) if "email" in hit else {})


def collect(frame: DataFrame) -> pd.DataFrame:
    """Collect a Spark DataFrame that fits the driver as pandas, through Arrow."""
    with pandas_conversion():
        arrow = frame.toArrow()
    return arrow.to_pandas()



def in_campaigns(names: Iterable[str]) -> Column:
    """Return the Column: the customer's campaign is one of ``names``."""
    return F.col("campaign").isin(list(names))


def persisted(frame: DataFrame) -> DataFrame:
    """Return ``frame`` persisted (memory, then disk): it is read by several steps."""
    return frame.persist(StorageLevel.MEMORY_AND_DISK)


def from_pandas(tx: SparkTransactions, frame: pd.DataFrame) -> DataFrame:
    """Return a pandas table as a Spark DataFrame, through Arrow (pyarrow's types)."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = arrow.cast(pa.schema([
        pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
        for f in arrow.schema]))
    with pandas_conversion():
        return tx.spark.createDataFrame(arrow)


def driver_transactions(tx: SparkTransactions, folder: Path, *,
                        memory_limit: str | None = None) -> Transactions:
    """Return the orders of ``tx`` as Parquet read by DuckDB, for the driver's KPI report.

    Spark writes its orders table (:func:`~rfm_engine.engines.spark.features.orders_frame`:
    one row per order, the purchase rule applied) into ``folder``; the returned
    :class:`~rfm_engine.io.loading.Transactions` reads it in place as its orders table
    (not grouped again); its report, source and dates are ``tx``'s. The lines stay on
    Spark: the returned object has no ``transactions`` view, so a step that would read the
    lines on the driver fails instead of reading them (the CLV summary, which groups
    lines by day, is computed on Spark: :func:`rfm_engine.engines.spark.clv_summary`).
    Nothing is collected.

    Parameters
    ----------
    tx : SparkTransactions
        The loaded transactions.
    folder : Path
        An empty folder the driver and the executors share; it must outlive the returned
        object (the caller removes it, after closing ``.con``).
    memory_limit : str, optional
        DuckDB's memory limit on the driver (:func:`rfm_engine.io.loading.connect`).

    Returns
    -------
    Transactions
    """
    orders = orders_frame(tx)
    with step("handing the orders to the driver (spark -> Parquet)"):
        write_parts(orders.select(*(_plain(c) for c in orders.columns)), folder / "orders")
    con = connect(memory_limit=memory_limit) if memory_limit else connect()
    files = sql_literal((folder / "orders" / "*.parquet").as_posix())
    con.execute(f"CREATE TEMP VIEW {_ORDERS_VIEW} AS SELECT * FROM read_parquet({files})")
    local = Transactions(con, tx.source, dict(tx.columns), tx.as_of, tx.window_start,
                         tx.report, tx.max_shared_order_fraction)
    local._orders_table = _ORDERS_VIEW  # Spark's orders: shared ids were counted there
    return local


def _plain(column: str) -> object:
    """Timestamps without a time zone in the files (DuckDB's TIMESTAMP; the session is UTC)."""
    if column == "order_ts":
        return F.col(column).cast("timestamp_ntz").alias(column)
    return F.col(column)


def people(tx: SparkTransactions) -> pd.DataFrame:
    """Return the distinct ``customer_id`` (and ``email``, when mapped) of the lines.

    What :meth:`rfm_engine.campaigns.consent.ConsentList.objected` needs to find the
    customers who objected to profiling (one row per customer and address).
    """
    columns = ["customer_id", *(["email"] if "email" in tx.frame.columns else [])]
    with pandas_conversion():
        return tx.frame.select(*columns).distinct().toPandas()


def without_customers(tx: SparkTransactions, ids: Iterable[str]) -> SparkTransactions:
    """Leave the lines of ``ids`` out of ``tx`` (a broadcast anti-join); ``tx`` is changed.

    The orders built so far are dropped, so every later step reads the remaining lines.
    """
    ids = sorted(set(ids))
    if ids:
        removed = tx.spark.createDataFrame([(i,) for i in ids], "customer_id string")
        tx.frame = tx.frame.join(F.broadcast(removed), "customer_id", "left_anti")
        tx._orders = None
    return tx
