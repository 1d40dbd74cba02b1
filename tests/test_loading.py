import datetime as dt
import tempfile
import unicodedata
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from rfm_engine.core.features import customer_features
from rfm_engine.errors import (
    ConfigError,
    DataError,
    EmptyResultError,
    InputError,
    MissingColumnsError,
)
from rfm_engine.io.loading import connect, load_transactions

RETAIL_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
                  "quantity": "Quantity", "unit_price": "Price", "country": "Country"}


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


def test_online_retail_shape_cleaning_counts(data_dir):
    tx = load_transactions(data_dir / "online_retail_ii_small.csv", columns=RETAIL_COLUMNS)
    r = tx.report
    assert r.rows_read == 12
    assert r.dropped == {"bad_value": 0, "before_min_date": 0, "missing_customer_id": 1,
                         "duplicate_line": 1, "after_as_of": 0, "before_window": 0}
    assert r.rows_kept == 10
    assert r.return_lines == 3
    assert tx.as_of == dt.date(2009, 12, 8)
    assert sorted(tx.to_frame().customer_id.unique()) == ["12346", "13078", "13085", "16321"]


def test_bom_semicolon_and_leading_zeros(tmp_path):
    path = write(tmp_path / "tx.csv",
                 "\ufeffcustomer_id;order_date;amount\n007;2024-01-01;10.5\n 007 ;2024-01-02;1\n")
    tx = load_transactions(path)
    frame = tx.to_frame()
    assert list(frame.customer_id) == ["007", "007"]
    assert frame.amount.tolist() == [10.5, 1.0]


def test_explicit_delimiter_and_latin1(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id|order_date|amount|first_name\n"
                 "1|2024-01-01|3|Zoë\n", encoding="latin-1")
    tx = load_transactions(path, delimiter="|", encoding="latin-1")
    assert customer_features(tx).first_name.tolist() == ["Zoë"]


def test_ids_spreadsheet_floats_spaces_and_nfc():
    decomposed = unicodedata.normalize("NFD", "José")
    raw = pd.DataFrame({"customer_id": ["17850.0", " 17850 ", decomposed, "0042"],
                        "order_date": ["2024-01-01"] * 4, "amount": [1.0, 2.0, 3.0, 4.0]})
    ids = customer_features(load_transactions(raw)).customer_id.tolist()
    assert ids == sorted(["17850", unicodedata.normalize("NFC", "José"), "0042"])


def test_numeric_float_ids_from_a_dataframe():
    raw = pd.DataFrame({"customer_id": [17850.0, float("nan")], "order_date": ["2024-01-01"] * 2,
                        "amount": [1.0, 2.0]})
    tx = load_transactions(raw)
    assert tx.to_frame().customer_id.tolist() == ["17850"]
    assert tx.report.dropped["missing_customer_id"] == 1


def test_offsets_convert_to_utc_dates():
    raw = pd.DataFrame({"customer_id": ["a", "b"],
                        "order_date": ["2024-01-01T23:30:00-02:00", "2024-01-02T00:30:00+02:00"],
                        "amount": [1.0, 1.0]})
    frame = load_transactions(raw).to_frame()
    assert frame.order_date.astype(str).tolist() == ["2024-01-02", "2024-01-01"]


def test_non_iso_date_is_an_error_naming_file_row_column(tmp_path):
    path = write(tmp_path / "tx.csv", "cid,when,amount\n1,2024-01-01,1\n2,03/04/2024,1\n")
    with pytest.raises(DataError, match=r"tx\.csv, row 2, column 'when': got '03/04/2024'.*"
                       r"ISO 8601.*--date-format") as info:
        load_transactions(path, columns={"customer_id": "cid", "order_date": "when"})
    assert info.value.exit_code == 2
    assert info.value.row == 2


def test_explicit_date_format(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,order_date,amount\n1,03/04/2024,1\n")
    tx = load_transactions(path, date_format="%d/%m/%Y")
    assert tx.as_of == dt.date(2024, 4, 3)


@pytest.mark.parametrize("value", ["abc", "inf", "NaN", "\"1,5\"", "", "1e400"])
def test_malformed_amount_stops_the_load(tmp_path, value):
    path = write(tmp_path / "tx.csv",
                 f"customer_id,order_date,amount\n1,2024-01-01,2\n1,2024-01-02,2\n2,2024-01-03,{value}\n")
    with pytest.raises(DataError, match=r"row 3, column 'amount'.*expected a finite number"):
        load_transactions(path)


def test_bad_rows_dropped_and_counted_on_request(tmp_path):
    path = write(tmp_path / "tx.csv",
                 "customer_id,order_date,amount\n1,2024-01-01,2\n1,2024-01-02,2\n2,2024-01-03,x\n")
    tx = load_transactions(path, on_bad_rows="drop")
    assert tx.report.dropped["bad_value"] == 1
    assert tx.report.bad_values == {"amount": 1}
    assert tx.report.rows_kept == 2


def test_too_many_drops_fail(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,order_date,amount\n,2024-01-01,2\n"
                 ",2024-01-01,2\n1,2024-01-01,2\n")
    with pytest.raises(InputError, match=r"2 of 3 rows would be dropped.*missing_customer_id 2"):
        load_transactions(path)
    assert load_transactions(path, max_drop_fraction=0.7).report.rows_kept == 1


def test_missing_columns_lists_missing_and_available(tmp_path):
    path = write(tmp_path / "tx.csv", "Customer,Date,Total\n1,2024-01-01,2\n")
    with pytest.raises(MissingColumnsError,
                       match=r"missing column\(s\) 'customer_id', 'order_date', 'amount'; "
                             r"available: 'Customer', 'Date', 'Total'"):
        load_transactions(path)


def test_line_items_need_both_quantity_and_price(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,order_date,qty\n1,2024-01-01,2\n")
    with pytest.raises(MissingColumnsError, match=r"missing column\(s\) 'unit_price'"):
        load_transactions(path, columns={"quantity": "qty"})


def test_no_customer_left_is_an_empty_result(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,order_date,amount\n,2024-01-01,2\n")
    with pytest.raises(EmptyResultError, match="no transaction left"):
        load_transactions(path, max_drop_fraction=1.0)


def test_as_of_excludes_later_rows_and_window(tiny):
    tx = load_transactions(tiny, as_of="2024-01-21", window_days=11)
    assert tx.report.dropped["after_as_of"] == 2
    assert tx.report.dropped["before_window"] == 2
    assert tx.window_start == dt.date(2024, 1, 11)
    assert sorted(tx.to_frame().order_date.astype(str)) == ["2024-01-11", "2024-01-21"]


def test_bad_parameters_named(tiny):
    with pytest.raises(ConfigError, match="'on_bad_rows' parameter must be 'raise' or 'drop'"):
        load_transactions(tiny, on_bad_rows="skip")
    with pytest.raises(ConfigError, match="--as-of: '21/01/2024' is not an ISO date"):
        load_transactions(tiny, as_of="21/01/2024")
    with pytest.raises(ConfigError, match="'window_days' parameter must be a positive int"):
        load_transactions(tiny, window_days=0)


def test_dataframe_not_mutated(tiny):
    before = tiny.copy(deep=True)
    load_transactions(tiny)
    pd.testing.assert_frame_equal(tiny, before)


def test_without_order_id_identical_rows_are_separate_purchases(cdnow):
    tx = load_transactions(cdnow, columns={"order_date": "date"}, date_format="%Y%m%d")
    assert tx.report.dropped["duplicate_line"] == 0
    assert tx.report.rows_kept == len(cdnow) == 6919
    identical = cdnow.duplicated(["customer_id", "date", "amount"]).sum()
    assert identical > 0
    total = pd.to_numeric(cdnow.amount).sum()
    assert customer_features(tx).monetary.sum() == pytest.approx(total)


def test_parquet_folder_names_the_file_and_row(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    good = pd.DataFrame({"customer_id": ["1", "2"], "order_date": ["2024-01-01", "2024-01-02"],
                         "amount": ["1", "2"]})
    bad = good.assign(amount=["3", "oops"])
    good.to_parquet(folder / "a.parquet")
    bad.to_parquet(folder / "b.parquet")
    with pytest.raises(DataError, match=r"b\.parquet, row 2, column 'amount': got 'oops'"):
        load_transactions(folder)
    tx = load_transactions(folder / "a.parquet")
    assert tx.report.rows_read == 2


def test_typed_parquet_timestamps_and_numbers(tmp_path):
    frame = pd.DataFrame({"customer_id": [1, 2],
                          "order_date": pd.to_datetime(["2024-01-01 10:00", "2024-01-05 00:00"]),
                          "amount": [1.5, 2.0]})
    frame.to_parquet(tmp_path / "t.parquet")
    features = customer_features(load_transactions(tmp_path / "t.parquet"))
    assert features.customer_id.tolist() == ["1", "2"]
    assert features.recency_days.tolist() == [4, 0]


def test_duckdb_table(tmp_path):
    db = tmp_path / "shop.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE sales (cust VARCHAR, d DATE, v DOUBLE)")
        con.execute("INSERT INTO sales VALUES ('x', DATE '2024-01-01', 5), ('x', NULL, 1)")
    with pytest.raises(DataError, match=r"shop\.duckdb::sales, row 2, column 'd'"):
        load_transactions(db, table="sales",
                          columns={"customer_id": "cust", "order_date": "d", "amount": "v"})
    tx = load_transactions(db, table="sales", on_bad_rows="drop",
                           columns={"customer_id": "cust", "order_date": "d", "amount": "v"})
    assert tx.report.rows_kept == 1


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        load_transactions(tmp_path / "nope.csv")


def test_decimal_comma_is_strict(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id;order_date;amount\n1;2024-01-01;12,50\n"
                 "2;2024-01-02;3\n")
    with pytest.raises(DataError, match=r"got '12,50'.*--decimal ','"):
        load_transactions(path)
    assert load_transactions(path, decimal=",").to_frame().amount.tolist() == [12.5, 3.0]
    mixed = write(tmp_path / "mixed.csv", "customer_id;order_date;amount\n1;2024-01-01;1.250,00\n")
    with pytest.raises(DataError, match=r"got '1.250,00'.*decimal comma, no thousands"):
        load_transactions(mixed, decimal=",")


def test_first_bad_column_in_a_row_is_the_date(tmp_path):
    path = write(tmp_path / "tx.csv", "customer_id,order_date,amount\n1,2024-01-01,1\n1,x,y\n")
    with pytest.raises(DataError, match=r"row 2, column 'order_date'"):
        load_transactions(path)


def test_a_file_rewritten_during_a_run_stops_it(tmp_path):
    path = tmp_path / "tx.parquet"
    frame = pd.DataFrame({"customer_id": ["a", "b"], "order_date": ["2024-01-01", "2024-01-02"],
                          "amount": [10.0, 20.0]})
    frame.to_parquet(path)
    tx = load_transactions(path)
    frame.assign(amount=[10.0, 2000.0]).to_parquet(path)  # an upstream export lands
    with pytest.raises(InputError, match="changed while being read"):
        customer_features(tx)


def test_dataframe_is_a_snapshot_taken_at_load():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "order_date": ["2024-01-01", "2024-01-02"],
                          "amount": [10.0, 20.0]})
    tx = load_transactions(frame)
    frame.loc[1, "amount"] = 2000.0
    assert customer_features(tx)["monetary"].tolist() == [10.0, 20.0]


def test_an_empty_amount_is_named_as_such(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a", "b"], "order_date": ["2024-01-01", "2024-01-02"],
                  "amount": [10.0, None]}).to_parquet(path)
    with pytest.raises(DataError, match=r"row 2, column 'amount': got an empty value, expected"):
        load_transactions(path)


def test_dataframe_with_a_repeated_column_name_is_refused():
    raw = pd.DataFrame([["a", "2024-01-01", 1.0, 2.0]],
                       columns=["customer_id", "order_date", "amount", "amount"])
    with pytest.raises(InputError, match=r"column name\(s\) 'amount' appear more than once"):
        load_transactions(raw)


def test_typed_dates_infinite_or_before_the_floor(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a", "b", "c"],
                  "order_date": pd.to_datetime(["2024-01-01", "1850-06-01", "2024-01-02"]),
                  "amount": [1.0, 2.0, 3.0]}).to_parquet(path)
    with pytest.raises(DataError, match=r"row 2, column 'order_date': got '1850-06-01 00:00:00', "
                                        r"expected a date on or after 1900-01-01"):
        load_transactions(path)
    tx = load_transactions(path, on_bad_rows="drop")
    assert tx.report.dropped["before_min_date"] == 1 and tx.report.rows_kept == 2
    assert load_transactions(path, min_date="1800-01-01").report.rows_kept == 3
    with pytest.raises(ConfigError, match="'min_date' parameter must be a date or an ISO date"):
        load_transactions(path, min_date="01/01/1900")
    con = connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', TIMESTAMP 'infinity', 1.0), "
                "('b', TIMESTAMP '2024-01-01', 2.0)) v(customer_id, order_date, amount)")
    con.execute(f"COPY t TO '{tmp_path / 'inf.parquet'}' (FORMAT parquet)")
    with pytest.raises(DataError, match="row 1, column 'order_date': got 'infinity'"):
        load_transactions(tmp_path / "inf.parquet")


def test_duckdb_progress_bar_is_off_unless_asked():
    # DuckDB 2 draws a progress bar by default: it would reach -q runs and log files.
    setting = "SELECT current_setting('enable_progress_bar')"
    assert connect().sql(setting).fetchall() == [(False,)]
    # Asked for (the step bars on a terminal): DuckDB tracks progress, the step bars draw it.
    followed = connect(progress_bar=True)
    assert followed.sql(setting).fetchall() == [(True,)]
    printing = "SELECT current_setting('enable_progress_bar_print')"
    assert followed.sql(printing).fetchall() == [(False,)]


def _setting(con, name):
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


def test_memory_limit_is_set_and_spills_go_to_a_temp_folder_removed_on_close():
    raw = pd.DataFrame({"customer_id": ["a"], "order_date": ["2024-01-02"], "amount": [1.0]})
    small = load_transactions(raw, memory_limit="256MB")
    assert _setting(small.con, "memory_limit") == "244.1 MiB"  # 256 * 1000**2 bytes
    assert _setting(load_transactions(raw).con, "memory_limit") == "953.6 MiB"  # the 1GB default
    with pytest.raises(ConfigError, match=r"'memory_limit' parameter must be a memory size .* "
                                          r"Got 'lots' instead"):
        load_transactions(raw, memory_limit="lots")
    con = connect(memory_limit="40MB")
    spill = Path(_setting(con, "temp_directory"))
    assert spill.parent == Path(tempfile.gettempdir()) and spill.name.startswith(
        "rfm-engine-spill-")
    assert not spill.exists()  # made only when DuckDB spills
    con.execute("CREATE TEMP TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s "
                "FROM range(1500000)")
    assert con.execute("SELECT count(DISTINCT s) FROM t").fetchall()[0][0] == 1_500_000
    assert spill.is_dir()
    con.close()
    assert not spill.exists()
