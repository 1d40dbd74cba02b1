"""The corpus of bad inputs: one small input per class, each with its documented answer.

Every case runs the real command, ``rfm-engine -q segment INPUT -o out/segments.csv``, and
checks the exit code and a message substring. A refused input gives exactly one line on
stderr, no traceback, and nothing in the output folder; an accepted one is checked for
what the README says it means.
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
HEADER = "customer_id,order_id,order_date,amount\n"
GOOD = "Z,9,2024-01-05,5\n"


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(rows) + GOOD).encode()


# name: (files {relative path: bytes}, input, extra options, exit code, stderr substring)
REFUSED = {
    "duplicate_column": ({"tx.csv": b"customer_id,order_date,amount,amount\nA,2024-01-01,1,2\n"},
                         "tx.csv", [], 2, "column name 'amount' appears twice (columns 3 and 4)"),
    "duplicate_column_other_case": (
        {"tx.csv": b"customer_id,Amount,order_date,amount\nA,1,2024-01-01,2\n"}, "tx.csv", [], 2,
        "appears twice (columns 2 and 4)"),
    "ragged_row_too_many": ({"tx.csv": _csv("A,1,2024-01-01,10\n", "B,2,2024-01-02,10,99\n")},
                            "tx.csv", [], 2, "row 2 (line 3): 5 fields, expected 4"),
    "ragged_row_too_few": ({"tx.csv": _csv("A,1,2024-01-01,10\n", "B,2,2024-01-02\n")},
                           "tx.csv", [], 2, "row 2 (line 3): 3 fields, expected 4"),
    "line_items_out_of_range": (
        {"tx.csv": b"customer_id,order_date,quantity,unit_price\nA,2024-01-01,20000000,20000000\n"
                   b"B,2024-01-02,1,1\n"}, "tx.csv", [], 2,
        "row 1, column 'quantity \u00d7 unit_price': got '20000000 \u00d7 20000000', expected a "
        "number of absolute value below 10,000,000,000,000: out of range"),
    "amount_out_of_range": ({"tx.csv": _csv("A,1,2024-01-01,1e15\n")}, "tx.csv", [], 2,
                            "row 1, column 'amount': got '1e15', expected a number of absolute "
                            "value below 10,000,000,000,000: out of range"),
    "date_epoch": ({"tx.csv": _csv("A,1,epoch,10\n")}, "tx.csv", [], 2,
                   "row 1, column 'order_date': got 'epoch', expected an ISO 8601 date"),
    "date_infinity": ({"tx.csv": _csv("A,1,infinity,10\n")}, "tx.csv", [], 2,
                      "got 'infinity', expected an ISO 8601 date"),
    "date_minus_infinity": ({"tx.csv": _csv("A,1,-infinity,10\n")}, "tx.csv", [], 2,
                            "got '-infinity', expected an ISO 8601 date"),
    "date_negative_year": ({"tx.csv": _csv("A,1,-0044-03-15,10\n")}, "tx.csv", [], 2,
                           "got '-0044-03-15', expected an ISO 8601 date"),
    "date_before_christ": ({"tx.csv": _csv("A,1,0044-03-15 (BC),10\n")}, "tx.csv", [], 2,
                           "got '0044-03-15 (BC)', expected a date on or after 1900-01-01"),
    "date_before_floor": ({"tx.csv": _csv("A,1,1850-03-15,10\n")}, "tx.csv", [], 2,
                          "got '1850-03-15', expected a date on or after 1900-01-01"),
    "date_before_configured_floor": ({"tx.csv": _csv("A,1,2010-03-15,10\n")}, "tx.csv",
                                     ["--min-date", "2020-01-01"], 2,
                                     "expected a date on or after 2020-01-01"),
    "excel_serial_date": ({"tx.csv": _csv("A,1,45000,10\n")}, "tx.csv", [], 2,
                          "'45000' looks like an Excel serial date (day 45000 = 2023-03-15)"),
    "amount_rounding_to_zero": ({"tx.csv": _csv(*(f"A,{i},2024-01-01,0.00004\n"
                                                  for i in range(10)))}, "tx.csv", [], 2,
                                "got '0.00004', expected 0 or an amount of at least 0.0001"),
    "window_days_beyond_any_date": ({"tx.csv": _csv("A,1,2024-01-01,10\n")}, "tx.csv",
                                    ["--window-days", "1000000"], 2,
                                    "--window-days 1,000,000 would start the window before"),
    "latin1_bytes": ({"tx.csv": HEADER.encode() + b"A,1,2024-01-01,10\n\xc4,2,2024-01-01,10\n"},
                     "tx.csv", [], 2, "line 3: cannot read as CSV: Invalid unicode"),
    "utf16_bytes": ({"tx.csv": (HEADER + "\u00c4,1,2024-01-01,10\n").encode("utf-16")},
                    "tx.csv", [], 2, "This file is not utf-8 encoded. Set the encoding: "
                    "--encoding latin-1"),
    "order_id_shared_by_two_customers": (
        {"tx.csv": _csv("A,1,2024-01-01,10\n", "B,1,2024-01-01,20\n")}, "tx.csv", [], 2,
        "tx.csv: 1 of 2 order ids (50.00%) are used by more than one customer, such as "
        "'order_id' = '1' (2 customers: 'A', 'B'): more than max_shared_order_fraction 1.00%"),
    "empty_file": ({"tx.csv": b""}, "tx.csv", [], 2, "tx.csv: the file is empty"),
    "blank_file": ({"tx.csv": b"\n\n"}, "tx.csv", [], 2, "tx.csv: the file is empty"),
    "folder_mixing_csv_and_parquet": (
        {"in/a.csv": _csv(), "in/b.parquet": None}, "in", [], 2,
        "folder holds 1 .parquet file(s) and 1 other data file(s) (a.csv)"),
}

# name: (files, input, extra options, check of the written customer table and quality report)
ACCEPTED = {
    "underscore_digit_groups": ({"tx.csv": _csv("A,1,2024-01-01,1_200.50\n")}, "tx.csv", [],
                                lambda t, q: t.loc["A", "monetary"] == 1200.5),
    "year_first_slashes": ({"tx.csv": _csv("A,1,2025/03/04,10\n")}, "tx.csv", [],
                           lambda t, q: q["last_date"] == "2025-03-04"),
    "lone_carriage_return_in_quotes": ({"tx.csv": _csv('"B\rx",1,2024-01-02,10\n')}, "tx.csv", [],
                                       lambda t, q: "B\rx" in t.index),
    "ids_padded_with_any_whitespace": (
        {"tx.csv": _csv("A\t,1,2024-01-01,10\n", "A,2,2024-01-02,10\n",
                        "\u00a0A\u3000,3,2024-01-03,10\n")}, "tx.csv", [],
        lambda t, q: t.loc["A", "frequency"] == 3 and len(t) == 2),
    "control_character_inside_an_id": ({"tx.csv": _csv("A\x01B,1,2024-01-01,10\n")}, "tx.csv", [],
                                       lambda t, q: "A\x01B" in t.index),
    "order_id_shared_by_two_customers_below_threshold": (
        {"tx.csv": _csv("A,1,2024-01-01,10\n", "B,1,2024-01-01,20\n")}, "tx.csv",
        ["--max-shared-order-fraction", "0.5"],
        lambda t, q: ((t.loc["A", "frequency"], t.loc["B", "monetary"]) == (1, 20.0)
                      and q["shared_order_ids"] == 1
                      and any("1 of 2 order ids (50.00%) are used by more than one customer, "
                              "such as 'order_id' = '1' (2 customers: 'A', 'B')" in w
                              for w in q["warnings"]))),
    "date_before_floor_dropped_on_request": (
        {"tx.csv": _csv("A,1,1850-03-15,10\n", "A,2,2024-01-01,10\n")}, "tx.csv",
        ["--on-bad-rows", "drop"],
        lambda t, q: q["dropped"]["before_min_date"] == 1 and t.loc["A", "frequency"] == 1),
}


def _write(tmp_path: Path, files: dict[str, bytes | None]) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:  # a Parquet file holding one valid row
            pd.DataFrame({"customer_id": ["A"], "order_date": ["2024-01-01"],
                          "amount": [1.0]}).to_parquet(path)
        else:
            path.write_bytes(content)


def _segment(tmp_path: Path, source: str, options: list[str],
             output: str = "segments.csv") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RFM, "-q", "segment", tmp_path / source, "-o", tmp_path / "out" / output,
         "--no-tracking", *options], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_input_is_refused_with_one_line(tmp_path, name):
    files, source, options, code, message = REFUSED[name]
    _write(tmp_path, files)
    result = _segment(tmp_path, source, options)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_input_means_what_the_readme_says(tmp_path, name):
    files, source, options, check = ACCEPTED[name]
    _write(tmp_path, files)
    # Parquet keeps ids exactly as loaded (control characters included).
    result = _segment(tmp_path, source, options, output="segments.parquet")
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "out" / "segments.parquet").set_index("customer_id")
    quality = json.loads((tmp_path / "out" / "segments.parquet.quality.json").read_text())
    assert check(table, quality), (table, quality)
