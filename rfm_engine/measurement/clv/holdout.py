"""Holdout purchases: what calibration customers bought after the calibration period."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ...core.features import TIME_UNITS
from ...core.orders import grouped_lines_sql
from ...errors import ConfigError
from ...io._validation import as_date
from ...io.loading import Transactions
from ...io.sources import sql_literal

__all__ = ["holdout_purchases"]


def holdout_purchases(tx: Transactions, calibration_end: str | dt.date,
                      holdout_end: str | dt.date, time_unit: str = "D") -> pd.DataFrame:
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

    Returns
    -------
    DataFrame
        ``customer_id``, ``frequency_holdout`` (int), ``duration_holdout`` (length of the
        holdout period), sorted by ``customer_id``.

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
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"The 'time_unit' parameter must be one of {', '.join(TIME_UNITS)}. "
                          f"Got {time_unit!r} instead.")
    start, end = as_date(calibration_end, "calibration_end"), as_date(holdout_end, "holdout_end")
    if not start < end <= tx.as_of:
        raise ConfigError(f"Need calibration_end < holdout_end <= the transactions' as_of "
                          f"({tx.as_of}). Got {start} and {end} instead.")
    frame = tx.con.execute(f"""
        WITH days AS ({grouped_lines_sql("order_date")}
        ), purchases AS (SELECT * FROM days WHERE is_purchase)
        SELECT customer_id,
               count(*) FILTER (WHERE order_date > DATE {sql_literal(start.isoformat())})
                   AS frequency_holdout
        FROM purchases WHERE order_date <= DATE {sql_literal(end.isoformat())}
        GROUP BY customer_id
        HAVING min(order_date) <= DATE {sql_literal(start.isoformat())}
        ORDER BY customer_id
    """).df()
    frame["frequency_holdout"] = frame["frequency_holdout"].astype("int64")
    frame["duration_holdout"] = (end - start).days / TIME_UNITS[time_unit]
    return frame
