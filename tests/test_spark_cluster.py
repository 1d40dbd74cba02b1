"""The weekly run on a Spark whose executors are processes of their own (issue 13).

``local-cluster[2,1,1024]`` is Spark's own test master: a standalone master and two workers
on this machine, each executor a JVM of its own with Python workers of its own, as on a
cluster. What the local-mode tests cannot show, this run does: the engine's Python code
that Spark ships to executors (the pandas UDFs: dates read with a format, the campaign
flags) runs in other processes, and the part files and hand-off Parquet written by
executors are read back by the driver. The run must write what the DuckDB engine writes.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rfm_engine.datasets.sample_data import write_sample_data

pytest.importorskip("pyspark")

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
MAPPING = {
    "customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
    "quantity": "Quantity", "unit_price": "Price", "email": "Email",
    "first_name": "First Name", "country": "Country", "channel": "Channel",
    "product_id": "StockCode", "category": "Category",
}
SAME_BYTES = ("segments.csv", "campaigns.csv", "quality.json", "kpis.csv", "kpis.json",
              "kpis_by_segment.csv")


def _executors() -> set[int]:
    """The pids of the Spark executor JVMs running now (local-cluster: one per worker)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"CoarseGrainedExecutorBackend" in (proc / "cmdline").read_bytes():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


def _run(folder: Path, paths: dict[str, Path], engine: str, master: str,
         seen: set[int] | None = None) -> Path:
    config = folder / f"{engine}.toml"
    config.write_text("\n".join([
        "[input]", f'engine = "{engine}"', f"path = {json.dumps(str(paths['transactions']))}",
        'date_format = "%Y-%m-%d %H:%M:%S"',  # read by a pandas UDF on Spark's executors
        "[columns]", *(f'{k} = "{v}"' for k, v in MAPPING.items())]) + "\n")
    out = folder / f"out-{engine}"
    before = _executors()
    process = subprocess.Popen(
        [*RFM, "-q", "run", "--config", str(config), "--as-of", "2025-12-31", "--output-dir",
         str(out), "--suppression", str(paths["suppression"]), "--consent",
         str(paths["consent"]), "--no-tracking"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RFM_ENGINE_SPARK_MASTER": master, "TMPDIR": str(folder)})
    deadline = time.monotonic() + 900
    while process.poll() is None and time.monotonic() < deadline:
        if seen is not None:
            seen |= _executors() - before
        time.sleep(0.5)
    stdout, stderr = process.communicate(timeout=max(1, deadline - time.monotonic()))
    assert process.returncode == 0, stderr[-3000:]
    assert stderr == "" and stdout == ""
    return out / "2025-12-31"


def test_the_weekly_run_on_separate_executors_writes_what_duckdb_writes(tmp_path):
    paths = write_sample_data(tmp_path / "data", n_customers=300, seed=5)
    duck = _run(tmp_path, paths, "duckdb", "local[1]")
    executors: set[int] = set()
    spark = _run(tmp_path, paths, "spark", "local-cluster[2,1,1024]", seen=executors)
    assert len(executors) >= 2  # the work ran in executor processes, not in the driver
    lists = sorted(p.relative_to(duck).as_posix() for p in (duck / "campaigns").rglob("*.csv"))
    assert lists  # the sample's plan targets someone
    assert sorted(p.relative_to(spark).as_posix()
                  for p in (spark / "campaigns").rglob("*.csv")) == lists
    for name in [*SAME_BYTES, *lists]:
        assert (spark / name).read_bytes() == (duck / name).read_bytes(), name
