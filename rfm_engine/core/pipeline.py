"""Customer table to scores to segments, and the segment summary marketers read."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING

import pandas as pd

from .scoring import RFMScorer
from .segments import RuleSet, load_rules

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from pandas.api.extensions import ExtensionArray

__all__ = ["RFM_FEATURES", "Segmentation", "finish_summary", "fit_recording",
           "score_customers", "segment_customers", "segment_summary", "segmentation_notes"]

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
        "revenue": grouped["monetary"].sum(),
        "mean_recency_days": grouped["recency_days"].mean(),
        "mean_frequency": grouped["frequency"].mean(),
        "mean_monetary": grouped["monetary"].mean(),
    })
    return finish_summary(table, len(customers), customers["monetary"].sum(), order)


def finish_summary(table: pd.DataFrame, n_customers: int, total_revenue: float,
                   order: Sequence[str] | None = None) -> pd.DataFrame:
    """Order the per-segment sums and means and add the shares: :func:`segment_summary`'s end.

    Shared by the engines that aggregate the segments elsewhere (Spark).

    Parameters
    ----------
    table : DataFrame
        Indexed by segment (in first-appearance order): ``customers``, ``revenue``,
        ``mean_recency_days``, ``mean_frequency``, ``mean_monetary``.
    n_customers : int
        Customers in all segments.
    total_revenue : float
        Their total ``monetary``.
    order : sequence of str, optional
        As in :func:`segment_summary`.

    Returns
    -------
    DataFrame
        As :func:`segment_summary`.
    """
    if order is not None:
        table = table.reindex(list(order) + [s for s in table.index if s not in order])
        table[["customers", "revenue"]] = table[["customers", "revenue"]].fillna(0)
    table["customers"] = table["customers"].astype("int64")
    table.insert(1, "share", table["customers"] / max(n_customers, 1))
    table.insert(3, "revenue_share", table["revenue"] / total_revenue if total_revenue else 0.0)
    table.index.name = "segment"
    return table.reset_index()
