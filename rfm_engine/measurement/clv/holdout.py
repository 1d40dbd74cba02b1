"""Holdout purchases: what calibration customers bought after the calibration period."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ...core.features import TIME_UNITS
from ...core.orders import grouped_lines_sql
from ...errors import ConfigError, DataError
from ...io._validation import as_date, require_columns
from ...io.loading import Transactions
from ...io.sources import sql_literal
from .models import _SOURCE, _check_number, _frequency

__all__ = ["conditional_expectations", "holdout_purchases", "repeat_purchase_days"]


class _PurchaseModel(Protocol):
    def predict_purchases(self, t: float, summary: pd.DataFrame) -> pd.Series: ...


def holdout_purchases(tx: Transactions, calibration_end: str | dt.date,
                      holdout_end: str | dt.date, time_unit: str = "D", *,
                      spend: bool = False) -> pd.DataFrame:
    """Count each calibration customer's purchase days in ``(calibration_end, holdout_end]``.

    The holdout counterpart of :func:`rfm_engine.clv_summary`: purchases are merged per
    day and a day counts when it is a purchase (net amount above zero, or a free
    order), by the same grouping (:func:`~rfm_engine.core.orders.grouped_lines_sql`).
    Every customer with a purchase on or before ``calibration_end`` is listed, with 0
    when they bought nothing in the holdout.

    Parameters
    ----------
    tx : Transactions
        Loaded with ``as_of`` on or after ``holdout_end``.
    calibration_end : str or date
        Last day of the calibration period (the ``as_of`` of the calibration summary).
    holdout_end : str or date
        Last day of the holdout period.
    time_unit : {"D", "W", "M"}, default="D"
        Unit of ``duration_holdout``.
    spend : bool, default=False
        Add ``spend_holdout``: the net value of the holdout purchase days (the amounts
        the Gamma-Gamma model's ``monetary_value`` averages in the calibration period).

    Returns
    -------
    DataFrame
        ``customer_id``, ``frequency_holdout`` (int), ``duration_holdout`` (length of the
        holdout period), with ``spend`` also ``spend_holdout`` (float), sorted by
        ``customer_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"],
    ...                     "order_date": ["2024-01-01", "2024-01-20", "2024-01-25",
    ...                                    "2024-01-03", "2024-01-15"],
    ...                     "amount": [10.0, 20.0, 5.0, 8.0, 9.0]})
    >>> tx = load_transactions(raw, as_of="2024-01-28")
    >>> holdout_purchases(tx, "2024-01-07", "2024-01-28", time_unit="W")
      customer_id  frequency_holdout  duration_holdout
    0           a                  2               3.0
    1           b                  0               3.0
    """
    start, end = _period(tx, calibration_end, holdout_end, time_unit)
    after = f"order_date > DATE {sql_literal(start.isoformat())}"
    spent = (f", coalesce(sum(net) FILTER (WHERE {after}), 0)::DOUBLE AS spend_holdout"
             if spend else "")
    frame = tx.con.execute(f"""
        WITH days AS ({grouped_lines_sql("order_date")}
        ), purchases AS (SELECT * FROM days WHERE is_purchase)
        SELECT customer_id, count(*) FILTER (WHERE {after}) AS frequency_holdout{spent}
        FROM purchases WHERE order_date <= DATE {sql_literal(end.isoformat())}
        GROUP BY customer_id
        HAVING min(order_date) <= DATE {sql_literal(start.isoformat())}
        ORDER BY customer_id
    """).df()
    return holdout_frame(frame, start, end, time_unit)


def _period(tx: Any, calibration_end: str | dt.date, holdout_end: str | dt.date,
            time_unit: str = "D") -> tuple[dt.date, dt.date]:
    """Check the two dates against ``tx.as_of`` (and ``time_unit``); return them as dates."""
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    start, end = as_date(calibration_end, "calibration_end"), as_date(holdout_end, "holdout_end")
    if not start < end <= tx.as_of:
        raise ConfigError(f"Need calibration_end < holdout_end <= the transactions' as_of "
                          f"({tx.as_of}). Got {start} and {end} instead.")
    return start, end


def holdout_frame(frame: pd.DataFrame, start: dt.date, end: dt.date,
                  time_unit: str) -> pd.DataFrame:
    """End a holdout table computed by an engine: type the counts, add ``duration_holdout``.

    Shared by the engines (DuckDB here, Spark in ``rfm_engine.engines.spark``): ``frame``
    has ``customer_id``, ``frequency_holdout`` (and ``spend_holdout``).
    """
    frame["frequency_holdout"] = frame["frequency_holdout"].astype("int64")
    frame.insert(2, "duration_holdout", (end - start).days / TIME_UNITS[time_unit])
    return frame


def day_count_frames(firsts: pd.DataFrame,
                     repeats: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """End the two tables of `repeat_purchase_days` computed by an engine: dates, int counts."""
    for frame, column in ((firsts, "customers"), (repeats, "purchases")):
        frame["order_date"] = pd.to_datetime(frame["order_date"]).dt.date
        frame[column] = frame[column].astype("int64")
    return firsts, repeats


def repeat_purchase_days(tx: Transactions, calibration_end: str | dt.date,
                         holdout_end: str | dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Count, per day, the calibration customers' first purchases and repeat purchases.

    The data of a tracking plot: the customers of the calibration period (a purchase on
    or before ``calibration_end``) by the day of their first purchase, and their repeat
    purchase days (every purchase day after the first, as :func:`holdout_purchases` and
    :func:`rfm_engine.clv_summary` count them) up to ``holdout_end``, per day. Both are
    small: one row per calendar day at most.

    Parameters
    ----------
    tx : Transactions
        Loaded with ``as_of`` on or after ``holdout_end``.
    calibration_end, holdout_end : str or date
        As in :func:`holdout_purchases`.

    Returns
    -------
    tuple of DataFrame
        ``first_purchases`` (``order_date``, ``customers``) and ``repeat_purchases``
        (``order_date``, ``purchases``), sorted by ``order_date`` (dates as
        ``datetime.date``).

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine import load_transactions
    >>> raw = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c"],
    ...                     "order_date": ["2024-01-01", "2024-01-20", "2024-01-25",
    ...                                    "2024-01-01", "2024-01-15"],
    ...                     "amount": [10.0, 20.0, 5.0, 8.0, 9.0]})
    >>> tx = load_transactions(raw, as_of="2024-01-28")
    >>> firsts, repeats = repeat_purchase_days(tx, "2024-01-07", "2024-01-28")
    >>> firsts.to_dict("records")
    [{'order_date': datetime.date(2024, 1, 1), 'customers': 2}]
    >>> repeats["purchases"].tolist()
    [1, 1]
    """
    start, end = _period(tx, calibration_end, holdout_end)
    tx.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _tracking AS
        WITH days AS ({grouped_lines_sql("order_date")}
        ), purchases AS (
            SELECT customer_id, order_date FROM days
            WHERE is_purchase AND order_date <= DATE {sql_literal(end.isoformat())}
        ), firsts AS (
            SELECT customer_id, min(order_date) AS first_day FROM purchases
            GROUP BY customer_id HAVING min(order_date) <= DATE {sql_literal(start.isoformat())}
        )
        SELECT p.order_date, f.first_day FROM purchases p JOIN firsts f USING (customer_id)
    """)
    try:
        firsts = tx.con.execute(
            "SELECT first_day AS order_date, count(*) AS customers FROM _tracking "
            "WHERE order_date = first_day GROUP BY ALL ORDER BY 1").df()
        repeats = tx.con.execute(
            "SELECT order_date, count(*) AS purchases FROM _tracking "
            "WHERE order_date > first_day GROUP BY ALL ORDER BY 1").df()
    finally:
        tx.con.execute("DROP TABLE IF EXISTS _tracking")
    return day_count_frames(firsts, repeats)


def conditional_expectations(calibration_summary: pd.DataFrame, holdout: pd.DataFrame,
                             model: _PurchaseModel, *, max_frequency: int = 7) -> pd.DataFrame:
    """Compare actual and predicted mean holdout purchases by calibration frequency.

    Customers are grouped by calibration ``frequency`` (0, 1, ..., ``max_frequency``
    and more, as Fader, Hardie & Lee (2005) show it); for each group, the mean of the
    actual holdout purchases and the mean of the model's conditional expectation
    ``E[Y(t) | x, recency, T]`` over the holdout length ``t``.

    Parameters
    ----------
    calibration_summary : DataFrame
        ``customer_id``, ``frequency``, ``recency``, ``T`` of the calibration period.
    holdout : DataFrame
        ``customer_id``, ``frequency_holdout``, ``duration_holdout`` (one length shared
        by every customer, in the summary's time unit), e.g. from `holdout_purchases`; a
        customer missing from it bought nothing.
    model : fitted purchase model
        With ``predict_purchases(t, summary)`` (`BetaGeoModel`, the Pareto/NBD model).
    max_frequency : int, default=7
        Frequencies from this one up share the last group.

    Returns
    -------
    DataFrame
        ``frequency`` (group label: ``"0"``, ..., ``"7+"``), ``customers``, ``actual``,
        ``predicted``; the holdout length is in ``.attrs["duration"]``.

    Examples
    --------
    >>> import pandas as pd
    >>> from rfm_engine.measurement.clv import BetaGeoModel
    >>> model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793,
    ...                                   "b": 2.426})
    >>> calibration = pd.DataFrame({"customer_id": ["a", "b", "c"], "frequency": [0, 2, 0],
    ...                             "recency": [0.0, 30.43, 0.0], "T": [38.86] * 3})
    >>> holdout = pd.DataFrame({"customer_id": ["b", "c"], "frequency_holdout": [1, 1],
    ...                         "duration_holdout": [39.0, 39.0]})
    >>> conditional_expectations(calibration, holdout, model, max_frequency=2).round(3)
      frequency  customers  actual  predicted
    0         0          2     0.5      0.195
    1        2+          1     1.0      1.226
    """
    _check_number("max_frequency", max_frequency, low=1, integer=True)
    for frame, columns, name in (
        (calibration_summary, ("customer_id", "frequency", "recency", "T"), _SOURCE),
        (holdout, ("customer_id", "frequency_holdout", "duration_holdout"), "holdout purchases"),
    ):
        require_columns(frame, columns, name)
    duplicated = holdout["customer_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        raise DataError("holdout purchases", row + 1, "customer_id",
                        holdout["customer_id"].iloc[row], "one row per customer")
    durations = pd.unique(holdout["duration_holdout"])
    if len(durations) != 1:
        raise DataError("holdout purchases", None, "duration_holdout", list(durations),
                        "one holdout length shared by every customer")
    duration = float(durations[0])
    actual = (calibration_summary[["customer_id"]]
              .merge(holdout[["customer_id", "frequency_holdout"]], on="customer_id",
                     how="left", validate="one_to_one")["frequency_holdout"]
              .fillna(0).to_numpy(dtype=np.float64))
    predicted = model.predict_purchases(duration, calibration_summary).to_numpy()
    groups = np.minimum(_frequency(calibration_summary), max_frequency).astype(int)
    table = (pd.DataFrame({"group": groups, "actual": actual, "predicted": predicted})
             .groupby("group").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                   predicted=("predicted", "mean")))
    labels = [str(g) if g < max_frequency else f"{max_frequency}+" for g in table.index]
    table = table.reset_index(drop=True)
    table.insert(0, "frequency", labels)
    table["customers"] = table["customers"].astype("int64")
    table.attrs["duration"] = duration
    return table
