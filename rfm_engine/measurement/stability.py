"""What refitting costs: week-over-week segment churn with a frozen scorer and a refitted one.

Quantile edges follow the data. Refit the scorer every week and a customer who did
nothing can still change segment, because *other* customers moved the edges (new
one-time buyers pull the frequency median down, say). Freeze the scorer fitted on the
first week and only a customer's own raw values move them, though recency keeps ageing
against edges that no longer match the customer base.

:func:`stability_report` replays a run of weekly as-of dates both ways and reports, for
each pair of consecutive weeks and for the customers present in both, the share whose
segment changed:

* ``moved_frozen``: with the scorer fitted on the first as-of date, reused every week;
* ``moved_refit``: with a scorer refitted on every as-of date;
* ``refit_cost``: ``moved_refit - moved_frozen``, the net churn refitting adds (it can
  be negative: refitted recency edges age with the customers, frozen ones do not);
* ``refit_only``: the share that moved with the refitted scorer but not with the frozen
  one: for them the raw change alone kept the segment, the new edges moved it;

and the share whose R, F and M scores changed, both ways.

The transactions are loaded and cleaned once, up to the last as-of date; each week then
reads them through a view limited to that week (``order_date <= as_of``, and the
``window_days`` window ending there), which gives the same rows as
``load_transactions(source, as_of=week)`` without parsing the source again.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core.features import customer_features
from ..core.orders import drop_orders_table
from ..core.pipeline import segment_customers
from ..core.scoring import RFMScorer
from ..core.segments import RuleSet, load_rules
from ..errors import ConfigError
from ..io._format import integer, percent
from ..io._validation import as_date, is_int
from ..io.loading import Transactions, load_transactions
from ..io.sources import sql_literal
from ..io.writers import json_text, plain_json
from ..plotting import new_axes
from ..progress import step

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes

__all__ = ["STABILITY_COLUMNS", "StabilityReport", "stability_report"]

#: Columns of :meth:`StabilityReport.to_frame`, in order.
STABILITY_COLUMNS = [
    "week", "previous_as_of", "as_of", "customers", "new_customers",
    "moved_frozen", "moved_refit", "refit_cost", "refit_only",
    "r_changed_frozen", "f_changed_frozen", "m_changed_frozen",
    "r_changed_refit", "f_changed_refit", "m_changed_refit",
]
#: Columns kept per customer and week: the scores and the segment.
_KEPT = ["customer_id", "r_score", "f_score", "m_score", "segment"]
_SHARES = STABILITY_COLUMNS[5:]
_FROZEN_COLOR, _REFIT_COLOR = "#2b8cbe", "#e6550d"
_VIEW, _ALL_ROWS = "transactions", "_rfm_stability_rows"


class StabilityReport:
    """Week-over-week segment churn with a frozen scorer and with a refitted one.

    Built by :func:`stability_report`; the tables are computed on first use.

    Parameters
    ----------
    as_of_dates : sequence of date
        The as-of dates, ascending.
    frozen, refitted : sequence of DataFrame
        One customer table per as-of date (``customer_id, r_score, f_score, m_score,
        segment``), scored with the scorer fitted on the first date (``frozen``) or with
        one fitted on that date (``refitted``).
    rules : str, default=""
        Name of the rule set that named the segments.
    n_bins : int, default=5
        Score levels of the scorers.
    scorers : sequence of RFMScorer, default=()
        The refitted scorer of each as-of date; the first is the frozen one.
    warnings : sequence of str, default=()
        Messages worth showing (collapsed bins, unmatched customers), once each.

    Attributes
    ----------
    as_of_dates : list of date
        As given.
    rules : str
        As given.
    n_bins : int
        As given.
    scorers : list of RFMScorer
        As given.
    warnings : list of str
        As given.
    """

    def __init__(self, as_of_dates: Sequence[dt.date], frozen: Sequence[pd.DataFrame],
                 refitted: Sequence[pd.DataFrame], *, rules: str = "", n_bins: int = 5,
                 scorers: Sequence[RFMScorer] = (), warnings: Sequence[str] = ()) -> None:
        self.as_of_dates = list(as_of_dates)
        self._frozen = list(frozen)
        self._refitted = list(refitted)
        self.rules = rules
        self.n_bins = n_bins
        self.scorers = list(scorers)
        self.warnings = list(warnings)

    def __repr__(self) -> str:
        first, last = self.as_of_dates[0], self.as_of_dates[-1]
        s = self.summary
        return (f"StabilityReport({first.isoformat()}..{last.isoformat()}, "
                f"comparisons={s['comparisons']}, moved_frozen={percent(s['moved_frozen'])}, "
                f"moved_refit={percent(s['moved_refit'])})")

    # ------------------------------------------------------------------ tables

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per pair of consecutive as-of dates; see :meth:`to_frame`."""
        rows = []
        for week in range(1, len(self.as_of_dates)):
            rows.append({
                "week": week,
                "previous_as_of": self.as_of_dates[week - 1],
                "as_of": self.as_of_dates[week],
                **_compare(self._frozen[week - 1], self._frozen[week],
                           self._refitted[week - 1], self._refitted[week]),
            })
        table = pd.DataFrame(rows, columns=STABILITY_COLUMNS)
        table[["week", "customers", "new_customers"]] = (
            table[["week", "customers", "new_customers"]].astype("int64"))
        table[_SHARES] = table[_SHARES].astype("float64")
        return table

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Shares pooled over every comparison (customer-weeks), with the date range.

        Keys: ``comparisons``, ``first_as_of``, ``last_as_of``, ``customer_weeks`` and
        every share column of :meth:`to_frame` (NaN when no customer was in two weeks).
        """
        table = self.table
        total = int(table["customers"].sum())
        pooled = {c: (float((table[c].fillna(0.0) * table["customers"]).sum() / total)
                      if total else math.nan) for c in _SHARES}
        return {"comparisons": len(table), "first_as_of": self.as_of_dates[0],
                "last_as_of": self.as_of_dates[-1], "customer_weeks": total, **pooled}

    # ------------------------------------------------------------------ writers

    def to_frame(self) -> pd.DataFrame:
        """Return the comparison table, one row per pair of consecutive as-of dates.

        Returns
        -------
        DataFrame
            ``week`` (1 for the first comparison), ``previous_as_of``, ``as_of``,
            ``customers`` (present on both dates: the denominator of every share),
            ``new_customers`` (first seen on ``as_of``), ``moved_frozen``,
            ``moved_refit``, ``refit_cost`` (``moved_refit - moved_frozen``),
            ``refit_only`` (moved with the refitted scorer, not with the frozen one),
            ``r_changed_frozen``, ``f_changed_frozen``, ``m_changed_frozen``,
            ``r_changed_refit``, ``f_changed_refit``, ``m_changed_refit`` (shares whose
            score changed). Shares are NaN when no customer is present on both dates.
        """
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data: parameters, pooled summary and weeks."""
        weeks = plain_json(self.table.to_dict(orient="records"))
        return {
            "as_of_dates": [d.isoformat() for d in self.as_of_dates],
            "rules": self.rules,
            "n_bins": self.n_bins,
            "summary": plain_json(self.summary),
            "weeks": weeks,
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Return :meth:`to_dict` as JSON text (NaN written as ``null``)."""
        return json_text(self.to_dict(), indent=indent)

    def to_html(self) -> str:
        """Return the report as one self-contained HTML document (inline CSS, PNG plot).

        Rendered from the template ``reports/templates/stability.html.j2``.
        """
        from ..io._html import html_img, html_table, render

        columns = {
            "week": ("Week", str, True),
            "as_of": ("As of", str, False),
            "customers": ("Customers in both weeks", integer, True),
            "new_customers": ("New customers", integer, True),
            "moved_frozen": ("Moved, frozen scorer", percent, True),
            "moved_refit": ("Moved, refitted scorer", percent, True),
            "refit_cost": ("Refit cost", partial(percent, sign=True), True),
            "refit_only": ("Moved by refitting only", percent, True),
            **{f"{d}_changed_{how}": (f"{d.upper()} changed, {how}", percent, True)
               for how in ("frozen", "refit") for d in "rfm"},
        }
        s = self.summary
        title = "Segment stability: frozen vs refitted scorer"
        meta = (f"{s['comparisons']} weekly comparisons, {s['first_as_of'].isoformat()} to "
                f"{s['last_as_of'].isoformat()}; rules {self.rules!r}, n_bins {self.n_bins}. "
                f"Pooled over {s['customer_weeks']:,} customer-weeks: moved "
                f"{percent(s['moved_frozen'])} frozen, {percent(s['moved_refit'])} refitted, "
                f"{percent(s['refit_only'])} by refitting only.")
        return render("stability.html.j2", title=title, meta=meta, warnings=self.warnings,
                      plot=html_img(self.plot().figure,
                                    "share of customers changing segment per week"),
                      weeks=html_table(self.table, columns))

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (UTF-8), atomically; return the path."""
        from ..io.writers import text_writer, write_all

        return write_all({Path(path): text_writer(self.to_html())}, force=True)[0]

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot the share of customers changing segment per week, frozen vs refitted.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure (no pyplot) when omitted.

        Returns
        -------
        Axes
        """
        if ax is None:
            ax = new_axes(7.5, 3.6)
        table = self.table
        x = pd.to_datetime(pd.Series(table["as_of"], dtype="object"))
        ax.plot(x, table["moved_frozen"], marker="o", color=_FROZEN_COLOR,
                label="frozen scorer (fitted on the first week)")
        ax.plot(x, table["moved_refit"], marker="o", color=_REFIT_COLOR,
                label="scorer refitted every week")
        top = float(np.nanmax(table[["moved_frozen", "moved_refit"]].to_numpy(dtype=float),
                              initial=0.0)) if len(table) else 0.0
        ax.set_ylim(0, max(top * 1.15, 0.05))
        ax.set_xticks(x, [d.isoformat() for d in table["as_of"]])
        ax.yaxis.set_major_formatter(lambda y, _: f"{y:.0%}")
        ax.set_ylabel("customers changing segment")
        ax.set_xlabel("as of")
        ax.set_title("Week-over-week segment changes")
        ax.legend(loc="lower right", frameon=False, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        ax.figure.autofmt_xdate()
        return ax

    def __str__(self) -> str:
        s = self.summary
        lines = [
            f"segment stability, rules {self.rules!r}, n_bins {self.n_bins}: share of customers "
            "present in both weeks whose segment changed",
            f"{'week':>4}  {'as_of':<10}  {'customers':>9}  {'new':>6}  {'frozen':>7}  "
            f"{'refit':>7}  {'cost':>7}  {'refit only':>10}",
        ]
        for row in self.table.itertuples(index=False):
            lines.append(
                f"{row.week:>4}  {row.as_of.isoformat():<10}  {row.customers:>9,}  "
                f"{row.new_customers:>6,}  {percent(row.moved_frozen):>7}  "
                f"{percent(row.moved_refit):>7}  {percent(row.refit_cost, sign=True):>7}  "
                f"{percent(row.refit_only):>10}")
        lines.append(
            f"{'all':>4}  {'':<10}  {s['customer_weeks']:>9,}  {'':>6}  "
            f"{percent(s['moved_frozen']):>7}  {percent(s['moved_refit']):>7}  "
            f"{percent(s['refit_cost'], sign=True):>7}  {percent(s['refit_only']):>10}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def stability_report(
    source: str | Path | pd.DataFrame,
    *,
    as_of_dates: Sequence[str | dt.date] | None = None,
    weeks: int = 8,
    rules: str | RuleSet = "rf-grid",
    n_bins: int = 5,
    columns: Mapping[str, str] | None = None,
    **load_kwargs: Any,
) -> StabilityReport:
    r"""Measure how many customers change segment week over week, frozen vs refitted scorer.

    For each as-of date the customer table is computed as :func:`rfm_engine.load_transactions`
    with ``as_of=date`` would give it, scored twice and segmented: with the scorer fitted
    on the first as-of date (frozen) and with a scorer fitted on that date (refitted).
    Consecutive dates are then compared over the customers present on both.

    Parameters
    ----------
    source : str, Path or DataFrame
        Anything :func:`rfm_engine.load_transactions` takes; it is loaded once.
    as_of_dates : sequence of str or date, optional
        The as-of dates, ascending (a date may repeat), at least two; usually weekly.
        When omitted, ``weeks`` dates 7 days apart ending on ``as_of`` (a keyword of
        ``load_kwargs``) or on the latest transaction date.
    weeks : int, default=8
        Number of as-of dates when ``as_of_dates`` is omitted (``weeks - 1``
        comparisons); at least 2.
    rules : str or RuleSet, default="rf-grid"
        The rule set naming the segments, as for :func:`rfm_engine.segment_customers`.
    n_bins : int, default=5
        Score levels of the fitted scorers.
    columns : Mapping[str, str], optional
        Column mapping ``{canonical: source column}`` for the load.
    **load_kwargs
        Other options of :func:`rfm_engine.load_transactions` (``date_format``,
        ``on_bad_rows``, ``con``...). ``window_days`` applies to every as-of date.

    Returns
    -------
    StabilityReport

    Raises
    ------
    ConfigError
        A bad ``as_of_dates``, ``weeks`` or ``n_bins``, or ``as_of`` given together
        with ``as_of_dates``.
    EmptyResultError
        No customer with a purchase on or before an as-of date.

    Examples
    --------
    Four customers on 2024-01-31; four one-time buyers join by 2024-02-07 and pull
    the frequency median down from 2.5 to 1. Customer ``b`` (2 purchases, none that
    week) is still 'occasional' for the frozen scorer, but 'frequent' for the refitted
    one:

    >>> import pandas as pd
    >>> from rfm_engine import RuleSet
    >>> raw = pd.DataFrame({
    ...     "customer_id": list("abbcccdddd") + list("efgh"),
    ...     "order_date": ["2024-01-10", "2024-01-05", "2024-01-20", "2024-01-03",
    ...                    "2024-01-12", "2024-01-25", "2024-01-02", "2024-01-09",
    ...                    "2024-01-16", "2024-01-29"] + ["2024-02-05"] * 4,
    ...     "amount": 10.0})
    >>> rules = RuleSet.from_toml('name = "f2"\nn_bins = 2\n[[rules]]\nsegment = "frequent"\n'
    ...                           'f = 2\n[[rules]]\nsegment = "occasional"\nf = 1')
    >>> report = stability_report(raw, as_of_dates=["2024-01-31", "2024-02-07"],
    ...                           rules=rules, n_bins=2)
    >>> report.to_frame()[["customers", "moved_frozen", "moved_refit", "refit_only"]]
       customers  moved_frozen  moved_refit  refit_only
    0          4           0.0         0.25        0.25
    """
    rule_set = load_rules(rules)
    RFMScorer(n_bins)._validate_params()  # fail before the load, not after it
    dates, end = _check_dates(as_of_dates, weeks, load_kwargs)
    window_days = load_kwargs.pop("window_days", None)
    if window_days is not None and (not is_int(window_days) or window_days < 1):
        raise ConfigError(f"The 'window_days' parameter must be a positive int. "
                          f"Got {window_days!r} instead.")
    own_connection = "con" not in load_kwargs
    with step("stability: loading transactions"):
        tx = load_transactions(source, columns=columns, as_of=end, **load_kwargs)
    try:
        if dates is None:
            dates = [tx.as_of - dt.timedelta(days=7 * k) for k in range(weeks - 1, -1, -1)]
        frozen, refitted, scorers, messages = [], [], [], []
        scorer = None
        for as_of, customers in zip(dates, _weekly_customers(tx, dates, window_days),
                                    strict=True):
            with step(f"stability: scoring {as_of.isoformat()}"):
                refit = segment_customers(customers, rules=rule_set, n_bins=n_bins)
                if scorer is None:
                    scorer = refit.scorer
                kept = (refit if scorer is refit.scorer
                        else segment_customers(customers, rules=rule_set, scorer=scorer))
            refitted.append(refit.customers[_KEPT])
            frozen.append(kept.customers[_KEPT])
            scorers.append(refit.scorer)
            messages += [f"as of {as_of.isoformat()}: {m}" for m in refit.warnings]
    finally:
        if own_connection:
            tx.con.close()
    return StabilityReport(dates, frozen, refitted, rules=rule_set.name, n_bins=n_bins,
                           scorers=scorers, warnings=_dedupe(messages))


# --------------------------------------------------------------------------- helpers


def _check_dates(as_of_dates: Sequence[str | dt.date] | None, weeks: int,
                 load_kwargs: dict[str, Any]) -> tuple[list[dt.date] | None, dt.date | None]:
    """Return the parsed as-of dates (or None) and the last date to load up to."""
    if as_of_dates is None:
        if not is_int(weeks) or weeks < 2:
            raise ConfigError(f"The 'weeks' parameter must be an int >= 2. Got {weeks!r} "
                              "instead.")
        as_of = load_kwargs.pop("as_of", None)
        return None, None if as_of is None else as_date(as_of, "as_of")
    if "as_of" in load_kwargs:
        raise ConfigError("Give either 'as_of_dates' or 'as_of' (the last of 'weeks' weekly "
                          "dates), not both.")
    if isinstance(as_of_dates, str | dt.date) or not isinstance(as_of_dates, Sequence):
        raise ConfigError(f"The 'as_of_dates' parameter must be a list of at least two dates. "
                          f"Got {as_of_dates!r} instead.")
    dates = [as_date(d, "as_of_dates") for d in as_of_dates]
    if len(dates) < 2:
        raise ConfigError(f"The 'as_of_dates' parameter must hold at least two dates. "
                          f"Got {len(dates)}.")
    for earlier, later in zip(dates, dates[1:], strict=False):
        if later < earlier:
            raise ConfigError(f"The 'as_of_dates' parameter must be in ascending order; "
                              f"{later.isoformat()} comes after {earlier.isoformat()}.")
    return dates, dates[-1]


def _weekly_customers(tx: Transactions, dates: Sequence[dt.date],
                      window_days: int | None) -> Iterator[pd.DataFrame]:
    """Yield the customer table of each as-of date, from transactions loaded once.

    The ``transactions`` view (every clean row up to the last date) is set aside under
    another name; for each date ``transactions`` becomes that view limited to the date,
    so :func:`customer_features` reads exactly the rows a load with ``as_of=date`` would
    keep. The original view is put back at the end.
    """
    con = tx.con
    con.execute(f"ALTER VIEW {_VIEW} RENAME TO {_ALL_ROWS}")
    try:
        for as_of in dates:
            start = as_of - dt.timedelta(days=window_days - 1) if window_days else None
            where = f"order_date <= DATE {sql_literal(as_of.isoformat())}"
            if start is not None:
                where += f" AND order_date >= DATE {sql_literal(start.isoformat())}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {_VIEW} AS "
                        f"SELECT * FROM {_ALL_ROWS} WHERE {where}")
            week = dataclasses.replace(tx, as_of=as_of, window_start=start,
                                       report=copy.deepcopy(tx.report))
            customers = customer_features(week)
            drop_orders_table(week)  # each week's orders are its own
            yield customers
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_VIEW}")
        con.execute(f"ALTER VIEW {_ALL_ROWS} RENAME TO {_VIEW}")


def _compare(frozen_before: pd.DataFrame, frozen_now: pd.DataFrame,
             refit_before: pd.DataFrame, refit_now: pd.DataFrame) -> dict[str, float | int]:
    """Count and share the changes between two weeks, over customers present in both."""
    before_ids = pd.Index(frozen_before["customer_id"])
    now_ids = pd.Index(frozen_now["customer_id"])
    common = before_ids.intersection(now_ids)
    row: dict[str, float | int] = {"customers": len(common),
                                   "new_customers": len(now_ids.difference(before_ids))}
    moved = {}
    for how, before, now in (("frozen", frozen_before, frozen_now),
                             ("refit", refit_before, refit_now)):
        before = before.set_index("customer_id").loc[common]
        now = now.set_index("customer_id").loc[common]
        moved[how] = (before["segment"] != now["segment"]).to_numpy()
        for d in "rfm":
            changed = (before[f"{d}_score"] != now[f"{d}_score"]).to_numpy()
            row[f"{d}_changed_{how}"] = _share(changed)
    row["moved_frozen"] = _share(moved["frozen"])
    row["moved_refit"] = _share(moved["refit"])
    row["refit_cost"] = row["moved_refit"] - row["moved_frozen"]
    row["refit_only"] = _share(moved["refit"] & ~moved["frozen"])
    return row


def _share(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else math.nan




def _dedupe(messages: Sequence[str]) -> list[str]:
    """Drop repeats that differ only by their as-of prefix, keeping the first date."""
    seen: dict[str, str] = {}
    for message in messages:
        seen.setdefault(message.split(": ", 1)[-1], message)
    return list(seen.values())
