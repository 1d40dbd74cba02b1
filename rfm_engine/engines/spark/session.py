"""The Spark session of ``--engine spark``, and quiet pandas conversions."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

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
    settings = {**SESSION_CONF, **(conf or {})}
    launching = "PYSPARK_GATEWAY_PORT" not in os.environ  # not under spark-submit
    if master or launching:
        master = master or os.environ.get("RFM_ENGINE_SPARK_MASTER", "local[*]")
        builder = builder.master(master)
        settings = {**local_settings(master), **settings}
    for key, value in settings.items():
        builder = builder.config(key, value)
    with pandas_conversion(), _jvm_output(launching):  # importing pyspark.testing warns
        session = builder.getOrCreate()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    session.sparkContext.setLogLevel("ERROR")  # the engine's own step lines, not Spark's WARNs
    return session


def local_settings(master: str) -> dict[str, str]:
    """Return the settings of a local master: shuffle partitions twice its cores.

    Spark's default of 200 shuffle partitions is sized for clusters; on one machine each
    grouping of the run would schedule 200 tasks, most of them nearly empty, and the run
    spends its time scheduling them. A cluster (``spark-submit``, Databricks) keeps its own.
    """
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]|local", master.strip())
    if match is None:
        return {}
    cores = match.group(1) if match.group(1) not in (None, "*") else None
    n = int(cores) if cores else (1 if master.strip() == "local" else os.cpu_count() or 1)
    return {"spark.sql.shuffle.partitions": str(2 * n), "spark.default.parallelism": str(n)}


#: Where the JVM this module starts writes its own output (Spark's start-up notes, Java's
#: warnings, executor logs): a file of the temporary folder, not the user's terminal.
JVM_LOG = Path(tempfile.gettempdir()) / "rfm-engine-spark.log"


@contextlib.contextmanager
def _jvm_output(launching: bool) -> Iterator[None]:
    """While a new JVM starts, point standard error at :data:`JVM_LOG`; the JVM keeps it.

    Spark's start-up lines (log4j profile, host name, native libraries) are printed by the
    JVM before any log level can be set; they are not the engine's to show. Spark's errors
    still reach the user, as the Python exceptions PySpark raises.
    """
    from pyspark import SparkContext

    if not launching or SparkContext._gateway is not None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(JVM_LOG, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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

