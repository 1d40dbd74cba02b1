"""The Spark session of ``--engine spark``, and quiet pandas conversions."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping

from pyspark.sql import SparkSession

from ...errors import ConfigError

__all__ = ["SESSION_CONF", "pandas_conversion", "spark_session"]

#: Settings of the sessions this module starts (an active session is used as it is, but
#: for the time zone: dates are UTC, as in the DuckDB engine).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None
                  ) -> SparkSession:
    """Return the active Spark session, or start one.

    Parameters
    ----------
    master : str, optional
        Such as ``"local[2]"``; default: the active session's (``spark-submit``, Databricks),
        else ``RFM_ENGINE_SPARK_MASTER``, else ``local[*]``.
    conf : mapping, optional
        More settings of a new session (over :data:`SESSION_CONF`).

    Returns
    -------
    SparkSession

    Raises
    ------
    ConfigError
        No Java runtime to start Spark with.
    """
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise ConfigError("--engine spark needs a Java 17+ runtime (java on PATH or JAVA_HOME): "
                          "install one (Debian: apt-get install default-jre-headless; `make "
                          "install` does it).")
    # Python workers (NFC of non-ASCII ids) run this interpreter, which has pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("rfm-engine")
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit
        builder = builder.master(master or os.environ.get("RFM_ENGINE_SPARK_MASTER", "local[*]"))
    for key, value in {**SESSION_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    with pandas_conversion():  # starting the context imports pyspark.testing, which warns
        session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.sparkContext.setLogLevel("ERROR")  # the engine's own step lines, not Spark's WARNs
    return session





@contextlib.contextmanager
def pandas_conversion() -> Iterator[None]:
    """Silence PySpark 4's FutureWarning on each pandas conversion under pandas 3.

    The conversions this module makes (counts, the customer table, NFC of ids) are
    checked against the DuckDB engine by the tests.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated",
                                module="pyspark")
        yield

