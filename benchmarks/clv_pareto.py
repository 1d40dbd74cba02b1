"""Fit cost of the Pareto/NBD model against BG/NBD (README: Predictive CLV).

    python benchmarks/clv_pareto.py --customers 10000 100000

Draws a CLV summary from the Pareto/NBD model at the published CDNOW estimates (r=0.55,
alpha=10.58, s=0.61, beta=11.67, weeks): ages uniform in 1..78 weeks, to the day; purchases
Poisson while alive, the last one the largest of uniform purchase times. Fits both models
and prints the Pareto/NBD estimates and the CPU seconds of each fit (the number to quote on
a loaded machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from rfm_engine.measurement.clv import BetaGeoModel, ParetoNBDModel

TRUTH = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def draw(n: int, seed: int = 0) -> pd.DataFrame:
    """A Pareto/NBD summary of ``n`` customers at ``TRUTH``, ages and times to the day."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    death = rng.gamma(TRUTH["s"], 1 / TRUTH["beta"], n)
    age = np.round(rng.uniform(1, 78, n) * 7) / 7
    alive_for = np.minimum(rng.exponential(1 / death), age)
    x = rng.poisson(rate * alive_for)
    last = np.where(x > 0, alive_for * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": np.round(last * 7) / 7, "T": age})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000])
    for n in parser.parse_args().customers:
        summary = draw(n)
        cpu = time.process_time()
        pareto = ParetoNBDModel().fit(summary)
        pareto_cpu = time.process_time() - cpu
        cpu = time.process_time()
        BetaGeoModel().fit(summary)
        bgnbd_cpu = time.process_time() - cpu
        estimates = ", ".join(f"{k}={v:.3f}" for k, v in pareto.params_.items())
        print(f"{n:,} customers: Pareto/NBD {estimates} (converged: {pareto.converged_}); "
              f"CPU s: Pareto/NBD {pareto_cpu:.1f}, BG/NBD {bgnbd_cpu:.1f}")


if __name__ == "__main__":
    main()
