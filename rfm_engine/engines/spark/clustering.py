"""K-means clusters on Spark: the pandas path's sample, fit, labels and names.

:func:`cluster_customers` is :func:`rfm_engine.core.clustering.cluster_customers` for a
customer table that stays on Spark, with the same result (labels, names, k scores,
centres), by the same code:

* **The sample.** :meth:`RFMClusterer.fit_drawn
  <rfm_engine.core.clustering.RFMClusterer.fit_drawn>` draws, on the driver with the seeded
  generator, the positions of the fitting sample in the table's canonical order (sorted by
  ``recency_days``, then ``frequency``, then ``monetary``), as ``fit`` does. Spark finds the
  rows at those positions: the distinct ``(recency_days, frequency, monetary)`` values with
  their counts (tied rows are equal, so which of them holds a position does not change the
  sample), range-partitioned; each partition's first position is its count of rows before
  it; a pandas function per partition keeps the values whose positions hold a sampled one
  (the positions broadcast). At most ``sample_size`` values come to the driver.
* **The fit** is the very scikit-learn fit of ``RFMClusterer`` on that sample (k by
  silhouette, the renumbering), on the driver.
* **Labels**: a pandas UDF calls :meth:`RFMClusterer.predict
  <rfm_engine.core.clustering.RFMClusterer.predict>` on each Arrow batch (each row's label
  depends on its own values only), the pandas path's ``labels_`` being that ``predict``.
* **Names** by :func:`~rfm_engine.core.clustering.names_from_counts`, the rule of
  ``name_clusters``, from counts Spark takes in one aggregation (customers below and at
  each centre, per feature) and one grouping (customers per cluster and segment).
* :class:`SparkClustering`: the summary (one aggregation, finished by
  :func:`~rfm_engine.core.clustering.finish_cluster_summary`), the crosstab and the
  adjusted Rand index (from the cluster x segment counts, by
  :func:`~rfm_engine.core.clustering.adjusted_rand_from_counts`: the same float as
  scikit-learn's) come from Spark; :meth:`SparkClustering.collect` gives the pandas
  :class:`~rfm_engine.core.clustering.Clustering`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...core.clustering import (
    Clustering,
    RFMClusterer,
    adjusted_rand_from_counts,
    finish_cluster_summary,
    names_from_counts,
)
from ...core.features import arrow_frame
from ...core.pipeline import RFM_FEATURES, money_totals, with_money
from ...errors import InputError
from ...io._validation import require_columns
from ...progress import step
from .features import arrow_customers
from .handoff import persisted
from .segments import group_sums
from .session import pandas_conversion

__all__ = ["SparkClustering", "apply_clusterer", "cluster_customers", "fit_clusterer"]

_FEATURES = list(RFM_FEATURES)
_CUSTOMERS = "customers"


@dataclass(eq=False)
class SparkClustering(Clustering):
    """A :class:`~rfm_engine.core.clustering.Clustering` whose customers are on Spark.

    Attributes
    ----------
    customers : pyspark.sql.DataFrame
        The input columns plus ``cluster`` (long) and ``cluster_name`` (string); the
        labels are persisted.
    clusterer : RFMClusterer
        The fitted clusterer (on the driver): the object the pandas path fits; its
        ``labels_`` are on Spark (``cluster``) until :meth:`collect`.
    names : dict of int to str
        Cluster label to name.
    segment_counts : pandas.DataFrame or None
        Customers per cluster label (index) and rule segment (columns); None without a
        ``segment`` column.
    n_customers : int
        Customers clustered.
    fitted_here : bool
        The clusterer was fitted on these customers (by :func:`cluster_customers`), not
        frozen: :meth:`collect` then gives it ``labels_``.
    labelled : pyspark.sql.DataFrame or None
        The persisted frame of the labels (``customers`` reads it): unpersist it when
        done (the weekly run does when it ends).
    """

    segment_counts: pd.DataFrame | None = None
    n_customers: int = 0
    fitted_here: bool = False
    labelled: DataFrame | None = field(default=None, repr=False)

    @cached_property
    def crosstab(self) -> pd.DataFrame | None:  # type: ignore[override]
        """Customers by ``cluster_name`` (rows, in label order) x rule ``segment``.

        The table of :attr:`Clustering.crosstab`, from the counts Spark took.
        """
        if self.segment_counts is None:
            return None
        counts = self.segment_counts
        counts = counts.reindex(sorted(counts.columns), axis=1).rename(index=self.names)
        table = counts.reindex(list(self.names.values()), fill_value=0).astype(np.int64)
        table.index.name, table.columns.name = "cluster_name", "segment"
        return table

    @cached_property
    def adjusted_rand_index(self) -> float | None:  # type: ignore[override]
        """Adjusted Rand index of clusters vs rule segments, from Spark's counts."""
        if self.segment_counts is None:
            return None
        return adjusted_rand_from_counts(self.segment_counts.to_numpy())

    @cached_property
    def summary(self) -> pd.DataFrame:  # type: ignore[override]
        """Per cluster: customers, share, revenue, revenue share, mean R, F, M (on Spark).

        The pandas table's values, bit for bit: revenue is summed exactly (one aggregation,
        :func:`~rfm_engine.engines.spark.segments.group_sums`) and rounded once.
        """
        with step("summarising clusters (spark)"):
            table, money = group_sums(self.customers, "cluster")
        table.index = table.index.astype("int64")
        revenue, counts, total = money_totals(money.astype({"cluster": "int64"}), "cluster")
        return finish_cluster_summary(with_money(table, revenue, counts).sort_index(),
                                      self.names, self.n_customers, total)

    def collect(self) -> Clustering:
        """Collect the customers to the driver: the pandas Clustering, sorted by id.

        The customers, labels and names of :func:`rfm_engine.core.clustering.cluster_customers`
        (columns, types, order); the summary, crosstab and index are then computed by
        pandas, as the DuckDB engine's. A clusterer fitted here gets the collected labels
        as ``labels_`` (in ``customer_id`` order, as the pandas path's fit on the table
        sorted by id), so it is the pandas path's object attribute for attribute.
        """
        with step("collecting clustered customers (spark)"), pandas_conversion():
            arrow = self.customers.toArrow()
        customers = arrow_frame(arrow_customers(arrow))
        if self.fitted_here:
            self.clusterer.labels_ = customers["cluster"].to_numpy(dtype=np.int64)
        return Clustering(customers, self.clusterer, dict(self.names))


def cluster_customers(
    customers: DataFrame,
    *,
    n_clusters: int | None = None,
    k_range: tuple[int, int] = (2, 10),
    sample_size: int | None = 20_000,
    algorithm: str = "auto",
    random_state: int | np.random.RandomState | None = 0,
) -> SparkClustering:
    """Cluster a Spark customer table on R, F and M; name the clusters on Spark.

    :func:`rfm_engine.core.clustering.cluster_customers` on Spark: the same seeded sample
    rows, the same scikit-learn fit (on the driver), the same labels and names.

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        The customer table (``recency_days``, ``frequency``, ``monetary``; ``segment`` to
        compare with the rule segments).
    n_clusters, k_range, sample_size, algorithm, random_state
        As :func:`rfm_engine.core.clustering.cluster_customers`.

    Returns
    -------
    SparkClustering

    Raises
    ------
    MissingColumnsError
        A feature column is missing.
    ConfigError
        An invalid parameter, or too few (distinct) customers.
    InputError
        A feature is missing (null) or not finite.
    """
    require_columns(customers, _FEATURES, _CUSTOMERS)
    clusterer = RFMClusterer(n_clusters, k_range=k_range, sample_size=sample_size,
                             algorithm=algorithm, random_state=random_state)
    result = apply_clusterer(customers, fit_clusterer(customers, clusterer))
    result.fitted_here = True
    return result


def fit_clusterer(customers: DataFrame, clusterer: RFMClusterer) -> RFMClusterer:
    """Fit ``clusterer`` on its seeded sample of a Spark customer table (see the module).

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        ``recency_days``, ``frequency`` and ``monetary``.
    clusterer : RFMClusterer
        Unfitted (its parameters say the sample size and seed); fitted in place.

    Returns
    -------
    RFMClusterer
        ``clusterer``, fitted as ``clusterer.fit`` on the collected table would fit it,
        without ``labels_``.
    """
    require_columns(customers, _FEATURES, _CUSTOMERS)
    keys = customers.select(*(F.col(f).cast("double").alias(f) for f in _FEATURES))
    groups = keys.groupBy(*_FEATURES).agg(F.count(F.lit(1)).alias("_rows"))
    # Persisted: the counts per partition and the picking must see the same partitions.
    ranged = persisted(groups.repartitionByRange(*_FEATURES)
                       .withColumn("_part", F.spark_partition_id()))
    try:
        with step("k-means: counting the customers (spark)"):
            offsets, n_samples = _offsets(ranged)
        with step("k-means: fitting on the seeded sample"):
            clusterer.fit_drawn(n_samples, lambda ranks: _pick(ranged, offsets, ranks))
    finally:
        ranged.unpersist()
    return clusterer


def _offsets(ranged: DataFrame) -> tuple[dict[int, int], int]:
    """Return each partition's first position in canonical order, and the row count."""
    bad = [F.sum(F.when(_not_finite(f), F.col("_rows"))).alias(f) for f in _FEATURES]
    rows = ranged.groupBy("_part").agg(F.sum("_rows").alias("_rows"),
                                       F.min(F.struct(*_FEATURES)).alias("_first"),
                                       *bad).collect()
    for f in _FEATURES:
        count = sum(row[f] or 0 for row in rows)
        if count:
            raise InputError(f"{_CUSTOMERS}: {count} customer(s) have a missing or infinite "
                             f"{f}; k-means needs finite recency_days, frequency and monetary.")
    # Range partitions hold disjoint ranges of values: ordered by their smallest value.
    offsets, position = {}, 0
    for row in sorted(rows, key=lambda r: tuple(r["_first"])):
        offsets[int(row["_part"])] = position
        position += int(row["_rows"])
    return offsets, position


def _not_finite(feature: str) -> Column:
    value = F.col(feature)
    return value.isNull() | F.isnan(value) | (F.abs(value) == float("inf"))


def _pick(ranged: DataFrame, offsets: dict[int, int], ranks: np.ndarray) -> pd.DataFrame:
    """Return the rows at positions ``ranks`` (sorted) of the table in canonical order."""
    shared = ranged.sparkSession.sparkContext.broadcast((offsets, np.asarray(ranks)))

    def pick(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        starts, wanted = shared.value
        frames = list(batches)
        if not frames:
            return
        for part, frame in pd.concat(frames).groupby("_part"):
            values = [frame[f].to_numpy() for f in _FEATURES]
            order = np.lexsort(values[::-1])
            rows = frame["_rows"].to_numpy(dtype=np.int64)[order]
            first = starts[int(part)] + np.cumsum(rows) - rows
            times = (np.searchsorted(wanted, first + rows, side="left")
                     - np.searchsorted(wanted, first, side="left"))
            kept = order[times > 0]
            yield pd.DataFrame({**{f: v[kept] for f, v in zip(_FEATURES, values, strict=True)},
                                "_first": first[times > 0], "_times": times[times > 0]})

    schema = ", ".join([f"{f} double" for f in _FEATURES] + ["_first long", "_times long"])
    try:
        with pandas_conversion():
            picked = ranged.mapInPandas(pick, schema).toPandas()
    finally:
        shared.unpersist()
    picked = picked.sort_values("_first", kind="stable")
    times = picked["_times"].to_numpy(dtype=np.int64)
    return pd.DataFrame({f: np.repeat(picked[f].to_numpy(dtype=np.float64), times)
                         for f in _FEATURES})


def apply_clusterer(customers: DataFrame, clusterer: Any) -> SparkClustering:
    """Label a Spark customer table with a fitted (e.g. frozen) clusterer; name its clusters.

    :func:`rfm_engine.core.clustering.apply_clusterer` on Spark: ``clusterer.predict`` in a
    pandas UDF, the names by the rule of ``name_clusters`` from Spark's counts.

    Parameters
    ----------
    customers : pyspark.sql.DataFrame
        ``recency_days``, ``frequency``, ``monetary`` (and ``segment`` for the crosstab).
    clusterer : RFMClusterer
        Fitted (``predict``, ``cluster_centers_``, ``n_clusters_``).

    Returns
    -------
    SparkClustering
    """
    require_columns(customers, _FEATURES, _CUSTOMERS)
    with step("k-means: labelling and naming the clusters (spark)"):
        centers = clusterer.cluster_centers_
        require_columns(centers, _FEATURES, "centers")
        labelled = persisted(customers.withColumn("cluster", _labels(clusterer)))
        counts = []
        for f in _FEATURES:
            value = F.col(f).cast("double")
            for c in centers[f].to_numpy(dtype=np.float64):
                counts += [F.count_if(value < float(c)), F.count_if(value <= float(c))]
        found = labelled.agg(F.count(F.lit(1)), *counts).first()
        n_customers, found = int(found[0]), [int(v) for v in found[1:]]
        k = len(centers)
        positions = {f: (found[2 * k * i:2 * k * (i + 1):2], found[2 * k * i + 1:2 * k * (i + 1):2])
                     for i, f in enumerate(_FEATURES)}
        segment_counts = (_segment_counts(labelled) if "segment" in customers.columns
                          else None)
        names = names_from_counts(centers, positions, n_customers, segment_counts)
    lookup = F.array(*(F.lit(names[label]) for label in range(clusterer.n_clusters_)))
    out = labelled.withColumn("cluster_name", lookup[F.col("cluster").cast("int")])
    return SparkClustering(out, clusterer, names, segment_counts=segment_counts,
                           n_customers=n_customers, labelled=labelled)


def _labels(clusterer: Any) -> Column:
    """Return the Column: ``clusterer.predict`` of each row's features (a pandas UDF)."""
    features = [str(f) for f in getattr(clusterer, "feature_names_in_", _FEATURES)]

    def predict(batch: pd.DataFrame) -> pd.Series:
        return pd.Series(np.asarray(clusterer.predict(batch[features]), dtype=np.int64))

    with pandas_conversion():
        udf = F.pandas_udf(predict, "long")  # type: ignore[call-overload]
    return udf(F.struct(*(F.col(f) for f in features)))


def _segment_counts(labelled: DataFrame) -> pd.DataFrame:
    """Return the customers per cluster label (index) and segment (columns), as pd.crosstab."""
    with pandas_conversion():
        rows = (labelled.filter(F.col("segment").isNotNull())
                .groupBy("cluster", "segment").agg(F.count(F.lit(1)).alias("n")).toPandas())
    table = rows.pivot(index="cluster", columns="segment", values="n")
    table = table.fillna(0).astype(np.int64).sort_index()
    table.index = table.index.astype(np.int64)
    return table.reindex(sorted(table.columns), axis=1)
