"""Segments on Spark: a rule set compiled to one Column, and the segment table.

:func:`segment_column` turns a :class:`~rfm_engine.core.segments.RuleSet` into one ``when``
chain, in rule order (the first rule that matches wins, the default otherwise). Each rule's
score ranges and cell patterns are evaluated by the rule itself
(:meth:`~rfm_engine.core.segments.Rule.score_mask`) on every row of the scorer's
:class:`~rfm_engine.engines.spark.scoring.ScoreGrid`, and looked up per customer; its raw
feature bounds (inclusive, a missing or NaN value never satisfies one, as
:meth:`~rfm_engine.core.segments.Rule.bounds_mask`) become comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...core.features import arrow_frame
from ...core.pipeline import (
    RFM_FEATURES,
    Segmentation,
    finish_summary,
    fit_recording,
    money_parts,
    segmentation_notes,
)
from ...core.scoring import RFMScorer
from ...core.segments import SCORE_KEYS, Rule, RuleSet, load_rules
from ...io._validation import require_columns
from ...progress import step
from .features import arrow_customers
from .scoring import DEFAULT_ACCURACY, ScoreGrid, fit_scorer, with_scores
from .session import pandas_conversion

__all__ = ["SparkSegmentation", "group_sums", "score_segments", "segment_column",
           "segment_customers", "segment_summary"]

_CUSTOMERS = "customer table"


def segment_column(rule_set: RuleSet, grid: ScoreGrid, key: Column) -> Column:
    """Compile ``rule_set`` to one Column: the segment of the first rule that matches.

    Parameters
    ----------
    rule_set : RuleSet
        The rules, in matching order.
    grid : ScoreGrid
        The scorer's grid (:func:`~rfm_engine.engines.spark.scoring.score_grid`).
    key : Column
        Each customer's row of the grid (:meth:`ScoreGrid.key`).

    Returns
    -------
    Column
        A string: the segment, as :meth:`RuleSet.assign` gives it.
    """
    arrays = {c: grid.table[c].to_numpy(dtype="float64") for c in SCORE_KEYS.values()}
    chain = None
    for rule in rule_set.rules:
        in_cell = rule.score_mask(arrays)
        if not in_cell.any():
            continue  # no score combination satisfies it: the rule never matches
        condition = _bounds(rule)
        if not in_cell.all():
            score_condition = grid.mask(in_cell, key)
            condition = score_condition if condition is None else score_condition & condition
        everyone = condition is None
        condition = F.lit(True) if everyone else condition
        chain = (F.when(condition, F.lit(rule.segment)) if chain is None
                 else chain.when(condition, F.lit(rule.segment)))
        if everyone:  # the rules after it never apply
            break
    default = F.lit(rule_set.default)
    return default if chain is None else chain.otherwise(default)


def _bounds(rule: Rule) -> Column | None:
    """Return the rule's raw feature bounds as a Column, or None when it has none."""
    condition = None
    for feature, (low, high) in rule.bounds.items():
        value = F.col(feature).cast("double")
        # NULL fails a comparison; NaN passes Spark's (NaN sorts above every number).
        held = ~F.isnan(value)
        if low is not None:
            held = held & (value >= float(low))
        if high is not None:
            held = held & (value <= float(high))
        condition = held if condition is None else condition & held
    return condition


def score_segments(customers: DataFrame, scorer: RFMScorer, rule_set: RuleSet) -> DataFrame:
    """Score and segment a Spark customer table with Column expressions (no collect, no UDF).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        The customer table (``recency_days, frequency, monetary`` and the raw features
        the rules bound).
    scorer : RFMScorer
        A fitted (or frozen) scorer.
    rule_set : RuleSet
        The rules naming the segments.

    Returns
    -------
    pyspark.sql.DataFrame
        ``customers`` plus ``r_score, f_score, m_score, rfm_cell, fm_score, rfm_score,
        segment``: the values of :func:`rfm_engine.core.pipeline.segment_customers`.

    Raises
    ------
    MissingColumnsError
        A feature the scorer or the rules read is missing.
    """
    bounded = [f for rule in rule_set.rules for f in rule.bounds]
    require_columns(customers, list(dict.fromkeys([*RFM_FEATURES, *bounded])), _CUSTOMERS)
    return with_scores(customers, scorer, extra=lambda grid, key: {
        "segment": segment_column(rule_set, grid, key)})


def segment_summary(customers: DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Return the segment table of :func:`rfm_engine.core.pipeline.segment_summary` from Spark.

    One aggregation on Spark per segment and binary exponent of ``monetary``, collected (a
    few rows per segment) and finished by :func:`~rfm_engine.core.pipeline.finish_summary`.
    The same values as the pandas table, bit for bit: ``monetary`` is split exactly by
    :func:`~rfm_engine.core.pipeline.money_parts` (in a pandas UDF) into integers Spark adds
    without loss, and the revenue rounded once on the driver; the means of the integer
    ``recency_days`` and ``frequency`` are integer sums divided once. Without ``order``,
    segments come in the order of their first customer by ``customer_id`` (the pandas
    order on the customer table, which is sorted by id).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        Scored customers with a ``segment`` column.
    order : sequence of str, optional
        Segment order (segments without customers are listed with zeros).

    Returns
    -------
    pandas.DataFrame
    """
    require_columns(customers, ["customer_id", "segment", *RFM_FEATURES], _CUSTOMERS)
    with step("summarising segments (spark)"):
        table, money = group_sums(customers, "segment",
                                  F.min("customer_id").alias("_first"))
    table = table.sort_values("_first", kind="stable").drop(columns="_first")
    return finish_summary(table, money, order)


def group_sums(customers: DataFrame, key: str, *extra: Column
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate the customers per ``key`` for a summary table, exactly (one Spark job).

    One aggregation per key and binary exponent of ``monetary`` (split by
    :func:`~rfm_engine.core.pipeline.money_parts` in a pandas UDF): customers, the sums and
    counts of ``recency_days`` and ``frequency``, the money parts, and ``extra``
    aggregates (collected: a few rows per key).

    Returns
    -------
    tuple of DataFrame
        Per key (the index, in Spark's order): ``customers``, ``mean_recency_days``,
        ``mean_frequency`` (integer sums divided once, as pandas' means of integers) and the
        ``extra`` columns (min over the rows); and the money parts per key and exponent for
        :func:`~rfm_engine.core.pipeline.money_totals`.
    """
    with pandas_conversion():
        parts = _money_parts(F.col("monetary").cast("double"))
        rows = customers.groupBy(key, parts["exponent"].alias("exponent")).agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum("recency_days").alias("recency_sum"),
            F.count("recency_days").alias("recency_n"),
            F.sum("frequency").alias("frequency_sum"),
            F.count("frequency").alias("frequency_n"),
            F.sum(parts["high"]).alias("high"), F.sum(parts["low"]).alias("low"),
            F.sum(parts["n"]).alias("n"), *extra,
        ).toPandas()
    grouped = rows.groupby(key, sort=False)
    extras = [c for c in rows.columns if c not in (
        key, "exponent", "customers", "recency_sum", "recency_n", "frequency_sum",
        "frequency_n", "high", "low", "n")]
    table = pd.DataFrame({"customers": grouped["customers"].sum().astype("int64")})
    for name, column in (("recency", "mean_recency_days"), ("frequency", "mean_frequency")):
        sums = grouped[f"{name}_sum"].agg(lambda v: sum(v.dropna().tolist()))
        counts = grouped[f"{name}_n"].sum()
        table[column] = [sums[k] / int(counts[k]) if counts[k] else float("nan")
                         for k in table.index]
    for column in extras:
        table[column] = grouped[column].min()
    return table, rows[[key, "exponent", "high", "low", "n"]]


def _money_parts(value: Column) -> Column:
    """:func:`~rfm_engine.core.pipeline.money_parts` of a double Column, as a struct."""
    def split(values: pd.Series) -> pd.DataFrame:
        return money_parts(values).reset_index(drop=True)

    with pandas_conversion():
        udf = F.pandas_udf(split, "exponent long, high long, low long, n long")  # type: ignore[call-overload]
        return udf(value)


@dataclass
class SparkSegmentation(Segmentation):
    """A :class:`~rfm_engine.core.pipeline.Segmentation` whose customers are on Spark.

    Attributes
    ----------
    customers : pyspark.sql.DataFrame
        The customer table plus the score columns and ``segment`` (lazy).
    scorer, rules, warnings
        As :class:`~rfm_engine.core.pipeline.Segmentation`.
    segment_table : pandas.DataFrame
        :func:`segment_summary` (also :attr:`summary`).
    """

    segment_table: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def summary(self) -> pd.DataFrame:  # type: ignore[override]
        """The per-segment table, aggregated on Spark; see :func:`segment_summary`."""
        return self.segment_table

    def collect(self) -> Segmentation:
        """Collect the customers to the driver: the pandas Segmentation, sorted by id.

        The same table as :func:`rfm_engine.core.pipeline.segment_customers` (columns,
        types, order); its ``summary`` is the one Spark aggregated (the same values as
        pandas', not computed again).
        """
        with step("collecting segmented customers (spark)"), pandas_conversion():
            arrow = self.customers.toArrow()
        collected = Segmentation(arrow_frame(arrow_customers(arrow)), self.scorer, self.rules,
                                 list(self.warnings))
        collected.__dict__["summary"] = self.segment_table  # the cached property, computed
        return collected


def segment_customers(
    customers: DataFrame,
    *,
    rules: str | RuleSet = "rf-grid",
    n_bins: int = 5,
    edges: Mapping[str, Sequence[float]] | None = None,
    scorer: RFMScorer | None = None,
    exact: bool = True,
    accuracy: int = DEFAULT_ACCURACY,
) -> SparkSegmentation:
    """Score a Spark customer table and give each customer one segment, on Spark.

    :func:`rfm_engine.core.pipeline.segment_customers` on Spark: the scorer is fitted with
    :func:`~rfm_engine.engines.spark.fit_scorer` (unless a frozen one is given), the
    customers are scored and segmented by :func:`score_segments`, and the warnings are the
    same words (collapsed bins, a rule set written for another scale, customers that fell
    to the default segment), counted by the one aggregation of :func:`segment_summary`.

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        The customer table, e.g. :func:`~rfm_engine.engines.spark.customer_frame_spark`.
    rules, n_bins, edges, scorer
        As :func:`rfm_engine.core.pipeline.segment_customers`.
    exact, accuracy
        As :func:`~rfm_engine.engines.spark.fit_scorer`.

    Returns
    -------
    SparkSegmentation
    """
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    messages: list[str] = []
    if scorer is None:
        scorer = fit_recording(lambda: fit_scorer(customers, n_bins=n_bins, edges=edges,
                                                  exact=exact, accuracy=accuracy), messages)
    scored = score_segments(customers, scorer, rule_set)
    summary = segment_summary(scored, order=rule_set.segments)
    unmatched = summary.loc[summary["segment"] == rule_set.default, "customers"].sum()
    messages += segmentation_notes(scorer, rule_set, int(unmatched))
    return SparkSegmentation(scored, scorer, rule_set, messages, summary)

