"""Heavy-tailed benchmark inputs: Pareto customer sizes, generated in chunks of customers.

The uniform sample generator (:mod:`datagen`) gives every customer a few orders; real retail
histories are heavy-tailed: most customers buy once or twice, a few (trade buyers,
resellers, fans) own thousands of orders. That tail is what makes per-customer work
uneven (hash groups of very different sizes, a long sort per big customer), so the
weekly run is measured on it.

Per customer: orders ``1 + floor(Lomax(alpha=1.2) * 0.75)`` (capped at 20,000; mean about 4,
more than half buy once, about one in 2,500 has 500 orders or more), lines per order
``Geometric(0.45)`` (mean about 2.2), a first order uniform over three years and later
orders uniform from then to the end, amounts lognormal (cents) with 3% return lines, a
product from 5,000 in 40 categories, an email per customer. Columns are the canonical names:
``customer_id, order_id, order_date (timestamp), amount (double), product_id, category,
email``. Chunks of customers are generated with numpy and streamed to one Parquet file (row
groups of 122,880 rows), so 200M lines need a few hundred MB of memory, not the whole
table. Files are cached as ``benchmarks/data/heavy_<rows>_seed<seed>.parquet``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 122_880
START = np.datetime64("2023-01-01T00:00", "m")
END = np.datetime64("2025-12-31T23:59", "m")
_CHUNK_CUSTOMERS = 200_000
_MAX_ORDERS = 20_000


def heavy_tail_file(rows: int, data_dir: Path, *, seed: int = 0,
                    log: Callable[[str], None] = print) -> Path:
    """Return the cached heavy-tailed file of exactly ``rows`` lines, writing it if needed."""
    path = data_dir / f"heavy_{rows}_seed{seed}.parquet"
    if path.exists():
        log(f"using cached {path.name} ({path.stat().st_size / 2**20:,.0f} MiB)")
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".tmp")
    start, written, customers, first_id, first_order = time.perf_counter(), 0, 0, 0, 0
    with pq.ParquetWriter(tmp, _schema()) as writer:
        while written < rows:
            table, n_orders = _chunk(rng, first_id, _CHUNK_CUSTOMERS, first_order)
            table = table.slice(0, rows - written)
            writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
            written += len(table)
            customers += min(_CHUNK_CUSTOMERS, len(np.unique(table["customer_id"].to_numpy())))
            first_id += _CHUNK_CUSTOMERS
            first_order += n_orders
            log(f"  {written:,} / {rows:,} lines ({time.perf_counter() - start:.0f} s)")
    os.replace(tmp, path)
    log(f"wrote {path.name}: {rows:,} lines, ~{customers:,} customers, "
        f"{path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - start:.1f} s")
    return path


def _schema() -> pa.Schema:
    return pa.schema([("customer_id", pa.string()), ("order_id", pa.string()),
                      ("order_date", pa.timestamp("us")), ("amount", pa.float64()),
                      ("product_id", pa.string()), ("category", pa.string()),
                      ("email", pa.string())])


def _chunk(rng: np.random.Generator, first_id: int, n: int,
           first_order: int) -> tuple[pa.Table, int]:
    """Lines of customers ``first_id ..`` and orders ``first_order ..``, sorted by time.

    Returns the table and the number of orders drawn.
    """
    orders = np.minimum(1 + np.floor(rng.pareto(1.2, n) * 0.75), _MAX_ORDERS).astype(np.int64)
    span = int((END - START).astype(np.int64))
    first = rng.integers(0, span, n)
    customer_of_order = np.repeat(np.arange(n), orders)
    n_orders = len(customer_of_order)
    # the first order of each customer at `first`, the others uniform from there to the end
    is_first = np.zeros(n_orders, dtype=bool)
    is_first[np.concatenate(([0], np.cumsum(orders)[:-1]))] = True
    lo = first[customer_of_order]
    minute = np.where(is_first, lo, lo + (rng.random(n_orders) * (span - lo)).astype(np.int64))
    lines = rng.geometric(0.45, n_orders)
    order_of_line = np.repeat(np.arange(n_orders), lines)
    n_lines = len(order_of_line)
    cents = np.round(np.exp(rng.normal(6.7, 1.0, n_lines))).astype(np.int64) + 1
    returns = rng.random(n_lines) < 0.03
    cents[returns] = -cents[returns]
    product = rng.integers(0, 5_000, n_lines)
    customer = first_id + customer_of_order[order_of_line]
    order_global = first_order + order_of_line  # unique across chunks
    when = START + minute[order_of_line].astype("timedelta64[m]")
    order = np.argsort(when, kind="stable")
    cid = _prefixed("C", customer[order])
    product = product[order]
    return pa.table({
        "customer_id": cid,
        "order_id": _prefixed("O", order_global[order]),
        "order_date": pa.array(when[order].astype("datetime64[us]")),
        "amount": pa.array(cents[order] / 100.0),
        "product_id": _prefixed("P", product),
        "category": _prefixed("cat", product % 40),
        "email": pc.binary_join_element_wise(pc.utf8_lower(cid), "@example.com", ""),
    }, schema=_schema()), n_orders


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=float, help="lines, e.g. 1e7")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    heavy_tail_file(int(args.rows), args.data_dir, seed=args.seed)
