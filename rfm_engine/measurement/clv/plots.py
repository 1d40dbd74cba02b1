"""Plots of a purchase model (BG/NBD, Pareto/NBD): frequency/recency matrices, holdout."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...core._estimator import check_is_fitted
from ...errors import ConfigError
from ...plotting import new_axes
from .holdout import conditional_expectations
from .models import BetaGeoModel, _check_number
from .pareto_nbd import ParetoNBDModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_frequency_recency", "plot_probability_alive_matrix",
           "plot_calibration_holdout"]


def _grid(model: BetaGeoModel | ParetoNBDModel, max_frequency: int | None,
          max_recency: float | None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    check_is_fitted(model)
    if max_frequency is None or max_recency is None:
        if not hasattr(model, "max_T_"):
            raise ConfigError("Pass max_frequency and max_recency for a model made with "
                              "from_params (it saw no data to take the ranges from).")
        max_frequency = int(model.max_frequency_) if max_frequency is None else max_frequency
        max_recency = model.max_T_ if max_recency is None else max_recency
    _check_number("max_frequency", max_frequency, low=1, integer=True)
    _check_number("max_recency", max_recency, low=0.0, low_open=True)
    frequencies = np.arange(max_frequency + 1)
    recencies = np.linspace(0.0, float(max_recency), min(int(math.ceil(max_recency)) + 1, 101))
    xx, rr = np.meshgrid(frequencies, recencies)
    # A customer without repeat purchases has recency 0: the other cells of column 0 are
    # computed at recency 0 and masked by `_matrix`.
    grid = pd.DataFrame({"frequency": xx.ravel(), "recency": np.where(xx == 0, 0.0, rr).ravel(),
                         "T": float(max_recency)})
    return grid, frequencies, recencies


def _matrix(ax: Axes, values: np.ndarray, grid: pd.DataFrame, frequencies: np.ndarray,
            recencies: np.ndarray, title: str, label: str) -> Axes:
    values = np.array(values, dtype=np.float64).reshape(len(recencies), len(frequencies))
    values[1:, 0] = np.nan  # frequency 0 with recency > 0 cannot occur
    half = (recencies[1] - recencies[0]) / 2
    image = ax.imshow(values, aspect="auto", origin="lower", interpolation="nearest",
                      extent=(-0.5, frequencies[-1] + 0.5, -half, recencies[-1] + half))
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("frequency (repeat purchases)")
    ax.set_ylabel("recency (age at last purchase)")
    ax.set_title(title)
    return ax


def plot_frequency_recency(model: BetaGeoModel | ParetoNBDModel, ax: Axes | None = None,
                           max_frequency: int | None = None,
                           max_recency: float | None = None) -> Axes:
    """Plot expected purchases in the next period by frequency and recency.

    Each cell is a customer of age ``T = max_recency`` with the given frequency and
    recency; the best customers bought often and recently (top right).

    Parameters
    ----------
    model : BetaGeoModel or ParetoNBDModel
        Fitted purchase model.
    ax : Axes, optional
        Where to draw; a new figure without pyplot when omitted.
    max_frequency : int, optional
        Largest frequency shown. Default: the largest frequency the model was fitted on.
    max_recency : float, optional
        Largest recency shown, also the customers' age ``T``. Default: the largest
        ``T`` the model was fitted on.

    Returns
    -------
    Axes
        The plot.

    Examples
    --------
    >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793,
    ...                                   "b": 2.426})
    >>> plot_frequency_recency(model, max_frequency=20, max_recency=39).get_xlabel()
    'frequency (repeat purchases)'
    """
    grid, frequencies, recencies = _grid(model, max_frequency, max_recency)
    values = model.predict_purchases(1, grid).to_numpy()
    return _matrix(ax if ax is not None else new_axes(), values, grid, frequencies, recencies,
                   "Expected purchases in the next period", "expected purchases")


def plot_probability_alive_matrix(model: BetaGeoModel | ParetoNBDModel, ax: Axes | None = None,
                                  max_frequency: int | None = None,
                                  max_recency: float | None = None) -> Axes:
    """Plot the probability of being alive by frequency and recency.

    Parameters
    ----------
    model : BetaGeoModel or ParetoNBDModel
        Fitted purchase model.
    ax : Axes, optional
        Where to draw; a new figure without pyplot when omitted.
    max_frequency : int, optional
        Largest frequency shown. Default: the largest frequency the model was fitted on.
    max_recency : float, optional
        Largest recency shown, also the customers' age ``T``. Default: the largest
        ``T`` the model was fitted on.

    Returns
    -------
    Axes
        The plot.

    Examples
    --------
    >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793,
    ...                                   "b": 2.426})
    >>> plot_probability_alive_matrix(model, max_frequency=20, max_recency=39).get_title()
    'Probability of being alive'
    """
    grid, frequencies, recencies = _grid(model, max_frequency, max_recency)
    values = model.probability_alive(grid).to_numpy()
    return _matrix(ax if ax is not None else new_axes(), values, grid, frequencies, recencies,
                   "Probability of being alive", "P(alive)")


def plot_calibration_holdout(calibration_summary: pd.DataFrame, holdout: pd.DataFrame,
                             model: BetaGeoModel | ParetoNBDModel, ax: Axes | None = None, *,
                             max_frequency: int = 7, label: str = "BG/NBD") -> Axes:
    """Plot actual vs predicted mean holdout purchases by calibration frequency.

    Customers are grouped by calibration ``frequency`` (0, 1, ..., ``max_frequency``
    and more); for each group the mean actual holdout purchases are drawn against the
    mean of the model's conditional expectation over the holdout length.

    Parameters
    ----------
    calibration_summary : DataFrame
        ``customer_id``, ``frequency``, ``recency``, ``T`` of the calibration period.
    holdout : DataFrame
        ``customer_id``, ``frequency_holdout``, ``duration_holdout``, e.g. from
        `holdout_purchases`; a customer missing from it bought nothing.
    model : BetaGeoModel
        Fitted on ``calibration_summary``.
    ax : Axes, optional
        Where to draw; a new figure without pyplot when omitted.
    max_frequency : int, default=7
        Frequencies from this one up share the last group.
    label : str, default="BG/NBD"
        The model's name in the legend.

    Returns
    -------
    Axes
        The plot; the plotted means are in ``ax.lines[0]`` (actual) and
        ``ax.lines[1]`` (model), the table of
        :func:`~rfm_engine.measurement.clv.holdout.conditional_expectations`.

    Examples
    --------
    >>> import pandas as pd
    >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793,
    ...                                   "b": 2.426})
    >>> calibration = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [0, 2],
    ...                             "recency": [0.0, 30.0], "T": [38.0, 38.0]})
    >>> holdout = pd.DataFrame({"customer_id": ["b"], "frequency_holdout": [1],
    ...                         "duration_holdout": [39.0]})
    >>> plot_calibration_holdout(calibration, holdout, model).get_ylabel()
    'mean purchases in the holdout period'
    """
    table = conditional_expectations(calibration_summary, holdout, model,
                                     max_frequency=max_frequency)
    ax = ax if ax is not None else new_axes()
    positions = np.arange(len(table))
    ax.plot(positions, table["actual"].to_numpy(), marker="o", label="actual")
    ax.plot(positions, table["predicted"].to_numpy(), marker="s", linestyle="--",
            label=label)
    ax.set_xticks(positions, table["frequency"].tolist())
    ax.set_xlabel("purchases in the calibration period (frequency)")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title(f"Calibration vs holdout ({table.attrs['duration']:g} periods)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return ax
