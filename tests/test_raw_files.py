"""Raw text files as published: ``--delimiter whitespace`` and ``--no-header --names``.

The reference reading of CDNOW is pandas' ``read_csv(sep=r"\\s+", header=None, dtype=str)``
(tests/conftest.py), an independent parser; the published calibration summary of the sample
(tests/data/cdnow_customers_summary_with_transactions.csv) is the other reference.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rfm_engine.core.features import clv_summary, customer_features
from rfm_engine.errors import ConfigError, DataError, InputError
from rfm_engine.io.loading import load_transactions

from .conftest import DATA, read_cdnow

CDNOW_FILE = DATA / "CDNOW_sample.txt"
CDNOW_NAMES = ["master_id", "customer_id", "order_date", "cds", "amount"]
RAW = {"delimiter": "whitespace", "header": False, "names": CDNOW_NAMES,
       "date_format": "%Y%m%d"}


def write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rfm_engine", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


# ------------------------------------------------------------------ CDNOW as published


def test_cdnow_raw_file_reads_like_pandas_whitespace_reader():
    tx = load_transactions(CDNOW_FILE, **RAW)
    reference = read_cdnow()
    assert tx.report.rows_read == len(reference) == 6919
    frame = tx.to_frame().sort_values(["customer_id", "order_date", "amount"],
                                      ignore_index=True)
    expected = pd.DataFrame({
        "customer_id": reference["customer_id"],
        "order_date": pd.to_datetime(reference["date"], format="%Y%m%d"),
        "amount": reference["amount"].astype(float),
    }).sort_values(["customer_id", "order_date", "amount"], ignore_index=True)
    assert frame["customer_id"].tolist() == expected["customer_id"].tolist()
    assert frame["customer_id"].iloc[0] == "0001"  # leading zeros kept: ids are text
    np.testing.assert_array_equal(frame["order_date"].to_numpy(dtype="datetime64[ns]"),
                                  expected["order_date"].to_numpy(dtype="datetime64[ns]"))
    np.testing.assert_allclose(frame["amount"], expected["amount"])


def test_cdnow_raw_file_gives_the_published_summary():
    got = clv_summary(load_transactions(CDNOW_FILE, as_of="1997-09-30", **RAW), time_unit="W")
    published = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    got["ID"] = got["customer_id"].astype(int)
    merged = published.merge(got, on="ID", how="left", validate="one_to_one")
    assert len(got) == 2357
    np.testing.assert_array_equal(merged["frequency"], merged["x"])
    np.testing.assert_allclose(merged["recency"], merged["t_x"], atol=0.005)
    np.testing.assert_allclose(merged["monetary_value"], merged["zbar"], atol=0.0051)


def test_cdnow_master_ids_keep_their_zeros():
    tx = load_transactions(CDNOW_FILE, **{**RAW, "names": ["customer_id", "sample_id",
                                                           "order_date", "cds", "amount"]})
    ids = customer_features(tx)["customer_id"]
    assert ids.str.len().eq(5).all() and ids.iloc[0] == "00004"


def test_cli_reads_cdnow_raw_file(tmp_path):
    result = run("clv-summary", CDNOW_FILE, "--delimiter", "whitespace", "--no-header",
                 "--names", ",".join(CDNOW_NAMES), "--date-format", "%Y%m%d",
                 "--as-of", "1997-09-30", "--time-unit", "W", "-o", tmp_path / "s.csv")
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "s.csv", dtype={"customer_id": str})
    assert len(summary) == 2357 and summary["customer_id"].iloc[0] == "0001"
    published = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    assert summary["frequency"].sum() == published["x"].sum()


def test_config_keys_read_cdnow_raw_file(tmp_path):
    (tmp_path / "cdnow.toml").write_text(
        f'[input]\npath = "{CDNOW_FILE.as_posix()}"\ndelimiter = "whitespace"\n'
        'header = false\nnames = ["master_id", "customer_id", "order_date", "cds", "amount"]\n'
        'date_format = "%Y%m%d"\n', encoding="utf-8")
    result = run("features", "--config", tmp_path / "cdnow.toml", "-o", tmp_path / "c.csv")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "c.csv")) == 2357


def test_compact_dates_without_date_format_get_the_hint():
    with pytest.raises(DataError, match=r"CDNOW_sample.txt, row 1, column 'order_date': got "
                       r"'19970101'.*looks like a date written YYYYMMDD: pass --date-format "
                       r"%Y%m%d"):
        load_transactions(CDNOW_FILE, **{**RAW, "date_format": None})


# ------------------------------------------------------------------ whitespace rules


def test_whitespace_with_header_tabs_blank_lines_and_crlf(tmp_path):
    path = write(tmp_path / "tx.txt", "customer_id  order_date\tamount\r\n"
                 "  007 2024-01-01   10.5  \r\n\r\n"
                 "007\t\t2024-01-03 2\r\n   \r\n"
                 "8 2024-01-02 -1\r\n")
    frame = load_transactions(path, delimiter="whitespace").to_frame()
    assert frame["customer_id"].tolist() == ["007", "007", "8"]
    assert frame["amount"].tolist() == [10.5, 2.0, -1.0]


def test_whitespace_bad_value_names_file_row_column_value(tmp_path):
    path = write(tmp_path / "tx.txt", "1 2024-01-01 3\n2 2024-01-02 x4\n")
    with pytest.raises(DataError, match=r"tx.txt, row 2, column 'amount': got 'x4'"):
        load_transactions(path, delimiter="whitespace", header=False,
                          names=["customer_id", "order_date", "amount"])


@pytest.mark.parametrize(("text", "header", "match"), [
    ("customer_id order_date amount\n1 2024-01-01 3\n\n2 2024-01-02\n", True,
     r"tx.txt, row 2 \(line 4\): 2 fields, expected 3 as in the header"),
    ("1 2024-01-01 3\n2 2024-01-02 4 extra\n", False,
     r"tx.txt, row 2 \(line 2\): 4 fields, expected 3 as --names gives"),
    ("customer_id order_date Customer_ID\n1 2024-01-01 3\n", True,
     r"tx.txt, header: column name 'Customer_ID' appears twice \(columns 1 and 3\)"),
    ("\n  \n", True, r"tx.txt: the file (is empty|holds only blank lines)"),
])
def test_whitespace_refusals(tmp_path, text, header, match):
    path = write(tmp_path / "tx.txt", text)
    names = None if header else ["customer_id", "order_date", "amount"]
    with pytest.raises(InputError, match=match):
        load_transactions(path, delimiter="whitespace", header=header, names=names)


# ------------------------------------------------------------------ --no-header --names


def test_comma_file_without_header(tmp_path):
    path = write(tmp_path / "tx.csv", "0042,2024-01-01,3\n0042,2024-01-05,4\n7,2024-01-02,5\n")
    tx = load_transactions(path, header=False, names=["customer_id", "order_date", "amount"])
    features = customer_features(tx)
    assert features["customer_id"].tolist() == ["0042", "7"]
    assert features["monetary"].tolist() == [7.0, 5.0]


@pytest.mark.parametrize(("names", "match"), [
    (["customer_id", "order_date"], r"tx.csv, row 1 \(line 1\): 3 fields, expected 2 as "
     "--names gives"),
    (["customer_id", "order_date", "amount", "extra"],
     r"tx.csv, row 1 \(line 1\): 3 fields, expected 4 as --names gives"),
])
def test_names_must_match_the_fields(tmp_path, names, match):
    path = write(tmp_path / "tx.csv", "1,2024-01-01,3\n2,2024-01-02,4\n")
    with pytest.raises(InputError, match=match):
        load_transactions(path, header=False, names=names)


@pytest.mark.parametrize(("header", "names", "match"), [
    (False, None, "--no-header needs --names"),
    (True, ["a", "b"], "--names names the columns of a file without a header"),
    (False, ["a", "A"], r"--names: 'A' appears twice \(positions 1 and 2\)"),
    (False, ["a", " "], "--names: every column needs a name"),
])
def test_header_and_names_settings(tmp_path, header, names, match):
    path = write(tmp_path / "tx.csv", "1,2024-01-01,3\n")
    with pytest.raises(ConfigError, match=match):
        load_transactions(path, header=header, names=names)


def test_cli_refusals_are_one_line(tmp_path):
    path = write(tmp_path / "tx.txt", "1 2024-01-01 3\n2 2024-01-02\n")
    result = run("features", path, "--delimiter", "whitespace", "--no-header",
                 "--names", "customer_id,order_date,amount", "-o", tmp_path / "f.csv")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path}, row 2 (line 2): 2 fields, expected 3 as --names gives; give one name "
        "per field.")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "f.csv").exists()
    result = run("features", path, "--no-header", "-o", tmp_path / "f.csv")
    assert result.returncode == 2 and "error: --no-header needs --names" in result.stderr
