"""Customer-id and email normalisation: one definition for every reader and writer.

The transaction loader, the CRM inputs, suppression lists, consent and the ESP exports all
compare people through these functions, so an id or an address written one way in one
file matches the same person written another way in another.
"""

from __future__ import annotations

import re

import pandas as pd

__all__ = ["is_valid_email", "normalize_customer_id", "normalize_email"]

_MAX_EMAIL_LENGTH = 254
# Characters never accepted in an address by the pragmatic check: whitespace and
# control characters, list separators (comma, semicolon), double quotes, angle
# brackets, backslash.
_BAD = r"\s\x00-\x1f\x7f,;\"<>\\"
_EMAIL_RE = re.compile(rf"[^@{_BAD}]+@[^@.{_BAD}]+(?:\.[^@.{_BAD}]+)+")
_FLOAT_ID_RE = r"^([0-9]+)\.0+$"


def normalize_email(series: pd.Series) -> pd.Series:
    """Normalize email addresses for matching: trimmed, NFC, lower-cased.

    Parameters
    ----------
    series : Series
        Addresses as text; missing values stay missing.

    Returns
    -------
    Series
        Same index, pandas' string dtype; empty or blank values become missing.

    Examples
    --------
    >>> import pandas as pd
    >>> normalize_email(pd.Series(["  Ann@Example.COM ", "", None])).tolist()
    ['ann@example.com', nan, nan]
    """
    text = series.astype("str").str.normalize("NFC").str.strip().str.lower()
    return text.mask(text == "")


def is_valid_email(series: pd.Series) -> pd.Series:
    """Check addresses with a pragmatic syntactic rule (no network look-up, no dependency).

    The address, as :func:`normalize_email` writes it, is valid when it

    * has exactly one ``@`` with a non-empty local part before it;
    * has a dotted domain after it: at least two labels, none empty
      (``a@example.com``; not ``a@localhost``, ``a@.com``, ``a@example..com``);
    * contains no whitespace or control character, comma, semicolon, double quote,
      angle bracket or backslash (signs of two addresses in one cell, or of a
      display name such as ``"Ann" <ann@example.com>``);
    * is at most 254 characters long (RFC 5321's limit for a path).

    Apostrophes are accepted (``o'neil@example.com`` is a real address). This is a
    filter against typing and pasting mistakes, not a proof of deliverability.

    Parameters
    ----------
    series : Series
        Addresses as text.

    Returns
    -------
    Series
        Boolean, same index; missing values are ``False``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.Series([" Ann@Example.com", "a@localhost", "a b@x.org", "a@x.org,b@y.org",
    ...                "o'neil@example.ie", None])
    >>> is_valid_email(s).tolist()
    [True, False, False, False, True, False]
    """
    norm = normalize_email(series)
    ok = norm.str.fullmatch(_EMAIL_RE) & (norm.str.len() <= _MAX_EMAIL_LENGTH)
    return ok.fillna(False).astype(bool)


def normalize_customer_id(series: pd.Series) -> pd.Series:
    """Normalize customer ids the way the transaction loader does.

    Surrounding whitespace removed, Unicode NFC, spreadsheet floats ``17850.0`` read
    as ``17850``; leading zeros kept; empty values become missing.

    Parameters
    ----------
    series : Series
        Ids as text (or numbers).

    Returns
    -------
    Series
        Same index, pandas' string dtype.

    Examples
    --------
    >>> import pandas as pd
    >>> normalize_customer_id(pd.Series([" 17850.0", "00123", "", None])).tolist()
    ['17850', '00123', nan, nan]
    """
    text = series.astype("str").str.normalize("NFC").str.strip()
    text = text.str.replace(_FLOAT_ID_RE, r"\1", regex=True)
    return text.mask(text == "")
