"""A command loads only what it runs (issue 11: process start).

scikit-learn, scipy and matplotlib cost more to import than the work of a small command;
MLflow is an optional extra. The installed `rfm-engine` runs in a subprocess with
``PYTHONPROFILEIMPORTTIME=1`` (``python -X importtime``), whose stderr names every module
imported: the assertions read that list, not a mock. The import time itself is measured in
``benchmarks/import_time.py`` (timings are not unit tests).
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

RFM = str(Path(sys.executable).with_name("rfm-engine"))
#: Imported only by the commands that use them.
HEAVY = {"sklearn", "scipy", "matplotlib", "mlflow"}


def imported(*args: str, cwd: Path) -> set[str]:
    """Run the installed command; return the modules it imported (it must exit 0)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "RFM_ENGINE_NO_TRACKING": "1"}
    result = subprocess.run([RFM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.fixture(scope="module")
def tx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "tx.csv"
    pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c", "c", "c"],
        "order_id": ["1", "2", "3", "4", "5", "6", "7", "8"],
        "order_date": ["2024-01-01", "2024-02-11", "2024-03-31", "2024-01-21", "2024-03-02",
                       "2024-01-05", "2024-01-30", "2024-03-15"],
        "amount": [10.0, 20.0, 30.0, 100.0, 50.0, 5.0, 7.0, 9.0],
    }).to_csv(path, index=False)
    return path


def after_import(*modules: str, cwd: Path) -> set[str]:
    """Import ``modules`` in a fresh interpreter; return every module it then holds."""
    code = f"import sys, {', '.join(modules)}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                            text=True, timeout=600, check=True)
    return set(result.stdout.split())


def test_importing_the_cli_loads_no_heavy_library(tmp_path):
    loaded = after_import("rfm_engine", "rfm_engine.cli", "rfm_engine.runs.adhoc", cwd=tmp_path)
    assert {"rfm_engine.cli", "click"} <= loaded
    assert packages(loaded) & HEAVY == set()


def test_the_weekly_run_loads_no_clustering_or_plotting_library_up_front(tmp_path):
    # k-means only runs with [clustering] or a frozen clusterer; plots once they are drawn.
    loaded = after_import("rfm_engine.runs.weekly", cwd=tmp_path)
    assert "sklearn.base" in loaded  # the scorer
    assert not {m for m in loaded if m.startswith(("sklearn.cluster", "sklearn.metrics",
                                                   "matplotlib", "mlflow"))}


@pytest.mark.parametrize("args", [["--help"], ["segment", "--help"], ["run", "--help"],
                                  ["segments", "list"]], ids=" ".join)
def test_help_and_listings_load_no_heavy_library(args, tmp_path):
    assert packages(imported(*args, cwd=tmp_path)) & HEAVY == set()


@pytest.mark.parametrize("command", ["features", "clv-summary"])
def test_customer_tables_load_no_heavy_library(command, tx, tmp_path):
    modules = imported(command, str(tx), "-o", str(tmp_path / "out.csv"), cwd=tmp_path)
    assert (tmp_path / "out.csv").is_file()  # the command did its work
    assert "rfm_engine.core.features" in modules
    assert packages(modules) & HEAVY == set()


def test_sample_loads_no_heavy_library(tmp_path):
    modules = imported("sample", str(tmp_path / "sample"), "--customers", "20", cwd=tmp_path)
    assert (tmp_path / "sample" / "transactions.csv").is_file()
    assert packages(modules) & HEAVY == set()


def test_segment_loads_scikit_learn_for_the_scorer_only(tx, tmp_path):
    # The scorer is a scikit-learn transformer (sklearn.base pulls scipy in); clustering,
    # CLV, plots and MLflow stay out.
    modules = imported("segment", str(tx), "-o", str(tmp_path / "seg.csv"), "--no-tracking",
                       cwd=tmp_path)
    assert "sklearn.base" in modules
    assert packages(modules) & HEAVY == {"sklearn", "scipy"}
    assert not {m for m in modules if m.startswith(("sklearn.cluster", "matplotlib",
                                                    "rfm_engine.core.clustering",
                                                    "rfm_engine.measurement"))}
