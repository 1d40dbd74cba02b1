"""The weekly job: load, segment, plan campaigns, measure, then publish one run folder.

``weekly`` (``run_weekly``: compute everything, then write every file of
``<output_dir>/<as_of>/`` with its manifest, under a lock per folder and date).

May import: every layer below it and ``rfm_engine.integrations`` (the frozen model store);
only ``rfm_engine.cli`` imports it.
"""
