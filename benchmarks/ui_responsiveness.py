"""How responsive the marketers' page is over one big run (README: The marketers' page).

    python benchmarks/ui_responsiveness.py out            # DIR of rfm-engine run --output-dir

Drives the real app with Streamlit's AppTest (the script runs in this process, so CPU time
is what the page costs): the first load (customers.parquet read once), then a click on each
page over the cached run, a segment picked on "Build a list" (suppression, consent,
quarantine, holdout by the weekly run's code) and "Prepare the download" (export and
verification). Prints wall and CPU seconds per step; CPU time is the number to quote on a
loaded machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rfm_engine.ui import app as app_module
from rfm_engine.ui.folders import run_folders
from rfm_engine.ui.server import RUNS_ENV


def _timed(label: str, action) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    at = action()
    if at is not None and at.exception:
        sys.exit(f"{label}: {at.exception}")
    print(f"{label:<46} wall {time.perf_counter() - wall:6.2f} s   "
          f"CPU {time.process_time() - cpu:6.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="the runs folder")
    parser.add_argument("--segment", default="champions", help="segment for Build a list")
    args = parser.parse_args()
    runs = run_folders(args.runs)
    if not runs:
        sys.exit(f"no run in {args.runs}")
    customers = len(runs[-1].customers)
    print(f"run {runs[-1].path}: {customers:,} customers", flush=True)
    os.environ[RUNS_ENV] = str(args.runs)
    at = AppTest.from_file(str(Path(app_module.__file__)), default_timeout=600)
    _timed("first load: Overview (reads the run)", at.run)
    _timed("Overview again (cached run)", at.run)
    for page in ("Trends", "Campaigns", "KPIs and CLV", "Customer lookup"):
        _timed(f"open {page}", lambda p=page: at.sidebar.radio(key="page").set_value(p).run())
    some = str(runs[-1].customers["customer_id"].iloc[len(runs[-1].customers) // 2])
    _timed(f"Customer lookup: one id in {len(runs)} run(s)",
           lambda: at.text_input(key="lookup_id").input(some).run())
    _timed("open Build a list",
           lambda: at.sidebar.radio(key="page").set_value("Build a list").run())
    _timed(f"Build a list: pick {args.segment}",
           lambda: at.multiselect(key="list_segments").select(args.segment).run())
    _timed("Build a list: show email addresses (no rebuild)",
           lambda: at.checkbox(key="list_emails").check().run())
    _timed("Build a list: holdout 0.2 (rebuild)",
           lambda: at.slider(key="list_holdout").set_value(0.2).run())
    _timed("Build a list: Prepare the download",
           lambda: at.button(key="list_prepare").click().run())
    print(f"targets: {[m.value for m in at.metric if m.label == 'Targets']}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
