"""Run one command and report its wall time and peak RSS, from a process that stays small.

Usage: ``python -S benchmarks/launch.py REPORT CMD [ARG...]``; writes
``<wall seconds> <ru_maxrss KiB> <exit code>`` to the file REPORT.

Why a launcher: on Linux a process's ``ru_maxrss`` survives ``fork`` and ``execve`` (the
kernel keeps the high-water mark of the image it replaced), so a child spawned straight from
``run.py``, which holds pyarrow and the generated data, would report at least ``run.py``'s
own size. Forked from this launcher (about 10 MiB, only ``os``, ``sys`` and ``time``), the
command's peak is its own. ``/usr/bin/time -v`` does the same, but is not installed
everywhere.
"""

import os
import sys
import time

report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    f.write(f"{wall} {usage.ru_maxrss} {code}\n")
sys.exit(code)
