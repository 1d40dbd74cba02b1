"""Predictive customer lifetime value: BG/NBD purchases, Gamma-Gamma spend, discounted CLV.

Two probability models, fitted by maximum likelihood with :func:`scipy.optimize.minimize`
on the CLV summary of :func:`rfm_engine.clv_summary` (``frequency``: repeat purchase
days, ``recency``: age at the last purchase, ``T``: age at ``as_of``, ``monetary_value``:
mean value of the repeat purchase days):

* `BetaGeoModel`, the BG/NBD model of Fader, Hardie & Lee (2005), "Counting your
  customers the easy way: an alternative to the Pareto/NBD model", *Marketing Science*
  24(2). While alive, a customer buys at a Poisson rate drawn from Gamma(r, alpha); after
  every purchase they drop out with a probability drawn from Beta(a, b). It gives the
  probability that a customer is still alive and their expected purchases in the next
  ``t`` periods (Eq. 10 of the paper).
* `GammaGammaModel`, the spend model of Fader, Hardie & Lee (2005), "RFM and CLV: using
  iso-value curves for customer base analysis", *Journal of Marketing Research* 42(4).
  It shrinks a repeat buyer's mean spend towards the population mean, the more so the
  fewer purchases it rests on. It assumes spend and purchase frequency are independent;
  `GammaGammaModel.fit` warns when they are clearly correlated.

:mod:`rfm_engine.measurement.clv.value` combines them into the discounted value of the
purchases expected over a horizon (``customer_lifetime_value``, ``fit_clv``). Time is
measured in the unit of the summary (``clv_summary(..., time_unit="W")`` gives weeks):
``t``, ``horizon`` and the per-period ``discount_rate`` all use it.

Validation on CDNOW (``tests/test_clv.py``): on the 2,357-customer sample calibrated to
1997-09-30 in weeks, our ``clv_summary`` gives r=0.2426, alpha=4.4136, a=0.7929,
b=2.4259 (paper: 0.243, 4.414, 0.793, 2.426; log-likelihood -9582.43, paper -9582.4)
and p=6.2496, q=3.7442, v=15.4435 (paper: 6.25, 3.74, 15.44); the published summary
file gives the same within 0.1%. The fitted models reproduce Hardie's BG/NBD spreadsheet
(E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226; E[X(t)] at six t), the predictions,
expected spends and CLVs printed in the lifetimes documentation, and the paper's
zero-class check (customers without repeat purchases: 0.237 actual vs 0.225 predicted
purchases in the 39-week holdout; paper 0.24 vs 0.23).

Numerics: the log-likelihoods use ``gammaln``/``betaln`` and ``logaddexp`` (no overflow
for heavy buyers); Eq. 10 is evaluated after Euler's transformation
``2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1-r-x) 2F1(a+b-1-r, a-1; a+b+x-1; z)``, whose
parameters do not grow with ``x``. The formulas divide by ``a - 1``; at ``a = 1`` (a
removable singularity) they are evaluated as the mean of ``a = 1 ± 1e-6``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1

from ...core._estimator import Estimator, check_is_fitted
from ...errors import (
    ConfigError,
    DataError,
    EmptyResultError,
    ModelNotIdentifiedError,
)
from ...io._validation import is_int, is_real, require_columns

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "IndependenceWarning",
    "identification_problem",
    "simulate_summary",
    "CLV_COLUMNS",
]

_SOURCE = "CLV summary"
_METHODS = ("L-BFGS-B", "Nelder-Mead")
#: Summary columns the models read.
CLV_COLUMNS = ("frequency", "recency", "T", "monetary_value")
_BGNBD_PARAMS = ("r", "alpha", "a", "b")
_GG_PARAMS = ("p", "q", "v")
#: Published CDNOW estimates (weeks, dollars): the defaults of `simulate_summary`.
_CDNOW_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
_CDNOW_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
#: A fitted shape parameter (all but ``alpha``, ``beta`` and ``v``, which carry the time and money
#: units) outside these bounds means the likelihood has no finite maximum on the data.
_SHAPE_BOUNDS = (1e-4, 1e4)
_SCALE_PARAMS = ("alpha", "beta", "v")


class IndependenceWarning(UserWarning):
    """Spend and purchase frequency are correlated, against the Gamma-Gamma assumption."""


# ---------------------------------------------------------------------- validation


def _as_frame(summary: pd.DataFrame | ArrayLike, columns: tuple[str, ...]) -> pd.DataFrame:
    if isinstance(summary, pd.DataFrame):
        require_columns(summary, columns, _SOURCE)
        return summary
    array = np.asarray(summary, dtype=object)
    if array.ndim != 2 or array.shape[1] != len(columns):
        raise ConfigError(
            f"A {_SOURCE} given as an array must be 2-D with {len(columns)} columns "
            f"({', '.join(columns)}). Got shape {array.shape} instead."
        )
    return pd.DataFrame(array, columns=list(columns))


def _first_bad(frame: pd.DataFrame, bad: np.ndarray, column: str, expected: str,
               hint: str = "") -> None:
    """Raise `DataError` naming the first row where ``bad`` holds (1-based, header not counted)."""
    if bad.any():
        row = int(np.argmax(bad))
        value = frame[column].iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(_SOURCE, row + 1, column, value, expected, hint)


def _column(frame: pd.DataFrame, column: str, expected: str) -> np.ndarray:
    """Return ``frame[column]`` as floats; NaN, infinite or non-numeric values raise."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64,
                                                                     na_value=np.nan)
    _first_bad(frame, ~np.isfinite(values), column, expected)
    return values


def _frequency(frame: pd.DataFrame) -> np.ndarray:
    expected = "a whole number >= 0 (repeat purchases)"
    x = _column(frame, "frequency", expected)
    _first_bad(frame, (x < 0) | (x != np.floor(x)), "frequency", expected)
    return x


def _bgnbd_data(summary: pd.DataFrame | ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = _as_frame(summary, ("frequency", "recency", "T"))
    x = _frequency(frame)
    t_x = _column(frame, "recency", "a finite number >= 0 (age at the last purchase)")
    big_t = _column(frame, "T", "a finite number >= 0 (age at the end of the period)")
    _first_bad(frame, t_x < 0, "recency", "a number >= 0 (age at the last purchase)")
    _first_bad(frame, big_t < 0, "T", "a number >= 0 (age at the end of the period)")
    slack = 1e-9 * (1.0 + np.abs(big_t))
    _first_bad(frame, t_x > big_t + slack, "recency", "at most T (the customer's age)",
               "recency is the age at the last purchase, so it cannot exceed T.")
    _first_bad(frame, (x == 0) & (t_x > slack), "recency", "0 for a customer with frequency 0",
               "Without a repeat purchase the last purchase is the first one.")
    return x, t_x, big_t


def _gg_data(summary: pd.DataFrame | ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    frame = _as_frame(summary, ("frequency", "monetary_value"))
    x = _frequency(frame)
    m = _column(frame, "monetary_value", "a finite number (mean spend per repeat purchase)")
    return x, m


def _index(summary: pd.DataFrame | ArrayLike, n: int) -> pd.Index:
    return summary.index if isinstance(summary, pd.DataFrame) else pd.RangeIndex(n)


def _distinct_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Return the distinct rows of ``columns`` (sorted), their counts and each row's index.

    The order of ``np.unique(np.column_stack(columns), axis=0)``, found by one
    ``lexsort`` (ten times faster). Customers with the same summary share one
    likelihood term and one prediction: at weekly resolution millions of customers
    collapse to far fewer rows.

    Examples
    --------
    >>> rows, counts, inverse = _distinct_rows(np.array([2.0, 0.0, 2.0]),
    ...                                        np.array([5.0, 1.0, 5.0]))
    >>> [r.tolist() for r in rows], counts.tolist(), inverse.tolist()
    ([[0.0, 2.0], [1.0, 5.0]], [1, 2], [1, 0, 1])
    """
    n = len(columns[0])
    if n == 0:
        return [c[:0] for c in columns], np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    starts = np.zeros(n, dtype=bool)
    starts[0] = True
    for column in ordered:
        starts[1:] |= column[1:] != column[:-1]
    first = np.flatnonzero(starts)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return [c[first] for c in ordered], np.diff(np.append(first, n)), inverse


def _check_number(name: str, value: Any, *, low: float, low_open: bool = False,
                  high: float = math.inf, integer: bool = False) -> float:
    ok = (is_int(value) if integer else is_real(value)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        what = "an int" if integer else "a finite number"
        bound = f"> {low}" if low_open else f">= {low}"
        if high < math.inf:
            bound += f" and <= {high}"
        raise ConfigError(f"The {name!r} parameter must be {what} {bound}. Got {value!r} "
                          "instead.")
    return value


def _check_method(owner: str, method: str) -> None:
    if method not in _METHODS:
        raise ConfigError(f"The 'method' parameter of {owner} must be one of "
                          f"{', '.join(map(repr, _METHODS))}. Got {method!r} instead.")


def _check_params(owner: str, params: Mapping[str, float], names: tuple[str, ...]) -> dict:
    if not isinstance(params, Mapping) or set(params) != set(names):
        got = sorted(params) if isinstance(params, Mapping) else params
        raise ConfigError(f"{owner} parameters must be a mapping with exactly the keys "
                          f"{', '.join(names)}. Got {got!r} instead.")
    for name in names:
        _check_number(name, params[name], low=0.0, low_open=True)
    return {name: float(params[name]) for name in names}


def _minimize(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray,
              names: tuple[str, ...], method: str, max_iter: int,
              owner: str) -> tuple[dict[str, float], float, bool]:
    """Minimise ``objective`` (value, gradient) over log-parameters; warn on a poor fit.

    Returns the parameters, the minimum and whether the optimiser reached a finite
    stationary point. Shape parameters outside ``_SHAPE_BOUNDS`` mean the data hardly
    identify the model (see `identification_problem`). Floating-point trouble on the
    way (overflow while the optimiser tries huge parameters) is expected and silenced
    here; the result is checked instead.

    BLAS runs on one thread meanwhile: L-BFGS-B's steps are products of a few vectors of
    4 numbers, and waking BLAS's threads for each costs more than the step (at 1M
    simulated customers, BG/NBD's fit took 2.75 s of CPU with 2 threads, 1.13 s with one).
    """
    from threadpoolctl import threadpool_limits

    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        if method == "L-BFGS-B":
            result = minimize(objective, start, jac=True, method="L-BFGS-B",
                              options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10})
        else:
            result = minimize(lambda z: objective(z)[0], start, method="Nelder-Mead",
                              options={"maxiter": max_iter, "xatol": 1e-10, "fatol": 1e-13})
        params = dict(zip(names, map(float, np.exp(result.x)), strict=True))
        gradient = float(np.max(np.abs(objective(result.x)[1])))
    extreme = _extreme(params)
    converged = bool(np.all(np.isfinite(result.x)) and gradient < 1e-4 and not extreme)
    if extreme or not converged:
        # scikit-learn's warning class, imported only to warn (issue 11: process start).
        from sklearn.exceptions import ConvergenceWarning
    if extreme:
        warnings.warn(f"{owner}: the likelihood has no finite maximum on these data "
                      f"({', '.join(extreme)}): too few customers or repeat purchases to "
                      "identify the model.", ConvergenceWarning, stacklevel=3)
    elif not converged:
        warnings.warn(f"{owner}: the maximum-likelihood fit did not converge ({result.message}; "
                      f"largest gradient {gradient:.2g}). Increase max_iter or check the data.",
                      ConvergenceWarning, stacklevel=3)
    return params, float(result.fun), converged


def _extreme(params: Mapping[str, float]) -> list[str]:
    """Parameters at a boundary of the likelihood, as ``"a = 3.1e+12"``."""
    low, high = _SHAPE_BOUNDS
    return [f"{k} = {v:.3g}" for k, v in params.items()
            if not math.isfinite(v) or v <= 0
            or (k not in _SCALE_PARAMS and not low <= v <= high)]


# ---------------------------------------------------------------------- BG/NBD


def _levels(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values of ``x`` and each element's index into them."""
    values, inverse = np.unique(x, return_inverse=True)
    return values, inverse


def _per_level(function: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
               levels: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``function(x)``, evaluated once per distinct value when ``levels`` of ``x`` are given.

    The special functions of the likelihoods depend on the frequency only, which takes a
    few hundred values among hundreds of thousands of customers.
    """
    if levels is None:
        return function(x)
    values, inverse = levels
    return function(values)[inverse]


def _mean_loglik(loglik: Callable[..., tuple[np.ndarray, np.ndarray] | np.ndarray],
                 *columns: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray] | float]:
    """Return the mean log-likelihood per customer and its gradient, a function of log-parameters.

    The objective of the fits and of the observed information
    (:mod:`rfm_engine.measurement.clv.uncertainty`): identical customers share one
    likelihood term, and the special functions of the frequency (the first column) are
    evaluated once per value.

    Parameters
    ----------
    loglik : callable
        ``loglik(*params, *distinct_columns, levels) -> (per-row log-likelihood, per-row
        gradient in the log-parameters)``, such as ``_bgnbd_loglik``, or the per-row
        log-likelihood alone.
    *columns : ndarray
        The data columns ``loglik`` takes, one value per customer, frequency first.

    Returns
    -------
    callable
        ``log_params -> (mean log-likelihood, its gradient)`` (the mean alone for a
        ``loglik`` without gradient).
    """
    rows, counts, _ = _distinct_rows(*columns)
    weights = counts / max(int(counts.sum()), 1)
    levels = _levels(rows[0])

    def mean_loglik(log_params: np.ndarray) -> tuple[float, np.ndarray] | float:
        out = loglik(*np.exp(log_params), *rows, levels)
        if not isinstance(out, tuple):
            return float(weights @ out)
        ll, grad = out
        return float(weights @ ll), weights @ grad

    return mean_loglik


def _bgnbd_loglik(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray,
                  big_t: np.ndarray, levels: tuple[np.ndarray, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood and its gradient in (log r, log alpha, log a, log b).

    ``levels``: ``_levels(x)``, to evaluate the special functions of ``x`` once per value.
    """
    repeat = x > 0
    base = (_per_level(lambda v: gammaln(r + v), x, levels) - gammaln(r) + r * np.log(alpha)
            + _per_level(lambda v: betaln(a, b + v), x, levels) - betaln(a, b))
    u = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore"):
        w = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                     - (r + x) * np.log(alpha + t_x), -np.inf)
    mix = np.logaddexp(u, w)
    ll = base + mix
    pi_w = np.exp(w - mix)  # share of the "dropped out after the last purchase" term
    pi_u = 1.0 - pi_w
    d_r = (_per_level(lambda v: digamma(r + v), x, levels) - digamma(r) + np.log(alpha)
           - pi_u * np.log(alpha + big_t) - pi_w * np.log(alpha + t_x))
    d_alpha = r / alpha - pi_u * (r + x) / (alpha + big_t) - pi_w * (r + x) / (alpha + t_x)
    d_ab = digamma(a + b) - _per_level(lambda v: digamma(a + b + v), x, levels)
    d_a = d_ab + pi_w / a
    d_b = (d_ab + _per_level(lambda v: digamma(b + v), x, levels) - digamma(b)
           - pi_w / np.where(repeat, b + x - 1, 1.0))
    grad = np.stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b], axis=-1)
    return ll, grad


_A_NEAR_ONE = 1e-6


def _bgnbd_expected(r: float, alpha: float, a: float, b: float, x: np.ndarray,
                    big_t: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Return expected purchases in ``(T, T + t]`` if alive at ``T`` (Eq. 10 / P(alive))."""
    if abs(a - 1.0) < _A_NEAR_ONE / 2:
        # a = 1 is a removable singularity (0/0): the mean of both sides is exact to
        # O(h^2) and keeps the cancellation error near 1e-10.
        return 0.5 * (_bgnbd_expected(r, alpha, 1.0 + _A_NEAR_ONE, b, x, big_t, t)
                      + _bgnbd_expected(r, alpha, 1.0 - _A_NEAR_ONE, b, x, big_t, t))
    z = t / (alpha + big_t + t)
    # Euler: ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)
    #      = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)
    tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    return (a + b + x - 1) / (a - 1) * (1.0 - tail)


def _expected_distinct(expected: Callable[..., np.ndarray], params: tuple[float, ...],
                       x: np.ndarray, big_t: np.ndarray,
                       times: list[float]) -> Iterator[np.ndarray]:
    """Yield ``expected(*params, x, T, t)`` at each of ``times``, once per distinct ``(x, T)``.

    One per-customer array at a time: a list of them would hold one array per step.
    """
    (ux, ut), _, inverse = _distinct_rows(x, big_t)
    for t in times:
        yield expected(*params, ux, ut, t)[inverse]


def _bgnbd_p_alive(r: float, alpha: float, a: float, b: float, x: np.ndarray,
                   t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    repeat = x > 0
    with np.errstate(divide="ignore"):
        log_odds = np.where(
            repeat,
            np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
            + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)),
            -np.inf,
        )
    return np.exp(-np.logaddexp(0.0, log_odds))


# ---------------------------------------------------------------------- purchase models

_STEP = 1e-6  # central differences on the log-parameters, for a likelihood without gradient


def _objective(mean_loglik: Callable[[np.ndarray], tuple[float, np.ndarray] | float],
               ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Return the fits' objective: minus ``mean_loglik`` (of `_mean_loglik`) and its gradient.

    A likelihood without a gradient gets central differences (step ``_STEP``), and an
    infinite value a zero gradient, to let the line search back off.
    """
    def mean_nll(log_params: np.ndarray) -> float:
        return -mean_loglik(log_params)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        out = mean_loglik(log_params)
        if isinstance(out, tuple):
            return -out[0], -out[1]
        value = -out
        gradient = np.empty(len(log_params))
        for i in range(len(log_params)):
            shift = np.zeros(len(log_params))
            shift[i] = _STEP
            gradient[i] = (mean_nll(log_params + shift)
                           - mean_nll(log_params - shift)) / (2 * _STEP)
        if not math.isfinite(value):
            return math.inf, np.zeros(len(log_params))
        return value, gradient

    return objective


class _PurchaseModel(Estimator):
    """What `BetaGeoModel` and the Pareto/NBD model share: fit, predictions, parameters.

    A model of repeat purchases fitted by maximum likelihood on the CLV summary
    (``frequency``, ``recency``, ``T``), in its time unit. A subclass names its label
    (``_LABEL``) and parameters (``_PARAMS``, the scales among them as in
    ``_SCALE_PARAMS``) and gives its formulas as functions of ``(*params, ...)``:

    * ``_LOGLIK(*params, x, t_x, T, levels)``: the per-customer log-likelihood, or it and
      its gradient in the log-parameters (see `_mean_loglik`);
    * ``_P_ALIVE(*params, x, t_x, T)``: P(alive at ``T``);
    * ``_EXPECTED(*params, x, T, t)``: the expected purchases in ``(T, T + t]`` if alive
      at ``T``; at ``x = T = 0`` those of a new customer in ``(0, t]``.
    """

    _LABEL: str
    _PARAMS: tuple[str, ...]
    _LOGLIK: Callable[..., tuple[np.ndarray, np.ndarray] | np.ndarray]
    _P_ALIVE: Callable[..., np.ndarray]
    _EXPECTED: Callable[..., np.ndarray]

    def __init__(self, *, method: str = "L-BFGS-B", max_iter: int = 2000) -> None:
        self.method = method
        self.max_iter = max_iter

    @classmethod
    def from_params(cls, params: Mapping[str, float]) -> Self:
        """Return a model with the given parameters, ready to predict (no fitting).

        Parameters
        ----------
        params : Mapping
            The model's parameters (``params_``), each > 0, e.g.
            ``CLVResult.params["bgnbd"]``.

        Returns
        -------
        model
            Of this class, with ``params_`` set, ``log_likelihood_`` NaN and
            ``n_customers_`` 0.
        """
        model = cls()
        model.params_ = _check_params(cls._LABEL, params, cls._PARAMS)
        model.log_likelihood_ = math.nan
        model.n_customers_ = 0
        model.converged_ = True
        return model

    def fit(self, summary: pd.DataFrame | ArrayLike, y: None = None) -> Self:
        """Estimate the parameters by maximum likelihood.

        The optimiser works on the log-parameters, from shapes 1 and scales the mean ``T``.

        Parameters
        ----------
        summary : DataFrame or array-like of shape (n_customers, 3)
            Columns ``frequency`` (repeat purchases, whole number >= 0), ``recency``
            (age at the last purchase, 0 without repeats) and ``T`` (age at the end of
            the period, >= ``recency``); an array gives them in that order.
        y : None
            Ignored.

        Returns
        -------
        model
            The fitted model.
        """
        owner = type(self).__name__
        _check_method(owner, self.method)
        _check_number("max_iter", self.max_iter, low=1, integer=True)
        x, t_x, big_t = _bgnbd_data(summary)
        if x.size == 0:
            raise EmptyResultError(f"{_SOURCE}: no customer to fit the {self._LABEL} model on.")
        objective = _objective(_mean_loglik(self._LOGLIK, x, t_x, big_t))
        age = max(float(big_t.mean()), 1e-3)
        start = np.log([age if name in _SCALE_PARAMS else 1.0 for name in self._PARAMS])
        self.params_, mean_nll, self.converged_ = _minimize(
            objective, start, self._PARAMS, self.method, self.max_iter, owner)
        self.log_likelihood_ = -mean_nll * x.size
        self.n_customers_ = int(x.size)
        self.max_frequency_ = float(x.max())
        self.max_T_ = float(big_t.max())
        return self

    def _p(self) -> tuple[float, ...]:
        check_is_fitted(self)
        return tuple(self.params_[k] for k in self._PARAMS)

    def score(self, summary: pd.DataFrame | ArrayLike, y: None = None) -> float:
        """Return the mean log-likelihood per customer of ``summary`` at ``params_``.

        Parameters
        ----------
        summary : DataFrame or array-like
            As in `fit`.
        y : None
            Ignored.

        Returns
        -------
        float
            Higher is better; times the number of customers it is the log-likelihood.
        """
        params = self._p()
        x, t_x, big_t = _bgnbd_data(summary)
        loglik = self._LOGLIK(*params, x, t_x, big_t)
        return float((loglik[0] if isinstance(loglik, tuple) else loglik).mean())

    def probability_alive(self, summary: pd.DataFrame | ArrayLike) -> pd.Series:
        """Return the probability that each customer is still alive at ``T``.

        The model's formula is in the Notes of its class.

        Parameters
        ----------
        summary : DataFrame or array-like
            ``frequency``, ``recency``, ``T`` as in `fit`.

        Returns
        -------
        Series
            ``p_alive``, indexed like ``summary``.
        """
        params = self._p()
        x, t_x, big_t = _bgnbd_data(summary)
        return pd.Series(self._P_ALIVE(*params, x, t_x, big_t),
                         index=_index(summary, x.size), name="p_alive")

    def predict_purchases(self, t: float, summary: pd.DataFrame | ArrayLike) -> pd.Series:
        """Return each customer's expected purchases in the next ``t`` periods.

        The conditional expectation ``E[Y(t) | x, recency, T]``: P(alive) times the
        expected purchases if alive (the model's formula is in the Notes of its class).

        Parameters
        ----------
        t : float
            Length of the forecast window, >= 0, in the time unit of the summary.
        summary : DataFrame or array-like
            ``frequency``, ``recency``, ``T`` as in `fit`.

        Returns
        -------
        Series
            ``expected_purchases``, indexed like ``summary``.
        """
        params = self._p()
        _check_number("t", t, low=0.0)
        x, t_x, big_t = _bgnbd_data(summary)
        expected = (next(_expected_distinct(self._EXPECTED, params, x, big_t, [float(t)]))
                    * self._P_ALIVE(*params, x, t_x, big_t))
        return pd.Series(expected, index=_index(summary, x.size), name="expected_purchases")

    def expected_purchases_new(self, t: float | ArrayLike) -> float | np.ndarray:
        """Return the expected repeat purchases ``E[X(t)]`` of a new customer in ``(0, t]``.

        Parameters
        ----------
        t : float or array-like
            Time(s) since the first purchase, >= 0, in the time unit of the summary.

        Returns
        -------
        float or ndarray
            One value per ``t`` (the model's formula is in the Notes of its class).

        Examples
        --------
        >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793,
        ...                                   "b": 2.426})
        >>> model.expected_purchases_new([1, 78]).round(3).tolist()
        [0.053, 1.861]
        """
        params = self._p()
        times = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(times) & (times >= 0)):
            raise ConfigError(f"The 't' parameter must be finite numbers >= 0. Got {t!r} "
                              "instead.")
        zero = np.zeros_like(times)
        expected = self._EXPECTED(*params, zero, zero, times)
        return float(expected) if expected.ndim == 0 else expected

    # The protocol of `rfm_engine.measurement.clv.value`: P(alive) and the expected
    # purchases if alive, on validated arrays.
    def _alive(self, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        return self._P_ALIVE(*self._p(), x, t_x, big_t)

    def _expected_if_alive(self, x: np.ndarray, big_t: np.ndarray,
                           times: list[float]) -> Iterator[np.ndarray]:
        return _expected_distinct(self._EXPECTED, self._p(), x, big_t, times)


class BetaGeoModel(_PurchaseModel):
    """BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005), fitted by maximum likelihood.

    Each customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)`` while alive, and after
    every purchase drops out with probability ``p ~ Beta(a, b)``. Parameters are
    estimated on the log scale with :func:`scipy.optimize.minimize` and an analytic
    gradient.

    Parameters
    ----------
    method : {"L-BFGS-B", "Nelder-Mead"}, default="L-BFGS-B"
        Optimiser. L-BFGS-B uses the analytic gradient; Nelder-Mead needs none.
    max_iter : int, default=2000
        Maximum optimiser iterations; a fit that stops short warns with a
        :class:`~sklearn.exceptions.ConvergenceWarning`.

    Attributes
    ----------
    params_ : dict of str to float
        ``{"r", "alpha", "a", "b"}``. ``alpha`` is in the time unit of the summary.
    log_likelihood_ : float
        Log-likelihood of the fitted data at ``params_`` (NaN from `from_params`).
    n_customers_ : int
        Customers fitted on (0 from `from_params`).
    converged_ : bool
        Whether the optimiser reached a stationary point.
    max_frequency_, max_T_ : float
        Largest ``frequency`` and ``T`` seen in `fit`: the default ranges of
        `plot_frequency_recency` and `plot_probability_alive_matrix`.

    Notes
    -----
    With ``x`` = ``frequency``:

    * `probability_alive`: ``1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha +
      recency))^(r + x))`` for ``x > 0``; exactly 1 for a customer without repeat
      purchases (in the BG/NBD model a customer can only drop out right after a
      purchase);
    * `predict_purchases`: the conditional expectation of Eq. 10 of the paper;
    * `expected_purchases_new`: ``(a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t))^r
      2F1(r, b; a + b - 1; t / (alpha + t)))``.

    Examples
    --------
    The published CDNOW estimates and the value of Hardie's spreadsheet for a customer
    with 2 repeat purchases, the last at week 30.43, observed for 38.86 weeks:

    >>> import pandas as pd
    >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> round(float(model.predict_purchases(39, customer).iloc[0]), 3)
    1.226

    Fitting on a CLV summary (here drawn from the model with those parameters):

    >>> summary = simulate_summary(2000, T=39.0, random_state=0)
    >>> model = BetaGeoModel().fit(summary)
    >>> {name: round(value, 2) for name, value in model.params_.items()}
    {'r': 0.25, 'alpha': 5.12, 'a': 0.78, 'b': 2.73}
    >>> model.probability_alive(summary).round(2).tolist()[:3]
    [0.71, 1.0, 0.78]
    """

    _LABEL = "BG/NBD"
    _PARAMS = _BGNBD_PARAMS
    _LOGLIK = staticmethod(_bgnbd_loglik)
    _P_ALIVE = staticmethod(_bgnbd_p_alive)
    _EXPECTED = staticmethod(_bgnbd_expected)


# ---------------------------------------------------------------------- Gamma-Gamma


def _gg_loglik(p: float, q: float, v: float, x: np.ndarray, m: np.ndarray,
               levels: tuple[np.ndarray, np.ndarray] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood of mean spend ``m`` over ``x`` purchases, and gradient.

    ``levels``: ``_levels(x)``, to evaluate the special functions of ``x`` once per value.
    """
    px = p * x
    log_vxm = np.log(v + x * m)
    log_x = _per_level(np.log, x, levels)
    digamma_pxq = _per_level(lambda u: digamma(p * u + q), x, levels)
    digamma_px = _per_level(lambda u: digamma(p * u), x, levels)
    ll = (_per_level(lambda u: gammaln(p * u + q), x, levels)
          - _per_level(lambda u: gammaln(p * u), x, levels) - gammaln(q) + q * np.log(v)
          + (px - 1) * np.log(m) + px * log_x - (px + q) * log_vxm)
    d_p = x * (digamma_pxq - digamma_px + np.log(m) + log_x - log_vxm)
    d_q = digamma_pxq - digamma(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    return ll, np.stack([p * d_p, q * d_q, v * d_v], axis=-1)


def _gg_usable(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Return who Gamma-Gamma is fitted on: repeat buyers with a positive mean spend."""
    return (x > 0) & (m > 0)


class GammaGammaModel(Estimator):
    """Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005).

    A customer's transaction values are Gamma(p, nu) around a customer mean ``p / nu``,
    and ``nu ~ Gamma(q, v)`` across customers. Fitted on repeat buyers (``frequency >
    0``) with a positive ``monetary_value``; the model assumes spend does not depend on
    purchase frequency, and `fit` warns with an `IndependenceWarning` when their Pearson
    correlation is strong.

    Parameters
    ----------
    method : {"L-BFGS-B", "Nelder-Mead"}, default="L-BFGS-B"
        Optimiser. L-BFGS-B uses the analytic gradient; Nelder-Mead needs none.
    max_iter : int, default=2000
        Maximum optimiser iterations.
    max_correlation : float, default=0.3
        Warn when ``|corr(frequency, monetary_value)|`` among the fitted customers
        exceeds it.

    Attributes
    ----------
    params_ : dict of str to float
        ``{"p", "q", "v"}``. ``v`` is in money units.
    log_likelihood_ : float
        Log-likelihood of the fitted customers (NaN from `from_params`).
    n_customers_ : int
        Repeat buyers fitted on.
    n_excluded_ : int
        Repeat buyers left out because their ``monetary_value`` was not positive.
    frequency_monetary_corr_ : float
        Pearson correlation of ``frequency`` and ``monetary_value`` among the fitted
        customers (NaN when undefined).
    converged_ : bool
        Whether the optimiser reached a stationary point.

    Examples
    --------
    >>> import pandas as pd
    >>> model = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44})
    >>> summary = pd.DataFrame({"frequency": [2, 0], "monetary_value": [22.35, 0.0]})
    >>> model.expected_average_value(summary).round(2).tolist()
    [24.66, 35.22]
    """

    _LABEL = "Gamma-Gamma"

    def __init__(self, *, method: str = "L-BFGS-B", max_iter: int = 2000,
                 max_correlation: float = 0.3) -> None:
        self.method = method
        self.max_iter = max_iter
        self.max_correlation = max_correlation

    @classmethod
    def from_params(cls, params: Mapping[str, float]) -> Self:
        """Return a model with the given parameters, ready to predict (no fitting).

        Parameters
        ----------
        params : Mapping
            ``{"p", "q", "v"}``, each > 0, e.g. ``CLVResult.params["gamma_gamma"]``.

        Returns
        -------
        GammaGammaModel
            With ``params_`` set and the other fitted attributes empty.
        """
        model = cls()
        model.params_ = _check_params("Gamma-Gamma", params, _GG_PARAMS)
        model.log_likelihood_ = math.nan
        model.n_customers_ = model.n_excluded_ = 0
        model.frequency_monetary_corr_ = math.nan
        model.converged_ = True
        return model

    def fit(self, summary: pd.DataFrame | ArrayLike, y: None = None) -> Self:
        """Estimate ``p, q, v`` by maximum likelihood on the repeat buyers.

        Parameters
        ----------
        summary : DataFrame or array-like of shape (n_customers, 2)
            Columns ``frequency`` and ``monetary_value`` (mean spend of the repeat
            purchases); an array gives them in that order. Customers with frequency 0
            are ignored, and so (with a warning) are repeat buyers whose
            ``monetary_value`` is not positive.
        y : None
            Ignored.

        Returns
        -------
        GammaGammaModel
            The fitted model.
        """
        _check_method("GammaGammaModel", self.method)
        _check_number("max_iter", self.max_iter, low=1, integer=True)
        _check_number("max_correlation", self.max_correlation, low=0.0, high=1.0)
        x, m = _gg_data(summary)
        usable = _gg_usable(x, m)
        self.n_excluded_ = int(((x > 0) & ~usable).sum())
        if self.n_excluded_:
            warnings.warn(f"GammaGammaModel: {self.n_excluded_} repeat buyer(s) with "
                          "monetary_value <= 0 left out of the fit (the model needs positive "
                          "spend).", UserWarning, stacklevel=2)
        x, m = x[usable], m[usable]
        if x.size == 0:
            raise EmptyResultError(f"{_SOURCE}: no repeat buyer (frequency > 0) with a positive "
                                   "monetary_value to fit the Gamma-Gamma model on.")
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = float(np.corrcoef(x, m)[0, 1]) if x.size > 1 else math.nan
        self.frequency_monetary_corr_ = corr
        if math.isfinite(corr) and abs(corr) > self.max_correlation:
            warnings.warn(
                f"GammaGammaModel: frequency and monetary_value are correlated (Pearson r = "
                f"{corr:.3f} over {x.size} repeat buyers, above max_correlation="
                f"{self.max_correlation}); the model assumes they are independent, so its "
                "expected values may be biased.", IndependenceWarning, stacklevel=2)
        mean_loglik = _mean_loglik(_gg_loglik, x, m)

        def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            ll, grad = mean_loglik(log_params)
            return -ll, -grad

        # Start: p = 1, q = 2, so that the population mean p v / (q - 1) is v = mean spend.
        start = np.log([1.0, 2.0, float(m.mean())])
        self.params_, mean_nll, self.converged_ = _minimize(
            objective, start, _GG_PARAMS, self.method, self.max_iter, "GammaGammaModel")
        self.log_likelihood_ = -mean_nll * x.size
        self.n_customers_ = int(x.size)
        if self.params_["q"] <= 1:
            warnings.warn(f"GammaGammaModel: q = {self.params_['q']:.3g} <= 1, so the population "
                          "mean spend p v / (q - 1) does not exist; customers without repeat "
                          "purchases get NaN.", UserWarning, stacklevel=2)
        return self

    def _p(self) -> tuple[float, float, float]:
        check_is_fitted(self)
        return tuple(self.params_[k] for k in _GG_PARAMS)

    @property
    def population_mean_(self) -> float:
        """Mean spend per transaction in the population, ``p v / (q - 1)`` (NaN if q <= 1)."""
        p, q, v = self._p()
        return p * v / (q - 1) if q > 1 else math.nan

    def score(self, summary: pd.DataFrame | ArrayLike, y: None = None) -> float:
        """Return the mean log-likelihood per repeat buyer with positive spend.

        Parameters
        ----------
        summary : DataFrame or array-like
            As in `fit`.
        y : None
            Ignored.

        Returns
        -------
        float
            Higher is better.
        """
        params = self._p()
        x, m = _gg_data(summary)
        usable = _gg_usable(x, m)
        return float(_gg_loglik(*params, x[usable], m[usable])[0].mean())

    def expected_average_value(self, summary: pd.DataFrame | ArrayLike) -> pd.Series:
        """Return each customer's expected spend per future transaction.

        ``p (v + x m) / (p x + q - 1)``: a weighted mean of the population mean
        ``p v / (q - 1)`` and the customer's own mean ``m``, the weight of ``m`` growing
        with ``x``. Customers without repeat purchases get the population mean.

        Parameters
        ----------
        summary : DataFrame or array-like
            ``frequency`` and ``monetary_value`` as in `fit`.

        Returns
        -------
        Series
            ``expected_average_value``, indexed like ``summary``.
        """
        p, q, v = self._p()
        x, m = _gg_data(summary)
        m = np.where(x > 0, m, 0.0)  # frequency 0: no repeat spend to learn from
        with np.errstate(divide="ignore", invalid="ignore"):
            value = p * (v + x * m) / (p * x + q - 1)
        value = np.where((x == 0) & (q <= 1), np.nan, value)
        return pd.Series(value, index=_index(summary, x.size), name="expected_average_value")


# ---------------------------------------------------------------------- simulation


def simulate_summary(n_customers: int, *, T: float | ArrayLike = 52.0,
                     bgnbd_params: Mapping[str, float] | None = None,
                     gg_params: Mapping[str, float] | None = None,
                     random_state: int = 0) -> pd.DataFrame:
    """Draw a CLV summary from the BG/NBD and Gamma-Gamma models (for examples and tests).

    Each customer gets a purchase rate ``lambda ~ Gamma(r, alpha)``, a drop-out
    probability ``p ~ Beta(a, b)`` and a spend rate ``nu ~ Gamma(q, v)``; after the first
    purchase at age 0 they buy at exponential gaps until ``T``, dropping out after each
    repeat purchase with probability ``p``; each repeat purchase is worth
    ``Gamma(p_gg, nu)``.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    T : float or array-like, default=52.0
        Age of every customer at the end of the period (or one age per customer).
    bgnbd_params : Mapping, optional
        ``{"r", "alpha", "a", "b"}``. Default: the published CDNOW estimates (weeks).
    gg_params : Mapping, optional
        ``{"p", "q", "v"}``. Default: the published CDNOW estimates (dollars).
    random_state : int, default=0
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    DataFrame
        ``customer_id`` (``"1"``, ``"2"``, ...), ``frequency``, ``recency``, ``T``,
        ``monetary_value``, as from :func:`rfm_engine.clv_summary`.

    Examples
    --------
    >>> summary = simulate_summary(3, T=39.0, random_state=1)
    >>> list(summary.columns)
    ['customer_id', 'frequency', 'recency', 'T', 'monetary_value']
    """
    _check_number("n_customers", n_customers, low=1, integer=True)
    r, alpha, a, b = _check_params("BG/NBD", bgnbd_params or _CDNOW_BGNBD, _BGNBD_PARAMS).values()
    p, q, v = _check_params("Gamma-Gamma", gg_params or _CDNOW_GG, _GG_PARAMS).values()
    ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    if not np.all(np.isfinite(ages) & (ages >= 0)):
        raise ConfigError(f"The 'T' parameter must be finite numbers >= 0. Got {T!r} instead.")
    rng = np.random.default_rng(random_state)
    rate = rng.gamma(r, 1.0 / alpha, n_customers)
    drop = rng.beta(a, b, n_customers)
    nu = rng.gamma(q, 1.0 / v, n_customers)
    x = np.zeros(n_customers, dtype=np.int64)
    last = np.zeros(n_customers)
    spend = np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        nxt = last[idx] + rng.exponential(1.0 / rate[idx])
        buys = nxt <= ages[idx]
        bought = idx[buys]
        x[bought] += 1
        last[bought] = nxt[buys]
        spend[bought] += rng.gamma(p, 1.0 / nu[bought])
        active[idx[~buys]] = False
        active[bought[rng.random(bought.size) < drop[bought]]] = False
    return pd.DataFrame({
        "customer_id": [str(i) for i in range(1, n_customers + 1)],
        "frequency": x,
        "recency": last,
        "T": ages,
        "monetary_value": np.divide(spend, x, out=np.zeros(n_customers), where=x > 0),
    })


# ---------------------------------------------------------------------- identification


def _params_text(params: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())


_MEANING = {
    "r": "purchase rate", "alpha": "purchase rate", "a": "drop-out", "b": "drop-out",
    "p": "spend per purchase", "q": "spend per purchase", "v": "spend per purchase",
    "s": "drop-out", "beta": "drop-out",
}


def identification_problem(model: Estimator) -> str | None:
    """Say why a fitted model is not identified by its data, or return None.

    A model is not identified when it was fitted on customers none of whom bought a
    second time, when its maximum-likelihood fit ran a parameter off to 0
    or infinity (a shape parameter outside [1e-4, 1e4], any parameter not finite), when
    its log-likelihood is not finite, or, for Gamma-Gamma, when ``q <= 1`` (then the
    population mean spend, which customers without repeat purchases get, does not
    exist). Predictions of such a model are artefacts of where the optimiser stopped.

    Parameters
    ----------
    model : BetaGeoModel, ParetoNBDModel or GammaGammaModel
        A fitted model.

    Returns
    -------
    str or None
        The cause in words, starting with the model's name; None when identified.

    Examples
    --------
    >>> good = BetaGeoModel().fit(simulate_summary(500, T=39.0, random_state=0))
    >>> identification_problem(good) is None
    True
    >>> bad = BetaGeoModel.from_params({"r": 0.5, "alpha": 4.0, "a": 3e12, "b": 2.0})
    >>> print(identification_problem(bad))  # doctest: +NORMALIZE_WHITESPACE
    BG/NBD cannot be fitted on these data: its likelihood has no finite maximum (a = 3e+12):
    the drop-out of customers cannot be estimated from the data.
    """
    check_is_fitted(model)
    name = model._LABEL
    n = model.n_customers_
    who = "repeat buyers" if isinstance(model, GammaGammaModel) else "customers"
    if getattr(model, "max_frequency_", None) == 0:
        return (f"{name} cannot be fitted on these data: none of the {n:,} customers bought "
                "a second time, so nothing tells how often customers come back.")
    extreme = _extreme(model.params_)
    if extreme:
        meanings = dict.fromkeys(_MEANING[e.split(" ")[0]] for e in extreme)
        source = f"these {n:,} {who}" if n else "the data"
        return (f"{name} cannot be fitted on these data: its likelihood has no finite maximum "
                f"({', '.join(extreme)}): the {' and '.join(meanings)} of customers cannot be "
                f"estimated from {source}.")
    if model.n_customers_ and not math.isfinite(model.log_likelihood_):
        return (f"{name} cannot be fitted on these data: its log-likelihood is not finite at "
                f"the optimum ({_params_text(model.params_)}).")
    if isinstance(model, GammaGammaModel) and model.params_["q"] <= 1:
        return (f"Gamma-Gamma cannot be used on these data: q = {model.params_['q']:.3g} <= 1, "
                "so the population mean spend p v / (q - 1) that customers without repeat "
                "purchases get does not exist.")
    return None


def _raise_if_not_identified(model: Estimator) -> None:
    problem = identification_problem(model)
    if problem is not None:
        raise ModelNotIdentifiedError(problem)
