"""Consent to email marketing and objections to profiling: who may be mailed on ``as_of``.

The weekly run's optional consent input (``[output] consent``, ``run --consent FILE``) is a
CSV or Parquet file read by :func:`rfm_engine.io.crm_inputs.read_input` with
:data:`~rfm_engine.io.crm_inputs.CONSENT_SCHEMA` (one-line errors naming file, row, column and
value, like every CRM input). One row per person:

============  ==========================================================================
column        meaning
============  ==========================================================================
customer_id   the customer id (as in the transactions); this and/or ``email`` per row
email         the email address
status        ``granted``, ``withdrawn`` or ``objected``
basis         ``express``, ``implied`` or ``inquiry`` (needed on granted rows; optional
              column)
granted_at    when consent was given (optional; empty: before any run); required on
              granted ``inquiry`` rows: the date of the inquiry
expires_at    first day it no longer holds (optional; empty: no end)
============  ==========================================================================

Matching
--------
A row names a customer by id **or** email, compared exactly as suppression files are
(:func:`rfm_engine.io.identifiers.normalize_customer_id`,
:func:`~rfm_engine.io.identifiers.normalize_email`, through
:class:`~rfm_engine.campaigns.suppression.SuppressionList`). When several rows name one
customer, the most protective wins: ``objected`` over ``withdrawn`` over ``granted``.

Rules on ``as_of``
------------------
* **objected** (GDPR Art. 21, objection to profiling): the customer is removed from the run
  before features, scores and segments, matched by id or by *any* address on their
  transaction lines: their purchases are left out of every per-customer output (features,
  scores, segments, clusters, lists, the KPI report built on the run's transactions). They
  are counted (``counts.consent.objected`` of the manifest); ``quality.json`` still counts
  their lines as read, since it describes the file.
* **withdrawn**: no valid consent: excluded from email lists as ``no_consent``.
* **granted, express**: valid when ``granted_at`` (if given) is on or before ``as_of`` and
  ``expires_at`` (if given) is after it.
* **granted, implied** (CASL's existing business relationship): as express, and valid only
  until the second anniversary of the customer's **last purchase** (the ``last_purchase``
  of the customer table): on that day and after, it has expired.
* **granted, inquiry** (CASL s. 10(10)(d): the person's inquiry or application about a
  product, valid for six months after it): ``granted_at`` is the inquiry date and is
  required (a one-line error names the file, row and column otherwise). Valid from
  ``granted_at`` until six calendar months after it (:data:`INQUIRY_CONSENT_MONTHS`): on
  that day and after, it has expired (an inquiry of 2025-01-15 is valid through
  2025-07-14; one of 2025-08-31 through 2026-02-27, the day before 2026-02-28). An
  ``expires_at`` that comes earlier ends it earlier.
* **no row**: with ``consent_required=True`` (the default) no recorded consent means
  ``no_consent``; with ``False`` the file lists only exceptions, and customers without a row
  are mailed as without a consent file (the law of an opt-out regime such as CAN-SPAM).

Consent applies to **email** campaigns; push and SMS lists are not filtered by it (objected
customers are in no list at all). Without a consent file nothing changes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import DataError, InputError
from ..io.manifest import file_entry
from .suppression import SuppressionList

if TYPE_CHECKING:
    from ..io.loading import Transactions

__all__ = ["IMPLIED_CONSENT_YEARS", "INQUIRY_CONSENT_MONTHS", "ConsentList", "load_consent"]

#: Years implied consent lasts after the customer's last purchase (CASL s. 10(10)).
IMPLIED_CONSENT_YEARS = 2
#: Months implied consent from an inquiry or application lasts after it (CASL s. 10(10)(d)).
INQUIRY_CONSENT_MONTHS = 6


def _people(rows: pd.DataFrame) -> SuppressionList:
    """Return the people named by ``rows`` (ids and emails), as a matcher."""
    ids = rows["customer_id"].dropna() if "customer_id" in rows else ()
    emails = rows["email"].dropna() if "email" in rows else ()
    return SuppressionList(emails=emails, customer_ids=ids)


@dataclass
class ConsentList:
    """The validated consent rows, and the rules of the module docs.

    Parameters
    ----------
    frame : DataFrame
        Canonical columns of :data:`rfm_engine.io.crm_inputs.CONSENT_SCHEMA` (``customer_id``
        and/or ``email``, ``status``; optional ``basis``, ``granted_at``, ``expires_at``;
        ``granted_at`` set on granted ``inquiry`` rows, as :func:`load_consent` checks).
    required : bool, default=True
        Customers without a row have no consent.
    source : dict, optional
        The file's manifest entry (path, bytes, sha256, rows).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
    ...                      "status": ["granted", "granted", "withdrawn", "objected"],
    ...                      "basis": ["express", "implied", None, None]})
    >>> consent = ConsentList(rows)
    >>> customers = pd.DataFrame({
    ...     "customer_id": ["a", "b", "c", "e"],
    ...     "last_purchase": pd.to_datetime(["2020-01-01", "2023-06-30", "2025-01-01",
    ...                                      "2025-01-01"])})
    >>> consent.valid(customers, as_of="2025-06-30").tolist()
    [True, False, False, False]
    >>> ConsentList(rows, required=False).valid(customers, as_of="2025-06-29").tolist()
    [True, True, False, True]
    """

    frame: pd.DataFrame
    required: bool = True
    source: dict | None = None

    def _rows(self, status: str, basis: str | None = None) -> pd.DataFrame:
        rows = self.frame[self.frame["status"] == status]
        if basis is not None:
            rows = rows[rows["basis"] == basis] if "basis" in rows else rows.iloc[:0]
        return rows

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status, for the manifest: ``{"rows", "granted", "withdrawn", "objected"}``."""
        by = self.frame["status"].value_counts()
        return {"rows": len(self.frame),
                **{s: int(by.get(s, 0)) for s in ("granted", "withdrawn", "objected")}}

    def objected(self, customers: pd.DataFrame) -> np.ndarray:
        """Mark the customers who objected to profiling (by id or email).

        Parameters
        ----------
        customers : DataFrame
            With ``customer_id``, ``email`` or both (several rows per customer are fine).

        Returns
        -------
        ndarray of bool
        """
        return _people(self._rows("objected")).mask(customers)

    def valid(self, customers: pd.DataFrame, as_of: dt.date | str) -> np.ndarray:
        """Mark the customers with valid email consent on ``as_of``.

        Parameters
        ----------
        customers : DataFrame
            One row per customer: ``customer_id`` and/or ``email``; ``last_purchase``
            (dates) when a row has implied consent.
        as_of : date or str
            The run date.

        Returns
        -------
        ndarray of bool
        """
        day = pd.Timestamp(as_of).normalize()
        granted = self._rows("granted")
        in_force = pd.Series(True, index=granted.index)
        if "granted_at" in granted:
            in_force &= ~(granted["granted_at"].dt.normalize() > day)
        if "expires_at" in granted:
            in_force &= ~(granted["expires_at"].dt.normalize() <= day)
        granted = granted[in_force.to_numpy(dtype=bool)]
        basis = granted["basis"] if "basis" in granted else pd.Series(index=granted.index)
        express = _people(granted[(basis == "express").to_numpy(dtype=bool)]).mask(customers)
        inquiry = granted[(basis == "inquiry").to_numpy(dtype=bool)]
        inquired = np.zeros(len(customers), dtype=bool)
        if len(inquiry):
            if "granted_at" not in inquiry or inquiry["granted_at"].isna().any():
                raise InputError("Consent basis 'inquiry' needs its granted_at date (the "
                                 "inquiry date).")
            ends = (inquiry["granted_at"].dt.normalize()
                    + pd.DateOffset(months=INQUIRY_CONSENT_MONTHS))
            inquired = _people(inquiry[(day < ends).to_numpy(dtype=bool)]).mask(customers)
        implied = _people(granted[(basis == "implied").to_numpy(dtype=bool)]).mask(customers)
        if implied.any():
            if "last_purchase" not in customers:
                raise InputError("Implied consent needs the customers' 'last_purchase' column.")
            last = pd.to_datetime(customers["last_purchase"]).dt.normalize()
            ends = last + pd.DateOffset(years=IMPLIED_CONSENT_YEARS)
            implied &= (day < ends).to_numpy(dtype=bool)
        blocked = (_people(self._rows("withdrawn")).mask(customers)
                   | _people(self._rows("objected")).mask(customers))
        ok = express | implied | inquired
        if not self.required:
            ok |= ~_people(self.frame).mask(customers)
        return ok & ~blocked

    def objected_ids(self, people: pd.DataFrame) -> list[str]:
        """Return the ids of ``people`` who objected to profiling (by id or email), sorted.

        Parameters
        ----------
        people : DataFrame
            ``customer_id`` (and ``email``, normalized or not): the customers of the
            transactions, such as their distinct ids and addresses.

        Returns
        -------
        list of str
        """
        if not len(self._rows("objected")):
            return []
        return sorted(set(people.loc[self.objected(people), "customer_id"]))

    def remove_objected(self, tx: Transactions) -> list[str]:
        """Leave the customers who objected to profiling out of ``tx``'s transactions.

        The ``transactions`` view of ``tx.con`` is redefined without their lines, so every
        later step (features, scores, KPIs) never sees them.

        Parameters
        ----------
        tx : Transactions
            From :func:`rfm_engine.load_transactions`.

        Returns
        -------
        list of str
            The removed customer ids, sorted.
        """
        if not len(self._rows("objected")):
            return []
        email = ", email" if "email" in tx.columns else ""
        removed = self.objected_ids(tx.con.execute(
            f"SELECT DISTINCT customer_id{email} FROM transactions").df())
        if removed:
            con = tx.con
            con.execute("CREATE OR REPLACE TEMP TABLE objected_customers (customer_id VARCHAR)")
            con.executemany("INSERT INTO objected_customers VALUES (?)",
                            [[i] for i in removed])
            con.execute("ALTER VIEW transactions RENAME TO transactions_with_objected")
            con.execute("CREATE TEMP VIEW transactions AS SELECT * FROM "
                        "transactions_with_objected WHERE customer_id NOT IN "
                        "(SELECT customer_id FROM objected_customers)")
        return removed


def load_consent(path: str | os.PathLike, *, required: bool = True) -> ConsentList:
    r"""Read and validate a consent file.

    Parameters
    ----------
    path : str or path
        CSV or Parquet (see the module docs for the columns).
    required : bool, default=True
        Customers without a row have no consent (see :class:`ConsentList`).

    Returns
    -------
    ConsentList

    Raises
    ------
    DataError
        A malformed value: file, row, column, value (never an address) and expectation.
    MissingColumnsError
        No ``status`` column, or neither ``customer_id`` nor ``email``.
    InputError
        The file does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "consent.csv"
    >>> _ = path.write_text("email,status,basis\nann@example.com,granted,express\n"
    ...                     "bob@example.com,granted,\n")
    >>> load_consent(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rfm_engine.errors.DataError: ...consent.csv, row 2, column 'basis': got an empty value, ...
    """
    from ..io.crm_inputs import read_input

    path = Path(path)
    if not path.exists():
        raise InputError(f"Consent file {path} does not exist.")
    try:
        table = read_input("consent", path)
    except DataError as exc:  # no "drop bad rows" here: a dropped withdrawal would be mailed
        raise DataError(exc.source, exc.row, exc.column, exc.value, exc.expected,
                        "Fix the consent file (dates ISO 8601); its rows are never dropped."
                        ) from None
    source = (file_entry(path, rows=table.rows_read) if path.is_file()
              else {"path": str(path), "rows": table.rows_read})
    return ConsentList(table.frame, required=required, source=source)
