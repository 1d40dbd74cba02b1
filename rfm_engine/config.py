"""Run configuration: a TOML file whose sections feed each pipeline step.

Example ``weekly.toml``::

    [input]
    path = "data/sample/transactions.csv"   # a CSV or Parquet file, a folder, a .duckdb file
    table = "sales"                     # the table, when path is a DuckDB database
    delimiter = ","                     # CSV delimiter (default: sniffed)
    encoding = "utf-8"                  # CSV encoding (default: UTF-8, BOM or not)
    decimal = "."                       # or ",": numbers written 12,50 in text files
    date_format = "%Y-%m-%d %H:%M:%S"   # optional: ISO 8601 is read without it
    on_bad_rows = "raise"               # or "drop"
    max_drop_fraction = 0.5
    min_date = "1900-01-01"             # orders dated before it are refused (or dropped)

    [columns]                           # canonical = "Source Column"
    customer_id = "Customer ID"
    order_id = "Invoice"
    order_date = "InvoiceDate"
    quantity = "Quantity"
    unit_price = "Price"

    [features]
    as_of = "2025-12-31"                # default: the latest transaction date
    window_days = 730                   # optional

    [scoring]
    n_bins = 5
    model = "models/model.skops"        # optional frozen model (or a scorer .json)
    models_dir = "models"               # .skops/.joblib models load only from here
    [scoring.edges]                     # optional fixed edges per dimension
    recency_days = [30, 90, 180, 365]

    [segments]
    rules = "rf-grid"                   # a built-in name or a TOML file

    [output]                            # the weekly run (rfm-engine run)
    dir = "out"                         # runs go to out/<as_of>/
    format = "generic"                  # or mailchimp, klaviyo, hubspot, braze
    suppression = ["suppression.csv"]   # unsubscribed, bounced, complained, erased
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
    k_range = [2, 8]                    # k chosen by silhouette in this range, or:
    n_clusters = 5                      # a fixed k
    sample_size = 20000                 # customers sampled to fit and to score k
    random_state = 0                    # seed of the sample and of k-means

    [kpis]                              # the KPI report of each run (kpis.html)
    period = "month"                    # or "quarter"
    churn_days = 90                     # lost after 90 days without a purchase
    clv = true                          # BG/NBD + Gamma-Gamma, weeks
    clv_horizon = 52
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

Relative paths are resolved against the config file's folder. Command-line options
override the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["ClusteringConfig", "Config", "FeaturesConfig", "InputConfig", "KPIConfig",
           "MigrationConfig",
           "OutputConfig",
           "ScoringConfig", "SegmentsConfig", "load_config"]


@dataclass
class InputConfig:
    """``[input]``: where transactions come from and how they are read."""

    path: str | None = None
    table: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    date_format: str | None = None
    decimal: str = "."
    on_bad_rows: str = "raise"
    max_drop_fraction: float = 0.5
    min_date: str = "1900-01-01"


@dataclass
class FeaturesConfig:
    """``[features]``: the observation window."""

    as_of: str | None = None
    window_days: int | None = None


@dataclass
class ScoringConfig:
    """``[scoring]``: bins, fixed edges and the frozen model."""

    n_bins: int = 5
    edges: dict[str, list[float]] | None = None
    model: str | None = None
    models_dir: str = "models"


@dataclass
class SegmentsConfig:
    """``[segments]``: the rule set (built-in name or TOML file)."""

    rules: str = "rf-grid"


@dataclass
class OutputConfig:
    """``[output]``: where the weekly run writes, and for which email tool."""

    dir: str = "out"
    format: str = "generic"
    suppression: list[str] = field(default_factory=list)
    no_suppression: bool = False
    max_suppression_age_days: int = 7
    allow_stale_suppression: bool = False
    consent: str | None = None
    consent_required: bool = True


@dataclass
class MigrationConfig:
    """``[migration]``: trigger lists, ``{list name: segment entered}``."""

    triggers: dict[str, str] = field(default_factory=lambda: {
        "entered_at_risk": "at_risk", "became_champion": "champions"})


@dataclass
class ClusteringConfig:
    """``[clustering]``: optional k-means beside the rule segments."""

    enabled: bool = False
    n_clusters: int | None = None
    k_range: list[int] = field(default_factory=lambda: [2, 10])
    sample_size: int = 20_000
    random_state: int = 0


@dataclass
class KPIConfig:
    """``[kpis]``: the KPI report written with each weekly run."""

    period: str = "month"
    churn_days: int | None = 90
    clv: bool = True
    clv_horizon: float = 52
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    """A whole run configuration; every section has working defaults."""

    input: InputConfig = field(default_factory=InputConfig)
    columns: dict[str, str] = field(default_factory=dict)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    kpis: KPIConfig = field(default_factory=KPIConfig)
    campaigns: list[dict[str, Any]] | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data (for manifests and tracking)."""
        from dataclasses import asdict

        return asdict(self)


_SECTIONS = {"input": InputConfig, "features": FeaturesConfig, "scoring": ScoringConfig,
             "segments": SegmentsConfig, "output": OutputConfig, "migration": MigrationConfig,
             "clustering": ClusteringConfig, "kpis": KPIConfig}
_PATH_KEYS = {("input", "path"), ("scoring", "model"), ("scoring", "models_dir"),
              ("output", "dir"), ("output", "consent")}


def _section(cls: type, data: Any, *, source: str, name: str, base: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: [{name}] must be a table.")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in [{name}]; "
                          f"allowed: {', '.join(sorted(allowed))}.")
    values = dict(data)
    for key, value in values.items():
        is_path = (name, key) in _PATH_KEYS or (
            (name, key) == ("segments", "rules") and str(value).endswith(".toml"))
        if is_path and isinstance(value, str):
            values[key] = os.path.normpath(base / value)  # an absolute value stays as it is
    if name == "kpis" and isinstance(values.get("inputs"), dict):
        values["inputs"] = {k: os.path.normpath(base / v) for k, v in values["inputs"].items()}
    if name == "output" and isinstance(values.get("suppression"), list):
        values["suppression"] = [os.path.normpath(base / p) for p in values["suppression"]]
    return cls(**values)


def load_config(path: str | Path | None) -> Config:
    """Read a TOML run configuration; ``None`` gives the defaults.

    Parameters
    ----------
    path : str, Path or None
        The TOML file.

    Returns
    -------
    Config

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
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    source, base = str(path), path.resolve().parent
    known = {"columns", "campaigns", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(known))}.")
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ConfigError(f"{source}: [columns] must map canonical names to column names "
                          "(strings).")
    sections = {name: _section(cls, data.get(name, {}), source=source, name=name, base=base)
                for name, cls in _SECTIONS.items()}
    campaigns = data.get("campaigns")
    if campaigns is not None and not (
            isinstance(campaigns, list) and all(isinstance(c, dict) for c in campaigns)):
        raise ConfigError(f"{source}: campaigns must be [[campaigns]] tables.")
    return Config(columns=dict(columns), source=source, campaigns=campaigns, **sections)
