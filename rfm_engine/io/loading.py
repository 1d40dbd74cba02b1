"""Load, validate and clean transactions in DuckDB, counting every cleaning rule.

The cleaned rows are the view ``transactions`` with the canonical columns
``customer_id, order_key, order_ts, order_date, amount`` plus the optional columns that
were mapped. Nothing is copied for Parquet files and DuckDB tables: each query reads the
source again, which for these is cheaper than a copy. CSV text is parsed once into a
temporary table (DuckDB spills to disk when it outgrows memory), and a DataFrame copied,
so later changes to it cannot leak into results. A file rewritten while a run reads it
stops the run (:meth:`Source.check_unchanged`).

Loading reads the source twice: one pass counts rows by bad-value flags and date (every
count of the data-quality report follows from that small table), and, with an order id,
one pass groups the lines by a hash of all their columns to find the repeated ones. The
view then keeps one copy of each repeated line without ever numbering rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..config import DEFAULT_MEMORY_LIMIT, MEMORY_SIZE_EXPECTED, is_memory_size
from ..errors import ConfigError, DataError, EmptyResultError, InputError
from ..progress import bars_shown, step, watch
from ._validation import as_date
from .columns import ColumnMap
from .quality import DataQualityReport
from .sources import Source, csv_error, open_source, sql_literal

__all__ = ["DEFAULT_MEMORY_LIMIT", "Transactions", "connect", "customer_id_sql",
           "load_transactions"]

_TEMPORAL = ("DATE", "TIMESTAMP")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
            "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_MAX_ABS_AMOUNT = 1e13
#: Amounts are kept to 4 decimal places (DECIMAL(18, 4)); a non-zero amount below half the
#: last place would become 0, so it is refused instead of rounded away.
_MIN_ABS_AMOUNT = 0.00005
#: Default plausibility floor of order dates: earlier dates are refused (or dropped).
DEFAULT_MIN_DATE = dt.date(1900, 1, 1)
#: Default share of order ids that may be used by more than one customer (then refused).
DEFAULT_MAX_SHARED_ORDER_FRACTION = 0.01
#: Whitespace stripped from the ends of text values: what Python's ``str.isspace`` calls
#: whitespace (ASCII and Unicode spaces, tab, line breaks, NEL, separators \x1c-\x1f).
_SPACE = r"[\s\v\p{Z}\x{85}\x{1c}-\x{1f}]"
#: The first day an Excel serial date can mean (1900 date system, after Lotus' leap bug).
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_TEXT_COLUMNS = ("email", "first_name", "country", "channel", "product_id", "category")
#: Sources parsed once into a table: CSV (parsing text is the dear part) and DataFrames
#: (a snapshot: later changes to the caller's frame must not leak into the results).
_COPIED = ("csv", "dataframe")


def _spill_folder() -> str:
    """Return a fresh path in the system's temporary folder for DuckDB to spill into.

    DuckDB creates it only when it spills and removes it when the connection closes.
    """
    return os.path.join(tempfile.gettempdir(),
                        f"rfm-engine-spill-{os.getpid()}-{secrets.token_hex(4)}")


def connect(*, threads: int | None = None, memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
            progress_bar: bool | None = None) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection set up for the pipeline (UTC, no network).

    Parameters
    ----------
    threads : int, optional
        Worker threads (DuckDB default: every core).
    memory_limit : str or None, default=DEFAULT_MEMORY_LIMIT
        Such as ``"1GB"``: DuckDB spills to a temporary folder beyond it (a fresh
        ``rfm-engine-spill-*`` folder in the system's temporary folder, ``TMPDIR``, created
        only when needed and removed when the connection closes). None: DuckDB's default
        (80% of the machine's memory).
    progress_bar : bool or None, default=None
        Follow the connection's queries in the step bars of :mod:`rfm_engine.progress`
        (DuckDB's progress tracking, without DuckDB's own printing). None: when the bars are
        shown (the CLI on a terminal, without ``-q``).
    """
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False,
                                 "temp_directory": _spill_folder()})
    con.execute("SET TimeZone = 'UTC'")
    if progress_bar or (progress_bar is None and bars_shown()):
        watch(con)
    else:  # DuckDB 2 draws its bar by default, even with -q or into a log file
        with contextlib.suppress(duckdb.Error):  # refused inside Jupyter kernels, where it is off
            con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        _set_memory_limit(con, memory_limit)
    return con


def _set_memory_limit(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    if not is_memory_size(memory_limit):
        raise ConfigError(f"The 'memory_limit' parameter must be {MEMORY_SIZE_EXPECTED}. "
                          f"Got {memory_limit!r} instead.")
    con.execute(f"SET memory_limit = {sql_literal(memory_limit.strip())}")


@dataclass
class Transactions:
    """Cleaned transactions living in a DuckDB connection.

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        The connection holding the view ``transactions``.
    source : Source
        Where they came from.
    columns : dict
        Canonical name to source column, as resolved.
    as_of : datetime.date
        Inclusive observation end.
    window_start : datetime.date or None
        First day counted when ``window_days`` was given.
    report : DataQualityReport
        What cleaning did.
    max_shared_order_fraction : float
        Share of order ids that may be used by more than one customer before the orders
        table (:func:`rfm_engine.core.orders.orders_table`) refuses the data.
    """

    con: duckdb.DuckDBPyConnection
    source: Source
    columns: dict[str, str]
    as_of: dt.date
    window_start: dt.date | None
    report: DataQualityReport = field(repr=False)
    max_shared_order_fraction: float = DEFAULT_MAX_SHARED_ORDER_FRACTION
    _orders_table: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def has_order_id(self) -> bool:
        """Whether orders come from an order id (else: one per customer per day)."""
        return "order_id" in self.columns

    def to_frame(self) -> pd.DataFrame:
        """Return the cleaned transactions as a DataFrame (small data only)."""
        return self.con.execute(
            "SELECT * EXCLUDE (amount), amount::DOUBLE AS amount FROM transactions "
            "ORDER BY customer_id, order_ts, order_key"
        ).df()


def _is(type_name: str, families: tuple[str, ...]) -> bool:
    return type_name.upper().startswith(families)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _padded(text: str) -> str:
    # True for '' and for a value starting or ending with a byte <= ' ' (space, tab, line
    # breaks, control characters): a byte comparison, far cheaper than a regular expression.
    return f"({text} < '!' OR reverse({text}) < '!')"


def _strip(text: str) -> str:
    """Return SQL removing Unicode whitespace (:data:`_SPACE`) from both ends of ``text``."""
    return f"regexp_replace({text}, '^{_SPACE}+|{_SPACE}+$', '', 'g')"


def _raw_text(col: str) -> str:
    return f"CAST({_ident(col)} AS VARCHAR)"


def _text(col: str, *, unicode_ends: bool = False) -> str:
    # Stripping copies every string; testing the ends first leaves clean values untouched.
    # With unicode_ends (ids), non-ASCII values are stripped too (a trailing no-break space).
    text = _raw_text(col)
    return f"CASE WHEN {_text_changes(col, unicode_ends=unicode_ends)} " \
           f"THEN NULLIF({_strip(text)}, '') ELSE {text} END"


def _text_changes(col: str, *, unicode_ends: bool = False) -> str:
    """Return SQL true where :func:`_text` may differ from the raw text."""
    text = _raw_text(col)
    if unicode_ends:
        return f"({_padded(text)} OR strlen({text}) <> length({text}))"
    return _padded(text)


def customer_id_sql(col: str) -> str:
    """Return SQL for the customer id of column ``col`` cleaned as ``load_transactions`` does."""
    # Text ids: Unicode whitespace stripped, Unicode NFC, spreadsheet floats 17850.0 ->
    # 17850. Only ids that can change (padded, empty, holding a dot, non-ASCII) go through
    # the costly path.
    text = _raw_text(col)
    norm = f"nfc_normalize({_strip(text)})"
    fixed = (f"CASE WHEN contains({norm}, '.') THEN "
             rf"regexp_replace({norm}, '^([0-9]+)\.0+$', '\1') ELSE {norm} END")
    return f"CASE WHEN {_customer_id_changes(col)} THEN NULLIF({fixed}, '') ELSE {text} END"


def _customer_id_changes(col: str) -> str:
    """Return SQL true where an id may differ from its normal form (or be empty)."""
    text = _raw_text(col)
    return f"({_padded(text)} OR contains({text}, '.') OR strlen({text}) <> length({text}))"


def _timestamp_sql(col: str, type_name: str, date_format: str | None, *,
                   checked: bool = False) -> str:
    if _is(type_name, _TEMPORAL):  # DATE, TIMESTAMP, TIMESTAMPTZ (session time zone is UTC)
        value = f"CAST({_ident(col)} AS TIMESTAMP)"
        if checked:  # every row valid: no infinite date, the test can go
            return value
        return f"(CASE WHEN isfinite({value}) THEN {value} END)"  # 'infinity' is no date
    text = _text(col)
    if date_format:
        parsed = f"try_strptime({text}, {sql_literal(date_format)})"
        return f"CAST(CAST({parsed} AS TIMESTAMPTZ) AS TIMESTAMP)"
    # DuckDB also reads 'epoch', 'infinity', '-infinity' and '-0044-03-15': an ISO date
    # starts with a digit (a byte comparison), anything else is malformed.
    return (f"CASE WHEN {text} >= '0' AND {text} < ':' "
            f"THEN CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP) END")


def _number_value_sql(col: str, type_name: str, decimal: str) -> str:
    """Return SQL parsing a number column to DOUBLE (NULL when unparseable; no range test)."""
    if _is(type_name, _NUMERIC):
        return f"CAST({_ident(col)} AS DOUBLE)"
    text = _text(col)
    if decimal == ",":  # strict: a '.' in such a file is an error, never a guess
        text = f"CASE WHEN contains({text}, '.') THEN NULL ELSE replace({text}, ',', '.') END"
    return f"TRY_CAST({text} AS DOUBLE)"


def _number_sql(col: str, type_name: str, decimal: str, *, checked: bool = False) -> str:
    if checked and _is(type_name, _NUMERIC):  # no bad value: the range test can go
        return f"CAST({_ident(col)} AS DOUBLE)"
    value = _number_value_sql(col, type_name, decimal)
    return f"(CASE WHEN isfinite({value}) AND abs({value}) < {_MAX_ABS_AMOUNT} THEN {value} END)"


def _amount_unfit(amount: str) -> str:
    """Return SQL true when an amount is out of range or would round to 0 at 4 decimals."""
    return (f"(abs({amount}) >= {_MAX_ABS_AMOUNT} "
            f"OR ({amount} <> 0 AND abs({amount}) < {_MIN_ABS_AMOUNT}))")


def _number_reason(value: str) -> str:
    """Return SQL naming why a parsed value is refused: out of range, or too small."""
    return (f"CASE WHEN isfinite({value}) AND abs({value}) >= {_MAX_ABS_AMOUNT} THEN 'range' "
            f"WHEN {value} <> 0 AND abs({value}) < {_MIN_ABS_AMOUNT} THEN 'precision' END")


def _expected(canonical: str, date_format: str | None, decimal: str, reason: str | None,
              min_date: dt.date) -> str:
    if canonical == "order_date":
        if reason == "early":
            return (f"a date on or after {min_date} (the plausibility floor: older dates are "
                    "taken for export errors)")
        return (f"a date in the format {date_format!r}" if date_format else
                "an ISO 8601 date or timestamp such as 2024-03-05 or 2024-03-05T14:30:00+01:00")
    if reason == "range":
        return f"a number of absolute value below {_MAX_ABS_AMOUNT:,.0f}: out of range"
    if reason == "precision":
        return ("0 or an amount of at least 0.0001 in absolute value: amounts are kept to 4 "
                "decimal places and this one would round to 0")
    example = "12,50 (decimal comma, no thousands separator)" if decimal == "," else "12.50"
    return f"a finite number such as {example}"


def _hint(canonical: str, date_format: str | None, decimal: str, reason: str | None,
          value: object) -> str:
    hint = "Fix the value, or pass --on-bad-rows drop to drop and count such rows."
    if canonical == "order_date" and reason == "early":
        hint = "Fix the value or lower the floor with --min-date ([input] min_date); or pass " \
               "--on-bad-rows drop to drop and count such rows."
    elif canonical == "order_date" and _looks_like_excel_serial(value):
        day = _EXCEL_EPOCH + dt.timedelta(days=int(float(str(value))))
        hint = (f"{value!r} looks like an Excel serial date (day {int(float(str(value)))} = "
                f"{day}): export the column as dates (ISO 8601) instead. " + hint)
    elif canonical == "order_date" and not date_format and _looks_like_compact_date(value):
        hint = (f"{value!r} looks like a date written YYYYMMDD: pass --date-format %Y%m%d "
                "([input] date_format). " + hint)
    elif canonical == "order_date" and not date_format:
        hint = ("Dates that are not ISO 8601 need --date-format (e.g. '%d/%m/%Y'); day/month "
                "order is never guessed. " + hint)
    elif reason == "precision":
        hint = "Scale the amounts to a smaller currency unit (e.g. thousandths). " + hint
    elif canonical != "order_date" and reason is None and decimal == ".":
        hint = "Numbers with a decimal comma need --decimal ','. " + hint
    return hint


def _looks_like_compact_date(value: object) -> bool:
    """Whether a date value is eight digits that read as a YYYYMMDD date (CDNOW's dates)."""
    text = str(value).strip()
    try:
        return len(text) == 8 and text.isdigit() and bool(dt.datetime.strptime(text, "%Y%m%d"))
    except ValueError:
        return False


def _looks_like_excel_serial(value: object) -> bool:
    """Whether a date value is a number Excel would show as a date since 1900 (up to 9999)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return False
    return 1 <= number < 2_958_466


def load_transactions(
    source: str | Path | pd.DataFrame,
    *,
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
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Transactions:
    """Load, validate and clean transactions.

    Parameters
    ----------
    source : str, Path or DataFrame
        CSV file, Parquet file or folder, DuckDB database file (with ``table``) or a
        DataFrame (never modified).
    columns : Mapping[str, str], optional
        ``{canonical: source column}``; see :data:`rfm_engine.io.columns.CANONICAL_COLUMNS`.
    as_of : str or date, optional
        Inclusive observation end; rows after it are excluded. Default: the latest
        transaction date (never today, so results depend on the inputs alone).
    window_days : int, optional
        Only the ``window_days`` days ending on ``as_of`` count.
    date_format : str, optional
        strftime format for non-ISO dates (``%z`` offsets are converted to UTC).
    decimal : {".", ","}, default="."
        Decimal separator of numbers stored as text. With ``","`` a value holding a
        ``.`` is malformed (thousands separators are not guessed).
    on_bad_rows : {"raise", "drop"}, default="raise"
        A malformed date or amount stops the load (``raise``) or is dropped and counted.
    max_drop_fraction : float, default=0.5
        Fail when more than this share of rows is dropped as dirt.
    table : str, optional
        Table inside a DuckDB database file.
    delimiter, encoding : str, optional
        CSV options; the delimiter is sniffed and UTF-8 (BOM or not) assumed by default.
        ``delimiter="whitespace"``: fields separated by runs of spaces or tabs (CDNOW's
        raw files), see :func:`~rfm_engine.io.sources.open_source`.
    header : bool, default=True
        Whether a text file's first line names the columns; ``False`` needs ``names``.
    names : sequence of str, optional
        Column names of a text file without a header, one per field (then map them
        with ``columns``, or use the canonical names).
    min_date : str or date, default=date(1900, 1, 1)
        Plausibility floor: an order dated before it is refused like a malformed value
        (``on_bad_rows="raise"``) or dropped and counted as ``before_min_date``.
    max_shared_order_fraction : float, default=0.01
        With an order id: fail when more than this share of the order ids is used by
        more than one customer (checked when the orders are grouped; a smaller share is
        counted as ``shared_order_ids`` and each customer's lines are their own order).
    memory_limit : str or None, default=DEFAULT_MEMORY_LIMIT
        DuckDB's memory limit, such as ``"1GB"`` (set on ``con`` too when given): beyond
        it DuckDB spills to disk (see :func:`connect`). None: DuckDB's default.
    con : duckdb.DuckDBPyConnection, optional
        Connection to use; a new one from :func:`connect` by default.

    Returns
    -------
    Transactions

    Raises
    ------
    DataError
        A malformed value, out of range or before ``min_date`` (file, data row, column,
        value and what was expected).
    MissingColumnsError
        Required columns are missing.
    InputError
        Too many rows dropped, or an unreadable file.
    EmptyResultError
        No row left after cleaning.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"customer_id": ["001", "001", None],
    ...                     "order_date": ["2024-01-02", "2024-02-01", "2024-02-01"],
    ...                     "amount": [10.0, 5.0, 3.0]})
    >>> tx = load_transactions(raw)
    >>> tx.report.dropped["missing_customer_id"], str(tx.as_of)
    (1, '2024-02-01')
    """
    check_load_options(on_bad_rows=on_bad_rows, decimal=decimal,
                       max_drop_fraction=max_drop_fraction,
                       max_shared_order_fraction=max_shared_order_fraction,
                       window_days=window_days)
    as_of_date = _parse_as_of(as_of)
    floor = as_date(min_date, "min_date")
    if con is None:
        con = connect(memory_limit=memory_limit)
    elif memory_limit:
        _set_memory_limit(con, memory_limit)
    with step("reading and validating"):
        src = open_source(con, source, table=table, delimiter=delimiter, encoding=encoding,
                          header=header, names=names)
        mapping = ColumnMap(columns).resolve(list(src.columns), source=src.name)
        try:
            checks = _parse(con, src, mapping, date_format, decimal, floor)
        except duckdb.InvalidInputException as exc:  # CSV text beyond the sniffed sample
            if src.kind != "csv":
                raise
            raise csv_error(src.paths[0], exc, encoding=encoding, delimiter=delimiter,
                            names=names) from None
        report = DataQualityReport(source=src.name)
        counts = _count_bad(con, src, mapping, checks, report, on_bad_rows, date_format,
                            decimal, floor)
        if src.kind not in _COPIED:  # a view: drop the tests the counts proved idle
            _parse(con, src, mapping, date_format, decimal, floor, plain=_plain(counts))
    with step("cleaning", rows=report.rows_read):
        as_of_date, window_start = _clean(con, mapping, checks, counts, report, as_of_date,
                                          window_days, floor)
    check_drops(report, src.name, max_drop_fraction)
    src.check_unchanged()
    return Transactions(con, src, mapping, as_of_date, window_start, report,
                        max_shared_order_fraction)


def check_load_options(*, on_bad_rows: str, decimal: str, max_drop_fraction: float,
                       max_shared_order_fraction: float, window_days: int | None) -> None:
    """Refuse a load option out of its range (every engine calls this: one wording).

    Raises
    ------
    ConfigError
        The first option out of range, naming it and the value given.
    """
    if on_bad_rows not in ("raise", "drop"):
        raise ConfigError(
            f"The 'on_bad_rows' parameter must be 'raise' or 'drop'. Got {on_bad_rows!r} instead."
        )
    if decimal not in (".", ","):
        raise ConfigError(f"The 'decimal' parameter must be '.' or ','. Got {decimal!r} instead.")
    if not 0 <= max_drop_fraction <= 1:
        raise ConfigError(f"The 'max_drop_fraction' parameter must be in [0, 1]. "
                          f"Got {max_drop_fraction!r} instead.")
    if not 0 <= max_shared_order_fraction <= 1:
        raise ConfigError(f"The 'max_shared_order_fraction' parameter must be in [0, 1]. "
                          f"Got {max_shared_order_fraction!r} instead.")
    if window_days is not None and (not isinstance(window_days, int) or window_days < 1):
        raise ConfigError(f"The 'window_days' parameter must be a positive int. "
                          f"Got {window_days!r} instead.")


def check_drops(report: DataQualityReport, name: str, max_drop_fraction: float) -> None:
    """Refuse a load that drops too much, or keeps nothing (every engine calls this).

    Raises
    ------
    InputError
        More than ``max_drop_fraction`` of the rows read would be dropped as dirt.
    EmptyResultError
        No row is left.
    """
    if report.rows_read and report.rows_dropped / report.rows_read > max_drop_fraction:
        raise InputError(
            f"{name}: {report.rows_dropped:,} of {report.rows_read:,} rows would be dropped "
            f"({report.rows_dropped / report.rows_read:.0%} > max_drop_fraction "
            f"{max_drop_fraction:.0%}): {_drop_summary(report)}. Check the column mapping and "
            "the file, or raise --max-drop-fraction."
        )
    if report.rows_kept == 0:
        raise EmptyResultError(f"{name}: no transaction left after cleaning "
                               f"({_drop_summary(report)}).")


def _parse_as_of(as_of: str | dt.date | None) -> dt.date | None:
    if as_of is None:
        return None
    try:
        return as_date(as_of, "as_of")
    except ConfigError:
        raise ConfigError(f"--as-of: {as_of!r} is not an ISO date (YYYY-MM-DD).") from None


def _drop_summary(report: DataQualityReport) -> str:
    parts = [f"{k} {v:,}" for k, v in report.dropped.items() if v]
    return ", ".join(parts) or "nothing dropped"


def _parse(con: duckdb.DuckDBPyConnection, src: Source, mapping: dict[str, str],
           date_format: str | None, decimal: str, min_date: dt.date,
           plain: frozenset[str] = frozenset()) -> dict[str, tuple[str, str, str, str]]:
    """Define the parsed rows ``staged``: ``_bad_<check>`` flags, ``_early`` and ``_valid``.

    ``staged`` is a view over the source, read again by each query, except for CSV
    and DataFrames, parsed once into a temporary table. ``plain`` names the tests that
    :func:`_count_bad` found never true, left out of a second definition: ``valid``
    (every row valid), ``customer_id`` and ``order_id`` (no value changed by
    normalisation). Returns, per check, the SQL for the error path over a ``raw_source``
    row: ``(column named, test for a refused value, the value as text, the reason code)``.
    """
    types = src.columns
    cid, oid = mapping["customer_id"], mapping.get("order_id")
    valid = "valid" in plain
    date_col = mapping["order_date"]
    ts = _timestamp_sql(date_col, types[date_col], date_format)
    floor = f"TIMESTAMP {sql_literal(min_date.isoformat())}"
    parsed_ts = _timestamp_sql(date_col, types[date_col], date_format, checked=valid)
    inner = [
        f"{_raw_text(cid) if 'customer_id' in plain else customer_id_sql(cid)} AS customer_id",
        f"{'FALSE' if 'customer_id' in plain else _customer_id_changes(cid)} AS _id_changes",
        f"{parsed_ts} AS order_ts",
    ]
    checks = {"order_date": (date_col, f"(({ts}) IS NULL OR ({ts}) < {floor})",
                             _raw_text(date_col),
                             f"CASE WHEN ({ts}) IS NOT NULL THEN 'early' END")}
    flags = {"order_date": "order_ts IS NULL"}
    value_columns = ["amount"] if "amount" in mapping else ["quantity", "unit_price"]
    for canonical in value_columns:
        col, type_name = mapping[canonical], types[mapping[canonical]]
        inner.append(f"{_number_sql(col, type_name, decimal, checked=valid)} AS _n_{canonical}")
        number = _number_sql(col, type_name, decimal)
        test = f"({number}) IS NULL"
        flags[canonical] = f"_n_{canonical} IS NULL"
        if canonical == "amount":
            test += f" OR {_amount_unfit(number)}"
            flags[canonical] += f" OR {_amount_unfit('_n_amount')}"
        checks[canonical] = (col, f"({test})", _raw_text(col),
                             _number_reason(_number_value_sql(col, type_name, decimal)))
    if "amount" not in mapping:  # line items: the product must fit the amount type too
        q, p = (_number_sql(mapping[c], types[mapping[c]], decimal)
                for c in ("quantity", "unit_price"))
        flags["amount"] = f"coalesce({_amount_unfit('_n_quantity * _n_unit_price')}, FALSE)"
        checks["amount"] = (
            mapping["unit_price"],
            f"coalesce({_amount_unfit(f'({q}) * ({p})')}, FALSE)",
            f"{_raw_text(mapping['quantity'])} || ' × ' || {_raw_text(mapping['unit_price'])}",
            _number_reason(f"({q}) * ({p})"))
    if oid:
        order_id = _raw_text(oid) if "order_id" in plain else _text(oid, unicode_ends=True)
        inner.append(f"{order_id} AS order_id")
        inner.append(f"{'FALSE' if 'order_id' in plain else _text_changes(oid, unicode_ends=True)}"
                     " AS _key_changes")
        # A 64-bit hash of every source column finds identical lines; a false match needs
        # a collision (odds about n^2 / 2^65: 3e-6 for 10 million rows).
        inner.append(f"hash({', '.join(_ident(c) for c in src.columns)}) AS _line_hash")
    else:
        inner.append("FALSE AS _key_changes")
    inner += [f"{_text(mapping[c])} AS {c}" for c in _TEXT_COLUMNS if c in mapping]

    if valid:
        flags = dict.fromkeys(flags, "FALSE")
    amount = " * ".join(f"_n_{c}" for c in value_columns)
    if "amount" not in mapping:  # a product out of range is flagged, never cast
        amount = f"CASE WHEN abs({amount}) < {_MAX_ABS_AMOUNT} THEN {amount} END"
    order_key = "order_id" if oid else "CAST(CAST(order_ts AS DATE) AS VARCHAR)"
    early = "FALSE" if valid else f"coalesce(order_ts < {floor}, FALSE)"
    outer = [
        f"* EXCLUDE ({', '.join(f'_n_{c}' for c in value_columns)})",
        f"CAST(round({amount}, 4) AS DECIMAL(18, 4)) AS amount",
        f"{order_key} AS order_key",
        "CAST(order_ts AS DATE) AS order_date",
        *(f"{test} AS _bad_{c}" for c, test in flags.items()),
        f"{early} AS _early",
        "TRUE AS _valid" if valid else
        f"NOT ({' OR '.join(f'({t})' for t in flags.values())} OR {early}) "
        "AND customer_id IS NOT NULL AS _valid",
        "customer_id IS NULL AS _no_id",
    ]
    _create(con, "staged", "TABLE" if src.kind in _COPIED else "VIEW",
            f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM raw_source)")
    return checks


def _plain(counts: pd.DataFrame) -> frozenset[str]:
    """Name the tests of :func:`_parse` that the counts show are never true."""
    plain = {"customer_id": not counts["id_changes"].any(),
             "order_id": not counts["key_changes"].any(),
             "valid": not counts["_drop"].notna().any()}
    return frozenset(name for name, proven in plain.items() if proven)


def _create(con: duckdb.DuckDBPyConnection, name: str, kind: str, sql: str) -> None:
    """``CREATE OR REPLACE TEMP {kind}``, first dropping an object of the other kind."""
    existing = con.execute(
        "SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = $1 UNION ALL "
        "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = $1", [name]
    ).fetchall()
    for (other,) in existing:
        if other != kind:
            con.execute(f"DROP {other} {name}")
    con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {sql}")


def _count_bad(con: duckdb.DuckDBPyConnection, src: Source, mapping: dict[str, str],
               checks: dict[str, tuple[str, str, str, str]], report: DataQualityReport,
               on_bad_rows: str, date_format: str | None, decimal: str,
               min_date: dt.date) -> pd.DataFrame:
    """Count the parsed rows by flags and date; raise on a refused value.

    Returns the counts: one row per ``_drop`` reason (``bad_value``,
    ``before_min_date``, ``missing_customer_id`` or missing: valid), ``order_date`` and
    bad-value flags, with ``rows`` and ``return_lines``.
    """
    flags = [f"_bad_{c}" for c in checks]
    counts = con.execute(
        f"SELECT {', '.join(flags)}, _no_id, _early, "
        "CASE WHEN NOT _early THEN order_date END AS order_date, "
        "count(*) AS rows, count(*) FILTER (WHERE amount < 0) AS return_lines, "
        "count(*) FILTER (WHERE _id_changes) AS id_changes, "
        "count(*) FILTER (WHERE _key_changes) AS key_changes FROM staged GROUP BY ALL"
    ).df()
    names = check_names(checks, mapping)
    if not tally_bad(counts, names, report, min_date) or on_bad_rows == "drop":
        return counts
    # Error path only: locate the first refused value with its file and data row.
    candidates = " UNION ALL ".join(
        f"SELECT _file, _row, {k} AS _k, {sql_literal(c)} AS canonical, "
        f"{value} AS value, {reason} AS reason FROM numbered WHERE {test}"
        for k, (c, (_, test, value, reason)) in enumerate(checks.items())
    )
    found = con.execute(
        f"WITH numbered AS (SELECT *, {src.row_sql} AS _row, {src.file_sql} AS _file "
        f"FROM raw_source) {candidates} ORDER BY _file, _row, _k LIMIT 1"
    ).fetchone()
    file, row_number, _, canonical, value, reason = found
    raise DataError(file, int(row_number), names[canonical], value,
                    _expected(canonical, date_format, decimal, reason, min_date),
                    _hint(canonical, date_format, decimal, reason, value))


def check_names(checks: Mapping[str, object], mapping: Mapping[str, str]) -> dict[str, str]:
    """Return the source column each check of a parse names (``Quantity × Price`` for amounts).

    Shared by the engines (:mod:`rfm_engine.engines.spark`): the report names the same columns.
    """
    names = {c: check[0] for c, check in checks.items()}
    if "amount" not in mapping:
        names["amount"] = f"{mapping['quantity']} × {mapping['unit_price']}"
    return names


def tally_bad(counts: pd.DataFrame, names: Mapping[str, str], report: DataQualityReport,
              min_date: dt.date) -> bool:
    """Fill ``report`` from the counts of the parsed rows; mark each group's ``_drop`` reason.

    ``counts`` has one row per combination of the ``_bad_<check>`` flags, ``_no_id``,
    ``_early`` and ``order_date`` (missing for early rows), with ``rows`` and
    ``return_lines``; ``_early`` and ``_no_id`` are replaced by ``_drop`` (``bad_value``,
    ``before_min_date``, ``missing_customer_id`` or missing: valid). The one definition of
    how the bad-value counts are read, for every engine.

    Returns
    -------
    bool
        Whether some value is refused (bad, or before ``min_date``): with
        ``on_bad_rows='raise'`` the caller stops on the first one.
    """
    flags = [f"_bad_{c}" for c in names]
    bad = counts[flags].astype(bool).any(axis=1)
    early = counts.pop("_early").astype(bool)
    counts["_drop"] = np.where(bad, "bad_value", np.where(
        early, "before_min_date",
        np.where(counts.pop("_no_id").astype(bool), "missing_customer_id", None)))
    report.rows_read = int(counts["rows"].sum())
    report.bad_values = {names[c]: n for c in names
                         if (n := int(counts.loc[counts[f"_bad_{c}"].astype(bool), "rows"].sum()))}
    early_rows = int(counts.loc[early & ~bad, "rows"].sum())
    if early_rows:
        report.warnings.append(f"{early_rows:,} rows dated before the plausibility floor "
                               f"min_date {min_date}.")
    return bool(report.bad_values or early_rows)


def _duplicates(con: duckdb.DuckDBPyConnection, mapping: dict[str, str]) -> pd.DataFrame:
    """Find lines repeated identically (order ids only) into the table ``duplicate_lines``.

    Returns the extra copies of the otherwise valid repeated lines per ``order_date``
    (``rows``, ``return_lines``); empty when nothing repeats.
    """
    empty = pd.DataFrame({"order_date": [], "rows": [], "return_lines": []})
    if "order_id" not in mapping:
        return empty
    # Identical lines parse identically, so one group by the line hash finds them all.
    con.execute("CREATE OR REPLACE TEMP TABLE duplicate_lines AS SELECT _line_hash, "
                "count(*) - 1 AS extra FROM staged GROUP BY _line_hash HAVING count(*) > 1")
    if not con.execute("SELECT count(*) FROM duplicate_lines").fetchall()[0][0]:
        return empty
    return con.execute("""
        SELECT order_date, sum(extra) AS rows,
               sum(extra) FILTER (WHERE amount < 0) AS return_lines
        FROM (SELECT DISTINCT ON (_line_hash) _line_hash, order_date, amount, _valid
              FROM staged SEMI JOIN duplicate_lines USING (_line_hash))
        JOIN duplicate_lines USING (_line_hash)
        WHERE _valid GROUP BY order_date
    """).df().fillna({"return_lines": 0})


def _clean(con: duckdb.DuckDBPyConnection, mapping: dict[str, str], checks: dict[str, str],
           counts: pd.DataFrame, report: DataQualityReport, as_of: dt.date | None,
           window_days: int | None, min_date: dt.date) -> tuple[dt.date, dt.date | None]:
    """Apply the rules after the bad values: duplicates, then the as-of date and window.

    Defines the view ``transactions`` and fills the report from ``counts`` (see
    :func:`_count_bad`) minus the extra copies of repeated lines.
    """
    extra = _duplicates(con, mapping)
    as_of, window_start = apply_rules(counts, extra, report, as_of, window_days, min_date)
    internal = ["_valid", "_no_id", "_early", "_id_changes", "_key_changes",
                *(f"_bad_{c}" for c in checks)]
    if "order_id" in mapping:
        internal.append("_line_hash")
    _define_transactions(con, internal, as_of, window_start, deduplicate=len(extra) > 0)
    return as_of, window_start


def apply_rules(counts: pd.DataFrame, extra: pd.DataFrame, report: DataQualityReport,
                as_of: dt.date | None, window_days: int | None,
                min_date: dt.date) -> tuple[dt.date, dt.date | None]:
    """Apply the rules after the bad values to the counts: duplicates, as-of date, window.

    The one definition of the data-quality report's counts, for every engine: ``counts``
    as :func:`tally_bad` left them, ``extra`` the extra copies of repeated valid lines per
    ``order_date`` (``rows``, ``return_lines``). Returns the as-of date (the latest kept
    date when not given) and the window's first day.
    """
    valid = counts[counts["_drop"].isna()].groupby("order_date")[["rows", "return_lines"]].sum()
    kept = valid.sub(extra.set_index("order_date"), fill_value=0).astype("int64")
    kept.index = pd.to_datetime(kept.index).date
    dates = pd.Series(kept.index, index=kept.index)
    if as_of is None and len(kept):
        as_of = kept.index.max()
    as_of = as_of.date() if isinstance(as_of, dt.datetime) else as_of
    window_start = (_window_start(as_of, window_days, min_date)
                    if window_days and as_of is not None else None)
    after = dates > as_of if as_of is not None else dates.notna()
    before = dates < window_start if window_start else pd.Series(False, index=kept.index)
    inside = kept[~after & ~before]

    dropped = counts.groupby("_drop")["rows"].sum()
    report.dropped = {
        "bad_value": int(dropped.get("bad_value", 0)),
        "before_min_date": int(dropped.get("before_min_date", 0)),
        "missing_customer_id": int(dropped.get("missing_customer_id", 0)),
        "duplicate_line": int(extra["rows"].sum()),
        "after_as_of": int(kept.loc[after, "rows"].sum()),
        "before_window": int(kept.loc[before & ~after, "rows"].sum()),
    }
    report.rows_kept = int(inside["rows"].sum())
    report.return_lines = int(inside["return_lines"].sum())
    report.as_of = as_of.isoformat() if as_of else None
    report.window_start = window_start.isoformat() if window_start else None
    if report.rows_kept:
        report.first_date = inside.index[inside["rows"] > 0].min().isoformat()
        report.last_date = inside.index[inside["rows"] > 0].max().isoformat()
    if report.dropped["after_as_of"]:
        report.warnings.append(
            f"{report.dropped['after_as_of']:,} rows dated after the as-of date {as_of} "
            "were excluded."
        )
    return as_of, window_start


def _window_start(as_of: dt.date, window_days: int, min_date: dt.date) -> dt.date:
    """First day of the window; refused when it would start before ``min_date``."""
    longest = (as_of - min_date).days + 1
    if window_days > longest:
        raise ConfigError(
            f"--window-days {window_days:,} would start the window before the plausibility "
            f"floor min_date {min_date}, where no kept row can be (as of {as_of}, at most "
            f"{longest:,} days); give a shorter window, or none to count every day.")
    return as_of - dt.timedelta(days=window_days - 1)


def _define_transactions(con: duckdb.DuckDBPyConnection, internal: list[str],
                         as_of: dt.date | None, window_start: dt.date | None, *,
                         deduplicate: bool) -> None:
    internal = ", ".join(internal)
    keep = "_valid AND order_date <= " + (
        f"DATE {sql_literal(as_of.isoformat())}" if as_of else "NULL")
    if window_start:
        keep += f" AND order_date >= DATE {sql_literal(window_start.isoformat())}"
    sql = f"SELECT * EXCLUDE ({internal}) FROM staged WHERE {keep}"
    if deduplicate:  # the lines that repeat, once each, then every other line
        sql = (f"SELECT * EXCLUDE ({internal}) FROM (SELECT DISTINCT ON (_line_hash) * "
               f"FROM staged SEMI JOIN duplicate_lines USING (_line_hash)) WHERE {keep} "
               f"UNION ALL {sql} AND _line_hash NOT IN (SELECT _line_hash FROM duplicate_lines)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW transactions AS {sql}")
