"""The cleaning rules against a plain pandas reading of their documentation.

The loader counts rules from a small per-date table and removes repeated lines with a
hash set instead of looking at every row; these properties check, on random dirty
inputs, that it keeps exactly the rows and reports exactly the counts the rules describe.
"""

import datetime as dt
import tempfile
import unicodedata
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.io.loading import load_transactions

_IDS = ["a", "a", "b", "7", " a", "b ", "7.0", "", None, "e\u0301", "a\t", "\u00a0b", "\t"]
_DATES = [f"2024-01-{day:02d}" for day in range(1, 11)]
_AMOUNTS = ["10", "-4", "0", "2.5", "x"]
_ORDERS = ["o1", "o2", "o3", " o1", "", "o2\t", "o3\u00a0"]


def _norm_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value.strip())
    text = text[: -2] if text.endswith(".0") and text[:-2].isdigit() else text
    return text or None


def _expected(raw: pd.DataFrame, with_order_id: bool, as_of: dt.date | None,
              window_days: int | None) -> tuple[dict[str, int], pd.DataFrame]:
    """The documented rules, applied in their order, one row at a time."""
    frame = raw.assign(customer=raw["customer_id"].map(_norm_id),
                       value=pd.to_numeric(raw["amount"], errors="coerce"),
                       date=pd.to_datetime(raw["order_date"]).dt.date)
    bad = frame["value"].isna()
    missing = ~bad & frame["customer"].isna()
    valid = ~bad & ~missing
    repeated = (valid & raw.duplicated(keep="first")) if with_order_id else valid & False
    rest = frame[valid & ~repeated]
    as_of = as_of or (rest["date"].max() if len(rest) else None)
    start = as_of - dt.timedelta(days=window_days - 1) if window_days and as_of else None
    after = rest["date"] > as_of
    before = ~after & (rest["date"] < start) if start else after & False
    counts = {"bad_value": int(bad.sum()), "before_min_date": 0,
              "missing_customer_id": int(missing.sum()),
              "duplicate_line": int(repeated.sum()), "after_as_of": int(after.sum()),
              "before_window": int(before.sum())}
    return counts, rest[~after & ~before]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=st.lists(st.tuples(st.sampled_from(_IDS), st.sampled_from(_ORDERS),
                               st.sampled_from(_DATES), st.sampled_from(_AMOUNTS)),
                     min_size=1, max_size=40),
       with_order_id=st.booleans(),
       as_of=st.sampled_from([None, dt.date(2024, 1, 6)]),
       window_days=st.sampled_from([None, 3]),
       typed=st.booleans(),
       as_parquet=st.booleans())
def test_counts_and_kept_rows_follow_the_documented_rules(rows, with_order_id, as_of,
                                                          window_days, typed, as_parquet):
    raw = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "amount"],
                       dtype=object)
    if typed and "x" not in raw["amount"].tolist():  # numbers and dates as typed columns
        raw = raw.astype({"amount": float, "order_date": "datetime64[us]"})
    if not with_order_id:
        raw = raw.drop(columns="order_id")
    counts, kept = _expected(raw, with_order_id, as_of, window_days)
    if kept.empty:
        return  # an empty result is an error, tested in test_loading.py
    with tempfile.TemporaryDirectory() as folder:
        # A DataFrame is copied into a table; a Parquet file is read through a view,
        # redefined without the tests the counting pass found idle.
        source = Path(folder) / "tx.parquet" if as_parquet else raw
        if as_parquet:
            raw.to_parquet(source)
        tx = load_transactions(source, on_bad_rows="drop", max_drop_fraction=1.0,
                               as_of=as_of, window_days=window_days)
        _check(tx, raw, counts, kept, with_order_id)


def _check(tx, raw: pd.DataFrame, counts: dict[str, int], kept: pd.DataFrame,
           with_order_id: bool) -> None:
    report = tx.report
    assert report.dropped == counts
    assert report.rows_read == len(raw)
    assert report.rows_kept == len(kept)
    assert report.return_lines == int((kept["value"] < 0).sum())
    assert (report.first_date, report.last_date) == (kept["date"].min().isoformat(),
                                                     kept["date"].max().isoformat())
    got = tx.to_frame()
    expected_rows = sorted(zip(kept["customer"], kept["date"], kept["value"], strict=True))
    got_rows = sorted(zip(got["customer_id"], pd.to_datetime(got["order_date"]).dt.date,
                          got["amount"], strict=True))
    assert got_rows == expected_rows
    if with_order_id:  # every kept line keeps its order id, trimmed, empty as missing
        expected_keys = [key.strip() or None for key in kept["order_id"]]
        keys = got["order_key"].astype(object)
        assert sorted(map(str, keys.where(keys.notna(), None))) == sorted(map(str, expected_keys))
