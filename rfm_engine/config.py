"""Run configuration: a TOML file whose sections feed each pipeline step.

Every key, with its type and default (``weekly.toml``)::

    [input]
    path = "data/sample/transactions.csv"   # a file, a folder of files, or a DuckDB database
    table = "transactions"              # the table, when path is a DuckDB database
    delimiter = ","                     # CSV delimiter (default: sniffed); "whitespace":
                                        # runs of spaces/tabs (CDNOW's raw files)
    encoding = "utf-8"                  # CSV encoding (default: UTF-8, BOM or not)
    header = true                       # false: the file has no header line; then
    names = ["customer_id", "order_date", "amount"]  # name its columns, one per field
    date_format = "%Y-%m-%d %H:%M:%S"   # optional: ISO 8601 is read without it
    decimal = "."                       # or ","
    on_bad_rows = "raise"               # or "drop"
    max_drop_fraction = 0.5             # 0..1
    max_shared_order_fraction = 0.01    # 0..1: order ids used by several customers
    min_date = "1900-01-01"             # orders dated before it are refused (or dropped)
    memory_limit = "1GB"                # DuckDB's memory; beyond it, spill to a temp folder
    engine = "duckdb"                   # or "spark" (features, segment; Parquet input)

    [columns]                           # canonical = "Source Column"
    customer_id = "Customer ID"
    order_id = "Invoice"
    order_date = "InvoiceDate"
    quantity = "Quantity"
    unit_price = "Price"

    [features]
    as_of = "2025-12-31"                # default: the latest transaction date (a TOML date
                                        # 2025-12-31 works too)
    window_days = 730                   # optional, >= 1

    [scoring]
    n_bins = 5
    model = "models/model.skops"        # optional frozen model (or a scorer .json)
    models_dir = "models"               # .skops/.joblib models load only from here
    quantiles = "exact"                 # --engine spark: or "approx" (percentile_approx)
    approx_accuracy = 10000             # its accuracy: rank error at most customers / it
    [scoring.edges]                     # optional fixed edges per dimension
    recency_days = [30, 90, 180, 365]

    [segments]
    rules = "rf-grid"                   # a built-in name or a TOML file

    [output]                            # the weekly run (rfm-engine run)
    dir = "out"                         # runs go to out/<as_of>/
    format = "generic"                  # or mailchimp, klaviyo, hubspot, braze
    max_file_mb = 512                   # optional: MB (10^6 bytes) per list file; default
                                        # the tool's (Klaviyo 50, HubSpot 20 free, Braze 500)
    max_file_rows = 1048575             # optional: data rows per list file; default the
                                        # tool's (HubSpot 1,048,575)
    suppression = ["suppression.csv"]   # unsubscribed, bounced, complained, erased
                                        # (one file may be given as a plain string)
    no_suppression = false              # true: email campaigns without suppression, on purpose
    max_suppression_age_days = 7        # older suppression files stop an email run (exit 4)
    allow_stale_suppression = false     # true: use them anyway, with a warning
    consent = "consent.csv"             # optional: consent and objections to profiling
    consent_required = true             # with a consent file: no row = no consent

    [migration.triggers]                # list name = segment entered this week
    entered_at_risk = "at_risk"
    became_champion = "champions"

    [clustering]                        # optional k-means beside the rule segments
    enabled = true
    k_range = [2, 8]                    # or n_clusters = 5
    n_clusters = 5                      # optional: a fixed k instead of k_range
    sample_size = 20000                 # customers sampled to fit and to choose k
    random_state = 0

    [kpis]                              # the KPI report of each run (kpis.html)
    period = "month"                    # or "quarter"
    churn_days = 90                     # lost after 90 days without a purchase (0: not
                                        # active in the next period)
    clv = true                          # BG/NBD + Gamma-Gamma, weeks
    clv_horizon = 52
    clv_model = "bgnbd"                 # or "pareto-nbd"
    clv_params = "params.json"          # optional: score with these saved parameters
                                        # (rfm-engine clv --params-out), no fitting
    [kpis.inputs]                       # optional: costs, surveys, tickets, leads,
    costs = "costs.csv"                 # subscriptions, email_events

    [[campaigns]]                       # replaces the default plan when given
    name = "winback"
    description = "Win back lapsed big spenders."   # optional, free text
    type = "resurrection"
    segments = ["at_risk", "cant_lose"]
    channel = "email"
    priority = 10
    holdout_fraction = 0.1
    max_size = 5000
    min_days_between_contacts = 14

:func:`config_keys` lists every key (``input.path``, ``scoring.edges``...).

Types are checked strictly (pydantic models, unknown keys refused): ``enabled = "no"`` is
an error, not ``true``; ``n_bins = "5"`` is an error, not 5. A wrong value stops with one
line naming the file, the key, what was expected and the value, e.g. ``weekly.toml:
[clustering] enabled: expected true or false, got 'no' (a string).``
(:class:`~rfm_engine.errors.ConfigError`, exit code 2).

Paths, one rule: every relative path of a config file is relative to the file's folder,
and so are the defaults that are paths (``[scoring] models_dir = "models"``, ``[output]
dir = "out"``): they are the ``models`` and ``out`` folders next to the config file.
Without a config file they are relative to the working folder, as are paths given on
the command line. ``[segments] rules`` is a path when it ends in ``.toml``.

Command-line options override the file; they are validated like the file's values
(:meth:`Config.with_overrides`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

__all__ = ["ClusteringConfig", "Config", "FeaturesConfig", "InputConfig", "KPIConfig",
           "MigrationConfig", "OutputConfig", "ScoringConfig", "SegmentsConfig",
           "DEFAULT_MEMORY_LIMIT", "config_keys", "is_memory_size", "load_config"]


@dataclass(frozen=True)
class _IsPath:
    """Marks a field holding a path (or a list/table of paths) of the config file."""

    when: Callable[[str], bool] = lambda value: True


def _local(value: str) -> bool:
    """Whether a path value is local (a URI Spark reads, ``s3a://...``, ``dbfs:/...``, is not)."""
    return "://" not in value and not value.startswith("dbfs:")


_PATH = _IsPath(when=_local)
_TOML_PATH = _IsPath(when=lambda value: _local(value) and value.endswith(".toml"))

#: DuckDB's memory limit unless configured (``[input] memory_limit``, ``--memory-limit``):
#: beyond it DuckDB spills to a temporary folder, so a run fits a small machine.
DEFAULT_MEMORY_LIMIT = "1GB"
#: What a memory size looks like, for messages.
MEMORY_SIZE_EXPECTED = ("a memory size such as '1GB' or '512MB' (units B, KB, MB, GB, TB, KiB, "
                        "MiB, GiB, TiB)")
_MEMORY_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?\s*(K|M|G|T|Ki|Mi|Gi|Ti)?B", re.IGNORECASE)


def is_memory_size(value: Any) -> bool:
    """Whether ``value`` is a memory size DuckDB reads, such as ``"1GB"`` or ``"512 MiB"``.

    Examples
    --------
    >>> is_memory_size("1.5GB"), is_memory_size("512 MiB"), is_memory_size("lots")
    (True, True, False)
    """
    return isinstance(value, str) and _MEMORY_SIZE.fullmatch(value.strip()) is not None


def _memory_size(value: Any) -> Any:
    if isinstance(value, str) and not is_memory_size(value):
        raise ValueError(f"expected {MEMORY_SIZE_EXPECTED}")
    return value.strip() if isinstance(value, str) else value


def _iso_date(value: Any) -> Any:
    """Turn a TOML date or an ISO date text into ``YYYY-MM-DD``; leave other types."""
    if isinstance(value, dt.datetime):
        raise ValueError("expected a date such as 2025-12-31, not a date and time")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError("expected an ISO date (YYYY-MM-DD)") from None
    return value


#: A date key: a TOML date or ISO date text, kept as ``YYYY-MM-DD`` text.
_IsoDate = Annotated[str, BeforeValidator(_iso_date)]


class _Section(BaseModel):
    """A config table: strict types, unknown keys refused, assignments validated."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    #: The table name in the TOML file ("" for the whole file).
    SECTION: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            prefix = (self.SECTION,) if self.SECTION else ()
            raise ConfigError(_describe(exc, prefix=prefix)) from None


class InputConfig(_Section):
    """``[input]``: where transactions come from and how they are read."""

    SECTION: ClassVar[str] = "input"

    path: Annotated[str | None, _PATH] = None
    table: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header: bool = True
    names: list[str] | None = None
    date_format: str | None = None
    decimal: Literal[".", ","] = "."
    on_bad_rows: Literal["raise", "drop"] = "raise"
    max_drop_fraction: float = Field(0.5, ge=0, le=1)
    max_shared_order_fraction: float = Field(0.01, ge=0, le=1)
    min_date: _IsoDate = "1900-01-01"
    memory_limit: Annotated[str, BeforeValidator(_memory_size)] = DEFAULT_MEMORY_LIMIT
    engine: Literal["duckdb", "spark"] = "duckdb"


class FeaturesConfig(_Section):
    """``[features]``: the observation window."""

    SECTION: ClassVar[str] = "features"

    as_of: _IsoDate | None = None
    window_days: int | None = Field(None, ge=1)


class ScoringConfig(_Section):
    """``[scoring]``: bins, fixed edges and the frozen model."""

    SECTION: ClassVar[str] = "scoring"

    n_bins: int = 5
    edges: dict[str, list[float]] | None = None
    model: Annotated[str | None, _PATH] = None
    models_dir: Annotated[str, _PATH] = "models"
    quantiles: Literal["exact", "approx"] = "exact"
    approx_accuracy: int = Field(10000, ge=1)

    def spark_fit_options(self) -> dict[str, Any]:
        """Return the quantile options of :func:`rfm_engine.engines.spark.fit_scorer`."""
        return {"exact": self.quantiles == "exact", "accuracy": self.approx_accuracy}


class SegmentsConfig(_Section):
    """``[segments]``: the rule set (built-in name or TOML file)."""

    SECTION: ClassVar[str] = "segments"

    rules: Annotated[str, _TOML_PATH] = "rf-grid"


class OutputConfig(_Section):
    """``[output]``: where the weekly run writes, for which email tool, and compliance."""

    SECTION: ClassVar[str] = "output"

    dir: Annotated[str, _PATH] = "out"
    format: str = "generic"
    max_file_mb: float | None = Field(None, gt=0)
    max_file_rows: int | None = Field(None, ge=1)
    suppression: Annotated[list[str], _PATH] = Field(default_factory=list)
    no_suppression: bool = False
    max_suppression_age_days: int = Field(7, ge=0)
    allow_stale_suppression: bool = False
    consent: Annotated[str | None, _PATH] = None
    consent_required: bool = True

    @field_validator("suppression", mode="before")
    @classmethod
    def _one_file(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # one file: a one-element list

    def file_limits(self) -> dict[str, int | None]:
        """``max_rows`` and ``max_bytes`` per list file for the exports (None: the tool's)."""
        return {"max_rows": self.max_file_rows,
                "max_bytes": (None if self.max_file_mb is None
                              else int(self.max_file_mb * 1_000_000))}

    @field_validator("format")
    @classmethod
    def _layout(cls, value: str) -> str:
        from .campaigns.exports import LAYOUTS

        if value not in LAYOUTS:
            raise ValueError(f"expected one of {', '.join(map(repr, LAYOUTS))}")
        return value


class MigrationConfig(_Section):
    """``[migration]``: trigger lists, ``{list name: segment entered}``."""

    SECTION: ClassVar[str] = "migration"

    triggers: dict[str, str] = Field(default_factory=lambda: {
        "entered_at_risk": "at_risk", "became_champion": "champions"})


class ClusteringConfig(_Section):
    """``[clustering]``: optional k-means beside the rule segments."""

    SECTION: ClassVar[str] = "clustering"

    enabled: bool = False
    n_clusters: int | None = Field(None, ge=1)
    k_range: list[int] = Field(default_factory=lambda: [2, 10], min_length=2, max_length=2)
    sample_size: int = Field(20_000, ge=1)
    random_state: int = 0


class KPIConfig(_Section):
    """``[kpis]``: the KPI report of each weekly run (``rfm-engine kpis``: its ``clv_*`` keys)."""

    SECTION: ClassVar[str] = "kpis"

    period: Literal["month", "quarter"] = "month"
    churn_days: int | None = Field(90, ge=0)
    clv: bool = True
    clv_horizon: float = Field(52, gt=0)
    clv_model: Literal["bgnbd", "pareto-nbd"] = "bgnbd"
    clv_params: Annotated[str | None, _PATH] = None
    inputs: Annotated[dict[str, str], _PATH] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _kinds(cls, value: dict[str, str]) -> dict[str, str]:
        from .io.crm_inputs import INPUT_KINDS

        unknown = sorted(set(value) - set(INPUT_KINDS))
        if unknown:
            raise ValueError(f"unknown input kind(s) {', '.join(map(repr, unknown))}; "
                             f"expected some of {', '.join(INPUT_KINDS)}")
        return value


class Config(_Section):
    """A whole run configuration; every section has working defaults.

    Attributes are the file's tables (``config.input.path``, ``config.output.dir``...);
    ``source`` is the config file read (None for the defaults). Assigning a value
    validates it like the file's values (:class:`~rfm_engine.errors.ConfigError`).
    """

    input: InputConfig = Field(default_factory=InputConfig)
    columns: dict[str, str] = Field(default_factory=dict)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    migration: MigrationConfig = Field(default_factory=MigrationConfig)
    clustering: ClusteringConfig = Field(default_factory=ClusteringConfig)
    kpis: KPIConfig = Field(default_factory=KPIConfig)
    campaigns: list[dict[str, Any]] | None = None
    source: str | None = None

    #: Top-level names that are not keys of the file.
    NOT_IN_FILE: ClassVar[frozenset[str]] = frozenset({"source"})

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data (for manifests and tracking).

        Returns
        -------
        dict
            ``{"input": {"path": ...}, ..., "campaigns": ..., "source": ...}``.
        """
        return self.model_dump()

    def load_options(self) -> dict[str, Any]:
        """Return the keyword arguments of :func:`~rfm_engine.load_transactions` this sets.

        Returns
        -------
        dict
            ``columns``, ``as_of``, ``window_days`` and every ``[input]`` key but ``path``
            and ``engine``.
        """
        options = self.input.model_dump(exclude={"path", "engine"})
        return {**options, "columns": self.columns, "as_of": self.features.as_of,
                "window_days": self.features.window_days}

    def with_overrides(self, values: Mapping[str, Any], *,
                       names: Mapping[str, str] | None = None) -> Config:
        """Return a copy with some keys replaced, validated like the file's values.

        Parameters
        ----------
        values : mapping
            ``{"section.key": value}`` (``"columns"`` for the whole table); None values
            are skipped (not given). Paths are taken as they are: relative to the working
            folder, as command-line paths are.
        names : mapping, optional
            ``{"section.key": "--option"}``: how an error names the value (default: the
            key, e.g. ``[features] window_days``).

        Returns
        -------
        Config
            The effective configuration.

        Raises
        ------
        ConfigError
            A value of the wrong type; the message names the option or key.

        Examples
        --------
        >>> Config().with_overrides({"features.window_days": 30, "input.path": None}
        ...                         ).features.window_days
        30
        >>> Config().with_overrides({"features.window_days": 0},
        ...                         names={"features.window_days": "--window-days"})
        Traceback (most recent call last):
        rfm_engine.errors.ConfigError: --window-days: expected an integer >= 1, got 0 (an integer).
        """
        data = self.model_dump()
        for key, value in values.items():
            if value is None:
                continue
            *parents, last = key.split(".")
            target = data
            for part in parents:
                target = target[part]
            target[last] = value
        try:
            return Config.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, names=names or {})) from None

    def resolve_paths(self, base: str | os.PathLike[str]) -> None:
        """Make every relative path key, given or default, relative to ``base``.

        Parameters
        ----------
        base : str or path-like
            The config file's folder.
        """
        base = Path(base)

        def resolve(value: Any, marker: _IsPath) -> Any:
            if isinstance(value, str) and marker.when(value):
                return os.path.normpath(base / value)  # an absolute value stays as it is
            if isinstance(value, list):
                return [resolve(v, marker) for v in value]
            if isinstance(value, dict):
                return {k: resolve(v, marker) for k, v in value.items()}
            return value

        for section_name in type(self).model_fields:
            section = getattr(self, section_name)
            if not isinstance(section, _Section):
                continue
            for name, info in type(section).model_fields.items():
                marker = _path_marker(info.metadata)
                if marker is not None:
                    setattr(section, name, resolve(getattr(section, name), marker))


def _path_marker(metadata: list[Any]) -> _IsPath | None:
    return next((m for m in metadata if isinstance(m, _IsPath)), None)


def config_keys() -> list[str]:
    """Every key a config file may hold, as dotted names.

    Tables of free names (``[columns]``, ``[scoring.edges]``, ``[kpis.inputs]``,
    ``[migration.triggers]``) and ``[[campaigns]]`` are listed as one key each.

    Returns
    -------
    list of str

    Examples
    --------
    >>> keys = config_keys()
    >>> "clustering.enabled" in keys, "columns" in keys, "source" in keys
    (True, True, False)
    """
    return list(_keys(Config, ""))


def _keys(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        if model is Config and name in Config.NOT_IN_FILE:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            yield from _keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


# ---------------------------------------------------------------------------- messages

_EXPECTED = {
    "bool_type": "expected true or false",
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return "a date"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _where(loc: tuple[Any, ...]) -> str:
    """``("scoring", "edges", "recency_days", 1)`` -> ``[scoring.edges] recency_days[1]``."""
    loc = tuple(part for part in loc if part != "[key]")
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return "the file"
    index = "".join(f"[{p}]" for p in loc if isinstance(p, int))
    if len(names) == 1:
        return f"{names[0]}{index}" if index else f"[{names[0]}]"
    return f"[{'.'.join(names[:-1])}] {names[-1]}{index}"


def _expected(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("' or '", "', '")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        what = "an integer" if isinstance(bound, int) else "a number"
        return f"expected {what} {bounds[kind]} {bound:g}"
    if kind in ("too_short", "too_long"):
        return f"expected {ctx.get('min_length', ctx.get('max_length'))} values"
    return error["msg"][0].lower() + error["msg"][1:]


def _describe(exc: ValidationError, *, prefix: tuple[str, ...] = (),
              names: Mapping[str, str] | None = None) -> str:
    """One line for the first error: the key (or option), what was expected, the value."""
    errors = exc.errors()
    error = errors[0]
    loc = prefix + tuple(error["loc"])
    dotted = ".".join(str(p) for p in loc if isinstance(p, str) and p != "[key]")
    option = next((names[k] for k in sorted(names or {}, key=len, reverse=True)
                   if dotted == k or dotted.startswith(k + ".")), None)
    where = option or _where(loc)
    more = f" ({len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key{more}."
    if "[key]" in error["loc"]:
        return f"{where}: {_expected(error)}{more}."
    return f"{where}: {_expected(error)}, got {_show(error['input'])}{more}."


def _show(value: Any) -> str:
    """Show a value as the file spells it, with its TOML type."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dt.date | dt.time):
        return f"{value.isoformat()} (a date)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_toml_type(value)})"


def _unknown_keys(data: dict[str, Any], source: str) -> None:
    """Refuse unknown tables and keys with the allowed names, before type checks."""
    sections = {name: info.annotation for name, info in Config.model_fields.items()
                if name not in Config.NOT_IN_FILE}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(sections))}.")
    for name, model in sections.items():
        table = data.get(name)
        if not (isinstance(model, type) and issubclass(model, _Section)
                and isinstance(table, dict)):
            continue
        allowed = set(model.model_fields)
        extra = sorted(set(table) - allowed)
        if extra:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(extra)} in [{name}]; "
                              f"allowed: {', '.join(sorted(allowed))}.")


def load_config(path: str | Path | None) -> Config:
    """Read a TOML run configuration; ``None`` gives the defaults.

    Parameters
    ----------
    path : str, Path or None
        The TOML file.

    Returns
    -------
    Config
        Relative paths, given or default, resolved against the file's folder.

    Raises
    ------
    ConfigError
        Unreadable TOML, unknown sections or keys, values of the wrong type.

    Examples
    --------
    >>> load_config(None).segments.rules
    'rf-grid'
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    source = str(path)
    _unknown_keys(data, source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    config.resolve_paths(path.resolve().parent)
    config.source = source
    return config
