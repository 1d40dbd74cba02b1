"""Progress reporting: step lines through ``logging`` (logger ``rfm_engine``), bars on a terminal.

The library only logs: `step` writes ``<step> ...`` and ``<step> done in N s`` at INFO, and
the CLI attaches a handler that prints them to stderr. When the CLI runs on a terminal
without ``-q`` it calls ``show_bars(True)``: a step then draws a bar (tqdm, on stderr)
instead of its first line, filled from the DuckDB query it runs (``query_progress()`` of the
connection opened by :func:`rfm_engine.io.loading.connect`), with the rows and rows/s when
the step knows how many rows it goes through; the ``done in`` line follows as before.
Without a terminal (a pipe, a log file, the benchmarks) the output is the plain lines, and
with ``-q`` there is nothing.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

__all__ = ["bars_shown", "logger", "show_bars", "step", "watch"]

logger = logging.getLogger("rfm_engine")

#: Seconds between two looks at the DuckDB query's progress.
POLL_SECONDS = 0.1

_state: dict[str, Any] = {"bars": False, "connection": None, "open": []}


def show_bars(enabled: bool) -> None:
    """Draw a bar for each step (``True``: the CLI on a terminal) or only log lines.

    Parameters
    ----------
    enabled : bool
        Whether `step` draws bars on stderr. Bars are drawn only while the ``rfm_engine``
        logger shows INFO (not with ``-q``).
    """
    _state["bars"] = bool(enabled)


def bars_shown() -> bool:
    """Whether `step` draws bars: `show_bars` was called and INFO is shown.

    Examples
    --------
    >>> bars_shown()
    False
    """
    return _state["bars"] and logger.isEnabledFor(logging.INFO)


def watch(con: Any) -> None:
    """Follow the queries of DuckDB connection ``con`` in the bars (the last one watched).

    Turns on DuckDB's progress tracking without its own printing.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The pipeline's connection.
    """
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    _state["connection"] = weakref.ref(con)


@contextlib.contextmanager
def step(what: str, *, rows: int | None = None) -> Iterator[None]:
    """Log the start and the duration of a pipeline step; on a terminal, draw its bar.

    Parameters
    ----------
    what : str
        The step, as the user reads it (``"grouping orders"``).
    rows : int, optional
        Rows the step goes through, when known: the bar then shows rows and rows/s.

    Examples
    --------
    >>> with step("scoring"):
    ...     pass
    """
    start = time.perf_counter()
    if not bars_shown():
        logger.info("%s ...", what)
        yield
    else:
        with _Bar(what, rows):
            yield
    logger.info("%s done in %.2f s", what, time.perf_counter() - start)


class _Bar:
    """A tqdm bar for one step, filled from the watched connection by a polling thread."""

    def __init__(self, what: str, rows: int | None) -> None:
        self.what, self.rows = what, rows
        self.done = threading.Event()

    def __enter__(self) -> _Bar:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.redirect = None
        if not _state["open"]:  # log lines go above the bars, not through them
            self.redirect = logging_redirect_tqdm()
            self.redirect.__enter__()
        # The terminal's size (COLUMNS/LINES, else 80 x 24 when the terminal does not tell:
        # tqdm draws nothing on a terminal of size 0).
        _BAR["ncols"], _BAR["nrows"] = shutil.get_terminal_size()
        if self.rows:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}]"
            self.bar = tqdm(desc=self.what, total=self.rows, unit=" rows", unit_scale=True,
                            smoothing=0, bar_format=fmt, file=sys.stderr, **_BAR)
        else:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]"
            self.bar = tqdm(desc=self.what, total=100, bar_format=fmt, file=sys.stderr, **_BAR)
        _state["open"].append(self)
        self.poller = threading.Thread(target=self._poll, name="rfm-engine-progress",
                                       daemon=True)
        self.poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.poller.join()
        _state["open"].remove(self)
        if exc[0] is None:  # the last frame, however short the step: all rows, rows/s
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.refresh()
        self.bar.close()
        if self.redirect is not None:
            self.redirect.__exit__(*exc)

    def _poll(self) -> None:
        while not self.done.wait(POLL_SECONDS):
            if _state["open"][-1] is not self:  # an inner step owns the query
                continue
            ref = _state["connection"]
            con = ref() if ref is not None else None
            try:
                percent = con.query_progress() if con is not None else -1.0
            except Exception:  # noqa: BLE001 - a closed connection: nothing to show
                percent = -1.0
            # A step may run several queries: the bar only moves forward.
            target = self.bar.total * min(percent, 100.0) / 100.0
            if target > self.bar.n:
                self.bar.update(target - self.bar.n)


_BAR: dict[str, Any] = {"leave": False, "mininterval": POLL_SECONDS}
