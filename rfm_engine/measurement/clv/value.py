"""Discounted customer lifetime value from a purchase model (BG/NBD or Pareto/NBD) and Gamma-Gamma.

`customer_lifetime_value` values each customer's expected purchases over a horizon;
`fit_clv` fits both models on a CLV summary and returns a `CLVResult` (models,
parameters, per-customer predictions); `read_params` reads the parameters a `CLVResult`
wrote (`CLVResult.write_params`) and `score_clv` values customers with them, without
fitting. `clv_time` turns a horizon in days, weeks or months and a discount rate per day,
week or month into the time unit of the summary (lifetimes' ``time`` in months and its
monthly discounting).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ...core.features import TIME_UNITS
from ...errors import ConfigError, EmptyResultError, ModelNotIdentifiedError
from ...io.writers import json_text, write_text_atomic
from ...progress import step as progress_step
from .models import (
    CLV_COLUMNS,
    BetaGeoModel,
    GammaGammaModel,
    _as_frame,
    _bgnbd_data,
    _check_number,
    _frequency,
    _index,
    _params_text,
    _raise_if_not_identified,
)
from .pareto_nbd import ParetoNBDModel

if TYPE_CHECKING:
    from .uncertainty import CLVIntervals

__all__ = ["CLV_FORMAT", "PURCHASE_MODELS", "SEGMENT_CLV_COLUMNS", "CLVResult", "CLVTime",
           "SavedCLV", "clv_time", "customer_lifetime_value", "fit_clv", "read_params",
           "score_clv", "segment_clv"]

#: Value of the ``"format"`` key of `CLVResult.to_json`.
CLV_FORMAT = "rfm-engine/CLV"
#: The purchase models by name (``rfm-engine clv --model``): their key in the params file
#: and their class.
PURCHASE_MODELS: dict[str, tuple[str, type[BetaGeoModel] | type[ParetoNBDModel]]] = {
    "bgnbd": ("bgnbd", BetaGeoModel),
    "pareto-nbd": ("pareto_nbd", ParetoNBDModel),
}
PurchaseModel = BetaGeoModel | ParetoNBDModel
#: Words for the time units of `clv_time` (the summary's own: D, W, M).
_UNIT_WORDS = {"D": "D", "day": "D", "days": "D", "W": "W", "week": "W", "weeks": "W",
               "M": "M", "month": "M", "months": "M"}
_UNIT_NAMES = {"D": "day", "W": "week", "M": "month"}


def _model_name(model: PurchaseModel) -> str:
    """``"bgnbd"`` or ``"pareto-nbd"``: the name of a purchase model's class."""
    for name, (_, cls) in PURCHASE_MODELS.items():
        if isinstance(model, cls):
            return name
    raise ConfigError(f"The purchase model must be a BetaGeoModel or a ParetoNBDModel. Got "
                      f"{type(model).__name__} instead.")


def _check_model(model: str) -> str:
    if model not in PURCHASE_MODELS:
        raise ConfigError(f"The 'model' parameter must be one of "
                          f"{', '.join(map(repr, PURCHASE_MODELS))}. Got {model!r} instead.")
    return model


# ---------------------------------------------------------------------- time


@dataclass(frozen=True)
class CLVTime:
    """A forecast horizon and its discounting, in the time unit of the summary.

    The arguments of `customer_lifetime_value` and `fit_clv` (``horizon``,
    ``discount_rate``, ``step``), and what the user asked for, to report.

    Attributes
    ----------
    time_unit : {"D", "W", "M"}
        The summary's time unit.
    horizon : float
        Forecast length in time units.
    discount_rate : float
        Discount rate per time unit: ``(1 + rate per period) ** (1 / step) - 1``.
    step : float
        The discounting period in time units: purchases are discounted to the end of
        their period.
    description : str
        In words, e.g. ``"12 months (52.18 W), discounted 1% per month"``.
    """

    time_unit: str
    horizon: float
    discount_rate: float
    step: float
    description: str

    def kwargs(self) -> dict[str, float]:
        """Return ``horizon``, ``discount_rate`` and ``step`` for `fit_clv` / `score_clv`."""
        return {"horizon": self.horizon, "discount_rate": self.discount_rate,
                "step": self.step}


def clv_time(time_unit: str = "W", *, horizon: float = 52, horizon_unit: str | None = None,
             discount_rate: float = 0.0, discount_per: str | None = None,
             days_per_month: float = TIME_UNITS["M"]) -> CLVTime:
    """Express a horizon and a discount rate per period in the summary's time unit.

    A day is 1 day, a week 7 and a month ``days_per_month`` (default 30.4375, the
    month of ``clv_summary(time_unit="M")``). The horizon is cut in discounting periods
    (the last may be shorter); the purchases expected in each are discounted to its end
    at ``(1 + discount_rate) ** k`` for the ``k``-th period. lifetimes'
    ``customer_lifetime_value(..., time=12, discount_rate=0.01, freq="W")`` is
    ``clv_time("W", horizon=12, horizon_unit="month", discount_rate=0.01,
    discount_per="month", days_per_month=30.415)``: lifetimes counts a month as 4.345
    weeks (``freq="W"``) or 30 days (``freq="D"``).

    Parameters
    ----------
    time_unit : {"D", "W", "M"}, default="W"
        The summary's time unit.
    horizon : float, default=52
        Forecast length, > 0, in ``horizon_unit``.
    horizon_unit : {"D", "W", "M", "day", "week", "month"}, optional
        Default: ``time_unit``.
    discount_rate : float, default=0.0
        Discount rate per ``discount_per``, >= 0.
    discount_per : {"D", "W", "M", "day", "week", "month"}, optional
        The discounting period. Default: ``time_unit``.
    days_per_month : float, default=30.4375
        Length of a month in days, > 0.

    Returns
    -------
    CLVTime

    Examples
    --------
    >>> time = clv_time("W", horizon=12, horizon_unit="month", discount_rate=0.01,
    ...                 discount_per="month", days_per_month=30.415)
    >>> round(time.horizon, 3), round(time.step, 3), time.description
    (52.14, 4.345, '12 months (52.14 W), discounted 1% per month')
    """
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    _check_number("horizon", horizon, low=0.0, low_open=True)
    _check_number("discount_rate", discount_rate, low=0.0)
    _check_number("days_per_month", days_per_month, low=0.0, low_open=True)
    units = {}
    for name, given in (("horizon_unit", horizon_unit), ("discount_per", discount_per)):
        unit = time_unit if given is None else _UNIT_WORDS.get(given)
        if unit is None:
            raise ConfigError(f"The {name!r} parameter must be one of "
                              f"{', '.join(map(repr, _UNIT_WORDS))}. Got {given!r} instead.")
        units[name] = unit
    days = {"D": 1.0, "W": 7.0, "M": float(days_per_month)}
    per_unit = TIME_UNITS[time_unit]
    if time_unit == "M":
        per_unit = days["M"]  # the summary's month is the month asked for
    length = {unit: days[unit] / per_unit for unit in days}
    span = float(horizon) * length[units["horizon_unit"]]
    step = length[units["discount_per"]]
    rate = (1.0 + float(discount_rate)) ** (1.0 / step) - 1.0
    unit_name = _UNIT_NAMES[units["horizon_unit"]]
    words = f"{horizon:g} {unit_name}{'' if horizon == 1 else 's'}"
    if units["horizon_unit"] != time_unit:
        words += f" ({span:.4g} {time_unit})"
    if discount_rate > 0:
        words += (f", discounted {discount_rate * 100:.4g}% per "
                  f"{_UNIT_NAMES[units['discount_per']]}")
    else:
        words += ", not discounted"
    return CLVTime(time_unit, span, rate, step, words)


def customer_lifetime_value(model: PurchaseModel, gg: GammaGammaModel,
                            summary: pd.DataFrame, *, horizon: float = 12,
                            discount_rate: float = 0.01, step: float = 1) -> pd.Series:
    """Return each customer's discounted value of the purchases expected over a horizon.

    The horizon is cut in steps ``t_i = step, 2 step, ..., horizon`` (the last one may
    be shorter); the purchases expected in each step are valued at the Gamma-Gamma
    expected spend and discounted to the end of their step, as lifetimes does::

        clv = sum_i (E[Y(t_i)] - E[Y(t_{i-1})]) * value / (1 + discount_rate) ** t_i

    Parameters
    ----------
    model : BetaGeoModel or ParetoNBDModel
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
        Discounting step, > 0, in the time unit of the summary. `clv_time` gives the
        three from a horizon in months and a rate per month.

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
    clv = _predictions(model, gg, summary, horizon, discount_rate, step)["clv"]
    return pd.Series(clv, index=_index(summary, len(clv)), name="clv")


def _predictions(model: PurchaseModel, gg: GammaGammaModel, summary: pd.DataFrame,
                 horizon: float, discount_rate: float, step: float) -> dict[str, np.ndarray]:
    """Return every customer's P(alive), expected purchases, spend and CLV in one pass.

    Keys ``p_alive``, ``expected_purchases`` (over ``horizon``), ``expected_average_value``
    and ``clv``: the values of the model's ``probability_alive`` and ``predict_purchases``,
    `GammaGammaModel.expected_average_value` and `customer_lifetime_value`: in both
    purchase models P(alive) does not depend on ``t`` and the expected purchases if alive
    depend on (frequency, T) only, so each is evaluated once (per distinct pair), not once
    per step.
    """
    n_steps = math.ceil(horizon / step - 1e-9)
    times = np.minimum(np.arange(1, n_steps + 1) * float(step), float(horizon))
    value = gg.expected_average_value(summary).to_numpy()
    x, t_x, big_t = _bgnbd_data(summary)
    alive = model._alive(x, t_x, big_t)
    expected = model._expected_if_alive(x, big_t, [float(horizon), *(float(t) for t in times)])
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
    """Fitted (or read) CLV models and per-customer predictions (from `fit_clv`, `score_clv`).

    Attributes
    ----------
    customers : DataFrame
        ``customer_id``, ``p_alive``, ``expected_purchases`` (over ``horizon``),
        ``expected_average_value`` and ``clv``, in the order of the summary.
    purchase_model : BetaGeoModel or ParetoNBDModel
        The purchase model.
    gamma_gamma : GammaGammaModel
        The spend model.
    horizon, discount_rate, step : float
        As given to `fit_clv`, in the time unit of the summary.
    warnings : list of str
        What the fit warned about without failing (each said once).
    time_unit : str or None
        The summary's time unit (``"D"``, ``"W"``, ``"M"``), when known: recorded in the
        params file, since ``alpha`` and ``beta`` are per time unit.
    source : str or None
        The params file the models were read from (`score_clv`); None when fitted.
    intervals : CLVIntervals or None
        With ``fit_clv(..., intervals=level)``: the parameters' intervals (their
        per-customer bounds are columns of ``customers``).
    """

    customers: pd.DataFrame
    purchase_model: PurchaseModel
    gamma_gamma: GammaGammaModel
    horizon: float
    discount_rate: float
    step: float
    warnings: list[str] = field(default_factory=list)
    time_unit: str | None = None
    source: str | None = None
    intervals: CLVIntervals | None = None

    @property
    def model(self) -> str:
        """The purchase model's name: ``"bgnbd"`` or ``"pareto-nbd"``."""
        return _model_name(self.purchase_model)

    @property
    def bgnbd(self) -> BetaGeoModel | None:
        """The BG/NBD model; None when the purchase model is Pareto/NBD."""
        model = self.purchase_model
        return model if isinstance(model, BetaGeoModel) else None

    @property
    def params(self) -> dict[str, dict[str, float]]:
        """``{"bgnbd" or "pareto_nbd": {...}, "gamma_gamma": {"p", "q", "v"}}``."""
        key = PURCHASE_MODELS[self.model][0]
        return {key: dict(self.purchase_model.params_),
                "gamma_gamma": dict(self.gamma_gamma.params_)}

    def params_document(self) -> dict[str, Any]:
        """Return the params file: `params`, ``model`` and ``time_unit`` (for `read_params`).

        Plus ``"intervals"`` when they were computed: ``level``, ``method``, per model
        ``{name: {"estimate", "se", "low", "high"}}`` and ``log_covariance`` (per model
        ``names`` and ``matrix``, the covariance of the log-parameters); None for what is
        not finite.

        Examples
        --------
        >>> from rfm_engine.measurement.clv import simulate_summary
        >>> result = fit_clv(simulate_summary(500, T=39.0), time_unit="W")
        >>> sorted(result.params_document())
        ['bgnbd', 'gamma_gamma', 'model', 'time_unit']
        """
        document: dict[str, Any] = {"model": self.model, "time_unit": self.time_unit,
                                    **self.params}
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
            Keys ``format``, ``model``, ``time_unit``, ``source`` (the params file, null when
            fitted), ``params`` (as `params`), ``horizon``, ``discount_rate``, ``step``,
            ``fit`` (per model: ``log_likelihood``, ``n_customers``, and for Gamma-Gamma
            ``n_excluded``, ``frequency_monetary_corr``; null numbers when read from a file)
            and ``totals`` (``customers``, ``expected_purchases``, ``clv``).
        """
        gg, purchases = self.gamma_gamma, self.purchase_model

        def number(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        document = {
            "format": CLV_FORMAT,
            "model": self.model,
            "time_unit": self.time_unit,
            "source": self.source,
            "params": self.params,
            "horizon": float(self.horizon),
            "discount_rate": float(self.discount_rate),
            "step": float(self.step),
            "fit": {
                PURCHASE_MODELS[self.model][0]: {
                    "log_likelihood": number(purchases.log_likelihood_),
                    "n_customers": purchases.n_customers_},
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

        Read it back with `read_params` (and score new customers with `score_clv`).
        """
        return write_text_atomic(path, json_text(self.params_document()))


# ---------------------------------------------------------------------- saved parameters


@dataclass(frozen=True)
class SavedCLV:
    """CLV models read from a params file (`read_params`), ready to score (`score_clv`).

    Attributes
    ----------
    model : {"bgnbd", "pareto-nbd"}
        The purchase model's name.
    purchase_model : BetaGeoModel or ParetoNBDModel
        Made with ``from_params``.
    gamma_gamma : GammaGammaModel
        Made with ``from_params``.
    time_unit : str or None
        The time unit the parameters are in, when the file says.
    source : str
        The file.
    """

    model: str
    purchase_model: PurchaseModel
    gamma_gamma: GammaGammaModel
    time_unit: str | None
    source: str


def read_params(path: str | Path) -> SavedCLV:
    """Read a params file (`CLVResult.write_params`, ``rfm-engine clv --params-out``).

    The purchase model is the one whose key the file holds: ``"bgnbd"`` (``r, alpha, a,
    b``) or ``"pareto_nbd"`` (``r, alpha, s, beta``), beside ``"gamma_gamma"`` (``p, q,
    v``). ``"model"`` and ``"time_unit"`` are optional (files written before them have
    neither); other keys are ignored.

    Parameters
    ----------
    path : str or Path
        The JSON file.

    Returns
    -------
    SavedCLV

    Raises
    ------
    ConfigError
        The file cannot be read, is not a JSON object, or a key is missing or wrong; one
        line naming the file and the key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the CLV parameters: "
                          f"{exc.strerror or exc}.") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); expected the params file of "
                          "rfm-engine clv --params-out.") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object with the keys of rfm-engine clv "
                          f"--params-out; got {type(document).__name__}.")
    keys = [name for name, (key, _) in PURCHASE_MODELS.items() if key in document]
    if len(keys) != 1:
        found = "both" if keys else "neither"
        raise ConfigError(f"{path}: expected one of the keys "
                          f"{' or '.join(repr(k) for k, _ in PURCHASE_MODELS.values())} "
                          f"(the purchase model's parameters); found {found}.")
    model = keys[0]
    key, cls = PURCHASE_MODELS[model]
    if "model" in document and document["model"] != model:
        raise ConfigError(f"{path}: key 'model' is {document['model']!r} but the file holds "
                          f"the parameters of {model!r} (key {key!r}).")
    if "gamma_gamma" not in document:
        raise ConfigError(f"{path}: key 'gamma_gamma' is missing (the spend model's p, q, v).")
    time_unit = document.get("time_unit")
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ConfigError(f"{path}: key 'time_unit' must be one of {', '.join(TIME_UNITS)} "
                          f"or null; got {time_unit!r}.")
    models = []
    for name, make in ((key, cls), ("gamma_gamma", GammaGammaModel)):
        try:
            models.append(make.from_params(document[name]))
        except ConfigError as exc:
            raise ConfigError(f"{path}: key {name!r}: {exc}") from None
    purchase_model, gg = models
    return SavedCLV(model, purchase_model, gg, time_unit, str(path))


def score_clv(summary: pd.DataFrame, saved: SavedCLV, *, horizon: float = 12,
              discount_rate: float = 0.01, step: float = 1) -> CLVResult:
    """Value every customer of ``summary`` with saved parameters, without fitting.

    Parameters
    ----------
    summary : DataFrame
        As for `fit_clv`, in the time unit the parameters are in.
    saved : SavedCLV
        From `read_params`.
    horizon, discount_rate, step : float
        As for `fit_clv`.

    Returns
    -------
    CLVResult
        With ``source`` set to the params file and no fit diagnostics.

    Raises
    ------
    ModelNotIdentifiedError
        The saved parameters give predictions that are not finite numbers.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from rfm_engine.measurement.clv import simulate_summary
    >>> summary = simulate_summary(800, T=39.0)
    >>> fitted = fit_clv(summary, horizon=52, time_unit="W")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
    >>> saved = read_params(fitted.write_params(path))
    >>> again = score_clv(summary, saved, horizon=52)
    >>> bool((again.customers["clv"] == fitted.customers["clv"]).all()), again.model
    (True, 'bgnbd')
    """
    _as_frame(summary, ("customer_id", *CLV_COLUMNS))
    _check_times(horizon, discount_rate, step)
    models = (saved.purchase_model, saved.gamma_gamma)
    customers = _customers(summary, *models, horizon, discount_rate, step,
                           f"the parameters of {saved.source}")
    return CLVResult(customers, *models, float(horizon), float(discount_rate), float(step),
                     time_unit=saved.time_unit, source=saved.source)


def _check_times(horizon: float, discount_rate: float, step: float) -> None:
    _check_number("horizon", horizon, low=0.0, low_open=True)
    _check_number("discount_rate", discount_rate, low=0.0)
    _check_number("step", step, low=0.0, low_open=True)


def _customers(summary: pd.DataFrame, model: PurchaseModel, gg: GammaGammaModel,
               horizon: float, discount_rate: float, step: float, what: str) -> pd.DataFrame:
    """Return the per-customer table; `ModelNotIdentifiedError` if a number is not finite."""
    with np.errstate(all="ignore"):
        customers = pd.DataFrame({
            "customer_id": summary["customer_id"].to_numpy(),
            **_predictions(model, gg, summary, horizon, discount_rate, step),
        })
    for column in customers.columns.drop("customer_id"):
        values = customers[column].to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ModelNotIdentifiedError(
                f"{what} give no finite {column} for {(~np.isfinite(values)).sum():,} "
                f"of {len(values):,} customers ({model._LABEL} {_params_text(model.params_)}; "
                f"Gamma-Gamma {_params_text(gg.params_)}): the data do not identify them.")
    return customers


def fit_clv(summary: pd.DataFrame, *, model: str = "bgnbd", horizon: float = 12,
            discount_rate: float = 0.01, step: float = 1, time_unit: str | None = None,
            intervals: float | None = None) -> CLVResult:
    """Fit a purchase model (BG/NBD or Pareto/NBD) and Gamma-Gamma; value every customer.

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_engine.clv_summary`: ``customer_id``, ``frequency``,
        ``recency``, ``T``, ``monetary_value``.
    model : {"bgnbd", "pareto-nbd"}, default="bgnbd"
        The purchase model: `BetaGeoModel` or `ParetoNBDModel`.
    horizon : float, default=12
        Forecast length in the time unit of the summary.
    discount_rate : float, default=0.01
        Discount rate per time unit.
    step : float, default=1
        Discounting step in the time unit of the summary.
    time_unit : {"D", "W", "M"}, optional
        The summary's time unit, recorded in the params file (`CLVResult.write_params`).
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
    _check_model(model)
    _as_frame(summary, ("customer_id", *CLV_COLUMNS))
    _check_times(horizon, discount_rate, step)
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    if intervals is not None:
        from .uncertainty import check_level

        check_level(intervals)
    key, cls = PURCHASE_MODELS[model]
    label = cls._LABEL
    x = _frequency(_as_frame(summary, ("frequency",)))
    if x.size and not (x > 0).any():
        raise ModelNotIdentifiedError(
            f"too few repeat purchases to fit {label}: none of the {x.size:,} customers bought "
            "on a second day, so nothing tells how often customers come back.")
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        purchases = cls().fit(summary)
        _raise_if_not_identified(purchases)
        try:
            gg = GammaGammaModel().fit(summary)
        except EmptyResultError as exc:  # no repeat buyer with a positive spend
            raise ModelNotIdentifiedError(f"too few repeat purchases to fit Gamma-Gamma: "
                                          f"{exc}") from None
        _raise_if_not_identified(gg)
        customers = _customers(summary, purchases, gg, horizon, discount_rate, step,
                               "the fitted models")
    # Numerical warnings of the fit are superseded by the checks above; the models' own
    # warnings (correlated spend, repeat buyers left out...) are kept, once each.
    notes = list(dict.fromkeys(str(w.message) for w in caught
                               if not issubclass(w.category, RuntimeWarning)))
    result = CLVResult(customers, purchases, gg, float(horizon), float(discount_rate),
                       float(step), notes, time_unit=time_unit)
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
    customers : DataFrame or SegmentFiles
        ``customer_id`` and ``segment`` of every customer (or
        :class:`~rfm_engine.measurement.kpis.SegmentFiles`: Parquet read by DuckDB).
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
    frame = result.customers[["customer_id", "clv", "p_alive"]]
    predicted = (frame.merge(customers[["customer_id", "segment"]], on="customer_id",
                             how="inner") if isinstance(customers, pd.DataFrame)
                 else customers.attach(frame))  # measurement.kpis.SegmentFiles
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
