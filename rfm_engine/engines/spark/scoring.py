"""R, F and M scores on Spark: fit the quantile edges where the customers are, score as Columns.

:func:`fit_scorer` returns an ordinary :class:`~rfm_engine.core.scoring.RFMScorer` (saved,
frozen and tracked as any other), fitted by
:meth:`~rfm_engine.core.scoring.RFMScorer.fit_quantiles` from quantiles that Spark computes:

* ``exact=True`` (default): the edges of ``RFMScorer.fit`` on the collected table, bit for
  bit. Spark SQL's ``percentile`` uses the same positions as ``np.quantile(...,
  method="linear")`` (``(n - 1) * p``, linear between the two neighbours) but rounds the
  interpolation differently: with pyspark 4.3, 53 of 8,000 quintile edges of random
  4-decimal amounts differ in the last bit (the Hive formula of Spark 3,
  ``(hi - pos) * a + (pos - lo) * b``, would differ in 1,618), and a customer whose value
  equals such an edge would change score. So the exact path asks Spark for the order
  statistics themselves (``percentile_disc``, the same exact aggregate without
  interpolation: the value of rank ``ceil(n * p)``) and interpolates on the driver with
  ``np.quantile`` itself. Like ``percentile``, it holds each feature's distinct values
  in one task's memory at the end (Spark's documentation warns of this).
* ``exact=False``: ``percentile_approx`` (Greenwald-Khanna sketches merged across tasks;
  memory bounded by ``accuracy``): each edge is a value of the data whose rank is within
  ``n / accuracy`` of the exact rank (Spark's documented accuracy, "1.0/accuracy is the
  relative error"), with no interpolation. README "Scoring on Spark" gives the measured
  share of customers whose score changes.

:func:`score_columns` applies a fitted scorer (fitted here or frozen) as Column expressions:
the Spark side only finds, per feature, which interval between the scorer's distinct edges
a value lies in; every score of every interval combination is computed once on the driver
by :func:`rfm_engine.core.pipeline.score_customers` (so the scoring rule, ``rfm_cell``,
``fm_score`` and ``rfm_score`` have their one definition there) and looked up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...core.pipeline import RFM_FEATURES, score_customers
from ...core.scoring import RFMScorer
from ...errors import DataError, EmptyResultError
from ...io._validation import require_columns
from ...progress import step

__all__ = ["DEFAULT_ACCURACY", "SCORE_COLUMNS", "ScoreGrid", "fit_scorer", "score_columns",
           "score_grid", "with_scores"]

#: ``percentile_approx``'s default accuracy (Spark's): rank error at most n / accuracy.
DEFAULT_ACCURACY = 10000
#: The columns :func:`~rfm_engine.core.pipeline.score_customers` appends, in order.
SCORE_COLUMNS = ("r_score", "f_score", "m_score", "rfm_cell", "fm_score", "rfm_score")
_CUSTOMERS = "customer table"
_LEGACY_DISC = "spark.sql.legacy.percentileDiscCalculation"


def fit_scorer(customers: DataFrame, *, n_bins: int = 5,
               edges: Mapping[str, Sequence[float]] | None = None, exact: bool = True,
               accuracy: int = DEFAULT_ACCURACY) -> RFMScorer:
    """Fit an :class:`~rfm_engine.core.scoring.RFMScorer` on a Spark customer table.

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        The customer table (``recency_days``, ``frequency``, ``monetary``), e.g. from
        :func:`~rfm_engine.engines.spark.customer_frame_spark`; persist it, it is read
        twice (the count, then the quantiles).
    n_bins, edges
        As :class:`~rfm_engine.core.scoring.RFMScorer`.
    exact : bool, default=True
        Exact quantiles, the edges ``RFMScorer.fit`` gives on the collected table; False:
        ``percentile_approx`` (see the module docstring).
    accuracy : int, default=10000
        ``percentile_approx``'s accuracy when ``exact`` is False.

    Returns
    -------
    RFMScorer
        Fitted on the features ``recency_days, frequency, monetary``.

    Warns
    -----
    BinsCollapsedWarning
        As ``RFMScorer.fit``: tied values made quantile edges coincide.

    Raises
    ------
    MissingColumnsError
        A feature column is missing.
    DataError
        A feature value is missing or not finite.
    EmptyResultError
        No customer.
    """
    require_columns(customers, RFM_FEATURES, _CUSTOMERS)
    quantiles = _SparkQuantiles(customers, exact=exact, accuracy=accuracy)
    return RFMScorer(n_bins, edges=edges).fit_quantiles(RFM_FEATURES, quantiles)


class _SparkQuantiles:
    """The quantile function of :meth:`RFMScorer.fit_quantiles`, computed on first call.

    The first call computes the quantiles of every feature, of ``x`` and of ``-x``, at the
    levels asked: one Spark job (two when exact: the count first).
    """

    def __init__(self, customers: DataFrame, *, exact: bool, accuracy: int) -> None:
        self.customers, self.exact, self.accuracy = customers, exact, accuracy
        self.values: dict[tuple[int, bool], np.ndarray] | None = None

    def __call__(self, j: int, levels: np.ndarray, negated: bool) -> np.ndarray:
        if self.values is None:
            with step("fitting score edges (spark)"):
                self.values = (self._exact(levels) if self.exact
                               else self._approximate(levels))
        return self.values[j, negated]

    def _exact(self, levels: np.ndarray) -> dict[tuple[int, bool], np.ndarray]:
        n = _checked_count(self.customers)
        # np.quantile's linear method: position (n - 1) * p, its floor and the next rank.
        positions = (n - 1) * levels
        low = np.floor(positions).astype(np.int64)
        high = np.minimum(low + 1, n - 1)
        ranks = sorted({int(k) for k in (*low, *high, *(n - 1 - low), *(n - 1 - high))})
        legacy = self.customers.sparkSession.conf.get(_LEGACY_DISC, "false") == "true"
        chosen = ", ".join(repr(_disc_level(k, n, legacy=legacy)) for k in ranks)
        row = self.customers.select(*(
            F.expr(f"percentile_disc(array({chosen})) WITHIN GROUP (ORDER BY `{c}`)")
            for c in RFM_FEATURES)).first()
        values = {}
        for j in range(len(RFM_FEATURES)):
            stat = dict(zip(ranks, row[j], strict=True))  # stat[k]: the k-th smallest value
            for negated in (False, True):
                # The k-th smallest of -x is -(the (n-1-k)-th smallest of x).
                def order(k: int, negated: bool = negated, stat: dict = stat) -> float:
                    return -stat[n - 1 - k] if negated else stat[k]

                values[j, negated] = np.array([
                    _interpolate(order(lo), order(hi), p - lo)
                    for lo, hi, p in zip(low.tolist(), high.tolist(), positions.tolist(),
                                         strict=True)])
        return values

    def _approximate(self, levels: np.ndarray) -> dict[tuple[int, bool], np.ndarray]:
        _checked_count(self.customers)
        percentages = F.lit(np.asarray(levels, dtype=np.float64))
        aggregates = [F.percentile_approx(sign * F.col(c).cast("double"), percentages,
                                          self.accuracy)
                      for c in RFM_FEATURES for sign in (1, -1)]
        row = self.customers.select(*aggregates).first()
        return {(j, negated): np.asarray(row[2 * j + negated], dtype=np.float64)
                for j in range(len(RFM_FEATURES)) for negated in (False, True)}


def _checked_count(customers: DataFrame) -> int:
    """Count the customers; refuse a missing or non-finite feature value, or no customer."""
    bad = [F.count_if(F.col(c).isNull() | F.isnan(c) | (F.abs(c) == math.inf))
           for c in RFM_FEATURES]
    n, *bad_counts = customers.select(F.count(F.lit(1)), *bad).first()
    if not n:
        raise EmptyResultError(f"{_CUSTOMERS}: no customer to fit the scorer on.")
    for c, count in zip(RFM_FEATURES, bad_counts, strict=True):
        if count:
            value = customers.filter(F.col(c).isNull() | F.isnan(c) | (F.abs(c) == math.inf)
                                     ).select(c).first()[0]
            raise DataError(_CUSTOMERS, None, c, value, "a finite number",
                            hint=f"{count} row(s) affected.")
    return int(n)


def _disc_level(k: int, n: int, *, legacy: bool) -> float:
    """Return a percentage at which ``percentile_disc`` gives the k-th smallest of n (0-based).

    Spark's ``percentile_disc(p)`` is the value of 1-based rank ``ceil(n * p)`` (the SQL
    standard); ``(k + 0.5) / n`` lands half a rank away from either side. Under
    ``spark.sql.legacy.percentileDiscCalculation`` it is the 0-based rank
    ``floor((n - 1) * p)``.
    """
    if legacy:
        return 1.0 if k >= n - 1 else (k + 0.5) / (n - 1)
    return (k + 0.5) / n


def _interpolate(a: float, b: float, gamma: float) -> float:
    """``np.quantile``'s linear interpolation between neighbours ``a <= b``, by numpy itself.

    For ``x`` sorted, ``np.quantile(x, p)`` is ``_lerp(x[lo], x[lo + 1], pos - lo)`` with
    ``pos = (n - 1) * p``; on the two values ``[a, b]`` at level ``gamma`` the position is
    ``gamma`` itself, so this is the same expression on the same numbers.
    """
    return float(np.quantile(np.array([a, b], dtype=np.float64), gamma, method="linear"))


# --- applying a fitted scorer -------------------------------------------------------------

@dataclass(frozen=True)
class ScoreGrid:
    """Every score a fitted scorer can give, by interval of each feature.

    Attributes
    ----------
    edges : tuple of ndarray
        The distinct edges of R, F and M. With ``k`` of them, a feature's values fall in
        ``2k + 1`` intervals: below the first edge (0), at it (1), between the first two
        (2), ..., above the last (2k).
    table : DataFrame
        :func:`~rfm_engine.core.pipeline.score_customers` of one representative customer
        per combination of intervals, row ``(i_r * K_f + i_f) * K_m + i_m``.
    """

    edges: tuple[np.ndarray, ...]
    table: pd.DataFrame

    def key(self) -> Column:
        """Return each customer's table row (an int Column over the R, F, M features)."""
        key: Column = F.lit(0)
        for feature, edges in zip(RFM_FEATURES, self.edges, strict=True):
            value = F.col(feature).cast("double")
            interval = F.lit(0)
            for edge in edges.tolist():
                interval = interval + F.when(value > edge, 2).when(value == edge, 1).otherwise(0)
            key = key * (2 * len(edges) + 1) + interval
        return key

    def lookup(self, column: str, key: Column) -> Column:
        """Return the table's ``column`` at row ``key`` (a literal array, indexed)."""
        values = self.table[column].to_numpy()
        values = values.astype(str) if column == "rfm_cell" else values.astype(np.int64)
        return F.element_at(F.lit(values), key + 1)

    def mask(self, mask: np.ndarray, key: Column) -> Column:
        """Return a boolean per table row (as from ``Rule.score_mask``) at row ``key``."""
        return F.element_at(F.lit(np.asarray(mask, dtype=bool)), key + 1)


def score_grid(scorer: RFMScorer) -> ScoreGrid:
    """Score one representative customer per combination of feature intervals.

    Parameters
    ----------
    scorer : RFMScorer
        Fitted on ``recency_days, frequency, monetary``.

    Returns
    -------
    ScoreGrid
    """
    names = [str(n) for n in getattr(scorer, "feature_names_in_", RFM_FEATURES)]
    edges = tuple(np.unique(scorer.bin_edges_[names.index(f)]) for f in RFM_FEATURES)
    axes = [_representatives(e) for e in edges]
    grid = np.meshgrid(*axes, indexing="ij")  # C order: row = (i_r * K_f + i_f) * K_m + i_m
    probes = pd.DataFrame({f: g.ravel() for f, g in zip(RFM_FEATURES, grid, strict=True)})
    table = score_customers(probes, scorer)[list(SCORE_COLUMNS)]
    return ScoreGrid(edges, table)


def _representatives(edges: np.ndarray) -> np.ndarray:
    """One value in each interval the distinct ``edges`` cut the line into, in order."""
    values = [np.nextafter(edges[0], -np.inf)]
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        values += [left, left / 2 + right / 2]  # empty when left, right are adjacent floats
    values += [edges[-1], np.nextafter(edges[-1], np.inf)]
    return np.asarray(values, dtype=np.float64)


def score_columns(scorer: RFMScorer, grid: ScoreGrid | None = None) -> dict[str, Column]:
    """Return the score columns of a fitted scorer as Spark Column expressions.

    Parameters
    ----------
    scorer : RFMScorer
        Fitted on ``recency_days, frequency, monetary`` (here, by ``RFMScorer.fit`` or
        frozen: :func:`~rfm_engine.core.scoring.load_scorer`).
    grid : ScoreGrid, optional
        ``score_grid(scorer)``, when already made.

    Returns
    -------
    dict of str to Column
        ``r_score, f_score, m_score`` (bigint), ``rfm_cell`` (string, e.g. ``"545"``),
        ``fm_score, rfm_score`` (bigint): the values of
        :func:`~rfm_engine.core.pipeline.score_customers`.
    """
    grid = grid or score_grid(scorer)
    key = grid.key()
    return {c: grid.lookup(c, key).alias(c) for c in SCORE_COLUMNS}


def with_scores(customers: DataFrame, scorer: RFMScorer, *,
                extra: Callable[[ScoreGrid, Column], Mapping[str, Column]] | None = None
                ) -> DataFrame:
    """Return ``customers`` with the score columns appended (Spark, lazily).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        The customer table (at least ``recency_days``, ``frequency``, ``monetary``).
    scorer : RFMScorer
        A fitted scorer.
    extra : callable, optional
        ``extra(grid, key)`` gives more columns computed from the score grid and each
        customer's row of it (the segment: :func:`~rfm_engine.engines.spark.score_segments`).

    Returns
    -------
    pyspark.sql.DataFrame
        The columns of :func:`~rfm_engine.core.pipeline.score_customers`, then ``extra``'s.
    """
    require_columns(customers, RFM_FEATURES, _CUSTOMERS)
    grid = score_grid(scorer)
    keyed = customers.withColumn("_rfm_key", grid.key())
    key = F.col("_rfm_key")
    columns = {c: grid.lookup(c, key) for c in SCORE_COLUMNS}
    columns.update(extra(grid, key) if extra else {})
    return keyed.select(*customers.columns, *(col.alias(name) for name, col in columns.items()))
