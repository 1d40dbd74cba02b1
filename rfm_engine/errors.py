"""Exceptions raised by rfm-engine, each carrying the CLI exit code it maps to.

Library code raises these; the CLI turns them into a one-line message and the
exit code below, never a traceback.

====  ==========================================================
code  meaning
====  ==========================================================
0     ok
1     internal error (a bug: reported with a traceback)
2     bad input or config; an optional dependency that is needed is not installed
3     empty result (no customer left; a model that cannot be identified)
4     compliance check failed (suppression)
5     output exists (rerun without ``--force``) or is being written by another run
6     model integrity check failed
====  ==========================================================
"""

from __future__ import annotations

__all__ = [
    "RFMEngineError",
    "InputError",
    "ConfigError",
    "DataError",
    "MissingColumnsError",
    "EmptyResultError",
    "ComplianceError",
    "OutputError",
    "OutputExistsError",
    "OutputBusyError",
    "ModelIntegrityError",
    "ModelNotIdentifiedError",
    "MissingDependencyError",
]


class RFMEngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code: int = 1


class InputError(RFMEngineError):
    """Bad input data or a bad parameter (exit code 2)."""

    exit_code = 2


class ConfigError(InputError, ValueError):
    """A configuration value or parameter is invalid (exit code 2)."""


class DataError(InputError):
    """A malformed value in an input file (exit code 2).

    Parameters
    ----------
    source : str
        The file (or table) the value came from.
    row : int or None
        1-based data row number (the header is not counted).
    column : str
        The column name as it appears in the source.
    value : object
        The offending value.
    expected : str
        What the column should hold.
    hint : str, default=""
        How to fix or work around the problem.
    """

    def __init__(
        self,
        source: str,
        row: int | None,
        column: str,
        value: object,
        expected: str,
        hint: str = "",
    ) -> None:
        self.source, self.row, self.column = source, row, column
        self.value, self.expected, self.hint = value, expected, hint
        where = f"{source}, row {row}" if row is not None else source
        got = "an empty value" if value is None or value == "" else repr(value)
        message = f"{where}, column {column!r}: got {got}, expected {expected}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


class MissingColumnsError(InputError):
    """Required columns are absent from an input (exit code 2)."""

    def __init__(self, source: str, missing: list[str], available: list[str]) -> None:
        self.source, self.missing, self.available = source, missing, available
        super().__init__(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
            f"available: {', '.join(map(repr, available))}. "
            "Map them with --columns 'customer_id=Your Column,...' or [columns] in the config."
        )


class MissingDependencyError(InputError):
    """An optional dependency a function needs is not installed (exit code 2).

    E.g. MLflow (the ``mlflow`` extra: ``pip install 'rfm-engine[mlflow]'``); the message
    says what to install.
    """


class EmptyResultError(RFMEngineError):
    """Nothing is left to score, e.g. no customer after cleaning (exit code 3)."""

    exit_code = 3


class ComplianceError(RFMEngineError):
    """A suppression or compliance check failed (exit code 4)."""

    exit_code = 4


class OutputError(InputError):
    """An output path cannot be written (exit code 2).

    Its folder is a file, it is a folder itself, two outputs share one path, or the
    folder is not writable.
    """


class OutputExistsError(RFMEngineError):
    """The output exists and ``force`` was not given (exit code 5)."""

    exit_code = 5


class OutputBusyError(OutputExistsError):
    """Another process is writing the same output right now (exit code 5)."""


class ModelIntegrityError(RFMEngineError):
    """A model file does not match its recorded hash (exit code 6)."""

    exit_code = 6


class ModelNotIdentifiedError(EmptyResultError):
    """A model cannot be estimated from these data (exit code 3).

    Raised when, for example, BG/NBD meets customers who never bought a second time, or
    its likelihood has no finite maximum (a parameter runs off to 0 or infinity), so
    any prediction would be an artefact of the optimiser. The message says why, in words.
    """
