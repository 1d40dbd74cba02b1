"""Execute the notebooks in notebooks/ end to end and check what they report.

Each notebook runs with nbclient in a fresh ``python3`` kernel of this very interpreter (the
venv's), from an empty working folder, with ``TMPDIR`` pointing into pytest's temporary folder
(the notebooks keep everything they write under ``tempfile.mkdtemp()``). The last cell of each
notebook prints a JSON summary, which the tests parse.

The kernel. ipykernel's wheel ships a ``python3`` kernelspec whose argv is the bare word
``python``, and a user-wide spec of the same name (``~/.local/share/jupyter/kernels``) may
point at another interpreter. So the tests install their own ``python3`` spec, with the
absolute ``sys.executable``, into a temporary prefix and put it first on ``JUPYTER_PATH``:
it resolves the same in a fresh CI venv, needs no ``python -m ipykernel install`` and writes
nothing into the venv or the home folder. The notebooks report ``sys.executable``, checked
against the test's own.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPLORE = "01_explore_rfm.ipynb"
TUNE = "02_tune_segmentation.ipynb"

# Configurations notebook 02 logs: n_bins x rule sets, k-means (auto k, fixed k), stability.
TUNE_RUNS = 3 * 3 + 2 + 3


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data folder whose ``python3`` kernelspec runs ``sys.executable``."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    spec = Path(install_kernelspec(kernel_name="python3", prefix=str(prefix)))
    assert json.loads((spec / "kernel.json").read_text())["argv"][0] == sys.executable
    return prefix / "share" / "jupyter"


def run_notebook(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 jupyter_path: Path) -> tuple[nbformat.NotebookNode, dict, float]:
    """Execute a notebook; return it with outputs, its JSON summary and the seconds taken."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable, spec.resource_dir

    workdir = tmp_path / "cwd"
    scratch = tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's tempfile.mkdtemp() lands here
    # The notebooks name their own store; without this they could not fall back on one.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(cell.execution_count for cell in code), "a code cell did not run"
    assert list(workdir.iterdir()) == [], "the notebook wrote into its working folder"

    text = "".join(out.text for out in code[-1].outputs
                   if out.output_type == "stream" and out.name == "stdout")
    summary = json.loads(text)
    assert summary["python"] == sys.executable
    assert summary["prefix"] == sys.prefix
    assert Path(summary["temp_folder"]).parent == scratch
    return nb, summary, elapsed


@pytest.mark.parametrize("name", [EXPLORE, TUNE])
def test_notebook_is_stored_clean(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, "store without outputs"
    # No telemetry: the first cell sets the switch before anything imports MLflow.
    first = code[0].source
    switch = first.find('os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"')
    assert switch >= 0, "set MLFLOW_DISABLE_TELEMETRY in the first code cell"
    assert "mlflow" not in first[:switch] and "rfm_engine" not in first[:switch]


def test_explore_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          jupyter_path: Path) -> None:
    nb, s, _ = run_notebook(EXPLORE, tmp_path, monkeypatch, jupyter_path)

    assert 0 < s["rows_kept"] <= s["rows_read"]
    assert s["customers"] > 1000
    images = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # distributions, scores, segment bars

    # Ties collapse frequency bins but keep both ends of the 1..5 scale.
    for scores in s["effective_scores"].values():
        assert scores[0] == 1 and scores[-1] == 5
    for counts in s["score_counts"].values():
        assert sum(counts) == s["customers"]

    lint = s["lint"]
    assert {"rf-grid", "classic", "seed", "pymc"} <= set(lint)
    assert all(report["ok"] and not report["unreachable"] for report in lint.values())
    assert lint["rf-grid"]["covered"] == lint["rf-grid"]["cells"] == 125

    rf_grid, classic = s["segments"]["rf-grid"], s["segments"]["classic"]
    assert sum(rf_grid.values()) == sum(classic.values()) == s["customers"]
    assert rf_grid.pop("Other") == 0  # every cell is covered
    assert len(rf_grid) == 10 and all(n > 0 for n in rf_grid.values())
    assert classic["Other"] > 0 and sum(n > 0 for n in classic.values()) == 12


def test_tune_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       jupyter_path: Path) -> None:
    _, s, _ = run_notebook(TUNE, tmp_path, monkeypatch, jupyter_path)

    # Every configuration is one finished run in the notebook's own SQLite store.
    uri = s["tracking_uri"]
    assert uri.startswith("sqlite:///")
    db = Path(uri.removeprefix("sqlite:///"))
    assert db.parent == Path(s["temp_folder"]) and db.is_file()
    assert s["runs_logged"] == s["runs_found"] == TUNE_RUNS and s["run_ids_match"]
    with sqlite3.connect(db) as con:
        statuses = dict(con.execute(
            "SELECT status, COUNT(*) FROM runs WHERE lifecycle_stage = 'active' "
            "GROUP BY status").fetchall())
    assert statuses == {"FINISHED": TUNE_RUNS}
    assert s["model_version"] == 1
    assert (db.parent / "mlruns").is_dir()  # artifacts beside the database

    grid = s["grid"]
    assert {(row["n_bins"], row["rules"]) for row in grid} == {
        (n, r) for n in (3, 4, 5) for r in ("rf-grid", "classic", "seed")}
    for row in grid:
        assert row["segments_used"] > 0
        assert 0 < row["largest_share"] <= 1 and 0 <= row["unmatched_share"] <= 1
    by_config = {(row["n_bins"], row["rules"]): row for row in grid}
    assert by_config[5, "rf-grid"]["segments_used"] == 10
    assert by_config[5, "rf-grid"]["unmatched_share"] == 0
    # Rules written for 5 levels lose segments when scores stop at 3.
    assert by_config[3, "rf-grid"]["segments_used"] < by_config[5, "rf-grid"]["segments_used"]

    auto, fixed = s["clustering"]["auto"], s["clustering"]["fixed"]
    assert 2 <= auto["k"] <= 8 and fixed["k"] == 5
    for metrics in (auto, fixed):
        assert -1 <= metrics["adjusted_rand_index"] <= 1
        assert -1 <= metrics["silhouette"] <= 1
        assert metrics["inertia"] > 0

    assert set(s["stability"]) == {"rf-grid", "classic", "seed"}
    for report in s["stability"].values():
        assert report["comparisons"] == 5  # weeks=6
        for key in ("moved_frozen", "moved_refit", "refit_only"):
            assert 0 <= report[key] <= 1
