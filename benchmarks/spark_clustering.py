"""K-means on Spark against the pandas path: seconds, and the same clusters (--engine spark).

Builds the customer table of a transactions file (or of the sample data) with the DuckDB
engine, scores it, then clusters it with ``core.clustering.cluster_customers`` (pandas) and
with ``engines.spark.cluster_customers`` on a warm session (the table persisted on Spark
first, so Spark's start and the loading are not counted), best of ``--repeat``; checks that
labels, names and k scores are equal. Prints a Markdown table::

    python benchmarks/spark_clustering.py --sample 5000          # the sample data
    python benchmarks/heavy_tail.py 1e6   # writes benchmarks/data/heavy_1000000_seed0.parquet
    python benchmarks/spark_clustering.py benchmarks/data/heavy_1000000_seed0.parquet
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from rfm_engine.core import clustering
from rfm_engine.core.features import customer_features
from rfm_engine.core.pipeline import segment_customers
from rfm_engine.engines.spark import cluster_customers, spark_session
from rfm_engine.engines.spark.session import pandas_conversion
from rfm_engine.io.loading import load_transactions

SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price"}


def _customers(args: argparse.Namespace, folder: Path) -> pd.DataFrame:
    if args.file:
        tx = load_transactions(args.file)
    else:
        from rfm_engine.datasets.sample_data import write_sample

        csv = write_sample(folder, n_customers=args.sample, seed=0)["transactions"]
        tx = load_transactions(csv, columns=SAMPLE_COLUMNS, on_bad_rows="drop")
    return segment_customers(customer_features(tx)).customers


def _best(run, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="transactions Parquet (canonical columns)")
    parser.add_argument("--sample", type=int, default=5000, help="customers of the sample data")
    parser.add_argument("--sample-size", type=int, default=20_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        customers = _customers(args, Path(tmp))
    spark = spark_session(args.master)
    with pandas_conversion():
        frame = spark.createDataFrame(customers).persist()
    frame.count()
    options = {"sample_size": args.sample_size}
    pandas_s, expected = _best(lambda: clustering.cluster_customers(customers, **options),
                               args.repeat)
    spark_s, result = _best(lambda: cluster_customers(frame, **options), args.repeat)
    collect_s, got = _best(result.collect, args.repeat)
    pd.testing.assert_frame_equal(got.customers, expected.customers)
    pd.testing.assert_frame_equal(result.clusterer.k_scores_, expected.clusterer.k_scores_,
                                  check_exact=True)
    assert result.names == expected.names
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(customers):,} customers, sample_size {args.sample_size}, k = "
          f"{expected.clusterer.n_clusters_}, master {args.master}, load average {load} "
          f"(best of {args.repeat}; labels, names and k scores equal)\n")
    print("| path | seconds |\n| --- | ---: |")
    print(f"| pandas `core.clustering.cluster_customers` | {pandas_s:.2f} |")
    print(f"| Spark `engines.spark.cluster_customers` (sample, fit, labels, names) | "
          f"{spark_s:.2f} |")
    print(f"| Spark `SparkClustering.collect()` (the `cluster` command's table) | "
          f"{collect_s:.2f} |")


if __name__ == "__main__":
    main()
