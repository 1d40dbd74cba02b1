"""Campaign steps on Spark (issue 13): holdout draws, assignment, counts, migration, suggestions.

Every result is compared with the pandas/DuckDB path's own functions (the other engine) or,
for the hash, with hashlib directly. Spark runs in local mode (the session fixture ``spark``);
each test batches its checks into few Spark actions.
"""

import datetime as dt
import hashlib
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns.assign import holdout_draw as pandas_draw

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


@settings(max_examples=8, deadline=None)
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
