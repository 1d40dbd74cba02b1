"""The Spark session of ``--engine spark``, and quiet pandas conversions."""

from __future__ import annotations

import contextlib
import logging
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

__all__ = ["SESSION_CONF", "pandas_conversion", "spark_failure", "spark_session"]

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
    if launching:
        _log_query_errors()
    return session


def _log_query_errors() -> None:
    """Send PySpark's query-context loggers to :data:`JVM_LOG`, not the user's terminal.

    PySpark logs each analysis error as a JSON line with the JVM's stack trace before it
    raises it; the engine reports the error itself, in one line (:func:`spark_failure`).
    """
    from pyspark.logger import PySparkLogger

    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        logger = PySparkLogger.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(logging.FileHandler(JVM_LOG, delay=True))
        logger.propagate = False


def local_settings(master: str) -> dict[str, str]:
    """Return the settings of a local master: shuffle partitions and the driver's heap.

    Spark's default of 200 shuffle partitions is sized for clusters; on one machine each
    grouping of the run would schedule 200 tasks, most of them nearly empty, and the run
    spends its time scheduling them: a local master gets twice its cores.

    ``local-cluster[workers,cores,MB]`` (Spark's own test master: executors in JVMs and
    Python workers of their own, as on a cluster) counts ``workers * cores`` cores.

    In local mode the driver's JVM is the whole of Spark (executors included), and its
    default heap of 1 GB once ran out collecting 1.16M customers at 10M lines. A local
    master gets :func:`driver_memory` (``RFM_ENGINE_SPARK_DRIVER_MEMORY``, else 2 GB, or a
    quarter of a smaller machine's memory), unless ``PYSPARK_SUBMIT_ARGS`` sets it. Not
    more by default: the JVM grows its heap towards the maximum before it collects garbage
    (with 5 GB, the 1M-line weekly run's process tree peaked at 6.5 GB). A cluster
    (``spark-submit``, Databricks) keeps its own settings.
    """
    master = master.strip()
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]|local", master)
    cluster = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]", master)
    if cluster is not None:  # executors in JVMs of their own, on this machine (tests)
        n = int(cluster.group(1)) * int(cluster.group(2))
    elif match is None:
        return {}
    else:
        cores = match.group(1) if match.group(1) not in (None, "*") else None
        n = int(cores) if cores else (1 if master == "local" else os.cpu_count() or 1)
    settings = {"spark.sql.shuffle.partitions": str(2 * n), "spark.default.parallelism": str(n)}
    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    if "--driver-memory" not in submit_args and "spark.driver.memory" not in submit_args:
        settings["spark.driver.memory"] = driver_memory()
    return settings


def driver_memory() -> str:
    """Return the heap of a local Spark driver, as Spark writes sizes (``"6g"``).

    ``RFM_ENGINE_SPARK_DRIVER_MEMORY`` when set; else a quarter of the memory this process
    may use (the machine's, or its cgroup's limit when lower), at least 1 GB and at most 2 GB.
    """
    chosen = os.environ.get("RFM_ENGINE_SPARK_DRIVER_MEMORY")
    if chosen:
        if re.fullmatch(r"\d+[kmgt]?", chosen.strip().lower()) is None:
            raise ConfigError(f"RFM_ENGINE_SPARK_DRIVER_MEMORY={chosen!r}: expected a size "
                              "as Spark writes it, such as 4g or 4096m.")
        return chosen.strip().lower()
    gib = _usable_memory() / 2**30
    return f"{max(1, min(2, int(gib // 4)))}g"


def _usable_memory() -> float:
    """Bytes of memory this process may use: physical memory, or a lower cgroup limit."""
    total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            total = min(total, float(Path(limit).read_text().strip()))
    return total


#: Where the JVM this module starts writes its own output (Spark's start-up notes, Java's
#: warnings, executor logs): a file of the temporary folder, not the user's terminal.
JVM_LOG = Path(tempfile.gettempdir()) / "rfm-engine-spark.log"


@contextlib.contextmanager
def _jvm_output(launching: bool) -> Iterator[None]:
    """While a new JVM starts, point its standard output and error at :data:`JVM_LOG`.

    Spark's start-up lines (log4j profile, host name, native libraries) are printed by the
    JVM before any log level can be set; they are not the engine's to show. Spark's errors
    still reach the user, as the Python exceptions PySpark raises.
    """
    from pyspark import SparkContext

    if not launching or SparkContext._gateway is not None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(JVM_LOG, "ab") as log:
            os.dup2(log.fileno(), 1)  # the JVM prints its start-up failures to stdout
            os.dup2(log.fileno(), 2)
        yield
    finally:
        for fd, copy in enumerate(saved, start=1):
            os.dup2(copy, fd)
            os.close(copy)


def spark_failure(exc: BaseException) -> tuple[str, int]:
    """Return the one line and the exit code that tell the user a Spark failure.

    PySpark raises Spark's failures with the JVM's whole stack trace in the message; the
    user gets its first cause instead (the trace goes to :data:`JVM_LOG`). A JVM out of
    heap exits 2, as the DuckDB engine's out-of-memory error does: the fix is a setting.

    Parameters
    ----------
    exc : BaseException
        An exception raised by PySpark or Py4J.

    Returns
    -------
    tuple of (str, int)
        The message (one line) and the exit code.
    """
    import traceback

    text = str(exc)
    with contextlib.suppress(OSError), open(JVM_LOG, "a", encoding="utf-8") as log:
        log.write("".join(traceback.format_exception(exc)))
    where = f"the whole trace is in {JVM_LOG}. Nothing was published."
    memory = re.search(r"java\.lang\.OutOfMemoryError[^\n]*", text)
    if memory:
        return (f"Spark ran out of memory ({memory.group(0).strip()}): give it more, e.g. "
                "RFM_ENGINE_SPARK_DRIVER_MEMORY=8g in local mode (now "
                f"{os.environ.get('RFM_ENGINE_SPARK_DRIVER_MEMORY') or driver_memory()}), or "
                f"spark-submit --driver-memory 8g --executor-memory 8g; {where}", 2)
    cause = re.search(r"(?:Caused by: |^: |\n: )?((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*"
                      r"(?:Error|Exception)[^\n]*)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = cause.group(1) if cause else (lines[0] if lines else type(exc).__name__)
    python = text.split("Traceback (most recent call last):", 1)
    if len(python) == 2:  # a Python worker's exception: its last line says what failed
        raised = [line for line in python[1].splitlines()
                  if line.strip() and not line[0].isspace()]
        first = raised[0].strip() if raised else first
    if len(first) > 300:
        first = first[:297] + "..."
    return f"Spark failed: {first}; {where}", 1


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

