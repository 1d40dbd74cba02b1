"""The marketers' page: ``rfm-engine ui``, a Streamlit app over the weekly run folders.

``folders`` (the run folders of ``DIR``, each read once: customers, segments, campaigns,
migration, triggers, KPIs), ``lists`` (build a send list from segments and filters, export
it through the weekly run's own assignment, suppression, formula quarantine, layouts and
post-write verification, and record each download), ``charts`` (the page's plotly
figures), ``app`` (the Streamlit script itself: the only module that imports streamlit).
Streamlit and plotly are the optional ``ui`` extra (``pip install 'rfm-engine[ui]'``);
``folders`` and ``lists`` need neither.

May import: ``rfm_engine.runs`` and every layer below it; only ``rfm_engine.cli`` imports
it (``rfm-engine ui`` starts ``app`` with Streamlit).
"""
