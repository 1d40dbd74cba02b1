"""The Pareto/NBD model: the published CDNOW estimates and an independent computation.

The independent computations integrate the model numerically (scipy.integrate), never
through the Gaussian hypergeometric function the implementation uses:

* the likelihood of one customer, ``Gamma(r+x) alpha^r beta^s / Gamma(r) * [(alpha+T)^-(r+x)
  (beta+T)^-s + s * int_{t_x}^T (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau]`` (the customer
  is alive at T, or died at some tau in (t_x, T]);
* P(alive) and the expected purchases as posterior means over (lambda, mu), double
  integrals over the two gamma mixing distributions.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from rfm_engine.core.features import clv_summary
from rfm_engine.errors import ConfigError, DataError, EmptyResultError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.clv import ParetoNBDModel, identification_problem
from rfm_engine.measurement.clv.pareto_nbd import _log_g, _log_g_integral

from .conftest import DATA, read_cdnow

# Fader, Hardie & Lee (2005), "Counting your customers the easy way", Table 1: the
# Pareto/NBD on the CDNOW sample calibrated to 1997-09-30, in weeks.
PAPER = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
PAPER_LL = -9595.0
# Half a unit in the last published digit.
TOL = {"r": 0.005, "alpha": 0.005, "s": 0.005, "beta": 0.005}
# The estimates to three decimals (Fader & Hardie's note and spreadsheet, lifetimes' tests).
PUBLISHED_3 = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}

PUBLISHED = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").rename(
    columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
MODEL = ParetoNBDModel().fit(PUBLISHED)


def _cdnow_summary() -> pd.DataFrame:
    tx = load_transactions(read_cdnow(), as_of="1997-09-30", columns={"order_date": "date"},
                           date_format="%Y%m%d")
    return clv_summary(tx, time_unit="W")


# ---------------------------------------------------------------- the published estimates


@pytest.mark.parametrize("source", ["published summary", "clv_summary"])
def test_cdnow_reproduces_the_paper(source):
    summary = PUBLISHED if source == "published summary" else _cdnow_summary()
    model = MODEL if source == "published summary" else ParetoNBDModel().fit(summary)
    assert model.converged_
    assert model.n_customers_ == 2357
    for name, published in PAPER.items():
        assert abs(model.params_[name] - published) <= TOL[name], (name, model.params_[name])
        assert model.params_[name] == pytest.approx(PUBLISHED_3[name], abs=0.002), name
    assert model.log_likelihood_ == pytest.approx(PAPER_LL, abs=0.05)
    assert identification_problem(model) is None


def test_nelder_mead_finds_the_same_optimum():
    model = ParetoNBDModel(method="Nelder-Mead").fit(PUBLISHED)
    for name, value in MODEL.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-4), name


@pytest.mark.parametrize("name", ["r", "alpha", "s", "beta"])
@pytest.mark.parametrize("factor", [0.97, 1.03])
def test_the_optimum_beats_perturbed_parameters(name, factor):
    perturbed = ParetoNBDModel.from_params({**MODEL.params_, name: MODEL.params_[name] * factor})
    assert MODEL.score(PUBLISHED) > perturbed.score(PUBLISHED)


# ---------------------------------------------------------------- independent computation

CUSTOMERS = pd.DataFrame({"frequency": [0, 2, 7, 1], "recency": [0.0, 30.43, 37.0, 2.0],
                          "T": [38.86, 38.86, 38.86, 30.0]})
# alpha < beta (CDNOW), alpha > beta and alpha == beta take different branches.
BRANCHES = [PUBLISHED_3, {"r": 0.8, "alpha": 15.0, "s": 1.4, "beta": 3.0},
            {"r": 0.5, "alpha": 7.0, "s": 0.7, "beta": 7.0}]


def _log_likelihood(r, alpha, s, beta, x, t_x, big_t):
    """One customer's log-likelihood: alive at T, or died at some tau in (t_x, T].

    Computed relative to the larger of the two densities at their start (no underflow).
    """
    def log_died(tau):
        return -(r + x) * math.log(alpha + tau) - (s + 1) * math.log(beta + tau)

    log_alive = -(r + x) * math.log(alpha + big_t) - s * math.log(beta + big_t)
    top = max(log_alive, log_died(t_x))
    died, _ = integrate.quad(lambda tau: math.exp(log_died(tau) - top), t_x, big_t,
                             epsabs=0, epsrel=1e-12, limit=200)
    front = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    return front + top + math.log(math.exp(log_alive - top) + s * died)


def _posterior(r, alpha, s, beta, x, t_x, big_t, t):
    """P(alive) and E[purchases in (T, T+t]] as posterior means over (lambda, mu).

    Integrated over u = log(lambda), w = log(mu), where the integrands are smooth.
    """
    def log_prior(v, shape, rate):  # log of the gamma density times v (the Jacobian)
        return shape * math.log(rate) - gammaln(shape) + shape * math.log(v) - rate * v

    def integrand(w, u, what):
        lam, mu = math.exp(u), math.exp(w)
        log_weight = log_prior(lam, r, alpha) + log_prior(mu, s, beta) + x * u
        alive = math.exp(log_weight - (lam + mu) * big_t)
        if what == "alive":
            return alive
        if what == "purchases":  # expected purchases while alive in the window
            return alive * lam / mu * -math.expm1(-mu * t)
        died = math.exp(log_weight) * mu / (lam + mu) * (
            math.exp(-(lam + mu) * t_x) - math.exp(-(lam + mu) * big_t))
        return alive + died

    value = {what: integrate.dblquad(integrand, -60, 8, -60, 8, args=(what,), epsabs=0,
                                     epsrel=1e-9)[0]
             for what in ("alive", "purchases", "all")}
    return value["alive"] / value["all"], value["purchases"] / value["all"]


@pytest.mark.parametrize("params", BRANCHES, ids=["alpha<beta", "alpha>beta", "alpha=beta"])
def test_likelihood_equals_the_integral(params):
    model = ParetoNBDModel.from_params(params)
    for row in CUSTOMERS.itertuples():
        expected = _log_likelihood(*params.values(), row.frequency, row.recency, row.T)
        one = CUSTOMERS.iloc[[row.Index]]
        assert model.score(one) == pytest.approx(expected, abs=1e-9), row


@pytest.mark.parametrize("params", BRANCHES[:2], ids=["alpha<beta", "alpha>beta"])
def test_p_alive_and_expected_purchases_equal_the_posterior_means(params):
    model = ParetoNBDModel.from_params(params)
    alive = model.probability_alive(CUSTOMERS).to_numpy()
    purchases = model.predict_purchases(39, CUSTOMERS).to_numpy()
    for i, row in enumerate(CUSTOMERS.itertuples()):
        p, e = _posterior(*params.values(), row.frequency, row.recency, row.T, 39.0)
        assert alive[i] == pytest.approx(p, abs=1e-7), row
        assert purchases[i] == pytest.approx(e, rel=1e-6), row


def test_expected_purchases_of_a_new_customer_equal_the_integral():
    # E[X(t)] = E[lambda] * E[time alive in (0, t]] = r / alpha * int_0^t (beta/(beta+u))^s du
    r, alpha, s, beta = PUBLISHED_3.values()
    model = ParetoNBDModel.from_params(PUBLISHED_3)
    for t in (1.0, 39.0, 78.0):
        alive_time, _ = integrate.quad(lambda u: (beta / (beta + u)) ** s, 0, t, epsrel=1e-12)
        assert model.expected_purchases_new(t) == pytest.approx(r / alpha * alive_time,
                                                                rel=1e-10)


def test_heavy_buyers_and_far_apart_rates_stay_finite_and_exact():
    # x = 300 and alpha/beta = 1e4: the hypergeometric series of the note's raw form
    # overflow or lose their digits; the transformed form does not.
    customers = pd.DataFrame({"frequency": [300, 300, 0], "recency": [50.0, 10.0, 0.0],
                              "T": [52.0, 52.0, 52.0]})
    for params in ({"r": 2.0, "alpha": 1.0, "s": 0.5, "beta": 1e4},
                   {"r": 2.0, "alpha": 1e4, "s": 0.5, "beta": 1.0}):
        model = ParetoNBDModel.from_params(params)
        scores = [model.score(customers.iloc[[i]]) for i in range(3)]
        for i, row in enumerate(customers.itertuples()):
            expected = _log_likelihood(*params.values(), row.frequency, row.recency, row.T)
            assert scores[i] == pytest.approx(expected, rel=1e-9), (params, row)
        assert np.isfinite(model.probability_alive(customers)).all()
        assert np.isfinite(model.predict_purchases(52, customers)).all()


def test_the_integral_fallback_agrees_with_hyp2f1_where_both_work():
    # G(tau) integrated from its definition (used where scipy's hyp2f1 fails) against the
    # transformed hypergeometric form, on both branches, far-apart rates, heavy buyers.
    x = np.tile([0.0, 1.0, 3.0, 10.0, 100.0, 300.0], 3)
    tau = np.repeat([0.0, 5.0, 39.0], 6)
    for params in [*BRANCHES, {"r": 2.0, "alpha": 1.0, "s": 0.5, "beta": 1e4},
                   {"r": 2.0, "alpha": 1e4, "s": 0.5, "beta": 1.0},
                   {"r": 0.2, "alpha": 1e-3, "s": 0.1, "beta": 1e3}]:
        np.testing.assert_allclose(_log_g_integral(*params.values(), x, tau),
                                   _log_g(*params.values(), x, tau), rtol=0, atol=1e-9)


def test_s_equal_to_one_is_the_limit():
    at_one = ParetoNBDModel.from_params({**PUBLISHED_3, "s": 1.0})
    near = [ParetoNBDModel.from_params({**PUBLISHED_3, "s": 1.0 + h}) for h in (-1e-7, 1e-7)]
    value = at_one.predict_purchases(39, CUSTOMERS).to_numpy()
    for model in near:
        np.testing.assert_allclose(model.predict_purchases(39, CUSTOMERS), value, rtol=1e-6)
    assert at_one.expected_purchases_new(39.0) == pytest.approx(
        0.553 / 10.578 * 11.669 * math.log1p(39 / 11.669), rel=1e-12)


# ---------------------------------------------------------------- recovery and conventions


def _simulate(n, params, big_t, seed):
    """Draw a Pareto/NBD summary: Poisson purchases until an exponential death or T."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    death = rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n))
    end = np.minimum(death, big_t)
    x, last = np.zeros(n, dtype=int), np.zeros(n)
    for i in range(n):
        times = np.cumsum(rng.exponential(1 / lam[i], 400))
        times = times[times <= end[i]]
        x[i], last[i] = times.size, times[-1] if times.size else 0.0
    return pd.DataFrame({"frequency": x, "recency": last, "T": big_t})


def test_fit_recovers_simulated_parameters():
    truth = {"r": 0.8, "alpha": 8.0, "s": 0.7, "beta": 10.0}
    summary = _simulate(4000, truth, 52.0, seed=1)
    model = ParetoNBDModel().fit(summary)
    assert model.converged_
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.3), name
    # Purchases: the model's mean rate matches the data's.
    assert model.params_["r"] / model.params_["alpha"] == pytest.approx(
        truth["r"] / truth["alpha"], rel=0.1)


def test_estimator_conventions():
    model = ParetoNBDModel(method="Nelder-Mead", max_iter=10)
    assert clone(model).get_params() == {"max_iter": 10, "method": "Nelder-Mead"}
    with pytest.raises(NotFittedError):
        ParetoNBDModel().probability_alive(CUSTOMERS)
    with pytest.raises(ConfigError, match="method"):
        ParetoNBDModel(method="BFGS").fit(PUBLISHED)
    with pytest.raises(ConfigError, match="r, alpha, s, beta"):
        ParetoNBDModel.from_params({"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})
    with pytest.raises(ConfigError, match="'beta'"):
        ParetoNBDModel.from_params({**PUBLISHED_3, "beta": -1.0})
    with pytest.raises(EmptyResultError):
        ParetoNBDModel().fit(PUBLISHED.iloc[:0])
    with pytest.raises(DataError, match="recency"):
        ParetoNBDModel().fit(pd.DataFrame({"frequency": [1], "recency": [5.0], "T": [2.0]}))
    # an array gives the columns in order, the index is a range
    alive = MODEL.probability_alive(CUSTOMERS.to_numpy())
    np.testing.assert_array_equal(alive, MODEL.probability_alive(CUSTOMERS))


def test_an_unidentified_fit_is_reported_in_words():
    # Nobody came back: the drop-out cannot be told from a low purchase rate.
    summary = pd.DataFrame({"frequency": [0] * 50, "recency": [0.0] * 50, "T": [30.0] * 50})
    model = ParetoNBDModel().fit(summary)
    assert identification_problem(model) == (
        "Pareto/NBD cannot be fitted on these data: none of the 50 customers bought a second "
        "time, so nothing tells how often customers come back.")
    extreme = ParetoNBDModel.from_params({**PUBLISHED_3, "s": 3e12})
    assert identification_problem(extreme) == (
        "Pareto/NBD cannot be fitted on these data: its likelihood has no finite maximum "
        "(s = 3e+12): the drop-out of customers cannot be estimated from the data.")
