"""Transaction sources: CSV, Parquet (file or folder), a DataFrame or a DuckDB table.

Each source becomes a DuckDB view named ``raw_source`` read in place (nothing is
copied up front), plus what error messages need: a display name and SQL for the
file and the 1-based data row of each row, and the size and modification time of each
file, so a file rewritten during a run is noticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from .errors import ConfigError, InputError

__all__ = ["Source", "open_source"]

_DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")


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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise InputError(f"{path}: folder holds no .parquet files.")
        return files
    return [path]


def open_source(
    con: duckdb.DuckDBPyConnection,
    source: str | Path | pd.DataFrame,
    *,
    table: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
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
        CSV delimiter; sniffed when omitted.
    encoding : str, optional
        CSV encoding (default UTF-8, with or without BOM; also ``latin-1``, ``utf-16``).

    Returns
    -------
    Source
    """
    if isinstance(source, pd.DataFrame):
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
        file_list = "[" + ", ".join(_quote(str(f)) for f in files) + "]"
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
        con.execute(f"ATTACH {_quote(str(path))} AS src_db (READ_ONLY)")
        sql = f"SELECT *, rowid AS _src_rowid FROM src_db.{table}"
        kind, row_sql, file_sql = "duckdb", "_src_rowid + 1", _quote(f"{path}::{table}")
        files = [path]
        exclude = ("_src_rowid",)
    else:
        files = [path]
        options = ["header = true", "all_varchar = true"]
        if delimiter:
            options.append(f"delim = {_quote(delimiter)}")
        if encoding:
            options.append(f"encoding = {_quote(encoding)}")
        sql = f"SELECT * FROM read_csv({_quote(str(path))}, {', '.join(options)})"
        kind, row_sql, file_sql = "csv", "row_number() OVER ()", _quote(str(path))
        exclude = ()
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_source AS {sql}")
        columns = _describe(con)
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read as {kind}: {_first_line(exc)}") from exc
    columns = {k: v for k, v in columns.items() if k not in exclude}
    name = f"{path}::{table}" if kind == "duckdb" else str(path)
    return Source(name, kind, columns, row_sql, file_sql, tuple(files), stamps)


def _describe(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute("DESCRIBE raw_source").fetchall()}


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
