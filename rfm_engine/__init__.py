"""rfm-engine: transactions to RFM segments, campaign target lists and CRM KPIs.

The pipeline, one module per step::

    load_transactions  ->  customer_features / clv_summary  ->  RFMScorer  ->  RuleSet
    (io.loading)           (core.features)                      (core.scoring) (core.segments)

The subpackages are layers, each importing only the ones below it: ``io`` (data in and
out), ``core`` (RFM), ``campaigns`` and ``measurement``, ``reports`` and ``datasets``,
``runs`` and ``integrations``, then ``cli``. Every public name is importable from here.

Examples
--------
>>> import pandas as pd
>>> import rfm_engine as rfm
>>> raw = pd.DataFrame({"customer_id": ["a", "a", "b", "c"],
...                     "order_date": ["2024-01-01", "2024-03-01", "2024-02-01", "2024-01-15"],
...                     "amount": [20.0, 35.0, 80.0, 5.0]})
>>> customers = rfm.customer_features(rfm.load_transactions(raw))
>>> result = rfm.segment_customers(customers, n_bins=3)
>>> result.customers[["customer_id", "rfm_cell"]].values.tolist()
[['a', '332'], ['b', '213'], ['c', '111']]
"""

import importlib
from typing import Any

# Public name -> module. Imported on first use, so `rfm-engine --help` stays fast.
_EXPORTS = {
    "Config": "config", "load_config": "config",
    "ComplianceError": "errors", "ConfigError": "errors", "DataError": "errors",
    "EmptyResultError": "errors", "InputError": "errors", "MissingColumnsError": "errors",
    "ModelIntegrityError": "errors", "OutputExistsError": "errors", "RFMEngineError": "errors",
    "CANONICAL_COLUMNS": "io.columns", "ColumnMap": "io.columns",
    "parse_column_spec": "io.columns",
    "Transactions": "io.loading", "connect": "io.loading", "load_transactions": "io.loading",
    "CLEANING_RULES": "io.quality", "DataQualityReport": "io.quality",
    "read_input": "io.crm_inputs",
    "TIME_UNITS": "core.features", "clv_summary": "core.features",
    "customer_features": "core.features",
    "Segmentation": "core.pipeline", "score_customers": "core.pipeline",
    "segment_customers": "core.pipeline", "segment_summary": "core.pipeline",
    "BinsCollapsedWarning": "core.scoring", "RFMScorer": "core.scoring",
    "load_scorer": "core.scoring", "save_scorer": "core.scoring",
    "LintReport": "core.segments", "Rule": "core.segments", "RuleSet": "core.segments",
    "builtin_rule_sets": "core.segments", "lint_rules": "core.segments",
    "load_rules": "core.segments",
    "Clustering": "core.clustering", "RFMClusterer": "core.clustering",
    "cluster_customers": "core.clustering", "apply_clusterer": "core.clustering",
    "name_clusters": "core.clustering",
    "SegmentationModel": "core.model",
    "Campaign": "campaigns.plan", "DEFAULT_PLAN": "campaigns.plan",
    "assign_campaigns": "campaigns.assign", "campaign_counts": "campaigns.assign",
    "SuppressionList": "campaigns.suppression", "load_suppression": "campaigns.suppression",
    "LAYOUTS": "campaigns.exports", "export_frame": "campaigns.exports",
    "Migration": "measurement.migration", "migrate": "measurement.migration",
    "StabilityReport": "measurement.stability", "stability_report": "measurement.stability",
    "KPITable": "measurement.kpis", "transaction_kpis": "measurement.kpis",
    "cohort_retention": "measurement.kpis",
    "LiftReport": "measurement.lift", "campaign_lift": "measurement.lift",
    "before_after": "measurement.lift",
    "BetaGeoModel": "measurement.clv", "GammaGammaModel": "measurement.clv",
    "CLVResult": "measurement.clv", "fit_clv": "measurement.clv",
    "RunSummary": "reports.summary_report",
    "KPIReport": "reports.kpi_report", "build_kpi_report": "reports.kpi_report",
    "RunResult": "runs.weekly", "run_weekly": "runs.weekly",
    "load_model": "integrations.model_store", "save_model": "integrations.model_store",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rfm_engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "BetaGeoModel",
    "BinsCollapsedWarning",
    "CANONICAL_COLUMNS",
    "CLEANING_RULES",
    "CLVResult",
    "Campaign",
    "Clustering",
    "ColumnMap",
    "ComplianceError",
    "Config",
    "ConfigError",
    "DEFAULT_PLAN",
    "DataError",
    "DataQualityReport",
    "EmptyResultError",
    "GammaGammaModel",
    "InputError",
    "KPIReport",
    "KPITable",
    "LAYOUTS",
    "LiftReport",
    "LintReport",
    "Migration",
    "MissingColumnsError",
    "ModelIntegrityError",
    "OutputExistsError",
    "RFMClusterer",
    "RFMEngineError",
    "RFMScorer",
    "Rule",
    "RuleSet",
    "RunResult",
    "RunSummary",
    "Segmentation",
    "SegmentationModel",
    "StabilityReport",
    "SuppressionList",
    "TIME_UNITS",
    "Transactions",
    "apply_clusterer",
    "assign_campaigns",
    "before_after",
    "build_kpi_report",
    "builtin_rule_sets",
    "campaign_counts",
    "campaign_lift",
    "cluster_customers",
    "clv_summary",
    "cohort_retention",
    "connect",
    "customer_features",
    "export_frame",
    "fit_clv",
    "lint_rules",
    "load_config",
    "load_model",
    "load_rules",
    "load_scorer",
    "load_suppression",
    "load_transactions",
    "migrate",
    "name_clusters",
    "parse_column_spec",
    "read_input",
    "run_weekly",
    "save_model",
    "save_scorer",
    "score_customers",
    "segment_customers",
    "segment_summary",
    "stability_report",
    "transaction_kpis",
]
