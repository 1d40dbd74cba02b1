"""How sure the CLV models are: intervals for their parameters and for every prediction.

Method: the observed information and the delta method, not the parametric bootstrap.

* Parameters: the inverse of the observed information (the Hessian of the
  log-likelihood at the maximum, by central differences of the analytic gradient in the
  log-parameters) is their asymptotic covariance. Intervals are Wald intervals on the
  log scale, ``exp(log theta +- z se)``: positive, like the parameters, and the point
  estimate is inside by construction.
* Predictions: the delta method on the log scale. The gradient of ``log E[Y(t)]`` and
  of ``log CLV`` in the log-parameters (central differences, one prediction pass per
  difference) gives ``se = sqrt(g' Cov g)``; the interval is ``value * exp(+-z se)``.
  CLV is the expected spend (Gamma-Gamma) times the discounted expected purchases
  (BG/NBD), whose likelihoods share no parameter: the two variances add.

Why not the bootstrap: the weekly run fits on every customer. At 1M simulated customers
one parametric-bootstrap draw (simulate, refit both models, predict) costs about
5.5 s of CPU, so 200 draws cost about 18 minutes; the information matrix costs 8
gradient evaluations on the distinct summary rows and the delta method 8 prediction
passes, about 7 s of CPU in all (``benchmarks/clv_uncertainty.py``). The price: the
intervals are asymptotic. Their coverage on simulated data with known parameters is
checked by ``tests/test_clv_uncertainty.py`` and measured by the benchmark (README:
"Predictive CLV"). The intervals say how sure the *parameters* are; they are not
prediction intervals for what a customer will actually buy (that spread is much wider
and is the Poisson/Gamma noise of the model itself).

Another model plugs in with `register_likelihood` (its mean log-likelihood as a
function of the log-parameters) and, for its predictions, any function of its
parameters (`log_standard_errors`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ...core._estimator import check_is_fitted
from ...errors import ConfigError
from .models import (
    BetaGeoModel,
    GammaGammaModel,
    _bgnbd_data,
    _bgnbd_loglik,
    _gg_data,
    _gg_loglik,
    _gg_usable,
    _mean_loglik,
    _params_text,
)
from .pareto_nbd import ParetoNBDModel, _pareto_loglik

if TYPE_CHECKING:
    from .value import CLVResult

__all__ = ["INTERVAL_COLUMNS", "INTERVAL_METHOD", "CLVIntervals", "ParameterUncertainty",
           "check_level", "clv_intervals", "log_standard_errors", "observed_information",
           "parameter_uncertainty", "register_likelihood"]

#: How the intervals are computed, as the params JSON says it.
INTERVAL_METHOD = ("observed information (Wald, log-parameters); delta method on the log "
                   "scale for predictions")
#: Relative step of the central differences (in the log-parameters).
_HESSIAN_STEP = 1e-4
_PREDICTION_STEP = 1e-4

#: A model's mean log-likelihood per customer as a function of its log-parameters: either
#: ``(value, gradient)`` or the value alone (then the Hessian comes from values).
MeanLogLik = Callable[[np.ndarray], "tuple[float, np.ndarray] | float"]
#: Builds it from a CLV summary: ``summary -> (mean log-likelihood, customers fitted on)``.
LikelihoodBuilder = Callable[[pd.DataFrame], "tuple[MeanLogLik, int]"]


def _bgnbd_likelihood(summary: pd.DataFrame) -> tuple[MeanLogLik, int]:
    x, t_x, big_t = _bgnbd_data(summary)
    return _mean_loglik(_bgnbd_loglik, x, t_x, big_t), int(x.size)


def _pareto_likelihood(summary: pd.DataFrame) -> tuple[MeanLogLik, int]:
    # No closed-form gradient (the fit takes differences too): the information comes from
    # second differences of the values.
    x, t_x, big_t = _bgnbd_data(summary)
    return _mean_loglik(_pareto_loglik, x, t_x, big_t), int(x.size)


def _gg_likelihood(summary: pd.DataFrame) -> tuple[MeanLogLik, int]:
    x, m = _gg_data(summary)
    usable = _gg_usable(x, m)
    return _mean_loglik(_gg_loglik, x[usable], m[usable]), int(usable.sum())


#: Model class -> (its key in the params JSON, its likelihood builder).
_LIKELIHOODS: dict[type, tuple[str, LikelihoodBuilder]] = {
    BetaGeoModel: ("bgnbd", _bgnbd_likelihood),
    GammaGammaModel: ("gamma_gamma", _gg_likelihood),
    ParetoNBDModel: ("pareto_nbd", _pareto_likelihood),
}


def register_likelihood(model_class: type, key: str, builder: LikelihoodBuilder) -> None:
    """Let `parameter_uncertainty` handle another model (e.g. Pareto/NBD).

    Parameters
    ----------
    model_class : type
        The estimator class; its fitted instances have ``params_`` (a dict, in the
        order of the log-parameters the likelihood takes) and ``n_customers_``.
    key : str
        Its key in the params JSON (``"pareto_nbd"``).
    builder : callable
        ``summary -> (mean_loglik, n)``: the mean log-likelihood per customer as a
        function of the log-parameters (returning ``(value, gradient)`` or the value
        alone) and the number of customers it averages over.
    """
    _LIKELIHOODS[model_class] = (key, builder)


def check_level(level: Any) -> float:
    """Return ``level`` as a float if it is a coverage strictly between 0 and 1, else raise.

    Raises
    ------
    ConfigError
        Naming the value and what was expected.
    """
    if not (isinstance(level, int | float) and not isinstance(level, bool)
            and math.isfinite(level) and 0 < level < 1):
        raise ConfigError(f"The interval level must be a number between 0 and 1 (e.g. 0.9 for "
                          f"90% intervals). Got {level!r} instead.")
    return float(level)


def _z(level: float) -> float:
    return float(ndtri(0.5 + check_level(level) / 2))


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def observed_information(mean_loglik: MeanLogLik, log_params: np.ndarray,
                         n_customers: int) -> np.ndarray:
    """Return the observed information of the log-parameters at ``log_params``.

    ``-n * Hessian`` of the mean log-likelihood, by central differences of its gradient
    (or, for a likelihood without one, of its values), made symmetric.

    Parameters
    ----------
    mean_loglik : callable
        The mean log-likelihood per customer (see `register_likelihood`).
    log_params : ndarray
        The maximum-likelihood log-parameters.
    n_customers : int
        The number of customers the mean is over.

    Returns
    -------
    ndarray of shape (k, k)
    """
    z = np.asarray(log_params, dtype=np.float64)
    k = z.size
    h = _HESSIAN_STEP
    hessian = np.empty((k, k))
    with np.errstate(all="ignore"):
        if isinstance(mean_loglik(z), tuple):
            for j in range(k):
                step = np.zeros(k)
                step[j] = h
                hessian[:, j] = (np.asarray(mean_loglik(z + step)[1])
                                 - np.asarray(mean_loglik(z - step)[1])) / (2 * h)
        else:
            h = 1e-3  # values only: a wider step against rounding (error ~ eps / h^2)
            f0 = float(mean_loglik(z))
            for i in range(k):
                for j in range(i, k):
                    e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
                    if i == j:
                        value = (float(mean_loglik(z + e_i)) - 2 * f0
                                 + float(mean_loglik(z - e_i))) / h**2
                    else:
                        value = (float(mean_loglik(z + e_i + e_j))
                                 - float(mean_loglik(z + e_i - e_j))
                                 - float(mean_loglik(z - e_i + e_j))
                                 + float(mean_loglik(z - e_i - e_j))) / (4 * h**2)
                    hessian[i, j] = hessian[j, i] = value
    return -n_customers * (hessian + hessian.T) / 2


@dataclass(frozen=True)
class ParameterUncertainty:
    """A fitted model's parameters with their covariance (from `parameter_uncertainty`).

    Attributes
    ----------
    model : str
        Key of the model in the params JSON (``"bgnbd"``, ``"gamma_gamma"``).
    names : tuple of str
        Parameter names, in the order of ``params_``.
    estimate : ndarray
        The fitted parameters.
    log_covariance : ndarray
        Covariance of the log-parameters (inverse observed information); NaN when the
        information is not positive definite (then ``problem`` says so).
    n_customers : int
        Customers the likelihood is over.
    problem : str or None
        Why there are no intervals, in words; None when there are.
    """

    model: str
    names: tuple[str, ...]
    estimate: np.ndarray
    log_covariance: np.ndarray
    n_customers: int
    problem: str | None = None

    @property
    def log_standard_errors(self) -> np.ndarray:
        """Standard errors of the log-parameters."""
        return np.sqrt(np.diag(self.log_covariance))

    @property
    def standard_errors(self) -> np.ndarray:
        """Standard errors of the parameters (``theta * se(log theta)``, the delta method)."""
        return self.estimate * self.log_standard_errors

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Return the lower and upper bounds, ``exp(log theta +- z se(log theta))``.

        Parameters
        ----------
        level : float, default=0.9
            Coverage, between 0 and 1.

        Returns
        -------
        tuple of ndarray
            ``(low, high)``, NaN when there is no covariance.
        """
        spread = np.exp(_z(level) * self.log_standard_errors)
        return self.estimate / spread, self.estimate * spread

    def to_dict(self, level: float = 0.9) -> dict[str, dict[str, float | None]]:
        """Return ``{name: {"estimate", "se", "low", "high"}}`` (None where not finite)."""
        low, high = self.interval(level)
        return {name: {"estimate": float(est), "se": _number(se), "low": _number(lo),
                       "high": _number(hi)}
                for name, est, se, lo, hi in zip(self.names, self.estimate,
                                                 self.standard_errors, low, high, strict=True)}


def parameter_uncertainty(model: Any, summary: pd.DataFrame) -> ParameterUncertainty:
    """Return the covariance of a fitted model's parameters on the summary it was fitted on.

    Parameters
    ----------
    model : BetaGeoModel or GammaGammaModel (or a registered model)
        Fitted by maximum likelihood on ``summary`` (parameters read from a file carry
        no uncertainty of their own: the information is then that of ``summary`` at
        those parameters).
    summary : DataFrame
        The CLV summary.

    Returns
    -------
    ParameterUncertainty

    Examples
    --------
    >>> from rfm_engine.measurement.clv import BetaGeoModel, simulate_summary
    >>> summary = simulate_summary(2000, T=39.0, random_state=0)
    >>> model = BetaGeoModel().fit(summary)
    >>> uncertainty = parameter_uncertainty(model, summary)
    >>> low, high = uncertainty.interval(0.9)
    >>> dict(zip(uncertainty.names, zip(low.round(3), high.round(3))))  # doctest: +SKIP
    """
    check_is_fitted(model)
    found = [entry for cls, entry in _LIKELIHOODS.items() if isinstance(model, cls)]
    if not found:
        raise ConfigError(f"No likelihood registered for {type(model).__name__}: intervals "
                          "need one (register_likelihood).")
    key, builder = found[0]
    names = tuple(model.params_)
    estimate = np.array([model.params_[k] for k in names], dtype=np.float64)
    mean_loglik, n = builder(summary)
    information = observed_information(mean_loglik, np.log(estimate), n)
    problem = None
    covariance = np.full_like(information, np.nan)
    try:
        np.linalg.cholesky(information)
        covariance = np.linalg.inv(information)
        if not np.all(np.isfinite(covariance)) or np.any(np.diag(covariance) <= 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        covariance = np.full_like(information, np.nan)
        problem = (f"no intervals for {type(model).__name__}: the observed information is not "
                   f"positive definite at its parameters ({_params_text(model.params_)}): "
                   "they are not a maximum of the likelihood of these data (not fitted on "
                   "them?), or the likelihood is flat in some direction.")
    return ParameterUncertainty(key, names, estimate, covariance, n, problem)


def log_standard_errors(predict: Callable[[dict[str, float]], Mapping[str, np.ndarray]],
                        uncertainty: ParameterUncertainty) -> dict[str, np.ndarray]:
    """Return the standard errors of the logs of predictions, by the delta method.

    ``se = sqrt(g' Cov g)`` with ``g`` the gradient of ``log predict`` in the
    log-parameters, by central differences (two prediction passes per parameter).

    Parameters
    ----------
    predict : callable
        ``params -> {name: positive values}``: the model's predictions at the given
        parameters (a dict like ``params_``).
    uncertainty : ParameterUncertainty
        The parameters and their covariance.

    Returns
    -------
    dict of str to ndarray
        One array per prediction name; 0 where the prediction is 0 at every step
        (nothing to be unsure of), NaN without a covariance.
    """
    z0 = np.log(uncertainty.estimate)
    h = _PREDICTION_STEP
    gradients: dict[str, list[np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for j in range(z0.size):
            values = []
            for sign in (1.0, -1.0):
                z = z0.copy()
                z[j] += sign * h
                values.append(predict(dict(zip(uncertainty.names, map(float, np.exp(z)),
                                               strict=True))))
            for name in values[0]:
                up = np.asarray(values[0][name], dtype=np.float64)
                down = np.asarray(values[1][name], dtype=np.float64)
                gradient = (np.log(up) - np.log(down)) / (2 * h)
                gradient[(up == 0) & (down == 0)] = 0.0
                gradients.setdefault(name, []).append(gradient)
        out = {}
        for name, columns in gradients.items():
            g = np.stack(columns, axis=-1)
            out[name] = np.sqrt(np.einsum("ij,jk,ik->i", g, uncertainty.log_covariance, g))
    return out


@dataclass
class CLVIntervals:
    """Intervals of a CLV fit (from `clv_intervals`).

    Attributes
    ----------
    level : float
        Coverage of every interval.
    parameters : dict of str to ParameterUncertainty
        Per model (``"bgnbd"``, ``"gamma_gamma"``).
    customers : DataFrame
        ``expected_purchases_low``, ``expected_purchases_high``, ``clv_low``, ``clv_high``,
        in the order of the customers (nullable floats: null when there is no interval).
    warnings : list of str
        Why some intervals are missing, in words, once each.
    """

    level: float
    parameters: dict[str, ParameterUncertainty]
    customers: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """One line per model: each parameter's interval, as the CLI prints it."""
        lines = []
        for key, unc in self.parameters.items():
            low, high = unc.interval(self.level)
            shown = ", ".join(f"{name} [{lo:.4g}, {hi:.4g}]" if np.isfinite(lo + hi)
                              else f"{name} [n/a]"
                              for name, lo, hi in zip(unc.names, low, high, strict=True))
            lines.append(f"{self.level:.0%} intervals, {_MODEL_NAMES.get(key, key)}: {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``"intervals"`` entry of the params JSON (strict JSON: None, never NaN)."""
        return {"level": self.level, "method": INTERVAL_METHOD,
                **{key: unc.to_dict(self.level) for key, unc in self.parameters.items()},
                "log_covariance": {key: {"names": list(unc.names),
                                         "matrix": [[_number(v) for v in row]
                                                    for row in unc.log_covariance]}
                                   for key, unc in self.parameters.items()}}


#: How the CLI names the models.
_MODEL_NAMES = {"bgnbd": "BG/NBD", "gamma_gamma": "Gamma-Gamma", "pareto_nbd": "Pareto/NBD"}
#: The per-customer interval columns, in order.
INTERVAL_COLUMNS = ("expected_purchases_low", "expected_purchases_high", "clv_low", "clv_high")


def clv_intervals(result: CLVResult, summary: pd.DataFrame, level: float = 0.9, *,
                  customers: pd.DataFrame | None = None) -> CLVIntervals:
    """Intervals for the parameters of a CLV fit and for each customer's predictions.

    Parameters
    ----------
    result : CLVResult
        From :func:`~rfm_engine.measurement.clv.fit_clv` on ``summary``.
    summary : DataFrame
        The CLV summary the models were fitted on (it gives the information matrix).
    level : float, default=0.9
        Coverage of the intervals, between 0 and 1.
    customers : DataFrame, optional
        The customers to predict for (``frequency``, ``recency``, ``T``,
        ``monetary_value``); default: those of ``summary`` (``result.customers``).

    Returns
    -------
    CLVIntervals

    Examples
    --------
    >>> from rfm_engine.measurement.clv import fit_clv, simulate_summary
    >>> summary = simulate_summary(2000, T=39.0, random_state=0)
    >>> result = fit_clv(summary, horizon=52)
    >>> bands = clv_intervals(result, summary, level=0.9)
    >>> {k: round(v, 3) for k, v in bands.to_dict()["bgnbd"]["r"].items()}
    {'estimate': 0.25, 'se': 0.014, 'low': 0.228, 'high': 0.273}
    >>> list(bands.customers.columns)
    ['expected_purchases_low', 'expected_purchases_high', 'clv_low', 'clv_high']
    """
    from .value import _predictions

    z = _z(level)
    purchase, gg = result.purchase_model, result.gamma_gamma
    settings = (result.horizon, result.discount_rate, result.step)
    bg_unc = parameter_uncertainty(purchase, summary)
    gg_unc = parameter_uncertainty(gg, summary)
    table = summary if customers is None else customers
    points = (result.customers if customers is None
              else _predictions(purchase, gg, customers, *settings))

    def predict_purchases(params: dict[str, float]) -> dict[str, np.ndarray]:
        out = _predictions(type(purchase).from_params(params), gg, table, *settings)
        return {"expected_purchases": out["expected_purchases"], "clv": out["clv"]}

    def predict_spend(params: dict[str, float]) -> dict[str, np.ndarray]:
        return {"clv": type(gg).from_params(params).expected_average_value(table).to_numpy()}

    se_bg = log_standard_errors(predict_purchases, bg_unc)
    se_gg = log_standard_errors(predict_spend, gg_unc)
    # CLV = spend (Gamma-Gamma) x discounted purchases (BG/NBD): the log-variances add.
    se = {"expected_purchases": se_bg["expected_purchases"],
          "clv": np.sqrt(se_bg["clv"] ** 2 + se_gg["clv"] ** 2)}
    columns = {}
    for name in ("expected_purchases", "clv"):
        point = np.asarray(points[name], dtype=np.float64)
        spread = np.exp(z * se[name])
        for suffix, values in (("low", point / spread), ("high", point * spread)):
            values = np.where(point == 0, 0.0, values)
            # NaN (no covariance) becomes null, never NaN.
            columns[f"{name}_{suffix}"] = pd.array(
                np.where(np.isfinite(values), values, np.nan), dtype="Float64")
    index = result.customers.index if customers is None else customers.index
    notes = [u.problem for u in (bg_unc, gg_unc) if u.problem]
    return CLVIntervals(float(level), {bg_unc.model: bg_unc, gg_unc.model: gg_unc},
                        pd.DataFrame(columns, index=index), notes)
