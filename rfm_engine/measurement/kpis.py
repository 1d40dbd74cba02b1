"""CRM KPIs per calendar month or quarter, computed from transactions in DuckDB.

:func:`transaction_kpis` measures, per period (and optionally per segment), how many
customers the business starts with, wins, keeps and loses, and what they buy;
:func:`cohort_retention` builds the first-purchase cohort matrix. Both read the cleaned
``transactions`` view of a :class:`~rfm_engine.io.loading.Transactions` and aggregate at
transaction scale in DuckDB; only the per-period tables reach pandas.

Orders and purchases are those of :func:`rfm_engine.core.orders.orders_table`, the table
the customer features read too: lines are grouped into orders by ``order_key``; every order
counts in revenue (net, returns subtracted) on the date of the order (its first line); an
order is a **purchase** when its net amount is above zero, or a free order (net exactly zero
with no return line). "Active", "new", "orders" and
"alive" are about purchases only, so a return never makes a customer active.

Every KPI of a period depends only on transactions up to the end of that period, so a
later run reproduces the rows of the complete periods of an earlier one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from ..core.orders import orders_table
from ..errors import ConfigError, MissingColumnsError
from ..io._format import decimal, integer, is_missing, money, percent
from ..io._validation import is_int, is_real, require_columns
from ..io.loading import Transactions, customer_id_sql
from ..io.sources import sql_literal
from ..plotting import compact_amount, label_periods, new_axes
from ..progress import step

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["KPI_COLUMNS", "PERIODS", "UNSEGMENTED", "KPITable", "SegmentFiles",
           "cohort_retention", "kpi_tables", "plot_cohort_heatmap", "transaction_kpis"]

class SegmentFiles:
    """``customer_id, segment`` of every customer in Parquet files, read in place by DuckDB.

    What the weekly run on Spark gives the KPI report and the segment table's CLV columns
    instead of a pandas table: Spark writes the two columns into the run's hand-off folder
    and DuckDB reads them from there (never the driver's memory as a whole).

    Parameters
    ----------
    path : str or Path
        A Parquet file, or a folder of ``*.parquet`` part files.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path
        self._files = sql_literal((path / "*.parquet").as_posix() if path.is_dir()
                                  else path.as_posix())

    def __repr__(self) -> str:
        return f"SegmentFiles({str(self.path)!r})"

    def sql(self) -> str:
        """Return the SQL table expression of the files (``read_parquet(...)``)."""
        return f"read_parquet({self._files})"

    def attach(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``frame``'s rows that have a segment, in their order, with ``segment``.

        ``frame.merge(segments, on="customer_id", how="inner")`` for a pandas table; the
        join runs in DuckDB.
        """
        con = duckdb.connect()
        try:
            con.register("_rfm_frame", frame.assign(_rfm_pos=np.arange(len(frame))))
            joined = con.execute(
                "SELECT f.* EXCLUDE (_rfm_pos), CAST(s.segment AS VARCHAR) AS segment "
                f"FROM _rfm_frame f JOIN {self.sql()} s USING (customer_id) "
                "ORDER BY f._rfm_pos").df()
        finally:
            con.close()
        return joined


#: Supported periods and their length in months.
PERIODS = {"month": 1, "quarter": 3}
#: Segment of the customers missing from the ``segments`` table.
UNSEGMENTED = "unsegmented"
#: Columns of :meth:`KPITable.to_frame`, in order (``segment`` only with ``by="segment"``;
#: ``costs``, ``cac``, ``clv_net_of_cac`` and ``clv_to_cac`` only when costs were given).
KPI_COLUMNS = (
    "period", "period_start", "period_end", "partial", "segment",
    "customers_at_start", "new_customers", "returning_customers", "active_customers",
    "customers_retained", "customers_lost", "customers_at_end",
    "retention_rate", "churn_rate",
    "orders", "repeat_customers", "repeat_rate_in_period",
    "customers_to_date", "repeat_customers_to_date", "repeat_rate_to_date",
    "purchase_frequency", "revenue", "gmv", "aov", "lifespan_periods", "clv",
    "costs", "cac", "clv_net_of_cac", "clv_to_cac",
)
_COUNTS = ("customers_at_start", "new_customers", "returning_customers", "active_customers",
           "customers_retained", "customers_at_end", "repeat_customers", "orders")
_RAW = (*_COUNTS, "revenue", "gmv", "lifespan_added", "repeaters_added")
_RETENTION_COLOR, _CHURN_COLOR, _GMV_COLOR = "#2b8cbe", "#e6550d", "#636363"
#: Largest number of periods whose cohort heatmap gets a number in each cell.
_MAX_LABELLED = 24


# --------------------------------------------------------------------------- the table


class KPITable:
    """CRM KPIs per period (and segment), as built by :func:`transaction_kpis`.

    The derived columns (rates, averages, CLV, CAC) are computed on first use from the
    per-period counts and sums DuckDB returned.

    Parameters
    ----------
    counts : DataFrame
        One row per period (and segment): ``period``, ``period_start``, ``period_end``,
        ``partial``, ``segment`` (with ``by="segment"``) and the raw counts and sums.
    period : {"month", "quarter"}
        The period.
    as_of : date
        Inclusive observation end of the transactions.
    by : {None, "segment"}, default=None
        Whether the rows are per segment.
    churn_days : int or None, default=90
        The churn rule the counts were computed with.
    lifespan_periods : float, optional
        Fixed customer lifespan for the CLV; the mean observed lifespan when omitted.
    costs : Series, optional
        Acquisition costs indexed by period label (``2024-01``, ``2024-Q1``).

    Attributes
    ----------
    period, as_of, by, churn_days, lifespan_periods : as given

    Examples
    --------
    ``a`` buys in January and March, ``b`` in January; ``a`` comes back in March (a
    returning customer, not a new one). ``print`` gives the table the CLI shows:

    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "b", "a"],
    ...                     "order_date": ["2024-01-05", "2024-01-20", "2024-01-10",
    ...                                    "2024-03-10"],
    ...                     "amount": [100.0, 50.0, 40.0, 60.0]})
    >>> kpis = transaction_kpis(load_transactions(raw), churn_days=None)
    >>> print(kpis)  # doctest: +NORMALIZE_WHITESPACE
    KPIs per month, as of 2024-03-10 (churned: no purchase in the month; CLV lifespan: mean observed)
      period start new active lost end retention  churn repeat repeat to date frequency   AOV revenue    GMV    CLV
     2024-01     0   2      2    0   2       n/a    n/a  50.0%          50.0%      1.50 63.33  190.00 190.00  95.00
     2024-02     2   0      0    2   0      0.0% 100.0%    n/a          50.0%       n/a   n/a    0.00   0.00    n/a
    2024-03*     0   0      1    0   1       n/a    n/a   0.0%          50.0%      1.00 60.00   60.00  60.00 120.00
    * partial month: not wholly observed (as of 2024-03-10)
    """  # noqa: E501

    def __init__(self, counts: pd.DataFrame, *, period: str, as_of: dt.date,
                 by: str | None = None, churn_days: int | None = 90,
                 lifespan_periods: float | None = None,
                 costs: pd.Series | None = None) -> None:
        self._counts = counts
        self.period = period
        self.as_of = as_of
        self.by = by
        self.churn_days = churn_days
        self.lifespan_periods = lifespan_periods
        self._costs = costs

    def __repr__(self) -> str:
        periods = self._counts["period"].nunique()
        return (f"KPITable(period={self.period!r}, periods={periods}, by={self.by!r}, "
                f"churn_days={self.churn_days!r}, as_of={self.as_of.isoformat()})")

    @cached_property
    def table(self) -> pd.DataFrame:
        """The KPI table; see :meth:`to_frame`."""
        frame = self._counts.copy()
        keys = ["segment"] if self.by == "segment" else []
        groups = frame.groupby(keys, sort=False) if keys else None

        def to_date(column: str) -> pd.Series:
            return groups[column].cumsum() if groups is not None else frame[column].cumsum()

        start, new, end = (frame["customers_at_start"], frame["new_customers"],
                           frame["customers_at_end"])
        frame["customers_lost"] = start - frame["customers_retained"]
        frame["retention_rate"] = 100 * _ratio(end - new, start)
        frame["churn_rate"] = 100 * _ratio(frame["customers_lost"], start)
        frame["repeat_rate_in_period"] = 100 * _ratio(frame["repeat_customers"],
                                                      frame["active_customers"])
        frame["customers_to_date"] = to_date("new_customers")
        frame["repeat_customers_to_date"] = to_date("repeaters_added")
        frame["repeat_rate_to_date"] = 100 * _ratio(frame["repeat_customers_to_date"],
                                                    frame["customers_to_date"])
        frame["purchase_frequency"] = _ratio(frame["orders"], frame["active_customers"])
        frame["aov"] = _ratio(frame["revenue"], frame["orders"])
        if self.lifespan_periods is None:
            frame["lifespan_periods"] = _ratio(to_date("lifespan_added"),
                                               frame["customers_to_date"])
        else:
            frame["lifespan_periods"] = float(self.lifespan_periods)
        frame["clv"] = frame["aov"] * frame["purchase_frequency"] * frame["lifespan_periods"]
        if self._costs is not None:
            frame["costs"] = frame["period"].map(self._costs).astype("float64")
            new_all = frame.groupby("period", sort=False)["new_customers"].transform("sum")
            frame["cac"] = _ratio(frame["costs"], new_all)
            frame["clv_net_of_cac"] = frame["clv"] - frame["cac"]
            frame["clv_to_cac"] = frame["clv"] / frame["cac"].where(frame["cac"] > 0)
        columns = [c for c in KPI_COLUMNS if c in frame]
        frame = frame[columns].reset_index(drop=True)
        ints = [c for c in columns if c in _COUNTS or c in (
            "customers_lost", "customers_to_date", "repeat_customers_to_date")]
        frame[ints] = frame[ints].astype("int64")
        floats = [c for c in columns[columns.index("retention_rate"):] if c not in ints]
        frame[floats] = frame[floats].astype("float64")
        return frame

    # ------------------------------------------------------------------ writers

    def to_frame(self) -> pd.DataFrame:
        """Return the KPI table, one row per period (per period and segment with ``by``).

        Returns
        -------
        DataFrame
            Columns :data:`KPI_COLUMNS` in that order, when present:

            - ``period`` (``2024-01`` or ``2024-Q1``), ``period_start``, ``period_end``
              (dates; ``period_end`` is the last day observed: ``as_of`` for the last
              period), ``partial`` (the period is not wholly observed: it ends after
              ``as_of``, or starts before the load's ``window_start``), ``segment``;
            - counts: ``customers_at_start``, ``new_customers`` (first purchase ever in
              the period), ``returning_customers`` (active, not new, not alive at the
              start), ``active_customers`` (a purchase in the period),
              ``customers_retained`` (alive at start and at end), ``customers_lost``
              (alive at start, not at end), ``customers_at_end``;
            - percentages (0-100, NaN when the denominator is 0): ``retention_rate``
              ``(customers_at_end - new_customers) / customers_at_start``,
              ``churn_rate`` ``customers_lost / customers_at_start``,
              ``repeat_rate_in_period`` (share of the active customers with at least
              two purchases in the period), ``repeat_rate_to_date`` (share of the
              customers so far with at least two purchases so far);
            - ``orders`` (purchases), ``repeat_customers``, ``customers_to_date``,
              ``repeat_customers_to_date`` (the counts behind the repeat rates);
            - ``purchase_frequency`` (orders / active customers), ``revenue`` (net),
              ``gmv`` (gross: the positive lines), ``aov`` (revenue / orders),
              ``lifespan_periods``, ``clv`` (``aov * purchase_frequency *
              lifespan_periods``);
            - with costs: ``costs``, ``cac`` (costs / new customers of the period, all
              segments together), ``clv_net_of_cac`` (``clv - cac``), ``clv_to_cac``
              (``clv / cac``).
        """
        return self.table.copy()

    def to_csv(self, path: str | Path, *, force: bool = True) -> Path:
        """Write :meth:`to_frame` as CSV to ``path``, atomically; return the path.

        Parameters
        ----------
        path : str or Path
            The CSV file.
        force : bool, default=True
            Replace an existing file.
        """
        from ..io.writers import table_writer, write_all

        return write_all({Path(path): table_writer(self.table, ".csv")}, force=force)[0]

    def write(self, path: str | Path, *, force: bool = True) -> Path:
        """Write :meth:`to_frame` as CSV or Parquet (by the suffix), atomically.

        Parameters
        ----------
        path : str or Path
            ``.csv`` or ``.parquet``.
        force : bool, default=True
            Replace an existing file.

        Returns
        -------
        Path
            The written path.
        """
        from ..io.writers import write_table

        return write_table(self.table, path, force=force)

    def __str__(self) -> str:
        table = self.table
        rule = (f"no purchase in the last {self.churn_days} days" if self.churn_days
                else f"no purchase in the {self.period}")
        lifespan = ("mean observed" if self.lifespan_periods is None
                    else f"{self.lifespan_periods:g} {self.period}s")
        lines = [f"KPIs per {self.period}"
                 + (" and segment" if self.by == "segment" else "")
                 + f", as of {self.as_of.isoformat()} (churned: {rule}; "
                 f"CLV lifespan: {lifespan})"]
        text = pd.DataFrame({short: [fmt(v) for v in table[column]]
                             for column, (short, _, fmt) in self.shown_columns().items()})
        text["period"] = self.period_labels(unique=False)
        lines.append(text.to_string(index=False))
        if table["partial"].any():
            lines.append(self.partial_note())
        return "\n".join(lines)

    def shown_columns(self) -> dict[str, tuple[str, str, Callable[[Any], str]]]:
        """Return the KPIs the printed table and the HTML report show, and how.

        ``kpis.csv`` (:meth:`to_csv`) holds every column; the text table (``print``)
        and the KPI report's HTML table show these, in this order.

        Returns
        -------
        dict
            Column -> (short header for the terminal, header for the HTML page,
            formatter); ``segment`` with ``by="segment"``, the CAC columns with costs.

        Examples
        --------
        >>> import pandas as pd
        >>> from rfm_engine import load_transactions
        >>> raw = pd.DataFrame({"customer_id": ["a"], "order_date": ["2024-01-05"],
        ...                     "amount": [10.0]})
        >>> shown = transaction_kpis(load_transactions(raw)).shown_columns()
        >>> shown["retention_rate"][:2], len(shown)
        (('retention', 'Retention rate'), 15)
        """
        shown: dict[str, tuple[str, str, Callable[[Any], str]]] = {
            "period": ("period", "Period", str)}
        if self.by == "segment":
            shown["segment"] = ("segment", "Segment", str)
        shown.update({
            "customers_at_start": ("start", "Customers at start", integer),
            "new_customers": ("new", "New customers", integer),
            "active_customers": ("active", "Active customers", integer),
            "customers_lost": ("lost", "Customers lost", integer),
            "customers_at_end": ("end", "Customers at end", integer),
            "retention_rate": ("retention", "Retention rate", _rate),
            "churn_rate": ("churn", "Churn rate", _rate),
            "repeat_rate_in_period": ("repeat", "Repeat rate", _rate),
            "repeat_rate_to_date": ("repeat to date", "Repeat rate to date", _rate),
            "purchase_frequency": ("frequency", "Orders per active customer",
                                   lambda v: decimal(v, 2)),
            "aov": ("AOV", "Average order value", money),
            "revenue": ("revenue", "Revenue (net)", money),
            "gmv": ("GMV", "GMV (gross)", money),
            "clv": ("CLV", "CLV", money),
        })
        if "cac" in self.table:
            shown.update({"cac": ("CAC", "Acquisition cost per new customer", money),
                          "clv_net_of_cac": ("CLV - CAC", "CLV net of acquisition cost", money),
                          "clv_to_cac": ("CLV/CAC", "CLV / acquisition cost", money)})
        return shown

    def partial_note(self) -> str:
        """Return the footnote of a period label with ``*`` (not wholly observed)."""
        return f"* partial {self.period}: not wholly observed (as of {self.as_of.isoformat()})"

    # ------------------------------------------------------------------ plots

    def plot_retention(self, ax: Axes | None = None) -> Axes:
        """Plot the retention and churn rates per period (one pair of lines per segment).

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure (no pyplot) when omitted.

        Returns
        -------
        Axes
        """
        if ax is None:
            ax = new_axes(10, 3.8)
        labels = self.period_labels()
        x = np.arange(len(labels))
        for name, rows, color in self._series():
            prefix = f"{name}: " if name is not None else ""
            ax.plot(x, rows["retention_rate"], marker="o", color=color or _RETENTION_COLOR,
                    label=f"{prefix}retention rate")
            ax.plot(x, rows["churn_rate"], marker="o", linestyle="--",
                    color=color or _CHURN_COLOR, label=f"{prefix}churn rate")
        label_periods(ax, labels)
        ax.yaxis.set_major_formatter(lambda y, _: f"{y:.0f}%")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("% of customers at start")
        ax.set_title(f"Retention and churn per {self.period}" + self._churn_note())
        _legend_beside(ax)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def plot_revenue(self, ax: Axes | None = None) -> Axes:
        """Plot net revenue (bars; lines per segment) and GMV per period.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure (no pyplot) when omitted.

        Returns
        -------
        Axes
        """
        if ax is None:
            ax = new_axes(10, 3.8)
        labels = self.period_labels()
        x = np.arange(len(labels))
        if self.by == "segment":
            for name, rows, color in self._series():
                ax.plot(x, rows["revenue"], marker="o", color=color, label=f"{name}: revenue")
                ax.plot(x, rows["gmv"], linestyle=":", color=color, label=f"{name}: GMV")
        else:
            table = self.table
            bars = ax.bar(x, table["revenue"], color=_RETENTION_COLOR, label="revenue (net)")
            for bar, partial in zip(bars, table["partial"], strict=True):
                if partial:
                    bar.set_hatch("//")
                    bar.set_alpha(0.6)
            ax.plot(x, table["gmv"], marker="o", color=_GMV_COLOR, label="GMV (gross)")
        label_periods(ax, labels)
        ax.yaxis.set_major_formatter(compact_amount)
        ax.set_ylabel("amount")
        ax.set_title(f"Revenue per {self.period}")
        _legend_beside(ax)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def period_labels(self, unique: bool = True) -> list[str]:
        """Return the period labels, ``*`` marking a partial one (:meth:`partial_note`).

        Parameters
        ----------
        unique : bool, default=True
            One label per period; False: one per row of :meth:`to_frame` (per period
            and segment with ``by="segment"``).

        Returns
        -------
        list of str
        """
        periods = self.table.drop_duplicates("period") if unique else self.table
        return [p + ("*" if partial else "")
                for p, partial in zip(periods["period"], periods["partial"], strict=True)]

    def _series(self) -> list[tuple[str | None, pd.DataFrame, str | None]]:
        table = self.table
        if self.by != "segment":
            return [(None, table, None)]
        names = list(dict.fromkeys(table["segment"]))
        colors = [f"C{k % 10}" for k in range(len(names))]
        return [(n, table[table["segment"] == n], c) for n, c in zip(names, colors, strict=True)]

    def _churn_note(self) -> str:
        return (f" (churned: {self.churn_days} days without purchase)" if self.churn_days
                else f" (churned: no purchase in the {self.period})")


# --------------------------------------------------------------------------- functions


def transaction_kpis(
    tx: Transactions,
    *,
    period: str = "month",
    by: str | None = None,
    segments: pd.DataFrame | None = None,
    churn_days: int | None = 90,
    lifespan_periods: float | None = None,
    costs: pd.DataFrame | None = None,
) -> KPITable:
    """Compute CRM KPIs per calendar month or quarter (and per segment).

    Periods run from the one holding the first transaction (or the load's
    ``window_start``) to the one holding ``tx.as_of``, with no gap; the last is marked
    ``partial`` when ``as_of`` is not its last day, and is measured up to ``as_of``.

    **Alive and churned.** A customer is *alive* at the end of a day when they made a
    purchase within the ``churn_days`` days ending on that day (their recency on that
    day, as in the customer table, is below ``churn_days``); otherwise they have
    churned. *Customers at start* of a period are those alive at the end of the day
    before it starts; *customers at end* are those alive on its last observed day
    (``period_end``), so the customers at end of a period are the customers at start of
    the next. With ``churn_days=None`` a customer is alive in a period when they made a
    purchase in it: customers at start are the active customers of the previous
    period, customers at end the active customers of the period. *Customers lost* are
    alive at start and not at end, so ``churn_rate = customers_lost /
    customers_at_start``.

    ``retention_rate = (customers_at_end - new_customers) / customers_at_start`` is the
    usual formula: it counts *returning* customers (not alive at the start, back with
    a purchase) as retained, so it can exceed 100 and need not equal ``100 -
    churn_rate``; ``customers_retained / customers_at_start`` is the strict share. It
    also assumes new customers are still alive at the end, which fails for those who
    bought only early in a period longer than ``churn_days`` (quarters last 90 to 92
    days: with ``period="quarter"``, ``churn_days >= 92`` or ``None`` avoids it), and
    can then turn the rate negative.

    **New** customers made their first purchase *in the loaded data* in the period:
    history before the first transaction (or ``window_start``) is unknown, so the
    first period counts every active customer as new.

    **Historical CLV** is ``aov * purchase_frequency * lifespan_periods``, i.e. net
    revenue per active customer in the period times a lifespan in periods. By default
    the lifespan is the mean observed lifespan of the customers (of the segment) up to
    the period's end: for each customer, the number of periods from the one of their
    first purchase to the one of their last purchase so far, inclusive (a one-time
    buyer lives 1 period). It is observed, not predicted: customers still alive will
    live longer, so it is a lower bound.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.
    period : {"month", "quarter"}, default="month"
        Calendar months or quarters.
    by : {None, "segment"}, default=None
        One row per period, or one per period and segment.
    segments : DataFrame, optional
        ``customer_id`` and ``segment``, one row per customer (such as the customers
        table of the latest weekly run); required with ``by="segment"``. Each customer
        keeps the segment given in every period; customers missing from it fall in
        :data:`UNSEGMENTED`. Never modified.
    churn_days : int or None, default=90
        Days without a purchase after which a customer has churned; ``None``: churned
        means no purchase in the period.
    lifespan_periods : float, optional
        Customer lifespan in periods for the CLV; the mean observed lifespan to date
        when omitted.
    costs : DataFrame, optional
        Acquisition costs: ``period`` (``pd.Period``, ``"2024-01"`` or ``"2024-Q1"``)
        and ``costs`` (float), one row per period. Monthly costs are summed into
        quarters with ``period="quarter"``. Adds ``costs``, ``cac`` (``costs /
        new_customers`` of the period, all segments together; NaN without a new
        customer or without costs for the period) and ``clv_net_of_cac``. Never
        modified.

    Returns
    -------
    KPITable

    Raises
    ------
    ConfigError
        A bad parameter, or ``segments``/``costs`` that cannot be read.
    MissingColumnsError
        ``segments`` or ``costs`` lacks a column.

    Examples
    --------
    Customer ``a`` buys in January and March, ``b`` only in January:

    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "b", "a"],
    ...                     "order_date": ["2024-01-05", "2024-01-20", "2024-01-10",
    ...                                    "2024-03-10"],
    ...                     "amount": [100.0, 50.0, 40.0, 60.0]})
    >>> kpis = transaction_kpis(load_transactions(raw), churn_days=None)
    >>> print(kpis.to_frame()[["period", "partial", "customers_at_start", "new_customers",
    ...                        "customers_at_end", "churn_rate", "revenue"]].to_string())
        period  partial  customers_at_start  new_customers  customers_at_end  churn_rate  revenue
    0  2024-01    False                   0              2                 2         NaN    190.0
    1  2024-02    False                   2              0                 0       100.0      0.0
    2  2024-03     True                   0              0                 1         NaN     60.0
    """
    _check_choice("by", by, (None, "segment"))
    if by == "segment" and segments is None:
        raise ConfigError("by='segment' needs the 'segments' table (customer_id, segment).")
    if by is None and segments is not None:
        raise ConfigError("The 'segments' table is only used with by='segment'; pass "
                          "by='segment' or leave 'segments' out.")
    total, split = _kpi_tables(tx, period, segments, churn_days, lifespan_periods, costs,
                               segment_costs=True)
    return split if split is not None else total


def kpi_tables(
    tx: Transactions,
    *,
    period: str = "month",
    segments: pd.DataFrame | None = None,
    churn_days: int | None = 90,
    lifespan_periods: float | None = None,
    costs: pd.DataFrame | None = None,
) -> tuple[KPITable, KPITable | None]:
    """Compute the KPIs of all customers and, with ``segments``, per segment, in one pass.

    What :func:`transaction_kpis` gives without and with ``by="segment"``, from one query
    over the orders (the per-segment counts summed into those of all customers): the KPI
    report needs both.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.
    period, churn_days, lifespan_periods
        As in :func:`transaction_kpis`.
    segments : DataFrame or SegmentFiles, optional
        ``customer_id`` and ``segment``, one row per customer (or :class:`SegmentFiles`:
        Parquet files DuckDB reads in place); without it the second table is None.
    costs : DataFrame, optional
        Acquisition costs (as in :func:`transaction_kpis`), for the table of all
        customers only.

    Returns
    -------
    tuple of KPITable
        The KPIs of all customers, and per segment (or None).

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "b", "a"],
    ...                     "order_date": ["2024-01-05", "2024-01-10", "2024-02-07"],
    ...                     "amount": [10.0, 20.0, 15.0]})
    >>> segments = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "y"]})
    >>> total, split = kpi_tables(load_transactions(raw), segments=segments)
    >>> total.to_frame()["active_customers"].tolist()
    [2, 1]
    >>> split.to_frame()[["period", "segment", "active_customers"]].values.tolist()
    [['2024-01', 'x', 1], ['2024-01', 'y', 1], ['2024-02', 'x', 1], ['2024-02', 'y', 0]]
    """
    return _kpi_tables(tx, period, segments, churn_days, lifespan_periods, costs,
                       segment_costs=False)


def _kpi_tables(tx: Transactions, period: str, segments: pd.DataFrame | None,
                churn_days: int | None, lifespan_periods: float | None,
                costs: pd.DataFrame | None, *,
                segment_costs: bool) -> tuple[KPITable, KPITable | None]:
    """Check the parameters, run the one KPI query, return both tables."""
    unit = _check_choice("period", period, tuple(PERIODS))
    if churn_days is not None and (not is_int(churn_days) or churn_days < 1):
        raise ConfigError(f"The 'churn_days' parameter must be a positive int or None. "
                          f"Got {churn_days!r} instead.")
    if lifespan_periods is not None and (
            not is_real(lifespan_periods)
            or not math.isfinite(lifespan_periods) or lifespan_periods <= 0):
        raise ConfigError(f"The 'lifespan_periods' parameter must be a positive number or "
                          f"None. Got {lifespan_periods!r} instead.")
    spine = _periods(tx, unit)
    cost_series = _costs_by_period(costs, unit, spine) if costs is not None else None
    with step(f"computing KPIs per {unit}"):
        total, split, names = _kpi_counts(tx, spine, unit, segments, churn_days)

    def table(raw: pd.DataFrame, by: str | None, costs: pd.Series | None) -> KPITable:
        return KPITable(_complete(raw, spine, names if by else None), period=unit,
                        as_of=tx.as_of, by=by,
                        churn_days=None if churn_days is None else int(churn_days),
                        lifespan_periods=(None if lifespan_periods is None
                                          else float(lifespan_periods)),
                        costs=costs)

    return (table(total, None, cost_series),
            None if split is None else table(split, "segment",
                                             cost_series if segment_costs else None))


def cohort_retention(tx: Transactions, *, period: str = "month") -> pd.DataFrame:
    """Build the cohort matrix: customers by first-purchase period, active periods later.

    A customer's cohort is the period of their first purchase (in the loaded data);
    column ``k`` is the percentage (0-100) of the cohort with a purchase in the ``k``-th
    period after it (``0`` is the cohort's own period: always 100). Periods after the
    one holding ``as_of`` are NaN; the last period is counted up to ``as_of``. Returns
    are not purchases (see :mod:`rfm_engine.measurement.kpis`).

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.
    period : {"month", "quarter"}, default="month"
        Calendar months or quarters.

    Returns
    -------
    DataFrame
        Index ``cohort`` (``2024-01`` or ``2024-Q1``; cohorts without customers are
        left out), column ``customers`` (the cohort size, int), then columns ``0, 1,
        2, ...`` (int labels: periods since the first purchase).

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "b", "a", "c", "c"],
    ...                     "order_date": ["2024-01-05", "2024-01-10", "2024-02-07",
    ...                                    "2024-02-11", "2024-03-01"],
    ...                     "amount": [10.0, 20.0, 15.0, 5.0, 5.0]})
    >>> cohort_retention(load_transactions(raw))  # doctest: +NORMALIZE_WHITESPACE
             customers      0      1    2
    cohort
    2024-01          2  100.0   50.0  0.0
    2024-02          1  100.0  100.0  NaN
    """
    unit = _check_choice("period", period, tuple(PERIODS))
    spine = _periods(tx, unit)
    start = f"DATE {sql_literal(spine['period_start'].iloc[0].isoformat())}"
    with step(f"computing cohorts per {unit}"):
        cells = tx.con.execute(f"""
            WITH activity AS (
                SELECT customer_id, CAST(date_diff('{unit}', {start}, order_date) AS BIGINT) AS idx
                FROM {orders_table(tx)} WHERE is_purchase GROUP BY ALL
            ), cohorts AS (
                SELECT customer_id, min(idx) AS cohort FROM activity GROUP BY customer_id
            )
            SELECT c.cohort, a.idx - c.cohort AS since, count(*) AS customers
            FROM activity a JOIN cohorts c USING (customer_id)
            GROUP BY ALL ORDER BY ALL
        """).df()
    n = len(spine)
    labels = spine["period"].tolist()
    matrix = np.full((n, n), np.nan)
    for row in cells.itertuples(index=False):
        matrix[int(row.cohort), int(row.since)] = row.customers
    sizes = np.nan_to_num(matrix[:, 0]).astype("int64")
    for cohort in range(n):
        matrix[cohort, : n - cohort] = np.nan_to_num(matrix[cohort, : n - cohort])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = 100 * matrix / sizes[:, None]
    frame = pd.DataFrame(shares, columns=pd.Index(range(n), dtype="int64"),
                         index=pd.Index(labels, name="cohort", dtype="str"))
    frame.insert(0, "customers", sizes)
    return frame[frame["customers"] > 0]


def plot_cohort_heatmap(cohorts: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Draw the cohort matrix of :func:`cohort_retention` as an annotated heatmap.

    Each cell shows its percentage when there are at most 24 periods (two years of
    months). A longer history keeps the figure size of 24 periods and shows the shares by
    colour only: its cells are too small for a number each, and the ~n²/2 labels took
    most of the KPI report's time (the numbers are in :func:`cohort_retention`). The
    figure is at most 10.5 inches wide (a report page), and the axes label only as many
    periods and cohorts as fit without overlapping (:func:`rfm_engine.plotting.label_periods`).

    Parameters
    ----------
    cohorts : DataFrame
        As returned by :func:`cohort_retention`.
    ax : Axes, optional
        Where to draw; a new Agg figure (no pyplot) when omitted.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "b", "a"],
    ...                     "order_date": ["2024-01-05", "2024-01-10", "2024-02-07"],
    ...                     "amount": [10.0, 20.0, 15.0]})
    >>> ax = plot_cohort_heatmap(cohort_retention(load_transactions(raw)))
    >>> [t.get_text() for t in ax.texts]
    ['100%', '50%']
    """
    if "customers" not in cohorts:
        raise MissingColumnsError("cohorts", ["customers"], [str(c) for c in cohorts.columns])
    periods = cohorts.drop(columns="customers")
    shares = periods.to_numpy(dtype=float)
    n_rows, n_cols = shares.shape
    if ax is None:  # at most the width of a report page (1,050 px at 100 dpi)
        ax = new_axes(min(2.2 + 0.6 * max(min(n_cols, _MAX_LABELLED), 1), 10.5),
                      1.4 + 0.4 * max(min(n_rows, _MAX_LABELLED), 1))
    image = ax.imshow(np.ma.masked_invalid(shares), cmap="Blues", vmin=0.0, vmax=100.0,
                      aspect="auto")
    if n_cols <= _MAX_LABELLED:
        for (i, j), value in np.ndenumerate(shares):
            if not math.isnan(value):
                # Inside their cells: the layout need not measure them (same picture).
                ax.text(j, i, f"{value:.0f}%", ha="center", va="center",
                        fontsize=8 if n_cols <= _MAX_LABELLED * 2 // 3 else 7,
                        color="white" if value > 60 else "black", in_layout=False)
    label_periods(ax, [str(c) for c in periods.columns])
    label_periods(ax, [f"{c} (n={n:,})" for c, n in
                       zip(cohorts.index, cohorts["customers"], strict=True)], axis="y")
    ax.set_xlabel("periods since first purchase")
    ax.set_ylabel("cohort (first purchase)")
    ax.set_title("Share of each cohort with a purchase")
    ax.figure.colorbar(image, ax=ax, label="% of cohort", fraction=0.05)
    return ax


# --------------------------------------------------------------------------- helpers


def _check_choice(name: str, value: object, allowed: tuple) -> object:
    if value not in allowed or isinstance(value, bool):
        shown = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"The {name!r} parameter must be one of {shown}. "
                          f"Got {value!r} instead.")
    return value


def _legend_beside(ax: Axes) -> None:
    """Put the legend to the right of the plot, where it covers no line or bar."""
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
              ncols=2 if len(handles) > 14 else 1)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator`` as floats, NaN where the denominator is 0."""
    den = denominator.astype("float64")
    return numerator.astype("float64") / den.where(den != 0)


def _label(start: pd.Period, unit: str) -> str:
    if unit == "quarter":
        return f"{start.year}-Q{start.quarter}"
    return f"{start.year}-{start.month:02d}"


def _periods(tx: Transactions, unit: str) -> pd.DataFrame:
    """Return the period spine: ``idx, period, period_start, period_end, partial``."""
    first = tx.window_start or tx.con.execute(
        f"SELECT min(order_date) FROM {orders_table(tx)}").fetchall()[0][0] or tx.as_of
    freq = "Q" if unit == "quarter" else "M"
    periods = pd.period_range(pd.Period(first, freq), pd.Period(tx.as_of, freq), freq=freq)
    starts = [p.start_time.date() for p in periods]
    last_days = [p.end_time.date() for p in periods]
    ends = [min(d, tx.as_of) for d in last_days]
    partial = [end < last for end, last in zip(ends, last_days, strict=True)]
    if tx.window_start is not None and tx.window_start > starts[0]:
        partial[0] = True
    return pd.DataFrame({"idx": np.arange(len(periods), dtype="int64"),
                         "period": pd.array([_label(p, unit) for p in periods], dtype="str"),
                         "period_start": starts, "period_end": ends, "partial": partial})


def _kpi_counts(tx: Transactions, spine: pd.DataFrame, unit: str,
                segments: pd.DataFrame | None,
                churn_days: int | None) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """Run the KPI query once; return the counts of all customers, per segment, and the names.

    One pass over the orders: they are summed per customer and period (``cp``), the
    periods with a purchase get their customer's previous and next active period by a
    window (``act``), and every count follows from those rows, without a row per
    customer and period in which nothing happened:

    * a customer is alive at the end of the periods from an active period ``k`` (last
      purchase day ``L``) up to ``until(L)``, the last period whose observed end is
      before ``L + churn_days`` (with ``churn_days=None``: ``k`` only), and not past
      the next active period: one span per active period, disjoint;
    * customers at end are counted by +1/-1 at the spans' ends (a running sum), so are
      the retained customers (alive at the end of ``j - 1`` and ``j``): a span retains
      from its second period, or from its first when the customer was alive at the end
      of the period before (the previous span reached it);
    * at start of a period ``k``: alive at the end of ``k - 1``.

    The per-segment rows are summed into the rows of all customers (revenue as exact
    decimals, cast last), so both tables come from the one pass.
    """
    con = tx.con
    start = f"DATE {sql_literal(spine['period_start'].iloc[0].isoformat())}"
    as_of = f"DATE {sql_literal(tx.as_of.isoformat())}"
    n = len(spine)
    view = f"_rfm_kpi_segments_{uuid.uuid4().hex}"
    names: list[str] = []

    def until(day: str, idx: str) -> str:
        """Last period at whose observed end a customer with last purchase ``day`` is alive."""
        if churn_days is None:
            return idx
        churn = int(churn_days)
        return (f"CASE WHEN {day} + {churn} > {as_of} THEN {n - 1} "
                f"ELSE CAST(date_diff('{unit}', {start}, {day} + {churn}) AS BIGINT) - 1 END")

    try:
        if segments is not None:
            names = _register_segments(con, segments, view)
            segment = (f"coalesce(s.segment, {sql_literal(UNSEGMENTED)}) AS segment FROM cp "
                       f"LEFT JOIN {view} s USING (customer_id)")
        else:
            segment = "'' AS segment FROM cp"
        counts = ", ".join(f"coalesce({c}, 0) AS {c}" for c in _RAW if c not in (
            "customers_at_start", "customers_at_end", "customers_retained", "revenue", "gmv"))
        raw = con.execute(f"""
            WITH cp AS MATERIALIZED (
                SELECT customer_id,
                       CAST(date_diff('{unit}', {start}, order_date) AS BIGINT) AS idx,
                       count(*) FILTER (WHERE is_purchase) AS purchases,
                       max(order_date) FILTER (WHERE is_purchase) AS last_day,
                       sum(net) AS net, sum(gross) AS gross
                FROM {orders_table(tx)} GROUP BY ALL
            ), grouped AS MATERIALIZED (
                SELECT cp.*, {segment}
            ), act AS (
                SELECT segment, idx, purchases, last_day,
                       lag(idx) OVER w AS prev_idx, lag(last_day) OVER w AS prev_last,
                       coalesce(lead(idx) OVER w, {n}) AS next_idx,
                       sum(purchases) OVER (w ROWS UNBOUNDED PRECEDING) AS running
                FROM grouped WHERE purchases > 0
                WINDOW w AS (PARTITION BY customer_id ORDER BY idx)
            ), starts AS (
                SELECT *, least({until("last_day", "idx")}, next_idx - 1) AS span_end,
                       coalesce({until("prev_last", "prev_idx")} >= idx - 1, false)
                           AS alive_start
                FROM act
            ), spans AS MATERIALIZED (
                SELECT *, idx + CAST(NOT alive_start AS BIGINT) AS retained_from FROM starts
            ), events AS (
                SELECT segment, idx,
                       count(*) FILTER (WHERE prev_idx IS NULL) AS new_customers,
                       count(*) FILTER (WHERE prev_idx IS NOT NULL AND NOT alive_start)
                           AS returning_customers,
                       count(*) AS active_customers,
                       count(*) FILTER (WHERE purchases >= 2) AS repeat_customers,
                       sum(purchases) AS orders,
                       sum(idx - coalesce(prev_idx, idx - 1)) AS lifespan_added,
                       count(*) FILTER (WHERE running >= 2 AND running - purchases < 2)
                           AS repeaters_added
                FROM spans GROUP BY ALL
            ), steps AS (
                SELECT segment, idx, 1 AS d_end, 0 AS d_retained FROM spans
                WHERE span_end >= idx
                UNION ALL SELECT segment, span_end + 1, -1, 0 FROM spans
                WHERE span_end >= idx AND span_end + 1 < {n}
                UNION ALL SELECT segment, retained_from, 0, 1 FROM spans
                WHERE span_end >= retained_from
                UNION ALL SELECT segment, span_end + 1, 0, -1 FROM spans
                WHERE span_end >= retained_from AND span_end + 1 < {n}
            ), alive AS (
                SELECT segment, idx, sum(d_end) AS d_end, sum(d_retained) AS d_retained
                FROM steps GROUP BY ALL
            ), money AS (
                SELECT segment, idx, sum(net) AS revenue, sum(gross) AS gmv
                FROM grouped GROUP BY ALL
            ), grid AS (
                SELECT segment, i AS idx
                FROM (SELECT DISTINCT segment FROM grouped), range({n}) AS t(i)
            ), per_segment AS (
                SELECT segment, idx, {counts},
                       coalesce(revenue, 0) AS revenue, coalesce(gmv, 0) AS gmv,
                       sum(coalesce(d_end, 0)) OVER running AS customers_at_end,
                       sum(coalesce(d_retained, 0)) OVER running AS customers_retained
                FROM grid LEFT JOIN events USING (segment, idx)
                LEFT JOIN alive USING (segment, idx) LEFT JOIN money USING (segment, idx)
                WINDOW running AS (PARTITION BY segment ORDER BY idx)
            ), by_segment AS (
                SELECT *, coalesce(lag(customers_at_end) OVER (
                           PARTITION BY segment ORDER BY idx), 0) AS customers_at_start
                FROM per_segment
            )
            SELECT false AS total, segment, idx,
                   {", ".join(c if c not in ("revenue", "gmv") else
                              f"CAST({c} AS DOUBLE) AS {c}" for c in _RAW)}
            FROM by_segment
            UNION ALL
            SELECT true, '', idx,
                   {", ".join(f"sum({c}) AS {c}" if c not in ("revenue", "gmv") else
                              f"CAST(sum({c}) AS DOUBLE) AS {c}" for c in _RAW)}
            FROM by_segment GROUP BY idx
        """).df()
    finally:
        if isinstance(segments, SegmentFiles):
            con.execute(f"DROP VIEW IF EXISTS {view}_raw")
        elif segments is not None:
            con.unregister(f"{view}_raw")
        if segments is not None:
            con.execute(f"DROP VIEW IF EXISTS {view}")
    total = raw[raw["total"]].drop(columns="total")
    if segments is None:
        return total, None, names
    split = raw[~raw["total"]].drop(columns="total")
    if (split["segment"] == UNSEGMENTED).any() and UNSEGMENTED not in names:
        names = [*names, UNSEGMENTED]
    return total, split, names


def _register_segments(con: duckdb.DuckDBPyConnection, segments: pd.DataFrame,
                       view: str) -> list[str]:
    """Expose ``segments`` as ``view`` (normalised ids); return the segment names in order."""
    if isinstance(segments, SegmentFiles):  # read where they are
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view}_raw AS SELECT customer_id, segment "
                    f"FROM {segments.sql()}")
        names = sorted(str(r[0]) for r in con.execute(
            f"SELECT DISTINCT CAST(segment AS VARCHAR) FROM {view}_raw "
            "WHERE segment IS NOT NULL").fetchall())
    elif not isinstance(segments, pd.DataFrame):
        raise ConfigError(f"The 'segments' parameter must be a DataFrame with columns "
                          f"customer_id and segment. Got {type(segments).__name__} instead.")
    else:
        require_columns(segments, ("customer_id", "segment"), "segments")
        column = segments["segment"]
        if isinstance(column.dtype, pd.CategoricalDtype):
            names = [str(c) for c in column.cat.categories]
        else:
            names = sorted({str(v) for v in column.dropna().unique()})
        con.register(f"{view}_raw", segments[["customer_id", "segment"]])
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {view} AS
        SELECT {customer_id_sql("customer_id")} AS customer_id,
               CAST(segment AS VARCHAR) AS segment
        FROM {view}_raw WHERE segment IS NOT NULL
    """)
    duplicate = con.execute(
        f"SELECT customer_id, count(*) FROM {view} WHERE customer_id IS NOT NULL "
        f"GROUP BY customer_id HAVING count(*) > 1 ORDER BY customer_id LIMIT 1").fetchall()
    if duplicate:
        customer, times = duplicate[0]
        raise ConfigError(f"segments: customer_id {customer!r} appears {times} "
                          "times; give one segment per customer.")
    return names


def _complete(raw: pd.DataFrame, spine: pd.DataFrame, names: list[str] | None) -> pd.DataFrame:
    """Every period (x segment), in order, with the counts (0 where nothing happened)."""
    keys = spine.assign(segment="")
    if names is not None:
        keys = spine.merge(pd.DataFrame({"segment": pd.array(names, dtype="str")}),
                           how="cross")
    raw = raw.astype({"segment": "str", "idx": "int64"})
    frame = keys.merge(raw, on=["idx", "segment"], how="left", validate="one_to_one")
    frame[list(_RAW)] = frame[list(_RAW)].fillna(0)
    frame = frame.sort_values(["idx", "segment"] if names is None else ["idx"], kind="stable")
    if names is None:
        frame = frame.drop(columns="segment")
    return frame.drop(columns="idx").reset_index(drop=True)


_PERIOD_TEXT = re.compile(r"^\s*(\d{4})-?(?:(0[1-9]|1[0-2])|Q([1-4]))\s*$", re.IGNORECASE)


def _parse_period(value: object) -> pd.Period:
    if isinstance(value, pd.Period):
        if value.freqstr.startswith("M") or value.freqstr.startswith("Q-DEC"):
            return value
    elif isinstance(value, str) and (match := _PERIOD_TEXT.match(value)):
        year, month, quarter = match.groups()
        return (pd.Period(year=int(year), month=int(month), freq="M") if month
                else pd.Period(year=int(year), quarter=int(quarter), freq="Q"))
    raise ConfigError(f"costs: period {value!r} is not a month or a quarter; expected a "
                      "pd.Period or text such as '2024-01' or '2024-Q1'.")


def _costs_by_period(costs: pd.DataFrame, unit: str, spine: pd.DataFrame) -> pd.Series:
    """Costs per period label of the KPI table (monthly costs summed into quarters)."""
    if not isinstance(costs, pd.DataFrame):
        raise ConfigError(f"The 'costs' parameter must be a DataFrame with columns period "
                          f"and costs. Got {type(costs).__name__} instead.")
    require_columns(costs, ("period", "costs"), "costs")
    periods = [_parse_period(v) for v in costs["period"]]
    seen: set[pd.Period] = set()
    for p in periods:
        if p in seen:
            raise ConfigError(f"costs: period {str(p)!r} appears more than once; give one "
                              "row per period.")
        seen.add(p)
    labels = []
    for p, raw_value in zip(periods, costs["period"], strict=True):
        if unit == "month" and p.freqstr.startswith("Q"):
            raise ConfigError(f"costs: period {raw_value!r} is a quarter but the KPIs are "
                              "per month; give monthly costs, or use period='quarter'.")
        labels.append(_label(p.asfreq("Q") if unit == "quarter" else p, unit))
    try:
        values = pd.to_numeric(costs["costs"]).astype("float64")
    except (TypeError, ValueError):
        bad = next(v for v in costs["costs"] if _not_a_number(v))
        raise ConfigError(f"costs: {bad!r} in column 'costs' is not a number.") from None
    if (values < 0).any():
        raise ConfigError("costs: costs must not be negative.")
    frame = pd.DataFrame({"period": labels, "costs": values.to_numpy()})
    if unit == "quarter":
        kinds = {p.freqstr[0] for p in periods}
        if len(kinds) > 1:
            raise ConfigError("costs: mix of monthly and quarterly periods; use one kind.")
    by_label = frame.groupby("period", sort=False)["costs"].sum(min_count=1)
    return by_label[by_label.index.isin(spine["period"])]


def _not_a_number(value: object) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _rate(value: float) -> str:
    """Show a KPI rate: the table holds percentages (0-100), ``percent`` takes fractions."""
    return percent(value if is_missing(value) else value / 100)
