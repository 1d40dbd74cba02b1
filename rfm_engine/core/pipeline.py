"""Customer table to scores to segments, and the segment summary marketers read."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .scoring import RFMScorer
from .segments import RuleSet, load_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pandas.api.extensions import ExtensionArray

__all__ = ["MONEY_PARTS", "RFM_FEATURES", "Segmentation", "finish_summary", "fit_recording",
           "money_by", "money_parts", "money_sum", "money_totals", "score_customers",
           "segment_customers", "segment_summary", "segmentation_notes", "with_money"]

#: The customer-table columns the scorer reads, in order.
RFM_FEATURES = ["recency_days", "frequency", "monetary"]


def score_customers(customers: pd.DataFrame, scorer: RFMScorer) -> pd.DataFrame:
    """Return a copy of ``customers`` with the fitted scorer's score columns appended.

    ``rfm_cell`` is written as text (``"545"``), the way rule patterns read it.

    Parameters
    ----------
    customers : DataFrame
        The customer table (at least ``recency_days``, ``frequency``, ``monetary``).
    scorer : RFMScorer
        A fitted scorer.

    Returns
    -------
    DataFrame
    """
    # transform returns a new array, so the frame can wrap it without a copy.
    scores = pd.DataFrame(scorer.transform(customers[RFM_FEATURES]),
                          columns=scorer.get_feature_names_out(), index=customers.index,
                          copy=False)
    scores["rfm_cell"] = _cell_text().take(scores["rfm_cell"].to_numpy())
    return pd.concat([customers, scores], axis=1)


@cache
def _cell_text() -> ExtensionArray:
    """``str(cell)`` for every integer cell 0..999, as ``astype(str)`` writes it."""
    return pd.array([str(cell) for cell in range(1000)], dtype="str")


@dataclass
class Segmentation:
    """Customers with scores and segments, with the scorer and rules that made them.

    Attributes
    ----------
    customers : DataFrame
        The customer table plus ``r_score, f_score, m_score, rfm_cell, fm_score,
        rfm_score, segment``.
    scorer : RFMScorer
        The fitted (or frozen) scorer.
    rules : RuleSet
        The rule set that named the segments.
    warnings : list of str
        Messages worth showing (such as collapsed bins).
    """

    customers: pd.DataFrame
    scorer: RFMScorer
    rules: RuleSet
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """The per-segment table; see :func:`segment_summary`."""
        return segment_summary(self.customers, order=self.rules.segments)

    def effective_bins(self) -> dict[str, list[int]]:
        """Scores each dimension can actually take (ties can collapse bins)."""
        return {name: [int(s) for s in scores] for name, scores in
                zip(self.scorer.feature_names_in_, self.scorer.scores_, strict=True)}


def segment_customers(
    customers: pd.DataFrame,
    *,
    rules: str | RuleSet = "rf-grid",
    n_bins: int = 5,
    edges: Mapping[str, Sequence[float]] | None = None,
    scorer: RFMScorer | None = None,
) -> Segmentation:
    """Score customers and assign each one segment.

    Parameters
    ----------
    customers : DataFrame
        The customer table from :func:`rfm_engine.customer_features` (not modified).
    rules : str or RuleSet, default="rf-grid"
        A built-in rule set name, a TOML file path or a :class:`RuleSet`.
    n_bins : int, default=5
        Score levels when a new scorer is fitted.
    edges : Mapping, optional
        Fixed bin edges per feature for a new scorer.
    scorer : RFMScorer, optional
        A fitted (frozen) scorer to apply as is; ``n_bins`` and ``edges`` are then
        ignored.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> import pandas as pd
    >>> customers = pd.DataFrame({"customer_id": list("abcde"),
    ...                           "recency_days": [1, 10, 100, 200, 300],
    ...                           "frequency": [9, 5, 3, 2, 1],
    ...                           "monetary": [900.0, 300.0, 50.0, 20.0, 10.0]})
    >>> segment_customers(customers).customers.segment.tolist()
    ['champions', 'loyal_customers', 'need_attention', 'hibernating', 'hibernating']
    """
    rule_set = rules if isinstance(rules, RuleSet) else load_rules(rules)
    messages: list[str] = []
    if scorer is None:
        scorer = fit_recording(lambda: RFMScorer(n_bins, edges=edges).fit(customers[RFM_FEATURES]),
                               messages)
    scored = score_customers(customers, scorer)
    scored["segment"] = rule_set.assign(scored)
    unmatched = int((scored["segment"] == rule_set.default).sum())
    messages += segmentation_notes(scorer, rule_set, unmatched)
    return Segmentation(scored, scorer, rule_set, messages)


def fit_recording(fit: Callable[[], RFMScorer], messages: list[str]) -> RFMScorer:
    """Run ``fit`` and append its warnings (collapsed bins) to ``messages``, as words.

    The one way every engine fits a scorer for :func:`segment_customers`: the fit's
    warnings become :attr:`Segmentation.warnings`, shown once, never raw.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorer = fit()
    messages += [str(w.message) for w in caught]
    return scorer


def segmentation_notes(scorer: RFMScorer, rule_set: RuleSet, unmatched: int) -> list[str]:
    """Messages on a segmentation: a rule set written for another scale, unmatched customers.

    Parameters
    ----------
    scorer : RFMScorer
        The fitted scorer.
    rule_set : RuleSet
        The rules that named the segments.
    unmatched : int
        Customers given the rule set's default segment.

    Returns
    -------
    list of str
    """
    notes = []
    top = int(max(scorer.max_score_))
    if top != rule_set.n_bins:
        notes.append(f"rule set {rule_set.name!r} was written for scores 1..{rule_set.n_bins} "
                     f"but the scorer gives 1..{top}; check it with "
                     f"'rfm-engine segments lint {rule_set.name} --bins {top}'.")
    if unmatched and rule_set.default not in [r.segment for r in rule_set.rules]:
        notes.append(f"{unmatched:,} customers matched no rule of {rule_set.name!r} and "
                     f"fell to {rule_set.default!r}.")
    return notes


def segment_summary(customers: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Summarise segments: size, share, revenue, revenue share and mean R, F, M.

    Revenue is the exact sum of ``monetary``, rounded once (:func:`money_sum`): the same
    value whatever the order of addition, so every engine gives the same bytes.

    Parameters
    ----------
    customers : DataFrame
        Scored customers with a ``segment`` column.
    order : sequence of str, optional
        Segment order (segments without customers are listed with zeros).

    Returns
    -------
    DataFrame
        ``segment, customers, share, revenue, revenue_share, mean_recency_days,
        mean_frequency, mean_monetary``.
    """
    grouped = customers.groupby("segment", sort=False, observed=True)
    table = pd.DataFrame({
        "customers": grouped.size(),
        "mean_recency_days": grouped["recency_days"].mean(),
        "mean_frequency": grouped["frequency"].mean(),
    })
    return finish_summary(table, money_by(customers["segment"], customers["monetary"]), order)


#: Columns of :func:`money_parts`: ``value = (high * 2**26 + low) * 2**exponent``, ``n``
#: 1 for a value (0 for a missing one).
MONEY_PARTS = ("exponent", "high", "low", "n")
_LOW_BITS = 26
_INFINITE = 1 << 20  # the exponent of an infinite value (high: its sign)


def money_parts(values: pd.Series | np.ndarray) -> pd.DataFrame:
    """Split each float exactly into small integers, so sums of them are exact.

    ``value = (high * 2**26 + low) * 2**exponent`` (``low`` in ``0 .. 2**26 - 1``): summing
    ``high`` and ``low`` per ``exponent`` (any grouping, on any engine, in any order) loses
    nothing below 2**37 values, and :func:`money_sum` rounds the total once.

    Parameters
    ----------
    values : Series or ndarray
        Floats; NaN (missing) counts nothing (``n`` 0), as pandas' sum skips it.

    Returns
    -------
    DataFrame
        :data:`MONEY_PARTS`, int64, one row per value (the index of ``values``).
    """
    index = values.index if isinstance(values, pd.Series) else None
    x = (values.to_numpy(dtype="float64", na_value=np.nan) if isinstance(values, pd.Series)
         else np.asarray(values, dtype="float64"))
    finite = np.isfinite(x)
    mantissa, exponent = np.frexp(np.where(finite, x, 0.0))
    whole = (mantissa * 2.0**53).astype("int64")  # exact: 53 bits
    high = np.right_shift(whole, _LOW_BITS)
    low = np.bitwise_and(whole, (1 << _LOW_BITS) - 1)
    infinite = np.isinf(x)
    return pd.DataFrame({
        "exponent": np.where(infinite, _INFINITE, exponent.astype("int64") - 53),
        "high": np.where(infinite, np.where(x > 0, 1, -1), high).astype("int64"),
        "low": low.astype("int64"),
        "n": (~np.isnan(x)).astype("int64"),
    }, index=index)


def money_by(keys: pd.Series, values: pd.Series) -> pd.DataFrame:
    """Return the sums of :func:`money_parts` of ``values`` per key and exponent.

    Parameters
    ----------
    keys : Series
        The group of each value (a segment, a cluster), named.
    values : Series
        The amounts, aligned with ``keys``.

    Returns
    -------
    DataFrame
        ``<keys.name>, exponent, high, low, n``; :func:`money_totals` finishes it.
    """
    parts = money_parts(values).assign(**{str(keys.name): keys})
    return parts.groupby([str(keys.name), "exponent"], sort=False, observed=True)[
        ["high", "low", "n"]].sum().reset_index()


def money_totals(money: pd.DataFrame, key: str
                 ) -> tuple[dict[object, float], dict[object, int], float]:
    """Return the exact sum and the count of values per key, and the exact total.

    Parameters
    ----------
    money : DataFrame
        ``key, exponent, high, low, n``: :func:`money_by`, or the same sums from another
        engine (any grouping finer than the key).
    key : str
        The key column.

    Returns
    -------
    tuple
        Key to its sum (rounded once), key to its count of values, and the total of all
        (rounded once: not the sum of the rounded sums).
    """
    sums = {k: money_sum(rows) for k, rows in money.groupby(key, sort=False, observed=True)}
    counts = {k: int(n) for k, n in
              money.groupby(key, sort=False, observed=True)["n"].sum().items()}
    total = money_sum(money.groupby("exponent")[["high", "low"]].sum().reset_index())
    return sums, counts, total


def money_sum(parts: pd.DataFrame) -> float:
    """Return the exact sum of values split by :func:`money_parts`, correctly rounded.

    Parameters
    ----------
    parts : DataFrame
        ``exponent, high, low``: rows of :func:`money_parts`, or sums of them per exponent.

    Returns
    -------
    float
        0.0 without values; inf/-inf/NaN as IEEE addition gives them with infinite values.
    """
    total, signs, base = 0, set(), None
    rows = list(zip(parts["exponent"].tolist(), parts["high"].tolist(), parts["low"].tolist(),
                    strict=True))
    for exponent, high, low in rows:
        if exponent == _INFINITE:
            signs |= {1 if high > 0 else -1} if high else set()
        elif high or low:
            base = exponent if base is None else min(base, exponent)
    if signs:
        return float("nan") if len(signs) == 2 else float("inf") * signs.pop()
    if base is None:
        return 0.0
    for exponent, high, low in rows:
        if exponent != _INFINITE and (high or low):
            total += ((int(high) << _LOW_BITS) + int(low)) << (exponent - base)
    return total / (1 << -base) if base < 0 else float(total << base)  # rounded once


def with_money(table: pd.DataFrame, revenue: Mapping[object, float],
               counts: Mapping[object, int]) -> pd.DataFrame:
    """Return ``customers``, ``revenue``, the means of ``table`` and ``mean_monetary``.

    ``table``: indexed by key, ``customers, mean_recency_days, mean_frequency``;
    ``revenue`` and ``counts``: of :func:`money_totals`. The mean of ``monetary`` is the
    revenue divided by the count of values (NaN without one).
    """
    return table[["customers"]].assign(
        revenue=[revenue.get(k, 0.0) for k in table.index],
        mean_recency_days=table["mean_recency_days"],
        mean_frequency=table["mean_frequency"],
        mean_monetary=[revenue.get(k, 0.0) / n if (n := counts.get(k, 0)) else np.nan
                       for k in table.index])


def finish_summary(table: pd.DataFrame, money: pd.DataFrame,
                   order: Sequence[str] | None = None) -> pd.DataFrame:
    """Add revenue and the shares, and order the segments: :func:`segment_summary`'s end.

    Shared by the engines that aggregate the segments elsewhere (Spark).

    Parameters
    ----------
    table : DataFrame
        Indexed by segment (in first-appearance order): ``customers``,
        ``mean_recency_days``, ``mean_frequency``.
    money : DataFrame
        ``segment`` and the sums of :func:`money_parts` of ``monetary`` (``high``,
        ``low``, ``n``) per segment and ``exponent``.
    order : sequence of str, optional
        As in :func:`segment_summary`.

    Returns
    -------
    DataFrame
        As :func:`segment_summary`.
    """
    revenue, values, total_revenue = money_totals(money, "segment")
    table = with_money(table, revenue, values)
    n_customers = int(table["customers"].sum())
    if order is not None:
        table = table.reindex(list(order) + [s for s in table.index if s not in order])
        table[["customers", "revenue"]] = table[["customers", "revenue"]].fillna(0)
    table["customers"] = table["customers"].astype("int64")
    table = table.astype({c: "float64" for c in ("revenue", "mean_recency_days",
                                                 "mean_frequency", "mean_monetary")})
    table.insert(1, "share", table["customers"] / max(n_customers, 1))
    table.insert(3, "revenue_share", table["revenue"] / total_revenue if total_revenue else 0.0)
    table.index.name = "segment"
    return table.reset_index()
