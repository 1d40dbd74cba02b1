"""Scores and segments on Spark (issue 13): the pandas path's edges, scores, segments, words.

Every test computes the same thing with the pandas code (``RFMScorer.fit``,
``core.pipeline.segment_customers``, ``RuleSet.assign``) and compares. Spark runs in local
mode (the session fixture ``spark``); each check is batched into few Spark jobs.
"""

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfm_engine.core.features import customer_features
from rfm_engine.core.pipeline import RFM_FEATURES, segment_customers
from rfm_engine.core.scoring import BinsCollapsedWarning, RFMScorer, load_scorer, save_scorer
from rfm_engine.core.segments import RuleSet, builtin_rule_sets, load_rules
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.io.loading import load_transactions

from .conftest import read_cdnow

SAMPLE_COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice",
                  "order_date": "InvoiceDate", "quantity": "Quantity", "unit_price": "Price",
                  "email": "Email", "first_name": "First Name", "country": "Country"}

BOUNDED = RuleSet.from_toml("""
name = "bounded"
default = "rest"
[[rules]]
segment = "recent_vip"
rfm = "[4-5][4-5][4-5]"
recency_days = { max = 30 }
[[rules]]
segment = "vip"
r = [4, 5]
fm = [4, 5]
[[rules]]
segment = "big_basket"
avg_order_value = { min = 50.5 }
tenure_days = { min = 90, max = 400 }
[[rules]]
segment = "spender"
monetary = { min = 500 }
[[rules]]
segment = "low"
rfm_score = [3, 6]
[[rules]]
segment = "never"
r = 5
recency_days = { min = 100000 }
""", source="bounded.toml")


def _engine():
    from rfm_engine.engines import spark as engine

    return engine


def _spark_frame(spark, customers: pd.DataFrame):
    from rfm_engine.engines.spark.session import pandas_conversion

    with pandas_conversion():
        return spark.createDataFrame(customers).persist()


def _same_segmentation(spark, customers: pd.DataFrame, **options) -> None:
    """Spark's segment_customers == pandas' on ``customers`` (sorted by id)."""
    engine = _engine()
    frame = _spark_frame(spark, customers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw warning escapes either path
        expected = segment_customers(customers, **options)
        result = engine.segment_customers(frame, **options)
        got = result.collect()
    pd.testing.assert_frame_equal(got.customers, expected.customers)
    assert got.warnings == expected.warnings
    for name, a, b in zip(RFM_FEATURES, got.scorer.bin_edges_, expected.scorer.bin_edges_,
                          strict=True):
        assert a.tolist() == b.tolist(), name
    assert got.scorer.to_dict() == expected.scorer.to_dict()
    pd.testing.assert_frame_equal(result.summary, expected.summary, check_exact=True)


# --- fitting --------------------------------------------------------------------------------

def test_spark_percentile_is_not_numpy_linear_but_the_exact_edges_are(spark):
    """Why the exact path does not use Spark's `percentile`: it interpolates in another way."""
    from pyspark.sql import functions as F

    engine = _engine()
    rng = np.random.default_rng(1)
    groups = [np.round(rng.lognormal(3, 1.5, int(rng.integers(2, 300))), 4) for _ in range(600)]
    table = pd.DataFrame({"g": np.repeat(np.arange(len(groups)), [len(x) for x in groups]),
                          "x": np.concatenate(groups)})
    levels = np.linspace(0, 1, 6)[1:-1]
    spark_linear = _spark_frame(spark, table).groupBy("g").agg(F.percentile(
        "x", F.lit(levels)).alias("q")).orderBy("g").collect()
    spark_linear = np.array([row["q"] for row in spark_linear])
    numpy_linear = np.array([np.quantile(x, levels, method="linear") for x in groups])
    np.testing.assert_allclose(spark_linear, numpy_linear, rtol=1e-12)
    assert (spark_linear != numpy_linear).any()  # the last bit differs for some edges
    # The exact path: numpy's edges, bit for bit, on the group with most differences.
    worst = int(np.argmax((spark_linear != numpy_linear).sum(axis=1)))
    x = groups[worst]
    customers = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(len(x))],
                              "recency_days": np.round(x).astype(np.int64) % 50,
                              "frequency": np.arange(len(x)) % 3 + 1, "monetary": x})
    sdf = _spark_frame(spark, customers)
    for n_bins in (5, 9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BinsCollapsedWarning)
            fitted = engine.fit_scorer(sdf, n_bins=n_bins)
            expected = RFMScorer(n_bins).fit(customers[RFM_FEATURES])
        assert fitted.to_dict() == expected.to_dict()


def test_the_legacy_percentile_disc_setting_gives_the_same_edges(spark):
    engine = _engine()
    customers = pd.DataFrame({"customer_id": list("abcdefg"),
                              "recency_days": [0, 3, 3, 10, 40, 41, 300],
                              "frequency": [1, 1, 1, 2, 2, 5, 9],
                              "monetary": [1.5, 2.25, 2.25, 10.0, 10.0, 99.9999, 1e6]})
    sdf = _spark_frame(spark, customers)
    key = "spark.sql.legacy.percentileDiscCalculation"
    spark.conf.set(key, "true")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BinsCollapsedWarning)
            fitted = engine.fit_scorer(sdf, n_bins=4)
    finally:
        spark.conf.set(key, "false")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        expected = RFMScorer(4).fit(customers[RFM_FEATURES])
    assert fitted.to_dict() == expected.to_dict()


def test_collapsed_bins_warn_the_same_way(spark):
    engine = _engine()
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(10)],
                              "recency_days": range(10),
                              "frequency": [1, 1, 1, 1, 1, 1, 2, 2, 3, 7],
                              "monetary": np.arange(10.0)})
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        engine.fit_scorer(_spark_frame(spark, customers))
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        RFMScorer().fit(customers[RFM_FEATURES])
    assert [(w.category, str(w.message)) for w in ours] == \
        [(w.category, str(w.message)) for w in theirs]
    assert [w.category for w in ours] == [BinsCollapsedWarning]


def test_approximate_edges_are_data_values_within_the_documented_rank_error(spark):
    """percentile_approx: each edge is a value of the data, rank within n / accuracy."""
    engine = _engine()
    rng = np.random.default_rng(11)
    n, accuracy = 20_000, 100
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                              "recency_days": rng.integers(0, 2000, n),
                              "frequency": rng.geometric(0.3, n),
                              "monetary": np.round(rng.pareto(1.2, n) * 50 + 1, 4)})
    sdf = _spark_frame(spark, customers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        fitted = engine.fit_scorer(sdf, exact=False, accuracy=accuracy)
        exact = RFMScorer().fit(customers[RFM_FEATURES])
    levels = np.linspace(0, 1, 6)[1:-1]
    for j, feature in enumerate(RFM_FEATURES):
        x = customers[feature].to_numpy(dtype=float)
        # recency is reversed: its edges are those of -x, negated and reversed.
        signed = -x if j == 0 else x
        approx = -fitted.bin_edges_[j][::-1] if j == 0 else fitted.bin_edges_[j]
        assert np.isin(approx, signed).all()
        for edge, level in zip(approx, levels, strict=True):
            below, at_most = (signed < edge).sum(), (signed <= edge).sum()
            target = level * n  # some rank of the value `edge` is within n / accuracy
            assert below - n / accuracy <= target <= at_most + n / accuracy, (feature, level)
    assert fitted.to_dict()["params"] == exact.to_dict()["params"]


# --- applying: hypothesis tables with heavy ties ------------------------------------------

@st.composite
def customer_tables(draw):
    n = draw(st.integers(1, 60))
    tied = st.sampled_from([0.0, 1.0, 1.0, 2.0, 5.0, 30.0, 30.0])
    recency = draw(st.lists(st.one_of(tied, st.integers(0, 400).map(float)),
                            min_size=n, max_size=n))
    frequency = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 2, 3, 8]), min_size=n,
                              max_size=n))
    monetary = draw(st.lists(st.one_of(
        st.sampled_from([9.99, 9.99, 10.0, 0.0, -5.5]),
        st.decimals(-100, 100000, places=4).map(float)), min_size=n, max_size=n))
    table = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)],
                          "recency_days": np.asarray(recency).astype(np.int64),
                          "frequency": np.asarray(frequency, dtype=np.int64),
                          "monetary": np.asarray(monetary, dtype=np.float64)})
    table["avg_order_value"] = (table["monetary"] / table["frequency"]).round(4)
    table["tenure_days"] = table["recency_days"] + draw(st.integers(0, 400))
    return table


@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=customer_tables(), n_bins=st.sampled_from([2, 4, 5, 9]),
       rules=st.sampled_from(["rf-grid", "classic", "bounded"]))
def test_hypothesis_tables_with_ties_give_the_same_segmentation(spark, table, n_bins, rules):
    rule_set = BOUNDED if rules == "bounded" else load_rules(rules)
    _same_segmentation(spark, table, rules=rule_set, n_bins=n_bins)


# --- frozen scorer, rule files with bounds --------------------------------------------------

def test_a_frozen_scorer_and_bounded_rules_score_as_pandas(spark, tmp_path):
    """A saved scorer (quantile and fixed edges) applied on Spark; bounds with NULL and NaN."""
    from pyspark.sql import functions as F

    engine = _engine()
    rng = np.random.default_rng(3)
    n = 400
    fit_on = pd.DataFrame({"recency_days": rng.integers(0, 500, n),
                           "frequency": rng.integers(1, 6, n),
                           "monetary": np.round(rng.lognormal(4, 1, n), 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        scorer = RFMScorer(5, edges={"frequency": [1, 2, 4, 6]}).fit(fit_on)
    frozen = load_scorer(save_scorer(scorer, tmp_path / "scorer.json"))
    # New customers, values on and beyond the frozen edges; raw features with gaps.
    edges = np.concatenate(frozen.bin_edges_)
    m = 300
    customers = pd.DataFrame({
        "customer_id": [f"n{i:04d}" for i in range(m)],
        "recency_days": rng.choice(np.r_[np.round(edges), -3, 0, 10_000], m).astype(np.int64),
        "frequency": rng.choice([1, 2, 3, 4, 6, 7, 99], m).astype(np.int64),
        "monetary": rng.choice(np.r_[frozen.bin_edges_[2], 0.0, -1.0, 1e7, 500.0], m),
        "avg_order_value": rng.choice([50.5, 50.49, 80.0, np.nan], m),
        "tenure_days": rng.choice([89.0, 90.0, 400.0, 401.0, np.nan], m),
    })
    sdf = _spark_frame(spark, customers)
    # Arrow turns NaN into NULL: put real NaNs back where the pandas table has them.
    sdf = sdf.withColumn("tenure_days", F.when(F.col("tenure_days").isNull(),
                                               F.lit(float("nan"))).otherwise(F.col("tenure_days")))
    for rule_set in (BOUNDED, *map(load_rules, builtin_rule_sets())):
        expected = segment_customers(customers, rules=rule_set, scorer=frozen)
        got = engine.segment_customers(sdf, rules=rule_set, scorer=frozen).collect()
        pd.testing.assert_frame_equal(got.customers, expected.customers)
        assert got.warnings == expected.warnings
    bounded = segment_customers(customers, rules=BOUNDED, scorer=frozen).customers
    assert {"recent_vip", "big_basket", "rest"} <= set(bounded["segment"])
    # The bare score columns (no materialised key) give the same values.
    columns = engine.score_columns(frozen)
    with_ids = sdf.select("customer_id", *columns.values()).orderBy("customer_id").collect()
    got = pd.DataFrame([row.asDict() for row in with_ids])
    for name in columns:
        assert got[name].tolist() == bounded[name].tolist(), name


# --- real inputs: the sample, a dirty file, CDNOW -------------------------------------------

def _both_engines(spark, path, **options):
    engine = _engine()
    duck = load_transactions(path, **options)
    spk = engine.load_transactions(path, spark=spark, **options)
    customers = engine.customer_frame_spark(spk)
    return customer_features(duck), duck.report, customers, spk.report


def _same_on_files(spark, path, rule_names, **options):
    engine = _engine()
    expected_customers, duck_report, customers, spark_report = _both_engines(spark, path,
                                                                             **options)
    assert spark_report.to_dict() == duck_report.to_dict()
    for rules in rule_names:
        expected = segment_customers(expected_customers, rules=rules)
        result = engine.segment_customers(customers, rules=rules)
        got = result.collect()
        pd.testing.assert_frame_equal(got.customers, expected.customers)
        assert got.warnings == expected.warnings
        # revenue is summed exactly on both engines: the same bits, not only close
        pd.testing.assert_frame_equal(result.summary, expected.summary, check_exact=True)
        assert got.summary is result.summary  # aggregated once, not again by pandas
    return expected_customers


def test_sample_file_gives_the_same_segments(spark, tmp_path):
    csv = write_sample(tmp_path, n_customers=300, seed=5)["transactions"]
    path = tmp_path / "transactions.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{path}' (FORMAT parquet)")
    _same_on_files(spark, path, builtin_rule_sets(), columns=SAMPLE_COLUMNS,
                   as_of="2025-10-31", on_bad_rows="drop")


def test_dirty_file_gives_the_same_segments(spark, tmp_path):
    from .test_spark_engine import _dirty

    path = tmp_path / "dirty.parquet"
    _dirty().to_parquet(path, index=False)
    _same_on_files(spark, path, ["rf-grid", "seed"],
                   columns={"customer_id": "cid", "order_id": "oid", "order_date": "when",
                            "amount": "amount", "email": "email"},
                   as_of="2024-03-31", window_days=120, on_bad_rows="drop",
                   max_drop_fraction=0.9, max_shared_order_fraction=0.2)


def test_cdnow_gives_the_same_segments(spark, tmp_path):
    cdnow = read_cdnow()
    cdnow["date"] = pd.to_datetime(cdnow["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    path = tmp_path / "cdnow.parquet"
    cdnow.to_parquet(path, index=False)
    table = _same_on_files(spark, path, ["rf-grid", "classic"],
                           columns={"customer_id": "customer_id", "order_date": "date",
                                    "amount": "amount"}, as_of="1998-06-30")
    assert len(table) == cdnow["customer_id"].nunique()


def test_the_config_chooses_exact_or_approximate_quantiles():
    from rfm_engine.config import Config
    from rfm_engine.errors import ConfigError

    assert Config().scoring.spark_fit_options() == {"exact": True, "accuracy": 10000}
    approx = Config().with_overrides({"scoring.quantiles": "approx",
                                      "scoring.approx_accuracy": 500})
    assert approx.scoring.spark_fit_options() == {"exact": False, "accuracy": 500}
    with pytest.raises(ConfigError, match="quantiles"):
        Config().with_overrides({"scoring.quantiles": "roughly"})
