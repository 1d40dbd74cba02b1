"""rfm-engine: transactions to RFM segments, campaign target lists and CRM KPIs.

The pipeline, one module per step::

    load_transactions  ->  customer_features / clv_summary  ->  RFMScorer  ->  RuleSet
    (loading, sources)     (features)                           (scoring)      (segments)

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
    "CANONICAL_COLUMNS": "columns", "ColumnMap": "columns", "parse_column_spec": "columns",
    "Config": "config", "load_config": "config",
    "ComplianceError": "errors", "ConfigError": "errors", "DataError": "errors",
    "EmptyResultError": "errors", "InputError": "errors", "MissingColumnsError": "errors",
    "ModelIntegrityError": "errors", "OutputExistsError": "errors", "RFMEngineError": "errors",
    "TIME_UNITS": "features", "clv_summary": "features", "customer_features": "features",
    "Transactions": "loading", "connect": "loading", "load_transactions": "loading",
    "Segmentation": "pipeline", "score_customers": "pipeline", "segment_customers": "pipeline",
    "segment_summary": "pipeline",
    "CLEANING_RULES": "quality", "DataQualityReport": "quality",
    "BinsCollapsedWarning": "scoring", "RFMScorer": "scoring", "load_scorer": "scoring",
    "save_scorer": "scoring",
    "LintReport": "segments", "Rule": "segments", "RuleSet": "segments",
    "builtin_rule_sets": "segments", "lint_rules": "segments", "load_rules": "segments",
    "Campaign": "campaigns", "DEFAULT_PLAN": "campaigns", "assign_campaigns": "campaigns",
    "campaign_counts": "campaigns",
    "SuppressionList": "suppression", "load_suppression": "suppression",
    "LAYOUTS": "exports", "export_frame": "exports",
    "Migration": "migration", "migrate": "migration",
    "RunSummary": "summary_report",
    "RunResult": "weekly", "run_weekly": "weekly",
    "Clustering": "clustering", "RFMClusterer": "clustering", "cluster_customers": "clustering",
    "apply_clusterer": "clustering", "name_clusters": "clustering",
    "SegmentationModel": "model", "load_model": "model_store", "save_model": "model_store",
    "StabilityReport": "stability", "stability_report": "stability",
    "KPITable": "kpis", "transaction_kpis": "kpis", "cohort_retention": "kpis",
    "KPIReport": "kpi_report", "build_kpi_report": "kpi_report",
    "read_input": "crm_inputs",
    "LiftReport": "lift", "campaign_lift": "lift", "before_after": "lift",
    "BetaGeoModel": "clv", "GammaGammaModel": "clv", "CLVResult": "clv", "fit_clv": "clv",
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
