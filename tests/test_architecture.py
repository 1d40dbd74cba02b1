"""The layered layout (README: Layout) is a contract, not a convention.

`lint-imports` checks the contracts of ``[tool.importlinter]`` in ``pyproject.toml``: every
import points down a layer, and no module below ``rfm_engine.integrations`` imports MLflow.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import rfm_engine

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS = PYPROJECT["tool"]["importlinter"]["contracts"]
SUBPACKAGES = sorted(m.name for m in pkgutil.iter_modules(rfm_engine.__path__) if m.ispkg)


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


def test_every_module_of_the_package_has_a_layer():
    layers = next(c for c in CONTRACTS if c["type"] == "layers")
    named = {name.strip() for layer in layers["layers"]
             for name in layer.replace(":", "|").split("|")}
    children = {m.name for m in pkgutil.iter_modules(rfm_engine.__path__)}
    assert children - named == set(layers["exhaustive_ignores"])
    assert named <= children


def test_mlflow_is_imported_only_inside_integrations():
    # The static twin of the contract: the only `import mlflow` lines of the package.
    importers = set()
    for path in (ROOT / "rfm_engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                importers.add(path.relative_to(ROOT / "rfm_engine").as_posix())
    assert importers == {"integrations/tracking.py"}


def test_pyspark_is_imported_only_by_the_spark_engine():
    importers = set()
    for path in (ROOT / "rfm_engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "pyspark" or n.startswith("pyspark.") for n in names):
                importers.add(path.relative_to(ROOT / "rfm_engine").as_posix())
    assert importers and all(p.startswith("engines/spark/") for p in importers)


def test_mlflow_contract_covers_every_layer_below_integrations():
    # A module added to a layer (or a new layer) is under the mlflow contract too: only the
    # CLI and integrations may reach mlflow.
    layers = next(c for c in CONTRACTS if c["type"] == "layers")
    named = {name.strip() for layer in layers["layers"]
             for name in layer.replace(":", "|").split("|")}
    contract = next(c for c in CONTRACTS if c["id"] == "mlflow")
    assert contract["type"] == "forbidden" and contract["forbidden_modules"] == ["mlflow"]
    assert set(contract["source_modules"]) == {
        f"rfm_engine.{name}" for name in named - {"cli", "integrations"}}


def test_each_subpackage_says_what_lives_there_and_what_it_may_import():
    assert SUBPACKAGES == ["campaigns", "core", "datasets", "engines", "integrations", "io",
                           "measurement", "reports", "runs", "ui"]
    for name in SUBPACKAGES:
        doc = importlib.import_module(f"rfm_engine.{name}").__doc__ or ""
        assert "May import:" in doc, f"rfm_engine/{name}/__init__.py: no 'May import:'"


def test_readme_layout_has_one_line_per_subpackage():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme[readme.index("## Layout"):].split("```")[1]
    lines = [line.strip() for line in tree.splitlines()]
    for name in SUBPACKAGES:
        assert sum(line.startswith(f"{name}/ ") for line in lines) == 1, name
