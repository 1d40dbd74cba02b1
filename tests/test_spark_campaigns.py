"""Campaign steps on Spark (issue 13): holdout draws, assignment, counts, migration, suggestions.

Every result is compared with the pandas/DuckDB path's own functions (the other engine) or,
for the hash, with hashlib directly. Spark runs in local mode (the session fixture ``spark``);
each test batches its checks into few Spark actions.
"""

import dataclasses
import datetime as dt
import hashlib
import random
import re
import struct

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns.assign import (
    COUNT_COLUMNS,
    assign_campaigns,
    campaign_counts,
    customer_flags,
)
from rfm_engine.campaigns.assign import holdout_draw as pandas_draw
from rfm_engine.campaigns.consent import load_consent
from rfm_engine.campaigns.plan import DEFAULT_PLAN
from rfm_engine.campaigns.suggestions import suggest_items
from rfm_engine.campaigns.suppression import SuppressionList, load_suppression
from rfm_engine.core.features import customer_features
from rfm_engine.core.pipeline import segment_customers
from rfm_engine.datasets.sample_data import write_consent, write_sample
from rfm_engine.errors import InputError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.migration import migrate, trigger_lists

pytest.importorskip("pyspark")
from pyspark.sql import functions as F  # noqa: E402

from rfm_engine.engines.spark.session import pandas_conversion  # noqa: E402

# Text Spark can hold (no lone surrogates), non-ASCII included.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def _hashlib_draw(cid: str, campaign: str, day: dt.date) -> float:
    """The documented draw, computed here from hashlib alone (not through the engine)."""
    digest = hashlib.sha256(f"{cid}\x1f{campaign}\x1f{day.isoformat()}".encode()).digest()
    return (struct.unpack(">Q", digest[:8])[0] >> 11) * 2.0**-53


def _spark_draws(spark, ids, campaigns, day):
    from rfm_engine.engines.spark.campaigns import holdout_draw

    frame = spark.createDataFrame(list(zip(range(len(ids)), ids, campaigns, strict=True)),
                                  "pos long, customer_id string, campaign string")
    rows = frame.select("pos", holdout_draw("customer_id", frame["campaign"], day)
                        .alias("draw")).collect()
    return [r.draw for r in sorted(rows)]


@settings(max_examples=5, deadline=None)
@given(ids=st.lists(_TEXT, min_size=1, max_size=60),
       campaign=st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True),
       day=st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)))
def test_holdout_draw_is_bit_identical_to_hashlib(spark, ids, campaign, day):
    got = _spark_draws(spark, ids, [campaign] * len(ids), day)
    expected = [_hashlib_draw(i, campaign, day) for i in ids]
    assert [x.hex() for x in got] == [x.hex() for x in expected]  # bits, not closeness
    assert [x.hex() for x in got] == [x.hex() for x in pandas_draw(ids, campaign, day)]


def test_holdout_draw_many_ids_and_a_literal_campaign(spark):
    from rfm_engine.engines.spark.campaigns import holdout_draw

    rng = random.Random(7)
    alphabet = "abcXYZ0189 -_.@éüßøЖжあ字😀\u0301\x1f"
    ids = sorted({"".join(rng.choices(alphabet, k=rng.randint(1, 16))) for _ in range(20_000)})
    day = dt.date(2025, 10, 31)
    frame = spark.createDataFrame([(i,) for i in ids], "customer_id string")
    draws = dict(frame.select("customer_id", holdout_draw(frame["customer_id"],
                                                          "retention_loyal", day)).collect())
    expected = pandas_draw(ids, "retention_loyal", day)
    assert [draws[i].hex() for i in ids] == [x.hex() for x in expected]
    assert 0.0 <= min(draws.values()) and max(draws.values()) < 1.0


# --- assignment -------------------------------------------------------------------------------

SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
                  "email": "Email", "first_name": "First Name", "country": "Country",
                  "channel": "Channel", "product_id": "StockCode", "category": "Category"}
AS_OF = dt.date(2025, 10, 31)
OUT = ["campaign", "campaign_type", "channel", "group", "exclusion_reason"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """The sample's customers after segments (the DuckDB path), made dirty on purpose."""
    folder = tmp_path_factory.mktemp("campaigns")
    files = write_sample(folder, n_customers=700, seed=11)
    tx = load_transactions(files["transactions"], columns=SAMPLE_COLUMNS, as_of=AS_OF)
    lines = pd.read_csv(files["transactions"], dtype=str, keep_default_na=False)
    consent = write_consent(folder, lines, seed=11)
    seg = segment_customers(customer_features(tx))
    table = seg.customers.copy()
    rng = np.random.default_rng(11)
    n = len(table)
    pick = rng.permutation(n)
    email = table["email"].to_numpy(dtype=object, copy=True)
    # shared addresses (case and spaces differ), one with the same value as its twin
    for a, b in zip(pick[:40], pick[40:80], strict=True):
        email[b] = f"  {str(email[a]).upper()} " if email[a] == email[a] else email[b]
    table.loc[table.index[pick[80]], "monetary"] = table["monetary"].iloc[pick[0]]
    email[pick[80]] = email[pick[0]]
    email[pick[81:90]] = None                       # no email
    email[pick[90:100]] = "someone@localhost"       # invalid
    email[pick[100:110]] = [f"zoë{i}@example.com" for i in range(10)]  # not for Mailchimp
    table["email"] = pd.array(email, dtype="str")
    first = table["first_name"].to_numpy(dtype=object, copy=True)
    first[pick[110:116]] = "=HYPERLINK(1)"          # a formula
    first[pick[116:120]] = "x" * 300                # longer than Mailchimp keeps
    table["first_name"] = pd.array(first, dtype="str")
    suppression = load_suppression([files["suppression"]])
    suppression = SuppressionList(
        emails=[*suppression.emails, str(email[pick[120]]).upper()],
        customer_ids=[*suppression.customer_ids, *table["customer_id"].iloc[pick[121:126]]])
    consents = load_consent(consent, required=True)
    plan = list(DEFAULT_PLAN)
    plan[0] = dataclasses.replace(plan[0], max_size=5, holdout_fraction=0.3)
    plan[2] = dataclasses.replace(plan[2], max_size=12)
    plan[4] = dataclasses.replace(plan[4], channel="push", max_size=7)
    plan = tuple(plan)
    # earlier contacts: the campaign each customer joins, 3 to 40 days back (and on as_of)
    first_pass = assign_campaigns(table, plan, as_of=AS_OF)
    joined = first_pass["campaign"].notna().to_numpy()
    ids = table["customer_id"].to_numpy()[joined]
    names = first_pass["campaign"].astype(object).to_numpy()[joined]
    back = rng.choice([0, 3, 10, 20, 40], size=len(ids))
    history = pd.DataFrame({"customer_id": ids, "campaign": names,
                            "as_of": [(AS_OF - dt.timedelta(days=int(d))).isoformat()
                                      for d in back]})
    return {"table": table, "plan": plan, "suppression": suppression, "consents": consents,
            "history": history.iloc[::2].reset_index(drop=True), "seg": seg, "files": files}


def _pandas_path(run, layout):
    """The weekly run's campaigns step on pandas (runs/weekly.py)."""
    table = run["table"].copy()
    flags = customer_flags(table, as_of=AS_OF, layout=layout, suppression=run["suppression"],
                           consents=run["consents"])
    for column in ("email", "email_valid", "email_consent"):
        table[column] = flags[column]
    assignment = assign_campaigns(
        table, run["plan"], as_of=AS_OF, suppressed=flags["suppressed"].to_numpy(),
        contact_history=run["history"], quarantined=flags["quarantined"].to_numpy(),
        no_consent=~flags["email_consent"].to_numpy(dtype=bool))
    return pd.concat([table, assignment], axis=1)


def _plain(values):
    """Values as Python objects, None for every kind of missing (NaN, NA, None)."""
    return [None if pd.isna(v) else v for v in values.astype(object)]


def _to_spark(spark, table):
    frame = table[["customer_id", "segment", "email", "first_name", "monetary",
                   "last_purchase"]].astype({"segment": "str"})
    with pandas_conversion():
        return spark.createDataFrame(frame).withColumn("last_purchase",
                                                       F.to_date("last_purchase"))


def test_assignment_equals_the_pandas_path(spark, sample_run):
    from rfm_engine.engines.spark import campaigns as engine

    layout = "mailchimp"
    expected = _pandas_path(sample_run, layout)
    assigned = engine.assign_campaigns(
        _to_spark(spark, sample_run["table"]), sample_run["plan"], as_of=AS_OF, layout=layout,
        suppression=sample_run["suppression"], consents=sample_run["consents"],
        contact_history=sample_run["history"]).cache()
    with pandas_conversion():
        got = assigned.toPandas().set_index("customer_id").loc[expected["customer_id"]]
    counts = engine.campaign_counts(assigned, sample_run["plan"])
    assigned.unpersist()

    for column in [*OUT, "email"]:
        assert _plain(got[column]) == _plain(expected[column]), column
    for column in ("email_valid", "email_consent"):
        assert got[column].tolist() == expected[column].tolist(), column
    draws = expected["holdout_draw"].to_numpy()
    assert [None if v != v else v.hex() for v in draws] == [
        None if v is None or v != v else v.hex() for v in got["holdout_draw"]]
    pd.testing.assert_frame_equal(counts, campaign_counts(expected, sample_run["plan"]))
    # every rule had work to do in this table
    totals = counts.sum()
    for column in [c for c in COUNT_COLUMNS if c != "candidates"]:
        assert totals[column] > 0, column


# --- migration --------------------------------------------------------------------------------

def test_migration_over_two_weeks_equals_the_pandas_path(spark, sample_run, tmp_path):
    from rfm_engine.engines.spark.migration import migrate as spark_migrate

    seg = sample_run["seg"]
    rules = seg.rules
    weeks = [AS_OF - dt.timedelta(days=14), AS_OF - dt.timedelta(days=7)]
    earlier = None
    for day in weeks:  # two earlier runs: segment_since takes both values
        week = segment_customers(customer_features(
            load_transactions(sample_run["files"]["transactions"], columns=SAMPLE_COLUMNS,
                              as_of=day)), scorer=seg.scorer)
        earlier = migrate(week.customers, earlier, day, order=rules.segments).customers
    previous = earlier[["customer_id", "segment", "segment_since"]]
    # customers of the previous run absent now: "(gone)"
    previous = pd.concat([previous, pd.DataFrame({
        "customer_id": ["zz-gone-1", "zz-gone-2"], "segment": ["champions", "at_risk"],
        "segment_since": [weeks[0], weeks[1]]})], ignore_index=True)
    single = tmp_path / "customers.parquet"
    previous.to_parquet(single)                           # a DuckDB run's file
    with pandas_conversion():
        parts = tmp_path / "spark" / "customers.parquet"  # a Spark run's folder of parts
        spark.createDataFrame(previous).repartition(3).write.parquet(str(parts))
    current = seg.customers
    expected = migrate(current, previous, AS_OF, order=rules.segments,
                       previous_as_of=weeks[1])
    frame = current[["customer_id", "segment", "recency_days", "frequency", "monetary"]]
    with pandas_conversion():
        now = spark.createDataFrame(frame.astype({"segment": "str"}))
    for source in (single, parts):
        got = spark_migrate(now, source, AS_OF, order=rules.segments,
                            previous_as_of=weeks[1])
        with pandas_conversion():
            table = got.customers.toPandas().set_index("customer_id").loc[
                expected.customers["customer_id"]]
        assert _plain(table["previous_segment"]) == _plain(
            expected.customers["previous_segment"])
        assert _plain(table["segment_since"]) == _plain(expected.customers["segment_since"])
        pd.testing.assert_frame_equal(got.matrix, expected.matrix)
        assert (got.moved_share, got.n_new, got.n_gone) == (
            expected.moved_share, expected.n_new, expected.n_gone)
        assert got.n_gone == 2 and 0 < got.moved_share < 1
        assert set(table["segment_since"]) == {weeks[0], weeks[1], AS_OF}
        triggers = trigger_lists(got)
        for name, rows in trigger_lists(expected).items():
            pd.testing.assert_frame_equal(triggers[name], rows, check_dtype=False)
            assert len(rows)
    first = spark_migrate(now, None, AS_OF, order=rules.segments)
    pd.testing.assert_frame_equal(first.matrix, migrate(current, None, AS_OF,
                                                        order=rules.segments).matrix)


# --- suggestions ------------------------------------------------------------------------------

def test_suggestions_equal_the_duckdb_path(spark, sample_run, tmp_path):
    from rfm_engine.engines.spark.loading import load_transactions as spark_load
    from rfm_engine.engines.spark.suggestions import suggest_items as spark_suggest

    source = tmp_path / "transactions.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{sample_run['files']['transactions']}')) "
               f"TO '{source}' (FORMAT parquet)")
    duck = load_transactions(source, columns=SAMPLE_COLUMNS, as_of=AS_OF)
    spk = spark_load(source, spark=spark, columns=SAMPLE_COLUMNS, as_of=AS_OF)
    table = sample_run["table"][["customer_id", "segment"]].astype({"segment": "str"})
    rng = np.random.default_rng(3)
    wanted = rng.random(len(table)) < 0.4
    targets = table.loc[wanted, "customer_id"]
    expected = suggest_items(duck, table, targets=targets)
    cross = suggest_items(duck, table, targets=targets, k=1)  # k changes the lists
    with pandas_conversion():
        frame = spark.createDataFrame(table.assign(wanted=wanted))
    got = spark_suggest(spk, frame, targets=F.col("wanted"))
    got1 = spark_suggest(spk, frame, targets=F.col("wanted"), k=1).select(
        "customer_id", F.col("cross_sell").alias("cross_sell_1"))
    with pandas_conversion():
        both = got.join(got1, "customer_id").toPandas().set_index("customer_id").loc[
            expected.index]
    assert _plain(both["cross_sell"]) == _plain(expected["cross_sell"])
    assert _plain(both["upsell"]) == _plain(expected["upsell"])
    assert _plain(both["cross_sell_1"]) == _plain(cross["cross_sell"])
    assert expected["upsell"].notna().sum() > 10
    assert expected["cross_sell"].str.contains("|", regex=False).sum() > 10


def test_a_bad_previous_table_is_refused_in_one_line(spark):
    from rfm_engine.engines.spark.migration import migrate as spark_migrate

    now = spark.createDataFrame([("a", "x"), ("b", "y")], "customer_id string, segment string")
    bad = {
        "customer_id must be unique, got 1 duplicated id(s), e.g. ['a']":
            [("a", "x", "2025-01-01"), ("a", "y", "2025-01-01")],
        "segment is missing for 1 customer(s), e.g. customer_id 'b'":
            [("a", "x", "2025-01-01"), ("b", None, "2025-01-01")],
        "customer_id 'b', column 'segment_since': got 'last week', expected a date":
            [("a", "x", "2025-01-01"), ("b", "y", "last week")],
    }
    for message, rows in bad.items():
        previous = spark.createDataFrame(
            rows, "customer_id string, segment string, segment_since string")
        with pytest.raises(InputError, match=re.escape(message)):
            spark_migrate(now, previous, AS_OF)
