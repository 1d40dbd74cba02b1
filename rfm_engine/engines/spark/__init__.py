"""The transaction-scale steps on Apache Spark: loading, cleaning, orders, customer features.

``--engine spark`` (``[input] engine = "spark"``) runs these steps with PySpark's DataFrame
API and Spark SQL instead of DuckDB, with the same meaning (issue 13, first slice):

* **loading** reads Parquet files or folders (the files :mod:`rfm_engine.io.sources`
  lists), Delta tables (with Delta Lake on the session), CSV files (Spark's CSV reader,
  every column as text), a table of Spark's catalog (``table``) or a Spark DataFrame;
  ``date_format`` dates are parsed by the DuckDB engine's own SQL in a pandas UDF and
  ``decimal=","`` means what it means there. It applies the same cleaning rules with the same
  data-quality counts as :func:`rfm_engine.io.loading.load_transactions`: ids stripped of
  Unicode whitespace, NFC and spreadsheet floats (``17850.0`` -> ``17850``); ISO dates;
  amounts (or quantity x unit price) kept to 4 decimals; bad values refused naming the
  file, data row, column and value (or dropped and counted); missing ids, identical lines
  (with an order id), dates after ``as_of`` and before the window counted. The counts are
  tallied by the DuckDB engine's own functions (:func:`~rfm_engine.io.loading.tally_bad`,
  :func:`~rfm_engine.io.loading.apply_rules`) from a small table of counts per date.
* **orders** are built by the very SQL text of
  :func:`~rfm_engine.core.orders.grouped_lines_sql` (with the purchase rule
  :data:`~rfm_engine.core.orders.IS_PURCHASE`), which Spark SQL runs unchanged.
* **customer features** are aggregated per customer in Spark (the work partitions by
  customer): :func:`customer_frame_spark` keeps the table on Spark,
  :func:`customer_features` collects it to the driver as Arrow.
* **scores and segments** (:mod:`.scoring`, :mod:`.segments`): :func:`fit_scorer` fits an
  ordinary :class:`~rfm_engine.core.scoring.RFMScorer` from quantiles Spark computes (exact:
  the same edges as on the collected table; or ``percentile_approx``);
  :func:`score_segments` applies a fitted or frozen scorer and a rule set as Column
  expressions (no collect, no UDF) with the values of
  :func:`rfm_engine.core.pipeline.segment_customers`; :func:`segment_summary` aggregates
  the segment table on Spark.
* **migration, campaigns, suggestions** (:mod:`.migration`, :mod:`.campaigns`,
  :mod:`.suggestions`): migration against the previous run's ``customers.parquet`` (a file
  or a folder of parts), the holdout draw (bit-identical), campaign assignment with
  suppression, consent, email rules, quarantine, spacing, one row per address, holdout and
  caps, the campaign counts, and cross-sell/up-sell suggestions, calling the rules of
  :mod:`rfm_engine.campaigns` and :mod:`rfm_engine.measurement`.
* **k-means clusters** (:mod:`.clustering`): :func:`cluster_customers` fits
  :class:`~rfm_engine.core.clustering.RFMClusterer` on the driver on the very seeded sample
  the pandas path draws (found on Spark, only the sample collected), labels with its
  ``predict`` in a pandas UDF and names the clusters from Spark's counts;
  :func:`apply_clusterer` applies a frozen one.

Not on Spark: DuckDB database files (the DuckDB engine reads them).

pyspark is imported here only (the import contracts in ``pyproject.toml`` say so);
``pip install rfm-engine[spark]`` installs it, and Spark needs a Java 17+ runtime.
"""

from .campaigns import assign_campaigns, campaign_counts, holdout_draw
from .clustering import SparkClustering, apply_clusterer, cluster_customers, fit_clusterer
from .clv import clv_summary, count_customers, holdout_purchases, repeat_purchase_days
from .features import customer_features, customer_frame_spark, orders_frame
from .handoff import (
    SparkCustomers,
    collect,
    driver_transactions,
    from_pandas,
    in_campaigns,
    people,
    persisted,
    without_customers,
    write_customers,
    write_parts,
)
from .loading import SparkTransactions, load_transactions
from .migration import SparkMigration, migrate
from .scoring import DEFAULT_ACCURACY, fit_scorer, score_columns, with_scores
from .segments import (
    SparkSegmentation,
    score_segments,
    segment_column,
    segment_customers,
    segment_summary,
)
from .session import SESSION_CONF, spark_session
from .suggestions import suggest_items

__all__ = ["DEFAULT_ACCURACY", "SESSION_CONF", "SparkClustering", "SparkCustomers",
           "SparkMigration", "SparkSegmentation", "SparkTransactions", "apply_clusterer",
           "assign_campaigns", "campaign_counts", "cluster_customers", "clv_summary", "collect",
           "count_customers", "customer_features", "customer_frame_spark",
           "driver_transactions", "fit_clusterer", "fit_scorer", "from_pandas",
           "holdout_draw", "in_campaigns", "load_transactions", "migrate", "orders_frame",
           "people", "persisted", "score_columns", "score_segments", "segment_column",
           "segment_customers", "segment_summary", "spark_session", "suggest_items",
           "with_scores", "without_customers", "write_customers", "write_parts",
           "holdout_purchases", "repeat_purchase_days"]
