"""Issue 13's proof on real and dirty data: the weekly run on Spark writes what DuckDB writes.

CDNOW (Fader, Hardie & Lee's sample, as Parquet of text with dates as ``yyyymmdd``, an
address made for each customer so that the email campaigns target and hold out) and a
dirty CSV holding every cleaning rule at least once (bad values, missing ids, duplicate
lines, NFD ids, shared order ids, lines after the as-of date and before the window), each
run by both engines: every list, report and count file byte for byte, and the customer
table (features, scores, segments, campaign, holdout) by value. The manifests differ only
where they should: the engine, and Spark's customer table as part files.
"""

import json
from pathlib import Path

import pandas as pd

from rfm_engine.config import load_config
from rfm_engine.runs import weekly
from tests.test_spark_engine import _dirty
from tests.test_spark_inputs import _cdnow_parquet

#: What the two runs write alike, besides the lists.
SAME_BYTES = ("segments.csv", "campaigns.csv", "quality.json", "scorer.json",
              "migration/transition_matrix.csv", "kpis.csv", "kpis.json", "kpis_cohorts.csv",
              "kpis_by_segment.csv", "summary.html")


def _runs(folder: Path, data: Path, settings: list[str], as_of: str) -> dict[str, Path]:
    runs = {}
    for engine in ("duckdb", "spark"):
        config = folder / f"{engine}.toml"
        config.write_text("\n".join(["[input]", f'engine = "{engine}"',
                                     f"path = {json.dumps(str(data))}", *settings]) + "\n")
        loaded = load_config(config).with_overrides({"features.as_of": as_of})
        runs[engine] = weekly.run_weekly(loaded, output_dir=folder / engine,
                                         no_suppression=True).run_dir
    return runs


def _same_run(runs: dict[str, Path]) -> pd.DataFrame:
    duck, spark = runs["duckdb"], runs["spark"]
    lists = sorted(p.relative_to(duck).as_posix() for p in (duck / "campaigns").glob("*.csv"))
    assert lists
    for name in (*lists, *SAME_BYTES):
        assert (spark / name).read_bytes() == (duck / name).read_bytes(), name
    expected = pd.read_parquet(duck / "customers.parquet")
    got = pd.read_parquet(spark / "customers.parquet")
    dates = [c for c in expected if str(expected[c].dtype).startswith("date32")]
    pd.testing.assert_frame_equal(got.astype({c: "object" for c in dates}),
                                  expected.astype({c: "object" for c in dates}))
    manifests = [json.loads((run / "manifest.json").read_text()) for run in (duck, spark)]
    assert manifests[1]["counts"] == manifests[0]["counts"]
    return expected


def test_cdnow_weekly_run_on_spark_is_the_duckdb_run(spark, tmp_path):
    data = _cdnow_parquet(tmp_path / "cdnow.parquet")
    lines = pd.read_parquet(data)
    lines["email"] = "cdnow." + lines["customer_id"] + "@example.com"  # to email them
    lines.to_parquet(data, index=False)
    runs = _runs(tmp_path, data, ['date_format = "%Y%m%d"', "[columns]",
                                  'order_date = "date"'], "1997-09-30")
    customers = _same_run(runs)
    assert len(customers) == 2357  # the sample's customers
    groups = customers["group"].value_counts()
    assert groups["holdout"] > 0 and groups["target"] > groups["holdout"]
    assert customers["segment"].nunique() > 3


def test_dirty_weekly_run_on_spark_is_the_duckdb_run(spark, tmp_path):
    data = tmp_path / "dirty.csv"
    _dirty().to_csv(data, index=False)
    runs = _runs(tmp_path, data, [
        'on_bad_rows = "drop"', "max_drop_fraction = 0.9", "max_shared_order_fraction = 0.2",
        "[columns]", 'customer_id = "cid"', 'order_id = "oid"', 'order_date = "when"',
        'amount = "amount"', 'email = "email"', "[features]", "window_days = 120"],
        "2024-03-31")
    customers = _same_run(runs)
    assert set(customers["customer_id"]) == {"17850", "José", "b", "e", "f", "g"}
    quality = json.loads((runs["spark"] / "quality.json").read_text())
    assert quality["dropped"]["duplicate_line"] == 30  # the rules ran, and counted alike
