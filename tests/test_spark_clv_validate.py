"""clv-validate on Spark: the holdout counts on Spark, the same files as the DuckDB engine's.

Spark runs in local mode (the session fixture ``spark`` of conftest.py).
"""

import pandas as pd
import pytest

from rfm_engine.config import Config
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.clv.holdout import holdout_purchases, repeat_purchase_days
from rfm_engine.runs.adhoc import run_clv_validate

from .conftest import read_cdnow
from .test_spark_engine import _dirty
from .test_spark_inputs import SAMPLE_COLUMNS, _both, _engine

DIRTY = dict(columns={"customer_id": "cid", "order_id": "oid", "order_date": "when",
                      "amount": "amount", "email": "email"},
             as_of="2024-03-31", on_bad_rows="drop", max_drop_fraction=0.9,
             max_shared_order_fraction=0.2)


def _same_holdout_tables(spark, path, calibration_end, holdout_end, **options):
    """Assert the holdout tables of both engines are equal exactly; return DuckDB's three."""
    duck, spk = _both(spark, path, **options)
    holdout = holdout_purchases(duck, calibration_end, holdout_end, "W", spend=True)
    pd.testing.assert_frame_equal(
        _engine().holdout_purchases(spk, calibration_end, holdout_end, "W", spend=True),
        holdout, check_exact=True)
    days = repeat_purchase_days(duck, calibration_end, holdout_end)
    for got, expected in zip(_engine().repeat_purchase_days(spk, calibration_end, holdout_end),
                             days, strict=True):
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    return holdout, *days


def test_holdout_counts_and_spend_on_spark_equal_duckdbs(spark, tmp_path):
    # The dirty file: returns, a free order, a day netting to zero, shared and duplicate lines.
    path = tmp_path / "dirty.csv"
    _dirty().to_csv(path, index=False)
    holdout, firsts, repeats = _same_holdout_tables(spark, path, "2024-01-31", "2024-03-31",
                                                    **DIRTY)
    assert firsts["customers"].sum() == len(holdout) > 0
    assert holdout["frequency_holdout"].sum() > 0 and repeats["purchases"].sum() > 0
    # Two years of the sample (returns, cancellations): many customers and days.
    sample = write_sample(tmp_path / "sample", n_customers=150, seed=5)["transactions"]
    end = load_transactions(sample, columns=SAMPLE_COLUMNS, on_bad_rows="drop").as_of
    start = end - pd.Timedelta(days=180)
    holdout, _, _ = _same_holdout_tables(spark, sample, start, end, columns=SAMPLE_COLUMNS,
                                         on_bad_rows="drop")
    assert (holdout["frequency_holdout"] > 0).sum() > 20 and (holdout["spend_holdout"] > 0).any()


@pytest.mark.parametrize("model", ["bgnbd", "pareto-nbd"])
def test_clv_validate_on_spark_writes_the_same_files(spark, tmp_path, model):
    path = tmp_path / "cdnow.csv"
    read_cdnow().to_csv(path, index=False)
    written = {}
    for engine in ("duckdb", "spark"):
        config = Config().with_overrides({
            "input.path": str(path), "input.engine": engine, "input.date_format": "%Y%m%d",
            "columns": {"order_date": "date"}})
        done = run_clv_validate(config, tmp_path / engine / "v.csv", model=model,
                                calibration_end="1997-09-30", holdout_end="1998-06-30")
        written[engine] = {p.name: p.read_bytes() for p in sorted((tmp_path / engine).iterdir())}
    assert sorted(written["spark"]) == ["v.csv", "v.csv.calibration_holdout.png",
                                        "v.csv.figures.csv", "v.csv.json",
                                        "v.csv.quality.json", "v.csv.tracking.png"]
    assert written["spark"] == written["duckdb"]
    # The published CDNOW holdout figure (Fader, Hardie & Lee 2005): 1,882 repeat purchases.
    assert done.validation.metrics.loc["purchases", "actual_total"] == 1882
