r"""Send lists in the import layout of each email tool, and the guard against formula cells.

One campaign's send list (the targets left after suppression and holdout) becomes one
CSV file per campaign, ``<campaign>.csv``, or ``<campaign>.part1.csv``,
``<campaign>.part2.csv``, ... when the list is over the tool's rows or bytes per file.
Files are UTF-8 without BOM, ``\n`` line ends, no index, rows sorted by ``customer_id``:
the same inputs give the same bytes.

Layouts
-------
Headers are written exactly as below (checked against each tool's import help in
2025; tools change their rules, so recheck before relying on a limit). ``extra``
columns (e.g. ``suggestions``) follow the fixed ones, under their own names, as
plain text in every layout but ``generic``.

``generic``
    ``customer_id``, ``email``, ``first_name``, ``segment``, ``campaign``, extras
    unchanged. Email may be empty (push/SMS campaigns).
``mailchimp``
    ``Email Address`` (the only required field; one address per contact),
    ``First Name``, ``Tags``, extras. Tags are one cell holding comma-separated tags,
    quoted by the CSV writer: ``"rfm:champions,campaign:retention_champions"``.
    Mailchimp limits a tag to 100 characters and does not support emoji in tags;
    segment and campaign names are slugged (lower case, ``_`` for spaces and
    punctuation) so no tag contains a comma, and a tag over 100 characters raises
    :class:`~rfm_engine.errors.ConfigError`. Text fields hold at most 255 bytes.
``klaviyo``
    ``Email Address`` first (Klaviyo's list upload requires the first column to be
    ``Email Address`` or ``Phone Number``; older help pages also accepted
    ``Email``), ``First Name`` (a Klaviyo property), then ``customer_id``,
    ``rfm_segment``, ``campaign``, ``previous_segment``, ``segment_since`` and
    extras, which become custom profile properties under those names. Files up to
    50 MB ("The maximum allowed file size is 50 MB. Larger uploads must be split into
    multiple CSV files", help.klaviyo.com/hc/en-us/articles/115005078967).
``hubspot``
    ``Email`` (HubSpot deduplicates contacts by it), ``First Name``, then
    ``customer_id``, ``rfm_segment``, ``campaign``, ``previous_segment``,
    ``segment_since`` and extras as contact properties (create them in HubSpot or
    map them on import). Fewer than 1,000 columns, UTF-8. Files up to 20 MB on
    HubSpot's free tools, 512 MB and 1,048,576 rows (the header included) on paid
    subscriptions (knowledge.hubspot.com/import-and-export/set-up-your-import-file):
    by default every file stays under 20 MB and :data:`HUBSPOT_MAX_ROWS` rows;
    ``[output] max_file_mb`` raises the size for paid accounts.
``braze``
    ``external_id`` (the customer id; Braze's user identifier), ``email``,
    ``first_name`` (default attributes: headers must match Braze's spelling and
    case exactly, or Braze creates a custom attribute instead), then custom
    attributes ``rfm_segment``, ``campaign``, ``previous_segment``,
    ``segment_since`` and extras. CSV import takes no arrays, so list values are
    joined into one string with :data:`LIST_SEPARATOR` (``"a|b"``, the separator
    of the suggestion columns); custom attribute values hold at most 255
    characters (braze.com/docs, "Setting custom attributes"). Attribute files up to
    500 MB. Blank cells do not overwrite a profile's value.

``previous_segment`` (the segment of the previous run, blank for a customer new to
the runs) and ``segment_since`` (``YYYY-MM-DD``, the first run that saw the current
segment) let the tool's flows trigger on a segment change, as Klaviyo's own RFM
feature does. Mailchimp's layout has no custom properties (its contacts get tags);
``generic`` keeps its columns.

Per layout, what the tool refuses
---------------------------------
* **Addresses**: Mailchimp cannot process non-ASCII characters before the ``@``
  (:data:`~rfm_engine.io.identifiers.ASCII_LOCAL_PART_LAYOUTS`); the run counts
  such customers under ``invalid_email`` (``is_valid_email(..., layout)``) and
  :func:`export_frame` refuses a list that still holds one.
* **Size**: :data:`FILE_LIMITS` (rows and bytes per file, the documented limits);
  :func:`split_for_layout` cuts a list into parts that each fit, bytes counted as
  written (UTF-8, header included).
* **Text**: :data:`TEXT_MAX_CHARS` (Mailchimp and Braze 255 characters, HubSpot
  65,536; Klaviyo documents none). A first name over the limit is a data error (a
  name cut at 255 characters is still no name to greet someone with): the run
  quarantines the customer (:func:`overlong_first_names`, counted under
  ``quarantined``) and :func:`export_frame` refuses it. A list value (the
  suggestions, ``"a|b|c"``, best first) is cut after its last whole item that fits:
  fewer suggestions, each still right. A segment or campaign name over the limit
  raises :class:`~rfm_engine.errors.ConfigError` (rename it).

Emails are written normalized (:func:`~rfm_engine.io.identifiers.normalize_email`:
trimmed, NFC, lower-cased), the form the suppression check compares. Layouts keyed
by email (``mailchimp``, ``klaviyo``, ``hubspot``) refuse rows without an email:
filter with :func:`~rfm_engine.io.identifiers.is_valid_email` first.

Formula cells are quarantined, not escaped
------------------------------------------
A cell starting with ``=``, ``+``, ``-``, ``@``, tab, carriage return or line feed
(OWASP's CSV-injection list, LF added in 2025; leading spaces are skipped before
``=+-@``, and the full-width forms ``＝＋－＠`` count too) is run as a formula by
a spreadsheet that opens the file. OWASP's fix for reports is to prefix such a
cell with ``'``. A send list is not a report: it is imported into a tool that
would store ``'=1+1`` as the person's first name and send it in a greeting. So
:func:`formula_cells` marks the rows, the caller excludes and counts them
(quarantine), and :func:`export_writers` refuses a list that still has one.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..io.identifiers import is_valid_email
from ..io.writers import Writer, table_writer, write_csv
from .suppression import normalize_customer_id, normalize_email

__all__ = [
    "FILE_LIMITS",
    "HUBSPOT_MAX_ROWS",
    "LAYOUTS",
    "LAYOUT_COLUMNS",
    "LIST_SEPARATOR",
    "MAILCHIMP_TAG_MAX",
    "TEXT_MAX_CHARS",
    "export_frame",
    "export_writers",
    "formula_cells",
    "mailchimp_tags",
    "overlong_first_names",
    "split_for_layout",
]

LAYOUTS = ("generic", "mailchimp", "klaviyo", "hubspot", "braze")
#: Fixed headers of each layout, in file order; extra columns follow.
LAYOUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "generic": ("customer_id", "email", "first_name", "segment", "campaign"),
    "mailchimp": ("Email Address", "First Name", "Tags"),
    "klaviyo": ("Email Address", "First Name", "customer_id", "rfm_segment", "campaign",
                "previous_segment", "segment_since"),
    "hubspot": ("Email", "First Name", "customer_id", "rfm_segment", "campaign",
                "previous_segment", "segment_since"),
    "braze": ("external_id", "email", "first_name", "rfm_segment", "campaign",
              "previous_segment", "segment_since"),
}
#: HubSpot's rows per file, the header included (Excel's sheet size): every HubSpot
#: file holds fewer data rows than this.
HUBSPOT_MAX_ROWS = 1_048_576
#: Bytes per file each tool documents (decimal megabytes, the smaller reading of "MB"):
#: Klaviyo 50 MB per list upload, HubSpot 20 MB on the free tools (512 MB paid: set
#: ``[output] max_file_mb``), Braze 500 MB per attribute import. None: no documented limit.
FILE_LIMITS: dict[str, int | None] = {
    "generic": None, "mailchimp": None, "klaviyo": 50_000_000, "hubspot": 20_000_000,
    "braze": 500_000_000,
}
#: Longest text value each tool keeps, in characters: Mailchimp's text fields and Braze's
#: custom attributes 255, HubSpot's single-line text properties 65,536 (its property field
#: types page). Klaviyo and generic: no limit.
TEXT_MAX_CHARS: dict[str, int | None] = {
    "generic": None, "mailchimp": 255, "klaviyo": None, "hubspot": 65_536, "braze": 255,
}
#: The separator of list values in one cell (the suggestion columns, list-valued extras).
LIST_SEPARATOR = "|"
#: Longest Mailchimp tag, in characters.
MAILCHIMP_TAG_MAX = 100
#: Columns passed through by default when present.
DEFAULT_EXTRAS = ("suggestions",)

_EMAIL_KEYED = ("mailchimp", "klaviyo", "hubspot")
_REQUIRED = ("customer_id", "segment", "campaign")
_FORMULA_RE = re.compile(r"[\t\r\n]|\s*[=+\-@\uff1d\uff0b\uff0d\uff20]")
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"The 'layout' parameter must be one of {', '.join(LAYOUTS)}. "
                          f"Got {layout!r} instead.")


def _slug(value: str) -> str:
    text = unicodedata.normalize("NFKC", str(value)).lower().replace("'", "").replace("’", "")
    return re.sub(r"[\W_]+", "_", text).strip("_")


def mailchimp_tags(segment: pd.Series, campaign: pd.Series) -> pd.Series:
    """Build Mailchimp's ``Tags`` cell: ``rfm:<segment>,campaign:<campaign>``, slugged.

    Parameters
    ----------
    segment, campaign : Series
        Segment and campaign names, aligned.

    Returns
    -------
    Series
        One comma-separated tag string per row.

    Raises
    ------
    ConfigError
        If a tag is longer than :data:`MAILCHIMP_TAG_MAX` characters.

    Examples
    --------
    >>> import pandas as pd
    >>> mailchimp_tags(pd.Series(["Champions", "Can't Lose Them"]),
    ...                pd.Series(["retention_champions", "Win back"])).tolist()
    ['rfm:champions,campaign:retention_champions', 'rfm:cant_lose_them,campaign:win_back']
    """
    seg = "rfm:" + segment.astype("str").map(_slug)
    camp = "campaign:" + campaign.astype("str").map(_slug)
    for tags in (seg, camp):
        too_long = tags[tags.str.len() > MAILCHIMP_TAG_MAX]
        if len(too_long):
            raise ConfigError(
                f"Mailchimp tag {too_long.iloc[0]!r} has {len(too_long.iloc[0])} characters; "
                f"Mailchimp allows {MAILCHIMP_TAG_MAX}. Shorten the segment or campaign name."
            )
    return seg + "," + camp


def _as_text(values: pd.Series) -> pd.Series:
    def one(v: object) -> object:
        if isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
            items = sorted(map(str, v)) if isinstance(v, (set, frozenset)) else map(str, v)
            return LIST_SEPARATOR.join(items)
        return v

    joined = values.map(one) if pd.api.types.is_object_dtype(values.dtype) else values
    return joined.astype("str")


def _resolve_extras(targets: pd.DataFrame, layout: str,
                    extra_columns: Sequence[str] | None) -> list[str]:
    if extra_columns is None:
        extras = [c for c in DEFAULT_EXTRAS if c in targets.columns]
    else:
        extras = list(extra_columns)
        missing = [c for c in extras if c not in targets.columns]
        if missing:
            raise InputError(f"targets: extra column(s) {', '.join(map(repr, missing))} not "
                             f"found; available: {', '.join(map(repr, targets.columns))}.")
    clash = [c for c in extras if c in LAYOUT_COLUMNS[layout]]
    if clash:
        raise ConfigError(f"Extra column(s) {', '.join(map(repr, clash))} clash with the "
                          f"{layout} layout's own headers; rename them.")
    return extras


def export_frame(targets: pd.DataFrame, layout: str, *,
                 extra_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Map a campaign's send list to an email tool's import columns.

    Parameters
    ----------
    targets : DataFrame
        Our columns: ``customer_id``, ``segment``, ``campaign`` (required),
        ``email``, ``first_name`` (written empty when absent), and any others.
        Not modified.
    layout : {"generic", "mailchimp", "klaviyo", "hubspot", "braze"}
        The tool's layout; see the module docs for each one's headers and limits.
    extra_columns : sequence of str, optional
        Columns appended after the layout's own (as text except in ``generic``).
        Default: ``suggestions`` when present.

    Returns
    -------
    DataFrame
        Headers :data:`LAYOUT_COLUMNS` ``[layout]`` then the extras; same index and
        row order as ``targets``.

    Raises
    ------
    ConfigError
        For an unknown layout, an extra column named like a layout header, or a
        Mailchimp tag over 100 characters.
    InputError
        If a required column is missing, a customer id is missing, an email-keyed
        layout (mailchimp, klaviyo, hubspot) gets a row without email, an address the
        layout's tool refuses (mailchimp: non-ASCII before the ``@``), or a first name
        longer than :data:`TEXT_MAX_CHARS` ``[layout]``.

    Examples
    --------
    >>> import pandas as pd
    >>> targets = pd.DataFrame({"customer_id": ["c1"], "email": [" Ann@Example.com"],
    ...                         "first_name": ["Ann"], "segment": ["Champions"],
    ...                         "campaign": ["retention_champions"], "recency": [3]})
    >>> mailchimp = export_frame(targets, "mailchimp")
    >>> list(mailchimp.columns)
    ['Email Address', 'First Name', 'Tags']
    >>> mailchimp.iloc[0].tolist()
    ['ann@example.com', 'Ann', 'rfm:champions,campaign:retention_champions']
    >>> list(export_frame(targets, "braze").columns)  # doctest: +NORMALIZE_WHITESPACE
    ['external_id', 'email', 'first_name', 'rfm_segment', 'campaign', 'previous_segment',
     'segment_since']
    """
    _check_layout(layout)
    missing = [c for c in _REQUIRED if c not in targets.columns]
    if missing:
        raise InputError(f"targets: missing column(s) {', '.join(map(repr, missing))}; "
                         f"available: {', '.join(map(repr, targets.columns))}.")
    extras = _resolve_extras(targets, layout, extra_columns)
    index = targets.index
    empty = pd.Series(pd.NA, index=index, dtype="str")
    customer_id = normalize_customer_id(targets["customer_id"])
    if customer_id.isna().any():
        row = int(customer_id.isna().to_numpy().argmax()) + 1
        raise InputError(f"targets, row {row}: missing customer_id; every row of a send "
                         "list needs one.")
    email = normalize_email(targets["email"]) if "email" in targets.columns else empty
    if layout in _EMAIL_KEYED and email.isna().any():
        n = int(email.isna().sum())
        first = customer_id[email.isna()].iloc[0]
        raise InputError(
            f"targets: {n} row(s) without an email (first: customer_id {first!r}); the "
            f"{layout} layout is keyed by email. Drop them first, e.g. with "
            "rfm_engine.io.identifiers.is_valid_email."
        )
    refused = email.notna() & is_valid_email(email) & ~is_valid_email(email, layout)
    if refused.any():
        first = customer_id[refused].iloc[0]
        raise InputError(
            f"targets: {int(refused.sum())} address(es) the {layout} tool refuses (first: "
            f"customer_id {first!r}: non-ASCII characters before the '@'). Drop them first "
            f"with rfm_engine.io.identifiers.is_valid_email(emails, {layout!r})."
        )
    first_name = targets["first_name"].astype("str") if "first_name" in targets else empty
    overlong = overlong_first_names(targets, layout)
    if overlong.any():
        first = customer_id[overlong].iloc[0]
        raise InputError(
            f"targets: {int(overlong.sum())} first name(s) longer than the "
            f"{TEXT_MAX_CHARS[layout]} characters {layout} keeps (first: customer_id "
            f"{first!r}). Quarantine them with "
            "rfm_engine.campaigns.exports.overlong_first_names."
        )
    segment = targets["segment"].astype("str")
    campaign = targets["campaign"].astype("str")
    _check_names(segment, "segment", layout)
    _check_names(campaign, "campaign", layout)
    previous = (targets["previous_segment"].astype("str") if "previous_segment" in targets
                else empty)
    since = (_iso_dates(targets["segment_since"]) if "segment_since" in targets
             else empty)
    columns: dict[str, pd.Series]
    if layout == "generic":
        columns = {"customer_id": customer_id, "email": email, "first_name": first_name,
                   "segment": segment, "campaign": campaign}
    elif layout == "mailchimp":
        columns = {"Email Address": email, "First Name": first_name,
                   "Tags": mailchimp_tags(segment, campaign)}
    elif layout in ("klaviyo", "hubspot"):
        email_header = LAYOUT_COLUMNS[layout][0]
        columns = {email_header: email, "First Name": first_name, "customer_id": customer_id,
                   "rfm_segment": segment, "campaign": campaign,
                   "previous_segment": previous, "segment_since": since}
    else:  # braze
        columns = {"external_id": customer_id, "email": email, "first_name": first_name,
                   "rfm_segment": segment, "campaign": campaign,
                   "previous_segment": previous, "segment_since": since}
    for name in extras:
        values = targets[name]
        if layout == "generic" and not pd.api.types.is_object_dtype(values.dtype):
            columns[name] = values
        else:
            columns[name] = _cut_items(_as_text(values), TEXT_MAX_CHARS[layout])
    return pd.DataFrame(columns, index=index)


def overlong_first_names(targets: pd.DataFrame, layout: str) -> pd.Series:
    """Mark rows whose first name is longer than the layout's tool keeps.

    Such a name (over :data:`TEXT_MAX_CHARS` ``[layout]`` characters) is a data error,
    not a name to cut and greet someone with: quarantine the rows (exclude and count
    them), as for :func:`formula_cells`.

    Parameters
    ----------
    targets : DataFrame
        Our columns; without ``first_name`` nothing is marked.
    layout : str
        One of :data:`LAYOUTS`.

    Returns
    -------
    Series
        Boolean, same index as ``targets``.

    Examples
    --------
    >>> import pandas as pd
    >>> names = pd.DataFrame({"first_name": ["Ann", "x" * 256, None]})
    >>> overlong_first_names(names, "braze").tolist()
    [False, True, False]
    >>> overlong_first_names(names, "klaviyo").tolist()
    [False, False, False]
    """
    _check_layout(layout)
    limit = TEXT_MAX_CHARS[layout]
    if limit is None or "first_name" not in targets.columns:
        return pd.Series(False, index=targets.index)
    length = targets["first_name"].astype("str").str.len()
    return (length > limit).fillna(False).astype(bool)


def _check_names(names: pd.Series, what: str, layout: str) -> None:
    limit = TEXT_MAX_CHARS[layout]
    if limit is None or not len(names):
        return
    too_long = names[names.str.len().fillna(0) > limit]
    if len(too_long):
        raise ConfigError(f"The {what} name {too_long.iloc[0][:40]!r}... has "
                          f"{len(too_long.iloc[0])} characters; {layout} keeps {limit}. "
                          "Shorten it.")


def _iso_dates(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values, errors="coerce")
    return dates.dt.strftime("%Y-%m-%d").astype("str")


def _cut_items(text: pd.Series, limit: int | None) -> pd.Series:
    """Cut list cells (``"a|b|c"``) after the last whole item within ``limit`` characters."""
    if limit is None:
        return text
    long = text.str.len().fillna(0).to_numpy() > limit
    if not long.any():
        return text

    def cut(value: str) -> str:
        head = value[:limit + 1]
        end = head.rfind(LIST_SEPARATOR)
        return head[:end] if end > 0 else value[:limit]

    out = text.copy()
    out[long] = [cut(v) for v in text[long]]
    return out


def formula_cells(frame: pd.DataFrame) -> pd.Series:
    """Mark rows with a text cell a spreadsheet would run as a formula.

    A text cell is flagged when it starts with tab, carriage return or line feed, or
    when, after leading whitespace, it starts with ``=``, ``+``, ``-`` or ``@`` (or
    their full-width forms). Numbers are not text cells: ``-5`` in a numeric column
    is fine. Quarantine the flagged rows (exclude and count them); do not escape
    them, see the module docs.

    Parameters
    ----------
    frame : DataFrame
        Any table, typically :func:`export_frame`'s output.

    Returns
    -------
    Series
        Boolean, same index as ``frame``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"first_name": ["Ann", "=1+1", " +A1", "Jo-Ann", None],
    ...                       "score": [-1, 2, 3, 4, 5]})
    >>> formula_cells(frame).tolist()
    [False, True, True, False, False]
    """
    hit = pd.Series(False, index=frame.index)
    for column_hits in _formula_hits(frame).values():
        hit |= column_hits
    return hit


def _formula_hits(frame: pd.DataFrame) -> dict[object, pd.Series]:
    hits = {}
    for name, col in frame.items():
        dtype = col.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            dtype = dtype.categories.dtype
        if pd.api.types.is_object_dtype(dtype):
            is_text = col.map(lambda v: isinstance(v, str)).astype(bool)
            text = col.where(is_text).astype("str")
        elif isinstance(dtype, pd.StringDtype):
            text = col.astype("str")
        else:
            continue
        # A cell starting with an ASCII letter or digit cannot match (a vectorised test);
        # the pattern (Python's Unicode whitespace) runs on the other cells only.
        maybe = ~text.str.match(r"[A-Za-z0-9]").to_numpy(dtype=bool, na_value=True)
        hit = np.zeros(len(col), dtype=bool)
        hit[maybe] = text[maybe].str.match(_FORMULA_RE).to_numpy(dtype=bool, na_value=False)
        hits[name] = pd.Series(hit, index=col.index)
    return hits


def _csv_bytes(frame: pd.DataFrame) -> int:
    buffer = io.StringIO()
    write_csv(frame, buffer)
    return len(buffer.getvalue().encode("utf-8"))


def split_for_layout(frame: pd.DataFrame, layout: str, *, max_rows: int | None = None,
                     max_bytes: int | None = None) -> list[pd.DataFrame]:
    """Cut a list into the parts the tool accepts per file.

    Each part holds at most ``max_rows`` data rows and, written as CSV
    (:func:`~rfm_engine.io.writers.write_csv`, header included), at most ``max_bytes``
    bytes. Defaults per layout: HubSpot fewer than :data:`HUBSPOT_MAX_ROWS` rows, and
    :data:`FILE_LIMITS` bytes (Klaviyo 50 MB, HubSpot 20 MB, Braze 500 MB). Parts
    keep the file order; the same frame gives the same parts.

    Parameters
    ----------
    frame : DataFrame
        The export frame, in file order.
    layout : str
        One of :data:`LAYOUTS`.
    max_rows, max_bytes : int, optional
        Override the layout's limits (e.g. ``[output] max_file_mb`` for HubSpot's
        paid 512 MB).

    Returns
    -------
    list of DataFrame
        At least one part (an empty list still makes one file, header only).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"Email": [f"p{i}@example.com" for i in range(5)]})
    >>> [len(p) for p in split_for_layout(frame, "hubspot")]
    [5]
    >>> [len(p) for p in split_for_layout(frame, "generic")]
    [5]
    >>> [len(p) for p in split_for_layout(frame, "klaviyo", max_bytes=60)]  # 6 + 5 * 15 bytes
    [3, 2]
    """
    _check_layout(layout)
    if max_rows is None and layout == "hubspot":
        max_rows = HUBSPOT_MAX_ROWS - 1
    if max_bytes is None:
        max_bytes = FILE_LIMITS[layout]
    if max_rows is not None and max_rows < 1:
        raise ConfigError(f"max_rows must be at least 1, got {max_rows}.")
    n = len(frame)
    cap = n if max_rows is None else min(n, max_rows)
    if n <= cap and (max_bytes is None or _csv_bytes(frame) <= max_bytes):
        return [frame]
    parts: list[pd.DataFrame] = []
    start, guess = 0, cap
    while start < n:
        k = min(n - start, guess)
        if max_bytes is not None:
            header = _csv_bytes(frame.iloc[:0])
            while (size := _csv_bytes(frame.iloc[start:start + k])) > max_bytes:
                if k == 1:
                    raise InputError(f"Row {start + 1} of the list takes {size} bytes as a "
                                     f"file; the {layout} limit is {max_bytes} bytes.")
                per_row = (size - header) / k
                k = max(1, min(k - 1, int((max_bytes - header) / per_row)))
            guess = max(k, 1)
        parts.append(frame.iloc[start:start + k])
        start += k
    return parts


def export_writers(campaign: str, targets: pd.DataFrame, layout: str, folder: str | Path, *,
                   extra_columns: Sequence[str] | None = None, max_rows: int | None = None,
                   max_bytes: int | None = None) -> dict[Path, Writer]:
    r"""Return the writers of one campaign's export file(s), for ``writers.write_all``.

    Parameters
    ----------
    campaign : str
        The campaign name; the file stem (letters, digits, ``_``, ``.``, ``-``).
    targets : DataFrame
        The send list in our columns (see :func:`export_frame`), already filtered
        for suppression, holdout and formula cells.
    layout : str
        One of :data:`LAYOUTS`.
    folder : str or Path
        The output folder.
    extra_columns : sequence of str, optional
        As in :func:`export_frame`.
    max_rows, max_bytes : int, optional
        Limits per file, as in :func:`split_for_layout` (default: the layout's).

    Returns
    -------
    dict
        ``folder/<campaign>.csv``, or ``folder/<campaign>.part1.csv``, ... when
        :func:`split_for_layout` cuts the list, each mapped to its writer. CSV UTF-8
        without BOM, ``\n`` line ends, no index, rows sorted by ``customer_id``.

    Raises
    ------
    ConfigError
        For a campaign name that is not a plain file stem, or a header a
        spreadsheet would run as a formula.
    InputError
        If a row still has a formula cell (quarantine it with :func:`formula_cells`),
        or as :func:`export_frame` raises.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> from rfm_engine.io.writers import write_all
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> targets = pd.DataFrame({"customer_id": ["b2", "a1"], "email": ["b@x.org", "a@x.org"],
    ...                         "first_name": ["Bo", "Al"], "segment": ["At Risk"] * 2,
    ...                         "campaign": ["winback"] * 2})
    >>> paths = write_all(export_writers("winback", targets, "hubspot", folder))
    >>> [p.name for p in paths]
    ['winback.csv']
    >>> print(paths[0].read_text(), end="")
    Email,First Name,customer_id,rfm_segment,campaign,previous_segment,segment_since
    a@x.org,Al,a1,At Risk,winback,,
    b@x.org,Bo,b2,At Risk,winback,,
    """
    _check_layout(layout)
    if not isinstance(campaign, str) or not _SAFE_NAME_RE.fullmatch(campaign):
        raise ConfigError(
            f"Campaign name {campaign!r} cannot be a file name: use letters, digits, '_', "
            "'.' and '-', starting with a letter or digit."
        )
    ordered = targets.sort_values("customer_id", key=lambda s: s.astype("str"),
                                  kind="stable") if "customer_id" in targets else targets
    frame = export_frame(ordered, layout, extra_columns=extra_columns).reset_index(drop=True)
    bad_headers = [c for c in frame.columns if _FORMULA_RE.match(str(c))]
    if bad_headers:
        raise ConfigError(f"Column name(s) {', '.join(map(repr, bad_headers))} would run as "
                          "spreadsheet formulas; rename them.")
    hits = _formula_hits(frame)
    bad = formula_cells(frame)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        column = next(c for c, h in hits.items() if h.iloc[row])
        customer = normalize_customer_id(ordered["customer_id"]).iloc[row]
        raise InputError(
            f"Campaign {campaign}: {int(bad.sum())} row(s) have a cell a spreadsheet would run "
            f"as a formula (first: customer_id {customer!r}, column {column!r}). "
            "Quarantine them with rfm_engine.campaigns.exports.formula_cells before export."
        )
    parts = split_for_layout(frame, layout, max_rows=max_rows, max_bytes=max_bytes)
    folder = Path(folder)
    if len(parts) == 1:
        return {folder / f"{campaign}.csv": table_writer(parts[0], ".csv")}
    return {folder / f"{campaign}.part{i}.csv": table_writer(part, ".csv")
            for i, part in enumerate(parts, start=1)}

