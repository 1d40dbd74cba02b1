"""How much percentile_approx changes the scores, against the exact edges (--engine spark).

Loads a transactions file on Spark, builds the customer table, fits the scorer with exact
quantiles and with ``percentile_approx`` at several accuracies, scores every customer with
each scorer (Column expressions, no collect) and counts, in one aggregation, the customers
whose R, F or M score differs from the exact one. Prints a Markdown table::

    python benchmarks/heavy_tail.py 1e6   # writes benchmarks/data/heavy_1000000_seed0.parquet
    python benchmarks/spark_quantiles.py benchmarks/data/heavy_1000000_seed0.parquet
    python benchmarks/spark_quantiles.py --sample 2000   # the sample data (write_sample)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from pyspark.sql import functions as F

from rfm_engine.core.scoring import BinsCollapsedWarning
from rfm_engine.engines.spark import (
    customer_frame_spark,
    fit_scorer,
    load_transactions,
    score_columns,
    spark_session,
)

SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price"}


def _sample(n_customers: int, folder: Path) -> Path:
    import duckdb

    from rfm_engine.datasets.sample_data import write_sample

    csv = write_sample(folder, n_customers=n_customers, seed=0)["transactions"]
    path = folder / "sample.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{path}' (FORMAT parquet)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="transactions Parquet (canonical columns)")
    parser.add_argument("--sample", type=int, help="use the sample data with N customers")
    parser.add_argument("--accuracy", default="100,1000,10000",
                        help="percentile_approx accuracies, comma-separated")
    parser.add_argument("--n-bins", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    spark = spark_session(args.master, conf={"spark.ui.enabled": "false"})
    with tempfile.TemporaryDirectory() as tmp:
        if args.sample:
            path, options = _sample(args.sample, Path(tmp)), {
                "columns": SAMPLE_COLUMNS, "on_bad_rows": "drop", "as_of": "2025-10-31"}
        else:
            path, options = Path(args.file), {"on_bad_rows": "drop"}
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        tx = load_transactions(path, spark=spark, **options)
        customers = customer_frame_spark(tx)
        accuracies = [int(a) for a in args.accuracy.split(",")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BinsCollapsedWarning)
            scorers = {"exact": fit_scorer(customers, n_bins=args.n_bins)}
            for accuracy in accuracies:
                scorers[accuracy] = fit_scorer(customers, n_bins=args.n_bins, exact=False,
                                               accuracy=accuracy)
        fit_wall = time.perf_counter() - start_wall
        scored = customers.select(*(
            column.alias(f"{name}_{label}")
            for label, scorer in scorers.items()
            for name, column in score_columns(scorer).items()
            if name in ("r_score", "f_score", "m_score")))
        aggregates = [F.count(F.lit(1))]
        for accuracy in accuracies:
            differs = [F.col(f"{d}_score_{accuracy}") != F.col(f"{d}_score_exact")
                       for d in "rfm"]
            aggregates += [F.count_if(c) for c in differs]
            aggregates.append(F.count_if(differs[0] | differs[1] | differs[2]))
        counts = scored.select(*aggregates).first()
    n = counts[0]
    print(f"{path.name if not args.sample else f'sample ({args.sample:,} customers)'}: "
          f"{tx.report.rows_kept:,} lines, {n:,} customers, n_bins={args.n_bins}")
    print("\n| edges | R differs | F differs | M differs | any score differs |")
    print("|---|---|---|---|---|")
    for i, accuracy in enumerate(accuracies):
        r, f, m, any_ = counts[1 + 4 * i: 5 + 4 * i]
        print(f"| percentile_approx, accuracy {accuracy:,} | "
              + " | ".join(f"{c:,} ({c / n:.3%})" for c in (r, f, m, any_)) + " |")
    print("\nedges (R, F, M):")
    for label, scorer in scorers.items():
        print(f"  {label}: " + "; ".join(np.array2string(e, precision=4, separator=", ")
                                         for e in scorer.bin_edges_))
    print(f"\nload + features + {1 + len(accuracies)} fits: {fit_wall:.1f} s wall; driver CPU "
          f"{time.process_time() - start_cpu:.1f} s (loaded machine: timings indicative only)")


if __name__ == "__main__":
    main()
