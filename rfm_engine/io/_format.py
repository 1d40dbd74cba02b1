"""Numbers as the reports print them: one convention for text tables and HTML alike.

The convention:

- a missing value (``None``, NaN, ``pd.NA``, an infinity) prints as :data:`MISSING`,
  ``"n/a"``, everywhere (plain ASCII, so it reads the same in a terminal, a log and HTML);
- :func:`percent` takes a *fraction* (0.25 prints ``25.0%``); a table that stores
  percentages 0–100 (the KPI table) divides by 100 where it prints them;
- counts print with thousands separators (``12,345``), money with two decimals and
  separators (``1,234.50``), other numbers with one decimal (:func:`decimal`);
- :func:`fixed` is the escape hatch for a format spec of its own (signed lifts, p-values),
  with the same missing marker.

Used by the text reports of :mod:`rfm_engine.measurement` and by the HTML reports
(:mod:`rfm_engine.io._html`, :mod:`rfm_engine.reports`), so it lives in the bottom layer.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["MISSING", "decimal", "fixed", "integer", "is_missing", "listing", "money",
           "number", "percent"]

#: What a missing value prints as.
MISSING = "n/a"


def is_missing(value: object) -> bool:
    """Whether ``value`` is missing: None, NaN, ``pd.NA``/``NaT`` or an infinity.

    Lists and arrays are not missing (they are shown by :func:`listing`).

    Parameters
    ----------
    value : object
        Any scalar.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_missing(float("nan")), is_missing(None), is_missing(0), is_missing([1])
    (True, True, False, False)
    """
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays
        return False


def fixed(value: object, spec: str) -> str:
    """``format(value, spec)``, or :data:`MISSING`.

    Parameters
    ----------
    value : number or None
        The value to show.
    spec : str
        A format spec such as ``"+.2f"`` or ``".3f"``.

    Returns
    -------
    str

    Examples
    --------
    >>> fixed(0.0123, ".3f"), fixed(None, ".3f")
    ('0.012', 'n/a')
    """
    return MISSING if is_missing(value) else format(value, spec)


def integer(value: object) -> str:
    """Show a count, rounded, with thousands separators: ``12,345``.

    Examples
    --------
    >>> integer(12345), integer(2.6), integer(float("nan"))
    ('12,345', '3', 'n/a')
    """
    return MISSING if is_missing(value) else f"{round(float(value)):,}"


def percent(value: object, *, sign: bool = False) -> str:
    """Show a fraction as a percentage with one decimal: ``0.25`` prints ``25.0%``.

    Parameters
    ----------
    value : float or None
        A fraction (0–1), not a percentage.
    sign : bool, default=False
        Always print the sign (``+2.5%``), for changes.

    Returns
    -------
    str

    Examples
    --------
    >>> percent(0.25), percent(-0.025, sign=True), percent(None)
    ('25.0%', '-2.5%', 'n/a')
    """
    return fixed(None if is_missing(value) else float(value), "+.1%" if sign else ".1%")


def money(value: object) -> str:
    """Show an amount with two decimals and thousands separators: ``1,234.50``.

    Examples
    --------
    >>> money(1234.5), money(None)
    ('1,234.50', 'n/a')
    """
    return decimal(value, 2)


def decimal(value: object, digits: int = 1) -> str:
    """Show a number with ``digits`` decimals and thousands separators: ``1,234.5``.

    Examples
    --------
    >>> decimal(1234.56), decimal(1.5, 2)
    ('1,234.6', '1.50')
    """
    return MISSING if is_missing(value) else f"{float(value):,.{digits}f}"


def number(value: object) -> str:
    """Show whole numbers as :func:`integer`, other floats as :func:`decimal`, text as is.

    Examples
    --------
    >>> number(1200.0), number(2.25), number("all"), number(None)
    ('1,200', '2.2', 'all', 'n/a')
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return MISSING if value is None else str(value)
    if is_missing(value):
        return MISSING
    return integer(value) if float(value).is_integer() else decimal(value)


def listing(value: object) -> str:
    """Show a list as ``a, b, c``, a scalar as text.

    Examples
    --------
    >>> listing(["email", "sms"]), listing("email"), listing(None)
    ('email, sms', 'email', 'n/a')
    """
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(str(v) for v in value)
    return MISSING if is_missing(value) else str(value)
