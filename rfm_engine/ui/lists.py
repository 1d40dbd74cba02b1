"""Build a send list on the page: the weekly run's own rules, then a verified download.

A marketer picks segments and filters (:class:`ListSpec`); :func:`build_list` turns them
into one ad hoc :class:`~rfm_engine.campaigns.plan.Campaign` over the filtered customers of
a published run and calls the weekly run's
:func:`~rfm_engine.campaigns.assign.assign_campaigns` with the same inputs the run gave it:
the suppression list (the run's suppression files, read again and checked for freshness
as the run does), the consent the run recorded (``email_consent``), the formula
quarantine (:func:`~rfm_engine.campaigns.exports.formula_cells` over the contact fields),
address validity, one row per address, the deterministic holdout and the cap. So the
count shown is the count after suppression and holdout, by the same code.

:func:`export_list` writes the targets with the weekly run's
:func:`~rfm_engine.campaigns.exports.export_writers` (the layouts, HubSpot parts) into a
private temporary folder, re-reads them with
:func:`~rfm_engine.campaigns.suppression.verify_no_suppressed` (and against the customers
without consent), and returns the bytes; the temporary files are removed. For the segments
of one of the run's campaigns, with its name and holdout, the file is byte for byte the
list the run wrote (``tests/test_ui.py`` checks it).

:func:`record_download` appends one JSON line per download to ``<run>/ui_downloads.jsonl``:
the time, the spec (segments and filters), the layout, the counts and each file's sha256
and rows. Never an address: the spec holds none and the counts are numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..campaigns.assign import assign_campaigns, campaign_counts
from ..campaigns.exports import LAYOUTS, export_writers, formula_cells, overlong_first_names
from ..campaigns.plan import Campaign
from ..campaigns.suppression import (
    SuppressionList,
    check_freshness,
    email_ids,
    is_valid_email,
    load_suppression,
    verify_no_suppressed,
)
from ..errors import ComplianceError, ConfigError
from ..io.writers import json_text, write_all
from ..runs.weekly import check_suppression_source
from .folders import RunFolder

__all__ = ["AUDIT_FILE", "BuiltList", "Download", "ListSpec", "build_list", "export_list",
           "filter_customers", "record_download", "run_list_download", "run_suppression",
           "segments_of"]

#: The audit log of downloads, in the run folder: one JSON object per line.
AUDIT_FILE = "ui_downloads.jsonl"
#: Columns the weekly run treats as a customer's contact fields (formula quarantine).
_CONTACT_COLUMNS = ("customer_id", "email", "first_name")
#: Columns :func:`assign_campaigns` writes; a run's own are dropped before assigning again.
_ASSIGNED = ("campaign", "campaign_type", "channel", "group", "exclusion_reason",
             "holdout_draw")
_SUGGESTION_COLUMNS = ("cross_sell", "upsell")


@dataclass(frozen=True)
class ListSpec:
    """What a marketer asked for: segments, filters and how the list is sent.

    Parameters
    ----------
    segments : tuple of str
        Segments whose customers the list claims (at least one).
    name : str, default="custom_list"
        The list's name: the campaign name in the file and the holdout's seed (a slug).
    campaign_type : {"activation", "retention", "resurrection"}, default="retention"
        Resurrection lists carry the run's ``cross_sell``/``upsell`` columns when present.
    channel : {"email", "push", "sms"}, default="email"
        Email lists need a valid address, consent (when the run had a consent file) and
        are written in the chosen layout; other channels in ``generic`` without email.
    holdout_fraction : float, default=0.1
        Share kept out as a control group, by the weekly run's deterministic draw.
    max_size : int or None, default=None
        At most this many targets (the highest spenders).
    recency_days, monetary, frequency : (low, high) or None
        Inclusive ranges of the customer table's columns; None: no filter.
    has_email : bool, default=False
        Only customers with an address (email lists require one anyway).
    countries, clusters : tuple or None
        Only these values of ``country`` / ``cluster_name``; None: no filter.
    """

    segments: tuple[str, ...]
    name: str = "custom_list"
    campaign_type: str = "retention"
    channel: str = "email"
    holdout_fraction: float = 0.1
    max_size: int | None = None
    recency_days: tuple[float, float] | None = None
    monetary: tuple[float, float] | None = None
    frequency: tuple[float, float] | None = None
    has_email: bool = False
    countries: tuple[str, ...] | None = None
    clusters: tuple[str, ...] | None = None

    def campaign(self) -> Campaign:
        """Return the ad hoc campaign (validated like a ``[[campaigns]]`` entry)."""
        return Campaign(self.name, self.campaign_type, tuple(self.segments),
                        channel=self.channel, holdout_fraction=self.holdout_fraction,
                        max_size=self.max_size)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain JSON values (for the audit record)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


@dataclass
class BuiltList:
    """A list built by :func:`build_list`.

    Attributes
    ----------
    spec : ListSpec
        What was asked.
    as_of : datetime.date
        The run's as-of date (seeds the holdout).
    customers : DataFrame
        The filtered customers with the assignment's columns (``group``, ...).
    counts : dict
        ``campaign_counts`` of the list: candidates, each exclusion reason, holdout,
        targets.
    suppressions : SuppressionList
        The suppression list applied (verified again after writing).
    warnings : list of str
        E.g. a run whose suppression was waived on purpose.
    """

    spec: ListSpec
    as_of: dt.date
    customers: pd.DataFrame
    counts: dict[str, int]
    suppressions: SuppressionList
    warnings: list[str] = field(default_factory=list)

    @property
    def targets(self) -> pd.DataFrame:
        """The rows that go into the file."""
        return self.customers[self.customers["group"] == "target"]


@dataclass(frozen=True)
class Download:
    """The exported file, verified, ready to hand to the browser.

    Attributes
    ----------
    file_name : str
        ``<name>.csv``, or ``<name>.zip`` holding the HubSpot parts.
    data : bytes
        The file's bytes.
    mime : str
        ``text/csv`` or ``application/zip``.
    files : list of dict
        ``{"name", "sha256", "rows"}`` per written file (no addresses).
    layout : str
        The layout written.
    refused : int
        Targets left out because the layout's tool would refuse them (an address it
        does not accept, a first name longer than it keeps): the list is built before
        the layout is chosen, so they are dropped here, and counted.
    """

    file_name: str
    data: bytes
    mime: str
    files: list[dict[str, Any]]
    layout: str
    refused: int = 0

    @property
    def sha256(self) -> str:
        """The sha256 of :attr:`data`."""
        return hashlib.sha256(self.data).hexdigest()


def run_suppression(run: RunFolder, campaign: Campaign) -> tuple[SuppressionList, list[str]]:
    """Read the run's suppression files again, with the run's freshness rule.

    The paths, ``no_suppression``, ``max_suppression_age_days`` and
    ``allow_stale_suppression`` come from the run's effective config (its manifest).
    Files are read as they are now: an opt-out recorded since the run is honoured.

    Parameters
    ----------
    run : RunFolder
        The run.
    campaign : Campaign
        The list's campaign: by email, the freshness limit and a suppression source are
        required, as in the weekly run.

    Returns
    -------
    SuppressionList, list of str
        The list and the warnings (a stale file used on purpose, a waived suppression).

    Raises
    ------
    ComplianceError
        An email list without a suppression source (unless the run waived it), or a stale
        file (unless the run allowed it).
    InputError
        A suppression file that cannot be read (moved or deleted since the run).
    """
    output = run.manifest.get("config", {}).get("output", {})
    paths = list(output.get("suppression") or [])
    waived = bool(output.get("no_suppression"))
    warnings: list[str] = []
    email = campaign.channel == "email"
    if email:
        check_suppression_source((campaign,), paths, waived)
    if not paths:
        if email:
            warnings.append("this run waived suppression on purpose (--no-suppression): the "
                            "list is not filtered by any suppression file.")
        return SuppressionList.empty(), warnings
    suppressions = load_suppression(paths)
    warnings += check_freshness(suppressions, int(output.get("max_suppression_age_days", 7)),
                                allow_stale=bool(output.get("allow_stale_suppression"))
                                or not email)
    return suppressions, warnings


def _between(values: pd.Series, bounds: tuple[float, float] | None) -> np.ndarray:
    if bounds is None:
        return np.ones(len(values), dtype=bool)
    low, high = bounds
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return (numbers >= low) & (numbers <= high)


def filter_customers(customers: pd.DataFrame, spec: ListSpec) -> pd.DataFrame:
    """Return the customers of ``spec.segments`` that pass its filters.

    Parameters
    ----------
    customers : DataFrame
        A run's ``customers.parquet``.
    spec : ListSpec
        The filters.

    Returns
    -------
    DataFrame
        The rows kept, in the table's order.
    """
    keep = np.array(customers["segment"].isin(spec.segments), dtype=bool)  # a writable copy
    keep &= _between(customers["recency_days"], spec.recency_days)
    keep &= _between(customers["monetary"], spec.monetary)
    keep &= _between(customers["frequency"], spec.frequency)
    if spec.has_email and "email" in customers:
        keep &= customers["email"].notna().to_numpy(dtype=bool)
    for column, wanted in (("country", spec.countries), ("cluster_name", spec.clusters)):
        if wanted is not None and column in customers:
            keep &= customers[column].isin(wanted).to_numpy(dtype=bool)
    return customers[keep]


def build_list(run: RunFolder, spec: ListSpec, *,
               suppressions: SuppressionList | None = None) -> BuiltList:
    """Assign the filtered customers of ``run`` to the list, by the weekly run's rules.

    Parameters
    ----------
    run : RunFolder
        The published run.
    spec : ListSpec
        Segments, filters and sending options.
    suppressions : SuppressionList, optional
        Default: :func:`run_suppression` (the run's files, read now).

    Returns
    -------
    BuiltList

    Raises
    ------
    ConfigError
        An invalid spec (a name that is not a slug, a holdout outside [0, 0.9], ...).
    ComplianceError
        As :func:`run_suppression`.
    """
    campaign = spec.campaign()
    warnings: list[str] = []
    if suppressions is None:
        suppressions, warnings = run_suppression(run, campaign)
    chosen = filter_customers(run.customers, spec)
    table = chosen.drop(columns=[c for c in _ASSIGNED if c in chosen.columns])
    if "email" not in table:
        table = table.assign(email=pd.Series(pd.NA, index=table.index, dtype="string"))
    table = table.assign(email_valid=is_valid_email(table["email"]))
    contact = table[[c for c in _CONTACT_COLUMNS if c in table]]
    no_consent = (~table["email_consent"].to_numpy(dtype=bool)
                  if "email_consent" in table else None)
    assignment = assign_campaigns(table, (campaign,), as_of=run.as_of,
                                  suppressed=suppressions.mask(table),
                                  quarantined=formula_cells(contact).to_numpy(),
                                  no_consent=no_consent)
    out = pd.concat([table, assignment], axis=1)
    counts = campaign_counts(out, (campaign,)).iloc[0]
    return BuiltList(spec, run.as_of, out, {k: int(v) for k, v in counts.items()},
                     suppressions, warnings)


def export_list(built: BuiltList, layout: str) -> Download:
    """Write the list's targets in ``layout``, verify the files, and return their bytes.

    The weekly run's writers and checks: :func:`export_writers` (layout, sort order,
    HubSpot parts, formula cells refused), then every file is re-read and proven free of
    suppressed people and, when the run recorded consent, of customers without it
    (:class:`~rfm_engine.errors.ComplianceError` otherwise: nothing is returned). The
    files live in a private temporary folder, removed before returning.

    Parameters
    ----------
    built : BuiltList
        From :func:`build_list`.
    layout : {"generic", "mailchimp", "klaviyo", "hubspot", "braze"}
        The email tool's layout (lists of other channels are ``generic``, without email).

    Returns
    -------
    Download
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"The export format must be one of {', '.join(LAYOUTS)}. "
                          f"Got {layout!r} instead.")
    spec, table = built.spec, built.customers
    email = spec.channel == "email"
    targets = built.targets.drop(columns=["email_valid"])
    if not email:
        targets = targets.drop(columns=["email"])
        layout = "generic"
    extras = [c for c in _SUGGESTION_COLUMNS
              if c in targets and spec.campaign_type == "resurrection"]
    refused = overlong_first_names(targets, layout)
    if email:
        refused |= ~is_valid_email(targets["email"], layout)
    targets = targets[~refused.to_numpy()]
    with tempfile.TemporaryDirectory(prefix="rfm-engine-ui-") as folder:
        writers = export_writers(spec.name, targets, layout, folder, extra_columns=extras)
        paths = write_all(writers, force=True)
        by_id = built.suppressions.mask(table[["customer_id"]])
        verify_no_suppressed(paths, built.suppressions, email_ids=email_ids(table, by_id))
        if email and "email_consent" in table:
            no_consent = ~table["email_consent"].to_numpy(dtype=bool)
            targeted = (table["group"] == "target").to_numpy()
            verify_no_suppressed(paths, SuppressionList(
                customer_ids=table.loc[no_consent, "customer_id"]),
                email_ids=email_ids(table, no_consent & targeted), check="consent")
        files = [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                  "rows": writers[p].rows} for p in paths]
        if len(paths) == 1:
            return Download(paths[0].name, paths[0].read_bytes(), "text/csv", files, layout,
                            int(refused.sum()))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                archive.write(path, path.name)
        return Download(f"{spec.name}.zip", buffer.getvalue(), "application/zip", files, layout,
                        int(refused.sum()))


def record_download(run: RunFolder, download: Download, *,
                    built: BuiltList | None = None, source: str = "built list",
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """Append the audit record of one download to ``<run>/ui_downloads.jsonl``.

    Parameters
    ----------
    run : RunFolder
        The run the list came from.
    download : Download
        What was handed out.
    built : BuiltList, optional
        The list built on the page (its spec and counts are recorded); None for a list
        the run wrote (``source="run list"``).
    source : str, default="built list"
        What was downloaded.
    now : datetime, optional
        The time recorded (default: now, UTC).

    Returns
    -------
    dict
        The record written: ``time``, ``as_of``, ``source``, ``file``, ``layout``,
        ``rows``, ``sha256``, ``files`` and, for a built list, ``spec`` and ``counts``.
        No address.
    """
    when = now or dt.datetime.now(dt.UTC)
    record: dict[str, Any] = {
        "time": when.isoformat(timespec="seconds"),
        "as_of": run.as_of.isoformat(),
        "source": source,
        "file": download.file_name,
        "layout": download.layout,
        "rows": sum(int(f["rows"]) for f in download.files if f.get("rows") is not None),
        "sha256": download.sha256,
        "files": download.files,
    }
    if built is not None:
        record["spec"] = built.spec.to_dict()
        record["counts"] = built.counts
    line = json_text(record, indent=None, sort_keys=True, ensure_ascii=False)
    fd = os.open(run.path / AUDIT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))  # one write per record: lines never interleave
    finally:
        os.close(fd)
    return record


def run_list_download(run: RunFolder, campaign: str) -> Download:
    """Return the send list(s) of ``campaign`` exactly as the run wrote them.

    Parameters
    ----------
    run : RunFolder
        The run.
    campaign : str
        One of the run's campaigns.

    Returns
    -------
    Download
        The file's bytes (a zip of the HubSpot parts when the list was split).

    Raises
    ------
    ComplianceError
        When the run has no file for the campaign.
    """
    paths = run.list_files(campaign)
    if not paths:
        raise ComplianceError(f"{run.path}: no list file for campaign {campaign!r}.")
    layout = _written_layout(run, campaign)
    files = [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
              "rows": _rows(run, p)} for p in paths]
    if len(paths) == 1:
        return Download(paths[0].name, paths[0].read_bytes(), "text/csv", files, layout)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.name)
    return Download(f"{campaign}.zip", buffer.getvalue(), "application/zip", files, layout)


def _written_layout(run: RunFolder, campaign: str) -> str:
    channels = run.campaign_channels()
    return run.layout if channels.get(campaign, "email") == "email" else "generic"


def _rows(run: RunFolder, path: Path) -> int | None:
    relative = path.relative_to(run.path).as_posix()
    for entry in run.manifest.get("outputs", []):
        if entry.get("path") == relative:
            return entry.get("rows")
    return None


def segments_of(customers: pd.DataFrame) -> Sequence[str]:
    """Return the segments of a run's customers, largest first."""
    return list(customers["segment"].value_counts().index.astype(str))

