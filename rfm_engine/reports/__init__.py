"""Human-readable reports: the run summary and the KPI report (self-contained HTML).

``summary_report`` (segment and campaign tables, plots, migration heatmap) and
``kpi_report`` (KPI tables, cohort heatmap, CLV and the optional CRM-input KPIs).

May import: ``rfm_engine.campaigns``, ``rfm_engine.measurement``, ``rfm_engine.core``,
``rfm_engine.io`` and the bottom modules; not ``datasets``, ``runs``, ``integrations``
or the CLI.
"""
