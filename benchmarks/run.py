"""Benchmark rfm-engine against bare DuckDB, polars and pandas aggregations.

``make bench`` runs this script; see ``benchmarks/README.md`` for what is measured.

Examples
--------
    .venv/bin/python benchmarks/run.py                  # 1M, 10M, 50M rows -> RESULTS.md
    .venv/bin/python benchmarks/run.py --quick          # 100k rows, 1 run, < 1 minute
    .venv/bin/python benchmarks/run.py --sizes 1M --repeat 5 --contenders library,duckdb
    .venv/bin/python benchmarks/run.py --sizes 200M --contenders run,duckdb \
        --output benchmarks/RESULTS-large.md            # make bench-large
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import pyarrow.parquet as pq
from datagen import transactions_file
from heavy_tail import heavy_tail_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
BIN = Path(sys.executable).parent

#: Contender key -> label, in run order.
CONTENDERS = {
    "run": "rfm-engine run (weekly job, end to end)",
    "cli": "rfm-engine segment (CLI, end to end)",
    "library": "library pipeline (in-process)",
    "duckdb": "bare DuckDB SQL -> pandas",
    "polars": "bare polars (lazy)",
    "pandas": "bare pandas",
    "duckdb_rules": "DuckDB SQL, same rules, by hand",
    "polars_rules": "polars, same rules, by hand",
    "spark_run": "rfm-engine run --engine spark (local[2], end to end)",
    "spark_cli": "rfm-engine segment --engine spark (local[2], end to end)",
}
#: Bare R/F/M aggregations: none of the library's cleaning.
BARE = ("duckdb", "polars", "pandas")
#: The library's cleaning rules and purchase logic written by hand in one engine each.
SAME_WORK = ("duckdb_rules", "polars_rules")
#: The engine's own contenders: compared with the same-work references, not the bare ones.
ENGINE = ("run", "cli", "library", "spark_run", "spark_cli")
#: The Spark engine's contenders (issue 13): the same commands with --engine spark, Spark in
#: local mode with SPARK_MASTER cores; their peak memory is the process tree's (Python
#: driver + Spark's JVM + Python workers), see launch.py.
SPARK = ("spark_run", "spark_cli")
SPARK_MASTER = "local[2]"
#: Data generators: heavy-tailed customers (the issue-11 measurements) or the uniform sample.
DATA_KINDS = {"heavy": heavy_tail_file, "uniform": transactions_file}
#: Issue 11's targets: ratio to the fastest bare aggregation, and the peak memory of `run`.
TARGET_RATIO = {"run": 3.0, "cli": 1.5}
TARGET_PEAK_MIB = 2048
#: Sizes above this run once per contender by default (a 50M run takes minutes).
_REPEAT_UP_TO = 10_000_000
_START = time.perf_counter()


def log(message: str) -> None:
    """Progress line on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Measurement:
    size: int
    contender: str
    walls: list[float] = field(default_factory=list)
    peaks_mib: list[float] = field(default_factory=list)
    rss_before_mib: float | None = None
    checksum: tuple[int, int, float] | None = None

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def peak(self) -> float:
        return max(self.peaks_mib)


def _run_child(cmd: list[str], tag: str) -> tuple[float, float, str]:
    """Run ``cmd`` in a fresh process; return (wall s, peak RSS MiB, stdout).

    The command is forked from the small ``launch.py``, which reports the wall time, the
    command's own ``ru_maxrss`` (see there why not straight from this process) and the
    sampled peak of its process tree; the peak is the larger (the tree's for Spark, whose
    JVM is a child process).
    """
    work = DATA / "work"
    out_path, err_path, report = (work / f"{tag}.{ext}" for ext in ("out", "err", "rusage"))
    launcher = [sys.executable, "-S", str(HERE / "launch.py"), str(report)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        code = subprocess.run([*launcher, *cmd], stdout=out, stderr=err, cwd=work).returncode
    if code != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}:\n" + "\n".join(tail))
    wall, maxrss_kib, _, tree_kib = report.read_text().split()
    return float(wall), max(int(maxrss_kib), int(tree_kib)) / 1024, out_path.read_text()


def _driver_heap() -> str:
    """The driver heap the Spark contenders ran with (``RFM_ENGINE_SPARK_DRIVER_MEMORY``)."""
    from rfm_engine.engines.spark.session import driver_memory

    return driver_memory()


def measure_once(contender: str, path: Path, m: Measurement,
                 memory_limit: str | None = None) -> None:
    tag = f"{m.size}_{contender}"
    limit = ["--memory-limit", memory_limit] if memory_limit else []
    engine = ["--engine", "spark"] if contender in SPARK else []
    os.environ["RFM_ENGINE_SPARK_MASTER"] = SPARK_MASTER
    if contender in ("cli", "spark_cli"):
        output = DATA / "work" / f"segments_{m.size}_{contender}.parquet"
        cmd = [str(BIN / "rfm-engine"), "-q", "segment", str(path), "-o", str(output), "--force",
               "--no-tracking", *engine, *limit]
        wall, peak, _ = _run_child(cmd, tag)
        customers = pq.read_metadata(output).num_rows
        m.checksum = (customers, -1, float("nan"))
    elif contender in ("run", "spark_run"):
        # The weekly job as analysts run it: lists, reports, KPIs, CLV, manifest; no
        # suppression file (generated data has none), no MLflow; as of the file's last day.
        output = DATA / "work" / f"{contender}_{m.size}"
        cmd = [str(BIN / "rfm-engine"), "-q", "run", "--input", str(path), "--output-dir",
               str(output), "--no-suppression", "--no-tracking", "--force", *engine, *limit]
        wall, peak, _ = _run_child(cmd, tag)
        newest = max(output.glob("*/customers.parquet"), key=lambda p: p.stat().st_mtime)
        parts = sorted(newest.glob("*.parquet")) if newest.is_dir() else [newest]  # Spark: parts
        m.checksum = (sum(pq.read_metadata(p).num_rows for p in parts), -1, float("nan"))
    else:
        cmd = [sys.executable, str(HERE / "contenders.py"), contender, str(path)]
        _, peak, stdout = _run_child(cmd, tag)
        result = json.loads(stdout.strip().splitlines()[-1])
        wall = result["wall_s"]
        m.rss_before_mib = result["rss_before_mib"]
        m.checksum = (result["customers"], result["orders"], result["revenue"])
    m.walls.append(wall)
    m.peaks_mib.append(peak)


def _warm(path: Path) -> None:
    """Read the file once so every contender starts from the same warm page cache."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


def _check(ms: list[Measurement]) -> list[str]:
    """Warn when contenders disagree on customers, orders or revenue.

    The engine's contenders are checked against the same cleaning work by hand (they count
    purchases, not every order id: a return-only order is no purchase), the bare ones
    against bare DuckDB.
    """
    problems = []
    bare = next((m for m in ms if m.contender == "duckdb"), None)
    same = next((m for m in ms if m.contender == "duckdb_rules"), None)
    for m in ms:
        ref = same if m.contender in ENGINE + SAME_WORK else bare
        if ref is None or m is ref or m.checksum is None or ref.checksum is None:
            continue
        customers, orders, revenue = m.checksum
        if customers != ref.checksum[0]:
            problems.append(f"{m.contender}: {customers:,} customers, {ref.contender} "
                            f"{ref.checksum[0]:,}")
        if orders >= 0 and ref.checksum[1] >= 0 and orders != ref.checksum[1]:
            problems.append(f"{m.contender}: {orders:,} orders, {ref.contender} "
                            f"{ref.checksum[1]:,}")
        if revenue == revenue and abs(revenue - ref.checksum[2]) > 1e-6 * abs(ref.checksum[2]):
            problems.append(f"{m.contender}: revenue {revenue:,.2f}, {ref.contender} "
                            f"{ref.checksum[2]:,.2f}")
    return problems


def machine_info() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text().split()
    mem_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    cpu = next((line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        commit += " with uncommitted changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {len(os.sched_getaffinity(0))} cores usable ({os.cpu_count()} total)",
        "memory": f"{mem_gib:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{p} {version(p)}" for p in
                              ("rfm-engine", "duckdb", "polars", "pandas", "numpy", "pyarrow")),
        "commit": commit,
    }


def _size_label(rows: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if rows >= div and rows % div == 0:
            return f"{rows // div}{unit}"
    return f"{rows:,}"


def _parse_size(text: str) -> int:
    text = text.strip().replace("_", "").lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    value = int(float(text[:-1] if mult > 1 else text) * mult)
    if value < 1000:
        raise argparse.ArgumentTypeError(f"size {text!r} is below 1000 rows")
    return value


def _fastest(group: list[Measurement], keys: tuple[str, ...]) -> Measurement | None:
    return min((m for m in group if m.contender in keys), key=lambda m: m.best, default=None)


def _table_rows(ms: list[Measurement]) -> list[list[str]]:
    rows = []
    for size in dict.fromkeys(m.size for m in ms):
        group = [m for m in ms if m.size == size]
        refs = [_fastest(group, BARE), _fastest(group, SAME_WORK)]
        for m in group:
            ratios = [f"{m.best / ref.best:.1f}x" if ref else "-" for ref in refs]
            before = f"{m.rss_before_mib:,.0f}" if m.rss_before_mib is not None else "-"
            rows.append([_size_label(size), CONTENDERS[m.contender], f"{m.best:.2f}",
                         f"{m.peak:,.0f}", before, f"{m.checksum[0]:,}", *ratios,
                         str(len(m.walls))])
    return rows


HEADER = ["rows", "contender", "best wall s", "peak MiB", "MiB after imports", "customers",
          "vs fastest bare", "vs fastest same work", "runs"]


def markdown_table(ms: list[Measurement]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if i not in (1,) else "---" for i in range(len(HEADER))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in _table_rows(ms)]
    return "\n".join(lines)


def text_table(ms: list[Measurement]) -> str:
    rows = [HEADER, *_table_rows(ms)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.ljust(w) if i == 1 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def target_lines(ms: list[Measurement]) -> list[str]:
    lines = []
    for size in dict.fromkeys(m.size for m in ms):
        group = [m for m in ms if m.size == size]
        bare, same = _fastest(group, BARE), _fastest(group, SAME_WORK)
        for m in (m for m in group if m.contender in ENGINE):
            if bare is not None:
                ratio = m.best / bare.best
                goal = TARGET_RATIO.get(m.contender)
                verdict = (f" (target <= {goal:.1f}x: {'met' if ratio <= goal else 'NOT met'})"
                           if goal else "")
                lines.append(f"- {_size_label(size)} rows: {CONTENDERS[m.contender]} "
                             f"{m.best:.2f} s vs fastest bare aggregation ({bare.contender}) "
                             f"{bare.best:.2f} s: **{ratio:.1f}x**{verdict}.")
            if same is not None:
                lines.append(f"- {_size_label(size)} rows: {CONTENDERS[m.contender]} "
                             f"{m.best:.2f} s vs fastest same work by hand ({same.contender}) "
                             f"{same.best:.2f} s: **{m.best / same.best:.1f}x** (like for like).")
            if m.contender == "run":
                met = "met" if m.peak <= TARGET_PEAK_MIB else "NOT met"
                lines.append(f"- {_size_label(size)} rows: {CONTENDERS[m.contender]} peak "
                             f"memory **{m.peak:,.0f} MiB** (target <= {TARGET_PEAK_MIB:,} MiB: "
                             f"{met}).")
    return lines


def plot_results(path: Path, ms: list[Measurement]) -> None:
    """Wall time and peak memory against rows, one line per contender (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    for contender in dict.fromkeys(m.contender for m in ms):
        points = sorted((m.size, m.best, m.peak) for m in ms if m.contender == contender)
        rows, walls, peaks = zip(*points, strict=True)
        style = "-o" if contender in ENGINE else "--."
        ax_time.plot(rows, walls, style, label=CONTENDERS[contender])
        ax_mem.plot(rows, peaks, style, label=CONTENDERS[contender])
    ax_mem.axhline(TARGET_PEAK_MIB, color="grey", linestyle=":", linewidth=1)
    ax_mem.annotate("2 GB target", (0.02, TARGET_PEAK_MIB), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize=8, color="grey")
    for ax, label in ((ax_time, "wall time (s, best run)"), (ax_mem, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("transaction lines")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_time.set_title("Time")
    ax_mem.set_title("Memory")
    handles, labels = ax_time.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(path: Path, ms: list[Measurement], info: dict[str, str],
                  problems: list[str], argv: list[str]) -> None:
    command = " ".join(["python benchmarks/run.py", *argv])
    parts = [
        "# Benchmark results",
        "",
        f"Written by `{command}` on {info['date']}; see `README.md` for what is measured. "
        "Wall: best of the runs; for `run` and the CLI the whole process (interpreter "
        "start, imports, writing the outputs), for the others the work only. Peak MiB: "
        "the largest peak resident memory (`ru_maxrss`) of the contender's own process "
        "over its runs, imports included; \"MiB after imports\" is its resident memory "
        "before the work started.",
        *([""] + [f"The Spark contenders (`--engine spark`) run Spark in local mode "
                  f"(`{SPARK_MASTER}`, the engine's local settings: driver heap "
                  f"{_driver_heap()}); their peak is the sum over the process tree (Python "
                  "driver, Spark's JVM, Python workers) of the proportional resident memory "
                  "(PSS: pages shared between the forked Python workers counted once), "
                  "sampled every 0.2 s (`launch.py`)."]
          if any(m.contender in SPARK for m in ms) else []),
        "",
        markdown_table(ms),
        "",
        "## Target",
        "",
        "The engine (the weekly `run` end to end; `rfm-engine segment` end to end; the "
        "library pipeline in process) against the fastest bare R/F/M aggregation (no "
        "cleaning at all), and against the fastest hand-written query doing the same "
        "cleaning and purchase logic. Issue 11's targets: `run` at most 3x and `segment` at "
        "most 1.5x the fastest bare aggregation, `run` at most 2 GB peak resident memory:",
        "",
        *target_lines(ms),
        "",
        f"![time and memory against rows]({path.with_suffix('.png').name})",
        "",
    ]
    if problems:
        parts += ["## Checksum mismatches", "", *(f"- {p}" for p in problems), ""]
    parts += ["## Machine", "", *(f"- {k}: {v}" for k, v in info.items()), ""]
    path.write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000,50000000",
                        help="Comma-separated row counts; 1M and 100k style allowed "
                        "(default: %(default)s).")
    parser.add_argument("--repeat", type=int,
                        help="Runs per contender, each in a fresh process (default: 3 up to "
                        "10M rows, 1 above and with --quick).")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke test: 100k rows, 1 run, results to data/RESULTS-quick.md.")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="Comma-separated subset of: %(default)s.")
    parser.add_argument("--seed", type=int, default=0, help="Data seed (default: 0).")
    parser.add_argument("--data", choices=DATA_KINDS, default="heavy",
                        help="Generated data: heavy-tailed customers (heavy_tail.py) or the "
                        "uniform sample (datagen.py) (default: %(default)s).")
    parser.add_argument("--memory-limit",
                        help="Passed to the CLI contenders (`run`, `cli`) as --memory-limit.")
    parser.add_argument("--output", type=Path,
                        help="Markdown results (default: benchmarks/RESULTS.md; with --quick "
                        "benchmarks/data/RESULTS-quick.md).")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [_parse_size(s) for s in args.sizes.split(",")]
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(CONTENDERS)}")
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    output = args.output or (DATA / "RESULTS-quick.md" if args.quick else HERE / "RESULTS.md")
    (DATA / "work").mkdir(parents=True, exist_ok=True)

    make_file = DATA_KINDS[args.data]
    files = {size: make_file(size, DATA, seed=args.seed, log=log) for size in sizes}
    measurements: list[Measurement] = []
    for size, path in files.items():
        repeat = args.repeat or (1 if args.quick or size > _REPEAT_UP_TO else 3)
        _warm(path)
        log(f"--- {_size_label(size)} rows ({path.name}), {repeat} run(s) per contender")
        for contender in contenders:
            m = Measurement(size, contender)
            for i in range(repeat):
                measure_once(contender, path, m, args.memory_limit)
                log(f"{contender:8s} run {i + 1}/{repeat}: {m.walls[-1]:7.2f} s, "
                    f"peak {m.peaks_mib[-1]:7,.0f} MiB")
            measurements.append(m)

    problems = []
    for size in sizes:
        problems += _check([m for m in measurements if m.size == size])
    for p in problems:
        log(f"WARNING checksum mismatch: {p}")
    info = machine_info()
    print(text_table(measurements))
    for line in target_lines(measurements):
        print(line.removeprefix("- ").replace("**", ""))
    write_results(output, measurements, info, problems, argv)
    plot_results(output.with_suffix(".png"), measurements)
    log(f"wrote {output} and {output.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
