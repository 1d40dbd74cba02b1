"""The wheel ships every file the package reads (issue 10).

Building a wheel in a test is slow; what decides whether a file ships is
``[tool.setuptools.package-data]`` in ``pyproject.toml`` (the wheel holds the ``.py`` files of
the packages ``packages.find`` finds, plus the files these globs match). So: every file of
``rfm_engine/`` that is not Python source is matched by a glob of its package, and the
package finds its data through ``importlib.resources``. Checked by hand with a wheel built by
``pip wheel . --no-deps`` installed in a fresh venv: ``rfm-engine sample`` and ``run`` work.
"""

import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import rfm_engine
from rfm_engine.core.segments import builtin_rule_sets

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rfm_engine"
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "setuptools"]


def _data_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
                  and "__pycache__" not in p.parts)


def test_every_data_file_of_the_package_is_package_data():
    globs = SETUPTOOLS["package-data"]
    unshipped = []
    for path in _data_files():
        relative = path.relative_to(ROOT)
        shipped = any(
            fnmatch(relative.as_posix(), f"{package.replace('.', '/')}/{pattern}")
            for package, patterns in globs.items() for pattern in patterns)
        if not shipped:
            unshipped.append(relative.as_posix())
    assert unshipped == []
    assert any(p.suffix == ".j2" for p in _data_files())  # the walk sees the templates


def test_every_subpackage_is_found_by_packages_find():
    include = SETUPTOOLS["packages"]["find"]["include"]
    packages = {".".join(p.relative_to(ROOT).parent.parts) for p in PACKAGE.rglob("__init__.py")}
    assert "rfm_engine.core.segments" in packages
    assert all(any(fnmatch(name, pattern) for pattern in include) for name in packages)


def test_the_package_reads_its_data_as_resources():
    templates = resources.files(rfm_engine).joinpath("reports", "templates")
    assert {"summary.html.j2", "kpis.html.j2"} <= {p.name for p in templates.iterdir()}
    builtin = resources.files("rfm_engine.core.segments").joinpath("builtin")
    assert sorted(builtin_rule_sets()) == sorted(
        p.name.removesuffix(".toml") for p in builtin.iterdir() if p.name.endswith(".toml"))
