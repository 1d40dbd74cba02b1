"""Atomic writers: every output goes to a temporary file in its folder, then is renamed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from .errors import ConfigError

__all__ = ["atomic_path", "write_table", "write_text_atomic", "TABLE_FORMATS"]

TABLE_FORMATS = (".csv", ".parquet")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_with(path: str | Path, writer: Callable[[Path], object]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return _write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV or Parquet (picked by the suffix), atomically.

    Parameters
    ----------
    frame : DataFrame
        The table; its index is not written.
    path : str or Path
        ``.csv`` or ``.parquet``.

    Returns
    -------
    Path
        The written path.
    """

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _write_with(
            path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n")
        )
    if suffix == ".parquet":
        return _write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))
    raise ConfigError(
        f"Output {str(path)!r}: unknown suffix {suffix!r}; use one of {', '.join(TABLE_FORMATS)}."
    )
