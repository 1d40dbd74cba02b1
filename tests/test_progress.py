"""Progress on a terminal: a bar per step (rows/s where the row count is known), plain step
lines without a terminal, nothing with -q (issue 11).

The installed ``rfm-engine`` runs in a real pseudo-terminal (``pty``) and through a pipe, on a
small generated file.
"""

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfm_engine.progress import bars_shown, show_bars, step

RFM = str(Path(sys.executable).with_name("rfm-engine"))


@pytest.fixture(scope="module")
def tx(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 3000
    path = tmp_path_factory.mktemp("progress") / "tx.csv"
    pd.DataFrame({
        "customer_id": rng.integers(0, 400, n).astype(str),
        "order_id": np.arange(n).astype(str),
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 360, n),
                                                                   unit="D"),
        "amount": rng.gamma(2.0, 30.0, n).round(2),
    }).to_csv(path, index=False)
    return path


def in_terminal(*args: str, cwd: Path) -> str:
    """Run the installed command in a 120x40 pseudo-terminal; return what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen([RFM, *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                               env={**env, "RFM_ENGINE_NO_TRACKING": "1"}, close_fds=True)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the command closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert process.wait(timeout=600) == 0, shown.decode(errors="replace")[-3000:]
    return shown.decode()


def test_a_terminal_shows_a_bar_per_step_with_rows_per_second(tx, tmp_path):
    shown = in_terminal("segment", str(tx), "-o", str(tmp_path / "seg.csv"), cwd=tmp_path)
    assert (tmp_path / "seg.csv").is_file()
    # cleaning knows its rows (the rows read): the bar counts them and shows the rate.
    assert "\rcleaning: 100%|" in shown
    assert "3.00k/3.00k [" in shown and " rows/s]" in shown
    # a step without a row count shows its percentage only
    assert "\rgrouping orders: 100%|" in shown
    assert "grouping orders: 100%|" in shown.split("grouping orders done in")[0]
    # the bar replaces the first line of the step; its duration is logged after it
    assert "cleaning ..." not in shown
    assert "\rcleaning done in " in shown


def test_quiet_on_a_terminal_shows_nothing(tx, tmp_path):
    shown = in_terminal("-q", "segment", str(tx), "-o", str(tmp_path / "seg.csv"), cwd=tmp_path)
    assert (tmp_path / "seg.csv").is_file()
    assert shown == ""


def test_without_a_terminal_the_steps_are_plain_lines(tx, tmp_path):
    result = subprocess.run([RFM, "segment", str(tx), "-o", str(tmp_path / "seg.csv"),
                             "--no-tracking"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, check=True)
    lines = result.stderr.splitlines()
    assert "cleaning ..." in lines
    assert any(line.startswith("cleaning done in ") for line in lines)
    assert "%|" not in result.stderr and "\r" not in result.stderr
    assert "rows/s" not in result.stderr


def test_the_library_only_logs(caplog):
    with caplog.at_level(logging.INFO, logger="rfm_engine"), step("scoring", rows=10):
        pass
    assert [r.getMessage() for r in caplog.records][0] == "scoring ..."
    assert caplog.records[1].getMessage().startswith("scoring done in ")
    show_bars(True)
    try:
        logging.getLogger("rfm_engine").setLevel(logging.WARNING)
        assert not bars_shown()  # -q: no bar even when asked for
    finally:
        show_bars(False)
        logging.getLogger("rfm_engine").setLevel(logging.NOTSET)
