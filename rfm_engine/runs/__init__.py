"""Runs: the weekly job (load, segment, plan, measure, publish a run folder) and one-off runs.

``weekly`` (``run_weekly``: compute everything of a run, under a lock per folder and date,
then hand it to ``publish``); ``publish`` (``publish_run``: write every file of
``<output_dir>/<as_of>/`` into a staging folder, re-read and verify the lists, write the
manifest, rename the folder into place);
``adhoc`` (``run_features``, ``run_clv_summary``, ``run_segment``, ``run_cluster``,
``run_kpis``, ``run_clv``, ``run_lift``: the one-off runs of a transactions file behind
``rfm-engine features``, ``clv-summary``, ``segment``, ``cluster``, ``kpis``, ``clv`` and
``lift``, written beside one output file).

May import: every layer below it and ``rfm_engine.integrations`` (the frozen model store);
only ``rfm_engine.cli`` imports it.
"""
