"""The KPI report: transaction KPIs, cohorts, revenue by segment, CLV and optional inputs.

`build_kpi_report` computes everything from cleaned transactions (and, optionally, the
segment of each customer, marketing costs and the optional CRM inputs); `KPIReport` is a
plain object with several writers (`to_frame`, `to_json`, `metrics`, `to_html`,
`write_html`). The weekly run writes ``kpis.html`` and ``kpis.csv`` with each run and
logs the metrics to MLflow; ``rfm-engine kpis`` prints the table.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..io.loading import Transactions
from ..io.writers import json_text
from ..measurement.kpis import KPITable, cohort_retention, kpi_tables, plot_cohort_heatmap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..config import KPIConfig
    from ..io._html import Table
    from ..measurement.clv import CLVResult, SavedCLV

__all__ = ["KPIReport", "build_kpi_report", "plot_clv_distribution", "plot_segment_revenue",
           "report_kpis", "saved_clv_params"]

#: The KPIs of the latest complete period that go to MLflow as metrics.
HEADLINE = ("active_customers", "new_customers", "retention_rate", "churn_rate",
            "repeat_rate_to_date", "purchase_frequency", "aov", "revenue", "clv")


@dataclass
class KPIReport:
    """KPIs of one observation window, ready to print, save, plot and track.

    Attributes
    ----------
    kpis : KPITable
        Per period (all customers).
    cohorts : DataFrame
        Cohort retention matrix (:func:`rfm_engine.measurement.kpis.cohort_retention`).
    by_segment : KPITable or None
        Per period and segment, when segments were given.
    clv : CLVResult or None
        Predictive CLV per customer, when it could be fitted.
    extras : dict
        Title to table, for the KPIs of optional inputs (NPS, CSAT, CAC...).
    as_of : str
        Inclusive observation end.
    warnings : list of str
        What could not be computed, and why.
    clv_problem : str or None
        Why there is no predicted CLV (``clv`` is None), in words; None when there is.
    """

    kpis: KPITable
    cohorts: pd.DataFrame
    by_segment: KPITable | None = None
    clv: CLVResult | None = None
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)
    as_of: str = ""
    warnings: list[str] = field(default_factory=list)
    clv_problem: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """Return the per-period KPI table."""
        return self.kpis.to_frame()

    @cached_property
    def latest(self) -> pd.Series:
        """The latest complete period's row (the latest period when all are partial)."""
        frame = self.kpis.to_frame()
        complete = frame[~frame["partial"].astype(bool)]
        return (complete if len(complete) else frame).iloc[-1]

    def metrics(self) -> dict[str, Any]:
        """Numbers worth tracking run over run: the latest complete period's KPIs and CLV.

        ``predicted_clv`` holds ``total`` and ``mean``, both None when predicted CLV was
        not computed (``warnings`` says why); a number that is not finite is left out.
        """
        latest = self.latest
        out: dict[str, Any] = {"period": {k: float(latest[k]) for k in HEADLINE
                                          if k in latest and pd.notna(latest[k])
                                          and np.isfinite(float(latest[k]))}}
        out["predicted_clv"] = {"total": None, "mean": None}
        if self.clv is not None:
            values = self.clv.customers["clv"]
            out["predicted_clv"] = {"total": float(values.sum()), "mean": float(values.mean())}
        return out

    def to_json(self) -> str:
        """Return the headline numbers and the optional-input KPIs as JSON."""
        data = {"as_of": self.as_of, "latest_period": str(self.latest["period"]),
                **self.metrics(),
                "predicted_clv_model": None if self.clv is None else {
                    "model": self.clv.model, "params_file": self.clv.source,
                    "params": self.clv.params},
                "extras": {k: json.loads(_plain(v).to_json(orient="records",
                                                           date_format="iso"))
                           for k, v in self.extras.items()},
                "warnings": self.warnings}
        return json_text(data)

    def to_html(self, *, table_file: str | None = None) -> str:
        """Return one self-contained HTML page with tables and plots (no email addresses).

        Rendered from the template ``reports/templates/kpis.html.j2``. The KPI table shows
        the columns of :meth:`KPITable.shown_columns` under readable headers (each
        header's tooltip names its column) and scrolls inside its box when the window is
        narrow.

        Parameters
        ----------
        table_file : str, optional
            The file with every KPI column (``kpis.csv`` in a run folder), relative to
            the page: linked under the table.
        """
        from ..io._html import html_img, render

        by_segment = clv = None
        if self.by_segment is not None:
            by_segment = html_img(plot_segment_revenue(self.by_segment.to_frame()).figure,
                              "revenue per segment")
        if self.clv is not None:
            clv = {"plot": html_img(plot_clv_distribution(self.clv.customers).figure,
                                "distribution of predicted CLV"),
                   "label": self.clv.purchase_model._LABEL,
                   "purchases": _params(self.clv.purchase_model.params_),
                   "gamma_gamma": _params(self.clv.params["gamma_gamma"])}
        return render(
            "kpis.html.j2", title="CRM KPIs", as_of=self.as_of,
            latest=str(self.latest["period"]),
            retention=html_img(self.kpis.plot_retention().figure,
                           "retention and churn rate per period"),
            revenue=html_img(self.kpis.plot_revenue().figure, "revenue per period"),
            periods=_kpi_table(self.kpis), partial_note=self._partial_note(),
            table_file=table_file,
            cohorts=html_img(plot_cohort_heatmap(self.cohorts).figure, "cohort retention heatmap"),
            by_segment=by_segment, clv=clv,
            extras=[(name, _frame_html(table)) for name, table in self.extras.items()],
            warnings=self.warnings)

    def write_html(self, path: str | Path, *, table_file: str | None = None) -> Path:
        """Write :meth:`to_html` atomically; return the path."""
        from ..io.writers import write_text_atomic

        return write_text_atomic(path, self.to_html(table_file=table_file))

    def _partial_note(self) -> str | None:
        partial = self.kpis.to_frame()["partial"].astype(bool)
        return self.kpis.partial_note() if partial.any() else None

    def __str__(self) -> str:
        return str(self.kpis)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Periods as text, so the table serializes to JSON."""
    periods = [c for c in frame.columns if isinstance(frame[c].dtype, pd.PeriodDtype)]
    return frame.astype(dict.fromkeys(periods, str)) if periods else frame


def _params(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())


def _frame_html(frame: pd.DataFrame) -> Table:
    """Any table for the HTML page: numbers right-aligned, floats with two decimals."""
    from ..io._format import MISSING, decimal, integer
    from ..io._html import html_table

    def fmt(value: object) -> str:
        if isinstance(value, bool | np.bool_):
            return "yes" if value else ""
        if isinstance(value, float | np.floating):
            return decimal(value, 2)
        if isinstance(value, int | np.integer):
            return integer(value)
        return MISSING if value is None or value is pd.NA else str(value)

    columns = {c: (_human(str(c)), fmt, pd.api.types.is_numeric_dtype(frame[c]))
               for c in frame.columns}
    return html_table(frame.reset_index(drop=True), columns, titles=True)


#: Words a column name spells in capitals on the page.
_ACRONYMS = {"aov", "cac", "ces", "clv", "csat", "gmv", "id", "nps"}


def _human(column: str) -> str:
    """Return a column name as a header: ``csat_mean`` -> ``CSAT mean``, ``n`` -> ``N``.

    Examples
    --------
    >>> _human("csat_mean"), _human("open_rate"), _human("n")
    ('CSAT mean', 'Open rate', 'N')
    """
    words = [w.upper() if w in _ACRONYMS else w for w in column.split("_") if w]
    text = " ".join(words) or column
    return text[:1].upper() + text[1:]


def _kpi_table(kpis: KPITable) -> Table:
    """Return the KPI table of the page: shown columns, human headers, raw names as tooltips."""
    from ..io._html import Cell, Table

    frame = kpis.to_frame()
    shown = kpis.shown_columns()
    labels = dict(zip(frame.index, kpis.period_labels(unique=False), strict=True))
    head = [Cell(header, column != "period" and column != "segment", title=column)
            for column, (_, header, _) in shown.items()]
    rows = [[Cell(labels[i] if column == "period" else fmt(row[column]),
                  column not in ("period", "segment"))
             for column, (_, _, fmt) in shown.items()]
            for i, row in frame.iterrows()]
    return Table(head, rows)


def plot_segment_revenue(by_segment: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Stacked revenue per period by segment.

    Parameters
    ----------
    by_segment : DataFrame
        A per-period, per-segment KPI table (``period``, ``segment``, ``revenue``).
    ax : Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
    """
    from matplotlib import colormaps

    from ..plotting import compact_amount, label_periods, new_axes

    ax = ax if ax is not None else new_axes(10, 4.5)
    wide = by_segment.pivot_table(index="period", columns="segment", values="revenue",
                                  aggfunc="sum", sort=False).fillna(0.0)
    bottom = np.zeros(len(wide))
    x = np.arange(len(wide))
    # One colour per segment: tab10 repeats its first colour from the 11th segment on.
    palette = colormaps["tab10" if len(wide.columns) <= 10 else "tab20"].colors
    for k, segment in enumerate(wide.columns):
        ax.bar(x, wide[segment].to_numpy(), bottom=bottom, label=str(segment),
               color=palette[k % len(palette)])
        bottom += wide[segment].to_numpy()
    label_periods(ax, [str(p) for p in wide.index])
    ax.yaxis.set_major_formatter(compact_amount)
    ax.set_ylabel("net revenue")
    ax.set_title("Revenue per period by segment")
    # Beside the bars, top segment of the stack first, as the eye reads the stack.
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_clv_distribution(customers: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Histogram of predicted CLV (log-spaced bins), with the mean and the median marked.

    Parameters
    ----------
    customers : DataFrame
        With a ``clv`` column (:class:`rfm_engine.measurement.clv.CLVResult` ``.customers``).
    ax : Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
    """
    from ..plotting import compact_amount, new_axes

    ax = ax if ax is not None else new_axes(7, 4)
    values = customers["clv"].to_numpy(dtype=float)
    positive = values[values > 0]
    if len(positive):
        bins = np.geomspace(max(positive.min(), 0.01), positive.max() * 1.01, 40)
        ax.hist(positive, bins=bins, color="#2b8cbe")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(compact_amount)  # 0.01, 1, 100, 10k: not 10^-2
        for stat, style in ((np.mean(values), "--"), (np.median(values), ":")):
            if stat > 0:
                ax.axvline(stat, color="#333333", linestyle=style)
    ax.set_xlabel("predicted CLV (log scale; dashed: mean, dotted: median)")
    ax.set_ylabel("customers")
    ax.set_title("Distribution of predicted customer lifetime value")
    return ax


def build_kpi_report(
    tx: Transactions,
    *,
    period: str = "month",
    segments: pd.DataFrame | None = None,
    churn_days: int | None = 90,
    costs: pd.DataFrame | None = None,
    clv: bool = True,
    clv_time_unit: str = "W",
    clv_horizon: float = 52,
    clv_discount_rate: float = 0.0,
    clv_model: str = "bgnbd",
    clv_params: SavedCLV | None = None,
    extras: Mapping[str, pd.DataFrame] | None = None,
    clv_summary: Callable[[str], pd.DataFrame] | None = None,
) -> KPIReport:
    """Compute the KPI report of cleaned transactions.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.
    period : {"month", "quarter"}, default="month"
        KPI period.
    segments : DataFrame, optional
        ``customer_id``, ``segment``: adds the per-segment KPIs and the revenue plot.
    churn_days : int or None, default=90
        A customer is lost after this many days without a purchase
        (:func:`rfm_engine.measurement.kpis.kpi_tables`).
    costs : DataFrame, optional
        Marketing and sales costs per period (``period``, ``costs``): CAC and CLV net of
        CAC.
    clv : bool, default=True
        Fit BG/NBD + Gamma-Gamma for predicted CLV; a fit that fails is reported in
        ``warnings``, not raised.
    clv_time_unit, clv_horizon, clv_discount_rate, clv_model
        Settings of the predictive CLV (:func:`rfm_engine.measurement.clv.fit_clv`).
    clv_params : SavedCLV, optional
        Saved parameters (:func:`rfm_engine.measurement.clv.read_params`): score with them
        (:func:`~rfm_engine.measurement.clv.score_clv`, in their time unit) instead of
        fitting.
    extras : Mapping, optional
        Title to table, KPIs of optional inputs to show as they are.
    clv_summary : callable, optional
        Time unit to the CLV summary of ``tx``'s customers, as
        :func:`rfm_engine.core.features.clv_summary` gives it (the default): an engine
        that holds the lines elsewhere (Spark) computes it there.

    Returns
    -------
    KPIReport
    """
    from ..core.features import count_customers

    notes: list[str] = []
    count_customers(tx)  # the data-quality report of a KPI command carries them too
    kpis, by_segment = kpi_tables(tx, period=period, segments=segments,
                                  churn_days=churn_days, costs=costs)
    cohorts = cohort_retention(tx, period=period)
    fitted, problem = None, "predicted CLV was turned off"
    if clv:
        fitted, problem = _fit_clv(tx, clv_time_unit, clv_horizon, clv_discount_rate, notes,
                                   clv_model, clv_params, clv_summary)
    return KPIReport(kpis, cohorts, by_segment, fitted, dict(extras or {}),
                     tx.as_of.isoformat(), notes, problem)


def saved_clv_params(settings: KPIConfig) -> SavedCLV | None:
    """Return the saved CLV parameters of ``[kpis] clv_params``, read and checked.

    What the weekly run and ``rfm-engine kpis`` score the predicted CLV with instead of
    fitting (``report_kpis(..., clv_params=...)``); both call it before any work, so a
    bad file stops them in one line before the transactions are read.

    Parameters
    ----------
    settings : KPIConfig
        The effective ``[kpis]`` section.

    Returns
    -------
    SavedCLV or None
        None without ``clv_params``, or when ``clv`` is off (nothing to score).

    Raises
    ------
    ConfigError
        A file that cannot be read or is not a params file (one line naming the file and
        the key; :func:`rfm_engine.measurement.clv.read_params`).
    """
    if not (settings.clv and settings.clv_params):
        return None
    from ..measurement.clv import read_params

    return read_params(settings.clv_params)


def report_kpis(
    tx: Transactions,
    inputs: Mapping[str, Any] | None = None,
    *,
    period: str = "month",
    segments: pd.DataFrame | None = None,
    churn_days: int | None = 90,
    clv: bool = True,
    clv_horizon: float = 52,
    clv_model: str = "bgnbd",
    clv_params: SavedCLV | None = None,
    clv_summary: Callable[[str], pd.DataFrame] | None = None,
) -> KPIReport:
    """Build the KPI report of a run with its optional inputs (the weekly run, ``kpis``).

    :func:`build_kpi_report` with the KPIs of the optional inputs
    (:func:`input_kpis`) as extras, and the costs input summed per period for CAC; what
    the inputs could not give goes to the report's ``warnings``, after its own.

    Parameters
    ----------
    tx : Transactions
        From :func:`rfm_engine.load_transactions`.
    inputs : Mapping, optional
        Kind to table from :func:`rfm_engine.io.crm_inputs.read_inputs`.
    period : {"month", "quarter"}, default="month"
        KPI period.
    segments : DataFrame, optional
        ``customer_id``, ``segment``: adds the per-segment KPIs.
    churn_days : int or None, default=90
        A customer is lost after this many days without a purchase; 0 or None: not
        active in the next period.
    clv : bool, default=True
        Fit the predictive CLV.
    clv_horizon : float, default=52
        Horizon of the predicted CLV, in weeks (in the saved parameters' time unit).
    clv_model : {"bgnbd", "pareto-nbd"}, default="bgnbd"
        The purchase model to fit.
    clv_params : SavedCLV, optional
        Score with these saved parameters instead of fitting.
    clv_summary : callable, optional
        Time unit to the CLV summary (see :func:`build_kpi_report`).

    Returns
    -------
    KPIReport
    """
    inputs = dict(inputs or {})
    notes: list[str] = []
    extras = input_kpis(inputs, period=period, notes=notes)
    report = build_kpi_report(
        tx, period=period, churn_days=churn_days or None, segments=segments,
        costs=costs_per_period(inputs["costs"]) if "costs" in inputs else None,
        clv=clv, clv_horizon=clv_horizon, clv_model=clv_model, clv_params=clv_params,
        extras=extras, clv_summary=clv_summary)
    report.warnings += notes
    return report


def _fit_clv(tx: Transactions, time_unit: str, horizon: float, discount_rate: float,
             notes: list[str], model: str = "bgnbd", saved: SavedCLV | None = None,
             summarise: Callable[[str], pd.DataFrame] | None = None,
             ) -> tuple[CLVResult | None, str | None]:
    """Fit the predictive CLV (or score with ``saved``); return it (None on failure) and why.

    ``summarise``: time unit to the CLV summary; default
    :func:`rfm_engine.core.features.clv_summary` of ``tx``.
    """
    from ..core.features import clv_summary
    from ..errors import RFMEngineError
    from ..measurement.clv import fit_clv, score_clv

    if saved is not None and saved.time_unit is not None:
        time_unit = saved.time_unit  # its alpha (and beta) are per that unit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = (summarise(time_unit) if summarise is not None
                       else clv_summary(tx, time_unit=time_unit))
            if saved is not None:
                result = score_clv(summary, saved, horizon=horizon,
                                   discount_rate=discount_rate)
            else:
                result = fit_clv(summary, model=model, horizon=horizon,
                                 discount_rate=discount_rate, time_unit=time_unit)
        except (RFMEngineError, ValueError, FloatingPointError) as exc:
            notes.append(f"predicted CLV skipped: {exc}")
            return None, f"no predicted CLV: {exc}"
    # fit_clv says each of its warnings once, in words; numerical noise is not news.
    notes += list(dict.fromkeys(f"predicted CLV: {w.message}" for w in caught
                                if not issubclass(w.category, RuntimeWarning)))
    return result, None


#: Optional input kind -> (title, KPI function name in measurement.crm_kpis, takes a period).
_INPUT_KPIS: dict[str, list[tuple[str, str, bool]]] = {
    "surveys": [("NPS", "nps", True), ("CSAT", "csat", True), ("CES", "ces", True)],
    "tickets": [("First-contact resolution", "first_contact_resolution", True)],
    "leads": [("Lead-to-customer conversion", "lead_conversion", True),
              ("Sales cycle (days, created to won)", "sales_cycle", True)],
    "subscriptions": [("Subscription renewal rate", "renewal_rate", True)],
    "email_events": [("Email rates per campaign", "email_rates", False)],
}


def input_kpis(inputs: Mapping[str, Any], *, period: str = "month",
               notes: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """KPIs of the optional CRM inputs, title to table.

    Parameters
    ----------
    inputs : Mapping
        Kind (``surveys``, ``tickets``, ``leads``, ``subscriptions``, ``email_events``) to
        a table from :func:`rfm_engine.io.crm_inputs.read_input`. ``costs`` are not handled
        here: they feed CAC in :func:`build_kpi_report`.
    period : {"month", "quarter"}, default="month"
        Period of the per-period KPIs.
    notes : list of str, optional
        Receives a line for each KPI that the data could not give (e.g. no CES survey).

    Returns
    -------
    dict
    """
    from ..measurement import crm_kpis

    freq = {"month": "M", "quarter": "Q"}[period]
    tables: dict[str, pd.DataFrame] = {}
    for kind, table in inputs.items():
        for title, function, periodic in _INPUT_KPIS.get(kind, []):
            compute = getattr(crm_kpis, function)
            try:
                tables[title] = compute(table, freq) if periodic else compute(table)
            except (ValueError, KeyError) as exc:
                if notes is not None:
                    notes.append(f"{title}: not computed ({exc})")
    return tables


def costs_per_period(costs: Any) -> pd.DataFrame:
    """Sum a validated costs input over channels: one row per ``period`` with ``costs``."""
    frame = costs.frame if hasattr(costs, "frame") else costs
    return frame.groupby("period", sort=True, observed=True)["costs"].sum().reset_index()
