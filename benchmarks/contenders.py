"""The in-process contenders, run one per fresh process by ``run.py``.

Usage: ``python benchmarks/contenders.py NAME PARQUET``. The process imports what the
contender needs, then times only the work and prints one JSON line on stdout:
``wall_s`` (the work), ``rss_before_mib`` (resident memory after the imports) and a
checksum (customers, orders, revenue) so ``run.py`` can check that every contender
computed the same thing. Peak memory is measured outside, by ``launch.py``.

Every bare contender computes, per customer: ``recency_days`` (calendar days from the
customer's last order date to the latest order date in the file), ``frequency`` (distinct
orders) and ``monetary`` (sum of amounts), with its engine's default thread count.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

Checksum = tuple[int, int, float]


def _library(path: str) -> Callable[[], Checksum]:
    from rfm_engine.features import customer_features
    from rfm_engine.loading import load_transactions
    from rfm_engine.pipeline import segment_customers

    def work() -> Checksum:
        customers = segment_customers(customer_features(load_transactions(path))).customers
        return (len(customers), int(customers["frequency"].sum()),
                float(customers["monetary"].sum()))

    return work


def _duckdb(path: str) -> Callable[[], Checksum]:
    import duckdb
    import pandas  # noqa: F401  (imported by .df(); loaded here to keep it out of the timing)

    quoted = "'" + path.replace("'", "''") + "'"
    sql = f"""
        SELECT customer_id,
               date_diff('day', last_date, max(last_date) OVER ()) AS recency_days,
               frequency, monetary
        FROM (SELECT customer_id, CAST(max(order_date) AS DATE) AS last_date,
                     count(DISTINCT order_id) AS frequency, sum(amount) AS monetary
              FROM read_parquet({quoted}) GROUP BY customer_id)
    """

    def work() -> Checksum:
        frame = duckdb.connect().execute(sql).df()
        return len(frame), int(frame["frequency"].sum()), float(frame["monetary"].sum())

    return work


def _polars(path: str) -> Callable[[], Checksum]:
    import polars as pl

    def work() -> Checksum:
        frame = (
            pl.scan_parquet(path)
            .group_by("customer_id")
            .agg(last_date=pl.col("order_date").max().dt.date(),
                 frequency=pl.col("order_id").n_unique(),
                 monetary=pl.col("amount").sum())
            .with_columns(
                recency_days=(pl.col("last_date").max() - pl.col("last_date")).dt.total_days()
            )
            .collect()
        )
        return len(frame), int(frame["frequency"].sum()), float(frame["monetary"].sum())

    return work


def _pandas(path: str) -> Callable[[], Checksum]:
    import pandas as pd

    def work() -> Checksum:
        tx = pd.read_parquet(path, columns=["customer_id", "order_id", "order_date", "amount"])
        frame = tx.groupby("customer_id", sort=False).agg(
            last_date=("order_date", "max"),
            frequency=("order_id", "nunique"),
            monetary=("amount", "sum"),
        )
        last_date = frame["last_date"].dt.normalize()
        frame["recency_days"] = (last_date.max() - last_date).dt.days
        return len(frame), int(frame["frequency"].sum()), float(frame["monetary"].sum())

    return work


CONTENDERS: dict[str, Callable[[str], Callable[[], Checksum]]] = {
    "library": _library,
    "duckdb": _duckdb,
    "polars": _polars,
    "pandas": _pandas,
}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(name: str, path: str) -> None:
    work = CONTENDERS[name](path)
    rss_before = _rss_mib()
    start = time.perf_counter()
    customers, orders, revenue = work()
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": wall, "rss_before_mib": rss_before, "customers": customers,
                      "orders": orders, "revenue": revenue}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
