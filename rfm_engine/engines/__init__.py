"""Engine adapters: the transaction-scale steps on engines other than DuckDB.

:mod:`rfm_engine.engines.spark` runs loading, cleaning, the orders table, the customer
features, scores and segments on Apache Spark (``pip install rfm-engine[spark]``); it is the
only module that imports pyspark, and only when it is used (:func:`spark_engine`).

May import: ``rfm_engine.campaigns`` and ``rfm_engine.measurement`` (the Spark engine calls their
rules: one definition of each), ``rfm_engine.core``, ``rfm_engine.io`` and the bottom modules;
nothing above (``reports``, ``runs``, ...).
"""

from __future__ import annotations

from types import ModuleType

from ..errors import ConfigError

#: The engines of ``[input] engine`` / ``--engine``.
ENGINES = ("duckdb", "spark")
#: The commands that run on Spark so far (issue 13 goes on).
SPARK_COMMANDS = ("features", "clv-summary", "clv", "clv-validate", "segment", "cluster", "run")

__all__ = ["ENGINES", "SPARK_COMMANDS", "refuse_spark", "spark_engine"]


def spark_engine() -> ModuleType:
    """Return :mod:`rfm_engine.engines.spark`, importing pyspark.

    Raises
    ------
    ConfigError
        pyspark is not installed.
    """
    try:
        from . import spark
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(("pyspark", "py4j")):
            raise
        raise ConfigError("--engine spark needs pyspark: pip install 'rfm-engine[spark]' "
                          "(and a Java 17+ runtime).") from None
    return spark


def refuse_spark(engine: str, command: str) -> None:
    """Raise a ConfigError when ``engine`` is spark and ``command`` does not run on it yet."""
    if engine == "spark":
        names = f"{', '.join(SPARK_COMMANDS[:-1])} and {SPARK_COMMANDS[-1]}"
        raise ConfigError(f"--engine spark runs {names} so far, not "
                          f"{command}: use the DuckDB engine (the default) for it.")
