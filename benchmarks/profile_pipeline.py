"""Where the library pipeline spends its time: every DuckDB statement and the pandas steps.

Usage: ``.venv/bin/python benchmarks/profile_pipeline.py PARQUET [--top N]``

Runs ``segment_customers(customer_features(load_transactions(path)))`` once with a
connection wrapper that times each ``execute`` (the query) and each fetch (``.df()``,
``fetchone``: the transfer to Python), then times the steps of ``segment_customers``
(fitting the scorer, scoring, naming segments) and the import of the CLI's modules.
Nothing in the library is changed; the wrapper only passes calls through.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class _TimedResult:
    def __init__(self, inner: Any, record: dict[str, Any]) -> None:
        self._inner, self._record = inner, record

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ("df", "fetchone", "fetchall", "fetchdf", "arrow", "pl",
                        "to_arrow_table"):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = attr(*args, **kwargs)
            self._record["fetch_s"] += time.perf_counter() - start
            return out

        return timed


class TimedConnection:
    """Pass-through DuckDB connection that records the time of every statement."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.records: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        record = {"sql": sql, "exec_s": 0.0, "fetch_s": 0.0}
        start = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        record["exec_s"] = time.perf_counter() - start
        self.records.append(record)
        return _TimedResult(result, record)

    sql = execute  # a relation runs when fetched: its time shows as "fetch"


def _short(sql: str, width: int = 110) -> str:
    text = re.sub(r"\s+", " ", sql).strip()
    text = re.sub(r"read_parquet\(\[[^]]*\]", "read_parquet([...]", text)
    return text if len(text) <= width else text[: width - 3] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=15, help="cProfile rows for scoring.")
    args = parser.parse_args()

    import pandas as pd

    from rfm_engine.core.features import customer_features
    from rfm_engine.core.pipeline import RFM_FEATURES, score_customers, segment_customers
    from rfm_engine.core.scoring import RFMScorer
    from rfm_engine.core.segments import load_rules
    from rfm_engine.io.loading import connect, load_transactions

    con = TimedConnection(connect())
    stages: dict[str, float] = {}
    start = time.perf_counter()
    tx = load_transactions(args.path, con=con)
    stages["load_transactions"] = time.perf_counter() - start
    n_load = len(con.records)
    start = time.perf_counter()
    customers = customer_features(tx)
    stages["customer_features"] = time.perf_counter() - start
    start = time.perf_counter()
    segmentation = segment_customers(customers)
    stages["segment_customers"] = time.perf_counter() - start

    total = sum(stages.values())
    print(f"{args.path.name}: {tx.report.rows_read:,} rows, {len(customers):,} customers; "
          f"pipeline {total:.2f} s")
    for name, seconds in stages.items():
        print(f"  {name:20s} {seconds:7.2f} s  {seconds / total:5.1%}")

    print("\nDuckDB statements (exec = query, fetch = transfer to Python):")
    for i, r in enumerate(con.records):
        where = "load" if i < n_load else "features"
        print(f"  {where:8s} {r['exec_s']:6.2f} + {r['fetch_s']:5.2f} s  {_short(r['sql'])}")
    sql_total = sum(r["exec_s"] + r["fetch_s"] for r in con.records)
    print(f"  total in DuckDB statements: {sql_total:.2f} s")
    start = time.perf_counter()
    feature_rest = stages["customer_features"] - sum(
        r["exec_s"] + r["fetch_s"] for r in con.records[n_load:])
    print(f"  customer_features outside DuckDB (_tidy etc.): {feature_rest:.2f} s")

    print("\nsegment_customers steps:")
    rules = load_rules("rf-grid")
    steps: dict[str, float] = {}
    start = time.perf_counter()
    scorer = RFMScorer(5).fit(customers[RFM_FEATURES])
    steps["RFMScorer.fit"] = time.perf_counter() - start
    start = time.perf_counter()
    scored = score_customers(customers, scorer)
    steps["score_customers"] = time.perf_counter() - start
    start = time.perf_counter()
    scored["segment"] = rules.assign(scored)
    steps["RuleSet.assign"] = time.perf_counter() - start
    for name, seconds in steps.items():
        print(f"  {name:20s} {seconds:7.2f} s")
    pd.testing.assert_series_equal(scored["segment"], segmentation.customers["segment"])

    profiler = cProfile.Profile()
    profiler.enable()
    segment_customers(customers)
    profiler.disable()
    print(f"\ncProfile of segment_customers (top {args.top} by cumulative time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(args.top)

    code = ("import time; t = time.perf_counter(); import rfm_engine.cli, "
            "rfm_engine.core.features, rfm_engine.core.pipeline, rfm_engine.core.scoring, "
            "rfm_engine.io.writers; "
            "print(time.perf_counter() - t)")
    seconds = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, check=True).stdout)
    print(f"imports of the CLI's modules in a fresh interpreter: {seconds:.2f} s")


if __name__ == "__main__":
    main()
