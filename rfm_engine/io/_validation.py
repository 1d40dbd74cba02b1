"""Parameter checks shared by every layer: whole numbers, real numbers, dates, columns.

One definition each of what counts as an int (``True`` does not, a NumPy integer does),
a real number and a date parameter (a ``date``, a ``datetime`` whose day is taken, or ISO
text ``YYYY-MM-DD``), and of the error for a table without the columns a function needs.
In the bottom layer because :mod:`rfm_engine.io` (loading, CRM inputs) is the lowest that
checks its parameters with them.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, MissingColumnsError

__all__ = ["as_date", "id_array", "id_column", "id_strings", "is_int", "is_real", "numeric_column",
           "require_columns"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def is_int(value: object) -> bool:
    """Whether ``value`` is a whole number: an int or a NumPy integer, not a boolean.

    Examples
    --------
    >>> import numpy as np
    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (int, float or NumPy number), not a boolean.

    NaN and infinities count: callers that need a finite number check it themselves.

    Examples
    --------
    >>> is_real(2.5), is_real(7), is_real(False), is_real("2.5")
    (True, True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def as_date(value: object, name: str) -> dt.date:
    """Return the date parameter ``name`` as a :class:`datetime.date`.

    Parameters
    ----------
    value : date, datetime, numpy.datetime64 or str
        A date; a datetime or timestamp (its day is kept); ISO text ``YYYY-MM-DD``
        (surrounding spaces ignored).
    name : str
        The parameter's name, for the error message.

    Returns
    -------
    datetime.date

    Raises
    ------
    ConfigError
        For anything else, naming the parameter and the value.

    Examples
    --------
    >>> as_date("2025-01-31 ", "as_of")
    datetime.date(2025, 1, 31)
    >>> as_date("31/01/2025", "as_of")
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ConfigError: The 'as_of' parameter must be a date or an ISO date string \
(YYYY-MM-DD). Got '31/01/2025' instead.
    """
    if isinstance(value, dt.datetime):  # before date: datetime (and Timestamp) subclass it
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64) and not np.isnat(value):
        return pd.Timestamp(value).date()
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"The {name!r} parameter must be a date or an ISO date string "
                      f"(YYYY-MM-DD). Got {value!r} instead.")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: str) -> None:
    """Raise :class:`~rfm_engine.errors.MissingColumnsError` unless ``frame`` has ``columns``.

    Parameters
    ----------
    frame : DataFrame
        The table to check.
    columns : iterable of str
        The columns it needs.
    source : str
        What the table is (``"customers"``, a file name), for the message.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"customer_id": []}), ["customer_id", "segment"],
    ...                 "customers")
    Traceback (most recent call last):
    ...
    rfm_engine.errors.MissingColumnsError: customers: missing column(s) 'segment'; available: \
'customer_id'. Map them with --columns 'customer_id=Your Column,...' or [columns] in the config.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(source, missing, [str(c) for c in frame.columns])


def id_strings(values: pd.Series | Sequence[Any], *, source: str) -> list[str]:
    """Return customer ids as a list of text; a missing id is a DataError naming its row."""
    items = values.tolist() if isinstance(values, pd.Series) else list(values)
    missing = pd.isna(np.array(items, dtype=object))
    if missing.any():
        row = int(np.flatnonzero(missing)[0]) + 1
        raise DataError(source, row, "customer_id", None, "a customer id")
    return [v if isinstance(v, str) else str(v) for v in items]


def id_array(values: pd.Series | Sequence[Any], source: str) -> np.ndarray:
    """Return the ids as an object array (so an empty frame still merges with text keys)."""
    return np.array(id_strings(values, source=source), dtype=object)


def id_column(values: pd.Series, source: str) -> pd.Series:
    """Return the ids as a Series of pandas' string dtype, checked like :func:`id_strings`.

    A column of a string dtype is returned as it is (its text already is the ids), so
    millions of ids are never turned into Python objects; other columns go through
    :func:`id_strings`.
    """
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(
            values.dtype):
        missing = values.isna().to_numpy(dtype=bool)
        if missing.any():
            raise DataError(source, int(np.flatnonzero(missing)[0]) + 1, "customer_id", None,
                            "a customer id")
        return values
    return pd.Series(id_strings(values, source=source), index=values.index, dtype="str")


def numeric_column(column: pd.Series, name: str, source: str) -> np.ndarray:
    """Return a numeric column as floats; a text or boolean column is a DataError."""
    if len(column) and (not pd.api.types.is_numeric_dtype(column)
                        or pd.api.types.is_bool_dtype(column)):
        raise DataError(source, None, name, str(column.dtype), "numbers")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)
