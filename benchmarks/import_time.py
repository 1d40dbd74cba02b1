"""Process start: how long the imports of each ``rfm-engine`` command take.

Each command runs as the installed ``rfm-engine`` on a small sample (``rfm-engine sample``,
300 customers) with ``PYTHONPROFILEIMPORTTIME=1`` (``python -X importtime``): the import
time is the sum of the top-level entries of that log, the best of ``--repeat`` fresh
processes; the heavy libraries loaded are read from the same log. Wall is the whole
process (best of the runs), work included. Issue 11's target: imports of a command at
most 1 s. The profiler adds a little to the import time it reports. "Of which at start":
the imports before the command's first step line (``<step> ...``); the rest are imported
by the steps that use them (scipy for the CLV fit, matplotlib for the charts).

On a busy machine wall times say little, so the modules the command imported (the
top-level entries of the log, in order) are also imported again by a fresh ``python -c``
without the profiler, timed with ``time.process_time()``: the CPU time of the imports
alone (best of the runs), which other processes sharing the cores inflate far less.

Examples
--------
    .venv/bin/python benchmarks/import_time.py              # every command, best of 5
    .venv/bin/python benchmarks/import_time.py --repeat 3 --commands features,segment
    # an older version, for comparison (its package imported instead of the installed one):
    git archive REV rfm_engine | tar -x -C /tmp/old
    .venv/bin/python benchmarks/import_time.py --source /tmp/old
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RFM = str(Path(sys.executable).with_name("rfm-engine"))
HEAVY = ("sklearn", "scipy", "matplotlib", "mlflow")
_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)")


def commands(sample: Path, out: Path) -> dict[str, list[str]]:
    """Command label -> arguments, on the sample in ``sample``, writing into ``out``."""
    tx = str(sample / "transactions.csv")
    config = ["--config", str(out / "examples" / "demo.toml")]
    return {
        "--help": ["--help"],
        "segment --help": ["segment", "--help"],
        "sample": ["sample", str(out / "sample"), "--customers", "50"],
        "features": ["features", tx, *config, "-o", str(out / "f.csv"), "--force"],
        "clv-summary": ["clv-summary", tx, *config, "-o", str(out / "s.csv"), "--force"],
        "segment": ["segment", tx, *config, "-o", str(out / "seg.csv"), "--force",
                    "--no-tracking"],
        "kpis": ["kpis", tx, *config, "-o", str(out / "k.csv"), "--force"],
        "clv": ["clv", tx, *config, "-o", str(out / "clv.csv"), "--force"],
        "run": ["run", *config, "--input", tx, "--suppression",
                str(sample / "suppression.csv"), "--consent", str(sample / "consent.csv"),
                "--output-dir", str(out / "runs"), "--force", "--no-tracking"],
    }


def measure(args: list[str]) -> tuple[float, float, float, list[str], list[str]]:
    """Run the command once; return (import s, of which before the first step, wall s,
    heavy libraries, top-level modules)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "RFM_ENGINE_NO_TRACKING": "1"}
    start = time.perf_counter()
    # Not -q: the step lines ("<step> ...", stderr, no terminal so no bars) tell the imports
    # of the process start from those of the steps that use a library.
    result = subprocess.run([RFM, *args], env=env, capture_output=True, text=True,
                            check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"rfm-engine {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    total, at_start, started, loaded, top = 0, 0, False, set(), []
    for line in result.stderr.splitlines():
        match = _LINE.match(line)
        if match:
            loaded.add(match[3].split(".")[0])
            if len(match[2]) == 1:  # top level: its cumulative time includes its children
                total += int(match[1])
                at_start += 0 if started else int(match[1])
                top.append(match[3])
        elif line.endswith(" ..."):
            started = True
    return (total / 1e6, at_start / 1e6, wall, [name for name in HEAVY if name in loaded],
            top)


def import_cpu(modules: list[str]) -> float:
    """CPU seconds a fresh interpreter spends importing ``modules`` (in order)."""
    code = ("import importlib, time\n"
            "start = time.process_time()\n"
            f"for name in {modules!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError:\n"  # a private module of the startup (site, encodings)
            "        pass\n"
            "print(time.process_time() - start)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tempfile.gettempdir())
    return float(result.stdout)


def main() -> None:
    """Print a Markdown table: command, import time, wall time, heavy libraries."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="Runs per command (best kept).")
    parser.add_argument("--commands", help="Comma-separated labels (default: all).")
    parser.add_argument("--source", type=Path, help="Import rfm_engine from this folder "
                        "(PYTHONPATH) instead of the installed package.")
    options = parser.parse_args()
    if options.source is not None:
        os.environ["PYTHONPATH"] = str(options.source.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # The demo config's paths (../data/sample/...) resolve to this sample from its copy.
        subprocess.run([RFM, "-q", "sample", str(folder / "data" / "sample"), "--customers",
                        "300"], check=True)
        (folder / "examples").mkdir()
        shutil.copy(ROOT / "examples" / "demo.toml", folder / "examples" / "demo.toml")
        table = commands(folder / "data" / "sample", folder)
        chosen = options.commands.split(",") if options.commands else list(table)
        print("| command | imports, CPU | imports, wall | of which at start | process wall "
              "| heavy libraries loaded |")
        print("|---|---:|---:|---:|---:|---|")
        for label in chosen:
            runs = [measure(table[label]) for _ in range(options.repeat)]
            heavy, modules = runs[0][3], runs[0][4]
            cpu = min(import_cpu(modules) for _ in range(options.repeat))
            print(f"| `rfm-engine {label}` | {cpu:.2f} s | {min(r[0] for r in runs):.2f} s | "
                  f"{min(r[1] for r in runs):.2f} s | {min(r[2] for r in runs):.2f} s | "
                  f"{', '.join(heavy) or '-'} |", flush=True)


if __name__ == "__main__":
    main()
