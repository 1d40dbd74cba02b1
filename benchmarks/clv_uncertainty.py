"""How good and how costly are the CLV intervals (rfm_engine.measurement.clv.uncertainty)?

Three measurements, printed as Markdown (the README's "Intervals" paragraph quotes them):

1. Coverage: ``--reps`` data sets of ``--n`` customers (ages uniform in 20-78 weeks)
   simulated from the published CDNOW parameters; how often each nominal interval holds the
   true parameter, and the true expected purchases / CLV (39 weeks) of three customer
   profiles, with a 95% Clopper-Pearson interval of each rate.
2. Agreement with the parametric bootstrap on one data set: standard errors of the
   parameters from the observed information vs from ``--boot`` refits on data simulated
   from the fitted parameters.
3. Cost at ``--size`` customers (CPU seconds): the fit, the intervals (information and
   delta method), and one parametric-bootstrap draw (simulate, refit both models, predict).

    .venv/bin/python benchmarks/clv_uncertainty.py                       # ~10 min CPU
    .venv/bin/python benchmarks/clv_uncertainty.py --reps 100 --boot 50 --size 100000
"""

from __future__ import annotations

import argparse
import resource
import warnings

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from rfm_engine.measurement.clv import (
    BetaGeoModel,
    GammaGammaModel,
    clv_intervals,
    fit_clv,
    parameter_uncertainty,
    simulate_summary,
)
from rfm_engine.measurement.clv.value import _predictions

TRUE_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
TRUE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PROFILES = pd.DataFrame({"customer_id": ["light", "lapsed", "heavy"],
                         "frequency": [1, 4, 12], "recency": [10.0, 15.0, 50.0],
                         "T": [52.0, 60.0, 52.0], "monetary_value": [20.0, 35.0, 60.0]})
HORIZON = 39.0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate(hits: int, n: int) -> str:
    ci = binomtest(int(hits), n, 0.9).proportion_ci(0.95)
    return f"{hits / n:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def coverage(reps: int, n: int, level: float) -> None:
    ages = np.random.default_rng(99).uniform(20, 78, n)
    truth = _predictions(BetaGeoModel.from_params(TRUE_BGNBD),
                         GammaGammaModel.from_params(TRUE_GG), PROFILES, HORIZON, 0.0, 1.0)
    true = {**TRUE_BGNBD, **TRUE_GG}
    params = dict.fromkeys(true, 0)
    predictions = {name: np.zeros(len(PROFILES), dtype=int)
                   for name in ("expected_purchases", "clv")}
    start = cpu()
    for rep in range(reps):
        summary = simulate_summary(n, T=ages, random_state=20_000 + rep)
        result = fit_clv(summary, horizon=HORIZON, discount_rate=0.0)
        bands = clv_intervals(result, summary, level=level, customers=PROFILES)
        for unc in bands.parameters.values():
            low, high = unc.interval(level)
            for name, lo, hi in zip(unc.names, low, high, strict=True):
                params[name] += bool(lo <= true[name] <= hi)
        for name in predictions:
            low = bands.customers[f"{name}_low"].to_numpy(float)
            high = bands.customers[f"{name}_high"].to_numpy(float)
            predictions[name] += (low <= truth[name]) & (truth[name] <= high)
    print(f"### Coverage of nominal {level:.0%} intervals: {reps} data sets of {n} customers "
          f"({cpu() - start:.0f} s CPU)\n")
    print("| parameter | " + " | ".join(params) + " |")
    print("|---" * (len(params) + 1) + "|")
    print("| coverage [95% CI] | " + " | ".join(rate(h, reps) for h in params.values()) + " |")
    pooled = sum(params.values()) / (reps * len(params))
    print(f"\nAll parameters together: {pooled:.3f}.\n")
    print("| profile (x, t_x, T, m) | true E[Y(39)] | coverage | true CLV(39) | coverage |")
    print("|---|---|---|---|---|")
    for i, row in PROFILES.iterrows():
        print(f"| {row.customer_id} ({row.frequency}, {row.recency:g}, {row['T']:g}, "
              f"{row.monetary_value:g}) | {truth['expected_purchases'][i]:.3f} | "
              f"{rate(predictions['expected_purchases'][i], reps)} | {truth['clv'][i]:.2f} | "
              f"{rate(predictions['clv'][i], reps)} |")
    print()


def bootstrap_agreement(n: int, boot: int) -> None:
    ages = np.random.default_rng(98).uniform(20, 78, n)
    summary = simulate_summary(n, T=ages, random_state=7)
    models = [BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)]
    draws: list[list[list[float]]] = [[], []]
    for b in range(boot):
        again = simulate_summary(n, T=ages, bgnbd_params=models[0].params_,
                                 gg_params=models[1].params_, random_state=30_000 + b)
        for k, cls in enumerate((BetaGeoModel, GammaGammaModel)):
            draws[k].append(list(cls().fit(again).params_.values()))
    print(f"### Standard errors: observed information vs {boot} parametric-bootstrap refits "
          f"({n} customers)\n")
    print("| parameter | estimate | se (information) | se (bootstrap) |")
    print("|---|---|---|---|")
    for k, model in enumerate(models):
        unc = parameter_uncertainty(model, summary)
        spread = np.std(np.array(draws[k]), axis=0, ddof=1)
        for name, est, se, bse in zip(unc.names, unc.estimate, unc.standard_errors, spread,
                                      strict=True):
            print(f"| {name} | {est:.4g} | {se:.4g} | {bse:.4g} |")
    print()


def cost(size: int) -> None:
    # Ages in whole days, in weeks (as clv_summary(..., time_unit="W") gives them).
    ages = np.random.default_rng(97).integers(7, 730, size) / 7
    summary = simulate_summary(size, T=ages, random_state=5)
    start = cpu()
    result = fit_clv(summary, horizon=52, discount_rate=0.0)
    fitted = cpu() - start
    start = cpu()
    clv_intervals(result, summary, level=0.9)
    intervals = cpu() - start
    start = cpu()
    again = simulate_summary(size, T=ages, bgnbd_params=result.bgnbd.params_,
                             gg_params=result.gamma_gamma.params_, random_state=6)
    refit = fit_clv(again, horizon=52, discount_rate=0.0)
    _predictions(refit.bgnbd, refit.gamma_gamma, summary, 52, 0.0, 1.0)
    draw = cpu() - start
    print(f"### Cost at {size:,} customers (CPU seconds, 52 weekly steps)\n")
    print("| fit (both models, predictions) | intervals (information + delta method) "
          "| one bootstrap draw | 200 bootstrap draws |")
    print("|---|---|---|---|")
    print(f"| {fitted:.1f} | {intervals:.1f} | {draw:.1f} | {200 * draw:.0f} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fit notes (correlated spend...) are not at issue
        coverage(args.reps, args.n, args.level)
        bootstrap_agreement(2000, args.boot)
        cost(args.size)


if __name__ == "__main__":
    main()
