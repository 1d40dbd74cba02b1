"""Validation of the CLV models on a holdout period: fit before a date, predict after it.

`validate_clv` fits BG/NBD and Gamma-Gamma (:func:`~rfm_engine.measurement.clv.fit_clv`)
on the calibration period and compares what they predict for the holdout period with
what the calibration customers did in it, the way Fader, Hardie & Lee (2005), "Counting
your customers the easy way", validate the BG/NBD on CDNOW:

* per customer, the absolute and squared errors of the holdout purchases (the
  conditional expectation ``E[Y(t) | x, recency, T]``) and of the holdout spend (those
  purchases times the Gamma-Gamma expected spend), summarised as MAE and RMSE;
* the weekly tracking of cumulative repeat purchases of the calibration customers,
  actual against expected (each customer's ``E[X(t)]`` from their first purchase on:
  the paper's Figure 3), across both periods;
* the conditional expectations: mean holdout purchases by calibration frequency, actual
  against predicted (the paper's Figure 4).

On the CDNOW sample (calibration 1997-01-01 .. 1997-09-30, 39 weeks; holdout to
1998-06-30) the figures agree with the published ones (``tests/test_clv_validation.py``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...core.features import TIME_UNITS, clv_summary
from ...errors import ConfigError
from ...io.loading import Transactions
from ...io.writers import json_text
from ...plotting import new_axes
from .holdout import conditional_expectations, holdout_purchases, repeat_purchase_days
from .plots import plot_calibration_holdout
from .value import CLVResult, fit_clv

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["VALIDATION_FORMAT", "CLVValidation", "validate_clv"]

#: Value of the ``"format"`` key of `CLVValidation.to_json`.
VALIDATION_FORMAT = "rfm-engine/CLV-validation"
_DAYS_PER_WEEK = 7
#: The DuckDB engine's inputs of `validate_clv` (an engine module has the same three).
_DUCKDB = SimpleNamespace(clv_summary=clv_summary, holdout_purchases=holdout_purchases,
                          repeat_purchase_days=repeat_purchase_days)


@dataclass(eq=False)
class CLVValidation:
    """Holdout validation of the CLV models (from `validate_clv`).

    Attributes
    ----------
    customers : DataFrame
        One row per calibration customer: ``customer_id``, the calibration summary
        (``frequency``, ``recency``, ``T``, ``monetary_value``), ``frequency_holdout``
        (actual purchase days in the holdout), ``expected_purchases`` (predicted),
        ``spend_holdout`` (actual net value of those days) and ``expected_spend``
        (predicted: expected purchases times the Gamma-Gamma expected spend, undiscounted).
    tracking : DataFrame
        One row per week from the first purchase of the calibration customers:
        ``week`` (1, 2, ...), ``week_end`` (its last day), ``period`` (``calibration`` or
        ``holdout``), ``actual`` and ``expected`` cumulative repeat purchases.
    conditional : DataFrame
        :func:`~rfm_engine.measurement.clv.holdout.conditional_expectations`:
        ``frequency`` group, ``customers``, ``actual``, ``predicted``.
    fit : CLVResult
        The models fitted on the calibration period (parameters, warnings).
    calibration_end, holdout_end : date
        The last days of the two periods.
    time_unit : str
        The models' time unit (``"W"``: weeks).
    warnings : list of str
        What the fit warned about, once each.
    """

    customers: pd.DataFrame
    tracking: pd.DataFrame
    conditional: pd.DataFrame
    fit: CLVResult
    calibration_end: dt.date
    holdout_end: dt.date
    time_unit: str
    warnings: list[str] = field(default_factory=list)

    @property
    def holdout_length(self) -> float:
        """Length of the holdout period in the models' time unit."""
        return (self.holdout_end - self.calibration_end).days / TIME_UNITS[self.time_unit]

    @property
    def calibration_weeks(self) -> float:
        """Weeks from the first purchase of the calibration customers to ``calibration_end``."""
        days = self.tracking.attrs["calibration_days"]
        return days / _DAYS_PER_WEEK

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """Per-customer errors against the holdout, summarised.

        Returns
        -------
        DataFrame
            Index ``purchases`` and ``spend``; columns ``mae``, ``rmse`` (per customer),
            ``actual_total``, ``predicted_total``, ``actual_mean``, ``predicted_mean``.
        """
        rows = {}
        for name, actual, predicted in (("purchases", "frequency_holdout", "expected_purchases"),
                                        ("spend", "spend_holdout", "expected_spend")):
            a = self.customers[actual].to_numpy(dtype=np.float64)
            p = self.customers[predicted].to_numpy(dtype=np.float64)
            error = p - a
            rows[name] = {"mae": float(np.mean(np.abs(error))),
                          "rmse": float(np.sqrt(np.mean(error ** 2))),
                          "actual_total": float(a.sum()), "predicted_total": float(p.sum()),
                          "actual_mean": float(a.mean()), "predicted_mean": float(p.mean())}
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the per-customer table."""
        return self.customers.copy()

    def figures_frame(self) -> pd.DataFrame:
        """Return every figure of the validation as one long table (the CSV).

        Returns
        -------
        DataFrame
            ``table`` (``metrics``, ``conditional``, ``tracking``), ``row`` (``purchases``
            / ``spend``, a frequency group, a week number), ``measure``, ``value``; the
            rows of `metrics`, `conditional` and `tracking`, in that order.
        """
        parts = [
            self.metrics.rename_axis("row").reset_index()
            .melt(id_vars="row", var_name="measure").assign(table="metrics"),
            self.conditional.rename(columns={"frequency": "row"})
            .melt(id_vars="row", var_name="measure").assign(table="conditional"),
            self.tracking[["week", "actual", "expected"]].rename(columns={"week": "row"})
            .melt(id_vars="row", var_name="measure").assign(table="tracking"),
        ]
        frame = pd.concat([p.astype({"row": str, "value": np.float64}) for p in parts],
                          ignore_index=True)
        return frame[["table", "row", "measure", "value"]]

    def to_json(self) -> str:
        """Return the validation's figures as strict JSON (no customer rows).

        Returns
        -------
        str
            Keys ``format``, ``calibration_end``, ``holdout_end``, ``time_unit``,
            ``model`` (``bgnbd`` or ``pareto-nbd``), ``holdout_length``, ``customers``,
            ``params``, ``metrics`` (``purchases`` and ``spend``: ``mae``, ``rmse``, totals
            and means), ``conditional`` and ``tracking`` (their rows), ``warnings``.
        """
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]

        metrics = {name: {k: _plain(v) for k, v in row.items()}
                   for name, row in self.metrics.to_dict("index").items()}
        document = {
            "format": VALIDATION_FORMAT,
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
            "time_unit": self.time_unit,
            "model": self.fit.model,
            "holdout_length": self.holdout_length,
            "customers": len(self.customers),
            "params": self.fit.params,
            "metrics": metrics,
            "conditional": records(self.conditional),
            "tracking": records(self.tracking.assign(
                week_end=self.tracking["week_end"].map(dt.date.isoformat))),
            "warnings": list(self.warnings),
        }
        return json_text(document)

    def plot_tracking(self, ax: Axes | None = None) -> Axes:
        """Plot actual and expected cumulative repeat purchases per week.

        The dotted vertical line is the end of the calibration period.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new figure without pyplot when omitted.

        Returns
        -------
        Axes
            ``ax.lines[0]`` actual, ``ax.lines[1]`` expected, ``ax.lines[2]`` the boundary.
        """
        ax = ax if ax is not None else new_axes(7, 4)
        weeks = self.tracking["week"].to_numpy()
        ax.plot(weeks, self.tracking["actual"].to_numpy(), label="actual")
        ax.plot(weeks, self.tracking["expected"].to_numpy(), linestyle="--",
                label=_model_label(self.fit))
        boundary = self.calibration_weeks
        ax.axvline(boundary, color="0.4", linestyle=":", linewidth=1)
        ax.annotate(f"end of calibration\n({self.calibration_end.isoformat()})",
                    xy=(boundary, 0.04), xycoords=("data", "axes fraction"),
                    xytext=(-4, 0), textcoords="offset points", ha="right", va="bottom",
                    fontsize=8, color="0.3")
        ax.set_xlim(0, weeks[-1] if len(weeks) else 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("week since the first purchase of the calibration customers")
        ax.set_ylabel("cumulative repeat purchases")
        ax.set_title("Tracking: actual vs expected repeat purchases")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        return ax

    def plot_calibration_holdout(self, ax: Axes | None = None) -> Axes:
        """Plot mean holdout purchases by calibration frequency, actual vs predicted.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new figure without pyplot when omitted.

        Returns
        -------
        Axes
            As :func:`~rfm_engine.measurement.clv.plot_calibration_holdout`.
        """
        calibration = self.customers[["customer_id", "frequency", "recency", "T"]]
        holdout = self.customers[["customer_id", "frequency_holdout"]].assign(
            duration_holdout=self.holdout_length)
        max_frequency = int(self.conditional.attrs["max_frequency"])
        return plot_calibration_holdout(calibration, holdout, self.fit.purchase_model, ax,
                                        max_frequency=max_frequency,
                                        label=_model_label(self.fit))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _model_label(result: CLVResult) -> str:
    return result.purchase_model._LABEL


def validate_clv(calibration: Transactions, holdout: Transactions, *, model: str = "bgnbd",
                 time_unit: str = "W", max_frequency: int = 7,
                 engine: ModuleType | None = None) -> CLVValidation:
    """Fit the CLV models on a calibration period and check them against a holdout period.

    The transaction-scale inputs (the calibration summary, the holdout purchases and spend
    per customer, the repeat purchases per day) come from ``engine``; everything else is
    computed here from those small tables, the same way whatever the engine.

    Parameters
    ----------
    calibration : Transactions
        The transactions loaded with ``as_of`` = the last day of the calibration period
        (the engine's: :class:`rfm_engine.engines.spark.SparkTransactions` on Spark).
    holdout : Transactions
        The same transactions loaded with ``as_of`` = the last day of the holdout period
        (the purchases of both periods).
    model : {"bgnbd", "pareto-nbd"}, default="bgnbd"
        The purchase model (:data:`~rfm_engine.measurement.clv.value.PURCHASE_MODELS`).
    time_unit : {"D", "W", "M"}, default="W"
        The models' time unit. The tracking is weekly whatever the unit.
    max_frequency : int, default=7
        Calibration frequencies from this one up share the last group of the
        conditional expectations.
    engine : module, optional
        Where the inputs are computed: a module with ``clv_summary``,
        ``holdout_purchases`` and ``repeat_purchase_days`` that give the tables of
        :func:`rfm_engine.core.features.clv_summary` and of
        :mod:`rfm_engine.measurement.clv.holdout` (:mod:`rfm_engine.engines.spark`).
        Default: DuckDB's, those functions themselves.

    Returns
    -------
    CLVValidation

    Raises
    ------
    ConfigError
        The holdout does not end after the calibration period.
    ModelNotIdentifiedError
        The calibration data cannot identify the models (as
        :func:`~rfm_engine.measurement.clv.fit_clv`).

    Examples
    --------
    >>> from rfm_engine import load_transactions
    >>> from rfm_engine.datasets.sample_data import generate_transactions
    >>> raw = generate_transactions(300, dirty=False, seed=0)
    >>> columns = {"customer_id": "Customer ID", "order_id": "Invoice",
    ...            "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price"}
    >>> result = validate_clv(load_transactions(raw, columns=columns, as_of="2024-12-31"),
    ...                       load_transactions(raw, columns=columns, as_of="2025-12-31"))
    >>> result.metrics.columns.tolist()
    ['mae', 'rmse', 'actual_total', 'predicted_total', 'actual_mean', 'predicted_mean']
    >>> result.tracking["period"].unique().tolist()
    ['calibration', 'holdout']
    """
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    calibration_end, holdout_end = calibration.as_of, holdout.as_of
    if not calibration_end < holdout_end:
        raise ConfigError(f"The holdout must end after the calibration period: calibration "
                          f"ends {calibration_end}, holdout ends {holdout_end}.")
    engine = engine if engine is not None else _DUCKDB
    summary = engine.clv_summary(calibration, time_unit=time_unit)
    length = (holdout_end - calibration_end).days / TIME_UNITS[time_unit]
    fit = fit_clv(summary, model=model, horizon=length, discount_rate=0.0, step=length,
                  time_unit=time_unit)
    actual = engine.holdout_purchases(holdout, calibration_end, holdout_end, time_unit,
                                      spend=True)
    customers = summary.merge(actual.drop(columns="duration_holdout"), on="customer_id",
                              how="left", validate="one_to_one")
    customers = customers.fillna({"frequency_holdout": 0, "spend_holdout": 0.0}).astype(
        {"frequency_holdout": "int64", "spend_holdout": "float64"})
    predictions = fit.customers.set_index("customer_id")
    customers["expected_purchases"] = predictions["expected_purchases"].to_numpy()
    # Undiscounted over one step: the expected purchases times the expected spend.
    customers["expected_spend"] = predictions["clv"].to_numpy()
    customers = customers[["customer_id", "frequency", "recency", "T", "monetary_value",
                           "frequency_holdout", "expected_purchases", "spend_holdout",
                           "expected_spend"]]
    holdout_table = actual.assign(duration_holdout=length)
    conditional = conditional_expectations(summary, holdout_table, fit.purchase_model,
                                           max_frequency=max_frequency)
    conditional.attrs["max_frequency"] = max_frequency
    tracking = _tracking(*engine.repeat_purchase_days(holdout, calibration_end, holdout_end),
                         calibration_end, holdout_end, fit, time_unit)
    return CLVValidation(customers, tracking, conditional, fit, calibration_end, holdout_end,
                         time_unit, list(fit.warnings))


def _tracking(firsts: pd.DataFrame, repeats: pd.DataFrame, calibration_end: dt.date,
              holdout_end: dt.date, fit: CLVResult, time_unit: str) -> pd.DataFrame:
    """Weekly cumulative repeat purchases of the calibration customers, actual and expected.

    Week ``k`` covers days ``[7(k-1), 7k)`` after the first purchase of the calibration
    customers (the last week may be shorter, ending on ``holdout_end``). A customer
    whose first purchase was on day ``b`` is expected to have made ``E[X((e - b) / u)]``
    repeat purchases by the end ``e`` of a week (``u`` days per time unit), as in the
    paper's tracking plots (and BTYD's ``bgnbd.ExpectedCumulativeTransactions``).
    ``firsts``, ``repeats``: `repeat_purchase_days`.
    """
    start = firsts["order_date"].iloc[0]
    total_days = (holdout_end - start).days + 1
    calibration_days = (calibration_end - start).days + 1
    n_weeks = math.ceil(total_days / _DAYS_PER_WEEK)
    ends = np.minimum(np.arange(1, n_weeks + 1) * _DAYS_PER_WEEK, total_days)
    births = np.array([(d - start).days for d in firsts["order_date"]], dtype=np.float64)
    ages = np.clip(ends[:, None] - births[None, :], 0, None) / TIME_UNITS[time_unit]
    expected = fit.purchase_model.expected_purchases_new(ages) @ firsts["customers"].to_numpy()
    repeat_days = np.array([(d - start).days for d in repeats["order_date"]], dtype=np.int64)
    weekly = np.bincount(repeat_days // _DAYS_PER_WEEK, weights=repeats["purchases"],
                         minlength=n_weeks)[:n_weeks]
    tracking = pd.DataFrame({
        "week": np.arange(1, n_weeks + 1),
        "week_end": [start + dt.timedelta(days=int(e) - 1) for e in ends],
        "period": np.where(ends <= calibration_days, "calibration", "holdout"),
        "actual": np.cumsum(weekly).astype("int64"),
        "expected": expected,
    })
    tracking.attrs["calibration_days"] = calibration_days
    return tracking
