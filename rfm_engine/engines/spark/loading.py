"""Loading and cleaning transactions on Spark, with the DuckDB engine's rules and counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
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
    _timestamp_sql,
    apply_rules,
    check_drops,
    check_load_options,
    check_names,
    connect,
    tally_bad,
)
from ...io.quality import DataQualityReport
from ...io.sources import _DELIMITERS, WHITESPACE, Source, _parquet_files, _stamp, csv_error
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
    _held: list[DataFrame] = field(default_factory=list, init=False, repr=False, compare=False)

    def hold(self, frame: DataFrame) -> DataFrame:
        """Persist ``frame`` (memory, then disk) until :meth:`release`; return it.

        A frame persisted already (by a step that returns it so) is kept as it is, and
        unpersisted by :meth:`release` too.
        """
        if not frame.storageLevel.useMemory and not frame.storageLevel.useDisk:
            frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._held.append(frame)
        return frame

    def release(self) -> None:
        """Unpersist what was persisted for these lines: the lines, orders, customer table.

        The weekly run calls it when it ends, however it ends: a long-lived session
        (a notebook, a test session) does not keep every run's tables in its memory.
        """
        while self._held:
            self._held.pop().unpersist()

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


_DUCKDB: list = []  # one DuckDB connection per Python worker, for --date-format


def _strptime_micros(values: pd.Series, date_format: str) -> pd.Series:
    """Parse text dates with ``date_format`` by the DuckDB engine's own SQL; epoch µs.

    :func:`rfm_engine.io.loading._timestamp_sql` (``try_strptime``, ``%z`` offsets to
    UTC) runs in DuckDB on each Arrow batch, so a format means exactly what it means on
    the DuckDB engine; unparseable values give NULL.
    """
    if not _DUCKDB:
        _DUCKDB.append(connect(threads=1, memory_limit=None, progress_bar=False))
    con = _DUCKDB[0]
    con.register("_rfm_dates", pa.table({"v": pa.array(values, pa.string(), from_pandas=True)}))
    try:
        micros = con.sql(f"SELECT epoch_us({_timestamp_sql('v', 'VARCHAR', date_format)}) "
                         "FROM _rfm_dates").to_arrow_table().column(0)
    finally:
        con.unregister("_rfm_dates")
    return micros.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _timestamp(col: str, dtype: T.DataType, date_format: str | None = None) -> Column:
    if isinstance(dtype, T.DateType | T.TimestampType | T.TimestampNTZType):
        return F.col(f"`{col}`").cast("timestamp")
    if date_format:
        with pandas_conversion():
            parse = F.pandas_udf(lambda v: _strptime_micros(v, date_format), T.LongType())
        return F.timestamp_micros(parse(_raw_text(col)))
    text = _text(col)
    # ISO 8601 only, as the DuckDB engine reads it (offsets converted to UTC).
    return F.when(text.rlike(_ISO_START), text.try_cast("timestamp"))


def _number_value(col: str, dtype: T.DataType, decimal: str = ".") -> Column:
    """Return the value as DOUBLE (NULL when unparseable; no range test).

    As :func:`rfm_engine.io.loading._number_value_sql`: with ``decimal=","`` a text value
    holding a ``.`` is malformed (thousands separators are never guessed).
    """
    if isinstance(dtype, T.NumericType):
        return F.col(f"`{col}`").cast("double")
    text = _text(col)
    if decimal == ",":
        text = F.when(~text.contains("."), F.regexp_replace(text, ",", "."))
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


@dataclass(frozen=True)
class _Formats:
    """How text values are read: ``--date-format`` and ``--decimal``."""

    date_format: str | None = None
    decimal: str = "."


def _staged(raw: DataFrame, mapping: dict[str, str], min_date: dt.date, *,
            nfc: bool, formats: _Formats = _Formats()) -> tuple[DataFrame, list[str]]:
    """Parse ``raw`` into the DuckDB engine's ``staged`` columns; return it and the checks."""
    types = {f.name: f.dataType for f in raw.schema.fields}
    cid, oid = mapping["customer_id"], mapping.get("order_id")
    floor = F.lit(dt.datetime.combine(min_date, dt.time())).cast("timestamp")
    ts = _timestamp(mapping["order_date"], types[mapping["order_date"]], formats.date_format)
    cols: dict[str, Column] = {
        "customer_id": _customer_id(cid, nfc=nfc),
        "_non_ascii_id": _non_ascii(_raw_text(cid)),
        "order_ts": ts,
    }
    value_columns = ["amount"] if "amount" in mapping else ["quantity", "unit_price"]
    bad: dict[str, Column] = {"order_date": ts.isNull()}
    for canonical in value_columns:
        value = _number_value(mapping[canonical], types[mapping[canonical]], formats.decimal)
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


#: Suffixes of DuckDB database files (the DuckDB engine reads them with --table).
_DUCKDB_FILES = (".duckdb", ".ddb", ".db")
#: Java's names of the encodings Python spells otherwise.
_JAVA_ENCODINGS = {"latin-1": "ISO-8859-1", "latin1": "ISO-8859-1", "utf-8-sig": "UTF-8"}


@dataclass
class _Opened:
    """A source read by Spark: what the error path needs to name a file and a row.

    ``located`` returns the raw rows with ``_file`` and ``_pos`` (order within the file:
    the Parquet row index, or for CSV the split start and the reading order) or is None
    when rows have no file (a DataFrame, a view); ``counted`` says the row number is
    counted from ``_pos`` (CSV) rather than ``_pos + 1``.
    """

    src: Source
    raw: DataFrame
    located: Callable[[], DataFrame] | None = None
    counted: bool = False


def _is_uri(path: str | Path) -> bool:
    return "://" in str(path) or str(path).startswith("dbfs:")  # s3a://, abfss://, dbfs:


def _open(spark: SparkSession, source: str | Path | DataFrame | None, *, table: str | None,
          delimiter: str | None, encoding: str | None) -> _Opened:
    """Read ``source`` (or the catalog table ``table``) as a Spark DataFrame of raw rows."""
    if isinstance(source, DataFrame):
        return _Opened(Source("DataFrame", "dataframe", {}, "_row", "_file"), source)
    if table is not None:
        if source is not None:
            raise ConfigError(f"--table {table!r} names a table of Spark's catalog: give no "
                              f"INPUT with it on --engine spark (got {source}).")
        return _table(spark, table)
    if source is None:
        raise ConfigError("No input: give INPUT or [input] path in the config, or a table of "
                          "Spark's catalog with --table ([input] table).")
    if not _is_uri(source):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder.")
    if _has_delta_log(spark, str(source)):
        return _delta(spark, str(source))
    lower = str(source).rstrip("/").lower()
    if _is_uri(source) or Path(source).is_dir() or lower.endswith(".parquet"):
        return _parquet(spark, source)
    if lower.endswith(_DUCKDB_FILES):
        raise ConfigError(f"{source}: a DuckDB database is read by the DuckDB engine; on "
                          "--engine spark give Parquet, CSV, a Delta table or a table of "
                          "Spark's catalog (--table).")
    return _csv(spark, Path(source), delimiter, encoding)


def _located_parquet(read: Callable[[], DataFrame]) -> Callable[[], DataFrame]:
    def located() -> DataFrame:
        raw = read()
        return raw.select("*", F.col("_metadata.file_path").alias("_file"),
                          F.col("_metadata.row_index").alias("_pos"))
    return located


def _parquet(spark: SparkSession, source: str | Path) -> _Opened:
    if _is_uri(source):
        src = Source(str(source), "parquet", {}, "_row", "_file")
        files = [str(source)]
    else:
        path = Path(source)
        stamped = _parquet_files(path) if path.is_dir() else [path]
        src = Source(str(path), "parquet", {}, "_row", "_file", tuple(stamped),
                     tuple(_stamp(p) for p in stamped))
        files = [str(f) for f in stamped]

    def read() -> DataFrame:
        return spark.read.parquet(*files)
    return _Opened(src, read(), _located_parquet(read))


def _table(spark: SparkSession, name: str) -> _Opened:
    """Read a table (or view) of Spark's catalog: ``spark.table(name)``."""
    try:
        raw = spark.table(name)
    except AnalysisException as exc:
        raise InputError(f"--table {name!r}: no such table or view in Spark's catalog "
                         f"({_first_line(exc)}).") from None

    def located() -> DataFrame:  # file-based tables (Parquet, Delta) name a file and row
        return _located_parquet(lambda: spark.table(name))()
    return _Opened(Source(name, "table", {}, "_row", "_file"), raw, located)


def _has_delta_log(spark: SparkSession, source: str) -> bool:
    """Whether ``source`` is a Delta table: a folder holding ``_delta_log``."""
    if not _is_uri(source):
        return (Path(source) / "_delta_log").is_dir()
    try:  # a remote folder: ask Hadoop's file system, as Spark does
        jvm = spark.sparkContext._jvm
        log = jvm.org.apache.hadoop.fs.Path(source.rstrip("/") + "/_delta_log")
        return bool(log.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(log))
    except Exception:  # noqa: BLE001 - no such file system here: read as Parquet, which says why
        return False


def _delta(spark: SparkSession, source: str) -> _Opened:
    """Read a Delta table at its latest version (pinned: every pass reads the same one)."""
    reader = spark.read.format("delta")
    stamped: list[Path] = []
    if not _is_uri(source):
        log = Path(source) / "_delta_log"
        versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()]
        if versions:
            reader = reader.option("versionAsOf", max(versions))
        stamped = [log]  # a commit adds a file to the log: the folder's stamp changes
    try:
        raw = reader.load(source)
    except Exception as exc:  # noqa: BLE001 - a session without Delta Lake
        if "DATA_SOURCE_NOT_FOUND" not in str(exc) and "delta" not in str(exc).lower():
            raise
        try:
            import delta  # noqa: F401
            installed = ("delta-spark is installed, but this Spark session has no Delta "
                         "Lake: start it with its jars (spark-submit --packages "
                         "io.delta:delta-spark_2.13:<version> --conf spark.sql.extensions="
                         "io.delta.sql.DeltaSparkSessionExtension --conf spark.sql.catalog."
                         "spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog)")
        except ModuleNotFoundError:
            installed = ("install Delta Lake for Spark: pip install delta-spark, and start "
                         "Spark with its jars (spark-submit --packages "
                         "io.delta:delta-spark_2.13:<version>)")
        raise ConfigError(f"{source}: a Delta table (it holds _delta_log); reading it on "
                          f"--engine spark needs Delta Lake: {installed}. Databricks has it "
                          "built in.") from None
    src = Source(source, "delta", {}, "_row", "_file", tuple(stamped),
                 tuple(_stamp(p) for p in stamped))
    return _Opened(src, raw, _located_parquet(lambda: reader.load(source)))


def _csv(spark: SparkSession, path: Path, delimiter: str | None,
         encoding: str | None) -> _Opened:
    """Read a CSV file by Spark's CSV reader, every column as text (as the DuckDB engine).

    The delimiter, quote and escape are sniffed by DuckDB's sniffer (the DuckDB engine's)
    unless ``delimiter`` is given; a row with more or fewer fields than the header stops
    the load (Spark's FAILFAST mode), named by :func:`rfm_engine.io.sources.csv_error`.
    """
    if path.is_dir():
        raise InputError(f"{path}: folder holds no .parquet files.")
    options = {"header": "true", "inferSchema": "false", "mode": "FAILFAST",
               "quote": '"', "escape": '"', "multiLine": "false",
               "encoding": _JAVA_ENCODINGS.get((encoding or "utf-8").lower(), encoding or "UTF-8"),
               "sep": delimiter or _sniff_delimiter(path, encoding)}

    def read() -> DataFrame:
        return spark.read.options(**options).csv(str(path))

    def located() -> DataFrame:
        return read().select("*", F.col("_metadata.file_path").alias("_file"),
                             F.struct(F.col("_metadata.file_block_start").alias("block"),
                                      F.monotonically_increasing_id().alias("n")).alias("_pos"))
    src = Source(str(path), "csv", {}, "_row", "_file", (path,), (_stamp(path),))
    return _Opened(src, read(), located, counted=True)


def _sniff_delimiter(path: Path, encoding: str | None) -> str:
    """Return the delimiter DuckDB's CSV sniffer finds (the DuckDB engine reads with it).

    Raises
    ------
    InputError
        The sniffer cannot read the file: the DuckDB engine's message
        (:func:`rfm_engine.io.sources.csv_error`).
    """
    arguments = ", encoding = ?" if encoding else ""
    con = connect(threads=1, memory_limit=None, progress_bar=False)
    try:
        delimiter, columns = con.execute(
            f"SELECT Delimiter, Columns FROM sniff_csv(?{arguments})",
            [str(path), *([encoding] if encoding else [])]).fetchone()
    except duckdb.Error as exc:
        raise csv_error(path, exc, encoding=encoding, delimiter=None) from None
    finally:
        con.close()
    # As the DuckDB engine: one column holding a delimiter is a sniffer's fallback.
    if len(columns) == 1 and any(d in columns[0]["name"] for d in _DELIMITERS):
        raise csv_error(path, None, encoding=encoding, delimiter=None)
    return delimiter or ","


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_transactions(
    source: str | Path | DataFrame | None = None,
    *,
    spark: SparkSession | None = None,
    columns: Mapping[str, str] | None = None,
    as_of: str | dt.date | None = None,
    window_days: int | None = None,
    date_format: str | None = None,
    decimal: str = ".",
    on_bad_rows: str = "raise",
    max_drop_fraction: float = 0.5,
    table: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    min_date: str | dt.date = DEFAULT_MIN_DATE,
    max_shared_order_fraction: float = DEFAULT_MAX_SHARED_ORDER_FRACTION,
    **ignored: object,
) -> SparkTransactions:
    """Load, validate and clean transactions on Spark, as the DuckDB engine does.

    Parameters
    ----------
    source : str, Path or pyspark.sql.DataFrame, optional
        A Parquet file or folder of Parquet files, a Delta table (a folder holding
        ``_delta_log``; needs Delta Lake on the session), a CSV file (read by Spark's CSV
        reader, every column as text), each a local path or a URI Spark reads such as
        ``s3a://bucket/sales/`` or ``dbfs:/...`` (CSV: local files only); or a Spark
        DataFrame. None with ``table``.
    spark : SparkSession, optional
        Default: :func:`spark_session`.
    columns, as_of, window_days, date_format, decimal, on_bad_rows, max_drop_fraction
        As :func:`rfm_engine.io.loading.load_transactions`; a ``date_format`` is applied
        by the DuckDB engine's own parser (``try_strptime``) in a pandas UDF.
    table : str, optional
        A table or view of Spark's catalog (``spark.table(table)``), instead of ``source``.
    delimiter, encoding : str, optional
        CSV options; the delimiter is sniffed (DuckDB's sniffer) and UTF-8 assumed.
    header, names : optional
        Not on Spark: a text file without a header, or with ``delimiter="whitespace"``,
        is read by the DuckDB engine (a ConfigError here).
    min_date, max_shared_order_fraction
        As :func:`rfm_engine.io.loading.load_transactions`.
    **ignored
        The DuckDB-only options of ``[input]`` (``memory_limit``): ignored.

    Returns
    -------
    SparkTransactions

    Raises
    ------
    DataError, MissingColumnsError, InputError, EmptyResultError, ConfigError
        As :func:`rfm_engine.io.loading.load_transactions`.
    """
    check_load_options(on_bad_rows=on_bad_rows, decimal=decimal,
                       max_drop_fraction=max_drop_fraction,
                       max_shared_order_fraction=max_shared_order_fraction,
                       window_days=window_days)
    if delimiter == WHITESPACE or not header or names:
        raise ConfigError("--delimiter whitespace, --no-header and --names are read by the "
                          "DuckDB engine only: use it, or convert the file to Parquet for "
                          "--engine spark.")
    as_of_date = _parse_as_of(as_of)
    floor = as_date(min_date, "min_date")
    formats = _Formats(date_format or None, decimal)
    spark = spark or spark_session()
    with step("reading and validating (spark)"):
        opened = _open(spark, source, table=table, delimiter=delimiter, encoding=encoding)
        src = dataclasses.replace(opened.src, columns={
            f.name: f.dataType.simpleString() for f in opened.raw.schema.fields})
        mapping = ColumnMap(columns).resolve(list(src.columns), source=src.name)
        # Source columns get internal names: Spark resolves names case-insensitively, so a
        # source 'Country' would clash with the canonical 'country'.
        inner = {name: f"_s{i}" for i, name in enumerate(src.columns)}
        raw = opened.raw.toDF(*inner.values())
        internal = {c: inner[name] for c, name in mapping.items()}
        staged, checks = _staged(raw, internal, floor, nfc=False, formats=formats)
        counts = _read_csv_errors(src, delimiter, encoding, lambda: _counts(staged, checks))
        names = check_names({c: (mapping.get(c, c),) for c in checks}, mapping)
        report = DataQualityReport(source=src.name)
        refused = tally_bad(counts, names, report, floor)
        if refused and on_bad_rows == "raise":
            _raise_first(opened, internal, checks, names, floor, formats)
        if int(counts.pop("non_ascii_ids").sum()):
            staged, _ = _staged(raw, internal, floor, nfc=True, formats=formats)
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
        frame = valid.filter(keep).select(*kept)
    check_drops(report, src.name, max_drop_fraction)
    src.check_unchanged()
    tx = SparkTransactions(spark, frame, src, mapping, as_of_date, window_start, report,
                           max_shared_order_fraction)
    tx.hold(frame)
    return tx


def _read_csv_errors(src: Source, delimiter: str | None, encoding: str | None,
                     action: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """Run ``action`` (the first pass over the rows); a ragged CSV row is one line.

    Spark's CSV reader (FAILFAST) stops on a row with more or fewer fields than the
    header; :func:`rfm_engine.io.sources.csv_error` names it as the DuckDB engine does.
    """
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - Spark wraps the reader's error in its own
        if src.kind != "csv" or "MALFORMED" not in str(exc).upper():
            raise
        raise csv_error(Path(src.name), None, encoding=encoding, delimiter=delimiter) from None


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


def _local_path(uri: str, src: Source) -> str:
    """Name a file as the user gave it (Spark reports absolute ``file:`` URIs)."""
    path = unquote(urlparse(uri).path) if uri.startswith("file:") else uri
    for given in src.paths:
        if os.path.abspath(given) == os.path.abspath(path):
            return str(given)
    return path


def _raise_first(opened: _Opened, mapping: dict[str, str], checks: list[str],
                 names: dict[str, str], floor: dt.date, formats: _Formats) -> None:
    """Raise the DataError of the first refused value (by file and data row).

    ``mapping`` maps canonical names to the internal ``_s<i>`` names of the source
    columns. Rows without a file (a DataFrame, a view) are named by the source alone.
    """
    src = opened.src
    raw = None
    if opened.located is not None:
        try:
            raw = opened.located()
        except AnalysisException:  # a view, or a table whose rows have no file
            raw = None
    if raw is None:
        raw = opened.raw.select("*", F.lit(None).cast("string").alias("_file"),
                                F.lit(None).cast("long").alias("_pos"))
    inner = [f"_s{i}" for i in range(len(raw.columns) - 2)]
    raw = raw.toDF(*inner, "_file", "_pos")
    staged, _ = _staged(raw, mapping, floor, nfc=False, formats=formats)
    refused = F.col("_early")
    for c in checks:
        refused = refused | F.col(f"_bad_{c}")
    refused_rows = staged.filter(refused)
    row = refused_rows.orderBy("_file", "_pos").first()
    if row["_file"] is None:
        file, row_number = src.name, None
    elif opened.counted:  # CSV: the data rows of the file up to this one
        file = _local_path(row["_file"], src)
        block, n = F.col("_pos.block"), F.col("_pos.n")
        row_number = raw.filter((F.col("_file") == row["_file"]) & (
            (block < row["_pos"]["block"]) | ((block == row["_pos"]["block"])
                                              & (n <= row["_pos"]["n"])))).count()
    else:
        file, row_number = _local_path(row["_file"], src), int(row["_pos"]) + 1
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
                    _expected(canonical, formats.date_format, formats.decimal, reason, floor),
                    _hint(canonical, formats.date_format, formats.decimal, reason, value))


def _reason(number: float | None) -> str | None:
    """Why a parsed number is refused: as :func:`rfm_engine.io.loading._number_reason`."""
    if number is None or number != number or abs(number) == float("inf"):
        return None
    if abs(number) >= _MAX_ABS_AMOUNT:
        return "range"
    if number != 0 and abs(number) < _MIN_ABS_AMOUNT:
        return "precision"
    return None

