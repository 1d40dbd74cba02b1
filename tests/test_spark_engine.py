"""--engine spark (issue 13): the same cleaning counts, customers, features and segments as DuckDB.

Spark runs in local mode (the session fixture ``spark`` of conftest.py: ``local[2]``, 4
shuffle partitions); every test computes the same thing with the DuckDB engine and
compares.
"""

import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from rfm_engine.core.features import customer_features
from rfm_engine.core.pipeline import segment_customers
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import ConfigError, DataError
from rfm_engine.io.loading import load_transactions

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
                  "email": "Email", "first_name": "First Name", "country": "Country",
                  "channel": "Channel", "product_id": "StockCode", "category": "Category"}


def _parquet(csv: Path, path: Path, *, text: bool) -> Path:
    """The CSV as Parquet: typed columns as DuckDB sniffs them, or every column as text."""
    option = ", all_varchar = true" if text else ""
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv}'{option})) TO '{path}' (FORMAT parquet)")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    csv = write_sample(folder, n_customers=200, seed=3)["transactions"]
    return _parquet(csv, folder / "transactions.parquet", text=False)


def _both(spark, source, **options):
    from rfm_engine.engines import spark as engine

    duck = load_transactions(source, **options)
    spk = engine.load_transactions(source, spark=spark, **options)
    return duck, spk, engine


def test_sample_gives_the_same_counts_customers_features_and_segments(spark, sample):
    duck, spk, engine = _both(spark, sample, columns=SAMPLE_COLUMNS, as_of="2025-10-31",
                              window_days=540)
    expected = customer_features(duck)
    got = engine.customer_features(spk)
    pd.testing.assert_frame_equal(got, expected)
    assert spk.report.to_dict() == duck.report.to_dict()
    assert duck.report.dropped["duplicate_line"] > 0
    assert duck.report.dropped["missing_customer_id"] > 0
    assert duck.report.dropped["after_as_of"] > 0 and duck.report.dropped["before_window"] > 0
    assert duck.report.return_lines > 0
    # Segments: the per-customer table is collected to the driver and scored by the same code.
    ours = segment_customers(got, rules="rf-grid").customers
    theirs = segment_customers(expected, rules="rf-grid").customers
    pd.testing.assert_frame_equal(ours, theirs)


def _dirty() -> pd.DataFrame:
    """Every cleaning rule at least once, as text (the hardest parsing path)."""
    nfd = "Jose\u0301"  # NFD: composes to 'José'
    rows = [
        # customer, order, date, amount, email
        ("17850", "1", "2024-01-05", "10.00", "a@x.com"),
        ("17850.0", "2", "2024-02-05T10:00:00+02:00", "20.50", "b@x.com"),
        (" 17850 ", "3", "2024-03-05 23:30:00", "-5.25", None),
        ("\u00a017850", "3", "2024-03-05 23:30:00", "5.25", "c@x.com"),  # NBSP: stripped
        (nfd, "4", "2024-01-10", "7", "d@x.com"),
        ("Jos\u00e9", "5", "2024-01-11", "8", "e@x.com"),
        ("b", "6", "2024-01-12", "0", None),  # free order
        ("b", "7", "2024-01-13", "3", "b@y.com"),
        ("b", "7", "2024-01-13", "3", "b@y.com"),  # duplicate line
        ("c", "8", "2024-01-14", "4", "c@y.com"),
        ("c", "8", "2024-01-14", "-4", "c@y.com"),  # only a return: no purchase
        (None, "9", "2024-01-15", "9", "guest@x.com"),  # no customer id
        ("", "10", "2024-01-15", "9", None),  # empty id
        ("d", "11", "not a date", "9", None),  # bad date
        ("d", "12", "2024-01-16", "twelve", None),  # bad amount
        ("d", "13", "2024-01-16", "0.00001", None),  # rounds to 0: refused
        ("d", "14", "1850-01-16", "3", None),  # before min_date
        ("d", "15", "2024-01-17", "1e14", None),  # out of range
        ("d", "16", "2024-01-18", "nan", None),
        ("e", "17", "2024-06-30", "5", "e@z.com"),  # after as_of
        ("e", "18", "2023-01-01", "5", "e@w.com"),  # before the window
        ("e", "19", "2024-01-20", "1.23456", " E@z.com "),
        ("f", "19", "2024-01-20", "2", "f@z.com"),  # order id shared by two customers
        ("g", "20", "2024-01-21", "4", "z@g.com"),
        ("g", "21", "2024-01-21", "4", "a@g.com"),  # same timestamp: tie broken by value
    ]
    frame = pd.DataFrame(rows, columns=["cid", "oid", "when", "amount", "email"])
    return pd.concat([frame] * 30, ignore_index=True).assign(
        oid=lambda f: f["oid"] + "-" + (f.index // len(rows)).astype(str))


def test_dirty_file_gives_the_same_counts_and_features(spark, tmp_path):
    path = tmp_path / "dirty.parquet"
    _dirty().to_parquet(path, index=False)
    options = dict(columns={"customer_id": "cid", "order_id": "oid", "order_date": "when",
                            "amount": "amount", "email": "email"},
                   as_of="2024-03-31", window_days=120, on_bad_rows="drop",
                   max_drop_fraction=0.9, max_shared_order_fraction=0.2)
    duck, spk, engine = _both(spark, path, **options)
    expected = customer_features(duck)
    got = engine.customer_features(spk)
    pd.testing.assert_frame_equal(got, expected)
    assert spk.report.to_dict() == duck.report.to_dict()
    report = duck.report
    assert report.dropped["bad_value"] == 5 * 30 and report.dropped["before_min_date"] == 30
    assert report.dropped["missing_customer_id"] == 2 * 30
    assert report.dropped["duplicate_line"] == 30 and report.shared_order_ids == 30
    assert set(expected["customer_id"]) == {"17850", "José", "b", "e", "f", "g"}
    assert expected.set_index("customer_id").loc["g", "email"] == "z@g.com"


def test_a_bad_value_stops_both_engines_with_the_same_message(spark, tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "order_date": ["2024-01-01"] * 3,
                          "amount": ["1", "2", "1e14"]})
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    from rfm_engine.engines import spark as engine

    with pytest.raises(DataError, match=r"bad\.parquet, row 3.*amount") as duck:
        load_transactions(path)
    with pytest.raises(DataError, match=r"bad\.parquet, row 3.*amount") as spk:
        engine.load_transactions(path, spark=spark)
    assert str(spk.value) == str(duck.value)


def test_cli_segment_on_spark_writes_the_same_files(spark, sample, tmp_path):
    columns = ",".join(f"{k}={v}" for k, v in SAMPLE_COLUMNS.items())
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.csv"
        result = subprocess.run(
            [*RFM, "-q", "segment", str(sample), "--columns", columns, "--as-of", "2025-10-31",
             "--engine", engine, "-o", str(out), "--no-tracking"],
            capture_output=True, text=True, timeout=600,
            env={"RFM_ENGINE_SPARK_MASTER": "local[2]", "PATH": "/usr/bin:/bin",
                 "HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stderr == ""  # -q: not a line, Spark's start-up notes included
        outputs[engine] = [p.read_bytes() for p in
                           (out, Path(f"{out}.summary.csv"), Path(f"{out}.quality.json"))]
    assert "log4j" in (tmp_path / "rfm-engine-spark.log").read_text()  # where they went
    quality = [o.pop() for o in outputs.values()]
    assert outputs["spark"] == outputs["duckdb"]
    assert quality[0].replace(b"duckdb.csv", b"x") == quality[1].replace(b"spark.csv", b"x")


def test_a_local_master_gets_shuffle_partitions_for_its_cores():
    pytest.importorskip("pyspark")
    from rfm_engine.engines.spark.session import local_settings

    assert local_settings("local[3]")["spark.sql.shuffle.partitions"] == "6"
    assert local_settings("local[2,4]")["spark.default.parallelism"] == "2"
    assert local_settings("local")["spark.sql.shuffle.partitions"] == "2"
    assert local_settings("spark://host:7077") == {}  # a cluster keeps its own
    assert local_settings("local-cluster[2, 3, 1024]")["spark.sql.shuffle.partitions"] == "12"


def test_a_local_driver_gets_a_heap_for_the_machine(monkeypatch):
    pytest.importorskip("pyspark")
    from rfm_engine.engines.spark.session import local_settings

    monkeypatch.delenv("RFM_ENGINE_SPARK_DRIVER_MEMORY", raising=False)
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    heap = local_settings("local[2]")["spark.driver.memory"]
    assert heap in {"1g", "2g"}  # 2 GB, or a quarter of a small machine
    monkeypatch.setenv("RFM_ENGINE_SPARK_DRIVER_MEMORY", "12G")
    assert local_settings("local[2]")["spark.driver.memory"] == "12g"
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-memory 3g pyspark-shell")
    assert "spark.driver.memory" not in local_settings("local[2]")  # the user's own wins
    assert "spark.driver.memory" not in local_settings("yarn")
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS")
    monkeypatch.setenv("RFM_ENGINE_SPARK_DRIVER_MEMORY", "lots")
    with pytest.raises(ConfigError, match="RFM_ENGINE_SPARK_DRIVER_MEMORY='lots'"):
        local_settings("local[2]")


def test_a_spark_failure_is_told_in_one_line(spark, tmp_path, monkeypatch):
    from py4j.protocol import Py4JError
    from pyspark.sql import functions as F

    from rfm_engine.engines.spark import session

    monkeypatch.setattr(session, "JVM_LOG", tmp_path / "spark.log")
    with session.pandas_conversion():  # PySpark warns of pandas 3 when making a UDF
        divide = F.udf(lambda x: 1 // 0)
    failures = {}
    for name, job in {
        "sql": lambda: spark.range(3).selectExpr("raise_error('no such week')").collect(),
        "python": lambda: spark.range(3).select(divide("id")).collect(),
    }.items():
        with pytest.raises(Exception) as caught:
            job()
        failures[name] = session.spark_failure(caught.value)
    assert failures["sql"][0].startswith("Spark failed: [USER_RAISED_EXCEPTION] no such week")
    assert failures["python"][0].startswith("Spark failed: ZeroDivisionError: integer division")
    for message, code in failures.values():
        assert code == 1 and "\n" not in message and str(tmp_path / "spark.log") in message
    assert "Traceback" in (tmp_path / "spark.log").read_text()  # the whole trace, kept
    heap = Py4JError("An error occurred while calling o7.collectToPython.\n: "
                     "java.lang.OutOfMemoryError: Java heap space\n\tat java.base/x.y(Z.java:1)")
    message, code = session.spark_failure(heap)
    assert code == 2 and "\n" not in message
    assert message.startswith("Spark ran out of memory (java.lang.OutOfMemoryError: Java heap "
                              "space): give it more, e.g. RFM_ENGINE_SPARK_DRIVER_MEMORY=8g")


def test_cli_tells_a_spark_that_cannot_start_in_one_line(sample, tmp_path):
    out = tmp_path / "s.csv"
    result = subprocess.run(
        [*RFM, "segment", str(sample), "--columns",
         ",".join(f"{k}={v}" for k, v in SAMPLE_COLUMNS.items()), "--engine", "spark",
         "-o", str(out), "--no-tracking"], capture_output=True, text=True, timeout=300,
        env={"RFM_ENGINE_SPARK_MASTER": "local[1]", "RFM_ENGINE_SPARK_DRIVER_MEMORY": "1m",
             "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.startswith("error: Spark failed: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{tmp_path}/rfm-engine-spark.log" in result.stderr
    assert "heap" in (tmp_path / "rfm-engine-spark.log").read_text().lower()  # the JVM's why
    assert not out.exists()


def test_cli_refuses_spark_for_commands_not_on_it_yet(tmp_path):
    result = subprocess.run([*RFM, "kpis", str(tmp_path / "t.parquet"), "--engine", "spark",
                             "-o", str(tmp_path / "k.csv")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert ("--engine spark runs features, clv-summary, clv, clv-validate, segment, cluster "
            "and run so far, not kpis" in result.stderr)
    assert "Traceback" not in result.stderr
