"""Optional CRM inputs: their schemas and reading (the KPIs: ``measurement.crm_kpis``).

Six optional tables feed the KPIs that transactions alone cannot give: marketing costs,
survey answers, support tickets, leads, subscriptions and email events. Each has a schema in
:data:`INPUT_SCHEMAS` (canonical column -> :class:`Field`) and is read by
:func:`read_input`, one validation engine driven by those schemas, with the error rules of
the transaction loader:

- a CSV file, a Parquet file or folder, or a DataFrame (never modified); CSV and Parquet are
  opened exactly as transactions are (:func:`rfm_engine.io.sources.open_source`: delimiter
  sniffed, UTF-8 with or without BOM);
- ``columns={canonical: source column}`` maps other names; unmapped canonical columns are
  looked up under their own name; columns outside the schema are ignored;
- missing columns raise one :class:`~rfm_engine.errors.MissingColumnsError` listing the
  missing and the available ones;
- a malformed value stops the read with one :class:`~rfm_engine.errors.DataError` naming the
  file, the 1-based data row (header not counted), the column as named in the source, the
  value and what was expected: the first such value in row order. With
  ``on_bad_rows="drop"`` such rows are dropped and counted per column instead, and the read
  fails when more than ``max_drop_fraction`` of the rows would go;
- dates are ISO 8601 (``2024-03-05``, ``2024-03-05 14:30:00``,
  ``2024-03-05T14:30:00+01:00``) or follow an explicit ``date_format``; offsets are
  converted to UTC and dropped; day/month order is never guessed;
- ids are text: surrounding spaces stripped, Unicode NFC, spreadsheet floats ``17850.0``
  read as ``17850``, leading zeros kept (as
  :func:`rfm_engine.io.identifiers.normalize_customer_id`);
- an email value is never shown: errors say ``<an email address>`` instead.

Schemas
-------
Required columns must be present; optional ones may be absent. "Empty ok" columns may hold
empty cells; every other cell must hold a valid value. Columns marked *key* identify a row:
a repeated key is an error (in drop mode later repeats are dropped).

``costs``: ``period`` (month ``YYYY-MM``, quarter ``YYYY-Qn`` or a date for a one-day
period; one kind per file), ``channel`` (optional text, empty ok), ``costs`` (number >= 0:
marketing and sales spend of the period).

``surveys``: ``response_id`` (key), ``customer_id`` (optional, empty ok), ``date``,
``survey`` (``nps``, ``csat`` or ``ces``), ``score`` (integer: NPS 0-10, CSAT 1-5, CES 1-7,
checked per survey type).

``tickets``: ``ticket_id`` (key), ``customer_id``, ``opened_at``, ``resolved_at`` (optional,
empty while open, not before ``opened_at``), and at least one of ``contacts`` (integer >= 1,
contacts until resolution, empty ok) and ``resolved_first_contact`` (boolean, empty ok). A
resolved ticket needs one of them; when both are given they must agree (true only with 1
contact).

``leads``: ``lead_id`` (key), ``created_at``, ``won_at`` and ``lost_at`` (optional, empty
ok, not before ``created_at``, never both set), ``customer_id`` (optional, empty ok).

``subscriptions``: ``subscription_id`` and ``period_end`` (key together: one row per term),
``customer_id``, ``renewed`` (boolean; empty while the outcome is not known yet).

``email_events``: ``campaign``, at least one of ``customer_id`` and ``email`` (every row
needs one: the recipient), ``event`` (``delivered``, ``open``, ``click``, ``bounce``,
``spam_complaint``, ``unsubscribe``), ``timestamp``.

``consent`` (the weekly run's consent input, :data:`CONSENT_SCHEMA`, not a KPI input): at
least one of ``customer_id`` and ``email`` (every row needs one; the pair is the key),
``status`` (``granted``, ``withdrawn``, ``objected``), ``basis`` (``express``,
``implied`` or ``inquiry``; optional column, needed on granted rows), ``granted_at`` and
``expires_at`` (optional, empty ok, expiry not before the grant; ``granted_at`` is required
on granted ``inquiry`` rows: the inquiry date). See :mod:`rfm_engine.campaigns.consent`.

Booleans are ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``t``/``f``, ``y``/``n``
(any case). Choices are compared trimmed and lower-cased.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, InputError, MissingColumnsError
from ._validation import is_real
from .identifiers import is_valid_email, nfc_text, normalize_customer_id

__all__ = [
    "CONSENT_BASES",
    "CONSENT_SCHEMA",
    "CONSENT_STATUSES",
    "EMAIL_EVENTS",
    "INPUT_KINDS",
    "INPUT_SCHEMAS",
    "SURVEY_SCALES",
    "Field",
    "InputTable",
    "read_input",
    "read_inputs",
    "read_periods",
]

#: Score range of each survey type (inclusive). CES uses the 7-point agreement scale of
#: CES 2.0 ("The company made it easy for me to handle my issue": 1 strongly disagree ...
#: 7 strongly agree), so higher is better; invert a 1-5 "effort" scale before reading.
SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
#: Allowed values of the ``event`` column of ``email_events``.
EMAIL_EVENTS: tuple[str, ...] = (
    "delivered", "open", "click", "bounce", "spam_complaint", "unsubscribe",
)

_TYPES = ("id", "text", "email", "choice", "number", "integer", "boolean", "timestamp", "period")


@dataclass(frozen=True)
class Field:
    """One column of an input schema.

    Parameters
    ----------
    type : str
        ``id`` (text id, normalized like customer ids), ``text``, ``email``, ``choice``,
        ``number`` (finite float), ``integer``, ``boolean``, ``timestamp`` (ISO 8601 or
        ``date_format``; UTC) or ``period`` (``YYYY-MM``, ``YYYY-Qn`` or a date).
    meaning : str
        What the column holds.
    required : bool, default=True
        The column must be present (unless ``group`` names alternatives).
    nullable : bool, default=False
        Cells may be empty.
    minimum, maximum : float, optional
        Bounds of ``number`` and ``integer`` values (inclusive).
    choices : tuple of str, default=()
        Allowed values of a ``choice`` column.
    key : bool, default=False
        Part of the row key: the key columns together must be unique.
    group : str, optional
        Columns sharing a group are alternatives: at least one of them must be present.
    not_before : str, optional
        A timestamp that must not be earlier than this other column of the row.
    range_by : tuple, optional
        ``(column, {choice: (low, high)})``: integer bounds depending on another column.
    """

    type: str
    meaning: str
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    key: bool = False
    group: str | None = None
    not_before: str | None = None
    range_by: tuple[str, dict[str, tuple[int, int]]] | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ConfigError(f"Field type must be one of {', '.join(_TYPES)}. "
                              f"Got {self.type!r} instead.")


_ANY_ID = Field("id", "customer id, as in the transactions (empty when unknown)",
                required=False, nullable=True)

#: Schema of each input kind: canonical column -> :class:`Field`, in output order.
INPUT_SCHEMAS: dict[str, dict[str, Field]] = {
    "costs": {
        "period": Field("period", "month 'YYYY-MM', quarter 'YYYY-Qn' or date (one-day "
                                  "period); one kind per file"),
        "channel": Field("text", "marketing or sales channel", required=False, nullable=True),
        "costs": Field("number", "marketing and sales spend in the period", minimum=0.0),
    },
    "surveys": {
        "response_id": Field("id", "survey response id", key=True),
        "customer_id": _ANY_ID,
        "date": Field("timestamp", "when the answer was given"),
        "survey": Field("choice", "survey type", choices=tuple(SURVEY_SCALES)),
        "score": Field("integer", "answer: NPS 0-10, CSAT 1-5, CES 1-7 (7 = easiest)",
                       range_by=("survey", SURVEY_SCALES)),
    },
    "tickets": {
        "ticket_id": Field("id", "support ticket id", key=True),
        "customer_id": Field("id", "customer id, as in the transactions"),
        "opened_at": Field("timestamp", "when the ticket was opened"),
        "resolved_at": Field("timestamp", "when it was resolved (empty while open)",
                             required=False, nullable=True, not_before="opened_at"),
        "contacts": Field("integer", "contacts until resolution", minimum=1, nullable=True,
                          group="resolution"),
        "resolved_first_contact": Field("boolean", "resolved at the first contact",
                                        nullable=True, group="resolution"),
    },
    "leads": {
        "lead_id": Field("id", "lead or deal id", key=True),
        "created_at": Field("timestamp", "when the lead was created"),
        "won_at": Field("timestamp", "when it was won (empty unless won)", required=False,
                        nullable=True, not_before="created_at"),
        "lost_at": Field("timestamp", "when it was lost (empty unless lost)", required=False,
                         nullable=True, not_before="created_at"),
        "customer_id": _ANY_ID,
    },
    "subscriptions": {
        "subscription_id": Field("id", "subscription id", key=True),
        "customer_id": Field("id", "customer id, as in the transactions"),
        "period_end": Field("timestamp", "end of the subscription term", key=True),
        "renewed": Field("boolean", "renewed for another term (empty while unknown)",
                         nullable=True),
    },
    "email_events": {
        "campaign": Field("text", "campaign name"),
        "customer_id": Field("id", "recipient's customer id", nullable=True,
                             group="recipient"),
        "email": Field("email", "recipient's email address", nullable=True,
                       group="recipient"),
        "event": Field("choice", "event type", choices=EMAIL_EVENTS),
        "timestamp": Field("timestamp", "when the event happened"),
    },
}
#: The optional KPI input kinds (``[kpis.inputs]``); :func:`read_input` also reads ``consent``.
INPUT_KINDS: tuple[str, ...] = tuple(INPUT_SCHEMAS)

#: Allowed values of the ``status`` column of the consent input.
CONSENT_STATUSES: tuple[str, ...] = ("granted", "withdrawn", "objected")
#: Allowed values of its ``basis`` column.
CONSENT_BASES: tuple[str, ...] = ("express", "implied", "inquiry")
#: Schema of the consent input of the weekly run (``[output] consent``, see
#: :mod:`rfm_engine.campaigns.consent`): one row per person, keyed by customer id, email or both.
CONSENT_SCHEMA: dict[str, Field] = {
    "customer_id": Field("id", "customer id, as in the transactions", nullable=True,
                         key=True, group="person"),
    "email": Field("email", "email address", nullable=True, key=True, group="person"),
    "status": Field("choice", "granted, withdrawn (no email) or objected (to profiling, "
                              "GDPR Art. 21: left out of the whole run)",
                    choices=CONSENT_STATUSES),
    "basis": Field("choice", "express, implied (CASL: 2 years from the last purchase) or "
                             "inquiry (CASL: 6 months from granted_at); needed when status "
                             "is granted", required=False, nullable=True,
                   choices=CONSENT_BASES),
    "granted_at": Field("timestamp", "when consent was given (empty: before any run); the "
                                     "inquiry date for basis inquiry (required there)",
                        required=False, nullable=True),
    "expires_at": Field("timestamp", "first day consent no longer holds (empty: no end)",
                        required=False, nullable=True, not_before="granted_at"),
}

_EMAIL_SHOWN = "<an email address>"
_ISO = "an ISO 8601 date or timestamp such as 2024-03-05 or 2024-03-05T14:30:00+01:00"
_BOOLEAN_WORDS = {"true": True, "false": False, "t": True, "f": False, "yes": True, "no": False,
                  "y": True, "n": False, "1": True, "0": False, "1.0": True, "0.0": False}
_PERIOD_KINDS = {"M": "a month 'YYYY-MM'", "Q": "a quarter 'YYYY-Qn'", "D": "a date"}
_MONTH_RE = r"\d{4}-(?:0[1-9]|1[0-2])"
_QUARTER_RE = r"(?i)\d{4}-?Q[1-4]"


@dataclass
class InputTable:
    """A validated input table.

    Attributes
    ----------
    kind : str
        One of :data:`INPUT_KINDS`.
    source : str
        What errors call the input (its path, or ``DataFrame``).
    frame : pandas.DataFrame
        The valid rows, canonical columns in schema order (absent optional ones left out):
        ids and text as ``str``, numbers ``float64``, integers ``Int64``, booleans
        ``boolean``, timestamps ``datetime64[us]`` (UTC, naive), periods ``period[...]``.
    columns : dict of str to str
        Canonical column -> source column, as resolved.
    rows_read : int
        Data rows in the source.
    rows_dropped : int
        Rows dropped (``on_bad_rows="drop"``).
    bad_values : dict of str to int
        Source column -> rows dropped for a bad value in it (a row may count in several).
    """

    kind: str
    source: str
    frame: pd.DataFrame = field(repr=False)
    columns: dict[str, str]
    rows_read: int = 0
    rows_dropped: int = 0
    bad_values: dict[str, int] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------------------

Expected = str | Callable[[int], str]


@dataclass
class _Failure:
    column: str  # canonical
    mask: np.ndarray
    expected: Expected
    hint: str = ""


def read_input(
    kind: str,
    source: str | Path | pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    date_format: str | None = None,
    on_bad_rows: str = "raise",
    max_drop_fraction: float = 0.5,
) -> InputTable:
    """Read and validate one optional CRM input.

    Parameters
    ----------
    kind : str
        One of :data:`INPUT_KINDS`: ``costs``, ``surveys``, ``tickets``, ``leads``,
        ``subscriptions``, ``email_events``; or ``consent`` (:data:`CONSENT_SCHEMA`).
    source : str, Path or DataFrame
        CSV file, Parquet file or folder, or a DataFrame (never modified).
    columns : Mapping[str, str], optional
        ``{canonical: source column}`` for columns named differently in the source.
    date_format : str, optional
        strftime format of dates that are not ISO 8601 (``%z`` offsets go to UTC); it
        replaces ISO parsing for every timestamp column and for dates in ``period``.
    on_bad_rows : {"raise", "drop"}, default="raise"
        A malformed value stops the read, or its row is dropped and counted.
    max_drop_fraction : float, default=0.5
        With ``on_bad_rows="drop"``, fail when more than this share of rows is dropped.

    Returns
    -------
    InputTable

    Raises
    ------
    DataError
        A malformed value: file, data row, column, value (never an email) and expectation.
    MissingColumnsError
        Required columns are missing.
    ConfigError
        An unknown kind, mapping key or parameter value.
    InputError
        Too many rows dropped, or an unreadable file.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"Month": ["2024-01", "2024-01", "2024-02"],
    ...                     "channel": ["search", "social", "search"],
    ...                     "costs": ["120.50", "80", "-3"]})
    >>> read_input("costs", raw, columns={"period": "Month"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rfm_engine.errors.DataError: DataFrame, row 3, column 'costs': got '-3', expected a finite ...
    >>> table = read_input("costs", raw, columns={"period": "Month"}, on_bad_rows="drop")
    >>> table.rows_dropped, table.bad_values
    (1, {'costs': 1})
    >>> table.frame
        period channel  costs
    0  2024-01  search  120.5
    1  2024-01  social   80.0
    """
    schema = _schema(kind)
    if on_bad_rows not in ("raise", "drop"):
        raise ConfigError("The 'on_bad_rows' parameter of read_input must be 'raise' or "
                          f"'drop'. Got {on_bad_rows!r} instead.")
    if not is_real(max_drop_fraction) or not 0 <= max_drop_fraction <= 1:
        raise ConfigError("The 'max_drop_fraction' parameter of read_input must be a float in "
                          f"[0, 1]. Got {max_drop_fraction!r} instead.")
    mapping = dict(columns or {})
    unknown = [c for c in mapping if c not in schema]
    if unknown:
        raise ConfigError(
            f"Unknown column(s) {', '.join(map(repr, unknown))} in the column mapping of "
            f"{kind!r}; allowed: {', '.join(schema)}."
        )
    raw, name, files, rows = _read(source)
    resolved = _resolve(kind, schema, mapping, [str(c) for c in raw.columns], name)
    by_name = {str(c): c for c in raw.columns}
    data = {c: raw[by_name[resolved[c]]] for c in resolved}

    values: dict[str, pd.Series] = {}
    failures: list[_Failure] = []
    for canonical in resolved:
        parsed, found = _parse(schema[canonical], data[canonical], canonical, date_format)
        values[canonical] = parsed
        failures += found
    frame = pd.DataFrame(values, index=pd.RangeIndex(len(raw)))
    failures += _relations(kind, schema, frame)
    failures += _duplicates(schema, frame, failures, rows, files)

    if on_bad_rows == "raise":
        _raise_first(failures, data, schema, resolved, rows, files)
    bad = np.zeros(len(frame), dtype=bool)
    bad_values: dict[str, int] = {}
    for failure in failures:
        bad |= failure.mask
    for canonical in resolved:
        hit = np.zeros(len(frame), dtype=bool)
        for failure in failures:
            if failure.column == canonical:
                hit |= failure.mask
        if hit.any():
            bad_values[resolved[canonical]] = int(hit.sum())
    n_read, n_dropped = len(frame), int(bad.sum())
    if n_read and n_dropped / n_read > max_drop_fraction:
        summary = ", ".join(f"{c!r} {n:,}" for c, n in bad_values.items())
        raise InputError(
            f"{name}: {n_dropped:,} of {n_read:,} rows would be dropped "
            f"({n_dropped / n_read:.0%} > max_drop_fraction {max_drop_fraction:.0%}): bad "
            f"values in {summary}. Check the column mapping and the file, or raise "
            "max_drop_fraction."
        )
    frame = frame[~bad].reset_index(drop=True)
    return InputTable(kind, name, frame, resolved, n_read, n_dropped, bad_values)


def read_inputs(paths: Mapping[str, str | Path | None]) -> dict[str, InputTable]:
    """Read and validate the optional inputs of a run, kind to file (None: not given).

    Each is read by :func:`read_input` with its defaults, in the order given; the
    first bad input stops the read.

    Returns
    -------
    dict
        Kind to :class:`InputTable`, for the kinds given.
    """
    return {kind: read_input(kind, path) for kind, path in paths.items() if path is not None}


def _schema(kind: str) -> dict[str, Field]:
    if kind == "consent":
        return CONSENT_SCHEMA
    if kind not in INPUT_SCHEMAS:
        raise ConfigError(f"Unknown input kind {kind!r}; use one of "
                          f"{', '.join(INPUT_KINDS)}, consent.")
    return INPUT_SCHEMAS[kind]


def _read(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str, np.ndarray, np.ndarray]:
    """Return the raw rows, the source name, and the file and 1-based row of each row."""
    if isinstance(source, pd.DataFrame):
        n = len(source)
        return (source, "DataFrame", np.full(n, "DataFrame", dtype=object),
                np.arange(1, n + 1))
    if not isinstance(source, str | Path):
        raise ConfigError("The 'source' parameter of read_input must be a path or a DataFrame. "
                          f"Got {type(source).__name__} instead.")
    from .loading import connect  # DuckDB: only for files, as the transaction loader reads them
    from .sources import open_source

    con = connect()
    try:
        src = open_source(con, source)
        names = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in src.columns)
        raw = con.execute(
            f"SELECT {names}, {src.row_sql} AS __row, {src.file_sql} AS __file "
            "FROM raw_source ORDER BY __file, __row"
        ).df()
    finally:
        con.close()
    rows = raw.pop("__row").to_numpy(dtype=np.int64)
    files = raw.pop("__file").to_numpy(dtype=object)
    return raw, src.name, files, rows


def _resolve(kind: str, schema: dict[str, Field], mapping: dict[str, str],
             available: list[str], source: str) -> dict[str, str]:
    present = set(available)
    resolved = {c: mapping.get(c, c) for c in schema if mapping.get(c, c) in present}
    missing = [mapping.get(c, c) for c, f in schema.items()
               if c not in resolved and (c in mapping or (f.required and f.group is None))]
    groups: dict[str, list[str]] = {}
    for c, f in schema.items():
        if f.group:
            groups.setdefault(f.group, []).append(c)
    for members in groups.values():
        if not any(c in resolved for c in members):
            missing.append(" or ".join(mapping.get(c, c) for c in members))
    if missing:
        shown = list(available)
        if kind in ("email_events", "consent"):  # a header-less export: an address as header
            shown = [_EMAIL_SHOWN if "@" in c else c for c in available]
        raise MissingColumnsError(source, list(dict.fromkeys(missing)), shown)
    return resolved


# --- parsing: one function per field type, each returning values and failures -----------------

def _text(raw: pd.Series) -> pd.Series:
    text = nfc_text(raw)
    return text.mask(text == "")


def _parse(spec: Field, raw: pd.Series, name: str,
           date_format: str | None) -> tuple[pd.Series, list[_Failure]]:
    raw = raw.reset_index(drop=True)
    text = _text(raw)
    present = text.notna().to_numpy()
    values, valid, expected, extra = _PARSERS[spec.type](spec, raw, text, date_format)
    hint = _hint(spec)
    failures = [_Failure(name, present & ~valid, expected, hint)]
    if not spec.nullable:
        failures.append(_Failure(name, ~present, expected, hint))
    for mask, exp in extra:  # further checks on parseable values
        failures.append(_Failure(name, mask, exp, hint))
        valid = valid & ~mask
    masked = values.where(pd.Series(valid & present))
    return masked, [f for f in failures if f.mask.any()]


ParseResult = tuple[pd.Series, np.ndarray, str, list[tuple[np.ndarray, Expected]]]


def _parse_id(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    ids = normalize_customer_id(raw)
    return ids, ids.notna().to_numpy(), "a non-empty id", []


def _parse_text(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    return text, text.notna().to_numpy(), "a non-empty value", []


def _parse_email(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    email = text.str.lower()
    ok = is_valid_email(email).to_numpy()
    return email, ok, "an email address such as name@example.com", []


def _parse_choice(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    lower = text.str.lower()
    ok = lower.isin(spec.choices).to_numpy()
    return lower, ok, "one of " + ", ".join(map(repr, spec.choices)), []


def _numbers(raw: pd.Series, text: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return pd.to_numeric(raw).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)


def _bounds(spec: Field, number: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(number)
        if spec.minimum is not None:
            ok &= number >= spec.minimum
        if spec.maximum is not None:
            ok &= number <= spec.maximum
    return ok


def _range_text(spec: Field, example: str) -> str:
    parts = []
    if spec.minimum is not None:
        parts.append(f">= {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"<= {spec.maximum:g}")
    return " ".join(parts + [f"such as {example}"])


def _parse_number(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    number = _numbers(raw, text)
    expected = f"a finite number {_range_text(spec, '12.50')}"
    return pd.Series(number, dtype="float64"), _bounds(spec, number), expected, []


def _parse_integer(spec: Field, raw: pd.Series, text: pd.Series,
                   fmt: str | None) -> ParseResult:
    number = _numbers(raw, text)
    ok = _bounds(spec, number)
    ok[ok] = number[ok] == np.floor(number[ok])
    kept = pd.array(np.where(ok, number, np.nan), dtype="Float64").astype("Int64")
    return pd.Series(kept), ok, f"an integer {_range_text(spec, '3')}", []


def _parse_boolean(spec: Field, raw: pd.Series, text: pd.Series,
                   fmt: str | None) -> ParseResult:
    if pd.api.types.is_bool_dtype(raw):
        flags = raw.astype("boolean")
    else:
        flags = text.str.lower().map(_BOOLEAN_WORDS).astype("boolean")
    return flags, flags.notna().to_numpy(), "true or false (also 1/0, yes/no)", []


def _timestamps(raw: pd.Series, text: pd.Series, fmt: str | None) -> pd.Series:
    """Parse to naive UTC ``datetime64[us]``; NaT where malformed or empty."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        stamps = raw
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return stamps.astype("datetime64[us]")
    objects = raw.map(lambda v: isinstance(v, dt.date)) if raw.dtype == object else None
    parsed = pd.to_datetime(text, format=fmt or "ISO8601", utc=True, errors="coerce")
    if objects is not None and objects.any():  # datetime.date / datetime objects in a frame
        parsed[objects] = pd.to_datetime(raw[objects].map(pd.Timestamp), utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[us]")


def _date_expected(fmt: str | None) -> str:
    return f"a date in the format {fmt!r}" if fmt else _ISO


def _parse_timestamp(spec: Field, raw: pd.Series, text: pd.Series,
                     fmt: str | None) -> ParseResult:
    stamps = _timestamps(raw, text, fmt)
    return stamps, stamps.notna().to_numpy(), _date_expected(fmt), []


def _parse_period(spec: Field, raw: pd.Series, text: pd.Series, fmt: str | None) -> ParseResult:
    n = len(raw)
    kinds = np.full(n, "", dtype=object)
    labels = np.full(n, None, dtype=object)
    if isinstance(raw.dtype, pd.PeriodDtype):
        freq = raw.dtype.freq.name
        ok = raw.notna().to_numpy()
        expected = f"a period of frequency {freq}"
        return raw, ok, expected, []
    if pd.api.types.is_datetime64_any_dtype(raw):
        months = quarters = np.zeros(n, dtype=bool)
    else:
        months = text.str.fullmatch(_MONTH_RE).fillna(False).to_numpy(dtype=bool)
        quarters = text.str.fullmatch(_QUARTER_RE).fillna(False).to_numpy(dtype=bool)
    kinds[months], labels[months] = "M", text[months].to_numpy()
    kinds[quarters] = "Q"
    labels[quarters] = text[quarters].str.upper().str.replace("-", "").to_numpy()
    rest = ~months & ~quarters
    stamps = _timestamps(raw[rest], text[rest], fmt)
    dated = stamps.notna().to_numpy()
    rest_index = np.flatnonzero(rest)[dated]
    kinds[rest_index] = "D"
    labels[rest_index] = stamps[dated].dt.strftime("%Y-%m-%d").to_numpy()
    ok = kinds != ""
    expected = ("a month 'YYYY-MM', a quarter 'YYYY-Qn' or "
                + ("a date in the format " + repr(fmt) if fmt else "an ISO 8601 date"))
    extra: list[tuple[np.ndarray, Expected]] = []
    freq = kinds[ok][0] if ok.any() else "M"
    other = ok & (kinds != freq)
    if other.any():
        first = int(np.flatnonzero(ok)[0])
        extra.append((other, f"{_PERIOD_KINDS[freq]} like the first period "
                             f"{text.iloc[first]!r} (one kind of period per file)"))
    keep = ok & ~other
    index = pd.PeriodIndex([labels[i] if keep[i] else None for i in range(n)], freq=freq)
    return pd.Series(index), ok, expected, extra


_PARSERS: dict[str, Callable[[Field, pd.Series, pd.Series, str | None], ParseResult]] = {
    "id": _parse_id,
    "text": _parse_text,
    "email": _parse_email,
    "choice": _parse_choice,
    "number": _parse_number,
    "integer": _parse_integer,
    "boolean": _parse_boolean,
    "timestamp": _parse_timestamp,
    "period": _parse_period,
}


def _hint(spec: Field) -> str:
    hint = "Fix the value, or read with on_bad_rows='drop' to drop and count such rows."
    if spec.type in ("timestamp", "period"):
        hint = ("Dates that are not ISO 8601 need date_format (e.g. '%d/%m/%Y'); day/month "
                "order is never guessed. " + hint)
    return hint


# --- checks across columns and rows ---------------------------------------------------------

def _relations(kind: str, schema: dict[str, Field], frame: pd.DataFrame) -> list[_Failure]:
    """Check the parsed columns of a row against each other: ranges by type, date order, rules."""
    found: list[_Failure] = []
    hint = _hint(Field("text", ""))
    for name, spec in schema.items():
        if name not in frame:
            continue
        if spec.range_by and spec.range_by[0] in frame:
            by, ranges = spec.range_by
            low = frame[by].map({k: lo for k, (lo, _) in ranges.items()})
            high = frame[by].map({k: hi for k, (_, hi) in ranges.items()})
            value = frame[name].astype("Float64")
            mask = ((value < low.astype("Float64")) | (value > high.astype("Float64")))
            by_value = frame[by]

            def expected(i: int, by_value: pd.Series = by_value, by: str = by,
                         ranges: dict = ranges) -> str:
                lo, hi = ranges[by_value.iloc[i]]
                return f"an integer from {lo} to {hi} for {by} {by_value.iloc[i]!r}"

            found.append(_Failure(name, mask.fillna(False).to_numpy(dtype=bool), expected, hint))
        if spec.not_before and spec.not_before in frame:
            earlier = frame[spec.not_before]
            mask = (frame[name] < earlier).to_numpy(dtype=bool)

            def expected(i: int, earlier: pd.Series = earlier, other: str = spec.not_before
                         ) -> str:
                return f"a timestamp not before {other} ({earlier.iloc[i]})"

            found.append(_Failure(name, mask, expected, hint))
    for rule in _ROW_RULES.get(kind, ()):
        failure = rule(frame)
        if failure is not None:
            failure.hint = hint
            found.append(failure)
    return [f for f in found if f.mask.any()]


def _duplicates(schema: dict[str, Field], frame: pd.DataFrame, failures: list[_Failure],
                rows: np.ndarray, files: np.ndarray) -> list[_Failure]:
    """Repeated keys among otherwise valid rows: every repeat after the first fails."""
    key = [c for c, spec in schema.items() if spec.key and c in frame]
    if not key or frame.empty:
        return []
    valid = np.ones(len(frame), dtype=bool)
    for failure in failures:
        valid &= ~failure.mask
    candidates = frame.loc[valid, key]
    repeated = candidates.duplicated(keep=False)
    if not repeated.any():
        return []
    first_of = (candidates[repeated].reset_index().groupby(key, sort=False, dropna=False)
                ["index"].transform("min"))
    first_at = pd.Series(first_of.to_numpy(), index=candidates.index[repeated])
    later = first_at[first_at.index != first_at.to_numpy()]
    # Name the key column that repeats: the first one set in the row (an empty customer_id
    # beside a repeated email names the email), with the other set key columns as context.
    named = frame.loc[later.index, key].notna().to_numpy()
    column_of = [key[row.argmax()] if row.any() else key[0] for row in named]
    set_in = {i: [c for c, on in zip(key, row, strict=True) if on] or key[:1]
              for i, row in zip(later.index, named, strict=True)}

    def expected(i: int) -> str:
        j = int(first_at[i])
        where = f"row {rows[j]}" + (f" of {files[j]}" if files[j] != files[i] else "")
        same = set_in[i]
        label = same[0] if len(same) == 1 else "(" + ", ".join(same) + ")"
        empty = [c for c in key if c not in same]
        also = f"; {', '.join(empty)} empty in both" if empty and len(key) > 1 else ""
        return f"a unique {label} ({where} has the same{also})"

    failures = []
    for column in dict.fromkeys(column_of):
        mask = np.zeros(len(frame), dtype=bool)
        mask[[i for i, c in zip(later.index, column_of, strict=True) if c == column]] = True
        failures.append(_Failure(column, mask, expected, "Remove the repeated row, or read "
                                 "with on_bad_rows='drop' to drop repeats."))
    return failures


def _tickets_resolution(frame: pd.DataFrame) -> _Failure | None:
    contacts = frame.get("contacts")
    first = frame.get("resolved_first_contact")
    if contacts is not None and first is not None:
        disagree = (first != (contacts == 1)).fillna(False)
        if "resolved_at" in frame:  # an open ticket's contacts so far say nothing yet
            disagree &= frame["resolved_at"].notna()
        mask = disagree.to_numpy(dtype=bool)
        if mask.any():
            return _Failure("resolved_first_contact", mask,
                            lambda i: "true exactly when contacts is 1 "
                                      f"(contacts is {contacts.iloc[i]})")
    if "resolved_at" not in frame:
        return None
    known = pd.Series(False, index=frame.index)
    for column in (contacts, first):
        if column is not None:
            known |= column.notna()
    mask = (frame["resolved_at"].notna() & ~known).to_numpy(dtype=bool)
    column = "contacts" if contacts is not None else "resolved_first_contact"
    return _Failure(column, mask, "a value for a resolved ticket (resolved_at is set)")


def _leads_outcome(frame: pd.DataFrame) -> _Failure | None:
    if "won_at" not in frame or "lost_at" not in frame:
        return None
    mask = (frame["won_at"].notna() & frame["lost_at"].notna()).to_numpy(dtype=bool)
    return _Failure("lost_at", mask, "an empty cell: a lead is won or lost, not both "
                                     "(won_at is set)")


def _email_recipient(frame: pd.DataFrame, what: str = "a recipient") -> _Failure | None:
    known = pd.Series(False, index=frame.index)
    for column in ("customer_id", "email"):
        if column in frame:
            known |= frame[column].notna()
    column = "customer_id" if "customer_id" in frame else "email"
    return _Failure(column, (~known).to_numpy(dtype=bool),
                    f"{what}: customer_id or email must be set")


def _consent_person(frame: pd.DataFrame) -> _Failure | None:
    return _email_recipient(frame, "a person")


def _consent_basis(frame: pd.DataFrame) -> _Failure | None:
    basis = frame["basis"] if "basis" in frame else pd.Series(pd.NA, index=frame.index)
    mask = ((frame["status"] == "granted") & basis.isna()).fillna(False).to_numpy(dtype=bool)
    return _Failure("status" if "basis" not in frame else "basis", mask,
                    "a basis ('express', 'implied' or 'inquiry') for a granted consent")


def _consent_inquiry_date(frame: pd.DataFrame) -> _Failure | None:
    if "basis" not in frame:
        return None
    inquiry = (frame["status"] == "granted") & (frame["basis"] == "inquiry")
    if "granted_at" in frame:
        inquiry &= frame["granted_at"].isna()
    return _Failure("granted_at" if "granted_at" in frame else "basis",
                    inquiry.fillna(False).to_numpy(dtype=bool),
                    "a granted_at date for basis 'inquiry' (the date of the inquiry: "
                    "consent lasts 6 months from it)")


_ROW_RULES: dict[str, tuple[Callable[[pd.DataFrame], _Failure | None], ...]] = {
    "tickets": (_tickets_resolution,),
    "leads": (_leads_outcome,),
    "email_events": (_email_recipient,),
    "consent": (_consent_person, _consent_basis, _consent_inquiry_date),
}


def _raise_first(failures: list[_Failure], data: dict[str, pd.Series],
                 schema: dict[str, Field], resolved: dict[str, str], rows: np.ndarray,
                 files: np.ndarray) -> None:
    best: tuple[int, int] | None = None
    for k, failure in enumerate(failures):
        hits = np.flatnonzero(failure.mask)
        if len(hits) and (best is None or hits[0] < best[0]):
            best = (int(hits[0]), k)
    if best is None:
        return
    i, k = best
    failure = failures[k]
    raw = data[failure.column].iloc[i]
    if schema[failure.column].type == "email":
        value: object = _EMAIL_SHOWN
    elif raw is None or (not isinstance(raw, str) and pd.isna(raw)):
        value = ""
    else:
        value = raw.item() if isinstance(raw, np.generic) else raw
    expected = failure.expected(i) if callable(failure.expected) else failure.expected
    raise DataError(str(files[i]), int(rows[i]), resolved[failure.column], value, expected,
                    failure.hint)


def read_periods(labels: pd.Index, name: str) -> pd.PeriodIndex:
    """Read period labels as the costs input's ``period`` column is read.

    Periods, ``'YYYY-MM'``, ``'YYYY-Qn'`` or dates (one day each), of one kind.

    Parameters
    ----------
    labels : Index
        The labels (a PeriodIndex is returned as it is).
    name : str
        What holds them, for the error message.

    Returns
    -------
    PeriodIndex

    Raises
    ------
    ConfigError
        A label is not a period, or the labels mix kinds.
    """
    if isinstance(labels, pd.PeriodIndex):
        return labels
    parsed = _parse_period(INPUT_SCHEMAS["costs"]["period"], pd.Series(labels),
                           _text(pd.Series(labels)), None)
    ok = parsed[1].copy()
    for mask, _ in parsed[3]:
        ok &= ~mask
    if not ok.all():
        bad = labels[int(np.flatnonzero(~ok)[0])]
        raise ConfigError(f"The index of {name} must hold periods ('YYYY-MM', 'YYYY-Qn', "
                          f"dates or pandas Periods) of one kind. Got {bad!r}.")
    return pd.PeriodIndex(parsed[0])
