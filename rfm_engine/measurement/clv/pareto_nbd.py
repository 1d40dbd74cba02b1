"""The Pareto/NBD model of repeat purchases (Schmittlein, Morrison & Colombo 1987).

While alive a customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)`` and is alive
for an exponential lifetime of rate ``mu ~ Gamma(s, beta)``, the two independent. Unlike
the BG/NBD model (`BetaGeoModel`), a customer can drop out at any time, also before a
first repeat purchase. Fitted by maximum likelihood on the CLV summary (``frequency``,
``recency``, ``T``), in its time unit: ``alpha`` and ``beta`` carry it.

The expressions are those of Fader & Hardie (2005), "A note on deriving the Pareto/NBD
model and related expressions" (brucehardie.com/notes/009): the likelihood (Eq. 18-20),
P(alive) (Eq. 36-37), the expected purchases of a new customer (Eq. 27) and the
conditional expectation (Eq. 41).

Validation on CDNOW (``tests/test_pareto_nbd.py``): on the 2,357-customer sample
calibrated to 1997-09-30 in weeks, the fit gives r=0.5533, alpha=10.578, s=0.6062,
beta=11.668 and a log-likelihood of -9594.97 (Fader, Hardie & Lee 2005, "Counting your
customers the easy way", Table 1: 0.55, 10.58, 0.61, 11.67, -9595.0). P(alive), the
expected purchases and the likelihood agree with numerical integrals of the model to
1e-7 or better.

Numerics: the likelihood's integral term ``A0`` (Eq. 19/20) is a difference of two
values of ``G(tau) = 2F1(r+s+x, b; r+s+x+1; z(tau)) / (m + tau)^(r+s+x)``, with
``m = max(alpha, beta)``, ``z = |alpha - beta| / (m + tau) in [0, 1)`` and ``b = s + 1``
when ``alpha >= beta``, ``b = r + x`` otherwise (the two branches keep ``z`` in [0, 1)).
Euler's transformation ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)`` leaves
a series with first parameter 1 that does not grow with the purchases (for ``alpha >=
beta`` it lies between 1 and ``(r+s+x)/s``). Everything is computed in logarithms, and
``A0`` as ``G(t_x) (1 - G(T)/G(t_x))`` with ``expm1``. Where scipy's ``hyp2f1`` fails
(NaN or infinity for ``z`` near 1 with a large third parameter: heavy buyers, rates far
apart) ``G`` is integrated from its definition (composite Gauss-Legendre). The
likelihood has no closed-form gradient without derivatives of 2F1 in its parameters: the
fit takes central differences (step 1e-6 on the log-parameters).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1

from .models import (
    _per_level,
    _PurchaseModel,
)

__all__ = ["ParetoNBDModel"]

_PARETO_PARAMS = ("r", "alpha", "s", "beta")
#: Published CDNOW estimates (weeks): Fader, Hardie & Lee (2005), Table 1.
_CDNOW_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def _log_g(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
           tau: np.ndarray) -> np.ndarray:
    """``log G(tau)``, G of Eq. 19/20 of the note, for ``tau`` = recency or T.

    ``G = 2F1(r+s+x, b; r+s+x+1; z) / (m + tau)^(r+s+x)`` with ``m = max(alpha, beta)``
    and ``z = |alpha - beta| / (m + tau)``; after Euler's transformation
    ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z)`` and ``1 - z =
    (min + tau) / (m + tau)``:

    * ``alpha >= beta`` (``b = s + 1``): ``G = 2F1(1, r+x; r+s+x+1; z) / ((alpha+tau)^(r+x)
      (beta+tau)^s)``;
    * ``alpha < beta`` (``b = r + x``): ``G = 2F1(1, s+1; r+s+x+1; z) / ((alpha+tau)^(r+x-1)
      (beta+tau)^(s+1))``.

    scipy's ``hyp2f1`` is exact to about 1e-13 where it returns a number, but gives NaN or
    infinity for ``z`` near 1 with a large third parameter (heavy buyers, rates far apart);
    those elements are integrated instead (`_log_g_integral`, vectorised).
    """
    c = r + s + x + 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        series = hyp2f1(1.0, r + x, c, z)
        log_g = np.log(series) - (r + x) * np.log(alpha + tau) - s * np.log(beta + tau)
    else:
        z = (beta - alpha) / (beta + tau)
        series = hyp2f1(1.0, s + 1.0, c, z)
        log_g = (np.log(series) - (r + x - 1.0) * np.log(alpha + tau)
                 - (s + 1.0) * np.log(beta + tau))
    failed = ~(np.isfinite(series) & (series >= 1.0))
    if failed.any():
        log_g = np.array(log_g, dtype=np.float64)
        x_b, tau_b = np.broadcast_arrays(x, tau)
        log_g[failed] = _log_g_integral(r, alpha, s, beta, x_b[failed], tau_b[failed])
    return log_g


# Composite 8-point Gauss-Legendre rule on [0, inf) in units of each customer's decay
# length: panels [0, 1/16], then doubling up to 2^60; the rest in closed form.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
_EDGES = np.concatenate([[0.0], 2.0 ** np.arange(-4, 61)])
_NODES = ((_EDGES[1:] - _EDGES[:-1])[:, None] * (_GL_X + 1) / 2 + _EDGES[:-1, None]).ravel()
_WEIGHTS = ((_EDGES[1:] - _EDGES[:-1])[:, None] * _GL_W / 2).ravel()


def _log_g_integral(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
                    tau: np.ndarray) -> np.ndarray:
    """``log G(tau)`` from its definition, ``(r+s+x) int_tau^inf f(u) du``.

    ``f(u) = (alpha+u)^-(r+x) (beta+u)^-(s+1)`` is the density of dying at ``u`` after
    the last purchase. It is integrated relative to ``f(tau)`` (from 1 down, no
    underflow) in units of its decay length at ``tau``, ``h = 1 / (-d log f / du)``, on
    panels that double in width (both scales of ``f``, ``alpha`` and ``beta``, are
    resolved); beyond ``2^60 h``, ``f ~ u^-(r+s+x+1)`` is integrated in closed form.
    Agrees with adaptive quadrature to 1e-10 where the integral converges fast (the
    customers scipy's ``hyp2f1`` fails on).
    """
    x, tau = np.asarray(x, dtype=np.float64)[:, None], np.asarray(tau, dtype=np.float64)[:, None]

    def log_f(u: np.ndarray) -> np.ndarray:
        return -(r + x) * np.log(alpha + u) - (s + 1.0) * np.log(beta + u)

    start = log_f(tau)
    h = 1.0 / ((r + x) / (alpha + tau) + (s + 1.0) / (beta + tau))
    body = (np.exp(log_f(tau + h * _NODES) - start) * h) @ _WEIGHTS
    end = tau[:, 0] + h[:, 0] * _EDGES[-1]
    tail = (np.exp(log_f(end[:, None])[:, 0] - start[:, 0]) * (end + max(alpha, beta))
            / (r + s + x[:, 0]))
    return np.log(r + s + x[:, 0]) + start[:, 0] + np.log(body + tail)


def _log_a0(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray,
            big_t: np.ndarray) -> np.ndarray:
    """``log A0 = log(G(t_x) - G(T))``; ``-inf`` where ``t_x == T`` (A0 = 0)."""
    at_last = _log_g(r, alpha, s, beta, x, t_x)
    at_end = _log_g(r, alpha, s, beta, x, big_t)
    with np.errstate(divide="ignore"):
        # G decreases in tau, so at_end <= at_last; rounding may push the gap above 0.
        return at_last + np.log(-np.expm1(np.minimum(at_end - at_last, 0.0)))


def _pareto_terms(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
                  t_x: np.ndarray, big_t: np.ndarray,
                  levels: tuple[np.ndarray, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the log-likelihood's parts ``(base, alive, dead)``.

    ``log L = base + logaddexp(alive, dead)``: ``alive`` is the log of the term of a
    customer still alive at ``T``, ``dead`` that of one who dropped out in
    ``(recency, T]``; ``P(alive) = exp(alive - logaddexp(alive, dead))``.
    """
    base = (_per_level(lambda v: gammaln(r + v), x, levels) - gammaln(r)
            + r * np.log(alpha) + s * np.log(beta))
    alive = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
    dead = np.log(s) - np.log(r + s + x) + _log_a0(r, alpha, s, beta, x, t_x, big_t)
    return base, alive, dead


def _pareto_loglik(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
                   t_x: np.ndarray, big_t: np.ndarray,
                   levels: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-customer log-likelihood (Eq. 18 of the note)."""
    base, alive, dead = _pareto_terms(r, alpha, s, beta, x, t_x, big_t, levels)
    return base + np.logaddexp(alive, dead)


def _pareto_p_alive(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
                    t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """P(alive at T | x, recency, T) (Eq. 36-37 of the note)."""
    _, alive, dead = _pareto_terms(r, alpha, s, beta, x, t_x, big_t)
    return np.exp(alive - np.logaddexp(alive, dead))


def _pareto_expected(r: float, alpha: float, s: float, beta: float, x: np.ndarray,
                     big_t: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Return the expected purchases in ``(T, T + t]`` if alive at ``T`` (Eq. 41 / P(alive)).

    ``(r + x) / (alpha + T) * (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T +
    t))^(s - 1))``: the expected rate times the expected time alive in the window. Its
    limit at ``s = 1``, ``log(1 + t / (beta + T))``, comes out of ``-expm1(-k u) / k``
    with ``k = s - 1`` and ``u = log1p(t / (beta + T))`` evaluated at ``k = 0``.
    """
    u = np.log1p(t / (beta + big_t))
    k = s - 1.0
    alive_time = u if k == 0.0 else -np.expm1(-k * u) / k
    return (r + x) / (alpha + big_t) * (beta + big_t) * alive_time


class ParetoNBDModel(_PurchaseModel):
    """Pareto/NBD model of repeat purchases, fitted by maximum likelihood.

    Each customer buys at a Poisson rate ``lambda ~ Gamma(r, alpha)`` while alive and
    stays alive for an exponential time of rate ``mu ~ Gamma(s, beta)``. Parameters are
    estimated on the log scale with :func:`scipy.optimize.minimize`; see the module
    docstring for the numerics.

    Parameters
    ----------
    method : {"L-BFGS-B", "Nelder-Mead"}, default="L-BFGS-B"
        Optimiser. L-BFGS-B uses a central-difference gradient; Nelder-Mead needs none.
    max_iter : int, default=2000
        Maximum optimiser iterations; a fit that stops short warns with a
        :class:`~sklearn.exceptions.ConvergenceWarning`.

    Attributes
    ----------
    params_ : dict of str to float
        ``{"r", "alpha", "s", "beta"}``. ``alpha`` and ``beta`` are in the time unit of
        the summary.
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
    With ``x`` = ``frequency`` and ``A0`` the integral term of the likelihood (Eq. 19/20
    of the note):

    * `probability_alive`: ``1 / (1 + s / (r + s + x) * (alpha + T)^(r + x) * (beta +
      T)^s * A0)``, Eq. 36-37 of the note. Unlike BG/NBD, a customer without repeat
      purchases can have dropped out too;
    * `predict_purchases`: the conditional expectation of Eq. 41 of the note;
    * `expected_purchases_new`: ``r beta / (alpha (s - 1)) * (1 - (beta / (beta +
      t))^(s - 1))`` (Eq. 27).

    Examples
    --------
    The published CDNOW estimates (weeks); a customer with 2 repeat purchases, the last at
    week 30.43, observed for 38.86 weeks:

    >>> import pandas as pd
    >>> model = ParetoNBDModel.from_params({"r": 0.553, "alpha": 10.578, "s": 0.606,
    ...                                     "beta": 11.669})
    >>> customer = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    >>> round(float(model.probability_alive(customer).iloc[0]), 3)
    0.869
    >>> round(float(model.predict_purchases(39, customer).iloc[0]), 3)
    1.455
    >>> model.expected_purchases_new([1, 78]).round(3).tolist()
    [0.051, 1.909]
    """

    _LABEL = "Pareto/NBD"
    _PARAMS = _PARETO_PARAMS
    _LOGLIK = staticmethod(_pareto_loglik)
    _P_ALIVE = staticmethod(_pareto_p_alive)
    _EXPECTED = staticmethod(_pareto_expected)
