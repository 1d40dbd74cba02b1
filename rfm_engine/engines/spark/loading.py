"""Loading and cleaning transactions on Spark, with the DuckDB engine's rules and counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ...errors import ConfigError, DataError, InputError
from ...io._validation import as_date
from ...io.columns import ColumnMap
from ...io.loading import (
    _MAX_ABS_AMOUNT,
    _MIN_ABS_AMOUNT,
    _SPACE,
    _TEXT_COLUMNS,
    DEFAULT_MAX_SHARED_ORDER_FRACTION,
    DEFAULT_MIN_DATE,
    _expected,
    _hint,
    _parse_as_of,
    apply_rules,
    check_drops,
    check_names,
    tally_bad,
)
from ...io.quality import DataQualityReport
from ...io.sources import Source, _parquet_files, _stamp
from ...progress import step
from .session import pandas_conversion, spark_session

__all__ = ["SparkTransactions", "load_transactions"]

_ISO_START = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


@dataclass
class SparkTransactions:
    """Cleaned transactions as a Spark DataFrame (the Spark engine's ``Transactions``).

    Attributes
    ----------
    spark : SparkSession
        The session.
    frame : pyspark.sql.DataFrame
        The cleaned lines: ``customer_id, order_key, order_ts, order_date, amount`` (DECIMAL
        18, 4) and the mapped text columns, as the DuckDB engine's view ``transactions``.
    source : Source
        Where they came from (files and their stamps).
    columns : dict
        Canonical name to source column, as resolved.
    as_of : datetime.date
        Inclusive observation end.
    window_start : datetime.date or None
        First day counted when ``window_days`` was given.
    report : DataQualityReport
        What cleaning did.
    max_shared_order_fraction : float
        See :func:`rfm_engine.io.loading.load_transactions`.
    """

    spark: SparkSession
    frame: DataFrame
    source: Source
    columns: dict[str, str]
    as_of: dt.date
    window_start: dt.date | None
    report: DataQualityReport = field(repr=False)
    max_shared_order_fraction: float = DEFAULT_MAX_SHARED_ORDER_FRACTION
    _orders: DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def has_order_id(self) -> bool:
        """Whether orders come from an order id (else: one per customer per day)."""
        return "order_id" in self.columns

    def to_frame(self) -> pd.DataFrame:
        """Return the cleaned transactions as a pandas DataFrame (small data only)."""
        frame = self.frame.withColumn("amount", F.col("amount").cast("double"))
        with pandas_conversion():
            return frame.orderBy("customer_id", "order_ts", "order_key").toPandas()



# --- parsing: Column expressions mirroring rfm_engine.io.loading's SQL ---------------------

def _raw_text(col: str) -> Column:
    return F.col(f"`{col}`").cast("string")


def _strip(text: Column) -> Column:
    return F.regexp_replace(text, f"^{_SPACE}+|{_SPACE}+$", "")


def _padded(text: Column) -> Column:
    # As loading._padded: '' or a first or last character below '!' (byte order).
    return (text == "") | (F.substring(text, 1, 1) < "!") | (F.substring(text, -1, 1) < "!")


def _non_ascii(text: Column) -> Column:
    return F.length(text) != F.octet_length(text)


def _text(col: str, *, unicode_ends: bool = False) -> Column:
    text = _raw_text(col)
    changes = _padded(text) | _non_ascii(text) if unicode_ends else _padded(text)
    return F.when(changes, F.nullif(_strip(text), F.lit(""))).otherwise(text)



def _nfc_values(values: pd.Series) -> pd.Series:
    """Unicode NFC of text values (None stays None); applied to non-ASCII ids only."""
    return values.map(lambda v: unicodedata.normalize("NFC", v) if isinstance(v, str) else v)


with pandas_conversion():
    _nfc = F.pandas_udf(_nfc_values, T.StringType())


def _customer_id(col: str, *, nfc: bool) -> Column:
    """Return the customer id cleaned as :func:`rfm_engine.io.loading.customer_id_sql` does."""
    text = _raw_text(col)
    norm = _strip(text)
    if nfc:  # only when some id is not ASCII (counted first): a Python UDF costs
        norm = F.when(_non_ascii(norm), _nfc(norm)).otherwise(norm)
    fixed = F.when(norm.contains("."), F.regexp_replace(norm, r"^([0-9]+)\.0+$", "$1")
                   ).otherwise(norm)
    changes = _padded(text) | text.contains(".") | _non_ascii(text)
    return F.when(changes, F.nullif(fixed, F.lit(""))).otherwise(text)


def _timestamp(col: str, dtype: T.DataType) -> Column:
    if isinstance(dtype, T.DateType | T.TimestampType | T.TimestampNTZType):
        return F.col(f"`{col}`").cast("timestamp")
    text = _text(col)
    # ISO 8601 only, as the DuckDB engine reads it (offsets converted to UTC).
    return F.when(text.rlike(_ISO_START), text.try_cast("timestamp"))


def _number_value(col: str, dtype: T.DataType) -> Column:
    """Return the value as DOUBLE (NULL when unparseable; no range test)."""
    if isinstance(dtype, T.NumericType):
        return F.col(f"`{col}`").cast("double")
    text = _text(col)
    return F.when(text.rlike(_NUMBER), text.try_cast("double"))


def _finite(value: Column) -> Column:
    return F.when(~F.isnan(value) & (F.abs(value) < _MAX_ABS_AMOUNT), value)


def _unfit(amount: Column) -> Column:
    return (F.abs(amount) >= _MAX_ABS_AMOUNT) | ((amount != 0)
                                                & (F.abs(amount) < _MIN_ABS_AMOUNT))


def _round4(value: Column) -> Column:
    """DECIMAL(18, 4) of a DOUBLE rounded as DuckDB's ``round(x, 4)``.

    DuckDB rounds the exact binary value half away from zero (2.00005 is 2.0000499...:
    2.0000); Spark's ``round`` rounds its shortest decimal text (2.0001), and ``x * 10^4``
    rounds the product (20000.5). So the product's rounding error is computed exactly
    (Dekker's two-product: ``y + err == |x| * 10^4``), and only decides a tie.
    """
    a = F.abs(value)
    y = a * 10000.0
    c = a * 134217729.0  # 2^27 + 1: splits a into two halves of 26 bits
    high = c - (c - a)
    err = (high * 10000.0 - y) + (a - high) * 10000.0
    whole = F.floor(y)
    frac = y - whole
    units = whole + F.when((frac > 0.5) | ((frac == 0.5) & (err >= 0)), 1).otherwise(0)
    signed = F.when(value < 0, -units).otherwise(units)
    return (signed.cast(T.DecimalType(38, 0)) / 10000).cast(T.DecimalType(18, 4))


def _staged(raw: DataFrame, mapping: dict[str, str], min_date: dt.date, *,
            nfc: bool) -> tuple[DataFrame, list[str]]:
    """Parse ``raw`` into the DuckDB engine's ``staged`` columns; return it and the checks."""
    types = {f.name: f.dataType for f in raw.schema.fields}
    cid, oid = mapping["customer_id"], mapping.get("order_id")
    floor = F.lit(dt.datetime.combine(min_date, dt.time())).cast("timestamp")
    ts = _timestamp(mapping["order_date"], types[mapping["order_date"]])
    cols: dict[str, Column] = {
        "customer_id": _customer_id(cid, nfc=nfc),
        "_non_ascii_id": _non_ascii(_raw_text(cid)),
        "order_ts": ts,
    }
    value_columns = ["amount"] if "amount" in mapping else ["quantity", "unit_price"]
    bad: dict[str, Column] = {"order_date": ts.isNull()}
    for canonical in value_columns:
        value = _number_value(mapping[canonical], types[mapping[canonical]])
        number = _finite(value)
        cols[f"_v_{canonical}"] = value
        bad[canonical] = number.isNull()
        if canonical == "amount":
            bad[canonical] = bad[canonical] | _unfit(number)
    if "amount" in mapping:
        amount = _finite(F.col("_v_amount"))
    else:
        product = _finite(F.col("_v_quantity")) * _finite(F.col("_v_unit_price"))
        bad["amount"] = F.coalesce(_unfit(product), F.lit(False))
        amount = F.when(F.abs(product) < _MAX_ABS_AMOUNT, product)
    if oid:
        cols["order_id"] = _text(oid, unicode_ends=True)
    cols.update({c: _text(mapping[c]) for c in _TEXT_COLUMNS if c in mapping})
    parsed = raw.select("*", *(value.alias(name) for name, value in cols.items()))
    early = F.coalesce(F.col("order_ts") < floor, F.lit(False))
    flags = {f"_bad_{c}": F.coalesce(test, F.lit(False)) for c, test in bad.items()}
    order_key = F.col("order_id") if oid else F.col("order_ts").cast("date").cast("string")
    any_bad = F.lit(False)
    for test in flags.values():
        any_bad = any_bad | test
    staged = parsed.select(
        "*",
        _round4(amount).alias("amount"),
        order_key.alias("order_key"),
        F.col("order_ts").cast("date").alias("order_date"),
        *(test.alias(name) for name, test in flags.items()),
        early.alias("_early"),
        (~(any_bad | early) & F.col("customer_id").isNotNull()).alias("_valid"),
        F.col("customer_id").isNull().alias("_no_id"),
    )
    return staged, list(bad)


def _source(path: str | Path) -> tuple[Source, list[str]]:
    if "://" in str(path) or str(path).startswith("dbfs:"):  # s3a://, abfss://, hdfs://, dbfs:
        return Source(str(path), "parquet", {}, "_row", "_file"), [str(path)]
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder.")
    files = _parquet_files(path) if path.is_dir() else [path]
    if not (path.is_dir() or path.name.lower().endswith(".parquet")):
        raise ConfigError(f"{path}: --engine spark reads Parquet files or folders (so far); "
                          "convert the file to Parquet, or use the DuckDB engine.")
    source = Source(str(path), "parquet", {}, "_row", "_file", tuple(files),
                    tuple(_stamp(p) for p in files))
    return source, [str(f) for f in files]


def load_transactions(
    source: str | Path | DataFrame,
    *,
    spark: SparkSession | None = None,
    columns: Mapping[str, str] | None = None,
    as_of: str | dt.date | None = None,
    window_days: int | None = None,
    date_format: str | None = None,
    decimal: str = ".",
    on_bad_rows: str = "raise",
    max_drop_fraction: float = 0.5,
    min_date: str | dt.date = DEFAULT_MIN_DATE,
    max_shared_order_fraction: float = DEFAULT_MAX_SHARED_ORDER_FRACTION,
    **ignored: object,
) -> SparkTransactions:
    """Load, validate and clean transactions on Spark, as the DuckDB engine does.

    Parameters
    ----------
    source : str, Path or pyspark.sql.DataFrame
        A Parquet file or folder of Parquet files (a local path, or a URI Spark reads such
        as ``s3a://bucket/sales/`` or ``dbfs:/...``), or a Spark DataFrame.
    spark : SparkSession, optional
        Default: :func:`spark_session`.
    columns, as_of, window_days, on_bad_rows, max_drop_fraction, min_date, max_shared_order_fraction
        As :func:`rfm_engine.io.loading.load_transactions`.
    date_format, decimal : optional
        Not on Spark yet: only ISO dates and ``'.'`` decimals (a ConfigError otherwise).
    **ignored
        The DuckDB-only options of ``[input]`` (``table``, ``delimiter``, ``encoding``,
        ``memory_limit``): ignored.

    Returns
    -------
    SparkTransactions

    Raises
    ------
    DataError, MissingColumnsError, InputError, EmptyResultError, ConfigError
        As :func:`rfm_engine.io.loading.load_transactions`.
    """
    if date_format:
        raise ConfigError("--date-format is not supported by --engine spark yet: give ISO 8601 "
                          "dates, or use the DuckDB engine.")
    if decimal != ".":
        raise ConfigError("--decimal ',' is not supported by --engine spark yet.")
    if on_bad_rows not in ("raise", "drop"):
        raise ConfigError(
            f"The 'on_bad_rows' parameter must be 'raise' or 'drop'. Got {on_bad_rows!r} instead."
        )
    if window_days is not None and (not isinstance(window_days, int) or window_days < 1):
        raise ConfigError(f"The 'window_days' parameter must be a positive int. "
                          f"Got {window_days!r} instead.")
    as_of_date = _parse_as_of(as_of)
    floor = as_date(min_date, "min_date")
    spark = spark or spark_session()
    with step("reading and validating (spark)"):
        if isinstance(source, DataFrame):
            src = Source("DataFrame", "dataframe", {}, "_row", "_file")
            raw, files = source, []
        else:
            src, files = _source(source)
            raw = spark.read.parquet(*files)
        src = dataclasses.replace(src, columns={f.name: f.dataType.simpleString()
                                                for f in raw.schema.fields})
        mapping = ColumnMap(columns).resolve(list(src.columns), source=src.name)
        # Source columns get internal names: Spark resolves names case-insensitively, so a
        # source 'Country' would clash with the canonical 'country'.
        inner = {name: f"_s{i}" for i, name in enumerate(src.columns)}
        raw = raw.toDF(*inner.values())
        internal = {c: inner[name] for c, name in mapping.items()}
        staged, checks = _staged(raw, internal, floor, nfc=False)
        counts = _counts(staged, checks)
        names = check_names({c: (mapping.get(c, c),) for c in checks}, mapping)
        report = DataQualityReport(source=src.name)
        refused = tally_bad(counts, names, report, floor)
        if refused and on_bad_rows == "raise":
            _raise_first(spark, src, files, internal, checks, names, floor)
        if int(counts.pop("non_ascii_ids").sum()):
            staged, _ = _staged(raw, internal, floor, nfc=True)
    with step("cleaning (spark)"):
        valid = staged.filter("_valid")
        extra = _duplicates(valid, list(inner.values())) if "order_id" in mapping else \
            pd.DataFrame({"order_date": [], "rows": [], "return_lines": []})
        as_of_date, window_start = apply_rules(counts, extra, report, as_of_date, window_days,
                                               floor)
        if len(extra):
            valid = valid.dropDuplicates(list(inner.values()))
        keep = F.col("order_date") <= F.lit(as_of_date) if as_of_date else F.lit(False)
        if window_start:
            keep = keep & (F.col("order_date") >= F.lit(window_start))
        kept = ["customer_id", "order_key", "order_ts", "order_date", "amount",
                *(["order_id"] if "order_id" in mapping else []),
                *(c for c in _TEXT_COLUMNS if c in mapping)]
        # Kept for the steps that read the lines (orders, contacts): parsed once.
        frame = valid.filter(keep).select(*kept).persist(StorageLevel.MEMORY_AND_DISK)
    check_drops(report, src.name, max_drop_fraction)
    src.check_unchanged()
    return SparkTransactions(spark, frame, src, mapping, as_of_date, window_start, report,
                             max_shared_order_fraction)


def _counts(staged: DataFrame, checks: list[str]) -> pd.DataFrame:
    """Rows by bad-value flags, missing id, early and date: the report's one small table."""
    flags = [f"_bad_{c}" for c in checks]
    counts = staged.groupBy(
        *flags, "_no_id", "_early",
        F.when(~F.col("_early"), F.col("order_date")).alias("order_date"),
    ).agg(F.count(F.lit(1)).alias("rows"),
          F.count_if(F.col("amount") < 0).alias("return_lines"),
          F.count_if(F.col("_non_ascii_id")).alias("non_ascii_ids"))
    with pandas_conversion():
        counts = counts.toPandas()
    for column in ("rows", "return_lines", "non_ascii_ids"):
        counts[column] = counts[column].astype("int64")
    return counts


def _duplicates(valid: DataFrame, source_columns: list[str]) -> pd.DataFrame:
    """Extra copies of the valid lines identical in every source column, per ``order_date``."""
    repeated = (valid.groupBy(*(f"`{c}`" for c in source_columns))
                .agg(F.count(F.lit(1)).alias("_n"), F.first("order_date").alias("order_date"),
                     F.first("amount").alias("amount"))
                .filter("_n > 1"))
    extra = repeated.groupBy("order_date").agg(
        F.sum(F.col("_n") - 1).alias("rows"),
        F.coalesce(F.sum(F.when(F.col("amount") < 0, F.col("_n") - 1)), F.lit(0))
        .alias("return_lines"))
    with pandas_conversion():
        extra = extra.toPandas()
    return extra.astype({"rows": "int64", "return_lines": "int64"})


def _local_path(uri: str, files: list[str]) -> str:
    """Name a file as the user gave it (Spark reports absolute ``file:`` URIs)."""
    path = unquote(urlparse(uri).path) if uri.startswith("file:") else uri
    for given in files:
        if os.path.abspath(given) == os.path.abspath(path):
            return given
    return path


def _raise_first(spark: SparkSession, src: Source, files: list[str], mapping: dict[str, str],
                 checks: list[str], names: dict[str, str], floor: dt.date) -> None:
    """Raise the DataError of the first refused value (by file and data row).

    ``mapping`` maps canonical names to the internal ``_s<i>`` names of the source columns.
    """
    raw = spark.read.parquet(*files) if files else None
    if raw is None:
        raise InputError(f"{src.name}: malformed values (see the data-quality counts); pass "
                         "on_bad_rows='drop' to drop and count them.")
    raw = raw.toDF(*(f"_s{i}" for i in range(len(raw.columns)))).select(
        "*", "_metadata.file_path", "_metadata.row_index")
    staged, _ = _staged(raw, mapping, floor, nfc=False)
    refused = F.col("_early")
    for c in checks:
        refused = refused | F.col(f"_bad_{c}")
    row = staged.filter(refused).orderBy("file_path", "row_index").first()
    file, row_number = _local_path(row["file_path"], files), int(row["row_index"]) + 1
    for canonical in checks:
        if canonical == "order_date" and (row["_bad_order_date"] or row["_early"]):
            reason = "early" if row["order_ts"] is not None else None
            value = row[mapping["order_date"]]
            break
        if canonical != "order_date" and row[f"_bad_{canonical}"]:
            if canonical == "amount" and "amount" not in mapping:
                q, p = row["_v_quantity"], row["_v_unit_price"]
                number = q * p if q is not None and p is not None else None
                value = f"{row[mapping['quantity']]} × {row[mapping['unit_price']]}"
            else:
                number, value = row[f"_v_{canonical}"], row[mapping[canonical]]
            reason = _reason(number)
            break
    else:  # pragma: no cover - the filter found a refused value
        raise AssertionError("no refused value in the refused row")
    value = None if value is None else str(value)
    raise DataError(file, row_number, names[canonical], value,
                    _expected(canonical, None, ".", reason, floor),
                    _hint(canonical, None, ".", reason, value))


def _reason(number: float | None) -> str | None:
    """Why a parsed number is refused: as :func:`rfm_engine.io.loading._number_reason`."""
    if number is None or number != number or abs(number) == float("inf"):
        return None
    if abs(number) >= _MAX_ABS_AMOUNT:
        return "range"
    if number != 0 and abs(number) < _MIN_ABS_AMOUNT:
        return "precision"
    return None

