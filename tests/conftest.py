from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def read_cdnow() -> pd.DataFrame:
    """The CDNOW sample as text columns: master id, customer id, YYYYMMDD date, CDs, dollars."""
    return pd.read_csv(
        DATA / "CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
        names=["master_id", "customer_id", "date", "cds", "amount"],
    )


@pytest.fixture
def cdnow() -> pd.DataFrame:
    return read_cdnow()


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Three customers, hand-written, canonical column names."""
    return pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", "c"],
        "order_date": ["2024-01-01", "2024-01-11", "2024-01-31", "2024-01-21", "2024-01-01",
                       "2024-01-30"],
        "amount": [10.0, 20.0, 30.0, 100.0, 5.0, -5.0],
    })


@pytest.fixture(autouse=True)
def _no_tracking_by_default(monkeypatch, tmp_path):
    """CLI runs in tests log no MLflow run unless a test asks for one (tests/test_tracking.py)
    and never write mlflow.db into the working folder."""
    monkeypatch.setenv("RFM_ENGINE_NO_TRACKING", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def _chromium(tmp_path_factory):
    """One headless Chromium for the session (tests/browser.py), downloads into a temp folder.

    Skipped, with the reason, where Chromium, chromedriver or selenium is missing.
    """
    from tests import browser as harness

    reason = harness.missing()
    if reason:
        pytest.skip(reason)
    downloads = tmp_path_factory.mktemp("downloads")
    with harness.chromium(downloads) as driver:
        driver.downloads = downloads
        yield driver


@pytest.fixture
def browser(_chromium):
    """The session's Chromium, its window back at 1280 x 900 for every test (a test that
    narrows it must not narrow the next test's page and screenshots)."""
    from tests import browser as harness

    _chromium.set_window_size(harness.WIDTH, harness.HEIGHT)
    return _chromium


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the session's Spark tests (--engine spark, issue 13).

    ``local[2]``, 4 shuffle partitions, no UI, errors-only logs. Skipped, with the reason,
    where pyspark or a Java runtime is missing (``make install`` provides both).
    """
    import shutil

    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install "
                        "'rfm-engine[spark]' (make install)")
    if not shutil.which("java"):
        pytest.skip("no java on PATH: --engine spark needs a Java 17+ runtime (make install)")
    from rfm_engine.engines.spark import spark_session

    # One JVM serves every Spark test of a worker (dozens of weekly runs, thousands of
    # stages): a larger heap than a one-run CLI's 2 GB, and Spark's status store keeps
    # fewer finished jobs, stages and queries (with 2 GB and the defaults, a test worker's
    # JVM spent its time collecting garbage after ~1,800 stages).
    session = spark_session("local[2]", conf={
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
        "spark.ui.enabled": "false", "spark.log.level": "ERROR",
        "spark.driver.memory": "4g", "spark.ui.retainedJobs": "100",
        "spark.ui.retainedStages": "100", "spark.sql.ui.retainedExecutions": "50",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
