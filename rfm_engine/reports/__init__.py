"""Human-readable reports: the run summary and the KPI report (self-contained HTML).

``summary_report`` (segment and campaign tables, plots, migration heatmap) and
``kpi_report`` (KPI tables, cohort heatmap, CLV and the optional CRM-input KPIs).
``templates/`` holds their jinja2 pages (package data, autoescape on; rendered by
``rfm_engine.io._html``, which the stability report of ``measurement`` shares).

May import: ``rfm_engine.campaigns``, ``rfm_engine.measurement``, ``rfm_engine.core``,
``rfm_engine.io`` and the bottom modules; not ``datasets``, ``runs``, ``integrations``
or the CLI.
"""
