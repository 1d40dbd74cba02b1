"""Predictive customer lifetime value: BG/NBD or Pareto/NBD purchases, Gamma-Gamma spend.

``models`` (the BG/NBD and Gamma-Gamma models, their fits and a simulator),
``pareto_nbd`` (the Pareto/NBD model), ``value`` (discounted CLV per customer:
``fit_clv``, ``CLVResult``; per segment: ``segment_clv``; saved parameters: ``read_params``,
``score_clv``; horizon and discounting: ``clv_time``), ``uncertainty`` (intervals:
observed information and the delta method), ``holdout`` (purchases after the
calibration period), ``validation`` (fit on a calibration period, check against the
holdout: ``validate_clv``) and ``plots``. The public names are re-exported here:
``from rfm_engine.measurement.clv import fit_clv`` is the import to use.
"""

from .holdout import conditional_expectations, holdout_purchases, repeat_purchase_days
from .models import (
    CLV_COLUMNS,
    BetaGeoModel,
    GammaGammaModel,
    IndependenceWarning,
    identification_problem,
    simulate_summary,
)
from .pareto_nbd import ParetoNBDModel
from .plots import plot_calibration_holdout, plot_frequency_recency, plot_probability_alive_matrix
from .uncertainty import CLVIntervals, ParameterUncertainty, clv_intervals, parameter_uncertainty
from .validation import VALIDATION_FORMAT, CLVValidation, validate_clv
from .value import (
    CLV_FORMAT,
    PURCHASE_MODELS,
    SEGMENT_CLV_COLUMNS,
    CLVResult,
    CLVTime,
    SavedCLV,
    clv_time,
    customer_lifetime_value,
    fit_clv,
    read_params,
    score_clv,
    segment_clv,
)

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ParetoNBDModel",
    "IndependenceWarning",
    "CLVResult",
    "CLVIntervals",
    "ParameterUncertainty",
    "clv_intervals",
    "parameter_uncertainty",
    "segment_clv",
    "SEGMENT_CLV_COLUMNS",
    "CLVTime",
    "SavedCLV",
    "clv_time",
    "read_params",
    "score_clv",
    "PURCHASE_MODELS",
    "customer_lifetime_value",
    "identification_problem",
    "fit_clv",
    "holdout_purchases",
    "repeat_purchase_days",
    "conditional_expectations",
    "validate_clv",
    "CLVValidation",
    "VALIDATION_FORMAT",
    "simulate_summary",
    "plot_frequency_recency",
    "plot_probability_alive_matrix",
    "plot_calibration_holdout",
    "CLV_FORMAT",
    "CLV_COLUMNS",
]
