"""Transaction sources: CSV, Parquet (file or folder), a DataFrame or a DuckDB table.

Each source becomes a DuckDB view named ``raw_source`` read in place (nothing is
copied up front), plus what error messages need: a display name and SQL for the
file and the 1-based data row of each row, and the size and modification time of each
file, so a file rewritten during a run is noticed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import ConfigError, InputError

__all__ = ["WHITESPACE", "Source", "check_names", "csv_error", "open_source", "sql_literal"]

_DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
#: The ``delimiter`` value for text whose fields are separated by runs of spaces or tabs
#: (CDNOW's raw files; pandas' ``sep=r"\s+"``): no quoting, blanks at line ends ignored.
WHITESPACE = "whitespace"


@dataclass(frozen=True)
class Source:
    """A transaction source opened as the DuckDB view ``raw_source``.

    Attributes
    ----------
    name : str
        What error messages call it (path, or ``path::table``, or ``DataFrame``).
    kind : str
        ``csv``, ``parquet``, ``dataframe`` or ``duckdb``.
    columns : dict
        Column name to DuckDB type, in source order.
    row_sql : str
        SQL giving the 1-based data row of a row of ``raw_source`` (error path only).
    file_sql : str
        SQL giving the file a row came from.
    paths : tuple of Path
        The files read (empty for a DataFrame).
    stamps : tuple
        ``(size, mtime_ns)`` of each path when it was opened.
    """

    name: str
    kind: str
    columns: dict[str, str]
    row_sql: str
    file_sql: str
    paths: tuple[Path, ...] = ()
    stamps: tuple[tuple[int, int], ...] = ()

    def check_unchanged(self) -> None:
        """Raise :class:`InputError` when a file changed since it was opened.

        Files are read in place, once per query: a file rewritten during a run (an
        upstream export landing) would mix two versions, so the run stops instead.
        """
        changed = [str(p) for p, stamp in zip(self.paths, self.stamps, strict=True)
                   if _stamp(p) != stamp]
        if changed:
            raise InputError(f"{', '.join(changed)}: changed while being read (size or "
                             "modification time differ from the start of the run); rerun "
                             "once the file is complete.")


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def sql_literal(text: str) -> str:
    """Quote ``text`` as an SQL string literal (``'`` doubled), for DuckDB statements.

    Examples
    --------
    >>> sql_literal("O'Brien.csv")
    "'O''Brien.csv'"
    """
    return "'" + text.replace("'", "''") + "'"


#: Suffixes of data files that a folder of Parquet files must not hold besides them.
_OTHER_DATA = (".csv", ".tsv", ".txt", ".gz", ".json", ".jsonl", ".xlsx", ".xls", ".duckdb")


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        others = sorted(p for p in path.rglob("*") if p.is_file()
                        and p.name.lower().endswith(_OTHER_DATA) and not p.name.startswith("."))
        if files and others:
            raise InputError(
                f"{path}: folder holds {len(files)} .parquet file(s) and {len(others)} other data "
                f"file(s) ({others[0].name}{', ...' if len(others) > 1 else ''}); a folder is read "
                "as Parquet only and mixing formats is refused: move the other files out, or "
                "give one file as INPUT.")
        if not files:
            found = (f" (it holds {others[0].name}: give a CSV file itself as INPUT)"
                     if others else "")
            raise InputError(f"{path}: folder holds no .parquet files{found}.")
        return files
    return [path]


def open_source(
    con: duckdb.DuckDBPyConnection,
    source: str | Path | pd.DataFrame,
    *,
    table: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
) -> Source:
    """Register ``source`` as the view ``raw_source`` on ``con``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that will run the pipeline.
    source : str, Path or DataFrame
        A ``.csv`` (also ``.csv.gz``, ``.tsv``, ``.txt``) file, a ``.parquet`` file or
        folder of them, a DuckDB database file (with ``table``), or a DataFrame.
    table : str, optional
        Table name inside a DuckDB database file.
    delimiter : str, optional
        CSV delimiter; sniffed when omitted. ``"whitespace"`` (`WHITESPACE`): fields
        separated by runs of spaces or tabs, without quoting (blanks at the ends of a line
        and blank lines are ignored).
    encoding : str, optional
        CSV encoding (default UTF-8, with or without BOM; also ``latin-1``, ``utf-16``).
    header : bool, default=True
        Whether the text file's first line names the columns. Without it, ``names`` must.
    names : sequence of str, optional
        Column names of a text file without a header line (``header=False``), one per
        field.

    Returns
    -------
    Source
    """
    names = check_names(header, names)
    if isinstance(source, pd.DataFrame):
        repeated = source.columns[source.columns.duplicated()].unique().tolist()
        if repeated:
            raise InputError(f"DataFrame: column name(s) {', '.join(map(repr, repeated))} "
                             "appear more than once; rename them so each column is unambiguous.")
        con.register("_raw_frame", source)
        con.execute("CREATE OR REPLACE TEMP VIEW raw_source AS SELECT * FROM _raw_frame")
        return Source("DataFrame", "dataframe", _describe(con), "row_number() OVER ()",
                      "'DataFrame'")

    path = Path(source)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder.")
    stamped = _parquet_files(path) if path.is_dir() else [path]
    stamps = tuple(_stamp(p) for p in stamped)
    lower = path.name.lower()
    if path.is_dir() or lower.endswith(".parquet"):
        files = stamped
        file_list = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
        sql = (
            f"SELECT * FROM read_parquet({file_list}, filename = '_src_file', "
            "file_row_number = true)"
        )
        kind, row_sql, file_sql = "parquet", "file_row_number + 1", "_src_file"
        exclude = ("_src_file", "file_row_number")
    elif lower.endswith(_DUCKDB_SUFFIXES):
        if not table:
            raise ConfigError(f"{path}: a DuckDB database needs a table name (--table NAME).")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", table):
            raise ConfigError(f"--table: {table!r} is not a plain table name.")
        con.execute(f"ATTACH {sql_literal(str(path))} AS src_db (READ_ONLY)")
        sql = f"SELECT *, rowid AS _src_rowid FROM src_db.{table}"
        kind, row_sql, file_sql = "duckdb", "_src_rowid + 1", sql_literal(f"{path}::{table}")
        files = [path]
        exclude = ("_src_rowid",)
    else:
        files = [path]
        if _is_blank(path):
            raise InputError(f"{path}: the file is empty (no header line, no rows); expected a "
                             "CSV file with a header such as customer_id,order_date,amount.")
        options = [f"header = {'true' if header else 'false'}", "all_varchar = true"]
        if names is not None:
            options.append("names = [" + ", ".join(map(sql_literal, names)) + "]")
        if delimiter and delimiter != WHITESPACE:
            options.append(f"delim = {sql_literal(delimiter)}")
        if encoding:
            options.append(f"encoding = {sql_literal(encoding)}")
        sql = f"SELECT * FROM read_csv({sql_literal(str(path))}, {', '.join(options)})"
        kind, row_sql, file_sql = "csv", "row_number() OVER ()", sql_literal(str(path))
        exclude = ()
    try:
        if kind == "csv" and delimiter == WHITESPACE:
            sql = _whitespace_sql(con, path, encoding, names)
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_source AS {sql}")
        columns = _describe(con)
    except duckdb.Error as exc:
        if kind == "csv":
            raise csv_error(path, exc, encoding=encoding, delimiter=delimiter,
                            names=names) from None
        raise InputError(f"{path}: cannot read as {kind}: {_first_line(exc)}") from exc
    columns = {k: v for k, v in columns.items() if k not in exclude}
    if kind == "csv" and delimiter != WHITESPACE:
        if names is not None and len(columns) != len(names):
            raise _names_error(path, len(names), len(columns), 1, 1)
        if names is None:
            _check_csv_header(con, path, list(columns), options, encoding, delimiter)
    name = f"{path}::{table}" if kind == "duckdb" else str(path)
    return Source(name, kind, columns, row_sql, file_sql, tuple(files), stamps)


def check_names(header: bool, names: Sequence[str] | None) -> list[str] | None:
    """Check the ``header``/``names`` pair of a text file; return the names, stripped.

    A file without a header needs ``names`` (one per field); names with a header are
    refused (the header names the columns); names must be distinct, ignoring case (as
    column mapping does).

    Examples
    --------
    >>> check_names(False, [" customer_id", "order_date "])
    ['customer_id', 'order_date']
    >>> check_names(True, None) is None
    True
    """
    if not isinstance(header, bool):
        raise ConfigError(f"The 'header' parameter must be True or False. Got {header!r} "
                          "instead.")
    if names is None:
        if not header:
            raise ConfigError("--no-header needs --names to name the columns, one per field "
                              "(e.g. --names customer_id,order_date,amount; [input] names in "
                              "a config).")
        return None
    if header:
        raise ConfigError("--names names the columns of a file without a header: add "
                          "--no-header ([input] header = false), or leave --names out to use "
                          "the file's header.")
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"--names: expected a list of column names. Got {names!r} instead.")
    cleaned = [n.strip() for n in names]
    if not cleaned or not all(cleaned):
        raise ConfigError(f"--names: every column needs a name. Got {list(names)!r} instead.")
    seen: dict[str, int] = {}
    for position, name in enumerate(cleaned, start=1):
        if name.lower() in seen:
            raise ConfigError(f"--names: {name!r} appears twice (positions {seen[name.lower()]} "
                              f"and {position}); give each column its own name.")
        seen[name.lower()] = position
    return cleaned


def _names_error(path: Path, expected: int, got: int, row: int, line: int) -> InputError:
    return InputError(f"{path}, row {row} (line {line}): {got} fields, expected {expected} as "
                      "--names gives; give one name per field.")


#: SQL: the blanks trimmed from the ends of a line (space, tab, CR, VT, FF).
_BLANKS = "' ' || chr(9) || chr(13) || chr(11) || chr(12)"


def _whitespace_sql(con: duckdb.DuckDBPyConnection, path: Path, encoding: str | None,
                    names: list[str] | None) -> str:
    """Return SQL reading a whitespace-separated text file, one text column per field.

    DuckDB's CSV reader takes one delimiter, not runs of blanks: each line is read whole
    (no delimiter, no quoting), trimmed and split on runs of whitespace. The field count
    of every line is checked here, in one pass over the file, so that a short or long row
    is refused naming its row and line (numbered in a second pass, on that error only).
    """
    options = ["columns = {'line': 'VARCHAR'}", "header = false", "delim = ''", "quote = ''",
               "escape = ''", "auto_detect = false", "strict_mode = false"]
    if encoding:
        options.append(f"encoding = {sql_literal(encoding)}")

    def lines(skip: int = 0) -> str:
        return (f"SELECT trim(line, {_BLANKS}) AS line FROM read_csv({sql_literal(str(path))}, "
                f"{', '.join([*options, f'skip = {skip}'] if skip else options)})")

    def fields(skip: int = 0) -> str:
        return (f"SELECT regexp_split_to_array(line, '\\s+') AS _f FROM ({lines(skip)}) "
                "WHERE line <> ''")

    numbered = f"SELECT line, row_number() OVER () AS _line FROM ({lines()})"
    first = None
    for head in (f"SELECT line, row_number() OVER () AS _line FROM ({lines()} LIMIT 1000)",
                 numbered):  # the first line that is not blank: usually line 1
        first = con.execute(f"SELECT _line, regexp_split_to_array(line, '\\s+') FROM ({head}) "
                            "WHERE line <> '' ORDER BY _line LIMIT 1").fetchone()
        if first is not None:
            break
    if first is None:
        raise InputError(f"{path}: the file holds only blank lines; expected rows of fields "
                         "separated by spaces or tabs.")
    skip = 0
    if names is None:
        skip, header = first[0], first[1]
        seen: dict[str, int] = {}
        for position, name in enumerate(header, start=1):
            if name.lower() in seen:
                raise InputError(f"{path}, header: column name {name!r} appears twice (columns "
                                 f"{seen[name.lower()]} and {position}); rename one so the "
                                 "mapping is unambiguous.")
            seen[name.lower()] = position
        names = list(header)
    n = len(names)
    if con.execute(f"SELECT 1 FROM ({fields(skip)}) WHERE len(_f) <> {n} LIMIT 1").fetchone():
        row, line, count = con.execute(
            f"SELECT row_number() OVER (ORDER BY _line), _line, len(_f) FROM ("
            f"SELECT _line, regexp_split_to_array(line, '\\s+') AS _f FROM ({numbered}) "
            f"WHERE line <> '' AND _line > {skip}) QUALIFY len(_f) <> {n} ORDER BY _line LIMIT 1"
        ).fetchone()
        if skip:
            raise InputError(f"{path}, row {row} (line {line}): {count} fields, expected {n} as "
                             "in the header (fields separated by whitespace); fix the row.")
        raise _names_error(path, n, count, row, line)
    columns = ", ".join(f"_f[{i}] AS {_quote(name)}" for i, name in enumerate(names, start=1))
    return f"SELECT {columns} FROM ({fields(skip)})"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _describe(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute("DESCRIBE raw_source").fetchall()}


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _is_blank(path: Path) -> bool:
    """Whether a file holds nothing but whitespace (read only when it is small)."""
    size = path.stat().st_size
    return size == 0 or (size < 4096 and not path.read_bytes().strip(b" \t\r\n\x00\xef\xbb\xbf"
                                                                      b"\xff\xfe"))


_DELIMITERS = (",", ";", "\t", "|")


def _check_csv_header(con: duckdb.DuckDBPyConnection, path: Path, columns: list[str],
                      options: list[str], encoding: str | None, delimiter: str | None) -> None:
    """Refuse a header naming a column twice, and a file the sniffer read as one column.

    DuckDB renames a repeated name (``amount``, ``amount_1``) and, when a row has more
    or fewer fields than the header, falls back to one column holding whole lines: both
    would give a wrong answer or a misleading "missing columns" error.
    """
    if len(columns) == 1 and any(d in columns[0] for d in _DELIMITERS):
        raise csv_error(path, None, encoding=encoding, delimiter=delimiter)
    lowered = {c.lower() for c in columns}
    suspects = [c for c in columns
                if (m := re.fullmatch(r"(.+)_\d+", c)) and m.group(1).lower() in lowered]
    if not suspects:
        return
    header_options = [o for o in options if not o.startswith("header")] + ["header = false"]
    header = con.execute(f"SELECT * FROM read_csv({sql_literal(str(path))}, "
                         f"{', '.join(header_options)}) LIMIT 1").fetchone() or ()
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        key = str(name).strip().lower()
        if key in seen:
            raise InputError(
                f"{path}, header: column name {name!r} appears twice (columns {seen[key]} and "
                f"{position}); rename one so the mapping is unambiguous.")
        seen[key] = position


def csv_error(path: Path, exc: Exception | None, *, encoding: str | None,
              delimiter: str | None, names: Sequence[str] | None = None) -> InputError:
    """Turn a CSV that DuckDB cannot read into one line naming the file and the line.

    A row with more or fewer fields than the header is found by reading the file with
    Python's :mod:`csv` (error path only); DuckDB's own line number and hint (such as
    "not utf-8 encoded") are kept otherwise.
    """
    text = str(exc) if exc is not None else ""
    if ("utf-8" not in text and "unicode" not in text.lower()
            and delimiter != WHITESPACE):  # whitespace files are checked when opened
        ragged = _find_ragged_row(path, encoding, delimiter, names)
        if ragged:
            return InputError(ragged)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    where = next((m.group(1) for line in lines
                  if (m := re.search(r"CSV Error on Line: (\d+)", line))), None)
    reason = next((line for line in lines if not line.startswith(
        ("CSV Error on Line", "Original Line", "Invalid Input Error: CSV Error",
         "Possible", "file =", "delimiter", "quote", "escape", "new_line", "header",
         "skip_rows", "comment", "strict_mode", "date_format", "timestamp_format",
         "null_padding", "sample_size", "ignore_errors", "all_varchar"))), "")
    reason = reason.removeprefix("Invalid Input Error: ")
    if not reason and lines:
        reason = lines[0].removeprefix("Invalid Input Error: ")
    if "not utf-8" in text.lower() or "unicode" in text.lower():
        reason = (reason or "not UTF-8") + (
            " Set the encoding: --encoding latin-1 (or utf-16, ...), [input] encoding in "
            "the config.")
    location = f"{path}, line {where}" if where else str(path)
    return InputError(f"{location}: cannot read as CSV: {reason or 'unreadable file'}")


def _find_ragged_row(path: Path, encoding: str | None, delimiter: str | None,
                     names: Sequence[str] | None = None) -> str | None:
    """Return a message naming the first row whose field count differs from the header's.

    With ``names`` (a file without a header) the count to match is ``len(names)``.
    """
    try:
        with open(path, encoding=_python_encoding(encoding), newline="") as handle:
            first = handle.readline()
            if delimiter is None:
                counts = {d: first.count(d) for d in _DELIMITERS}
                delimiter = max(counts, key=counts.get)
                if not counts[delimiter]:
                    return None
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter)
            header = list(names) if names is not None else next(reader, None)
            if header is None:
                return None
            what = "--names gives" if names is not None else "in the header"
            for row_number, row in enumerate(reader, start=1):
                if row and len(row) != len(header):
                    return (f"{path}, row {row_number} (line {reader.line_num}): {len(row)} "
                            f"fields, expected {len(header)} as {what} (delimiter "
                            f"{delimiter!r}); fix the row (quote fields holding the delimiter).")
    except (OSError, UnicodeError, csv.Error, LookupError):
        return None
    return None


def _python_encoding(encoding: str | None) -> str:
    if not encoding:
        return "utf-8-sig"
    return {"utf-16": "utf-16", "latin-1": "latin-1"}.get(encoding.lower(), encoding)
