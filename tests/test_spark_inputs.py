"""--engine spark inputs and options (issue 13): each compared with the DuckDB engine.

CSV files, a table of Spark's catalog, Delta tables, ``--date-format`` and ``--decimal ,``;
the CDNOW sample and a dirty file give the same customers, features and data-quality counts
on both engines. Spark runs in local mode (the session fixture ``spark`` of conftest.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rfm_engine.core.features import clv_summary, customer_features
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import ConfigError, DataError, InputError
from rfm_engine.io.loading import load_transactions

DATA = Path(__file__).parent / "data"
RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
                  "email": "Email", "first_name": "First Name", "country": "Country",
                  "channel": "Channel", "product_id": "StockCode", "category": "Category"}
CDNOW_COLUMNS = {"customer_id": "customer_id", "order_date": "date", "amount": "amount"}


def _engine():
    from rfm_engine.engines import spark as engine

    return engine


def _both(spark, source, **options):
    """Load ``source`` on both engines; return (DuckDB, Spark) transactions."""
    return (load_transactions(source, **options),
            _engine().load_transactions(source, spark=spark, **options))


def _same(duck, spk) -> pd.DataFrame:
    """Assert the same customer table and data-quality report; return the table."""
    expected = customer_features(duck)
    pd.testing.assert_frame_equal(_engine().customer_features(spk), expected, check_exact=True)
    assert spk.report.to_dict() == duck.report.to_dict()
    return expected


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("csv"), n_customers=150, seed=5)["transactions"]


def test_csv_file_is_read_by_spark_with_the_same_cleaning(spark, sample_csv):
    duck, spk = _both(spark, sample_csv, columns=SAMPLE_COLUMNS, on_bad_rows="drop")
    _same(duck, spk)
    assert spk.source.kind == "csv"
    assert duck.report.dropped["missing_customer_id"] > 0
    assert duck.report.dropped["duplicate_line"] > 0


def test_a_ragged_csv_row_and_a_bad_csv_value_read_as_on_duckdb(spark, tmp_path):
    ragged = tmp_path / "ragged.csv"
    lines = [f"c{i};2024-01-{i + 1:02d};{i}" for i in range(20)]
    lines[11] += ";9"
    ragged.write_text("\n".join(["customer_id;order_date;amount", *lines, ""]), encoding="utf-8")
    with pytest.raises(InputError) as duck:
        load_transactions(ragged)
    with pytest.raises(InputError) as spk:
        _engine().load_transactions(ragged, spark=spark)
    assert "row 12" in str(duck.value) and str(spk.value) == str(duck.value)
    bad = tmp_path / "bad.csv"  # BOM, semicolons, the bad value on data row 3
    bad.write_bytes("\ufeffcustomer_id;order_date;amount\na;2024-01-01;1\nb;2024-01-02;2\n"
                    "c;2024-01-02;zwei\nd;2024-01-03;4\n".encode())
    with pytest.raises(DataError, match=r"bad\.csv, row 3, column 'amount'") as duck:
        load_transactions(bad)
    with pytest.raises(DataError) as spk:
        _engine().load_transactions(bad, spark=spark)
    assert str(spk.value) == str(duck.value)


def _european() -> pd.DataFrame:
    """Day-first dates and decimal commas, as text, with dirt."""
    rows = [("1", "05/03/2024", "12,50"), ("1", "5/4/2024", "7"), ("2", "31/12/2023", "-1,25"),
            ("2", "01/01/2024", "3,333333"), ("3", "2024-01-05", "1"),  # ISO: not the format
            ("3", "07/01/2024", "1.5"),  # a '.' with --decimal ',': malformed
            ("4", "29/02/2024", "0,00001"), ("4", "30/02/2024", "2"), ("5", "10/02/2024", "4,5")]
    return pd.DataFrame(rows * 3, columns=["cid", "day", "value"])


EUROPEAN = dict(columns={"customer_id": "cid", "order_date": "day", "amount": "value"},
                date_format="%d/%m/%Y", decimal=",")


def test_date_format_and_decimal_comma_mean_the_same_on_both_engines(spark, tmp_path):
    path = tmp_path / "european.parquet"
    _european().to_parquet(path, index=False)
    duck, spk = _both(spark, path, on_bad_rows="drop", **EUROPEAN)
    table = _same(duck, spk)
    assert duck.report.bad_values == {"day": 6, "value": 6}
    assert table.set_index("customer_id").loc["1", "monetary"] == (12.5 + 7) * 3
    with pytest.raises(DataError) as duck_error:
        load_transactions(path, **EUROPEAN)
    with pytest.raises(DataError) as spark_error:
        _engine().load_transactions(path, spark=spark, **EUROPEAN)
    assert str(spark_error.value) == str(duck_error.value)
    assert "row 5, column 'day'" in str(duck_error.value) and "'%d/%m/%Y'" in str(
        duck_error.value)


def test_options_out_of_range_are_refused_in_the_same_words(spark, tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"customer_id": ["a"], "order_date": ["2024-01-01"],
                  "amount": [1.0]}).to_parquet(path)
    for options in ({"decimal": ";"}, {"on_bad_rows": "skip"}, {"window_days": 0},
                    {"max_drop_fraction": 2.0}):
        with pytest.raises(ConfigError) as duck:
            load_transactions(path, **options)
        with pytest.raises(ConfigError) as spk:
            _engine().load_transactions(path, spark=spark, **options)
        assert str(spk.value) == str(duck.value)


def test_a_table_of_spark_catalog_is_read_with_spark_table(spark, tmp_path):
    path = tmp_path / "sales.parquet"
    frame = _european()
    frame.to_parquet(path, index=False)
    spark.read.parquet(str(path)).createOrReplaceTempView("sales_view")
    spark.sql(f"CREATE TABLE sales_table USING parquet LOCATION '{path}'")
    try:
        duck = load_transactions(path, on_bad_rows="drop", **EUROPEAN)
        for name in ("sales_view", "sales_table"):
            spk = _engine().load_transactions(spark=spark, table=name, on_bad_rows="drop",
                                              **EUROPEAN)
            pd.testing.assert_frame_equal(_engine().customer_features(spk),
                                          customer_features(duck), check_exact=True)
            assert spk.report.to_dict() == {**duck.report.to_dict(), "source": name}
        # A file-based table names the file and row; a view only itself.
        with pytest.raises(DataError) as duck_error:
            load_transactions(path, **EUROPEAN)
        with pytest.raises(DataError) as table_error:
            _engine().load_transactions(spark=spark, table="sales_table", **EUROPEAN)
        assert str(table_error.value) == str(duck_error.value).replace(str(path), str(path))
        with pytest.raises(DataError, match=r"^sales_view, column 'day': got '2024-01-05'"):
            _engine().load_transactions(spark=spark, table="sales_view", **EUROPEAN)
    finally:
        spark.sql("DROP TABLE IF EXISTS sales_table")
        spark.catalog.dropTempView("sales_view")
    with pytest.raises(InputError, match=r"--table 'no_such': no such table or view"):
        _engine().load_transactions(spark=spark, table="no_such")
    with pytest.raises(ConfigError, match="give no INPUT with it"):
        _engine().load_transactions(path, spark=spark, table="sales_view")


def _delta_table(folder: Path, frame: pd.DataFrame) -> Path:
    """A minimal Delta table written by hand: one Parquet file and its commit in _delta_log."""
    folder.mkdir()
    data = folder / "part-00000.parquet"
    frame.to_parquet(data, index=False)
    schema = {"type": "struct", "fields": [
        {"name": c, "type": "string", "nullable": True, "metadata": {}} for c in frame.columns]}
    actions = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": "00000000-0000-0000-0000-000000000000", "format": {
            "provider": "parquet", "options": {}}, "schemaString": json.dumps(schema),
            "partitionColumns": [], "configuration": {}, "createdTime": 0}},
        {"add": {"path": data.name, "partitionValues": {}, "size": data.stat().st_size,
                 "modificationTime": 0, "dataChange": True}},
    ]
    (folder / "_delta_log").mkdir()
    (folder / "_delta_log" / f"{0:020d}.json").write_text(
        "\n".join(json.dumps(a) for a in actions) + "\n", encoding="utf-8")
    return folder


def test_a_delta_table_without_delta_lake_is_refused_naming_the_install(spark, tmp_path):
    folder = _delta_table(tmp_path / "sales", _european())
    try:
        import delta  # noqa: F401
    except ModuleNotFoundError:
        expected = "pip install delta-spark"
    else:  # pragma: no cover - delta-spark installed, but no jars on this session
        expected = "start it with its jars"
    with pytest.raises(ConfigError, match=r"a Delta table \(it holds _delta_log\)") as error:
        _engine().load_transactions(folder, spark=spark, **EUROPEAN)
    assert expected in str(error.value) and "\n" not in str(error.value)


def _cdnow_parquet(path: Path) -> Path:
    """CDNOW_sample.txt (whitespace-separated, dates as yyyymmdd) as a Parquet of text."""
    raw = pd.read_csv(DATA / "CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
                      names=["customer_id", "id2", "date", "units", "amount"])
    raw.drop(columns=["id2", "units"]).to_parquet(path, index=False)
    return path


def test_cdnow_gives_the_same_customers_features_clv_summary_and_counts(spark, tmp_path):
    path = _cdnow_parquet(tmp_path / "cdnow.parquet")
    options = dict(columns=CDNOW_COLUMNS, date_format="%Y%m%d", as_of="1997-09-30")
    duck, spk = _both(spark, path, **options)
    table = _same(duck, spk)
    assert len(table) == 2357  # the sample's customers (Fader, Hardie & Lee 2005)
    assert duck.report.dropped["after_as_of"] > 0
    duck, spk = _both(spark, path, **options)  # fresh reports: the summary counts too
    expected = clv_summary(duck, time_unit="W")
    pd.testing.assert_frame_equal(_engine().clv_summary(spk, time_unit="W"), expected,
                                  check_exact=True)
    assert spk.report.to_dict() == duck.report.to_dict()
    assert expected["frequency"].sum() > 0 and (expected["monetary_value"] > 0).any()


def test_a_dirty_csv_gives_the_same_counts_features_and_clv_summary(spark, tmp_path):
    from tests.test_spark_engine import _dirty

    path = tmp_path / "dirty.csv"
    _dirty().to_csv(path, index=False)
    options = dict(columns={"customer_id": "cid", "order_id": "oid", "order_date": "when",
                            "amount": "amount", "email": "email"},
                   as_of="2024-03-31", window_days=120, on_bad_rows="drop",
                   max_drop_fraction=0.9, max_shared_order_fraction=0.2)
    duck, spk = _both(spark, path, **options)
    table = _same(duck, spk)
    assert set(table["customer_id"]) == {"17850", "José", "b", "e", "f", "g"}
    report = duck.report
    assert report.dropped["bad_value"] == 5 * 30 and report.dropped["duplicate_line"] == 30
    assert report.dropped["missing_customer_id"] == 2 * 30 and report.dropped["after_as_of"] == 30
    pd.testing.assert_frame_equal(_engine().clv_summary(spk), clv_summary(duck), check_exact=True)


def test_cli_clv_summary_on_spark_writes_the_same_files(spark, tmp_path):
    path = _cdnow_parquet(tmp_path / "cdnow.parquet")
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.csv"
        result = subprocess.run(
            [*RFM, "-q", "clv-summary", str(path), "--columns", "order_date=date",
             "--date-format", "%Y%m%d", "--as-of", "1997-09-30", "--time-unit", "W",
             "--engine", engine, "-o", str(out)],
            capture_output=True, text=True, timeout=600,
            env={"RFM_ENGINE_SPARK_MASTER": "local[2]", "PATH": "/usr/bin:/bin",
                 "HOME": str(tmp_path)})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[engine] = [out.read_bytes(), Path(f"{out}.quality.json").read_bytes()]
    assert outputs["spark"][0] == outputs["duckdb"][0]
    assert outputs["spark"][1].replace(b"spark.csv", b"x") == \
        outputs["duckdb"][1].replace(b"duckdb.csv", b"x")


def test_cli_clv_on_spark_writes_the_same_files(spark, tmp_path):
    """``clv --engine spark``: the summary grouped on Spark, the model fitted on the driver."""
    path = _cdnow_parquet(tmp_path / "cdnow.parquet")
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / engine / "clv.csv"
        result = subprocess.run(
            [*RFM, "-q", "clv", str(path), "--columns", "order_date=date", "--date-format",
             "%Y%m%d", "--as-of", "1997-09-30", "--time-unit", "W", "--engine", engine,
             "--params-out", str(tmp_path / engine / "params.json"), "-o", str(out)],
            capture_output=True, text=True, timeout=600,
            env={"RFM_ENGINE_SPARK_MASTER": "local[2]", "PATH": "/usr/bin:/bin",
                 "HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[engine] = {p.name: p.read_bytes() for p in (tmp_path / engine).iterdir()}
    assert set(outputs["spark"]) == set(outputs["duckdb"]) >= {"clv.csv", "params.json"}
    assert outputs["spark"] == outputs["duckdb"]  # the table, quality, parameters, plots
    assert len(outputs["duckdb"]["clv.csv"].splitlines()) == 2357 + 1


def test_a_config_file_keeps_uris_as_they_are(tmp_path):
    from rfm_engine.config import load_config

    config = tmp_path / "weekly.toml"
    config.write_text('[input]\npath = "s3a://lake/sales/"\nengine = "spark"\n'
                      '[output]\ndir = "runs"\n', encoding="utf-8")
    loaded = load_config(config)
    assert loaded.input.path == "s3a://lake/sales/"
    assert loaded.output.dir == str(tmp_path / "runs")
