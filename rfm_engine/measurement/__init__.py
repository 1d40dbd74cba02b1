"""What is measured: KPIs, campaign lift, CLV, segment migration and stability.

``kpis`` (transaction KPIs and cohort retention), ``crm_kpis`` (KPIs of the optional CRM
inputs: CAC, NPS, CSAT, CES, support, leads, renewals, email), ``lift`` (targets vs
holdout, before and after), ``clv/`` (BG/NBD and Gamma-Gamma models, discounted value,
holdout, plots), ``migration`` (how customers moved between segments since the previous
run, trigger lists) and ``stability`` (frozen vs refitted scorer over weeks).

May import: ``rfm_engine.core``, ``rfm_engine.io`` and the bottom modules; not
``campaigns`` (an independent sibling), nor anything above.
"""
