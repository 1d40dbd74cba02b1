r"""Atomic writers: every output goes to a temporary file in its folder, then is renamed.

A command that writes several files writes them all to temporary names first and
renames them only when every one of them is complete, so a failure leaves no partial
output and earlier files untouched.

A temporary file is named ``.<name>.pid<pid>.<random>.tmp`` (a kept copy of a replaced
file ``...bak``) and is ``flock``-ed by its writer while in use. A process killed outright
(SIGKILL) cannot remove it; the next write into the same folder does
(:func:`remove_stale_temps`: only files of that pattern whose process is gone and whose lock
is free).

Every CSV is written by :func:`write_csv`: UTF-8, rows ending in ``\n``, and any field
holding a delimiter, quote, line feed or carriage return quoted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, OutputBusyError, OutputError, OutputExistsError
from ..progress import logger

__all__ = ["LOCK_GRACE_SECONDS", "TABLE_FORMATS", "TableWriter", "atomic_path", "beside",
           "check_output_folder", "check_outputs", "figure_writer", "json_text", "lock_path",
           "plain_json", "png_bytes",
           "publish_folder", "publish_lock", "remove_leftovers", "remove_stale_temps",
           "staging_folder", "table_writer", "text_writer", "write_all", "write_csv",
           "write_table", "write_text_atomic"]

TABLE_FORMATS = (".csv", ".parquet")
Writer = Callable[[Path], object]


_temp_locks: dict[Path, int] = {}  # temporary file -> descriptor holding its flock


def beside(output: str | Path, tag: str) -> Path:
    """Return the side file ``<output>.<tag>`` written beside ``output``.

    The whole output name is kept, so the side files of ``x.csv`` and ``x.parquet``
    never collide.

    Examples
    --------
    >>> beside("out/segments.csv", "quality.json").as_posix()
    'out/segments.csv.quality.json'
    """
    output = Path(output)
    return output.with_name(f"{output.name}.{tag}")


def _temp_prefix(path: Path) -> str:
    """Return the start of the temporary names beside ``path`` (see :data:`_TEMP_FILE`)."""
    return f".{path.name}.pid{os.getpid()}."


def _temp_beside(path: Path) -> Path:
    """Create an empty temporary file beside ``path``, locked until :func:`_drop_temp`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    _temp_locks[Path(name)] = fd
    return Path(name)


def _drop_temp(tmp: Path) -> None:
    """Remove the temporary file ``tmp`` if it is still there, then release its lock."""
    tmp.unlink(missing_ok=True)
    fd = _temp_locks.pop(tmp, None)
    if fd is not None:
        os.close(fd)


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
    _sweep_temps([path.parent])
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        _drop_temp(tmp)


class _RowsEndInLineFeed:
    r"""A text file for :mod:`csv` rows written with the ``\r\n`` terminator.

    Each row's terminator becomes ``\n``. The csv writer writes a row in one call, so only
    the row end changes; a field holding ``\r`` is quoted since it is in the terminator.
    """

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, text: str) -> int:
        if text.endswith("\r\n"):
            text = text[:-2] + "\n"
        return self._handle.write(text)


def write_csv(frame: pd.DataFrame, target: str | Path | io.TextIOBase) -> None:
    r"""Write ``frame`` (without its index) as the engine's CSV to a path or text file.

    UTF-8, rows end in ``\n``, and a field holding a delimiter, a quote, a line feed *or a
    lone carriage return* is quoted (pandas alone leaves ``"a\rb"`` bare when rows end in
    ``\n``, and Excel and ESP importers then split the row). This is the one CSV writer of
    the engine: every CSV output goes through it.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> write_csv(pd.DataFrame({"note": ["a\rb", "c"], "n": [1, 2]}), out)
    >>> out.getvalue()
    'note,n\n"a\rb",1\nc,2\n'
    """
    if isinstance(target, str | os.PathLike):
        with open(target, "w", encoding="utf-8", newline="") as handle:
            write_csv(frame, handle)
        return
    body = _text_rows(frame)
    if body is None:
        _plain_columns(frame).to_csv(_RowsEndInLineFeed(target), index=False,
                                     lineterminator="\r\n")
        return
    frame.iloc[:0].to_csv(_RowsEndInLineFeed(target), index=False, lineterminator="\r\n")
    for chunk in body:
        target.write(chunk)


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with its Arrow-backed columns as NumPy ones, written the same way.

    pandas' CSV writer takes the values of an Arrow column one Python call at a time
    (at a million customers, most of a command's time): Arrow dates become their ISO text
    and Arrow text NumPy objects, converted in Arrow, column-wise.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    plain = {}
    for name, column in frame.items():
        if not isinstance(column.dtype, pd.ArrowDtype):
            continue
        values = pa.array(column.array)
        if pa.types.is_date(values.type):
            values = pc.cast(values, pa.string())
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            plain[name] = pd.Series(values.to_numpy(zero_copy_only=False), index=frame.index,
                                    dtype=object)
    return frame.assign(**plain) if plain else frame


#: A field holding one of these is quoted (the csv module's rule with our dialect).
_NEEDS_QUOTES = '[,"\r\n]'
_FAST_CHUNK = 1 << 16  # rows per piece of text
#: The UTF-8 bytes of those characters (no multi-byte character holds them).
_QUOTE_BYTES = np.isin(np.arange(256), [ord(c) for c in ',"\r\n'])


def _text_rows(frame: pd.DataFrame) -> Iterator[str] | None:
    r"""Return the CSV rows of a table of text columns, built column-wise in Arrow; or None.

    The rows are exactly what :mod:`csv` writes through pandas (``QUOTE_MINIMAL``, ``"``
    doubled, a field with ``,``, ``"``, ``\r`` or ``\n`` quoted, a missing value empty),
    each ending in ``\n``, without a Python call per row: the campaign lists are such
    tables. None for anything else (numbers, dates, one column: its empty rows would be
    ``""``), which pandas writes.
    """
    if frame.shape[1] < 2 or not len(frame):
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    quote, comma, nothing = (pa.scalar(c, text) for c in ('"', ",", ""))
    columns = []
    for _, column in frame.items():
        if not (isinstance(column.dtype, pd.StringDtype)
                or pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")):
            return None
        try:
            values = pc.fill_null(pa.array(column, type=text, from_pandas=True), nothing)
        except (pa.ArrowException, UnicodeError):
            return None
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if _QUOTE_BYTES[np.frombuffer(values.buffers()[2] or b"", np.uint8)].any():
            # Most columns (ids, emails, names) hold none of these bytes: no test per value.
            quoted = pc.binary_join_element_wise(
                quote, pc.replace_substring(values, '"', '""'), quote, nothing)
            values = pc.if_else(pc.match_substring_regex(values, _NEEDS_QUOTES), quoted, values)
        columns.append(values)
    rows = pc.binary_join_element_wise(*columns, comma)
    return (_lines(rows.slice(start, _FAST_CHUNK)) for start in range(0, len(rows), _FAST_CHUNK))


def _lines(rows: Any) -> str:
    """Join an Arrow array of rows into one text, each row ending in a line feed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    one_list = pa.LargeListArray.from_arrays(pa.array([0, len(rows)], pa.int64()), rows)
    return pc.binary_join(one_list, pa.scalar("\n", rows.type))[0].as_py() + "\n"


class TableWriter:
    """A writer of one table as CSV or Parquet; it knows the rows it writes.

    Call it with a path to write the table there. :attr:`rows` is the number of data
    rows (the header not counted): what the manifest records, without reading the file
    back.

    Attributes
    ----------
    frame : DataFrame
        The table; its index is not written.
    suffix : {".csv", ".parquet"}
        The format.
    rows : int
        ``len(frame)``.
    dtypes : dict
        Column -> dtype the file holds (``frame.astype(dtypes)``), for a frame kept compact
        in memory (categoricals, small ints); Parquet converts one row group at a time.
    """

    def __init__(self, frame: pd.DataFrame, suffix: str,
                 dtypes: Mapping[str, Any] | None = None) -> None:
        self.frame = frame
        self.suffix = suffix
        self.rows = len(frame)
        self.dtypes = dict(dtypes or {})

    def __call__(self, tmp: Path) -> None:
        """Write the table to ``tmp``."""
        if self.suffix == ".csv":
            write_csv(self.frame.astype(self.dtypes) if self.dtypes else self.frame, tmp)
        elif not self.dtypes or len(self.frame) <= _ROW_GROUP:
            self.frame.astype(self.dtypes).to_parquet(tmp, index=False)
        else:
            _write_parquet_as(self.frame, self.dtypes, tmp)


#: Rows of a Parquet row group: pyarrow's default, which ``DataFrame.to_parquet`` uses.
_ROW_GROUP = 1024 * 1024


def _write_parquet_as(frame: pd.DataFrame, dtypes: Mapping[str, Any], path: Path) -> None:
    """Write the bytes of ``frame.astype(dtypes).to_parquet(path, index=False)``.

    The frame is converted one row group at a time, never whole.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for start in range(0, len(frame), _ROW_GROUP):
            part = frame.iloc[start:start + _ROW_GROUP].astype(dtypes)
            table = pa.Table.from_pandas(part, preserve_index=False,
                                         schema=writer.schema if writer else None)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def table_writer(frame: pd.DataFrame, suffix: str,
                 dtypes: Mapping[str, Any] | None = None) -> TableWriter:
    """Return a writer of ``frame`` as CSV or Parquet (by ``suffix``) to a path.

    ``dtypes``: the dtypes the file holds, for columns kept compact in memory (see
    :class:`TableWriter`).

    Examples
    --------
    >>> table_writer(pd.DataFrame({"a": [1, 2]}), ".csv").rows
    2
    """
    suffix = suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise ConfigError(f"Unknown output suffix {suffix!r}; use one of "
                          f"{', '.join(TABLE_FORMATS)}.")
    return TableWriter(frame, suffix, dtypes)


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


def plain_json(value: Any) -> Any:
    """Turn ``value`` into plain JSON values: non-finite numbers become None (null).

    The one conversion of :func:`json_text` and of the reports' ``to_dict``: numpy
    scalars and arrays become numbers and lists, dates ISO text, ``pd.NA``/``NaT`` None.

    Examples
    --------
    >>> import datetime as dt, numpy as np
    >>> plain_json({"n": np.int64(3), "share": float("nan"), "day": dt.date(2025, 1, 2)})
    {'n': 3, 'share': None, 'day': '2025-01-02'}
    """
    if isinstance(value, Mapping):
        return {_plain_key(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [plain_json(v) for v in items]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return plain_json(value.tolist())
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
    key = plain_json(key)
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
    return json.dumps(plain_json(data), indent=indent, sort_keys=sort_keys,
                      ensure_ascii=ensure_ascii, allow_nan=False) + "\n"


def _label(label: str, path: Path) -> str:
    return f"{label} {str(path)!r}" if label else repr(str(path))


def _check_folder_chain(folder: Path, what: str) -> None:
    """Refuse ``folder`` unless it is, or can be created as, a writable folder."""
    existing = folder
    while not existing.exists() and not existing.is_symlink():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        raise OutputError(f"{what}: {str(existing)!r} is a broken symbolic link, not a folder. "
                          "Nothing was written.")
    if not existing.is_dir():
        raise OutputError(f"{what}: {str(existing)!r} is a file, not a folder. "
                          "Nothing was written.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: cannot write into folder {str(existing)!r} (permission "
                          "denied). Nothing was written.")


def check_outputs(outputs: Iterable[tuple[str, str | Path]], *, force: bool = False) -> None:
    """Check that every output can be written, before any work is done.

    Parameters
    ----------
    outputs : iterable of (label, path)
        The files a command will write; the label names where the path came from
        (``"--output"``, ``"--save-model"``, ...) in messages.
    force : bool, default=False
        Existing files will be replaced.

    Raises
    ------
    OutputError
        A path is a folder, its folder is a file (or cannot be created or written), or
        two outputs are the same file.
    OutputExistsError
        A path exists and ``force`` is false.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_outputs([("--output", folder / "a.csv"), ("--save-model", folder / "a.csv")])
    Traceback (most recent call last):
    ...
    rfm_engine.errors.OutputError: --save-model ... is the same file as --output ...
    """
    seen: dict[str, str] = {}
    existing = []
    for label, raw in outputs:
        path = Path(raw)
        what = _label(label, path)
        key = os.path.normcase(str(path.resolve()))
        if key in seen:
            raise OutputError(f"{what} is the same file as {seen[key]}; give each output its "
                              "own path. Nothing was written.")
        seen[key] = what
        if path.is_dir():
            raise OutputError(f"{what} is a folder; give a file name, such as "
                              f"{str(path / ('output' + (path.suffix or '.csv')))!r}. "
                              "Nothing was written.")
        _check_folder_chain(path.parent, what)
        if path.exists() or path.is_symlink():
            existing.append(str(path))
    if existing and not force:
        verb = "already exists" if len(existing) == 1 else "already exist"
        raise OutputExistsError(f"{', '.join(existing)} {verb}; pass --force to replace, or "
                                "choose another output. Nothing was written.")


def check_output_folder(folder: str | Path, *, label: str = "output folder") -> None:
    """Check that ``folder`` is, or can be created as, a writable folder.

    Raises
    ------
    OutputError
        ``folder`` or one of its parents is a file, or it cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> afile = pathlib.Path(tempfile.mkdtemp()) / "runs"
    >>> _ = afile.write_text("")
    >>> check_output_folder(afile / "weekly", label="--output-dir")
    Traceback (most recent call last):
    ...
    rfm_engine.errors.OutputError: --output-dir ...: ... is a file, not a folder. ...
    """
    folder = Path(folder)
    _check_folder_chain(folder, _label(label, folder))


def _make_folders(folders: Iterable[Path]) -> list[Path]:
    """Create ``folders`` (and parents); return the ones created, innermost first."""
    created: list[Path] = []
    for folder in folders:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        created += [p for p in missing if p not in created]
    return sorted(created, key=lambda p: len(p.parts), reverse=True)


def _remove_empty(folders: Iterable[Path]) -> None:
    for folder in folders:  # innermost first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _keep_copy(path: Path) -> Path:
    """Keep a hidden copy of the file ``path`` beside it (a hard link when possible)."""
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".bak", dir=path.parent)
    os.close(fd)
    backup = Path(name)
    backup.unlink()
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    return backup


def write_all(outputs: Mapping[str | Path, Writer], *, force: bool = False) -> list[Path]:
    """Write several outputs all-or-nothing.

    Every output is written to a temporary file beside its target first; only when all
    are complete are they renamed into place. If a writer or a rename fails, the files
    already renamed are taken back, the files they replaced are restored, the folders
    this call created are removed, and the error is raised: nothing new remains.

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

    Raises
    ------
    OutputError
        A target is a folder, its folder is a file or not writable, two targets are the
        same file (checked before anything is written), or writing failed (for example
        a full disk).
    OutputExistsError
        A target exists and ``force`` is false.
    """
    targets = {Path(p): writer for p, writer in outputs.items()}
    check_outputs([("", p) for p in targets], force=force)
    created = _make_folders(dict.fromkeys(p.parent for p in targets))
    _sweep_temps(dict.fromkeys(p.parent for p in targets))
    temps: dict[Path, Path] = {}
    backups: dict[Path, Path] = {}
    placed: list[Path] = []
    current = None
    try:
        for current, writer in targets.items():
            temps[current] = _temp_beside(current)
            writer(temps[current])
        for current, tmp in temps.items():
            if current.exists():
                backups[current] = _keep_copy(current)
            os.replace(tmp, current)
            placed.append(current)
    except BaseException as exc:
        for path in reversed(placed):
            with contextlib.suppress(OSError):
                if path in backups:
                    os.replace(backups.pop(path), path)
                else:
                    path.unlink()
        for tmp in temps.values():
            _drop_temp(tmp)
        _remove_empty(created)
        if isinstance(exc, OSError):
            raise OutputError(f"could not write {current}: {exc.strerror or exc}. "
                              "Nothing was written.") from exc
        raise
    finally:
        for tmp in temps.values():
            _drop_temp(tmp)
        for backup in backups.values():
            backup.unlink(missing_ok=True)
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


#: Seconds a run tries to take a busy publish lock before it is refused (another run's
#: brief clean-up of a killed run's leftovers holds that run's lock for a moment).
LOCK_GRACE_SECONDS = 2.0

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.(?P<kind>staging|old)")
_LOCK_FILE = re.compile(r"\.(?P<name>.+)\.lock")
#: Temporary files of :func:`write_all` and :func:`atomic_path` (see :func:`_temp_prefix`).
_TEMP_FILE = re.compile(r"\.(?P<name>.+)\.pid(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.(?:tmp|bak)")
_held: dict[Path, list[int]] = {}  # lock file -> [file descriptor, nesting depth]


def lock_path(target: str | Path) -> Path:
    """Return the lock file of publishing ``target``: ``.<name>.lock`` beside it.

    Examples
    --------
    >>> lock_path("out/2025-12-29").as_posix()
    'out/.2025-12-29.lock'
    """
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def _try_lock(path: Path) -> int | None:
    """Take the exclusive ``flock`` of ``path`` (created if missing) or return None if busy."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # its holder removed the file while we waited: lock the new one


def _unlock(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it, then release it."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    os.close(fd)


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f", pid {int(path.read_text().split()[0])}"
    return ""


def _is_lock_file(path: Path) -> bool:
    """Whether ``path`` looks like one of our lock files (empty, or a process id)."""
    try:
        return path.is_file() and path.stat().st_size < 32 and (
            not (text := path.read_text().strip()) or text.isdigit())
    except (OSError, UnicodeDecodeError):
        return False


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts: its parent has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    except (OverflowError, ValueError):
        return False
    return True


def remove_stale_temps(folder: str | Path) -> list[str]:
    """Remove the temporary files that killed writers left in ``folder``.

    Only files named as this module names them (``.<name>.pid<pid>.<random>.tmp`` or
    ``.bak``) are considered, and one is removed only when no live process can be writing
    it: the process ``<pid>`` does not exist **and** nobody holds the file's ``flock`` (a
    writer holds it while the file is in use, which also covers a writer whose process id
    this process cannot see). Everything else is left alone.

    Parameters
    ----------
    folder : str or Path
        The folder to clean.

    Returns
    -------
    list of str
        ``"removed <file name>"`` for each file removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / ".segments.csv.pid999999999.k3v9x0ab.tmp").write_text("half a file")
    >>> _ = (out / ".segments.csv.k3v9x0ab.tmp").write_text("not named by us: kept")
    >>> remove_stale_temps(out)
    ['removed .segments.csv.pid999999999.k3v9x0ab.tmp']
    >>> sorted(p.name for p in out.iterdir())
    ['.segments.csv.k3v9x0ab.tmp']
    """
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return []
    done: list[str] = []
    for entry in entries:
        match = _TEMP_FILE.fullmatch(entry.name)
        if not match or _process_alive(int(match["pid"])):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone, a symbolic link, or not ours to read
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                done.append(f"removed {entry.name}")
        finally:
            os.close(fd)
    return done


def _sweep_temps(folders: Iterable[Path]) -> None:
    """Remove the stale temporary files of killed writes in ``folders``, and say so."""
    for folder in folders:
        removed = remove_stale_temps(folder)
        if removed:
            logger.info("removed %d temporary file(s) of killed writes in %s: %s",
                        len(removed), folder, "; ".join(r.split(" ", 1)[1] for r in removed))


def remove_leftovers(folder: str | Path, *, held: Iterable[str] = ()) -> list[str]:
    """Remove what killed runs left in ``folder``; never touch what a live run is using.

    A run killed outright (SIGKILL, power loss) can leave its hidden staging folder
    ``.<name>.<random>.staging``, a previous run it had set aside to replace
    (``.<name>.<random>.old``) and its lock file ``.<name>.lock``. They are leftovers
    when the lock of ``<name>`` is free (its holder is dead: the OS releases a lock with
    its process) or held by the caller (``held``). A set-aside run whose replacement was
    never put in place is renamed back to ``<name>``; the other leftovers are removed.
    Temporary files of killed single-file writes go too (:func:`remove_stale_temps`, the
    same rule every write applies to its folder).

    Parameters
    ----------
    folder : str or Path
        The folder holding the published runs.
    held : iterable of str
        Names whose lock the caller holds.

    Returns
    -------
    list of str
        What was removed or restored, one line each.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> (out / ".2025-12-29.k3v9x0ab.staging").mkdir()
    >>> remove_leftovers(out)
    ['removed .2025-12-29.k3v9x0ab.staging']
    >>> sorted(p.name for p in out.iterdir())
    []
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    done: list[str] = remove_stale_temps(folder)
    names: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        match = _LEFTOVER.fullmatch(entry.name) or (
            _LOCK_FILE.fullmatch(entry.name) if _is_lock_file(entry) else None)
        if match:
            names.setdefault(match["name"], []).append(entry)
    held = set(held)
    for name, entries in names.items():
        lock = folder.absolute() / f".{name}.lock"
        fd = None
        if name not in held:
            if lock in _held:
                continue  # this process is using them
            fd = _try_lock(lock)
            if fd is None:
                continue  # a live run is using them
        try:
            for entry in entries:
                if entry.name.endswith(".old"):
                    kept, target = entry / name, folder / name
                    if kept.is_dir() and not target.exists():
                        os.replace(kept, target)
                        done.append(f"restored {name} from {entry.name}")
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                    done.append(f"removed {entry.name}")
        finally:
            if fd is not None:
                _unlock(lock, fd)
    return done


@contextlib.contextmanager
def publish_lock(target: str | Path, *,
                 grace: float = LOCK_GRACE_SECONDS) -> Iterator[list[str]]:
    """Hold the exclusive lock on publishing ``target`` for the block.

    The lock is an ``fcntl.flock`` on ``.<name>.lock`` beside ``target``: the OS
    releases it when the process ends, however it ends, so a killed run never leaves a
    lock that blocks the next one. On taking it, the leftovers of killed runs in the
    folder are removed (:func:`remove_leftovers`). Nested calls for the same target in
    one process share the lock. The lock file is removed on release; folders created
    for it are removed again when they are left empty.

    Parameters
    ----------
    target : str or Path
        The file or folder to be published, e.g. ``out/2025-12-29``.
    grace : float, default=LOCK_GRACE_SECONDS
        Seconds to retry while another process holds the lock.

    Yields
    ------
    list of str
        The leftovers removed or restored when the lock was taken (empty when nested).

    Raises
    ------
    OutputBusyError
        Another process holds the lock (exit code 5).
    OutputError
        The folder of ``target`` cannot be created or written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> with publish_lock(out / "2025-12-29"):
    ...     (out / ".2025-12-29.lock").exists()
    True
    >>> (out / ".2025-12-29.lock").exists()
    False
    """
    target = Path(target)
    path = lock_path(target.absolute())
    if path in _held:
        _held[path][1] += 1
        try:
            yield []
        finally:
            _held[path][1] -= 1
        return
    check_output_folder(target.parent)
    created = _make_folders([target.parent])
    deadline = time.monotonic() + grace
    while (fd := _try_lock(path)) is None:
        if time.monotonic() >= deadline:
            _remove_empty(created)
            raise OutputBusyError(
                f"{target} is being written by another run (lock file {lock_path(target)}"
                f"{_holder(path)}); try again when it has finished. Nothing was written.")
        time.sleep(0.05)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _held[path] = [fd, 1]
        removed = remove_leftovers(target.parent, held=[target.name])
        if removed:
            logger.info("removed %d leftover(s) of killed runs in %s: %s",
                        sum(line.startswith("removed") for line in removed), target.parent,
                        "; ".join(removed))
        yield removed
    finally:
        _held.pop(path, None)
        _unlock(path, fd)
        _remove_empty(created)


@contextlib.contextmanager
def staging_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``target``; it is removed afterwards.

    Build a whole run in it, then :func:`publish_folder` it. The block holds the publish
    lock of ``target`` (:func:`publish_lock`, taken here unless the caller holds it), so
    no other run can remove or replace it. An exception removes the staging folder; a
    killed process cannot, and the next run that takes a lock in the same folder removes
    it then.
    """
    target = Path(target)
    with publish_lock(target):
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging",
                                        dir=target.parent))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def publish_folder(staging: Path, target: str | Path, *, force: bool = False) -> Path:
    """Rename a complete staging folder to ``target`` (atomic on one file system).

    An existing ``target`` is refused unless ``force``; then it is moved aside first
    (into ``.<name>.<random>.old``) and removed only once the new folder is in place. A
    process killed between the two renames leaves the old run aside; the next run's
    :func:`remove_leftovers` puts it back. Call it holding :func:`publish_lock`.
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
