"""R, F and M scores: a scikit-learn transformer with quantile or fixed bin edges.

`RFMScorer` learns per-dimension bin edges on the customer table (``recency_days``,
``frequency``, ``monetary``) and turns raw values into integer scores on a 1..``n_bins``
scale. A fitted scorer is frozen with `save_scorer` (plain JSON, no pickle) and reloaded
with `load_scorer`, so the weekly job scores every week against the same edges.

The scorer follows scikit-learn's estimator conventions without importing scikit-learn
(`rfm_engine.core._estimator`): fitting and scoring plain numbers is numpy code.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from ..io._validation import is_int, is_real
from ..io.writers import json_text, write_text_atomic
from ._estimator import Transformer, check_is_fitted, feature_names_out, validate_data

__all__ = [
    "RFMScorer",
    "BinsCollapsedWarning",
    "save_scorer",
    "load_scorer",
    "scorer_json",
    "SCORER_FORMAT",
    "SCORER_FORMAT_VERSION",
]

#: Value of the ``"format"`` key of a saved scorer.
SCORER_FORMAT = "rfm-engine/RFMScorer"
#: Version of the JSON layout written by `RFMScorer.to_dict`; independent of scikit-learn.
SCORER_FORMAT_VERSION = 1

_MIN_BINS, _MAX_BINS = 2, 9
_RFM_FEATURES = ("recency_days", "frequency", "monetary")
_SCORE_NAMES = {"recency_days": "r_score", "frequency": "f_score", "monetary": "m_score"}
_DERIVED_NAMES = ("rfm_cell", "fm_score", "rfm_score")


class BinsCollapsedWarning(UserWarning):
    """Tied values made some quantile edges coincide, so a feature has fewer distinct scores."""


class RFMScorer(Transformer):
    """Score each feature on a 1..n_bins scale from quantile or fixed bin edges.

    Built for the customer table (``recency_days``, ``frequency``, ``monetary``), but any
    number of numeric features is accepted. ``fit`` learns the inner bin edges of every
    feature; ``transform`` returns one integer score per feature and, when the input is
    exactly the R, F and M features (by name, in any order, or three unnamed columns taken
    as R, F, M), the derived columns ``rfm_cell`` (``100*r + 10*f + m``, e.g. 545),
    ``fm_score`` (mean of f and m, rounded half up) and ``rfm_score`` (``r + f + m``).

    Scoring rule. Quantile edges are ``np.quantile(x, [1/n, ..., (n-1)/n])`` (linear
    interpolation, the KBinsDiscretizer way), computed on the fitted data. A value's score
    is ``1 + (number of inner edges strictly below it)``: bins are right-closed. A reversed
    feature (higher raw value = lower score) is scored the same way on the negated value,
    so its bins are left-closed in raw units. Fixed edges (``edges``) are business
    thresholds in raw units with right-closed bins; reversed, the score is
    ``len(edges) + 1 - (number of edges strictly below the value)``, so with recency edges
    ``[30, 90]`` a customer seen 30 days ago still gets the top score 3.

    Ties (design decision). Equal raw values always get the same score. Frequency is
    heavily tied (most customers buy once), so several quantile edges coincide. The
    surviving bins are *not* renumbered 1..k: that would move the top score down whenever
    ties collapse bins (pymc-marketing's ``rfm_segments`` loses its top score this way).
    Edges are kept without de-duplication, so a collapsed bin keeps its place on the
    1..n_bins scale: one-time buyers keep score 1, the best buyers still reach n_bins,
    and some scores in between are never given. The scorer warns
    (`BinsCollapsedWarning`) and reports the effective bins in ``n_bins_`` and
    ``scores_`` instead of failing.

    Parameters
    ----------
    n_bins : int, default=5
        Number of quantile bins per feature, from 2 to 9 (``rfm_cell`` uses one digit per
        score).
    edges : dict or None, default=None
        Fixed business edges ``{feature: ascending list of inner edges}``; a feature is a
        column name (or ``"x0"``, ``"x1"``, ... for unnamed input) or a column position.
        A fixed-edge feature has ``len(edges) + 1`` bins, at most 9. Features not listed
        get quantile edges.
    reverse : "auto" or list of str or int, default="auto"
        Features scored reversed (higher raw value = lower score), as names or positions.
        ``"auto"``: the features whose name starts with ``"recency"``, or column 0 when
        the input has no column names. ``[]``: none.

    Attributes
    ----------
    bin_edges_ : ndarray of shape (n_features,), dtype=object
        Inner edges actually used per feature, in raw units, ascending; quantile edges are
        not de-duplicated.
    closed_ : ndarray of shape (n_features,), dtype=object
        ``"right"`` when a value equal to an edge falls in the lower raw bin, ``"left"``
        when it falls in the upper one (quantile edges of reversed features).
    reverse_ : ndarray of shape (n_features,), dtype=bool
        Whether each feature is scored reversed.
    max_score_ : ndarray of shape (n_features,), dtype=int64
        Top of each feature's score scale: ``len(bin_edges_[j]) + 1``.
    n_bins_ : ndarray of shape (n_features,), dtype=int64
        Effective number of bins: distinct scores a value can get, per feature.
    scores_ : list of ndarray
        The achievable scores per feature, ascending.
    rfm_index_ : ndarray of shape (3,) or None
        Positions of the R, F and M features when the input is the R/F/M triple (the
        derived columns are then added), else None.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    save_scorer : Freeze a fitted scorer as JSON.
    load_scorer : Load a scorer written by `save_scorer`.

    Examples
    --------
    >>> import pandas as pd
    >>> customers = pd.DataFrame({
    ...     "recency_days": [5, 40, 90, 200, 365],
    ...     "frequency": [8, 4, 2, 3, 1],
    ...     "monetary": [900.0, 300.0, 120.0, 60.0, 20.0],
    ... })
    >>> scorer = RFMScorer(n_bins=5).set_output(transform="pandas")
    >>> scorer.fit_transform(customers)
       r_score  f_score  m_score  rfm_cell  fm_score  rfm_score
    0        5        5        5       555         5         15
    1        4        4        4       444         4         12
    2        3        2        3       323         3          8
    3        2        3        2       232         3          7
    4        1        1        1       111         1          3

    Tied frequencies collapse bins but keep the 1..5 scale:

    >>> import warnings
    >>> freq = pd.DataFrame({"frequency": [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     scorer = RFMScorer().fit(freq)
    >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
    Feature 'frequency': tied values make quantile edges coincide, leaving 4 distinct
    scores [1, 3, 4, 5] of 1..5; equal values keep equal scores and 1 and 5 keep their
    meaning.
    >>> scorer.transform(freq).ravel().tolist()
    [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    """

    def __init__(
        self,
        n_bins: int = 5,
        *,
        edges: Mapping[str | int, Sequence[float]] | None = None,
        reverse: str | Sequence[str | int] = "auto",
    ) -> None:
        self.n_bins = n_bins
        self.edges = edges
        self.reverse = reverse

    # ------------------------------------------------------------------ fit/transform

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Learn the bin edges of every feature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw feature values, e.g. the customer table's ``recency_days``, ``frequency``
            and ``monetary`` columns. NaN and infinity are rejected.
        y : None
            Ignored.

        Returns
        -------
        self : RFMScorer
            The fitted scorer.

        Warns
        -----
        BinsCollapsedWarning
            When tied values make quantile edges of a feature coincide.
        """
        self._validate_params()
        X = validate_data(self, X, reset=True)
        return self._fit_edges(
            lambda j, levels, negated: np.quantile(-X[:, j] if negated else X[:, j], levels,
                                                   method="linear"))

    def fit_quantiles(
        self,
        feature_names: Sequence[str],
        quantile: Callable[[int, np.ndarray, bool], np.ndarray],
    ) -> Self:
        """Learn the bin edges from a quantile function instead of the data.

        For engines that compute quantiles where the data lives (Spark): the edges, the
        fitted attributes and the `BinsCollapsedWarning` are those of `fit`, given the
        same quantiles. ``quantile(j, levels, negated)`` must return
        ``np.quantile(-x if negated else x, levels, method="linear")`` of feature ``j``'s
        values ``x`` (or an approximation of it, which then decides the edges).

        Parameters
        ----------
        feature_names : sequence of str
            The features, in column order (as the columns of ``X`` in `fit`).
        quantile : callable
            ``quantile(j, levels, negated) -> ndarray`` of ``len(levels)`` floats.

        Returns
        -------
        self : RFMScorer
            The fitted scorer.

        Warns
        -----
        BinsCollapsedWarning
            When tied values make quantile edges of a feature coincide.

        Examples
        --------
        >>> import pandas as pd
        >>> x = np.array([5.0, 1.0, 3.0, 8.0])
        >>> scorer = RFMScorer(n_bins=2).fit_quantiles(
        ...     ["spend"], lambda j, levels, negated: np.quantile(x, levels))
        >>> scorer.bin_edges_[0].tolist()
        [4.0]
        >>> scorer.transform(pd.DataFrame({"spend": [2.0, 9.0]})).ravel().tolist()
        [1, 2]
        """
        self._validate_params()
        self.n_features_in_ = len(feature_names)
        self.feature_names_in_ = np.asarray([str(n) for n in feature_names], dtype=object)
        return self._fit_edges(quantile)

    def _fit_edges(self, quantile: Callable[[int, np.ndarray, bool], np.ndarray]) -> Self:
        """Set the edges of every feature from ``quantile`` (see `fit_quantiles`); warn."""
        names = self._input_names()
        reverse = self._resolve_reverse(names)
        fixed = self._resolve_edges(names)
        levels = np.linspace(0.0, 1.0, self.n_bins + 1)[1:-1]
        edges, closed = [], []
        for j in range(self.n_features_in_):
            if j in fixed:
                edges.append(fixed[j])
                closed.append("right")
            elif reverse[j]:
                # Score the negated value: right-closed bins on -x, left-closed on x.
                negated = np.asarray(quantile(j, levels, True), dtype=np.float64)
                edges.append(-negated[::-1])
                closed.append("left")
            else:
                edges.append(np.asarray(quantile(j, levels, False), dtype=np.float64))
                closed.append("right")
        self._set_fitted(edges, closed, reverse)
        for j in range(self.n_features_in_):
            if j not in fixed and self.n_bins_[j] < self.max_score_[j]:
                warnings.warn(
                    f"Feature {names[j]!r}: tied values make quantile edges coincide, "
                    f"leaving {self.n_bins_[j]} distinct scores {self.scores_[j].tolist()} "
                    f"of 1..{self.max_score_[j]}; equal values keep equal scores and 1 and "
                    f"{self.max_score_[j]} keep their meaning.",
                    BinsCollapsedWarning,
                    stacklevel=3,
                )
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Score every feature; add ``rfm_cell``, ``fm_score``, ``rfm_score`` for R/F/M input.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw values, with the features (and names) seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), dtype=int64
            Scores in ``get_feature_names_out()`` order (a DataFrame after
            ``set_output(transform="pandas")``).
        """
        check_is_fitted(self)
        values = validate_data(self, X, reset=False)
        n_derived = 0 if self.rfm_index_ is None else len(_DERIVED_NAMES)
        # One contiguous row per output column, returned transposed (n_samples, n_out).
        out = np.empty((self.n_features_in_ + n_derived, values.shape[0]), dtype=np.int64)
        for j, (edges, closed) in enumerate(zip(self.bin_edges_, self.closed_, strict=True)):
            below = out[j]
            below[:] = 0
            for edge in edges:  # a few edges: comparing beats a binary search per value
                below += values[:, j] > edge if closed == "right" else values[:, j] >= edge
            if self.reverse_[j]:
                np.subtract(self.max_score_[j], below, out=below)
            else:
                below += 1
        if self.rfm_index_ is not None:
            r, f, m = (out[i] for i in self.rfm_index_)
            out[-3] = 100 * r + 10 * f + m
            out[-2] = (f + m + 1) // 2
            out[-1] = r + f + m
        return self._wrap_output(out.T, X)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Output column names.

        ``recency_days``, ``frequency`` and ``monetary`` become ``r_score``, ``f_score``
        and ``m_score`` (so do three unnamed columns), any other feature ``<name>_score``;
        R/F/M input adds ``rfm_cell``, ``fm_score`` and ``rfm_score``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; must match ``feature_names_in_`` when that is set.

        Returns
        -------
        ndarray of str, dtype=object
            The output column names.
        """
        check_is_fitted(self)
        names = feature_names_out(self, input_features)
        if self.rfm_index_ is not None and not hasattr(self, "feature_names_in_"):
            names = np.asarray(_RFM_FEATURES, dtype=object)
        out = [_SCORE_NAMES.get(str(name), f"{name}_score") for name in names]
        if self.rfm_index_ is not None:
            out += list(_DERIVED_NAMES)
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # scores are int64 whatever the input
        return tags

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """Describe the scorer as JSON-ready data: parameters and fitted edges.

        The layout (``format_version`` 1) does not depend on scikit-learn. Each entry of
        ``fitted["features"]`` holds ``edges``, ``reverse`` and ``closed``; a value ``x``
        scores ``1 + k``, or ``len(edges) + 1 - k`` when ``reverse``, where ``k`` counts
        the edges ``< x`` (``closed == "right"``) or ``<= x`` (``closed == "left"``).

        Returns
        -------
        dict
            ``format``, ``format_version``, ``params`` and ``fitted`` (None when unfitted).

        Examples
        --------
        >>> scorer = RFMScorer(n_bins=2, reverse=[]).fit([[1.0], [3.0]])
        >>> scorer.to_dict()["fitted"]["features"]
        [{'edges': [2.0], 'reverse': False, 'closed': 'right'}]
        """
        edges = self.edges
        if isinstance(edges, Mapping):
            edges = [{"feature": k, "edges": _plain_list(v)} for k, v in edges.items()]
        reverse = self.reverse
        if not isinstance(reverse, str) and isinstance(reverse, Sequence | np.ndarray):
            reverse = _plain_list(reverse)
        fitted = None
        if _is_fitted(self):
            names = getattr(self, "feature_names_in_", None)
            fitted = {
                "n_features_in": int(self.n_features_in_),
                "feature_names_in": None if names is None else [str(n) for n in names],
                "features": [
                    {"edges": e.tolist(), "reverse": bool(r), "closed": str(c)}
                    for e, r, c in zip(self.bin_edges_, self.reverse_, self.closed_, strict=True)
                ],
            }
        return {
            "format": SCORER_FORMAT,
            "format_version": SCORER_FORMAT_VERSION,
            "params": {"n_bins": _plain(self.n_bins), "edges": edges, "reverse": reverse},
            "fitted": fitted,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "scorer dict") -> RFMScorer:
        """Rebuild a scorer written by `to_dict`; it transforms exactly as the original.

        Parameters
        ----------
        d : dict
            Output of `to_dict`, e.g. read back from JSON.
        source : str, default="scorer dict"
            Where ``d`` came from, named in error messages.

        Returns
        -------
        RFMScorer
            Fitted when ``d["fitted"]`` is not None.

        Raises
        ------
        ConfigError
            When ``d`` is malformed, names what is wrong.

        Examples
        --------
        >>> scorer = RFMScorer(n_bins=3).fit([[1.0], [2.0], [3.0]])
        >>> clone = RFMScorer.from_dict(scorer.to_dict())
        >>> clone.transform([[1.0], [2.5], [9.0]]).ravel().tolist()
        [3, 1, 1]
        """

        def fail(what: str) -> ConfigError:
            return ConfigError(f"{source}: {what}")

        if not isinstance(d, Mapping):
            raise fail(f"expected a JSON object, got {type(d).__name__}.")
        missing = [k for k in ("format", "format_version", "params", "fitted") if k not in d]
        if missing:
            raise fail(f"missing key(s) {', '.join(map(repr, missing))}.")
        if d["format"] != SCORER_FORMAT:
            raise fail(f"'format' is {d['format']!r}, expected {SCORER_FORMAT!r}.")
        if d["format_version"] != SCORER_FORMAT_VERSION:
            raise fail(
                f"'format_version' is {d['format_version']!r}; this rfm-engine reads "
                f"version {SCORER_FORMAT_VERSION}. Refit and save the scorer again."
            )
        params = d["params"]
        if not isinstance(params, Mapping) or set(params) != {"n_bins", "edges", "reverse"}:
            raise fail("'params' must be an object with keys 'n_bins', 'edges', 'reverse'.")
        edges = params["edges"]
        if edges is not None:
            if not isinstance(edges, list) or not all(
                isinstance(e, Mapping) and set(e) == {"feature", "edges"} for e in edges
            ):
                raise fail("'params.edges' must be null or a list of {feature, edges} objects.")
            edges = {e["feature"]: e["edges"] for e in edges}
        scorer = cls(params["n_bins"], edges=edges, reverse=params["reverse"])
        try:
            scorer._validate_params()
        except ConfigError as exc:
            raise fail(str(exc)) from None
        fitted = d["fitted"]
        if fitted is None:
            return scorer
        try:
            scorer._restore_fitted(fitted)
        except ConfigError as exc:
            raise fail(f"'fitted': {exc}") from None
        return scorer

    # ------------------------------------------------------------------ helpers

    def _validate_params(self) -> None:
        n_bins = self.n_bins
        if not is_int(n_bins) or not _MIN_BINS <= n_bins <= _MAX_BINS:
            raise ConfigError(
                f"The 'n_bins' parameter of RFMScorer must be an int in "
                f"[{_MIN_BINS}, {_MAX_BINS}]. Got {n_bins!r} instead."
            )
        if self.edges is not None:
            if not isinstance(self.edges, Mapping):
                raise ConfigError(
                    "The 'edges' parameter of RFMScorer must be None or a dict "
                    f"{{feature: ascending list of inner edges}}. Got {self.edges!r} instead."
                )
            for key, values in self.edges.items():
                if not (isinstance(key, str) or is_int(key)):
                    raise ConfigError(
                        "The 'edges' parameter of RFMScorer must have feature names (str) or "
                        f"column positions (int) as keys. Got key {key!r} instead."
                    )
                _check_fixed_edges(key, values)
        reverse = self.reverse
        if isinstance(reverse, str):
            if reverse != "auto":
                raise ConfigError(
                    "The 'reverse' parameter of RFMScorer must be 'auto' or a list of feature "
                    f"names or column positions. Got {reverse!r} instead."
                )
        elif not isinstance(reverse, Sequence | np.ndarray) or not all(
            isinstance(r, str) or is_int(r) for r in reverse
        ):
            raise ConfigError(
                "The 'reverse' parameter of RFMScorer must be 'auto' or a list of feature "
                f"names or column positions. Got {reverse!r} instead."
            )

    def _input_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def _position(self, parameter: str, key: str | int, names: list[str]) -> int:
        if isinstance(key, str):
            if key in names:
                return names.index(key)
        elif 0 <= key < len(names):
            return int(key)
        raise ConfigError(
            f"The '{parameter}' parameter of RFMScorer names feature {key!r}, which is not "
            f"in the input; features: {', '.join(map(repr, names))} "
            f"(or positions 0..{len(names) - 1})."
        )

    def _resolve_reverse(self, names: list[str]) -> np.ndarray:
        reverse = np.zeros(len(names), dtype=bool)
        if isinstance(self.reverse, str):  # "auto"
            if hasattr(self, "feature_names_in_"):
                reverse[:] = [n.startswith("recency") for n in names]
            else:
                reverse[0] = True
        else:
            for key in self.reverse:
                reverse[self._position("reverse", key, names)] = True
        return reverse

    def _resolve_edges(self, names: list[str]) -> dict[int, np.ndarray]:
        fixed: dict[int, np.ndarray] = {}
        for key, values in (self.edges or {}).items():
            j = self._position("edges", key, names)
            if j in fixed:
                raise ConfigError(
                    f"The 'edges' parameter of RFMScorer gives feature {names[j]!r} twice "
                    "(by name and by position)."
                )
            fixed[j] = np.asarray(values, dtype=np.float64)
        return fixed

    def _set_fitted(self, edges: list, closed: list[str], reverse: np.ndarray) -> None:
        self.bin_edges_ = np.empty(len(edges), dtype=object)
        self.bin_edges_[:] = [np.asarray(e, dtype=np.float64) for e in edges]
        self.closed_ = np.asarray(closed, dtype=object)
        self.reverse_ = np.asarray(reverse, dtype=bool)
        self.max_score_ = np.asarray([len(e) + 1 for e in edges], dtype=np.int64)
        self.scores_ = [
            _achievable_scores(e, r, c)
            for e, r, c in zip(self.bin_edges_, reverse, closed, strict=True)
        ]
        self.n_bins_ = np.asarray([len(s) for s in self.scores_], dtype=np.int64)
        names = self._input_names() if hasattr(self, "feature_names_in_") else None
        if names is not None and len(names) == 3 and set(names) == set(_RFM_FEATURES):
            self.rfm_index_ = np.asarray([names.index(f) for f in _RFM_FEATURES])
        elif names is None and self.n_features_in_ == 3:
            self.rfm_index_ = np.arange(3)
        else:
            self.rfm_index_ = None

    def _restore_fitted(self, fitted: Any) -> None:
        if not isinstance(fitted, Mapping) or set(fitted) != {
            "n_features_in",
            "feature_names_in",
            "features",
        }:
            raise ConfigError(
                "must be null or an object with keys 'n_features_in', 'feature_names_in', "
                "'features'."
            )
        n = fitted["n_features_in"]
        if not is_int(n) or n < 1:
            raise ConfigError(f"'n_features_in' must be a positive int, got {n!r}.")
        names = fitted["feature_names_in"]
        if names is not None and (
            not isinstance(names, list)
            or len(names) != n
            or not all(isinstance(s, str) for s in names)
        ):
            raise ConfigError(f"'feature_names_in' must be null or {n} strings, got {names!r}.")
        features = fitted["features"]
        if not isinstance(features, list) or len(features) != n:
            raise ConfigError(f"'features' must be a list of {n} objects.")
        edges, closed, reverse = [], [], []
        for j, feature in enumerate(features):
            label = f"features[{j}]"
            if not isinstance(feature, Mapping) or set(feature) != {"edges", "reverse", "closed"}:
                raise ConfigError(
                    f"{label} must be an object with keys 'edges', 'reverse', 'closed'."
                )
            e = feature["edges"]
            if (
                not isinstance(e, list)
                or not 1 <= len(e) <= _MAX_BINS - 1
                or not all(is_real(v) and np.isfinite(v) for v in e)
                or any(a > b for a, b in pairwise(e))
            ):
                raise ConfigError(
                    f"{label}.edges must be an ascending list of 1 to {_MAX_BINS - 1} finite "
                    f"numbers, got {e!r}."
                )
            if not isinstance(feature["reverse"], bool):
                raise ConfigError(
                    f"{label}.reverse must be true or false, got {feature['reverse']!r}."
                )
            if feature["closed"] not in ("left", "right"):
                raise ConfigError(
                    f"{label}.closed must be 'left' or 'right', got {feature['closed']!r}."
                )
            edges.append(e)
            closed.append(feature["closed"])
            reverse.append(feature["reverse"])
        self.n_features_in_ = n
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        input_names = self._input_names()
        fixed = self._resolve_edges(input_names)
        for j, values in fixed.items():
            if closed[j] != "right" or not np.array_equal(values, edges[j]):
                raise ConfigError(
                    f"features[{j}] does not match the fixed edges {values.tolist()} given for "
                    f"{input_names[j]!r} in 'params.edges'."
                )
        expected_reverse = self._resolve_reverse(input_names)
        if not np.array_equal(expected_reverse, reverse):
            raise ConfigError(
                f"the 'reverse' flags {reverse} do not match 'params.reverse' "
                f"{self.reverse!r}, which gives {expected_reverse.tolist()}."
            )
        self._set_fitted(edges, closed, np.asarray(reverse, dtype=bool))


def save_scorer(scorer: RFMScorer, path: str | os.PathLike[str]) -> Path:
    """Write a scorer as JSON (no pickle): parameters, fitted edges and feature names.

    Parameters
    ----------
    scorer : RFMScorer
        The scorer to save, usually fitted.
    path : str or path-like
        Destination file; replaced if it exists.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> scorer = RFMScorer(n_bins=3).fit([[1.0], [2.0], [3.0]])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_scorer(scorer, Path(tmp) / "scorer.json")
    ...     loaded = load_scorer(path)
    >>> loaded.transform([[1.0], [3.0]]).ravel().tolist()
    [3, 1]
    """
    return write_text_atomic(path, scorer_json(scorer))


def scorer_json(scorer: RFMScorer) -> str:
    """Return the JSON text `save_scorer` writes."""
    return json_text(scorer.to_dict())


def load_scorer(path: str | os.PathLike[str]) -> RFMScorer:
    """Read a scorer written by `save_scorer`; it transforms exactly as the saved one.

    Parameters
    ----------
    path : str or path-like
        A JSON file written by `save_scorer`.

    Returns
    -------
    RFMScorer
        The scorer, fitted if it was fitted when saved.

    Raises
    ------
    ConfigError
        When the file cannot be read, is not JSON or is not a valid scorer; the message
        names the file and what is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the scorer file ({exc}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    return RFMScorer.from_dict(data, source=str(path))


def _is_fitted(scorer: RFMScorer) -> bool:
    return hasattr(scorer, "bin_edges_")


def _plain(value: Any) -> Any:
    """Numpy scalars to Python scalars, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _plain_list(values: Any) -> Any:
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, Sequence) and not isinstance(values, str):
        return [_plain(v) for v in values]
    return values


def _check_fixed_edges(key: str | int, values: object) -> None:
    ok = (
        isinstance(values, Sequence | np.ndarray)
        and not isinstance(values, str)
        and 1 <= len(values) <= _MAX_BINS - 1
        and all(is_real(v) and np.isfinite(v) for v in values)
        and all(a < b for a, b in pairwise(values))
    )
    if not ok:
        raise ConfigError(
            f"The 'edges' parameter of RFMScorer must give feature {key!r} a strictly "
            f"ascending list of 1 to {_MAX_BINS - 1} finite numbers (at most {_MAX_BINS} "
            f"bins). Got {values!r} instead."
        )


def _achievable_scores(edges: np.ndarray, reverse: bool, closed: str) -> np.ndarray:
    """Scores some real value can get: one per distinct edge, plus the bottom one."""
    side = "left" if closed == "right" else "right"
    distinct = np.unique(edges)
    # Probe below every edge and at/just past each distinct edge.
    probes = np.concatenate([[-np.inf], distinct, np.nextafter(distinct, np.inf), [np.inf]])
    below = np.searchsorted(edges, probes, side=side)
    scores = len(edges) + 1 - below if reverse else 1 + below
    return np.unique(scores).astype(np.int64)
