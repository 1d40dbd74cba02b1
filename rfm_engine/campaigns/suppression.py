"""Suppression lists: who must never receive a campaign, and the proof that they did not.

Suppression files (unsubscribed, bounced, erased, ...) name people by email address,
by customer id, or both. :func:`load_suppression` reads them into a
:class:`SuppressionList`; :meth:`SuppressionList.mask` marks the customers to drop
before export; :func:`verify_no_suppressed` re-reads every written export file and
fails with :class:`~rfm_engine.errors.ComplianceError` (exit code 4) if a suppressed
person is still in it.

Matching rules
--------------
* Emails are compared after :func:`normalize_email`: surrounding whitespace removed,
  Unicode NFC, lower-cased. ``" Ann@Example.COM"`` and ``"ann@example.com"`` are
  the same person. (Lower-casing the local part is not what RFC 5321 promises, but
  it is what every email tool does when it deduplicates, and it errs on the side of
  suppressing.)
* Customer ids are compared the way the transaction loader writes them: surrounding
  whitespace removed, Unicode NFC, spreadsheet floats ``"17850.0"`` read as
  ``"17850"``; leading zeros are kept.
* A customer is suppressed if the id **or** the email matches.

Freshness
---------
A suppression file is an export of the email tool's opt-outs; an old export misses the
people who opted out since. CAN-SPAM (US) and CASL (Canada) give 10 business days to honour
an opt-out. The age of a file is the wall clock at the run minus the file's modification
time (what a scheduler's export sets), in days; :func:`load_suppression` records it per file
and :func:`check_freshness` refuses files older than a limit (7 days by default in the weekly
run). This is the one place the engine reads the wall clock: results depend on ``as_of``
only, but freshness is about the real world at send time. Copying a file with its times kept
(``cp -p``, ``rsync -t``) keeps its age; ``touch`` would hide it, so the export step should
write the file, not the run's wrapper.

Privacy: nothing in this module logs or prints an email address. Errors name files,
rows, columns and counts only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ComplianceError, ConfigError, InputError
from ..io._validation import is_int
from ..io.identifiers import is_valid_email, normalize_customer_id, normalize_email

__all__ = [
    "EMAIL_ALIASES",
    "ID_ALIASES",
    "SuppressionList",
    "check_freshness",
    "email_ids",
    "is_valid_email",
    "load_suppression",
    "normalize_customer_id",
    "normalize_email",
    "verify_no_suppressed",
]

#: Header names (case-insensitive; ``_`` read as a space) taken as the email column.
EMAIL_ALIASES = ("email", "email address", "e-mail", "e-mail address")
#: Header names (case-insensitive; ``_`` read as a space) taken as the customer id column.
ID_ALIASES = ("customer id", "external id", "id")
#: Email column headers of the export layouts (see :mod:`rfm_engine.campaigns.exports`).
EXPORT_EMAIL_COLUMNS = ("Email Address", "Email", "email")
#: Customer id column headers of the export layouts.
EXPORT_ID_COLUMNS = ("customer_id", "external_id")

def _looks_like_email(name: object) -> bool:
    return "@" in str(name)


def _safe_names(columns: Iterable[object]) -> str:
    # A header-less file has an address as its "header": never echo it.
    return ", ".join("<an email address>" if _looks_like_email(c) else repr(str(c))
                     for c in columns)


class SuppressionList:
    """The people who must not receive a campaign, by normalized email and customer id.

    Build it with :func:`load_suppression`, or directly from values.

    Parameters
    ----------
    emails : iterable of str, default=()
        Addresses; normalized with :func:`normalize_email`.
    customer_ids : iterable of str, default=()
        Customer ids; normalized like the transaction loader does.
    sources : list of dict, default=()
        One ``{"path", "sha256", "rows", "emails", "ids", "modified", "age_days"}`` record
        per file read.

    Attributes
    ----------
    emails : frozenset of str
        Normalized suppressed addresses.
    customer_ids : frozenset of str
        Normalized suppressed customer ids.
    sources : list of dict
        What was read, for the run manifest (no addresses).

    Examples
    --------
    >>> import pandas as pd
    >>> sup = SuppressionList(emails=[" Bob@Example.com"], customer_ids=["17850.0"])
    >>> len(sup)
    2
    >>> customers = pd.DataFrame({"customer_id": ["17850", "a", "b"],
    ...                           "email": ["x@example.com", "bob@example.com", None]})
    >>> sup.mask(customers).tolist()
    [True, True, False]
    """

    def __init__(
        self,
        emails: Iterable[str] = (),
        customer_ids: Iterable[str] = (),
        sources: Iterable[dict] = (),
    ) -> None:
        self.emails = frozenset(normalize_email(pd.Series(list(emails), dtype="str")).dropna())
        self.customer_ids = frozenset(
            normalize_customer_id(pd.Series(list(customer_ids), dtype="str")).dropna()
        )
        self.sources = list(sources)

    @classmethod
    def empty(cls) -> SuppressionList:
        """Return a list that suppresses nobody (for runs waived on purpose).

        Examples
        --------
        >>> len(SuppressionList.empty()), SuppressionList.empty().sources
        (0, [])
        """
        return cls()

    def __len__(self) -> int:
        """Return the number of distinct suppressed emails plus distinct customer ids."""
        return len(self.emails) + len(self.customer_ids)

    def __repr__(self) -> str:
        return (f"SuppressionList(emails={len(self.emails)}, "
                f"customer_ids={len(self.customer_ids)}, files={len(self.sources)})")

    @property
    def counts(self) -> dict:
        """Counts for the run report: distinct emails and ids, and per source file.

        Returns
        -------
        dict
            ``{"emails": int, "ids": int, "files": {path: {"rows", "emails", "ids"}}}``.

        Examples
        --------
        >>> SuppressionList(emails=["a@x.org", "A@x.org"], customer_ids=["7"]).counts
        {'emails': 1, 'ids': 1, 'files': {}}
        """
        files = {s["path"]: {k: s[k] for k in ("rows", "emails", "ids")} for s in self.sources}
        return {"emails": len(self.emails), "ids": len(self.customer_ids), "files": files}

    def mask(self, customers: pd.DataFrame) -> np.ndarray:
        """Mark the suppressed rows of a customer table.

        Parameters
        ----------
        customers : DataFrame
            With ``customer_id``, ``email`` or both; missing values never match.

        Returns
        -------
        ndarray of bool
            ``True`` where the row's customer id or normalized email is suppressed.

        Raises
        ------
        InputError
            If the table has neither a ``customer_id`` nor an ``email`` column.
        """
        if "customer_id" not in customers and "email" not in customers:
            raise InputError(
                "Cannot apply the suppression list: the table has neither a 'customer_id' "
                f"nor an 'email' column; available: {_safe_names(customers.columns)}."
            )
        hit = np.zeros(len(customers), dtype=bool)
        if "customer_id" in customers and self.customer_ids:
            ids = normalize_customer_id(customers["customer_id"])
            hit |= ids.isin(self.customer_ids).to_numpy(dtype=bool)
        if "email" in customers and self.emails:
            emails = normalize_email(customers["email"])
            hit |= emails.isin(self.emails).to_numpy(dtype=bool)
        return hit


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = raw[: exc.start].count(b"\n")  # lines before the bad byte = 1-based data row
        raise InputError(
            f"{path}, row {row}: not UTF-8 text (byte {exc.start}). "
            "Save the suppression file as UTF-8 (CSV UTF-8 in Excel)."
        ) from None


def _sniff(text: str) -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # one column: no delimiter to find


def _header_key(name: object) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())


def _find(path: Path, columns: list[str], aliases: tuple[str, ...], what: str) -> str | None:
    found = [c for c in columns if _header_key(c) in aliases]
    if len(found) > 1:
        raise InputError(f"{path}: several {what} columns ({_safe_names(found)}); keep one.")
    return found[0] if found else None


def _read_csv(path: Path, text: str) -> tuple[pd.Series, pd.Series, int]:
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_sniff(text), dtype=str,
                            keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc}).") from None
    columns = [str(c) for c in frame.columns]
    email_col = _find(path, columns, EMAIL_ALIASES, "email")
    id_col = _find(path, columns, ID_ALIASES, "customer id")
    if email_col is None and id_col is None:
        raise InputError(
            f"{path}: no email or customer id column. Looked for {', '.join(EMAIL_ALIASES)} "
            f"or customer_id ({', '.join(ID_ALIASES)}), case-insensitive; available: "
            f"{_safe_names(columns)}. A plain list of addresses without a header must be "
            "a .txt file, one address per line."
        )
    empty = pd.Series([], dtype="str")
    emails = frame[email_col] if email_col is not None else empty
    ids = frame[id_col] if id_col is not None else empty
    return emails, ids, len(frame)


def _read_txt(text: str) -> tuple[pd.Series, pd.Series, int]:
    lines = [line for line in text.splitlines() if line.strip()]
    return pd.Series(lines, dtype="str"), pd.Series([], dtype="str"), len(lines)


def load_suppression(paths: Iterable[str | os.PathLike], *,
                     now: float | None = None) -> SuppressionList:
    r"""Read suppression files into one :class:`SuppressionList`.

    Parameters
    ----------
    paths : iterable of path
        CSV files (UTF-8 with or without BOM; delimiter ``,``, ``;``, tab or ``|``,
        sniffed) with a header naming an email column (``email``, ``Email Address``,
        ``e-mail``, ...), a customer id column (``customer_id``, ``Customer ID``,
        ``external_id``, ``id``), or both, found case-insensitively; other columns
        (such as ``reason``) are ignored. A ``.txt`` file is a plain list, one address
        per line, no header; blank lines are skipped.
    now : float, optional
        The wall clock (seconds since the epoch) that file ages are measured against
        (default: :func:`time.time`).

    Returns
    -------
    SuppressionList
        The union of all files, with one ``sources`` record (path, SHA-256, rows,
        distinct emails, distinct ids, ``modified``: the file's modification time in UTC,
        ISO 8601, and ``age_days``: days from it to ``now``, 2 decimals) per file.

    Raises
    ------
    InputError
        If a file is missing, empty, not UTF-8, not parseable, or has neither an
        email nor a customer id column (the message lists the available columns).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "unsub.csv").write_text("Email Address;Reason\nAnn@Example.com;unsub\n")
    >>> _ = (folder / "erased.txt").write_text("bob@example.com\n\n")
    >>> sup = load_suppression([folder / "unsub.csv", folder / "erased.txt"])
    >>> sup.counts["emails"], [s["rows"] for s in sup.sources]
    (2, [1, 1])
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    emails: list[str] = []
    ids: list[str] = []
    sources: list[dict] = []
    clock = time.time() if now is None else now
    for item in paths:
        path = Path(item)
        try:
            modified = path.stat().st_mtime
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"Suppression file {path} does not exist.") from None
        except IsADirectoryError:
            raise InputError(f"Suppression file {path} is a folder, not a file.") from None
        text = _decode(path, raw)
        if not text.strip():
            raise InputError(f"Suppression file {path} is empty.")
        if path.suffix.lower() == ".txt":
            file_emails, file_ids, rows = _read_txt(text)
        else:
            file_emails, file_ids, rows = _read_csv(path, text)
        file_emails = normalize_email(file_emails).dropna()
        file_ids = normalize_customer_id(file_ids).dropna()
        emails.extend(file_emails)
        ids.extend(file_ids)
        sources.append({
            "path": str(path),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "rows": rows,
            "emails": int(file_emails.nunique()),
            "ids": int(file_ids.nunique()),
            "modified": datetime.fromtimestamp(modified, UTC).isoformat(timespec="seconds"),
            "age_days": round((clock - modified) / _DAY, 2),
        })
    return SuppressionList(emails, ids, sources)


_DAY = 86_400.0


def check_freshness(suppression: SuppressionList, max_age_days: int, *,
                    allow_stale: bool = False) -> list[str]:
    """Refuse suppression files older than ``max_age_days`` (exit code 4).

    A file is stale when its ``age_days`` (see :func:`load_suppression`) is more than
    ``max_age_days``: with the default 7, a weekly export passes and an export skipped for
    a week does not. A file modified in the future (clock skew) counts as fresh.

    Parameters
    ----------
    suppression : SuppressionList
        From :func:`load_suppression`.
    max_age_days : int
        The limit in days, >= 1.
    allow_stale : bool, default=False
        Use stale files anyway: each gives a warning instead of an error.

    Returns
    -------
    list of str
        One warning per stale file (only when ``allow_stale``).

    Raises
    ------
    ComplianceError
        Naming the first stale file, its age and the limit, when ``allow_stale`` is false.
    ConfigError
        When ``max_age_days`` is not an int >= 1.

    Examples
    --------
    >>> sup = SuppressionList(sources=[{"path": "unsub.csv", "age_days": 9.5}])
    >>> check_freshness(sup, 10)
    []
    >>> check_freshness(sup, 7, allow_stale=True)  # doctest: +ELLIPSIS
    ['suppression file unsub.csv is 9.5 days old (limit 7 days); used anyway ...']
    >>> check_freshness(sup, 7)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ComplianceError: Suppression file unsub.csv is 9.5 days old ...
    """
    if not is_int(max_age_days) or max_age_days < 1:
        raise ConfigError("The 'max_suppression_age_days' setting must be an int >= 1. "
                          f"Got {max_age_days!r} instead.")
    warnings = []
    for source in suppression.sources:
        age = source.get("age_days")
        if age is None or age <= max_age_days:
            continue
        if not allow_stale:
            raise ComplianceError(
                f"Suppression file {source['path']} is {age:g} days old (modified "
                f"{source.get('modified', '?')}), older than the limit of {max_age_days} "
                "days: it may miss recent opt-outs (CAN-SPAM and CASL give 10 business days "
                "to honour one). Export it again, or pass --allow-stale-suppression "
                "(or raise --max-suppression-age-days) on purpose. Nothing was written."
            )
        warnings.append(f"suppression file {source['path']} is {age:g} days old (limit "
                        f"{max_age_days} days); used anyway (--allow-stale-suppression).")
    return warnings


def email_ids(table: pd.DataFrame, mask: np.ndarray) -> dict[str, list[str]]:
    """Map normalized email to customer ids, for the rows of ``table`` under ``mask``.

    :func:`verify_no_suppressed` needs it for lists without an id column (Mailchimp): a
    person suppressed by id only is found there through their address. Map only the
    customers a check looks for (suppressed by id, or without consent), never the whole
    table: the check counts the ids of a list's addresses that are on the list it checks
    against, and other ids count zero.

    Parameters
    ----------
    table : DataFrame
        With ``email`` (normalized) and ``customer_id``.
    mask : ndarray of bool
        The rows to map.

    Returns
    -------
    dict
        Email to the customer ids that carry it; rows without an email are left out.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"customer_id": ["a", "b", "c"],
    ...                       "email": ["x@y.org", "x@y.org", None]})
    >>> email_ids(table, np.array([True, True, True]))
    {'x@y.org': ['a', 'b']}
    """
    found: dict[str, list[str]] = {}
    rows = table.loc[mask, ["email", "customer_id"]].dropna(subset=["email"])
    for email, customer in zip(rows["email"], rows["customer_id"], strict=True):
        found.setdefault(email, []).append(customer)
    return found


def _export_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {c.lower(): c for c in reversed(columns)}
    for name in candidates:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def verify_no_suppressed(paths: Iterable[str | os.PathLike],
                         suppression: SuppressionList, *,
                         email_ids: Mapping[str, Iterable[str]] | None = None,
                         check: str = "suppression") -> None:
    r"""Re-read written export files and prove none of them holds a suppressed person.

    Each file is read back from disk (any layout of :mod:`rfm_engine.campaigns.exports`): the
    email column is the first of ``Email Address``, ``Email``, ``email`` present and
    the id column the first of ``customer_id``, ``external_id``; a file with neither
    cannot be checked and fails too.

    Parameters
    ----------
    paths : iterable of path
        The written CSV files.
    suppression : SuppressionList
        The list the exports were filtered with.
    email_ids : Mapping, optional
        Normalized email to the customer ids that carry it. Layouts without an id
        column (Mailchimp) are then also checked against suppressed ids: a person
        suppressed by id only is found through their address.
    check : {"suppression", "consent"}, default="suppression"
        What the message calls the check: ``consent`` re-reads email lists against the
        customers without valid consent (see :mod:`rfm_engine.campaigns.consent`).

    Raises
    ------
    ComplianceError
        Naming every failing file with its count of suppressed rows (never an
        address); exit code 4.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "winback.csv"
    >>> _ = out.write_text("Email Address,First Name\nann@example.com,Ann\n")
    >>> verify_no_suppressed([out], SuppressionList(emails=["bob@example.com"]))
    >>> verify_no_suppressed([out], SuppressionList(emails=["ANN@example.com"]))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ComplianceError: Suppression check failed: ...winback.csv: 1 suppressed ...
    """
    problems: list[str] = []
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for item in paths:
        path = Path(item)
        try:
            header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
        except (OSError, UnicodeDecodeError, pd.errors.ParserError,
                pd.errors.EmptyDataError) as exc:
            problems.append(f"{path}: cannot be read back ({type(exc).__name__})")
            continue
        columns = [str(c) for c in header]
        email_col = _export_column(columns, EXPORT_EMAIL_COLUMNS)
        id_col = _export_column(columns, EXPORT_ID_COLUMNS)
        if email_col is None and id_col is None:
            problems.append(f"{path}: no email or customer id column to check "
                            f"(available: {_safe_names(columns)})")
            continue
        use = [c for c in (email_col, id_col) if c is not None]
        frame = pd.read_csv(path, usecols=use, dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
        frame = frame.rename(columns={email_col: "email", id_col: "customer_id"})
        n = int(suppression.mask(frame).sum())
        if not n and id_col is None and email_ids is not None:
            ids = [i for e in normalize_email(frame["email"]).dropna()
                   for i in email_ids.get(e, ())]
            n = int(suppression.mask(pd.DataFrame({"customer_id": ids})).sum())
        if n:
            what = "suppressed row(s)" if check == "suppression" else "row(s) without consent"
            problems.append(f"{path}: {n} {what}")
    if problems:
        raise ComplianceError(
            f"{check.capitalize()} check failed: " + "; ".join(problems)
            + f". Do not import these files; fix the {check} step and rerun."
        )
