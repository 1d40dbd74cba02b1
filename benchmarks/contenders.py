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
    from rfm_engine.core.features import customer_features
    from rfm_engine.core.pipeline import segment_customers
    from rfm_engine.io.loading import load_transactions

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


# The same work as the library, written by hand: ids normalised (spaces, spreadsheet
# floats, NFC), malformed rows and rows without id dropped, identical lines counted once,
# orders netted, and frequency counting the orders that are purchases (net > 0, or free).
_ID_FLOAT = r"^([0-9]+)\.0+$"


def _duckdb_rules(path: str) -> Callable[[], Checksum]:
    import duckdb
    import pandas  # noqa: F401

    quoted = "'" + path.replace("'", "''") + "'"
    purchase = "(net > 0 OR (net = 0 AND min_line >= 0))"
    sql = f"""
        WITH lines AS (
            SELECT regexp_replace(nfc_normalize(trim(customer_id)), '{_ID_FLOAT}', '\\1')
                       AS customer_id,
                   trim(order_id) AS order_id, CAST(order_date AS DATE) AS day, amount
            FROM (SELECT DISTINCT * FROM read_parquet({quoted}))
            WHERE isfinite(amount) AND order_date IS NOT NULL
        ), orders AS (
            SELECT customer_id, order_id, min(day) AS day, sum(amount) AS net,
                   min(amount) AS min_line
            FROM lines WHERE customer_id <> '' GROUP BY ALL
        ), customers AS (
            SELECT customer_id, max(day) FILTER (WHERE {purchase}) AS last_date,
                   count(*) FILTER (WHERE {purchase}) AS frequency, sum(net) AS monetary
            FROM orders GROUP BY customer_id
        )
        SELECT customer_id, date_diff('day', last_date, max(last_date) OVER ()) AS recency_days,
               frequency, monetary
        FROM customers WHERE frequency > 0
    """

    def work() -> Checksum:
        frame = duckdb.connect().execute(sql).df()
        return len(frame), int(frame["frequency"].sum()), float(frame["monetary"].sum())

    return work


def _polars_rules(path: str) -> Callable[[], Checksum]:
    import polars as pl

    def work() -> Checksum:
        customer_id = (pl.col("customer_id").str.strip_chars(" ").str.normalize("NFC")
                       .str.replace(_ID_FLOAT, "${1}"))
        lines = (pl.scan_parquet(path).unique()
                 .filter(pl.col("amount").is_finite() & pl.col("order_date").is_not_null())
                 .with_columns(customer_id=customer_id,
                               order_id=pl.col("order_id").str.strip_chars(" "),
                               day=pl.col("order_date").dt.date())
                 .filter(pl.col("customer_id") != ""))
        net = pl.col("net")
        purchase = (net > 0) | ((net == 0) & (pl.col("min_line") >= 0))
        frame = (
            lines.group_by("customer_id", "order_id")
            .agg(day=pl.col("day").min(), net=pl.col("amount").sum(),
                 min_line=pl.col("amount").min())
            .group_by("customer_id")
            .agg(last_date=pl.col("day").filter(purchase).max(), frequency=purchase.sum(),
                 monetary=net.sum())
            .filter(pl.col("frequency") > 0)
            .with_columns(
                recency_days=(pl.col("last_date").max() - pl.col("last_date")).dt.total_days()
            )
            .collect()
        )
        return len(frame), int(frame["frequency"].sum()), float(frame["monetary"].sum())

    return work


CONTENDERS: dict[str, Callable[[str], Callable[[], Checksum]]] = {
    "library": _library,
    "duckdb": _duckdb,
    "polars": _polars,
    "pandas": _pandas,
    "duckdb_rules": _duckdb_rules,
    "polars_rules": _polars_rules,
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
