"""The run manifest: what went in, what came out, with sizes and hashes."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path
from typing import Any

__all__ = ["file_entry", "sha256_file", "versions"]

_PACKAGES = ("rfm-engine", "pandas", "numpy", "duckdb", "scikit-learn", "pyarrow", "matplotlib")


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: str | Path, *, root: str | Path | None = None,
               rows: int | None = None) -> dict[str, Any]:
    """Describe a file for the manifest: path (relative to ``root``), bytes, sha256, rows."""
    path = Path(path)
    shown = path.relative_to(root).as_posix() if root is not None else str(path)
    entry: dict[str, Any] = {"path": shown, "bytes": path.stat().st_size,
                             "sha256": sha256_file(path)}
    if rows is not None:
        entry["rows"] = int(rows)
    return entry


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the results."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
