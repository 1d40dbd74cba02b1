"""Atomic writers: every output goes to a temporary file in its folder, then is renamed.

A command that writes several files writes them all to temporary names first and
renames them only when every one of them is complete, so a failure leaves no partial
output and earlier files untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError, OutputExistsError

__all__ = ["TABLE_FORMATS", "atomic_path", "figure_writer", "json_text", "png_bytes",
           "publish_folder", "staging_folder", "table_writer", "text_writer", "write_all",
           "write_table", "write_text_atomic"]

TABLE_FORMATS = (".csv", ".parquet")
Writer = Callable[[Path], object]


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    On any exception the temporary file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'
    """
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def table_writer(frame: pd.DataFrame, suffix: str) -> Writer:
    """Return a function writing ``frame`` as CSV or Parquet (by ``suffix``) to a path."""
    suffix = suffix.lower()
    if suffix == ".csv":
        return lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n")
    if suffix == ".parquet":
        return lambda tmp: frame.to_parquet(tmp, index=False)
    raise ConfigError(f"Unknown output suffix {suffix!r}; use one of {', '.join(TABLE_FORMATS)}.")


def png_bytes(figure: Any, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure as PNG bytes without the metadata that varies between runs.

    The same figure gives the same bytes, so reruns write byte-identical plots.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def figure_writer(figure: Any, *, dpi: int = 100) -> Writer:
    """Return a function writing ``figure`` as a reproducible PNG to a path."""
    return lambda tmp: tmp.write_bytes(png_bytes(figure, dpi=dpi))


def text_writer(text: str) -> Writer:
    """Return a function writing UTF-8 ``text`` to a path."""
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def _plain_json(value: Any) -> Any:
    """Turn ``value`` into plain JSON values: non-finite numbers become None (null)."""
    if isinstance(value, Mapping):
        return {_plain_key(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_plain_json(v) for v in items]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return _plain_json(value.tolist())
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, pd.Period):
        return str(value)
    return str(value)


def _plain_key(key: Any) -> str | int | float | bool | None:
    key = _plain_json(key)
    return key if isinstance(key, str | int | float | bool) or key is None else str(key)


def json_text(data: Any, *, indent: int | None = 2, sort_keys: bool = False,
              ensure_ascii: bool = True) -> str:
    """Return ``data`` as strict JSON text (ending with a newline): never NaN or Infinity.

    Every JSON file the engine writes goes through this function. A float that is not
    finite (NaN, inf) becomes ``null``; numpy scalars and arrays become plain numbers and
    lists; dates become ISO text; paths and other objects their text.

    Parameters
    ----------
    data : object
        Mappings, sequences and scalars.
    indent : int or None, default=2
        Passed to :func:`json.dumps`.
    sort_keys : bool, default=False
        Passed to :func:`json.dumps`.
    ensure_ascii : bool, default=True
        Passed to :func:`json.dumps`.

    Returns
    -------
    str
        Text that ``json.loads`` reads without ever meeting ``NaN`` or ``Infinity``.

    Examples
    --------
    >>> import numpy as np
    >>> print(json_text({"mean": float("nan"), "n": np.int64(3), "x": [np.float64(1.5),
    ...                  float("inf")]}, indent=None), end="")
    {"mean": null, "n": 3, "x": [1.5, null]}
    """
    return json.dumps(_plain_json(data), indent=indent, sort_keys=sort_keys,
                      ensure_ascii=ensure_ascii, allow_nan=False) + "\n"


def write_all(outputs: Mapping[str | Path, Writer], *, force: bool = False) -> list[Path]:
    """Write several outputs all-or-nothing.

    Parameters
    ----------
    outputs : Mapping
        Target path to a function that writes the content to the path it is given.
    force : bool, default=False
        Replace existing files; without it an existing target raises
        :class:`~rfm_engine.errors.OutputExistsError` before anything is written.

    Returns
    -------
    list of Path
        The written paths.
    """
    targets = {Path(p): writer for p, writer in outputs.items()}
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise OutputExistsError(f"{', '.join(existing)} already exist(s); pass --force to "
                                "replace, or choose another output.")
    temps: dict[Path, Path] = {}
    try:
        for path, writer in targets.items():
            temps[path] = _temp_beside(path)
            writer(temps[path])
        for path, tmp in temps.items():
            os.replace(tmp, path)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return list(targets)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return write_all({path: text_writer(text)}, force=True)[0]


def write_table(frame: pd.DataFrame, path: str | Path, *, force: bool = True) -> Path:
    """Write a table as CSV or Parquet (picked by the suffix), atomically.

    Parameters
    ----------
    frame : DataFrame
        The table; its index is not written.
    path : str or Path
        ``.csv`` or ``.parquet``.
    force : bool, default=True
        Replace an existing file.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    return write_all({path: table_writer(frame, path.suffix)}, force=force)[0]


@contextlib.contextmanager
def staging_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``target``; it is removed afterwards.

    Build a whole run in it, then :func:`publish_folder` it. Whatever happens, the
    staging folder does not outlive the block, so a crash leaves no partial run.
    """
    target = Path(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging",
                                    dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # innermost first: undo what this call created, if empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def publish_folder(staging: Path, target: str | Path, *, force: bool = False) -> Path:
    """Rename a complete staging folder to ``target`` (atomic on one file system).

    An existing ``target`` is refused unless ``force``; then it is moved aside first and
    removed only once the new folder is in place.
    """
    target = Path(target)
    if target.exists():
        if not force:
            raise OutputExistsError(f"{target} already exists; pass --force to replace it.")
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old",
                                      dir=target.parent))
        os.replace(target, aside / target.name)
        try:
            os.replace(staging, target)
        except BaseException:
            os.replace(aside / target.name, target)
            raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target
