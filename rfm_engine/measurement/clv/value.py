"""Discounted customer lifetime value from the fitted BG/NBD and Gamma-Gamma models.

`customer_lifetime_value` values each customer's expected purchases over a horizon;
`fit_clv` fits both models on a CLV summary and returns a `CLVResult` (models,
parameters, per-customer predictions).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...errors import EmptyResultError, ModelNotIdentifiedError
from ...io.writers import json_text, write_text_atomic
from ...progress import step as progress_step
from .models import (
    CLV_COLUMNS,
    BetaGeoModel,
    GammaGammaModel,
    _as_frame,
    _bgnbd_data,
    _bgnbd_expected_distinct,
    _bgnbd_p_alive,
    _check_number,
    _frequency,
    _index,
    _params_text,
    _raise_if_not_identified,
)

if TYPE_CHECKING:
    from .uncertainty import CLVIntervals

__all__ = ["CLV_FORMAT", "SEGMENT_CLV_COLUMNS", "CLVResult", "customer_lifetime_value",
           "fit_clv", "segment_clv"]

#: Value of the ``"format"`` key of `CLVResult.to_json`.
CLV_FORMAT = "rfm-engine/CLV"


def customer_lifetime_value(bgnbd: BetaGeoModel, gg: GammaGammaModel,
                            summary: pd.DataFrame, *, horizon: float = 12,
                            discount_rate: float = 0.01, step: float = 1) -> pd.Series:
    """Return each customer's discounted value of the purchases expected over a horizon.

    The horizon is cut in steps ``t_i = step, 2 step, ..., horizon`` (the last one may
    be shorter); the purchases expected in each step are valued at the Gamma-Gamma
    expected spend and discounted to the end of their step, as lifetimes does::

        clv = sum_i (E[Y(t_i)] - E[Y(t_{i-1})]) * value / (1 + discount_rate) ** t_i

    Parameters
    ----------
    bgnbd : BetaGeoModel
        Fitted purchase model.
    gg : GammaGammaModel
        Fitted spend model.
    summary : DataFrame
        ``frequency``, ``recency``, ``T``, ``monetary_value``.
    horizon : float, default=12
        Length of the forecast, > 0, in the time unit of the summary.
    discount_rate : float, default=0.01
        Discount rate per time unit, >= 0 (0.01 a month is about 12.7% a year).
    step : float, default=1
        Discounting step, > 0, in the time unit of the summary.

    Returns
    -------
    Series
        ``clv``, indexed like ``summary``.

    Examples
    --------
    >>> import pandas as pd
    >>> bgnbd = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> gg = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    >>> summary = pd.DataFrame({"frequency": [2, 0], "recency": [30.43, 0.0],
    ...                         "T": [38.86, 38.86], "monetary_value": [22.35, 0.0]})
    >>> customer_lifetime_value(bgnbd, gg, summary, horizon=52, discount_rate=0.002,
    ...                         step=4).round(2).tolist()
    [36.5, 8.42]
    """
    _check_number("horizon", horizon, low=0.0, low_open=True)
    _check_number("discount_rate", discount_rate, low=0.0)
    _check_number("step", step, low=0.0, low_open=True)
    clv = _predictions(bgnbd, gg, summary, horizon, discount_rate, step)["clv"]
    return pd.Series(clv, index=_index(summary, len(clv)), name="clv")


def _predictions(bgnbd: BetaGeoModel, gg: GammaGammaModel, summary: pd.DataFrame,
                 horizon: float, discount_rate: float, step: float) -> dict[str, np.ndarray]:
    """Return every customer's P(alive), expected purchases, spend and CLV in one pass.

    Keys ``p_alive``, ``expected_purchases`` (over ``horizon``), ``expected_average_value``
    and ``clv``: the values of `BetaGeoModel.probability_alive`, `BetaGeoModel.predict_purchases`,
    `GammaGammaModel.expected_average_value` and `customer_lifetime_value`: P(alive)
    does not depend on ``t`` and the expected purchases if alive depend on (frequency,
    T) only, so each is evaluated once (per distinct pair), not once per step.
    """
    n_steps = math.ceil(horizon / step - 1e-9)
    times = np.minimum(np.arange(1, n_steps + 1) * float(step), float(horizon))
    value = gg.expected_average_value(summary).to_numpy()
    params = bgnbd._p()
    x, t_x, big_t = _bgnbd_data(summary)
    alive = _bgnbd_p_alive(*params, x, t_x, big_t)
    expected = _bgnbd_expected_distinct(
        *params, x, big_t, [float(horizon), *(float(t) for t in times)])
    at_horizon = next(expected)
    previous = np.zeros(len(value))
    clv = np.zeros(len(value))
    for t, if_alive in zip(times, expected, strict=True):
        cumulative = if_alive * alive
        clv += (cumulative - previous) * value / (1.0 + discount_rate) ** t
        previous = cumulative
    return {"p_alive": alive, "expected_purchases": at_horizon * alive,
            "expected_average_value": value, "clv": clv}


@dataclass(eq=False)
class CLVResult:
    """Fitted CLV models and per-customer predictions (from `fit_clv`).

    Attributes
    ----------
    customers : DataFrame
        ``customer_id``, ``p_alive``, ``expected_purchases`` (over ``horizon``),
        ``expected_average_value`` and ``clv``, in the order of the summary.
    bgnbd : BetaGeoModel
        The fitted purchase model.
    gamma_gamma : GammaGammaModel
        The fitted spend model.
    horizon, discount_rate, step : float
        As given to `fit_clv`.
    warnings : list of str
        What the fit warned about without failing (each said once).
    intervals : CLVIntervals or None
        With ``fit_clv(..., intervals=level)``: the parameters' intervals (their
        per-customer bounds are columns of ``customers``).
    """

    customers: pd.DataFrame
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    horizon: float
    discount_rate: float
    step: float
    warnings: list[str] = field(default_factory=list)
    intervals: CLVIntervals | None = None

    @property
    def params(self) -> dict[str, dict[str, float]]:
        """``{"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "v"}}``."""
        return {"bgnbd": dict(self.bgnbd.params_), "gamma_gamma": dict(self.gamma_gamma.params_)}

    def params_document(self) -> dict[str, Any]:
        """Return the params JSON: `params`, plus ``"intervals"`` when they were computed.

        ``"intervals"``: ``level``, ``method``, per model ``{name: {"estimate", "se",
        "low", "high"}}`` and ``log_covariance`` (per model ``names`` and ``matrix``, the
        covariance of the log-parameters); None for what is not finite.
        """
        document: dict[str, Any] = dict(self.params)
        if self.intervals is not None:
            document["intervals"] = self.intervals.to_dict()
        return document

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the per-customer table."""
        return self.customers.copy()

    def to_json(self) -> str:
        """Return parameters, settings, fit diagnostics and totals as JSON (no customer rows).

        Returns
        -------
        str
            Keys ``format``, ``params`` (as `params`), ``horizon``, ``discount_rate``,
            ``step``, ``fit`` (per model: ``log_likelihood``, ``n_customers``, and for
            Gamma-Gamma ``n_excluded``, ``frequency_monetary_corr``) and ``totals``
            (``customers``, ``expected_purchases``, ``clv``).
        """
        gg = self.gamma_gamma

        def number(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        document = {
            "format": CLV_FORMAT,
            "params": self.params,
            "horizon": float(self.horizon),
            "discount_rate": float(self.discount_rate),
            "step": float(self.step),
            "fit": {
                "bgnbd": {"log_likelihood": number(self.bgnbd.log_likelihood_),
                          "n_customers": self.bgnbd.n_customers_},
                "gamma_gamma": {"log_likelihood": number(gg.log_likelihood_),
                                "n_customers": gg.n_customers_,
                                "n_excluded": gg.n_excluded_,
                                "frequency_monetary_corr": number(gg.frequency_monetary_corr_)},
            },
            "totals": {"customers": len(self.customers),
                       "expected_purchases": float(self.customers["expected_purchases"].sum()),
                       "clv": float(self.customers["clv"].sum())},
        }
        if self.intervals is not None:
            document["intervals"] = self.intervals.to_dict()
        return json_text(document)

    def write_params(self, path: str | Path) -> Path:
        """Write `params_document` as JSON to ``path`` atomically and return the path.

        Reload with ``BetaGeoModel.from_params(json.loads(text)["bgnbd"])`` and
        ``GammaGammaModel.from_params(json.loads(text)["gamma_gamma"])``.
        """
        return write_text_atomic(path, json_text(self.params_document()))


def fit_clv(summary: pd.DataFrame, *, horizon: float = 12, discount_rate: float = 0.01,
            step: float = 1, intervals: float | None = None) -> CLVResult:
    """Fit BG/NBD and Gamma-Gamma on a CLV summary and value every customer.

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_engine.clv_summary`: ``customer_id``, ``frequency``,
        ``recency``, ``T``, ``monetary_value``.
    horizon : float, default=12
        Forecast length in the time unit of the summary.
    discount_rate : float, default=0.01
        Discount rate per time unit.
    step : float, default=1
        Discounting step in the time unit of the summary.
    intervals : float, optional
        Coverage (e.g. 0.9) of intervals for the parameters and for each customer's
        ``expected_purchases`` and ``clv`` (columns ``*_low``, ``*_high`` appended):
        :func:`rfm_engine.measurement.clv.uncertainty.clv_intervals`. Default: none.

    Returns
    -------
    CLVResult
        Models, parameters and the per-customer table: every number finite. Warnings
        of the fit that do not stop it (a spend correlated with frequency, repeat
        buyers without positive spend) are in ``warnings`` and emitted once each.

    Raises
    ------
    ModelNotIdentifiedError
        When the data cannot identify a model (`identification_problem`): nobody bought
        a second time, a likelihood without a finite maximum, or predictions that are
        not finite numbers. The message names the cause; nothing is predicted.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine.measurement.clv import simulate_summary
    >>> summary = simulate_summary(2000, T=39.0, random_state=0)
    >>> result = fit_clv(summary, horizon=52, discount_rate=0.002)
    >>> result.customers.head(3).round(2)
      customer_id  p_alive  expected_purchases  expected_average_value    clv
    0           1     0.71                1.53                   17.21  25.07
    1           2     1.00                0.26                   35.05   8.60
    2           3     0.78                1.68                   18.35  29.29
    >>> {model: sorted(params) for model, params in result.params.items()}
    {'bgnbd': ['a', 'alpha', 'b', 'r'], 'gamma_gamma': ['p', 'q', 'v']}
    """
    _as_frame(summary, ("customer_id", *CLV_COLUMNS))
    _check_number("horizon", horizon, low=0.0, low_open=True)
    _check_number("discount_rate", discount_rate, low=0.0)
    _check_number("step", step, low=0.0, low_open=True)
    if intervals is not None:
        from .uncertainty import check_level

        check_level(intervals)
    x = _frequency(_as_frame(summary, ("frequency",)))
    if x.size and not (x > 0).any():
        raise ModelNotIdentifiedError(
            f"too few repeat purchases to fit BG/NBD: none of the {x.size:,} customers bought "
            "on a second day, so nothing tells how often customers come back.")
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        bgnbd = BetaGeoModel().fit(summary)
        _raise_if_not_identified(bgnbd)
        try:
            gg = GammaGammaModel().fit(summary)
        except EmptyResultError as exc:  # no repeat buyer with a positive spend
            raise ModelNotIdentifiedError(f"too few repeat purchases to fit Gamma-Gamma: "
                                          f"{exc}") from None
        _raise_if_not_identified(gg)
        customers = pd.DataFrame({
            "customer_id": summary["customer_id"].to_numpy(),
            **_predictions(bgnbd, gg, summary, horizon, discount_rate, step),
        })
    for column in customers.columns.drop("customer_id"):
        values = customers[column].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ModelNotIdentifiedError(
                f"the fitted models give no finite {column} for {(~np.isfinite(values)).sum():,} "
                f"of {len(values):,} customers (BG/NBD {_params_text(bgnbd.params_)}; "
                f"Gamma-Gamma {_params_text(gg.params_)}): the data do not identify them.")
    # Numerical warnings of the fit are superseded by the checks above; the models' own
    # warnings (correlated spend, repeat buyers left out...) are kept, once each.
    notes = list(dict.fromkeys(str(w.message) for w in caught
                               if not issubclass(w.category, RuntimeWarning)))
    result = CLVResult(customers, bgnbd, gg, float(horizon), float(discount_rate), float(step),
                       notes)
    if intervals is not None:
        from .uncertainty import clv_intervals

        with progress_step(f"CLV intervals ({intervals:.0%}: observed information, delta method)",
                  rows=len(customers)):
            result.intervals = clv_intervals(result, summary, level=intervals)
        result.customers = pd.concat([customers, result.intervals.customers], axis=1)
        notes += [n for n in result.intervals.warnings if n not in notes]
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    return result


#: The predicted-CLV columns of the segment table (`segment_clv`).
SEGMENT_CLV_COLUMNS = ("predicted_clv", "mean_clv", "mean_p_alive")


def segment_clv(summary: pd.DataFrame, customers: pd.DataFrame,
                result: CLVResult | None) -> pd.DataFrame:
    """Add each segment's predicted CLV (total and mean) and mean P(alive) to its table.

    Parameters
    ----------
    summary : DataFrame
        The segment table (:func:`rfm_engine.segment_summary`), one row per ``segment``.
    customers : DataFrame
        ``customer_id`` and ``segment`` of every customer.
    result : CLVResult or None
        The CLV fit of the same customers; None when the models could not be fitted (or
        were not asked for): the three columns are then null.

    Returns
    -------
    DataFrame
        ``summary`` (same rows, same order) with :data:`SEGMENT_CLV_COLUMNS` appended:
        ``predicted_clv`` (sum over the segment's customers, 0 for a segment without
        any), ``mean_clv`` and ``mean_p_alive`` (null for a segment without customers),
        as nullable floats: null, never NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> summary = pd.DataFrame({"segment": ["a", "b", "c"], "customers": [2, 1, 0]})
    >>> customers = pd.DataFrame({"customer_id": ["1", "2", "3"], "segment": ["a", "a", "b"]})
    >>> segment_clv(summary, customers, None)[list(SEGMENT_CLV_COLUMNS)].isna().all().all()
    np.True_
    """
    out = summary.copy()
    if result is None:
        for column in SEGMENT_CLV_COLUMNS:
            out[column] = pd.array([pd.NA] * len(out), dtype="Float64")
        return out
    # In the order of the CLV table (the summary's), whatever the order of ``customers``:
    # the sums do not depend on how the engine ordered the customer table.
    predicted = result.customers[["customer_id", "clv", "p_alive"]].merge(
        customers[["customer_id", "segment"]], on="customer_id", how="inner")
    grouped = predicted.groupby("segment", observed=True, sort=False)
    table = pd.DataFrame({"predicted_clv": grouped["clv"].sum(),
                          "mean_clv": grouped["clv"].mean(),
                          "mean_p_alive": grouped["p_alive"].mean()})
    for column in SEGMENT_CLV_COLUMNS:
        values = out["segment"].map(table[column]).astype("Float64")
        if column == "predicted_clv":
            values = values.fillna(0.0)
        out[column] = values
    return out
