"""Tests of the sample data generator (rfm_engine.datasets.sample_data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rfm_engine.datasets.sample_data import (
    COLUMNS,
    DIRT_RATES,
    SUPPRESSION_COLUMNS,
    generate_suppression,
    generate_transactions,
    write_sample,
)
from rfm_engine.errors import ConfigError, MissingColumnsError

N = 5000
LOWER_EMAIL = r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+"


@pytest.fixture(scope="module")
def dirty() -> pd.DataFrame:
    return generate_transactions(N, seed=0)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_transactions(N, seed=0, dirty=False)


def _norm_id(ids: pd.Series) -> pd.Series:
    return ids.str.strip().str.replace(r"\.0$", "", regex=True)


def _revenue(df: pd.DataFrame) -> pd.Series:
    return df["Quantity"] * df["Price"]


# --- shape --------------------------------------------------------------------------------------


def test_columns_and_types(dirty: pd.DataFrame) -> None:
    assert list(dirty.columns) == list(COLUMNS)
    assert dirty["Quantity"].dtype == np.int64
    assert dirty["Price"].dtype == np.float64
    assert (dirty["Price"] > 0).all()
    assert dirty["InvoiceDate"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:00").all()
    assert dirty["Invoice"].str.fullmatch(r"C?\d{6,}").all()
    assert set(dirty["Channel"]) == {"web", "app", "store"}
    # about 9-10 lines per customer over two years
    assert 7 * N < len(dirty) < 12 * N


def test_dates_inside_the_period() -> None:
    df = generate_transactions(300, start="2023-03-01", end="2023-06-30", seed=4)
    dates = pd.to_datetime(df["InvoiceDate"])
    assert dates.min() >= pd.Timestamp("2023-03-01")
    assert dates.max() <= pd.Timestamp("2023-06-30 23:59")


def test_one_timestamp_customer_and_channel_per_invoice(dirty: pd.DataFrame) -> None:
    per_invoice = dirty.assign(cid=_norm_id(dirty["Customer ID"])).groupby("Invoice")
    assert (per_invoice["InvoiceDate"].nunique() == 1).all()
    assert (per_invoice["cid"].nunique(dropna=False) == 1).all()
    assert (per_invoice["Channel"].nunique() == 1).all()


def test_invoice_numbers_follow_time(dirty: pd.DataFrame) -> None:
    number = dirty["Invoice"].str.removeprefix("C").astype(int)
    assert number.is_monotonic_increasing
    assert pd.to_datetime(dirty["InvoiceDate"]).is_monotonic_increasing
    assert number.iloc[0] == 489434


def test_catalogue_is_the_same_for_every_seed(clean: pd.DataFrame) -> None:
    other = generate_transactions(2000, seed=9, dirty=False)
    both = pd.concat([clean, other])
    assert clean["Category"].nunique() == 8
    assert 150 <= both["StockCode"].nunique() <= 200
    assert (both.groupby("StockCode")["Description"].nunique() == 1).all()
    assert (both.groupby("StockCode")["Category"].nunique() == 1).all()


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_frame(dirty: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_transactions(N, seed=0), dirty)
    assert not generate_transactions(N, seed=1).equals(dirty)


def test_write_sample_is_byte_identical(tmp_path) -> None:
    first = write_sample(tmp_path / "a", n_customers=1500, seed=7)
    second = write_sample(tmp_path / "b", n_customers=1500, seed=7, chunk_rows=777)
    assert sorted(first) == ["suppression", "transactions"]
    for key in first:
        assert first[key].read_bytes() == second[key].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "suppression.csv",
        "transactions.csv",
    ]  # no temporary file left behind
    other = write_sample(tmp_path / "c", n_customers=1500, seed=8)
    assert other["transactions"].read_bytes() != first["transactions"].read_bytes()


def test_write_sample_replaces_existing_files(tmp_path) -> None:
    (tmp_path / "transactions.csv").write_text("old")
    paths = write_sample(tmp_path, n_customers=50, seed=1)
    assert paths["transactions"].read_text().startswith("Invoice,StockCode,")


def test_csv_reads_back_as_the_frame(tmp_path) -> None:
    paths = write_sample(tmp_path, n_customers=1500, seed=7)
    frame = generate_transactions(1500, seed=7)
    text = ["Invoice", "StockCode", "Customer ID"]
    read = pd.read_csv(paths["transactions"], dtype=dict.fromkeys(text, "str"))
    assert list(read.columns) == list(COLUMNS)
    assert read["Customer ID"].str.startswith(" ").any()  # spaces survive the round trip
    pd.testing.assert_frame_equal(read, frame, check_dtype=False)
    header = paths["transactions"].read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    expected = generate_suppression(frame, seed=7)
    suppression = pd.read_csv(paths["suppression"], dtype="str")
    assert list(suppression.columns) == list(SUPPRESSION_COLUMNS)
    pd.testing.assert_frame_equal(suppression, expected, check_dtype=False)


# --- realism ------------------------------------------------------------------------------------


def test_one_time_buyers_and_loyal_core(clean: pd.DataFrame) -> None:
    orders = clean.groupby("Customer ID")["Invoice"].nunique()
    assert 0.40 <= (orders == 1).mean() <= 0.55
    assert (orders >= 10).mean() > 0.03  # a loyal core
    last = pd.to_datetime(clean["InvoiceDate"]).groupby(clean["Customer ID"]).max()
    lapsed = orders[last < pd.Timestamp("2025-01-01")]
    assert (lapsed > 1).sum() > 100  # repeat buyers who stopped a year before the end


def test_spend_is_heavy_tailed(clean: pd.DataFrame) -> None:
    spend = _revenue(clean).groupby(clean["Customer ID"]).sum().sort_values(ascending=False)
    assert spend.head(len(spend) // 5).sum() / spend.sum() > 0.55
    assert spend.max() > 20 * spend.median()


def test_november_december_peak(clean: pd.DataFrame) -> None:
    dates = pd.to_datetime(clean["InvoiceDate"])
    daily = _revenue(clean).groupby(dates.dt.normalize()).sum()
    daily = daily.reindex(pd.date_range("2024-01-01", "2025-12-31"), fill_value=0.0)
    for year in (2024, 2025):
        in_year = daily[daily.index.year == year]
        peak = in_year[in_year.index.month >= 11]
        assert peak.mean() > 1.3 * in_year.mean()


def test_saturday_is_the_busiest_day(clean: pd.DataFrame) -> None:
    orders = clean.drop_duplicates("Invoice")
    weekday = pd.to_datetime(orders["InvoiceDate"]).dt.day_of_week.value_counts()
    assert weekday.idxmax() == 5


def test_customers_prefer_categories(clean: pd.DataFrame) -> None:
    def top_share(category: pd.Series) -> float:
        counts = category.groupby(clean["Customer ID"]).value_counts()
        per_customer = counts.groupby(level=0)
        frequent = per_customer.sum() >= 10
        return float((per_customer.max() / per_customer.sum())[frequent].mean())

    shuffled = pd.Series(
        np.random.default_rng(0).permutation(clean["Category"].to_numpy()), index=clean.index
    )
    assert top_share(clean["Category"]) > top_share(shuffled) + 0.1


def test_countries_and_channels(clean: pd.DataFrame) -> None:
    customers = clean.drop_duplicates("Customer ID")
    assert 0.75 < (customers["Country"] == "United Kingdom").mean() < 0.9
    assert customers["Country"].nunique() >= 10
    share = clean.drop_duplicates("Invoice")["Channel"].value_counts(normalize=True)
    assert share.index[0] == "web"
    assert share["store"] > 0.1


def test_store_orders_in_opening_hours(clean: pd.DataFrame) -> None:
    store = clean[clean["Channel"] == "store"]
    hours = pd.to_datetime(store["InvoiceDate"]).dt.hour
    assert hours.between(9, 19).all()


# --- dirt ---------------------------------------------------------------------------------------


def test_returns_are_negative_c_invoices(dirty: pd.DataFrame) -> None:
    is_return = dirty["Invoice"].str.startswith("C")
    assert ((dirty["Quantity"] < 0) == is_return).all()
    assert 0.015 <= is_return.mean() <= 0.025


def test_returns_reference_an_earlier_purchase(dirty: pd.DataFrame) -> None:
    df = dirty.drop_duplicates().assign(
        cid=_norm_id(dirty["Customer ID"]), when=pd.to_datetime(dirty["InvoiceDate"])
    )
    df = df[df["cid"].notna()]
    is_return = df["Invoice"].str.startswith("C")
    returns, bought = df[is_return], df[~is_return]
    pairs = returns.reset_index().merge(
        bought, on=["cid", "StockCode", "Price"], suffixes=("", "_b")
    )
    pairs = pairs[(pairs["when_b"] < pairs["when"]) & (pairs["Quantity_b"] >= -pairs["Quantity"])]
    matched = returns.index.isin(pairs["index"])
    # The original is missing only when it was a guest invoice (3% of invoices).
    assert matched.mean() > 0.93


def test_missing_customer_id(dirty: pd.DataFrame) -> None:
    missing = dirty["Customer ID"].isna()
    assert 0.02 <= missing.mean() <= 0.04
    # guest checkouts: whole invoices, without contact fields
    assert dirty.groupby("Invoice")["Customer ID"].apply(lambda s: s.isna().nunique() == 1).all()
    assert dirty.loc[missing, ["Email", "First Name"]].isna().all().all()


def test_duplicate_lines(dirty: pd.DataFrame) -> None:
    share = dirty.duplicated().mean()
    assert 0.003 <= share <= 0.007


def test_badly_written_customer_ids(dirty: pd.DataFrame) -> None:
    ids = dirty["Customer ID"].dropna()
    floats = ids.str.fullmatch(r"\d+\.0").mean()
    spaced = (ids != ids.str.strip()).mean()
    assert 0.01 <= floats <= 0.03
    assert 0.0005 <= spaced <= 0.01
    assert _norm_id(ids).str.fullmatch(r"\d{5,}").all()


def test_emails_mostly_valid(dirty: pd.DataFrame) -> None:
    customers = dirty.assign(cid=_norm_id(dirty["Customer ID"])).dropna(subset=["cid"])
    emails = customers.drop_duplicates("cid")["Email"]
    assert len(emails) > 0.97 * N
    valid = emails.str.fullmatch(LOWER_EMAIL).fillna(False)
    assert 0.8 <= valid.mean() <= 0.95
    assert 0.02 <= emails.isna().mean() <= 0.08
    present = emails.dropna()
    assert (present != present.str.strip()).any()  # spaces
    assert present.str.contains("[A-Z]").any()  # upper case
    fixed = present.str.strip().str.lower()
    invalid = ~fixed.str.fullmatch(LOWER_EMAIL)
    assert 0.002 <= invalid.mean() <= 0.03
    assert fixed.str.contains(r"example\.(?:com|org|net)").mean() > 0.97  # reserved domains


def test_unique_email_per_customer(clean: pd.DataFrame) -> None:
    pairs = clean[["Customer ID", "Email"]].drop_duplicates()
    assert pairs["Customer ID"].is_unique
    assert pairs["Email"].is_unique


def test_first_names_some_missing(dirty: pd.DataFrame) -> None:
    customers = dirty.assign(cid=_norm_id(dirty["Customer ID"])).dropna(subset=["cid"])
    names = customers.drop_duplicates("cid")["First Name"]
    assert 0.02 <= names.isna().mean() <= 0.08


def test_clean_has_no_dirt(clean: pd.DataFrame) -> None:
    assert not clean["Invoice"].str.startswith("C").any()
    assert (clean["Quantity"] > 0).all()
    assert clean.notna().all().all()
    assert not clean.duplicated().any()
    assert clean["Customer ID"].str.fullmatch(r"\d{5,}").all()
    assert clean["Email"].str.fullmatch(LOWER_EMAIL).all()
    assert clean["Customer ID"].nunique() == N


def test_dirt_rates_are_documented() -> None:
    import rfm_engine.datasets.sample_data as module

    for key in DIRT_RATES:
        assert f"``{key}``" in module.__doc__


# --- suppression --------------------------------------------------------------------------------


def test_suppression_mix(dirty: pd.DataFrame) -> None:
    before = dirty.copy()
    sup = generate_suppression(dirty, fraction=0.05, seed=3)
    pd.testing.assert_frame_equal(dirty, before)  # input untouched
    assert list(sup.columns) == list(SUPPRESSION_COLUMNS)
    n_customers = _norm_id(dirty["Customer ID"]).nunique()
    assert len(sup) == pytest.approx(0.05 * n_customers * 1.1, rel=0.02)
    assert set(sup["reason"]) == {"unsubscribed", "bounced", "complained", "erased"}
    email, cid = sup["email"].notna(), sup["customer_id"].notna()
    assert (email | cid).all()
    assert (email & cid).mean() > 0.2
    assert (email & ~cid).mean() > 0.2
    assert (~email & cid).mean() > 0.15
    only_email = sup.loc[email & ~cid, "email"]
    assert (only_email != only_email.str.strip().str.lower()).any()  # odd casing or spaces
    known = set(_norm_id(dirty["Customer ID"]).dropna())
    assert set(sup["customer_id"].dropna()) <= known


def test_suppression_is_deterministic_and_order_free(dirty: pd.DataFrame) -> None:
    sup = generate_suppression(dirty, seed=5)
    pd.testing.assert_frame_equal(generate_suppression(dirty, seed=5), sup)
    shuffled = dirty.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(generate_suppression(shuffled, seed=5), sup)
    assert len(generate_suppression(dirty, fraction=0.0)) == 0


# --- parameter errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_customers": 0}, r"'n_customers' parameter .* int >= 1\. Got 0"),
        ({"n_customers": 2.5}, r"'n_customers' .* Got 2\.5"),
        ({"seed": -1}, r"'seed' parameter .* int >= 0\. Got -1"),
        ({"start": "not a date"}, r"'start' parameter .* date .* Got 'not a date'"),
        ({"start": "2025-01-02", "end": "2025-01-01"}, r"'end' .* not be before 'start'"),
    ],
)
def test_generate_transactions_parameter_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        generate_transactions(**{"n_customers": 10, **kwargs})


def test_generate_suppression_errors(dirty: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'fraction' parameter .* \[0, 1\]\. Got 1\.5"):
        generate_suppression(dirty, fraction=1.5)
    with pytest.raises(MissingColumnsError, match=r"missing column\(s\) 'Email'"):
        generate_suppression(dirty.drop(columns="Email"))


def test_write_sample_chunk_rows_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"'chunk_rows' parameter .* Got 0"):
        write_sample(tmp_path, n_customers=10, chunk_rows=0)
