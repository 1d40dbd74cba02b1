"""The run summary marketers read: one self-contained HTML file per run.

:class:`RunSummary` gathers the segment summary, the campaign table, the segment
migration and the data-quality counts of a run and writes them as one HTML file:
inline CSS, plots embedded as base64 PNG, no script and no external resource, so the
file can be mailed or archived as is. Identical inputs give byte-identical files.

The report shows aggregates only. It never lists customers, and any text that looks
like an email address (in a warning, say) is replaced by ``[email removed]``.

Plots are drawn on Agg figures created directly (no pyplot, no global state); the
helpers take ``ax=None`` and return the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..io._format import decimal, integer, listing, money, number, percent
from ..io._html import Cell, Table, html_img, html_table, render, report_png
from ..io._validation import as_date, require_columns
from ..io.writers import write_all
from ..measurement.migration import GONE, NEW, Migration
from ..plotting import new_axes

if TYPE_CHECKING:
    import datetime as dt

    from matplotlib.axes import Axes

__all__ = ["CAMPAIGN_COLUMNS", "SEGMENT_COLUMNS", "RunSummary", "plot_campaigns",
           "plot_segments", "write_heatmap_png"]

#: Columns of the segment summary (see :func:`rfm_engine.segment_summary`).
SEGMENT_COLUMNS = ["segment", "customers", "share", "revenue", "revenue_share",
                   "mean_recency_days", "mean_frequency", "mean_monetary"]
#: Columns of the campaign table; ``exported`` is accepted for ``targets``. Only
#: ``campaign`` and ``targets`` are required.
CAMPAIGN_COLUMNS = ["campaign", "type", "channel", "segments", "candidates", "suppressed",
                    "excluded", "holdout", "targets"]
#: Parts of a campaign's candidates, in stacking order, with their colours.
_CAMPAIGN_PARTS = {"targets": "#2b8cbe", "holdout": "#a6bddb", "suppressed": "#fdae6b",
                   "excluded": "#d9d9d9"}
# The HTML tables: column -> (header, formatter, numeric).
_SEGMENT_TABLE = {
    "segment": ("Segment", str, False),
    "customers": ("Customers", integer, True),
    "share": ("Share of customers", percent, True),
    "revenue": ("Revenue", money, True),
    "revenue_share": ("Share of revenue", percent, True),
    "mean_recency_days": ("Mean days since last purchase", decimal, True),
    "mean_frequency": ("Mean orders", decimal, True),
    "mean_monetary": ("Mean revenue per customer", money, True),
    "predicted_clv": ("Predicted CLV", money, True),
    "mean_clv": ("Mean predicted CLV", money, True),
    "mean_p_alive": ("Mean P(alive)", percent, True),
}
_CAMPAIGN_TABLE = {
    "campaign": ("Campaign", str, False),
    "type": ("Type", listing, False),
    "channel": ("Channel", listing, False),
    "segments": ("Segments", listing, False),
    "candidates": ("Candidates", integer, True),
    "suppressed": ("Suppressed", integer, True),
    "excluded": ("Excluded", integer, True),
    "no_consent": ("of which no consent", integer, True),
    "holdout": ("Holdout", integer, True),
    "targets": ("Targets (exported)", integer, True),
}


def _campaign_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Check the campaign table; read ``exported`` as ``targets``."""
    if "targets" not in table.columns and "exported" in table.columns:
        table = table.rename(columns={"exported": "targets"})
    require_columns(table, ["campaign", "targets"], "campaign table")
    return table


# --------------------------------------------------------------------------- plots


def plot_segments(summary: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bar chart of each segment's share of customers and share of revenue.

    Parameters
    ----------
    summary : DataFrame
        The segment summary (``segment, share, revenue_share``), in display order.
    ax : Axes, optional
        Where to draw; a new Agg figure when omitted.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"segment": ["champions", "at_risk"], "share": [0.2, 0.8],
    ...                         "revenue_share": [0.7, 0.3]})
    >>> ax = plot_segments(summary)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['champions', 'at_risk']
    """
    require_columns(summary, ["segment", "share", "revenue_share"], "segment summary")
    n = len(summary)
    if ax is None:
        ax = new_axes(7.5, 1.4 + 0.42 * max(n, 1))
    y = np.arange(n)
    height = 0.38
    parts = [("share", "share of customers", "#a6bddb", -height / 2),
             ("revenue_share", "share of revenue", "#2b8cbe", height / 2)]
    for column, label, color, offset in parts:
        values = summary[column].astype(float).fillna(0.0).to_numpy()
        bars = ax.barh(y + offset, values, height=height, color=color, label=label)
        ax.bar_label(bars, labels=[f"{v:.0%}" if v >= 0.005 else "" for v in values],
                     padding=2, fontsize=8)
    ax.set_yticks(y, [str(s) for s in summary["segment"]])
    ax.invert_yaxis()
    top = float(np.nanmax(summary[["share", "revenue_share"]].to_numpy(dtype=float),
                          initial=0.0))
    ax.set_xlim(0, max(top * 1.15, 0.05))
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    ax.set_title("Customers and revenue per segment")
    ax.legend(loc="lower right", frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_campaigns(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Stacked bars of each campaign's targets, holdout, suppressed and excluded.

    Parameters
    ----------
    table : DataFrame
        The campaign table (``campaign`` and ``targets`` or ``exported``; the
        ``holdout``, ``suppressed`` and ``excluded`` counts when present).
    ax : Axes, optional
        Where to draw; a new Agg figure when omitted.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"campaign": ["winback"], "targets": [90], "holdout": [10],
    ...                       "suppressed": [5], "excluded": [2]})
    >>> ax = plot_campaigns(table)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['targets', 'holdout', 'suppressed', 'excluded']
    """
    table = _campaign_frame(table)
    n = len(table)
    if ax is None:
        ax = new_axes(7.5, 1.5 + 0.45 * max(n, 1))
    ax.set_title("Campaign lists: who is contacted, held out or left out")
    if n == 0:
        ax.text(0.5, 0.5, "No campaign in this run", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    y = np.arange(n)
    parts = [p for p in _CAMPAIGN_PARTS if p in table.columns]
    values = table[parts].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(float)
    totals = values.sum(axis=1)
    widest = float(totals.max()) or 1.0
    left = np.zeros(n)
    for k, part in enumerate(parts):
        bars = ax.barh(y, values[:, k], left=left, height=0.6, color=_CAMPAIGN_PARTS[part],
                       label=part)
        labels = [f"{v:,.0f}" if v >= 0.06 * widest else "" for v in values[:, k]]
        ax.bar_label(bars, labels=labels, label_type="center", fontsize=8,
                     color="white" if part == "targets" else "#1a1a1a")
        left += values[:, k]
    for i, total in enumerate(totals):
        ax.text(total + 0.01 * widest, i, f"{total:,.0f}", va="center", fontsize=8,
                color="#555555")
    ax.set_yticks(y, [str(c) for c in table["campaign"]])
    ax.invert_yaxis()
    ax.set_xlim(0, widest * 1.1)
    ax.margins(y=0.1)
    ax.set_xlabel("customers")
    ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=len(parts),
              frameon=False, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def write_heatmap_png(migration: Migration, path: str | Path) -> Path:
    """Write the migration heatmap as a PNG (reproducible bytes), atomically.

    Parameters
    ----------
    migration : Migration
        From :func:`rfm_engine.measurement.migration.migrate`.
    path : str or Path
        Target file, e.g. ``out/2025-12-29/migration/transition_matrix.png``; its
        folder is created.

    Returns
    -------
    Path
        The written path.

    Examples
    --------
    >>> import datetime as dt, tempfile, pathlib
    >>> import pandas as pd
    >>> from rfm_engine.measurement.migration import migrate
    >>> m = migrate(pd.DataFrame({"customer_id": ["a"], "segment": ["x"]}), None,
    ...             dt.date(2025, 1, 8))
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "migration" / "transition_matrix.png"
    >>> write_heatmap_png(m, target).read_bytes()[1:4]
    b'PNG'
    """
    png = report_png(migration.plot_heatmap().figure)
    return write_all({Path(path): lambda tmp: tmp.write_bytes(png)}, force=True)[0]


# --------------------------------------------------------------------------- report


class RunSummary:
    """The summary of one run, written as a self-contained HTML page.

    Parameters
    ----------
    segments : DataFrame
        The segment summary, columns :data:`SEGMENT_COLUMNS` (from
        :func:`rfm_engine.segment_summary`), in display order.
    campaigns : DataFrame, optional
        One row per campaign, columns :data:`CAMPAIGN_COLUMNS` (``exported`` may stand
        for ``targets``).
    migration : Migration, optional
        The comparison with the previous run.
    quality : Mapping or DataQualityReport, optional
        The data-quality counts (``DataQualityReport.to_dict()`` or the report).
    as_of : date or str
        As-of date of the run.
    input_name : str, default=""
        The input the run read (a file name or table).
    counts : Mapping, optional
        Further headline numbers, name -> value (e.g. ``{"rows read": 1000}``).
    title : str, default="RFM run summary"
        Page title.
    lists : Mapping, optional
        Campaign -> its list file(s), as paths relative to the page (the weekly run:
        ``campaigns/<campaign>.csv``): linked under the campaign table.
    segment_notes : sequence of str, optional
        Shown under the segment table (e.g. why there is no predicted CLV).

    Examples
    --------
    >>> import pandas as pd
    >>> segments = pd.DataFrame({
    ...     "segment": ["champions", "at_risk"], "customers": [2, 8], "share": [0.2, 0.8],
    ...     "revenue": [700.0, 300.0], "revenue_share": [0.7, 0.3],
    ...     "mean_recency_days": [5.0, 120.0], "mean_frequency": [6.0, 1.5],
    ...     "mean_monetary": [350.0, 37.5]})
    >>> report = RunSummary(segments, as_of="2025-12-29", input_name="orders.csv")
    >>> report.headline["customers"], report.headline["revenue"]
    (10, 1000.0)
    >>> report.to_html().startswith("<!DOCTYPE html>")
    True
    """

    def __init__(
        self,
        segments: pd.DataFrame,
        campaigns: pd.DataFrame | None = None,
        migration: Migration | None = None,
        quality: Mapping[str, Any] | Any | None = None,
        *,
        as_of: dt.date | str,
        input_name: str = "",
        counts: Mapping[str, Any] | None = None,
        title: str = "RFM run summary",
        lists: Mapping[str, Sequence[str]] | None = None,
        segment_notes: Sequence[str] = (),
    ) -> None:
        require_columns(segments, SEGMENT_COLUMNS, "segment summary")
        self.segments = segments
        self.campaigns = None if campaigns is None else _campaign_frame(campaigns)
        self.migration = migration
        self.quality = dict(quality.to_dict() if hasattr(quality, "to_dict") else quality or {})
        self.as_of = as_date(as_of, "as_of")
        self.input_name = input_name
        self.counts = dict(counts or {})
        self.title = title
        self.lists = {str(k): [str(p) for p in v] for k, v in (lists or {}).items()}
        self.segment_notes = [str(n) for n in segment_notes]

    def __repr__(self) -> str:
        return (f"RunSummary(as_of={self.as_of.isoformat()}, input_name={self.input_name!r}, "
                f"segments={len(self.segments)}, "
                f"campaigns={0 if self.campaigns is None else len(self.campaigns)})")

    @cached_property
    def headline(self) -> dict[str, Any]:
        """The numbers at the top of the page, name -> value (``counts`` last)."""
        seg = self.segments
        out: dict[str, Any] = {
            "customers": int(seg["customers"].sum()),
            "revenue": float(seg["revenue"].sum()),
            "segments with customers": int((seg["customers"] > 0).sum()),
        }
        if len(seg) and seg["revenue_share"].notna().any():
            top = seg.loc[seg["revenue_share"].astype(float).idxmax()]
            out["top revenue segment"] = f"{top['segment']} ({float(top['revenue_share']):.0%})"
        if self.campaigns is not None:
            for part in ("targets", "holdout", "suppressed", "excluded"):
                if part in self.campaigns.columns:
                    values = pd.to_numeric(self.campaigns[part], errors="coerce")
                    out[part] = int(values.fillna(0).sum())
        if self.migration is not None and self.migration.has_previous:
            out["moved share"] = self.migration.moved_share
            out["new customers"] = self.migration.n_new
            out["gone customers"] = self.migration.n_gone
        out.update(self.counts)
        return out

    def to_html(self) -> str:
        """Return the report as one self-contained HTML document.

        Rendered from the template ``reports/templates/summary.html.j2`` (autoescape on).

        Returns
        -------
        str
            HTML with inline CSS and base64 PNG plots; no script, no external link.
        """
        meta = f"As of {self.as_of.isoformat()}"
        if self.input_name:
            meta += f" · input: {self.input_name}"
        campaigns = self.campaigns is not None and not self.campaigns.empty
        return render(
            "summary.html.j2", title=f"{self.title} — {self.as_of.isoformat()}",
            heading=self.title, meta=meta, cards=self._cards(),
            segments=html_table(self.segments, _SEGMENT_TABLE), segment_notes=self.segment_notes,
            segments_plot=html_img(plot_segments(self.segments).figure,
                               "Share of customers and of revenue per segment"),
            campaigns=html_table(self.campaigns, _CAMPAIGN_TABLE) if campaigns else None,
            campaigns_plot=html_img(plot_campaigns(self.campaigns).figure,
                                "Targets, holdout, suppressed and excluded customers per "
                                "campaign") if campaigns else None,
            lists=self._list_links(),
            migration=self._migration_section(), quality=self._quality_section())

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (UTF-8), atomically; return the path."""
        text = self.to_html()
        return write_all({Path(path): lambda tmp: tmp.write_text(text, encoding="utf-8")},
                         force=True)[0]

    # ----------------------------------------------------------------- sections

    def _cards(self) -> list[tuple[str, str]]:
        """Return the headline as (shown value, label) pairs."""
        cards = []
        for name, value in self.headline.items():
            if name == "revenue":
                shown = money(value)
            elif name == "moved share":
                shown = percent(value)
            else:
                shown = number(value)
            cards.append((shown, name))
        return cards

    def _list_links(self) -> list[tuple[str, list[str], str]]:
        """Return (campaign, list files, targets shown) per campaign with a list, in order."""
        targets: dict[str, object] = {}
        if self.campaigns is not None:
            targets = dict(zip(self.campaigns["campaign"].astype(str),
                               self.campaigns["targets"], strict=True))
        return [(name, paths, number(targets[name]) if name in targets else "")
                for name, paths in self.lists.items() if paths]

    def _migration_section(self) -> dict[str, Any] | None:
        """Return the migration section's data; None when migration was not computed."""
        m = self.migration
        if m is None:
            return None
        if not m.has_previous:
            # first run: every customer is new (counted, whatever holds the customer table)
            return {"has_previous": False, "customers": f"{m.n_new:,}"}
        moved = percent(m.moved_share)
        text = (f"{moved} of the customers present in both runs changed segment; "
                f"{m.n_new:,} new customers, {m.n_gone:,} gone since the previous run.")
        moves = m.to_frame()
        moves = moves[moves["from"] != moves["to"]]
        moves = moves.sort_values("customers", ascending=False, kind="stable").head(10)
        columns = {
            "from": ("From", str, False),
            "to": ("To", str, False),
            "customers": ("Customers", integer, True),
            "share_of_from": ("Share of 'from'", percent, True),
        }
        legend = (f"Rows: segment in the previous run ({NEW}: not in it). Columns: segment "
                  f"now ({GONE}: no longer in the customer table). Colour: share of the row; "
                  "numbers: customers.")
        return {"has_previous": True, "text": text, "legend": legend,
                "heatmap": html_img(m.plot_heatmap().figure, "Segment migration heatmap"),
                "moves": html_table(moves, columns)}

    def _quality_section(self) -> dict[str, Any] | None:
        """Return the data-quality table (no header) and its lists; None without one."""
        if not self.quality:
            return None
        rows: list[tuple[str, object]] = []
        notes: dict[str, list[object]] = {}
        for key, value in self.quality.items():
            if isinstance(value, Mapping):
                rows += [(f"{key}: {k}", v) for k, v in value.items()]
            elif isinstance(value, list | tuple):
                notes[str(key)] = list(value)
            else:
                rows.append((str(key), value))
        body = [[Cell(key.replace("_", " ")),
                 Cell(number(value), isinstance(value, int | float | np.integer | np.floating))]
                for key, value in rows]
        return {"table": Table([], body),
                "notes": [(key.replace("_", " ").capitalize(), items)
                          for key, items in notes.items() if items]}
