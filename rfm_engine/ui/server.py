"""Start the page: ``rfm-engine ui`` runs :mod:`rfm_engine.ui.app` with Streamlit.

:func:`streamlit_command` builds the command line (the app file, the address and port,
no browser opened, no usage statistics sent: the engine never reaches the network) and
:func:`serve` replaces the current process with it, so the server has the command's
process id (a scheduler or a test stops it with one signal).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

from ..errors import InputError, MissingDependencyError

__all__ = ["is_loopback", "serve", "streamlit_command"]

#: The environment variable the app reads the runs folder from.
RUNS_ENV = "RFM_ENGINE_UI_RUNS"
APP = Path(__file__).with_name("app.py")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def streamlit_command(runs: str | Path, *, port: int = 8501, host: str = "127.0.0.1",
                      quiet: bool = False) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment that start the page.

    Parameters
    ----------
    runs : str or Path
        The runs folder (``DIR`` of ``rfm-engine run --output-dir DIR``); must exist.
    port : int, default=8501
        The TCP port.
    host : str, default="127.0.0.1"
        The address to bind (see :func:`is_loopback`).
    quiet : bool, default=False
        Streamlit logs errors only.

    Returns
    -------
    list of str, dict
        ``python -m streamlit run app.py --server...`` and the environment with
        :data:`RUNS_ENV`.

    Raises
    ------
    MissingDependencyError
        Streamlit or plotly is not installed (the ``ui`` extra).
    InputError
        ``runs`` is not a folder, or the port is out of range.
    """
    missing = [m for m in ("streamlit", "plotly") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependencyError(
            f"rfm-engine ui needs {' and '.join(missing)}: install it with "
            "pip install 'rfm-engine[ui]'.")
    folder = Path(runs)
    if not folder.is_dir():
        raise InputError(f"--runs {folder}: not a folder; give the folder the weekly run "
                         "writes into (rfm-engine run --output-dir DIR).")
    if not 1 <= int(port) <= 65535:
        raise InputError(f"--port: expected a TCP port 1..65535, got {port}.")
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.address", host, "--server.port", str(int(port)),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--server.runOnSave", "false",
               "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
               "--logger.level", "error" if quiet else "info"]
    env = {**os.environ, RUNS_ENV: str(folder.resolve())}
    return command, env


def serve(runs: str | Path, *, port: int = 8501, host: str = "127.0.0.1",
          quiet: bool = False) -> None:
    """Replace this process with the Streamlit server of the page (never returns).

    Parameters
    ----------
    runs, port, host, quiet
        As :func:`streamlit_command`.
    """
    command, env = streamlit_command(runs, port=port, host=host, quiet=quiet)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
