"""K-means clusters on Spark (issue 13): the pandas path's sample, fit, labels and names.

Every test clusters with the pandas code (``core.clustering``) and with
``engines.spark.clustering`` on the same customers and compares: labels, names, k scores,
centres and the fitted pipeline exactly; the summary to the last bits. Spark runs in local
mode (the session fixture ``spark``).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfm_engine.core import clustering as core
from rfm_engine.core.features import customer_features
from rfm_engine.core.pipeline import segment_customers
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import InputError
from rfm_engine.io.loading import load_transactions

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
                  "email": "Email", "first_name": "First Name", "country": "Country"}
FEATURES = ["recency_days", "frequency", "monetary"]


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    return write_sample(folder, n_customers=400, seed=5)["transactions"]


@pytest.fixture(scope="module")
def sample_customers(sample_csv) -> pd.DataFrame:
    """The sample data's scored customers (sorted by id), as the `cluster` command has them."""
    tx = load_transactions(sample_csv, columns=SAMPLE_COLUMNS, as_of="2025-10-31",
                           on_bad_rows="drop")
    return segment_customers(customer_features(tx)).customers


def heavy_tailed(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Customers with heavy-tailed spend (some net negative) and many tied rows."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "recency_days": rng.integers(0, 40, n) * 7,
        "frequency": np.minimum(rng.geometric(0.5, n), 6),
        "monetary": np.round(rng.lognormal(3, 1.5, n), -1) * rng.choice([1, 1, 1, -1], n),
        "segment": rng.choice(["at_risk", "champions", "lost", "new"], n)})


def _spark_frame(spark, customers: pd.DataFrame):
    from rfm_engine.engines.spark.session import pandas_conversion

    with pandas_conversion():
        return spark.createDataFrame(customers).persist()


def _same_clustering(spark, customers: pd.DataFrame, **options):
    """Spark's cluster_customers == pandas' on ``customers`` (sorted by id); returns both."""
    from rfm_engine.engines.spark import cluster_customers

    expected = core.cluster_customers(customers, **options)
    result = cluster_customers(_spark_frame(spark, customers), **options)
    _same_result(result, expected)
    return result, expected


def _same_result(result, expected) -> None:
    got = result.collect()
    pd.testing.assert_frame_equal(got.customers, expected.customers)  # labels and names
    assert result.names == expected.names
    fitted, wanted = result.clusterer, expected.clusterer
    assert fitted.get_params() == wanted.get_params()
    pd.testing.assert_frame_equal(fitted.k_scores_, wanted.k_scores_, check_exact=True)
    pd.testing.assert_frame_equal(fitted.cluster_centers_, wanted.cluster_centers_,
                                  check_exact=True)
    for a, b in ((fitted.pipeline_[1].mean_, wanted.pipeline_[1].mean_),
                 (fitted.pipeline_[1].scale_, wanted.pipeline_[1].scale_),
                 (fitted.pipeline_[-1].cluster_centers_, wanted.pipeline_[-1].cluster_centers_)):
        np.testing.assert_array_equal(a, b)
    assert list(fitted.feature_names_in_) == list(wanted.feature_names_in_)
    np.testing.assert_array_equal(got.clusterer.labels_, wanted.labels_)  # in id order
    assert got.clusterer.labels_.dtype == wanted.labels_.dtype
    if expected.crosstab is None:
        assert result.crosstab is None and result.adjusted_rand_index is None
    else:
        pd.testing.assert_frame_equal(result.crosstab, expected.crosstab)
        assert result.adjusted_rand_index == expected.adjusted_rand_index
    pd.testing.assert_frame_equal(result.summary, expected.summary, rtol=1e-12)
    pd.testing.assert_frame_equal(got.summary, expected.summary)
    assert result.metrics() == expected.metrics()


@pytest.mark.parametrize("sample_size", [150, None])
def test_sample_data_gives_the_same_clusters(spark, sample_customers, sample_size):
    assert sample_size is None or sample_size < len(sample_customers)
    _same_clustering(spark, sample_customers, k_range=(2, 5), sample_size=sample_size)


def test_heavy_tailed_table_with_ties_gives_the_same_clusters(spark):
    customers = heavy_tailed()
    distinct = len(customers[FEATURES].drop_duplicates())
    assert distinct < 0.6 * len(customers)  # many tied rows
    result, expected = _same_clustering(spark, customers, k_range=(2, 6), sample_size=500)
    assert expected.clusterer.n_clusters_ > 2
    # A fixed k on a sample smaller than it would be, and everyone as the sample.
    _same_clustering(spark, customers, n_clusters=3, sample_size=40, random_state=7)
    _same_clustering(spark, customers, k_range=(3, 4), sample_size=None)


def test_the_pandas_labels_are_predict():
    """The pandas path's labels (``labels_``, from ``fit``) are ``predict``, which Spark runs."""
    customers = heavy_tailed(2000, seed=9)
    clusterer = core.RFMClusterer(k_range=(2, 5), sample_size=300, chunk_size=333)
    clusterer.fit(customers[FEATURES])
    np.testing.assert_array_equal(clusterer.predict(customers[FEATURES]), clusterer.labels_)
    batches = [clusterer.predict(customers[FEATURES].iloc[i:i + 77])
               for i in range(0, len(customers), 77)]
    np.testing.assert_array_equal(np.concatenate(batches), clusterer.labels_)


def test_a_frozen_clusterer_gives_the_same_clusters(spark, sample_customers, tmp_path):
    from rfm_engine.core.model import SegmentationModel
    from rfm_engine.engines.spark import apply_clusterer
    from rfm_engine.integrations.model_store import load_frozen, save_model

    fitted = core.cluster_customers(sample_customers, k_range=(3, 4), sample_size=200)
    scorer = segment_customers(sample_customers[["customer_id", *FEATURES]]).scorer
    model = SegmentationModel.from_scorer(scorer, clusterer=fitted.clusterer)
    path = save_model(model, tmp_path)
    frozen = load_frozen(path, folder=tmp_path).clusterer_
    other = heavy_tailed(1500, seed=11)  # next week's customers
    for customers in (other, other.drop(columns="segment")):
        expected = core.apply_clusterer(customers, frozen)
        _same_result(apply_clusterer(_spark_frame(spark, customers), frozen), expected)


def test_missing_or_infinite_features_are_refused_in_one_line(spark):
    from rfm_engine.engines.spark import cluster_customers

    customers = heavy_tailed(50)
    customers.loc[[3, 7], "monetary"] = [np.nan, np.inf]
    with pytest.raises(InputError, match=r"^customers: 2 customer\(s\) have a missing or "
                                         r"infinite monetary; k-means needs finite") as error:
        cluster_customers(_spark_frame(spark, customers), k_range=(2, 3))
    assert "\n" not in str(error.value)


def test_cli_cluster_on_spark_writes_the_same_files(spark, sample_csv, tmp_path):
    from rfm_engine.runs.adhoc import CLUSTER_SIDES

    parquet = tmp_path / "transactions.parquet"
    import duckdb

    duckdb.sql(f"COPY (SELECT * FROM read_csv('{sample_csv}')) TO '{parquet}' (FORMAT parquet)")
    columns = ",".join(f"{k}={v}" for k, v in SAMPLE_COLUMNS.items())
    env = {"RFM_ENGINE_SPARK_MASTER": "local[2]", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine / "clusters.parquet"
        result = subprocess.run(
            [*RFM, "-q", "cluster", str(parquet), "--columns", columns, "--as-of", "2025-10-31",
             "--on-bad-rows", "drop", "--k-range", "2..5", "--sample-size", "150",
             "--engine", engine, "-o", str(out), "--no-tracking"],
            capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stderr == ""
        outputs[engine] = {side: Path(f"{out}.{side}").read_bytes() for side in CLUSTER_SIDES}
        outputs[engine]["table"] = out.read_bytes()
    assert outputs["spark"] == outputs["duckdb"]
    table = pd.read_parquet(tmp_path / "spark" / "clusters.parquet")
    assert table["cluster"].nunique() > 1 and table["cluster_name"].str.startswith("C").all()
