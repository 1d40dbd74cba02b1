"""Predictive customer lifetime value: BG/NBD purchases, Gamma-Gamma spend, discounted CLV.

The public names live in :mod:`.models` and are re-exported here, so
``from rfm_engine.measurement.clv import fit_clv`` is the import to use.
"""

from .models import (
    CLV_COLUMNS,
    CLV_FORMAT,
    BetaGeoModel,
    CLVResult,
    GammaGammaModel,
    IndependenceWarning,
    customer_lifetime_value,
    fit_clv,
    holdout_purchases,
    identification_problem,
    plot_calibration_holdout,
    plot_frequency_recency,
    plot_probability_alive_matrix,
    simulate_summary,
)

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "IndependenceWarning",
    "CLVResult",
    "customer_lifetime_value",
    "identification_problem",
    "fit_clv",
    "holdout_purchases",
    "simulate_summary",
    "plot_frequency_recency",
    "plot_probability_alive_matrix",
    "plot_calibration_holdout",
    "CLV_FORMAT",
    "CLV_COLUMNS",
]
