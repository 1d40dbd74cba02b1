"""Benchmark inputs: Parquet transaction files in the canonical layout, generated once.

The rows come from :func:`rfm_engine.datasets.sample_data.generate_transactions` (``dirty=False``),
mapped from its Online Retail II layout to the canonical columns:

==============  =========  ==========================================
column          type       from
==============  =========  ==========================================
``customer_id`` string     ``Customer ID``
``order_id``    string     ``Invoice`` (one order = several lines)
``order_date``  timestamp  ``InvoiceDate`` (minute precision, naive)
``amount``      double     ``Quantity * Price``, rounded to cents
``product_id``  string     ``StockCode``
==============  =========  ==========================================

``product_id`` is there because real line-level exports have it and the loader's
duplicate-line rule hashes every column: without it, two different products bought in the
same order at the same amount look like one line entered twice, and the pipeline drops
about 0.7% of the lines as ``duplicate_line`` (the bare aggregations, which do not
deduplicate, would then disagree with it).

One row per invoice line, in time order as in a shop's export; about 9.4 lines and 3.3
orders per customer, so there are roughly ``rows / 10`` customers, half of them one-time
buyers, with heavy-tailed spend. The simulation draws a few more customers than needed
and the file keeps exactly the first ``rows`` lines, so the last day or so of the period
is cut (the as-of date is then the last day kept).

Files are written with pyarrow in row groups of 122,880 rows (DuckDB's own default, so
every engine can read them in parallel) and cached as
``benchmarks/data/transactions_<rows>_seed<seed>.parquet``; delete a file to regenerate it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 122_880
_CALIBRATION_CUSTOMERS = 20_000
_MARGIN = 1.02  # draw 2% more customers than the calibrated estimate, then cut to `rows`


def transactions_file(
    rows: int, data_dir: Path, *, seed: int = 0, log: Callable[[str], None] = print
) -> Path:
    """Return the cached Parquet file of ``rows`` canonical transactions, writing it if needed."""
    path = data_dir / f"transactions_{rows}_seed{seed}.parquet"
    if path.exists():
        log(f"using cached {path.name} ({path.stat().st_size / 2**20:,.0f} MiB)")
        return path
    from rfm_engine.datasets.sample_data import generate_transactions

    data_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    probe = generate_transactions(_CALIBRATION_CUSTOMERS, seed=seed + 1, dirty=False)
    lines_per_customer = len(probe) / _CALIBRATION_CUSTOMERS
    del probe
    n_customers = math.ceil(rows / lines_per_customer * _MARGIN)
    while True:
        log(f"generating {rows:,} rows: simulating {n_customers:,} customers "
            f"({lines_per_customer:.2f} lines each) ...")
        frame = generate_transactions(n_customers, seed=seed, dirty=False)
        if len(frame) >= rows:
            break
        log(f"  got {len(frame):,} rows only; retrying with 5% more customers")
        n_customers = math.ceil(n_customers * 1.05)
    table = _canonical(frame.iloc[:rows])
    del frame
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
    os.replace(tmp, path)
    customers = pc.count_distinct(table["customer_id"]).as_py()
    orders = pc.count_distinct(table["order_id"]).as_py()
    log(f"wrote {path.name}: {rows:,} rows, {customers:,} customers, {orders:,} orders, "
        f"{path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - start:.1f} s")
    return path


def _canonical(frame: pd.DataFrame) -> pa.Table:
    """Online Retail II layout to the canonical columns (see the module docs)."""
    order_date = pd.to_datetime(frame["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    amount = (frame["Quantity"] * frame["Price"]).round(2)
    return pa.table({
        "customer_id": pa.array(frame["Customer ID"], type=pa.string()),
        "order_id": pa.array(frame["Invoice"], type=pa.string()),
        "order_date": pa.array(order_date, type=pa.timestamp("us")),
        "amount": pa.array(amount, type=pa.float64()),
        "product_id": pa.array(frame["StockCode"], type=pa.string()),
    })
