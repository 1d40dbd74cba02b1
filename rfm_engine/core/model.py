"""The segmentation bundle the weekly run freezes: scorer, rule set and optional clusterer.

`SegmentationModel` holds everything needed to turn a customer table into scores,
segments (and clusters) exactly as on the day it was fitted: the fitted `RFMScorer`,
the rule set as TOML *text* (so the bundle does not depend on a rule file that may
change later) and an optional fitted scikit-learn clusterer. Save it with
:func:`rfm_engine.integrations.model_store.save_model` (skops, hash-checked on load).
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io._validation import require_columns
from ._estimator import Transformer, check_is_fitted, clone
from .pipeline import RFM_FEATURES, Segmentation, segment_customers
from .scoring import RFMScorer
from .segments import RuleSet, builtin_rule_sets, is_rule_path, rule_file_text

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SegmentationModel"]

_SOURCE = "customer table"


class SegmentationModel(Transformer):
    """Scores, segments and (optionally) clusters customers, frozen as one estimator.

    ``fit`` learns the R, F, M bin edges (unless a fitted scorer is given) and fits the
    clusterer on ``recency_days``, ``frequency`` and ``monetary``; ``segment`` returns
    the customer table with scores, segment and cluster; ``transform`` returns the same
    numbers as an integer array, the scikit-learn way.

    Parameters
    ----------
    scorer : RFMScorer or None, default=None
        A fitted scorer is used as is (frozen: a copy is kept, not refitted); an unfitted
        one is cloned and fitted; None fits a new ``RFMScorer(n_bins)``.
    n_bins : int, default=5
        Score levels of the scorer fitted when ``scorer`` is None.
    rules : str or path-like, default="rf-grid"
        A built-in rule set name (see :func:`rfm_engine.core.segments.builtin_rule_sets`), the
        path of a TOML rule file, or TOML text. Its text is stored in ``rules_toml_``.
    clusterer : estimator or None, default=None
        Any scikit-learn clusterer with ``predict`` (e.g.
        ``make_pipeline(StandardScaler(), KMeans(4, random_state=0))``: raw monetary
        values dwarf the other features, so scale first). It is cloned and fitted on
        ``recency_days``, ``frequency`` and ``monetary``.

    Attributes
    ----------
    scorer_ : RFMScorer
        The fitted scorer.
    rules_toml_ : str
        The rule set as TOML text.
    clusterer_ : estimator or None
        The fitted clusterer.
    n_features_in_ : int
        3: ``recency_days``, ``frequency``, ``monetary``.
    feature_names_in_ : ndarray of str
        ``["recency_days", "frequency", "monetary"]``.

    See Also
    --------
    rfm_engine.integrations.model_store.save_model : Freeze a fitted model in ``models/``.
    rfm_engine.integrations.model_store.load_model : Load it back after a hash check.

    Examples
    --------
    >>> customers = pd.DataFrame({"customer_id": list("abcde"),
    ...                           "recency_days": [1, 10, 100, 200, 300],
    ...                           "frequency": [9, 5, 3, 2, 1],
    ...                           "monetary": [900.0, 300.0, 50.0, 20.0, 10.0]})
    >>> model = SegmentationModel().fit(customers)
    >>> model.segment(customers)[["customer_id", "rfm_cell", "segment"]].values.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    [['a', '555', 'champions'], ['b', '444', 'loyal_customers'],
     ['c', '333', 'need_attention'], ['d', '222', 'hibernating'],
     ['e', '111', 'hibernating']]
    >>> model.transform(customers)[0].tolist()
    [5, 5, 5, 555, 5, 15]
    """

    def __init__(
        self,
        scorer: RFMScorer | None = None,
        *,
        n_bins: int = 5,
        rules: str | os.PathLike[str] = "rf-grid",
        clusterer: Any = None,
    ) -> None:
        self.scorer = scorer
        self.n_bins = n_bins
        self.rules = rules
        self.clusterer = clusterer

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Fit the scorer (unless frozen) and the clusterer; read the rule set's text.

        Parameters
        ----------
        X : DataFrame
            The customer table, with at least ``recency_days``, ``frequency`` and
            ``monetary``. It is not modified.
        y : None
            Ignored.

        Returns
        -------
        self : SegmentationModel
            The fitted model.

        Raises
        ------
        MissingColumnsError
            If a feature column is missing.
        ConfigError
            If ``scorer``, ``rules`` or ``clusterer`` is invalid.
        """
        features = _features(X)
        rules_toml = _rules_text(self.rules)
        _parse_rules(rules_toml, _rules_source(self.rules))  # validate now, not at use
        scorer = self.scorer
        if scorer is None:
            scorer_ = RFMScorer(self.n_bins).fit(features)
        elif not isinstance(scorer, RFMScorer):
            raise ConfigError("The 'scorer' parameter of SegmentationModel must be an RFMScorer "
                              f"or None. Got {type(scorer).__name__} instead.")
        elif hasattr(scorer, "bin_edges_"):
            scorer_ = copy.deepcopy(scorer)
        else:
            scorer_ = clone(scorer).fit(features)
        clusterer_ = None
        if self.clusterer is not None:
            if not hasattr(self.clusterer, "fit") or not hasattr(self.clusterer, "predict"):
                raise ConfigError(
                    "The 'clusterer' parameter of SegmentationModel must be a scikit-learn "
                    "clusterer with fit and predict (e.g. KMeans; DBSCAN cannot label new "
                    f"customers). Got {type(self.clusterer).__name__} instead."
                )
            clusterer_ = clone(self.clusterer).fit(features)
        self._set_fitted(scorer_, rules_toml, clusterer_)
        return self

    @classmethod
    def from_scorer(
        cls, scorer: RFMScorer, *, rules: str | os.PathLike[str] = "rf-grid",
        clusterer: Any = None,
    ) -> SegmentationModel:
        """Wrap a fitted scorer (e.g. a frozen JSON scorer) in a fitted model, without data.

        Parameters
        ----------
        scorer : RFMScorer
            A fitted scorer over ``recency_days``, ``frequency``, ``monetary``.
        rules : str or path-like, default="rf-grid"
            As for the ``rules`` parameter.
        clusterer : estimator, optional
            A fitted clusterer over the same three columns (e.g. from
            :func:`rfm_engine.core.clustering.cluster_customers`).

        Returns
        -------
        SegmentationModel
            Fitted, with no clusterer.

        Examples
        --------
        >>> scorer = RFMScorer(n_bins=2).fit(pd.DataFrame(
        ...     {"recency_days": [1, 9], "frequency": [3, 1], "monetary": [5.0, 1.0]}))
        >>> SegmentationModel.from_scorer(scorer).scorer_ is not scorer
        True
        """
        if not isinstance(scorer, RFMScorer) or not hasattr(scorer, "bin_edges_"):
            raise ConfigError(f"from_scorer needs a fitted RFMScorer. Got {scorer!r} instead.")
        if clusterer is not None:
            check_is_fitted(clusterer)
        model = cls(scorer, n_bins=int(max(scorer.max_score_)), rules=rules, clusterer=clusterer)
        rules_toml = _rules_text(rules)
        _parse_rules(rules_toml, _rules_source(rules))
        model._set_fitted(copy.deepcopy(scorer), rules_toml, copy.deepcopy(clusterer))
        return model

    def _set_fitted(self, scorer_: RFMScorer, rules_toml: str, clusterer_: Any) -> None:
        names = getattr(scorer_, "feature_names_in_", None)
        if names is not None and sorted(map(str, names)) != sorted(RFM_FEATURES):
            raise ConfigError(
                "The 'scorer' of SegmentationModel must be fitted on "
                f"{', '.join(RFM_FEATURES)}; it was fitted on {', '.join(map(str, names))}."
            )
        if scorer_.n_features_in_ != len(RFM_FEATURES):
            raise ConfigError(
                f"The 'scorer' of SegmentationModel must be fitted on {len(RFM_FEATURES)} "
                f"features ({', '.join(RFM_FEATURES)}); it has {scorer_.n_features_in_}."
            )
        self.scorer_ = scorer_
        self.rules_toml_ = rules_toml
        self.clusterer_ = clusterer_
        self.n_features_in_ = len(RFM_FEATURES)
        self.feature_names_in_ = np.asarray(RFM_FEATURES, dtype=object)

    # ------------------------------------------------------------------ use

    @property
    def rule_set_(self) -> RuleSet:
        """The rule set parsed from ``rules_toml_`` (parsed once per text, then cached)."""
        check_is_fitted(self)
        return _parse_rules(self.rules_toml_, _rules_source(self.rules))

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Score customers: the scorer's columns, then ``cluster`` when there is a clusterer.

        Parameters
        ----------
        X : DataFrame
            The customer table.

        Returns
        -------
        ndarray of shape (n_customers, 6 or 7), dtype=int64
            Columns in ``get_feature_names_out()`` order.
        """
        check_is_fitted(self)
        features = _features(X)
        scores = np.asarray(self.scorer_.transform(features), dtype=np.int64)
        if self.clusterer_ is not None:
            clusters = np.asarray(self.clusterer_.predict(features), dtype=np.int64)
            scores = np.column_stack([scores, clusters])
        return self._wrap_output(scores, X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Segment name of each customer.

        Parameters
        ----------
        X : DataFrame
            The customer table.

        Returns
        -------
        ndarray of str, dtype=object
        """
        return self.segment(X)["segment"].to_numpy(dtype=object)

    def segment(self, customers: pd.DataFrame) -> pd.DataFrame:
        """Return a copy of ``customers`` with scores, ``segment`` and ``cluster`` added.

        Parameters
        ----------
        customers : DataFrame
            The customer table (not modified).

        Returns
        -------
        DataFrame
            ``customers`` plus ``r_score, f_score, m_score, rfm_cell`` (text),
            ``fm_score, rfm_score, segment`` and, with a clusterer, ``cluster``.
        """
        return self.segmentation(customers).customers

    def segmentation(self, customers: pd.DataFrame) -> Segmentation:
        """Score and segment with this bundle's scorer, rule set and clusterer.

        :func:`rfm_engine.segment_customers` with the frozen scorer and rule set (same
        columns, same messages), plus the clusterer's ``cluster`` column.

        Parameters
        ----------
        customers : DataFrame
            The customer table (not modified).

        Returns
        -------
        Segmentation
            Its ``customers`` frame is what :meth:`segment` returns.
        """
        check_is_fitted(self)
        features = _features(customers)
        segmentation = segment_customers(customers, rules=self.rule_set_, scorer=self.scorer_)
        if self.clusterer_ is not None:
            segmentation.customers["cluster"] = np.asarray(self.clusterer_.predict(features),
                                                           dtype=np.int64)
        return segmentation

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """Output column names of `transform`.

        Parameters
        ----------
        input_features : sequence of str or None, default=None
            Ignored beyond scikit-learn's convention; the input is the R/F/M triple.

        Returns
        -------
        ndarray of str, dtype=object
        """
        check_is_fitted(self)
        names = list(self.scorer_.get_feature_names_out())
        if self.clusterer_ is not None:
            names.append("cluster")
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags


# ---------------------------------------------------------------------------- helpers


def _features(customers: Any) -> pd.DataFrame:
    if not isinstance(customers, pd.DataFrame):
        raise ConfigError("SegmentationModel needs the customer table as a pandas DataFrame "
                          f"with {', '.join(RFM_FEATURES)}. Got {type(customers).__name__}.")
    require_columns(customers, RFM_FEATURES, _SOURCE)
    return customers[RFM_FEATURES]


def _is_toml_text(rules: Any) -> bool:
    """Whether ``rules`` is TOML text itself rather than a built-in name or a file path."""
    return isinstance(rules, str) and (
        "\n" in rules or ("=" in rules and not is_rule_path(rules)))


def _rules_text(rules: Any) -> str:
    """Return the TOML text of a built-in name, a rule file path or TOML text."""
    if not isinstance(rules, str | os.PathLike):
        raise ConfigError("The 'rules' parameter of SegmentationModel must be a built-in rule "
                          f"set name ({', '.join(builtin_rule_sets())}), a TOML file path or "
                          f"TOML text. Got {type(rules).__name__} instead.")
    return rules if _is_toml_text(rules) else rule_file_text(rules)[0]


def _rules_source(rules: Any) -> str:
    if not isinstance(rules, str | os.PathLike):
        return "<rules>"
    return "<rules_toml_>" if _is_toml_text(rules) else os.fspath(rules)


@lru_cache(maxsize=32)
def _parse_rules(text: str, source: str) -> RuleSet:
    return RuleSet.from_toml(text, source=source)
