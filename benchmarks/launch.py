"""Run one command and report its wall time and peak RSS, from a process that stays small.

Usage: ``python -S benchmarks/launch.py REPORT CMD [ARG...]``; writes
``<wall seconds> <ru_maxrss KiB> <exit code> <tree peak KiB>`` to the file REPORT.

Why a launcher: on Linux a process's ``ru_maxrss`` survives ``fork`` and ``execve`` (the
kernel keeps the high-water mark of the image it replaced), so a child spawned straight from
``run.py``, which holds pyarrow and the generated data, would report at least ``run.py``'s
own size. Forked from this launcher (about 10 MiB, only ``os``, ``sys``, ``threading`` and
``time``), the command's peak is its own. ``/usr/bin/time -v`` does the same, but is not installed
everywhere.

``ru_maxrss`` is one process's peak (for its waited-for children: the largest one's, not
their sum). A command that starts other processes at once, such as ``--engine spark`` (the
Python driver, Spark's JVM, Python workers), is also sampled: every 0.2 s the proportional
resident memory (PSS: a page shared by n processes counts 1/n) of the command and all its
descendants is summed from ``/proc``; the tree peak is the largest sum seen (0 where
``/proc`` is missing). Sampling can miss a short peak, so the report keeps both numbers.
"""

import os
import sys
import threading
import time

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _tree_rss_kib(root: int) -> int:
    """Sum the resident memory of ``root`` and its descendants (0 without /proc)."""
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    children: dict[int, list[int]] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += _pss_kib(pid)
    return total


def _pss_kib(pid: int) -> int:
    """Proportional resident memory of ``pid``: a page shared by n processes counts 1/n.

    Spark's Python workers are forked from one daemon and share most of their pages; their
    resident sizes summed counted those pages once per worker (a 100k-line Spark run
    "peaked" at 9.6 GB that way). ``Pss`` of ``smaps_rollup`` (Linux 4.14+) adds up to the
    memory the tree really holds; without it, the resident size (``statm``).
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_KIB
    except OSError:
        return 0


report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
tree_peak = [0]
finished = threading.Event()


def _sample() -> None:
    while not finished.wait(0.2):
        tree_peak[0] = max(tree_peak[0], _tree_rss_kib(pid))


sampler = threading.Thread(target=_sample, daemon=True)
sampler.start()
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
finished.set()
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {code} {tree_peak[0]}\n")
sys.exit(code)
