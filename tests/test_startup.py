"""A command loads only what it runs (issue 11: process start).

scikit-learn, scipy and matplotlib cost more to import than the work of a small command; MLflow
is an optional extra. The engine's estimators follow scikit-learn's conventions without
importing it (rfm_engine/core/_estimator.py). The installed `rfm-engine` runs in a subprocess
with ``PYTHONPROFILEIMPORTTIME=1`` (``python -X importtime``), whose stderr names every module
imported: the assertions read that list, not a mock. The import time itself is measured in
``benchmarks/import_time.py`` (timings are not unit tests).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

RFM = str(Path(sys.executable).with_name("rfm-engine"))
ROOT = Path(__file__).resolve().parents[1]
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


def test_the_weekly_run_loads_no_heavy_library_up_front(tmp_path):
    # The estimators follow scikit-learn's conventions without importing it; k-means, CLV
    # (scipy), plots and MLflow are imported by the steps that use them.
    loaded = after_import("rfm_engine.runs.weekly", cwd=tmp_path)
    assert "rfm_engine.runs.weekly" in loaded
    assert packages(loaded) & HEAVY == set()


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


def test_segment_loads_no_heavy_library(tx, tmp_path):
    # The scorer and the rule segments are numpy and pandas code.
    modules = imported("segment", str(tx), "-o", str(tmp_path / "seg.csv"), "--no-tracking",
                       cwd=tmp_path)
    assert (tmp_path / "seg.csv").is_file()
    assert {"rfm_engine.core.scoring", "rfm_engine.core.pipeline"} <= modules
    assert packages(modules) & HEAVY == set()


def test_run_loads_scipy_for_clv_and_matplotlib_for_charts_only(tmp_path):
    # The demo on 300 customers, enough for the CLV fit to converge (a fit that does not
    # converge imports scikit-learn for its ConvergenceWarning).
    subprocess.run([RFM, "-q", "sample", str(tmp_path / "data" / "sample"), "--customers",
                    "300"], check=True, timeout=600)
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "demo.toml", tmp_path / "examples" / "demo.toml")
    sample = tmp_path / "data" / "sample"
    modules = imported("run", "--config", "examples/demo.toml", "--input",
                       str(sample / "transactions.csv"), "--suppression",
                       str(sample / "suppression.csv"), "--consent", str(sample / "consent.csv"),
                       "--output-dir", str(tmp_path / "runs"), "--no-tracking", cwd=tmp_path)
    assert (tmp_path / "runs").is_dir()
    assert {"rfm_engine.measurement.clv.models", "scipy.optimize", "matplotlib.figure"} <= modules
    assert packages(modules) & HEAVY == {"scipy", "matplotlib"}
    assert not {m for m in modules if m.startswith(("rfm_engine.core.clustering", "scipy.stats"))}
