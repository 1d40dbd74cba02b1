"""Customer-id and email normalisation: one definition for every reader and writer.

The transaction loader, the CRM inputs, suppression lists, consent and the ESP exports all
compare people through these functions, so an id or an address written one way in one
file matches the same person written another way in another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ASCII_LOCAL_PART_LAYOUTS", "is_valid_email", "normalize_customer_id",
           "normalize_email", "nfc_text"]

_MAX_EMAIL_LENGTH = 254
#: Python's whitespace (the characters whose ``str.isspace()`` is true), spelled out: the
#: pattern runs in Arrow's RE2 engine, whose ``\s`` is ASCII only, and must mean the same
#: as Python's (tests/test_suppression.py checks the list against ``str.isspace``).
_SPACE = ("\x09\x0a\x0b\x0c\x0d\x1c\x1d\x1e\x1f\x20\u0085\u00a0\u1680"
          "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
          "\u2028\u2029\u202f\u205f\u3000")
# Characters never accepted in an address by the pragmatic check: whitespace and
# control characters, list separators (comma, semicolon), double quotes, angle
# brackets, backslash.
_BAD = _SPACE + r"\x00-\x1f\x7f,;\"<>\\"
#: A pattern string (not compiled): pandas runs it in Arrow's RE2 engine, vectorised, where a
#: compiled pattern would run in Python, cell by cell. It means the same in both engines.
_EMAIL_RE = rf"[^@{_BAD}]+@[^@.{_BAD}]+(?:\.[^@.{_BAD}]+)+"
_FLOAT_ID_RE = r"^([0-9]+)\.0+$"
#: Layouts whose tool refuses non-ASCII characters before the ``@``. Mailchimp: "we cannot
#: process UTF-8 characters in your subscribers' email address prefixes" (it blocks
#: ``direccionelectrónica@domain.com`` but accepts ``test@ñoñó1234.com``), help page
#: https://mailchimp.com/help/international-characters-in-mailchimp/. Klaviyo, HubSpot and
#: Braze document no such rule in their import help (checked 2026-12): they keep the
#: pragmatic rule alone.
ASCII_LOCAL_PART_LAYOUTS = ("mailchimp",)
_ASCII_LOCAL_RE = r"[\x21-\x7e]+@.*"


def nfc_text(series: pd.Series) -> pd.Series:
    """Return ``series`` as text in Unicode NFC, stripped of surrounding whitespace.

    Missing values stay missing; numbers become their text. ASCII text is NFC already, so
    only the other values go through Python's ``unicodedata`` (pandas' ``str.normalize``
    calls Python once per value: seconds at a million ids). Arrow's own ``utf8_normalize``
    is not used: in pyarrow 25 its "NFC" does not compose (``U`` + combining grave stays
    two characters), where Python and DuckDB's ``nfc_normalize`` give ``Ù``.

    Examples
    --------
    >>> import pandas as pd
    >>> nfc_text(pd.Series([" Zoe\u0308 ", None, 17])).tolist()
    ['Zoë', nan, '17']
    """
    import unicodedata

    import pyarrow as pa
    import pyarrow.compute as pc

    text = series.astype("str")
    other = pc.invert(pc.fill_null(pc.string_is_ascii(pa.array(text.array)), True))
    if pc.any(other).as_py():
        rows = np.flatnonzero(other.to_numpy(zero_copy_only=False))
        text = text.copy()
        text.iloc[rows] = [unicodedata.normalize("NFC", v) for v in text.iloc[rows]]
    return text.str.strip()


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
    text = nfc_text(series).str.lower()
    return text.mask(text == "")


def is_valid_email(series: pd.Series, layout: str | None = None) -> pd.Series:
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

    With ``layout``, the email tool's own rule applies on top: for the layouts of
    :data:`ASCII_LOCAL_PART_LAYOUTS` (``mailchimp``) the part before the ``@`` must be
    ASCII (``zoë@example.com`` is refused; ``zoe@exämple.com`` is accepted).

    Parameters
    ----------
    series : Series
        Addresses as text.
    layout : str, optional
        The export layout the addresses are meant for (``generic``, ``mailchimp``, ...);
        default: the pragmatic rule alone.

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
    >>> s = pd.Series(["zoë@example.com", "zoe@exämple.com"])
    >>> is_valid_email(s).tolist(), is_valid_email(s, "mailchimp").tolist()
    ([True, True], [False, True])
    """
    norm = normalize_email(series)
    ok = norm.str.fullmatch(_EMAIL_RE) & (norm.str.len() <= _MAX_EMAIL_LENGTH)
    if layout in ASCII_LOCAL_PART_LAYOUTS:
        ok &= norm.str.fullmatch(_ASCII_LOCAL_RE)
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
    text = nfc_text(series)
    text = text.str.replace(_FLOAT_ID_RE, r"\1", regex=True)
    return text.mask(text == "")
