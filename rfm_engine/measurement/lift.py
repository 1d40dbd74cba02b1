"""Did the campaign work? Target vs holdout lift, and before/after KPI comparisons.

:func:`campaign_lift` reads a weekly run folder (``DIR/<as_of>/customers.parquet`` and
``manifest.json``) and the transactions that came *after* it, and compares, for every
campaign, the customers who were sent it (``group == "target"``) with its randomised holdout
(``group == "holdout"``), over the outcome window ``(as_of, as_of + days]``: the day after the
as-of date up to and including ``as_of + days`` (the run's customers were scored on data up to
and including ``as_of``, so a purchase on ``as_of`` predates the campaign). Suppressed,
excluded and unassigned customers are not part of the experiment and are ignored.

Outcomes, per customer
    ``converted``: at least one purchase in the window, a purchase being an order (the
    lines and returns of the same order key dated in the window) whose net amount is above
    zero, or a free order (net zero without a return line): the rule of
    :mod:`rfm_engine.core.orders`, whose SQL (:func:`~rfm_engine.core.orders.grouped_lines_sql`)
    groups the window's lines; ``revenue``: net revenue of the customer's lines dated in the
    window (returns included, so it can be negative), 0 for customers who bought nothing.

Statistics, per campaign (confidence level ``1 - alpha``, tests two-sided)
    - conversion rates with the absolute lift ``p_t - p_h`` and its **Newcombe hybrid score
      interval** (Newcombe 1998, method 10, from two Wilson intervals): unlike the Wald
      interval it keeps its coverage for small holdouts and rates near 0, and never leaves
      [-1, 1];
    - relative lift ``p_t / p_h - 1`` with the **Katz log interval** (delta method on the log
      ratio, variance ``1/x_t - 1/n_t + 1/x_h - 1/n_h``); undefined (NaN) when a group has no
      converter;
    - the pooled **two-proportion z-test** p-value (``2 * norm.sf(|z|)``, the same as
      ``scipy.stats.chi2_contingency`` without continuity correction); ``significant`` is
      ``p_value < alpha``;
    - revenue per customer (zeros included) and its difference, with the **Welch t-test**
      (``scipy.stats.ttest_ind(equal_var=False)``, its p-value and confidence interval) and a
      seeded **percentile bootstrap** interval (groups resampled independently; revenue is
      heavy-tailed and zero-inflated, so compare the two intervals);
      ``revenue_significant`` is the Welch ``revenue_p_value < alpha``;
    - incremental revenue ``(rev/customer target - rev/customer holdout) * n_target`` with the
      Welch interval scaled the same way, and incremental converters ``abs_lift * n_target``.

The total row (``campaign == "(total)"``)
    pools the campaigns that have a holdout, **stratified by campaign** and weighted by
    target size (``w_c = n_target_c / n_target``): the target rate is the pooled target rate,
    the holdout rate is the holdout rates standardised to the targets' campaign mix, so the
    incremental revenue of the total is the sum over campaigns, and campaigns with different
    base rates or holdout fractions cannot bias it (naively pooling the groups can: Simpson's
    paradox). Its intervals are Wald (normal) for conversion, delta method for relative lift,
    Welch-Satterthwaite for revenue and the weighted sum of the campaigns' bootstrap draws;
    its z-test is the stratified test with per-campaign pooled variances. For a single
    campaign each reduces to the campaign's own statistic (except Newcombe, replaced by Wald).

With many campaigns, some will look significant by chance: ``p_value_holm`` holds the
Holm-adjusted p-values over the campaign rows.

:func:`before_after` compares KPI means over the periods before and after a strategy date.
It is *observational* evidence only: trend, seasonality and anything else that changed at
the same time are not controlled for, unlike a holdout.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from warnings import catch_warnings, simplefilter

import numpy as np
import pandas as pd
from scipy import stats

from ..config import InputConfig
from ..core.orders import grouped_lines_sql, orders_table
from ..errors import ConfigError, InputError
from ..io._format import fixed, percent
from ..io._validation import is_int, is_real, require_columns
from ..io.loading import Transactions, load_transactions
from ..io.writers import json_text, plain_json
from ..plotting import new_axes
from .migration import CUSTOMERS_FILE, customers_parts

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BEFORE_AFTER_COLUMNS",
    "LIFT_COLUMNS",
    "BeforeAfterReport",
    "LiftReport",
    "before_after",
    "campaign_lift",
]

#: Columns of :meth:`LiftReport.to_frame`, in order.
LIFT_COLUMNS = [
    "campaign", "n_target", "n_holdout", "converters_target", "converters_holdout",
    "conversion_target", "conversion_holdout",
    "abs_lift", "abs_lift_ci_low", "abs_lift_ci_high",
    "rel_lift", "rel_lift_ci_low", "rel_lift_ci_high",
    "z", "p_value", "p_value_holm", "significant", "incremental_converters",
    "revenue_per_customer_target", "revenue_per_customer_holdout",
    "revenue_diff", "revenue_diff_ci_low", "revenue_diff_ci_high",
    "revenue_diff_boot_ci_low", "revenue_diff_boot_ci_high",
    "revenue_p_value", "revenue_significant",
    "incremental_revenue", "incremental_revenue_ci_low", "incremental_revenue_ci_high",
]
#: Columns of :meth:`BeforeAfterReport.to_frame`, in order.
BEFORE_AFTER_COLUMNS = [
    "metric", "n_before", "n_after", "before_mean", "after_mean", "difference", "pct_change",
    "ci_low", "ci_high", "t", "p_value", "significant",
]
TOTAL = "(total)"
#: Holdouts smaller than this get a warning: the lift estimate is too noisy to act on.
MIN_HOLDOUT = 30
_OUTCOME_COLUMNS = ["customer_id", "campaign", "group", "converted", "revenue"]
_RUN_COLUMNS = ["customer_id", "campaign", "group"]
#: The run's ``[input]`` keys that are load options (every key but the path).
_INPUT_OPTIONS = frozenset(InputConfig.model_fields) - {"path", "engine"}  # lift reads with DuckDB
_MAX_CELLS = 1 << 22  # bootstrap draws per chunk: 4 Mi values (32 MB), whatever the size
_PERIODS = {"month": ("month", "1 MONTH", "M"), "quarter": ("quarter", "3 MONTH", "Q"),
            "week": ("week", "7 DAY", "W-SUN")}  # DuckDB weeks start on Monday, as W-SUN
DEFAULT_METRICS = ("revenue", "orders", "active_customers", "new_customers",
                   "average_order_value")


# ---------------------------------------------------------------------------- campaign lift


def campaign_lift(
    run_dir: str | Path,
    transactions: Transactions | str | Path | pd.DataFrame,
    *,
    days: int = 30,
    columns: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    **load_kwargs: Any,
) -> LiftReport:
    """Measure each campaign of a weekly run against its holdout.

    Parameters
    ----------
    run_dir : str or Path
        A run folder ``DIR/<as_of>/`` holding ``customers.parquet`` (``customer_id``,
        ``campaign``, ``group``) and ``manifest.json`` (``as_of``, ``config``).
    transactions : Transactions, str, Path or DataFrame
        Transactions covering the outcome window: already loaded (then loaded without an
        ``as_of`` before the window's end, or the window is cut short), or a source for
        :func:`~rfm_engine.io.loading.load_transactions`, read with the run's ``[columns]`` and
        ``[input]`` reading options (from the manifest) unless overridden.
    days : int, default=30
        Length of the outcome window ``(as_of, as_of + days]``: purchases on ``as_of`` do
        not count, purchases on ``as_of + days`` do.
    columns : Mapping[str, str], optional
        Column mapping for a source; default: the run's ``config.columns`` (pass ``{}`` for
        canonical names).
    alpha : float, default=0.05
        Significance level; intervals are ``1 - alpha`` (95 %) two-sided.
    n_boot : int, default=2000
        Bootstrap resamples for the revenue interval; 0 skips the bootstrap (NaN).
    seed : int, default=0
        Seed of the bootstrap; each campaign draws from its own stream derived from the seed
        and its name, so a campaign's interval does not depend on the other campaigns.
    **load_kwargs
        Passed to :func:`~rfm_engine.io.loading.load_transactions` when loading a source
        (``date_format``, ``on_bad_rows``, ...).

    Returns
    -------
    LiftReport

    Raises
    ------
    InputError
        The run folder lacks ``customers.parquet`` or ``manifest.json``, or they are
        unreadable.
    MissingColumnsError
        ``customers.parquet`` lacks ``customer_id``, ``campaign`` or ``group``.
    ConfigError
        A parameter is out of range.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> tmp = tempfile.TemporaryDirectory()
    >>> run = Path(tmp.name) / "2024-01-31"
    >>> run.mkdir()
    >>> pd.DataFrame({"customer_id": ["t1", "t2", "t3", "h1", "h2"],
    ...               "campaign": ["winback"] * 5,
    ...               "group": ["target"] * 3 + ["holdout"] * 2}).to_parquet(
    ...     run / "customers.parquet")
    >>> _ = (run / "manifest.json").write_text(json.dumps({"as_of": "2024-01-31",
    ...                                                    "config": {}}))
    >>> tx = pd.DataFrame({"customer_id": ["t1", "t2", "h1", "t3"],
    ...                    "order_date": ["2024-02-03", "2024-02-20", "2024-02-11",
    ...                                   "2024-01-31"],
    ...                    "amount": [40.0, 20.0, 30.0, 99.0]})
    >>> report = campaign_lift(run, tx, days=30, n_boot=200)
    >>> report.to_frame().loc[0, ["conversion_target", "conversion_holdout",
    ...                           "incremental_revenue"]].tolist()
    [0.6666666666666666, 0.5, 15.0]
    >>> [w.split(":")[0] for w in report.warnings]  # the data end on 2024-02-20
    ['Data incomplete', "Campaign 'winback'"]
    >>> tmp.cleanup()
    """
    _check_int("days", days, 1)
    _check_int("n_boot", n_boot, 0)
    _check_int("seed", seed, 0)
    _check_alpha(alpha)
    run_dir = Path(run_dir)
    as_of, config, customers = _read_run(run_dir)
    end = as_of + dt.timedelta(days=days)

    if isinstance(transactions, Transactions):
        tx = transactions
    else:
        options = {k: v for k, v in (config.get("input") or {}).items()
                   if k in _INPUT_OPTIONS and v is not None}
        options.update(load_kwargs)
        mapping = (config.get("columns") or {}) if columns is None else columns
        tx = load_transactions(transactions, columns=mapping, **options)

    outcomes, warnings = _outcomes(tx, customers, as_of, end)
    return LiftReport(outcomes, as_of=as_of, days=days, alpha=alpha, n_boot=n_boot, seed=seed,
                      warnings=warnings)


def _read_run(run_dir: Path) -> tuple[dt.date, dict[str, Any], pd.DataFrame]:
    manifest_path, customers_path = run_dir / "manifest.json", run_dir / CUSTOMERS_FILE
    for path, found in ((manifest_path, manifest_path.is_file()),
                        (customers_path, bool(customers_parts(run_dir)))):
        if not found:
            raise InputError(f"{path}: no such file. Pass the folder of one weekly run, "
                             "DIR/<as_of>/, as written by 'rfm-engine run'.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        as_of = dt.date.fromisoformat(str(manifest["as_of"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{manifest_path}: expected JSON with an ISO 'as_of' date "
                         f"({type(exc).__name__}: {exc}).") from None
    config = manifest.get("config") or {}
    try:
        customers = pd.read_parquet(customers_path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise InputError(f"{customers_path}: not a readable Parquet file ({exc}).") from None
    require_columns(customers, _RUN_COLUMNS, str(customers_path))
    customers = customers.loc[customers["group"].isin(["target", "holdout"])
                              & customers["campaign"].notna(), _RUN_COLUMNS]
    customers = customers.astype({"customer_id": str, "campaign": str, "group": str})
    duplicated = customers["customer_id"].duplicated()
    if duplicated.any():
        raise InputError(f"{customers_path}: customer_id "
                         f"{customers['customer_id'][duplicated].iloc[0]!r} is in the "
                         "experiment more than once; a customer belongs to one campaign.")
    return as_of, config, customers.reset_index(drop=True)


def _outcomes(tx: Transactions, customers: pd.DataFrame, as_of: dt.date,
              end: dt.date) -> tuple[pd.DataFrame, list[str]]:
    """Per experiment customer: converted and net revenue in ``(as_of, end]``, plus warnings."""
    con, lo, hi = tx.con, f"DATE '{as_of.isoformat()}'", f"DATE '{end.isoformat()}'"
    last, after = con.execute(
        f"SELECT max(order_date), count(*) FILTER (WHERE order_date > {lo}) FROM transactions"
    ).fetchall()[0]
    warnings = []
    if not after:
        warnings.append(
            f"No transaction after the run's as_of {as_of}: every outcome is zero. Load "
            "transactions that cover the window, without an as_of at or before "
            f"{as_of} (the transactions end on {last})."
        )
    elif last < end:
        warnings.append(
            f"Data incomplete: the window ({as_of}, {end}] runs past the last transaction "
            f"({last}); only {(last - as_of).days} of {(end - as_of).days} days are "
            "observed, so conversion and revenue are understated (in both groups)."
        )
    if tx.window_start is not None and tx.window_start > as_of + dt.timedelta(days=1):
        warnings.append(f"The transactions start on {tx.window_start} (window_days), after "
                        f"the window's first day {as_of + dt.timedelta(days=1)}.")
    name = "_rfm_lift_customers"
    con.register(name, customers)
    try:
        outcomes = con.execute(f"""
            WITH orders AS (
                {grouped_lines_sql(where=f"order_date > {lo} AND order_date <= {hi}")}
            ), per_customer AS (
                SELECT customer_id, bool_or(is_purchase) AS converted,
                       sum(CAST(net AS DOUBLE)) AS revenue
                FROM orders GROUP BY customer_id
            )
            SELECT c.customer_id, c.campaign, c."group",
                   coalesce(p.converted, false) AS converted,
                   coalesce(p.revenue, 0.0) AS revenue
            FROM {name} c LEFT JOIN per_customer p USING (customer_id)
            ORDER BY c.campaign, c."group" DESC, c.customer_id
        """).df()
    finally:
        con.unregister(name)
    return outcomes, warnings


@dataclass
class _Arm:
    """One group of one campaign: conversion indicators and revenue per customer."""

    converted: np.ndarray
    revenue: np.ndarray

    @property
    def n(self) -> int:
        return int(self.converted.size)

    @property
    def x(self) -> int:
        return int(self.converted.sum())

    @property
    def p(self) -> float:
        return self.x / self.n if self.n else math.nan

    @property
    def mean(self) -> float:
        return float(self.revenue.mean()) if self.n else math.nan

    @property
    def var(self) -> float:
        return float(self.revenue.var(ddof=1)) if self.n > 1 else math.nan


class LiftReport:
    """Target vs holdout lift per campaign, with the stratified total.

    Built by :func:`campaign_lift` (or directly from per-customer outcomes); the statistics
    are computed on first use. The module docstring describes every statistic.

    Parameters
    ----------
    outcomes : DataFrame
        One row per experiment customer: ``customer_id``, ``campaign``, ``group``
        (``target`` or ``holdout``; other rows are ignored), ``converted`` (bool) and
        ``revenue`` (net, 0 without purchase). Not modified.
    as_of : date
        The run's as-of date; the outcome window starts the day after.
    days : int, default=30
        Length of the outcome window.
    alpha : float, default=0.05
        Significance level; intervals are ``1 - alpha``.
    n_boot : int, default=2000
        Bootstrap resamples (0: no bootstrap interval).
    seed : int, default=0
        Bootstrap seed.
    warnings : sequence of str, default=()
        Data warnings found while building the outcomes; the holdout-size warnings are
        added here.

    Attributes
    ----------
    outcomes : DataFrame
        The target and holdout rows of ``outcomes``.
    as_of, days, alpha, n_boot, seed
        As given.
    window : tuple of date
        ``(as_of, as_of + days)``: the window excludes its start, includes its end.
    warnings : list of str
        Data warnings, then holdout warnings (empty or fewer than ``MIN_HOLDOUT``).

    Examples
    --------
    >>> import datetime as dt
    >>> import pandas as pd
    >>> outcomes = pd.DataFrame({
    ...     "customer_id": [f"c{i}" for i in range(8)], "campaign": "promo",
    ...     "group": ["target"] * 4 + ["holdout"] * 4,
    ...     "converted": [True, True, True, False, True, False, False, False],
    ...     "revenue": [30.0, 10.0, 20.0, 0.0, 10.0, 0.0, 0.0, 0.0]})
    >>> report = LiftReport(outcomes, as_of=dt.date(2024, 1, 31), n_boot=100)
    >>> report.to_frame().loc[0, ["abs_lift", "revenue_diff", "incremental_revenue"]].tolist()
    [0.5, 12.5, 50.0]
    """

    def __init__(self, outcomes: pd.DataFrame, *, as_of: dt.date, days: int = 30,
                 alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
                 warnings: Sequence[str] = ()) -> None:
        require_columns(outcomes, _OUTCOME_COLUMNS, "outcomes")
        _check_int("days", days, 1)
        _check_alpha(alpha)
        _check_int("n_boot", n_boot, 0)
        _check_int("seed", seed, 0)
        self.outcomes = outcomes.loc[outcomes["group"].isin(["target", "holdout"]),
                                     _OUTCOME_COLUMNS].reset_index(drop=True)
        self.as_of, self.days = as_of, days
        self.alpha, self.n_boot, self.seed = alpha, n_boot, seed
        self.window = (as_of, as_of + dt.timedelta(days=days))
        self.warnings = list(warnings)
        for campaign, arms in self._arms.items():
            n_h = arms["holdout"].n
            if n_h == 0:
                self.warnings.append(f"Campaign {campaign!r}: empty holdout, no lift can be "
                                     "measured (it is left out of the total).")
            elif n_h < MIN_HOLDOUT:
                self.warnings.append(f"Campaign {campaign!r}: holdout of {n_h} customers "
                                     f"(< {MIN_HOLDOUT}): the lift is too noisy to act on.")

    def __repr__(self) -> str:
        return (f"LiftReport(as_of={self.as_of}, days={self.days}, "
                f"campaigns={len(self._arms)}, warnings={len(self.warnings)})")

    @cached_property
    def _arms(self) -> dict[str, dict[str, _Arm]]:
        arms: dict[str, dict[str, _Arm]] = {}
        for campaign, frame in self.outcomes.groupby("campaign", sort=True):
            arms[str(campaign)] = {
                group: _Arm(frame.loc[frame["group"] == group, "converted"]
                            .to_numpy(dtype=bool),
                            frame.loc[frame["group"] == group, "revenue"]
                            .to_numpy(dtype=float))
                for group in ("target", "holdout")
            }
        return arms

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per campaign, then the total; see :meth:`to_frame`."""
        z = float(stats.norm.ppf(1 - self.alpha / 2))
        rows, strata = [], []
        for campaign, arms in self._arms.items():
            target, holdout = arms["target"], arms["holdout"]
            boot = _bootstrap_diff(target.revenue, holdout.revenue, self.n_boot,
                                   np.random.default_rng([self.seed,
                                                          zlib.crc32(campaign.encode())]))
            row = _stratified(campaign, [(target, holdout, boot)], z, self.alpha)
            row.update(_campaign_only(target, holdout, z, self.alpha))
            rows.append(row)
            if target.n and holdout.n:
                strata.append((target, holdout, boot))
        if strata:
            rows.append(_stratified(TOTAL, strata, z, self.alpha))
        table = pd.DataFrame(rows, columns=LIFT_COLUMNS)
        campaigns = table["campaign"] != TOTAL
        table.loc[campaigns, "p_value_holm"] = _holm(table.loc[campaigns, "p_value"])
        ints = ["n_target", "n_holdout", "converters_target", "converters_holdout"]
        table[ints] = table[ints].astype("int64")
        table[["significant", "revenue_significant"]] = (
            table[["significant", "revenue_significant"]].astype(bool))
        floats = [c for c in LIFT_COLUMNS if c not in ints + ["campaign", "significant",
                                                              "revenue_significant"]]
        table[floats] = table[floats].astype("float64")
        return table

    def to_frame(self) -> pd.DataFrame:
        """Return the lift table: one row per campaign, then ``(total)``.

        Returns
        -------
        DataFrame
            Columns :data:`LIFT_COLUMNS`: group sizes and converters, conversion rates,
            ``abs_lift`` (``p_t - p_h``) and ``rel_lift`` (``p_t / p_h - 1``) with their
            ``_ci_low``/``_ci_high``, the z-test ``z``, ``p_value``, ``p_value_holm`` and
            ``significant``, ``incremental_converters``, revenue per customer, the revenue
            difference with its Welch and bootstrap intervals, ``revenue_p_value`` and
            ``revenue_significant``, and ``incremental_revenue`` with its interval. NaN
            where a statistic is undefined (empty holdout, no converter, fewer than two
            customers in a group).
        """
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data: window, parameters, rows and warnings."""
        return {
            "as_of": self.as_of.isoformat(),
            "window": {"start_exclusive": self.window[0].isoformat(),
                       "end_inclusive": self.window[1].isoformat(), "days": self.days},
            "alpha": self.alpha, "n_boot": self.n_boot, "seed": self.seed,
            "campaigns": plain_json(self.table.to_dict(orient="records")),
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Return :meth:`to_dict` as JSON text (NaN and infinities written as ``null``)."""
        return json_text(self.to_dict(), indent=indent)

    def plot(self, ax: Axes | None = None, *, metric: str = "abs_lift") -> Axes:
        """Plot the lift of each campaign and the total with its confidence interval.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure (no pyplot) when omitted.
        metric : {"abs_lift", "rel_lift", "revenue_diff", "incremental_revenue"}, \
default="abs_lift"
            The estimate drawn; its ``_ci_low``/``_ci_high`` columns give the error bars.

        Returns
        -------
        Axes
        """
        labels = {"abs_lift": "conversion lift (percentage points)",
                  "rel_lift": "relative conversion lift", "revenue_diff":
                  "revenue per customer, target - holdout", "incremental_revenue":
                  "incremental revenue"}
        if metric not in labels:
            raise ConfigError(f"The 'metric' parameter of LiftReport.plot must be one of "
                              f"{', '.join(labels)}. Got {metric!r} instead.")
        if ax is None:
            ax = new_axes(7.0, 0.45 * len(self.table) + 1.4)
        table = self.table.iloc[::-1]
        scale = 100.0 if metric == "abs_lift" else 1.0
        y = np.arange(len(table))
        value = table[metric].to_numpy(dtype=float) * scale
        low = table[f"{metric}_ci_low"].to_numpy(dtype=float) * scale
        high = table[f"{metric}_ci_high"].to_numpy(dtype=float) * scale
        errors = np.vstack([value - low, high - value])
        flag = "significant" if metric in ("abs_lift", "rel_lift") else "revenue_significant"
        colors = ["#e6550d" if s else "#7f7f7f" for s in table[flag]]
        for yi, vi, ei, ci in zip(y, value, errors.T, colors, strict=True):
            ax.errorbar(vi, yi, xerr=ei[:, None], fmt="o", color=ci, capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, table["campaign"].tolist())
        ax.set_xlabel(labels[metric])
        ax.set_title(f"Campaign lift, window ({self.window[0]}, {self.window[1]}], "
                     f"{1 - self.alpha:.0%} CI (orange: significant)",
                     fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def __str__(self) -> str:
        level = f"{1 - self.alpha:.0%}"
        lines = [f"Campaign lift: target vs holdout, window ({self.window[0]}, "
                 f"{self.window[1]}] ({self.days} days), {level} intervals",
                 f"{'campaign':<28} {'target':>7} {'holdout':>7} {'conv t':>7} {'conv h':>7} "
                 f"{'lift pp [CI]':>24} {'p':>7} {'rev/cust diff [CI]':>26} "
                 f"{'incremental revenue [CI]':>32}"]
        for r in self.table.itertuples(index=False):
            lift = (f"{fixed(100 * r.abs_lift, '+.2f')} [{fixed(100 * r.abs_lift_ci_low, '+.2f')}"
                    f", {fixed(100 * r.abs_lift_ci_high, '+.2f')}]")
            rev = (f"{fixed(r.revenue_diff, '+,.2f')} [{fixed(r.revenue_diff_ci_low, '+,.2f')}, "
                   f"{fixed(r.revenue_diff_ci_high, '+,.2f')}]")
            inc = (f"{fixed(r.incremental_revenue, '+,.0f')} "
                   f"[{fixed(r.incremental_revenue_ci_low, '+,.0f')}, "
                   f"{fixed(r.incremental_revenue_ci_high, '+,.0f')}]")
            mark = " *" if r.significant else ""
            lines.append(f"{r.campaign:<28} {r.n_target:>7,} {r.n_holdout:>7,} "
                         f"{percent(r.conversion_target):>7} "
                         f"{percent(r.conversion_holdout):>7} {lift:>24} "
                         f"{fixed(r.p_value, '.3f'):>7} {rev:>26} {inc:>32}{mark}")
        lines.append(f"* conversion lift significant at alpha={self.alpha} (two-sided "
                     "z-test); revenue intervals are Welch t.")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _campaign_only(target: _Arm, holdout: _Arm, z: float, alpha: float) -> dict[str, Any]:
    """Refine a campaign row: Newcombe interval and scipy's Welch test."""
    lo, hi = _newcombe(target.x, target.n, holdout.x, holdout.n, z)
    out: dict[str, Any] = {"abs_lift_ci_low": lo, "abs_lift_ci_high": hi}
    if target.n > 1 and holdout.n > 1 and (target.var > 0 or holdout.var > 0):
        result = _welch(target.revenue, holdout.revenue)
        ci = result.confidence_interval(confidence_level=1 - alpha)
        p, low, high = float(result.pvalue), float(ci.low), float(ci.high)
        out.update(revenue_diff_ci_low=low, revenue_diff_ci_high=high, revenue_p_value=p,
                   revenue_significant=p < alpha,
                   incremental_revenue_ci_low=low * target.n,
                   incremental_revenue_ci_high=high * target.n)
    return out


def _stratified(name: str, strata: list[tuple[_Arm, _Arm, np.ndarray]], z: float,
                alpha: float) -> dict[str, Any]:
    """Statistics over campaigns weighted by target size (a single campaign: its own)."""
    n_t = sum(t.n for t, _, _ in strata)
    row: dict[str, Any] = {
        "campaign": name, "n_target": n_t, "n_holdout": sum(h.n for _, h, _ in strata),
        "converters_target": sum(t.x for t, _, _ in strata),
        "converters_holdout": sum(h.x for _, h, _ in strata),
        "significant": False, "revenue_significant": False,
    }
    nan_columns = [c for c in LIFT_COLUMNS if c not in row]
    row.update(dict.fromkeys(nan_columns, math.nan))
    if n_t == 0 or any(h.n == 0 for _, h, _ in strata):
        row["conversion_target"] = row["converters_target"] / n_t if n_t else math.nan
        row["revenue_per_customer_target"] = (
            sum(t.revenue.sum() for t, _, _ in strata) / n_t if n_t else math.nan)
        return row
    w = np.array([t.n / n_t for t, _, _ in strata])
    pt, ph = (np.array([a.p for a in arms]) for arms in zip(*[s[:2] for s in strata],
                                                           strict=True))
    nt, nh = (np.array([a.n for a in arms], dtype=float)
              for arms in zip(*[s[:2] for s in strata], strict=True))
    a, b = float(w @ pt), float(w @ ph)
    d = a - b
    var_a, var_b = float(w**2 @ (pt * (1 - pt) / nt)), float(w**2 @ (ph * (1 - ph) / nh))
    se = math.sqrt(var_a + var_b)
    pooled = (pt * nt + ph * nh) / (nt + nh)
    se0 = math.sqrt(float(w**2 @ (pooled * (1 - pooled) * (1 / nt + 1 / nh))))
    zstat = d / se0 if se0 > 0 else 0.0  # se0 == 0: every customer alike, no evidence
    p_value = float(2 * stats.norm.sf(abs(zstat)))
    row.update(conversion_target=a, conversion_holdout=b, abs_lift=d,
               abs_lift_ci_low=d - z * se, abs_lift_ci_high=d + z * se, z=zstat,
               p_value=p_value, significant=p_value < alpha, incremental_converters=d * n_t)
    if a > 0 and b > 0:
        se_log = math.sqrt(var_a / a**2 + var_b / b**2)
        ratio = a / b
        row.update(rel_lift=ratio - 1, rel_lift_ci_low=ratio * math.exp(-z * se_log) - 1,
                   rel_lift_ci_high=ratio * math.exp(z * se_log) - 1)
    elif b > 0:
        row["rel_lift"] = -1.0  # no target converter: the interval is undefined

    mt = np.array([t.mean for t, _, _ in strata])
    mh = np.array([h.mean for _, h, _ in strata])
    diff = float(w @ (mt - mh))
    row.update(revenue_per_customer_target=float(w @ mt),
               revenue_per_customer_holdout=float(w @ mh), revenue_diff=diff,
               incremental_revenue=diff * n_t)
    # Welch-Satterthwaite over the 2 x campaigns group means (Welch's test for one campaign).
    terms = np.concatenate([w**2 * np.array([t.var for t, _, _ in strata]) / nt,
                            w**2 * np.array([h.var for _, h, _ in strata]) / nh])
    sizes = np.concatenate([nt, nh])
    if np.all(sizes > 1):
        se_rev = math.sqrt(float(terms.sum()))
        if se_rev > 0:
            df = float(terms.sum() ** 2 / np.sum(terms**2 / (sizes - 1)))
            q = float(stats.t.ppf(1 - alpha / 2, df))
            rev_p = float(2 * stats.t.sf(abs(diff) / se_rev, df))
            low, high = diff - q * se_rev, diff + q * se_rev
        else:  # both groups constant: the difference is exact
            rev_p, low, high = (1.0 if diff == 0 else 0.0), diff, diff
        row.update(revenue_diff_ci_low=low, revenue_diff_ci_high=high, revenue_p_value=rev_p,
                   revenue_significant=rev_p < alpha, incremental_revenue_ci_low=low * n_t,
                   incremental_revenue_ci_high=high * n_t)
    boot = sum(wi * s[2] for wi, s in zip(w, strata, strict=True))
    if isinstance(boot, np.ndarray) and boot.size and not np.isnan(boot).any():
        low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        row.update(revenue_diff_boot_ci_low=float(low), revenue_diff_boot_ci_high=float(high))
    return row


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``x / n``."""
    center = (x + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(x * (n - x) / n + z**2 / 4)
    return max(0.0, center - half), min(1.0, center + half)


def _newcombe(x_t: int, n_t: int, x_h: int, n_h: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``x_t / n_t - x_h / n_h`` (method 10)."""
    if not n_t or not n_h:
        return math.nan, math.nan
    p_t, p_h = x_t / n_t, x_h / n_h
    (l_t, u_t), (l_h, u_h) = _wilson(x_t, n_t, z), _wilson(x_h, n_h, z)
    d = p_t - p_h
    return (d - math.sqrt((p_t - l_t) ** 2 + (u_h - p_h) ** 2),
            d + math.sqrt((u_t - p_t) ** 2 + (p_h - l_h) ** 2))


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` means of resamples (with replacement, same size) of ``values``.

    Exact, and fast for zero-inflated revenue: of the ``n`` draws of a resample, the number
    landing on a non-zero value is Binomial(n, k/n) and, given that number, they are uniform
    over the ``k`` non-zero values; the zeros add nothing to the sum. Drawn in chunks of at
    most ``_MAX_CELLS`` values, so memory stays bounded.
    """
    n = values.size
    nonzero = values[values != 0]
    k = nonzero.size
    if k == 0:
        return np.zeros(n_boot)
    hits = rng.binomial(n, k / n, size=n_boot)
    out = np.empty(n_boot)
    step = max(1, _MAX_CELLS // max(int(hits.max()), 1))
    for start in range(0, n_boot, step):
        chunk = hits[start:start + step]
        width = int(chunk.max())
        draws = nonzero[rng.integers(0, k, size=(chunk.size, width))]
        draws[np.arange(width) >= chunk[:, None]] = 0.0
        out[start:start + step] = draws.sum(axis=1) / n
    return out


def _bootstrap_diff(target: np.ndarray, holdout: np.ndarray, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of ``mean(target) - mean(holdout)``, groups resampled independently."""
    if n_boot == 0 or target.size == 0 or holdout.size == 0:
        return np.full(n_boot, math.nan)
    return _bootstrap_means(target, n_boot, rng) - _bootstrap_means(holdout, n_boot, rng)


def _holm(p_values: pd.Series) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN stays NaN)."""
    p = p_values.to_numpy(dtype=float)
    out = np.full(p.size, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else np.array([])
    out[order] = np.minimum(adjusted, 1.0)
    return out


# ---------------------------------------------------------------------------- before/after


class BeforeAfterReport:
    """KPI means over the periods before vs after a strategy date (observational).

    Built by :func:`before_after`. A difference here is not evidence that the strategy
    caused it: trend, seasonality and everything else that changed are not controlled for
    (use a holdout and :func:`campaign_lift` for causal evidence).

    Parameters
    ----------
    series : DataFrame
        One row per period used: ``period`` (its first day), ``side`` (``before`` or
        ``after``) and one column per metric.
    strategy_date : date
        The date of the change; its period belongs to ``after`` when it starts on it, and
        to neither side otherwise.
    metrics : sequence of str
        The metrics compared.
    period : str, default="month"
        Period length.
    periods : int, default=3
        Periods wanted on each side.
    alpha : float, default=0.05
        Significance level of the Welch test; intervals are ``1 - alpha``.
    warnings : sequence of str, default=()
        Messages worth showing.
    """

    def __init__(self, series: pd.DataFrame, strategy_date: dt.date, metrics: Sequence[str],
                 *, period: str = "month", periods: int = 3, alpha: float = 0.05,
                 warnings: Sequence[str] = ()) -> None:
        self.series = series
        self.strategy_date = strategy_date
        self.metrics = list(metrics)
        self.period, self.periods, self.alpha = period, periods, alpha
        self.warnings = list(warnings)

    def __repr__(self) -> str:
        return (f"BeforeAfterReport(strategy_date={self.strategy_date}, period={self.period!r}, "
                f"periods={self.periods}, metrics={self.metrics})")

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per metric; see :meth:`to_frame`."""
        rows = []
        before = self.series[self.series["side"] == "before"]
        after = self.series[self.series["side"] == "after"]
        for metric in self.metrics:
            b = before[metric].to_numpy(dtype=float)
            a = after[metric].to_numpy(dtype=float)
            b, a = b[~np.isnan(b)], a[~np.isnan(a)]
            mb = float(b.mean()) if b.size else math.nan
            ma = float(a.mean()) if a.size else math.nan
            row = {"metric": metric, "n_before": b.size, "n_after": a.size,
                   "before_mean": mb, "after_mean": ma, "difference": ma - mb,
                   "pct_change": (ma - mb) / abs(mb) if mb else math.nan,
                   "ci_low": math.nan, "ci_high": math.nan, "t": math.nan,
                   "p_value": math.nan, "significant": False}
            if a.size > 1 and b.size > 1 and (a.var() > 0 or b.var() > 0):
                result = _welch(a, b)
                ci = result.confidence_interval(confidence_level=1 - self.alpha)
                row.update(ci_low=float(ci.low), ci_high=float(ci.high),
                           t=float(result.statistic), p_value=float(result.pvalue),
                           significant=bool(result.pvalue < self.alpha))
            rows.append(row)
        table = pd.DataFrame(rows, columns=BEFORE_AFTER_COLUMNS)
        return table.astype({"n_before": "int64", "n_after": "int64", "significant": bool})

    def to_frame(self) -> pd.DataFrame:
        """Return one row per metric.

        Returns
        -------
        DataFrame
            Columns :data:`BEFORE_AFTER_COLUMNS`: periods used on each side, the two
            means, ``difference`` (after - before), ``pct_change`` (difference / |before|,
            NaN when the before mean is 0), the Welch interval of the difference
            (``ci_low``, ``ci_high``), ``t``, ``p_value`` and ``significant``; the test
            needs two periods on each side (NaN otherwise).
        """
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "strategy_date": self.strategy_date.isoformat(), "period": self.period,
            "periods": self.periods, "alpha": self.alpha, "observational": True,
            "metrics": plain_json(self.table.to_dict(orient="records")),
            "series": plain_json(self.series.to_dict(orient="records")),
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Return :meth:`to_dict` as JSON text (NaN written as ``null``)."""
        return json_text(self.to_dict(), indent=indent)

    def plot(self, ax: Axes | None = None, *, metric: str = "revenue") -> Axes:
        """Plot one metric per period, before and after, with the two means.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure (no pyplot) when omitted.
        metric : str, default="revenue"
            One of the compared metrics.

        Returns
        -------
        Axes
        """
        if metric not in self.metrics:
            raise ConfigError(f"The 'metric' parameter must be one of the compared metrics "
                              f"{', '.join(self.metrics)}. Got {metric!r} instead.")
        if ax is None:
            ax = new_axes(7.0, 3.4)
        x = pd.to_datetime(pd.Series(self.series["period"], dtype="object"))
        colors = {"before": "#7f7f7f", "after": "#2b8cbe"}
        for side, color in colors.items():
            mask = (self.series["side"] == side).to_numpy()
            ax.plot(x[mask], self.series.loc[mask, metric], marker="o", color=color,
                    label=side)
            if mask.any():
                ax.hlines(self.series.loc[mask, metric].mean(), x[mask].min(), x[mask].max(),
                          colors=color, linestyles="dashed")
        ax.axvline(pd.Timestamp(self.strategy_date), color="black", linewidth=0.8)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per {self.period}, before vs after {self.strategy_date} "
                     "(observational)", fontsize=10)
        ax.legend(frameon=False, fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        return ax

    def __str__(self) -> str:
        lines = [f"Before/after {self.strategy_date}: {self.periods} {self.period}s each side "
                 "(observational, not causal: trend and seasonality are not controlled for)",
                 f"{'metric':<22} {'before':>12} {'after':>12} {'change':>12} {'%':>8} "
                 f"{'p':>7}"]
        for r in self.table.itertuples(index=False):
            lines.append(f"{r.metric:<22} {fixed(r.before_mean, ',.2f'):>12} "
                         f"{fixed(r.after_mean, ',.2f'):>12} {fixed(r.difference, '+,.2f'):>12} "
                         f"{percent(r.pct_change, sign=True):>8} {fixed(r.p_value, '.3f'):>7}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def before_after(
    data: Transactions | pd.DataFrame | Any,
    strategy_date: str | dt.date,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    periods: int = 3,
    period: str = "month",
    alpha: float = 0.05,
    columns: Mapping[str, str] | None = None,
    **load_kwargs: Any,
) -> BeforeAfterReport:
    """Compare KPI means over the ``periods`` periods before and after a strategy date.

    Observational evidence only: a change in the means may come from trend, seasonality or
    anything else that changed at the same time. The Welch t-test treats periods as
    independent samples, which seasonal series are not; read its p-value as a rough guide.

    Parameters
    ----------
    data : Transactions, KPI table, DataFrame, str or Path
        Either transactions (loaded, or a source for
        :func:`~rfm_engine.io.loading.load_transactions`, including a raw DataFrame), whose
        per-period KPIs are computed here in DuckDB; or per-period KPIs: a DataFrame with a
        ``period`` column (a period, its first day, or text such as ``"2024-03"``) and one
        column per metric, or an object with ``to_frame()`` returning one (such as a KPI
        table).
    strategy_date : str or date
        When the strategy changed. ``after`` holds the first ``periods`` periods starting on
        or after it; ``before`` the last ``periods`` periods ending before it; a period
        straddling it belongs to neither side.
    metrics : sequence of str, default=DEFAULT_METRICS
        Columns to compare. Computed per period from the orders of
        :func:`~rfm_engine.core.orders.orders_table`: ``revenue`` (net), ``orders``
        (purchases: orders with net > 0, or free orders), ``active_customers`` (customers
        with a purchase), ``new_customers`` (first purchase in the period, within the
        loaded data) and ``average_order_value`` (``revenue / orders``).
    periods : int, default=3
        Periods on each side.
    period : {"month", "quarter", "week"}, default="month"
        Period length (weeks start on Monday).
    alpha : float, default=0.05
        Significance level; intervals are ``1 - alpha``.
    columns : Mapping[str, str], optional
        Column mapping when ``data`` is a transaction source.
    **load_kwargs
        Passed to :func:`~rfm_engine.io.loading.load_transactions` for a transaction source.

    Returns
    -------
    BeforeAfterReport

    Raises
    ------
    ConfigError
        A parameter is out of range, or a metric is not available.

    Examples
    --------
    >>> import pandas as pd
    >>> kpis = pd.DataFrame({"period": ["2024-01", "2024-02", "2024-03", "2024-04",
    ...                                 "2024-05", "2024-06"],
    ...                      "revenue": [100.0, 110.0, 90.0, 150.0, 160.0, 140.0]})
    >>> report = before_after(kpis, "2024-04-01", metrics=["revenue"], periods=3)
    >>> report.to_frame().loc[0, ["before_mean", "after_mean", "difference", "pct_change"]
    ...                       ].tolist()
    [100.0, 150.0, 50.0, 0.5]
    """
    _check_int("periods", periods, 1)
    _check_alpha(alpha)
    if period not in _PERIODS:
        raise ConfigError(f"The 'period' parameter must be one of {', '.join(_PERIODS)}. "
                          f"Got {period!r} instead.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ConfigError("The 'metrics' parameter must name at least one metric. Got none.")
    try:
        strategy = pd.Timestamp(strategy_date).date()
    except (ValueError, TypeError):
        raise ConfigError(f"The 'strategy_date' parameter must be a date such as 2024-04-01. "
                          f"Got {strategy_date!r} instead.") from None

    coverage: tuple[dt.date, dt.date] | None = None
    if hasattr(data, "to_frame") and not isinstance(data, (Transactions, pd.DataFrame)):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame) and "period" in data.columns:
        frame = data.copy()
    else:
        tx = data if isinstance(data, Transactions) else load_transactions(
            data, columns=columns, **load_kwargs)
        frame, coverage = _period_kpis(tx, period)
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        available = [c for c in frame.columns if c != "period"]
        raise ConfigError(f"Metric(s) {', '.join(map(repr, missing))} not available; "
                          f"available: {', '.join(map(repr, available))}.")

    freq = _PERIODS[period][2]
    try:
        spans = [_as_period(v, freq) for v in frame["period"]]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"The 'period' column holds a value that is not a {period}: "
                          f"{exc}.") from None
    frame["period"] = [s.start_time.date() for s in spans]
    ends = pd.Series([s.end_time.date() for s in spans], index=frame.index)
    frame = frame.assign(_end=ends).sort_values("period").drop_duplicates("period")
    before = frame[frame["_end"] < strategy].tail(periods)
    after = frame[frame["period"] >= strategy].head(periods)
    warnings = []
    if coverage is not None:
        first, last = coverage
        for part in (before, after):
            partial = part[(part["period"] < first) | (part["_end"] > last)]
            for p in partial["period"]:
                warnings.append(f"The {period} starting {p} is only partly covered by the "
                                f"transactions ({first} to {last}) and is left out.")
        before = before[(before["period"] >= first) & (before["_end"] <= last)]
        after = after[(after["period"] >= first) & (after["_end"] <= last)]
    for side, part in (("before", before), ("after", after)):
        if len(part) < periods:
            warnings.append(f"Only {len(part)} complete {period}(s) {side} {strategy} "
                            f"(asked for {periods}); the t-test needs at least 2 per side.")
    series = pd.concat([before.assign(side="before"), after.assign(side="after")])
    series = series[["period", "side", *metrics]].reset_index(drop=True)
    return BeforeAfterReport(series, strategy, metrics, period=period, periods=periods,
                             alpha=alpha, warnings=warnings)


def _as_period(value: object, freq: str) -> pd.Period:
    start = value.start_time if isinstance(value, pd.Period) else pd.Timestamp(value)
    return pd.Period(start, freq=freq)


def _period_kpis(tx: Transactions, period: str) -> tuple[pd.DataFrame, tuple[dt.date, dt.date]]:
    """Per-period KPIs from transactions in DuckDB, every period between the first and last."""
    unit, step, _ = _PERIODS[period]
    frame = tx.con.execute(f"""
        WITH orders AS (
            SELECT customer_id, order_date AS day, CAST(net AS DOUBLE) AS net, is_purchase
            FROM {orders_table(tx)}
        ), firsts AS (
            SELECT customer_id, min(day) AS first_day FROM orders WHERE is_purchase
            GROUP BY customer_id
        ), grid AS (
            SELECT CAST(unnest(generate_series(date_trunc('{unit}', min(day)),
                                               date_trunc('{unit}', max(day)),
                                               INTERVAL {step})) AS DATE) AS period
            FROM orders
        ), agg AS (
            SELECT CAST(date_trunc('{unit}', day) AS DATE) AS period, sum(net) AS revenue,
                   count(*) FILTER (WHERE is_purchase) AS orders,
                   count(DISTINCT customer_id) FILTER (WHERE is_purchase) AS active_customers
            FROM orders GROUP BY 1
        ), new AS (
            SELECT CAST(date_trunc('{unit}', first_day) AS DATE) AS period,
                   count(*) AS new_customers
            FROM firsts GROUP BY 1
        )
        SELECT g.period, coalesce(a.revenue, 0.0) AS revenue,
               coalesce(a.orders, 0) AS orders,
               coalesce(a.active_customers, 0) AS active_customers,
               coalesce(n.new_customers, 0) AS new_customers,
               CASE WHEN a.orders > 0 THEN a.revenue / a.orders END AS average_order_value
        FROM grid g LEFT JOIN agg a USING (period) LEFT JOIN new n USING (period)
        ORDER BY g.period
    """).df()
    first = tx.window_start or tx.con.execute(
        f"SELECT min(order_date) FROM {orders_table(tx)}").fetchall()[0][0]
    return frame, (first, tx.as_of)


# ---------------------------------------------------------------------------- helpers


def _welch(a: np.ndarray, b: np.ndarray) -> Any:
    """Welch's t-test of ``mean(a) - mean(b)`` (``scipy.stats.ttest_ind``, unequal variances).

    Callers make sure each group has two values and one group varies. A constant group
    (a holdout nobody bought in) makes scipy warn about precision loss although its zero
    variance is exact, so that warning is silenced here, for this call only.
    """
    with catch_warnings():
        simplefilter("ignore", RuntimeWarning)
        return stats.ttest_ind(a, b, equal_var=False)


def _check_int(name: str, value: object, minimum: int) -> None:
    if not is_int(value) or value < minimum:
        raise ConfigError(f"The {name!r} parameter must be an int >= {minimum}. "
                          f"Got {value!r} instead.")


def _check_alpha(alpha: object) -> None:
    if not is_real(alpha) or not 0 < alpha < 1:
        raise ConfigError(f"The 'alpha' parameter must be a float in (0, 1). "
                          f"Got {alpha!r} instead.")


