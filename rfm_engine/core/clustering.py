"""Optional k-means segments: customers grouped by their R, F and M values, not by rules.

`RFMClusterer` is a scikit-learn estimator: a signed ``log1p`` (``sign(x) * log1p(|x|)``,
so net-negative ``monetary`` from returns is fine) → `StandardScaler` → `KMeans` or
`MiniBatchKMeans` pipeline, fitted on a seeded sample and applied in chunks, so millions
of customers fit in memory. With ``n_clusters=None`` it chooses k by the silhouette
score on the sample. `name_clusters` names each cluster by its centroid profile relative
to the population and by the rule segment most of its members share, and
`cluster_customers` does all of it for a customer table and returns a `Clustering`
(crosstab against the rule segments, adjusted Rand index, summary, elbow and silhouette
plots).

Choosing the algorithm (``algorithm="auto"``)
---------------------------------------------
Measured on 1,076,816 customers: the features of the 10M-row benchmark history
(``rfm_engine.datasets.sample_data``; half of them one-time buyers, heavy-tailed spend), on 2
cores (AMD EPYC) with scikit-learn 1.9.1, by ``benchmarks/clustering_bench.py``. Fit:
seconds to fit the pipeline on the seeded 20,000-customer sample (best of 5); predict:
seconds to label all customers in chunks of 200,000 (serial, and ``n_jobs=2``);
inertia on all customers (signed-log, standardized units; lower is better); silhouette
on a separate 20,000-customer sample (higher is better). Each cell is KMeans /
MiniBatchKMeans, both with 3 k-means++ restarts. The machine was shared, so timings
vary by about +-50% between runs; the quality columns are exact.

=  ===========  ===========  ==================  ===================  =============
k  fit s        predict s    predict s n_jobs=2  inertia              silhouette
=  ===========  ===========  ==================  ===================  =============
4  0.10 / 0.06  0.04 / 0.10  0.04 / 0.05         987,345 / 1,009,773  0.361 / 0.330
5  0.06 / 0.07  0.05 / 0.06  0.04 / 0.05         839,945 / 900,430    0.309 / 0.286
6  0.06 / 0.03  0.05 / 0.03  0.05 / 0.02         720,522 / 760,633    0.313 / 0.290
7  0.03 / 0.02  0.04 / 0.04  0.02 / 0.03         655,472 / 682,148    0.294 / 0.299
8  0.04 / 0.02  0.03 / 0.03  0.02 / 0.02         599,351 / 617,405    0.294 / 0.281
=  ===========  ===========  ==================  ===================  =============

Fitting k=6 on larger samples: 100,000 rows, 0.10 s / 0.20 s (inertia 724,827 /
732,874); 1,000,000 rows, 0.92 s / 9.95 s (inertia 726,309 / 769,036). Fitting on 20,000
rows loses nothing against fitting on all of them (inertia 720,522 vs 726,309).

Conclusion: MiniBatchKMeans saves at most 0.04 s per fit on the 20,000-row sample but
is 2-7% worse in inertia (and worse in silhouette for 4 of 5 k), and is slower *and*
worse from 100,000 rows up. It is never faster at equal quality, so ``"auto"`` means
KMeans at every sample size; ``"minibatch"`` stays available. Labelling a million
customers takes about 0.05 s either way, so ``n_jobs`` barely matters on 2 cores; the
whole default fit (lexsort, sample, k = 2..10 with silhouettes, labels for everyone)
took 3.8 s. On this history the silhouette is highest at k=2 (0.445, then 0.374 at
k=3): pass ``n_clusters`` or ``k_range`` for finer groups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..errors import ConfigError, InputError
from ..io._validation import is_int, require_columns
from ..io.writers import figure_writer, write_all
from ..plotting import new_axes
from .pipeline import money_by, money_totals, with_money

# sklearn.cluster, .metrics, .pipeline and .preprocessing are imported where they are used:
# importing them costs more than the scorer's sklearn.base, and a frozen model or a run
# without [clustering] never fits or scores clusters.
if TYPE_CHECKING:
    import os

    from matplotlib.axes import Axes
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.pipeline import Pipeline

__all__ = [
    "RFMClusterer",
    "Clustering",
    "make_pipeline",
    "adjusted_rand_from_counts",
    "apply_clusterer",
    "cluster_customers",
    "finish_cluster_summary",
    "name_clusters",
    "names_from_counts",
    "plot_elbow",
    "plot_silhouette",
    "signed_log1p",
    "silhouettes",
    "signed_expm1",
]

_RFM_FEATURES = ("recency_days", "frequency", "monetary")
_ALGORITHMS = ("auto", "kmeans", "minibatch")
#: Largest number of rows the silhouette score is computed on (it is quadratic in rows).
SILHOUETTE_ROWS = 20_000
#: k-means++ restarts of KMeans and MiniBatchKMeans; the best inertia wins.
_N_INIT = 3
_PNG_DPI = 100
# Profile words for a centroid below the population's 1/3 quantile, between, above 2/3.
_PROFILE_WORDS = {
    "recency_days": ("recent", "cooling", "lapsed"),
    "frequency": ("one-off", "repeat", "frequent"),
    "monetary": ("low-value", "mid-value", "high-value"),
}


def signed_log1p(X: ArrayLike) -> np.ndarray:
    """Return ``sign(x) * log1p(|x|)``: log scale for heavy tails, defined for negatives.

    Parameters
    ----------
    X : array-like
        Values of any sign.

    Returns
    -------
    ndarray
        Same shape as ``X``; odd and monotone, so order and sign are kept.

    Examples
    --------
    >>> signed_log1p([-99.0, 0.0, 9.0]).round(3).tolist()
    [-4.605, 0.0, 2.303]
    """
    X = np.asarray(X, dtype=np.float64)
    return np.sign(X) * np.log1p(np.abs(X))


def signed_expm1(X: ArrayLike) -> np.ndarray:
    """Return ``sign(x) * expm1(|x|)``, the inverse of `signed_log1p`.

    Parameters
    ----------
    X : array-like
        Values on the signed-log scale.

    Returns
    -------
    ndarray
        Same shape as ``X``, in raw units.

    Examples
    --------
    >>> signed_expm1(signed_log1p([-99.0, 0.0, 9.0])).round(6).tolist()
    [-99.0, 0.0, 9.0]
    """
    X = np.asarray(X, dtype=np.float64)
    return np.sign(X) * np.expm1(np.abs(X))


class RFMClusterer(ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means on signed-log, standardized R, F and M, fitted on a sample, applied in chunks.

    The model is a `~sklearn.pipeline.Pipeline` ``signed_log1p`` (`signed_log1p`) →
    ``scale`` (`~sklearn.preprocessing.StandardScaler`) → ``kmeans``
    (`~sklearn.cluster.KMeans` or `~sklearn.cluster.MiniBatchKMeans`). Built for the
    customer table's ``recency_days``, ``frequency`` and ``monetary`` (three unnamed
    columns are taken as those, in that order), but any numeric features work.

    Fitting. Rows are first put in a canonical order (sorted by their values), then a
    seeded sample of ``sample_size`` rows is drawn, so the fit depends on the set of rows
    only, never on their order. With ``n_clusters=None`` every k of ``k_range`` is fitted
    on the sample and the k with the highest silhouette score (on at most
    `SILHOUETTE_ROWS` rows of the sample) wins; ties go to the smaller k. Values of k
    that the sample cannot support (k above the number of distinct rows, or not below
    the number of rows) are skipped.

    Labels. KMeans numbers its clusters arbitrarily; here they are renumbered by
    descending centroid ``monetary`` (the feature named ``monetary``, else the last one;
    ties broken by the other features, descending), so label 0 is the most valuable
    cluster and labels do not depend on KMeans' internal order. The renumbering is
    applied to the fitted KMeans itself, so ``pipeline_.predict`` gives the same labels.

    Parameters
    ----------
    n_clusters : int or None, default=None
        Number of clusters; None chooses it by silhouette over ``k_range``. 1 is allowed
        (one cluster, silhouette undefined), as for KMeans.
    k_range : tuple of (int, int), default=(2, 10)
        Smallest and largest k tried when ``n_clusters`` is None (both included).
    sample_size : int or None, default=20_000
        Rows of the seeded sample used to fit (and to score k); None fits on all rows.
    algorithm : {"auto", "kmeans", "minibatch"}, default="auto"
        ``"kmeans"``: `~sklearn.cluster.KMeans` (Lloyd, 3 k-means++ restarts);
        ``"minibatch"``: `~sklearn.cluster.MiniBatchKMeans`; ``"auto"``: the faster at
        equal quality in the measurements of the module docstring, which is KMeans at
        every fitting size measured (20,000 to 1,000,000 rows).
    random_state : int, RandomState instance or None, default=0
        Seed of the sample and of the k-means++ initialisation. An int makes fits
        reproducible.
    n_jobs : int or None, default=None
        Chunks labelled in parallel by `predict` and `transform` (joblib threads; -1 =
        all cores). None labels them one after the other.
    chunk_size : int, default=200_000
        Rows per chunk in `predict` and `transform`, bounding their working memory.

    Attributes
    ----------
    pipeline_ : Pipeline
        The fitted pipeline, clusters already renumbered.
    n_clusters_ : int
        Number of clusters of the fitted model.
    algorithm_ : str
        The algorithm used: ``"kmeans"`` or ``"minibatch"``.
    k_scores_ : DataFrame
        One row per k fitted (just ``n_clusters`` when given): ``k``, ``inertia`` (within
        cluster sum of squares on the sample, in scaled units) and ``silhouette`` (NaN
        when undefined).
    cluster_centers_ : DataFrame of shape (n_clusters_, n_features_in_)
        Centroids in raw units (the centroid mapped back through the scaler and
        `signed_expm1`: a typical member, closer to a geometric than to an arithmetic
        mean), indexed by ``cluster``. Unlike KMeans' array, a DataFrame with the feature
        names as columns.
    labels_ : ndarray of shape (n_samples,), dtype=int64
        Cluster of every row given to `fit` (not only of the sample).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    cluster_customers : Cluster a customer table, name the clusters, compare with segments.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> groups = [(5, 12, 2000.0), (60, 3, 150.0), (300, 1, 20.0)]   # R, F, M profiles
    >>> customers = pd.DataFrame(
    ...     [(r * rng.uniform(0.8, 1.25), f, m * rng.uniform(0.8, 1.25))
    ...      for r, f, m in groups for _ in range(20)],
    ...     columns=["recency_days", "frequency", "monetary"])
    >>> clusterer = RFMClusterer(k_range=(2, 6)).fit(customers)
    >>> clusterer.n_clusters_
    3
    >>> clusterer.cluster_centers_.round(1)  # doctest: +NORMALIZE_WHITESPACE
             recency_days  frequency  monetary
    cluster
    0                 5.3       12.0    2007.5
    1                59.9        3.0     154.1
    2               314.0        1.0      21.3
    >>> np.bincount(clusterer.labels_).tolist()
    [20, 20, 20]
    >>> clusterer.predict(customers.iloc[[0, 59]]).tolist()
    [0, 2]
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        *,
        k_range: tuple[int, int] = (2, 10),
        sample_size: int | None = 20_000,
        algorithm: str = "auto",
        random_state: int | np.random.RandomState | None = 0,
        n_jobs: int | None = None,
        chunk_size: int = 200_000,
    ) -> None:
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.sample_size = sample_size
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ fit/predict

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Fit the pipeline on a seeded sample of ``X`` (choosing k if needed); label ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features, e.g. the customer table's ``recency_days``, ``frequency`` and
            ``monetary``. NaN and infinity are rejected.
        y : None
            Ignored.

        Returns
        -------
        self : RFMClusterer
            The fitted clusterer.

        Raises
        ------
        ConfigError
            For an invalid parameter, or when ``X`` has too few (distinct) rows for
            ``n_clusters`` or ``k_range``.
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
        rng = check_random_state(self.random_state)
        # Canonical order first: the sample (and so the fit) depends on the rows' values,
        # not on their order.
        canonical = np.lexsort(X.T[::-1])
        ranks = self._sample_ranks(X.shape[0], rng)
        self._fit_sample(X[canonical[ranks]], X.shape[0], rng)
        self.labels_ = self._chunked(X, "predict").astype(np.int64, copy=False)
        return self

    def fit_drawn(self, n_samples: int, draw: Callable[[np.ndarray], ArrayLike]) -> Self:
        """Fit on the seeded sample of a table that only ``draw`` reads (e.g. on Spark).

        The same fit as `fit` (the same sample rows, random draws and result) for a table
        held elsewhere: the sample's positions in the table's canonical order are drawn
        here and ``draw`` returns the rows at those positions. `labels_` is not set: label
        the rows where they are, with `predict`.

        Parameters
        ----------
        n_samples : int
            Rows of the table.
        draw : callable
            ``draw(ranks)`` returns, as an array-like of shape (len(ranks), n_features)
            (a DataFrame gives the feature names), the rows at positions ``ranks`` (sorted
            ints in ``[0, n_samples)``) of the table sorted by its values: by the first
            feature, ties by the second, and so on. Tied rows are equal, so which of them
            sits at a position does not matter.

        Returns
        -------
        self : RFMClusterer
            The fitted clusterer (without `labels_`).

        Raises
        ------
        ConfigError
            As `fit`.

        Examples
        --------
        >>> X = pd.DataFrame({"recency_days": [300.0, 2, 250, 3, 280, 5],
        ...                   "frequency": [1.0, 9, 1, 8, 1, 9],
        ...                   "monetary": [10.0, 900, 12, 800, 15, 950]})
        >>> ordered = X.sort_values(list(X.columns), ignore_index=True)
        >>> drawn = RFMClusterer(k_range=(2, 3)).fit_drawn(len(X), lambda r: ordered.iloc[r])
        >>> fitted = RFMClusterer(k_range=(2, 3)).fit(X)
        >>> bool((drawn.cluster_centers_ == fitted.cluster_centers_).all(axis=None))
        True
        """
        self._check_params()
        rng = check_random_state(self.random_state)
        ranks = self._sample_ranks(int(n_samples), rng)
        sample = validate_data(self, draw(ranks), dtype=np.float64, ensure_all_finite=True)
        if sample.shape[0] != len(ranks):
            raise InputError(f"draw gave {sample.shape[0]} rows for {len(ranks)} positions.")
        self._fit_sample(sample, int(n_samples), rng)
        if hasattr(self, "labels_"):
            del self.labels_  # a refit: labels of earlier rows would not be this fit's
        return self

    def _sample_ranks(self, n_samples: int, rng: np.random.RandomState) -> np.ndarray:
        """Positions (sorted) in canonical order of the rows of the seeded fitting sample."""
        size = n_samples if self.sample_size is None else min(self.sample_size, n_samples)
        if size < n_samples:
            return np.sort(rng.choice(n_samples, size, replace=False))
        return np.arange(n_samples)

    def _fit_sample(self, sample: np.ndarray, n_samples: int, rng: np.random.RandomState
                    ) -> None:
        """Fit every k on ``sample`` (canonical order), keep the best; ``rng`` continues."""
        names = self._feature_names()
        # Row-major as `fit`'s sample: the scaler's sums (so the fit's last bits) follow
        # the memory layout.
        sample = np.ascontiguousarray(sample)
        size = sample.shape[0]
        seed = int(rng.randint(np.iinfo(np.int32).max))
        distinct = 1 + int(np.any(np.diff(sample, axis=0) != 0, axis=1).sum())
        self.algorithm_ = self._resolve_algorithm()

        if self.n_clusters is None:
            low, high = self.k_range
            ks = list(range(low, min(high, distinct, size - 1) + 1))
            if not ks:
                raise ConfigError(
                    f"n_samples={n_samples} ({size} sampled, {distinct} distinct) is too few to "
                    f"choose k in k_range={tuple(self.k_range)!r}: the silhouette needs at "
                    f"least {low + 1} rows and {low} distinct ones. Give more rows, a "
                    "smaller 'k_range' or a fixed 'n_clusters'."
                )
        else:
            if self.n_clusters > size:
                raise ConfigError(
                    f"n_samples={n_samples} ({size} sampled) should be >= "
                    f"n_clusters={self.n_clusters}. Give more rows or a smaller 'n_clusters'."
                )
            ks = [self.n_clusters]

        pipelines = [make_pipeline(k, self.algorithm_, seed).fit(sample) for k in ks]
        scored = np.arange(size)
        if size > SILHOUETTE_ROWS:
            scored = np.sort(rng.choice(size, SILHOUETTE_ROWS, replace=False))
        scaled = pipelines[0][:-1].transform(sample[scored])
        scores = silhouettes(scaled, [p[-1].labels_[scored] for p in pipelines])
        # Highest silhouette wins, ties to the smaller k; NaN (undefined) never wins.
        best = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))
        rows = [
            (k, float(p[-1].inertia_), s) for k, p, s in zip(ks, pipelines, scores, strict=True)
        ]
        # Fitted state is kept in numpy arrays (skops persists them without running code);
        # `k_scores_` and `cluster_centers_` are DataFrame views of them.
        self.k_table_ = np.array(rows, dtype=np.float64).reshape(-1, 3)
        self.pipeline_ = pipelines[best]
        self.n_clusters_ = int(ks[best])
        self.centers_raw_ = self._renumber(names)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Return the cluster of every row, computed in chunks of ``chunk_size`` rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features, with the columns (and names) seen in `fit`.

        Returns
        -------
        ndarray of shape (n_samples,), dtype=int64
            Labels 0..n_clusters_-1; 0 is the cluster with the highest centroid monetary.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        return self._chunked(X, "predict").astype(np.int64, copy=False)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return the distance of every row to every centroid (scaled units), in chunks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Raw features, with the columns (and names) seen in `fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_clusters_)
            Euclidean distances after signed log and scaling; column j is cluster j.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        return self._chunked(X, "transform")

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the `transform` columns: ``distance_0``, ``distance_1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored apart from validation against ``feature_names_in_``.

        Returns
        -------
        ndarray of str, dtype=object
            One name per cluster.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        return np.asarray([f"distance_{j}" for j in range(self.n_clusters_)], dtype=object)

    # ------------------------------------------------------------------ helpers

    def _check_params(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ConfigError(
                f"The {name!r} parameter of RFMClusterer must be {expected}. "
                f"Got {getattr(self, name)!r} instead."
            )

        if self.n_clusters is not None and not (is_int(self.n_clusters) and self.n_clusters >= 1):
            fail("n_clusters", "None or an int >= 1")
        k_range = self.k_range
        if not (
            isinstance(k_range, Sequence | np.ndarray)
            and not isinstance(k_range, str)
            and len(k_range) == 2
            and all(is_int(k) for k in k_range)
            and 2 <= k_range[0] <= k_range[1]
        ):
            fail("k_range", "a pair of ints (low, high) with 2 <= low <= high")
        if self.sample_size is not None and not (
            is_int(self.sample_size) and self.sample_size >= 2
        ):
            fail("sample_size", "None or an int >= 2")
        if not (isinstance(self.algorithm, str) and self.algorithm in _ALGORITHMS):
            fail("algorithm", "one of " + ", ".join(map(repr, _ALGORITHMS)))
        rs = self.random_state
        if not (
            rs is None
            or isinstance(rs, np.random.RandomState)
            or (is_int(rs) and 0 <= rs <= np.iinfo(np.uint32).max)
        ):
            fail("random_state", "None, an int in [0, 2**32 - 1] or a numpy RandomState")
        if self.n_jobs is not None and not (is_int(self.n_jobs) and self.n_jobs != 0):
            fail("n_jobs", "None or a nonzero int")
        if not (is_int(self.chunk_size) and self.chunk_size >= 1):
            fail("chunk_size", "an int >= 1")

    def _resolve_algorithm(self) -> str:
        # KMeans was faster and better at every fitting size measured (20k to 1M rows,
        # see the module docstring), so "auto" does not depend on the sample size.
        return "kmeans" if self.algorithm == "auto" else self.algorithm

    @property
    def k_scores_(self) -> pd.DataFrame:
        """Inertia and silhouette of every k fitted: ``k``, ``inertia``, ``silhouette``."""
        check_is_fitted(self)
        table = pd.DataFrame(self.k_table_, columns=["k", "inertia", "silhouette"])
        table["k"] = table["k"].astype(np.int64)
        return table

    @property
    def cluster_centers_(self) -> pd.DataFrame:
        """Centroids in raw units, indexed by ``cluster``, feature names as columns."""
        check_is_fitted(self)
        return pd.DataFrame(self.centers_raw_, columns=self._feature_names(),
                            index=pd.RangeIndex(len(self.centers_raw_), name="cluster"))

    def _feature_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        if self.n_features_in_ == len(_RFM_FEATURES):
            return list(_RFM_FEATURES)
        return [f"x{j}" for j in range(self.n_features_in_)]

    def _renumber(self, names: list[str]) -> np.ndarray:
        """Renumber the fitted KMeans' clusters by descending raw centroid monetary."""
        model = self.pipeline_[-1]
        raw = self.pipeline_[:-1].inverse_transform(model.cluster_centers_)
        key = names.index("monetary") if "monetary" in names else len(names) - 1
        priority = [key] + [j for j in range(len(names)) if j != key]
        order = np.lexsort([-raw[:, j] for j in reversed(priority)])
        new_label = np.empty_like(order)
        new_label[order] = np.arange(len(order))
        model.cluster_centers_ = model.cluster_centers_[order]
        model.labels_ = new_label[model.labels_].astype(model.labels_.dtype)
        return raw[order]

    def _chunked(self, X: np.ndarray, method: str) -> np.ndarray:
        step = self.chunk_size
        chunks = [X[start : start + step] for start in range(0, X.shape[0], step)]
        if self.n_jobs is None or len(chunks) == 1:
            parts = [getattr(self.pipeline_, method)(chunk) for chunk in chunks]
        else:
            parts = Parallel(n_jobs=self.n_jobs, prefer="threads")(
                delayed(getattr(self.pipeline_, method))(chunk) for chunk in chunks
            )
        return np.concatenate(parts)


def make_pipeline(n_clusters: int, algorithm: str = "kmeans", random_state: int = 0) -> Pipeline:
    """Return the unfitted pipeline `RFMClusterer` fits: signed log1p, scaler, k-means.

    Parameters
    ----------
    n_clusters : int
        Number of clusters.
    algorithm : {"kmeans", "minibatch"}, default="kmeans"
        `~sklearn.cluster.KMeans` or `~sklearn.cluster.MiniBatchKMeans`, both with 3
        k-means++ restarts.
    random_state : int, default=0
        Seed of the k-means++ initialisation.

    Returns
    -------
    Pipeline
        Steps ``signed_log1p``, ``scale`` and ``kmeans``.

    Examples
    --------
    >>> list(make_pipeline(4).named_steps)
    ['signed_log1p', 'scale', 'kmeans']
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    model: KMeans | MiniBatchKMeans
    if algorithm == "kmeans":
        model = KMeans(n_clusters=n_clusters, n_init=_N_INIT, random_state=random_state)
    elif algorithm == "minibatch":
        model = MiniBatchKMeans(n_clusters=n_clusters, n_init=_N_INIT, random_state=random_state)
    else:
        raise ConfigError(
            f"The 'algorithm' parameter of make_pipeline must be 'kmeans' or 'minibatch'. "
            f"Got {algorithm!r} instead."
        )
    return Pipeline(
        [
            (
                "signed_log1p",
                FunctionTransformer(
                    signed_log1p,
                    inverse_func=signed_expm1,
                    check_inverse=False,
                    feature_names_out="one-to-one",
                ),
            ),
            ("scale", StandardScaler()),
            ("kmeans", model),
        ]
    )


def silhouettes(
    X: ArrayLike, label_sets: Sequence[ArrayLike], *, chunk_rows: int = 512
) -> list[float]:
    """Mean silhouette coefficient of several labelings of the same rows, in one pass.

    Equal to `sklearn.metrics.silhouette_score` (Euclidean) for each labeling, but the
    pairwise distances, the quadratic part, are computed once for all of them, a chunk
    of rows at a time (``chunk_rows`` x n_samples floats): choosing k over 2..10 costs
    about one silhouette instead of nine.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The points.
    label_sets : sequence of array-like of shape (n_samples,)
        Labelings to score.
    chunk_rows : int, default=512
        Rows of distances held at once.

    Returns
    -------
    list of float
        One score per labeling, NaN when undefined (fewer than 2 labels, or as many
        labels as rows).

    Examples
    --------
    >>> X = [[0.0], [0.1], [1.0], [1.1]]
    >>> [round(s, 4) for s in silhouettes(X, [[0, 0, 1, 1], [0, 1, 1, 1]])]
    [0.8997, 0.0263]
    """
    from sklearn.metrics.pairwise import euclidean_distances

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    codes, blocks, counts = [], [], []
    for labels in label_sets:
        _, code = np.unique(np.asarray(labels), return_inverse=True)
        codes.append(code.ravel())
        counts.append(np.bincount(code.ravel()).astype(np.float64))
        blocks.append(len(counts[-1]))
    onehot = np.zeros((n, sum(blocks)))
    offsets = np.concatenate([[0], np.cumsum(blocks)])
    for code, offset in zip(codes, offsets, strict=False):
        onehot[np.arange(n), offset + code] = 1.0
    totals = np.zeros(len(codes))
    for start in range(0, n, chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, n))
        distances = euclidean_distances(X[rows], X)
        distances[np.arange(len(rows)), rows] = 0.0
        sums = distances @ onehot
        for j, (code, count) in enumerate(zip(codes, counts, strict=True)):
            cluster_sums = sums[:, offsets[j] : offsets[j + 1]]
            own = code[rows]
            own_count = count[own]
            with np.errstate(divide="ignore", invalid="ignore"):
                a = cluster_sums[np.arange(len(rows)), own] / (own_count - 1)
                means = cluster_sums / count
            means[np.arange(len(rows)), own] = np.inf
            b = means.min(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = (b - a) / np.maximum(a, b)
            score[own_count == 1] = 0.0
            totals[j] += np.nansum(score)
    return [
        float(total / n) if 2 <= len(count) <= n - 1 else float("nan")
        for total, count in zip(totals, counts, strict=True)
    ]


# ---------------------------------------------------------------------- naming


def name_clusters(
    centers: pd.DataFrame, customers: pd.DataFrame, labels: ArrayLike
) -> dict[int, str]:
    """Name clusters by centroid profile and by the rule segment most members share.

    Each centroid value is placed in the population: its mid-rank among the customers'
    values (the share below it, plus half the share equal to it). Below 1/3, between,
    or above 2/3 gives one word per dimension:

    ================  ===========  ===========  ============
    dimension         below 1/3    between      above 2/3
    ================  ===========  ===========  ============
    ``recency_days``  recent       cooling      lapsed
    ``frequency``     one-off      repeat       frequent
    ``monetary``      low-value    mid-value    high-value
    ================  ===========  ===========  ============

    The name is ``"C<label> <r>·<f>·<m>"``, unique thanks to the label, followed by
    ``" (mostly <segment>)"`` when ``customers`` has a ``segment`` column: the most
    common segment among the cluster's members (ties: alphabetically first), not
    necessarily more than half of them.

    Parameters
    ----------
    centers : DataFrame
        Centroids in raw units indexed by cluster label, with columns ``recency_days``,
        ``frequency`` and ``monetary`` (e.g. `RFMClusterer.cluster_centers_`).
    customers : DataFrame
        The population: ``recency_days``, ``frequency``, ``monetary`` and optionally
        ``segment`` (not modified).
    labels : array-like of shape (len(customers),)
        Cluster label of every customer.

    Returns
    -------
    dict of int to str
        Name of every cluster of ``centers``, in its index order.

    Raises
    ------
    MissingColumnsError
        When ``centers`` or ``customers`` lacks a feature column.
    InputError
        When ``labels`` does not have one value per customer.

    Examples
    --------
    >>> import pandas as pd
    >>> customers = pd.DataFrame({"recency_days": [3, 5, 200, 300],
    ...                           "frequency": [9, 7, 1, 1],
    ...                           "monetary": [900.0, 700.0, 15.0, 10.0],
    ...                           "segment": ["champions", "champions", "lost", "hibernating"]})
    >>> centers = pd.DataFrame({"recency_days": [4.0, 250.0], "frequency": [8.0, 1.0],
    ...                         "monetary": [800.0, 12.0]})
    >>> for label, name in name_clusters(centers, customers, [0, 0, 1, 1]).items():
    ...     print(label, name)
    0 C0 recent·frequent·high-value (mostly champions)
    1 C1 lapsed·one-off·low-value (mostly hibernating)
    """
    require_columns(centers, _RFM_FEATURES, "centers")
    require_columns(customers, _RFM_FEATURES, "customers")
    labels = np.asarray(labels)
    if labels.shape != (len(customers),):
        raise InputError(
            f"labels must have one value per customer ({len(customers)}); got shape {labels.shape}."
        )
    positions = {}
    for feature in _RFM_FEATURES:
        population = np.sort(customers[feature].to_numpy(dtype=np.float64))
        values = centers[feature].to_numpy(dtype=np.float64)
        positions[feature] = (np.searchsorted(population, values, side="left"),
                              np.searchsorted(population, values, side="right"))
    counts = None
    if "segment" in customers.columns:
        counts = pd.crosstab(
            pd.Series(labels, name="cluster"), customers["segment"].astype(object).to_numpy()
        )
    return names_from_counts(centers, positions, len(customers), counts)


def names_from_counts(
    centers: pd.DataFrame,
    positions: Mapping[str, tuple[ArrayLike, ArrayLike]],
    n_customers: int,
    segment_counts: pd.DataFrame | None,
) -> dict[int, str]:
    """Name clusters from counts: the rule of `name_clusters`, for any engine.

    Parameters
    ----------
    centers : DataFrame
        Centroids in raw units indexed by cluster label (columns ``recency_days``,
        ``frequency``, ``monetary``).
    positions : mapping of str to (array-like, array-like)
        Per feature, for each centroid in ``centers``' order: how many customers have a
        value below it, and how many a value at most it.
    n_customers : int
        Customers in the population.
    segment_counts : DataFrame or None
        Customers per cluster label (index) and rule segment (columns); None names
        clusters by profile alone.

    Returns
    -------
    dict of int to str
        Name of every cluster of ``centers``, in its index order.
    """
    words = {}
    for feature in _RFM_FEATURES:
        below, upto = (np.asarray(side, dtype=np.float64) for side in positions[feature])
        midrank = (below + upto) / 2 / max(n_customers, 1)
        level = np.where(midrank < 1 / 3, 0, np.where(midrank > 2 / 3, 2, 1))
        words[feature] = [_PROFILE_WORDS[feature][lv] for lv in level]
    majority: dict[Any, str] = {}
    if segment_counts is not None:
        counts = segment_counts.reindex(sorted(segment_counts.columns, key=str), axis=1)
        majority = {label: str(row.idxmax()) for label, row in counts.iterrows() if row.sum() > 0}
    names = {}
    for i, label in enumerate(centers.index):
        profile = "·".join(words[feature][i] for feature in _RFM_FEATURES)
        name = f"C{label} {profile}"
        if label in majority:
            name += f" (mostly {majority[label]})"
        names[int(label)] = name
    return names


# ---------------------------------------------------------------------- plots


def plot_elbow(
    k_scores: pd.DataFrame, ax: Axes | None = None, *, chosen: int | None = None
) -> Axes:
    """Plot inertia against k (the elbow curve).

    Parameters
    ----------
    k_scores : DataFrame
        Columns ``k`` and ``inertia``, e.g. `RFMClusterer.k_scores_`.
    ax : Axes or None, default=None
        Where to draw; None draws on a new figure (no pyplot state).
    chosen : int or None, default=None
        The k to mark with a dashed line.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"k": [2, 3, 4], "inertia": [90.0, 40.0, 35.0]})
    >>> plot_elbow(scores, chosen=3).get_xlabel()
    'k (number of clusters)'
    """
    return _plot_k(
        k_scores,
        "inertia",
        "inertia (within-cluster sum of squares)",
        "Elbow: inertia by k",
        ax,
        chosen,
    )


def plot_silhouette(
    k_scores: pd.DataFrame, ax: Axes | None = None, *, chosen: int | None = None
) -> Axes:
    """Plot the silhouette score against k.

    Parameters
    ----------
    k_scores : DataFrame
        Columns ``k`` and ``silhouette``, e.g. `RFMClusterer.k_scores_`.
    ax : Axes or None, default=None
        Where to draw; None draws on a new figure (no pyplot state).
    chosen : int or None, default=None
        The k to mark with a dashed line.

    Returns
    -------
    Axes

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"k": [2, 3, 4], "silhouette": [0.5, 0.7, 0.6]})
    >>> plot_silhouette(scores).get_ylabel()
    'silhouette score (higher is better)'
    """
    return _plot_k(
        k_scores, "silhouette", "silhouette score (higher is better)", "Silhouette by k", ax, chosen
    )


def _plot_k(
    k_scores: pd.DataFrame,
    column: str,
    ylabel: str,
    title: str,
    ax: Axes | None,
    chosen: int | None,
) -> Axes:
    if ax is None:
        ax = new_axes()
    ks = k_scores["k"].to_numpy()
    ax.plot(ks, k_scores[column].to_numpy(dtype=np.float64), marker="o", color="#1f77b4")
    if chosen is not None:
        ax.axvline(
            chosen, color="#d62728", linestyle="--", linewidth=1, label=f"chosen k = {chosen}"
        )
        ax.legend(loc="best")
    ax.set_xticks(ks)
    ax.set_xlabel("k (number of clusters)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


# ---------------------------------------------------------------------- result


@dataclass(eq=False)
class Clustering:
    """Clustered customers, the clusterer that made them, and how they compare to segments.

    Attributes
    ----------
    customers : DataFrame
        The customer table plus ``cluster`` (int) and ``cluster_name`` (str).
    clusterer : RFMClusterer
        The fitted clusterer.
    names : dict of int to str
        Cluster label to name (see `name_clusters`).
    """

    customers: pd.DataFrame
    clusterer: RFMClusterer
    names: dict[int, str]

    @property
    def k_scores(self) -> pd.DataFrame:
        """Inertia and silhouette of every k tried (``RFMClusterer.k_scores_``)."""
        return self.clusterer.k_scores_

    @cached_property
    def crosstab(self) -> pd.DataFrame | None:
        """Customers by ``cluster_name`` (rows, in label order) × rule ``segment``.

        None when the customers have no ``segment`` column.
        """
        if "segment" not in self.customers.columns:
            return None
        table = pd.crosstab(self.customers["cluster_name"], self.customers["segment"])
        return table.reindex(list(self.names.values()), fill_value=0)

    @cached_property
    def adjusted_rand_index(self) -> float | None:
        """Adjusted Rand index of clusters vs rule segments (1 = same partition).

        None when the customers have no ``segment`` column.
        """
        from sklearn.metrics import adjusted_rand_score

        if "segment" not in self.customers.columns:
            return None
        segments = self.customers["segment"].astype(object).to_numpy()
        return float(adjusted_rand_score(segments, self.customers["cluster"].to_numpy()))

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Per cluster: customers, share, revenue, revenue share and mean R, F, M."""
        grouped = self.customers.groupby("cluster", sort=True)
        table = pd.DataFrame({"customers": grouped.size(),
                              "mean_recency_days": grouped["recency_days"].mean(),
                              "mean_frequency": grouped["frequency"].mean()})
        # revenue: exact sums rounded once, as the segment table's (any engine, any order)
        revenue, counts, total = money_totals(
            money_by(self.customers["cluster"], self.customers["monetary"]), "cluster")
        return finish_cluster_summary(with_money(table, revenue, counts), self.names,
                                      len(self.customers), total)

    def metrics(self) -> dict[str, float | int | None]:
        """Numbers worth tracking across runs: k, silhouette, inertia and the ARI.

        Returns
        -------
        dict
            ``k``, ``silhouette`` and ``inertia`` of the fitted k (on the sample),
            ``adjusted_rand_index`` (None without segments).
        """
        k = self.clusterer.n_clusters_
        row = self.k_scores.loc[self.k_scores["k"] == k].iloc[0]
        return {
            "k": int(k),
            "silhouette": float(row["silhouette"]),
            "inertia": float(row["inertia"]),
            "adjusted_rand_index": self.adjusted_rand_index,
        }

    def plot_elbow(self, ax: Axes | None = None) -> Axes:
        """Plot inertia by k, marking the chosen k; see `plot_elbow`."""
        return plot_elbow(self.k_scores, ax, chosen=self.clusterer.n_clusters_)

    def plot_silhouette(self, ax: Axes | None = None) -> Axes:
        """Plot the silhouette score by k, marking the chosen k; see `plot_silhouette`."""
        return plot_silhouette(self.k_scores, ax, chosen=self.clusterer.n_clusters_)

    def write_plots(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write ``elbow.png`` and ``silhouette.png`` into ``folder`` (created if needed).

        The files are byte-identical for identical inputs (no software or date metadata).

        Parameters
        ----------
        folder : str or path-like
            Destination folder; existing files are replaced.

        Returns
        -------
        list of Path
            The two files written.
        """
        return write_all(self.plot_writers(folder), force=True)

    def plot_writers(self, folder: str | os.PathLike[str]) -> dict[Path, Any]:
        """Return ``{path: writer}`` for the two plots (:func:`rfm_engine.io.writers.write_all`)."""
        folder = Path(folder)
        return {folder / "elbow.png": figure_writer(self.plot_elbow().figure, dpi=_PNG_DPI),
                folder / "silhouette.png": figure_writer(self.plot_silhouette().figure,
                                                         dpi=_PNG_DPI)}


def finish_cluster_summary(table: pd.DataFrame, names: Mapping[int, str], n_customers: int,
                           total_revenue: float) -> pd.DataFrame:
    """Finish the per-cluster table of `Clustering.summary` from its aggregates (any engine).

    Parameters
    ----------
    table : DataFrame
        Indexed by cluster label: ``customers``, ``revenue``, ``mean_recency_days``,
        ``mean_frequency``, ``mean_monetary``.
    names : mapping of int to str
        Every cluster's name, in label order (clusters without customers get zeros).
    n_customers : int
        Customers in all clusters.
    total_revenue : float
        Their ``monetary``, summed.

    Returns
    -------
    DataFrame
        ``cluster, cluster_name, customers, share, revenue, revenue_share`` and the means.
    """
    table = table.reindex(list(names), fill_value=0)
    table["customers"] = table["customers"].astype(np.int64)
    table.insert(0, "cluster_name", [names[label] for label in table.index])
    table.insert(2, "share", table["customers"] / max(n_customers, 1))
    table.insert(4, "revenue_share", table["revenue"] / total_revenue if total_revenue else np.nan)
    table.index.name = "cluster"
    return table.reset_index()


def adjusted_rand_from_counts(contingency: ArrayLike) -> float:
    """Return the adjusted Rand index of a contingency table (customers per class x cluster).

    The integer arithmetic of `sklearn.metrics.adjusted_rand_score` (its pair confusion
    matrix), so the same float, for an engine that counts the pairs of labels where the
    labels are instead of collecting them.

    Parameters
    ----------
    contingency : array-like of int, shape (n_classes, n_clusters)
        Rows labelled with each pair (either orientation: the index is symmetric).

    Returns
    -------
    float

    Examples
    --------
    >>> adjusted_rand_from_counts([[2, 0], [1, 1]])  # adjusted_rand_score([0,0,1,1], [0,0,0,1])
    0.0
    """
    counts = np.asarray(contingency, dtype=np.int64)
    n_samples = int(counts.sum())
    n_c = [int(v) for v in counts.sum(axis=1)]
    n_k = [int(v) for v in counts.sum(axis=0)]
    sum_squares = int((counts.astype(object) ** 2).sum())
    fp = int((counts.astype(object) @ np.asarray(n_k, dtype=object)).sum()) - sum_squares
    fn = int((counts.T.astype(object) @ np.asarray(n_c, dtype=object)).sum()) - sum_squares
    tp = sum_squares - n_samples
    tn = n_samples**2 - fp - fn - sum_squares
    if fn == 0 and fp == 0:  # empty data or full agreement
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def cluster_customers(
    customers: pd.DataFrame,
    *,
    n_clusters: int | None = None,
    k_range: tuple[int, int] = (2, 10),
    sample_size: int | None = 20_000,
    algorithm: str = "auto",
    random_state: int | np.random.RandomState | None = 0,
    n_jobs: int | None = None,
) -> Clustering:
    """Cluster customers on R, F and M, name the clusters and compare them with segments.

    Parameters
    ----------
    customers : DataFrame
        The customer table (``recency_days``, ``frequency``, ``monetary``; ``segment``
        and scores when scored); not modified.
    n_clusters : int or None, default=None
        Number of clusters; None chooses it by silhouette over ``k_range``.
    k_range : tuple of (int, int), default=(2, 10)
        Smallest and largest k tried when ``n_clusters`` is None.
    sample_size : int or None, default=20_000
        Customers in the seeded fitting sample; None fits on all.
    algorithm : {"auto", "kmeans", "minibatch"}, default="auto"
        See `RFMClusterer`.
    random_state : int, RandomState instance or None, default=0
        Seed of the sample and of the initialisation.
    n_jobs : int or None, default=None
        Parallel chunks when labelling the customers.

    Returns
    -------
    Clustering

    Raises
    ------
    MissingColumnsError
        When a feature column is missing.
    ConfigError
        For an invalid parameter.

    Examples
    --------
    >>> import pandas as pd
    >>> customers = pd.DataFrame({
    ...     "customer_id": list("abcdefgh"),
    ...     "recency_days": [2, 3, 4, 5, 200, 220, 240, 260],
    ...     "frequency": [9, 8, 9, 7, 1, 1, 1, 1],
    ...     "monetary": [900.0, 800.0, 950.0, 700.0, 15.0, 10.0, -5.0, 12.0],
    ...     "segment": ["champions"] * 4 + ["lost"] * 3 + ["hibernating"]})
    >>> result = cluster_customers(customers, k_range=(2, 4))
    >>> result.customers.groupby("cluster_name").size()
    cluster_name
    C0 recent·frequent·high-value (mostly champions)    4
    C1 lapsed·one-off·low-value (mostly lost)           4
    dtype: int64
    >>> round(result.adjusted_rand_index, 3)
    0.774
    """
    require_columns(customers, _RFM_FEATURES, "customers")
    clusterer = RFMClusterer(
        n_clusters,
        k_range=k_range,
        sample_size=sample_size,
        algorithm=algorithm,
        random_state=random_state,
        n_jobs=n_jobs,
    ).fit(customers[list(_RFM_FEATURES)])
    return apply_clusterer(customers, clusterer, labels=clusterer.labels_)


def apply_clusterer(customers: pd.DataFrame, clusterer: RFMClusterer, *,
                    labels: np.ndarray | None = None) -> Clustering:
    """Label customers with a fitted (e.g. frozen) clusterer and name its clusters.

    Parameters
    ----------
    customers : DataFrame
        ``recency_days``, ``frequency``, ``monetary`` (and ``segment`` for the crosstab).
    clusterer : RFMClusterer
        Fitted.
    labels : ndarray, optional
        Labels already computed for ``customers`` (skips the prediction).

    Returns
    -------
    Clustering
    """
    require_columns(customers, _RFM_FEATURES, "customers")
    if labels is None:
        labels = clusterer.predict(customers[list(_RFM_FEATURES)])
    names = name_clusters(clusterer.cluster_centers_, customers, labels)
    out = customers.copy()
    out["cluster"] = labels
    lookup = np.asarray([names[label] for label in range(clusterer.n_clusters_)], dtype=object)
    out["cluster_name"] = pd.Series(lookup[labels], index=out.index, dtype="str")
    return Clustering(out, clusterer, names)
