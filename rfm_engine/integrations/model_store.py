"""The ``models/`` folder: frozen segmentation models with a sha256 manifest checked on load.

``models/manifest.json`` records every model file the weekly job may load::

    {"models": {"model": {"file": "model.skops", "sha256": "...", "format": "skops",
                          "created": "2024-06-03T06:00:00+00:00",
                          "rfm_engine_version": "0.1.0",
                          "source": "models:/rfm-segmentation/3"}}}

`save_model` writes a `SegmentationModel` with skops (no pickle) and its manifest entry
together, atomically. `load_model` finds the file *inside the configured folder only*,
compares its sha256 with the manifest *before* deserializing anything, and loads skops
files with the explicit allow-list `TRUSTED_TYPES`.

Refusals and exit codes (design decision). Every refusal to trust a model file raises
:class:`~rfm_engine.errors.ModelIntegrityError` (exit code 6), so one exit code means "a
model was not trusted" to the scheduler: a path outside the folder, a ``..`` component, a
symlink, a file missing from the manifest, a hash mismatch, an unreadable manifest, a
type outside `TRUSTED_TYPES`. Plain mistakes raise
:class:`~rfm_engine.errors.ConfigError` (exit code 2): the folder or the file does not
exist, an unknown name, an unsupported suffix.

Joblib files run code. A ``.joblib`` file is a pickle: loading it runs whatever code its
author put in it, with the permissions of the process that loads it. rfm-engine loads one
only from the configured models folder, only when its sha256 matches the entry in
``manifest.json``, and never through a symlink. The hash proves that the file is the one
that was recorded, not that it is safe: record a joblib file (`record_model`) only if
you made it yourself. Prefer ``.skops`` files (`save_model`), which can only rebuild the
types skops trusts by default (numpy, scikit-learn estimators) and those in
`TRUSTED_TYPES`.

JSON scorer files written by :func:`rfm_engine.core.scoring.save_scorer` are data (bin
edges), hash-checked like the others and wrapped in a `SegmentationModel`.

Models saved by earlier layouts. A ``.skops`` or ``.joblib`` file records the dotted path of
every class it holds. Files written before the layered subpackages name the flat modules
(``rfm_engine.model.SegmentationModel``); `MOVED_TYPES` maps each such path to the class's
path now, and `load_model` reads old files through it: a skops schema is rewritten to the
new paths (after the hash check, before the `TRUSTED_TYPES` check), a pickle is read with the
old module names standing for the new modules. New files record the new paths.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..core._estimator import check_is_fitted
from ..core.model import SegmentationModel
from ..core.scoring import RFMScorer
from ..errors import ConfigError, ModelIntegrityError
from ..io.manifest import sha256_file
from ..io.writers import json_text, text_writer, write_all

__all__ = [
    "FORMATS",
    "MOVED_TYPES",
    "MANIFEST_NAME",
    "TRUSTED_TYPES",
    "check_name",
    "load_model",
    "load_skops",
    "model_writers",
    "read_manifest",
    "record_model",
    "save_model",
]

#: Types a ``.skops`` model file may hold beyond what skops trusts by default (builtins,
#: numpy arrays and dtypes, scikit-learn estimators such as ``KMeans`` and ``Pipeline``).
#: Exactly what ``skops.io.get_untrusted_types`` reports for a fitted `SegmentationModel`
#: with no clusterer or a ``KMeans``/``Pipeline``/``GaussianMixture`` one (the first two
#: names), plus the two functions the ``FunctionTransformer`` of
#: :func:`rfm_engine.core.clustering.make_pipeline` refers to (plain numpy code of this
#: package). A clusterer needing more (``BisectingKMeans`` stores a private tree class and
#: a function) is refused by `save_model`, so a saved model can always be loaded back.
TRUSTED_TYPES: tuple[str, ...] = (
    "rfm_engine.core.model.SegmentationModel",
    "rfm_engine.core.scoring.RFMScorer",
    "rfm_engine.core.clustering.RFMClusterer",
    "rfm_engine.core.clustering.signed_log1p",
    "rfm_engine.core.clustering.signed_expm1",
)

#: Class paths recorded by models saved with an earlier package layout -> the path of the same
#: class now. Files saved before the layered subpackages (the flat ``rfm_engine/*.py``
#: modules) load through it. When a class of `TRUSTED_TYPES` moves, add its old path here.
MOVED_TYPES: dict[str, str] = {
    "rfm_engine.model.SegmentationModel": "rfm_engine.core.model.SegmentationModel",
    "rfm_engine.scoring.RFMScorer": "rfm_engine.core.scoring.RFMScorer",
    "rfm_engine.clustering.RFMClusterer": "rfm_engine.core.clustering.RFMClusterer",
    "rfm_engine.clustering.signed_log1p": "rfm_engine.core.clustering.signed_log1p",
    "rfm_engine.clustering.signed_expm1": "rfm_engine.core.clustering.signed_expm1",
}

#: Name of the manifest file inside the models folder.
MANIFEST_NAME = "manifest.json"

#: File suffix to the ``format`` recorded in the manifest.
FORMATS: dict[str, str] = {".skops": "skops", ".joblib": "joblib", ".json": "scorer-json"}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


# ---------------------------------------------------------------------------- save


def save_model(
    model: SegmentationModel,
    folder: str | os.PathLike[str] = "models",
    name: str = "model",
    *,
    source: str | None = None,
) -> Path:
    """Freeze a fitted model as ``folder/name.skops`` and record its sha256 in the manifest.

    The model file and ``manifest.json`` are written together, atomically: a failure
    leaves both as they were. Other entries of the manifest are kept.

    Parameters
    ----------
    model : SegmentationModel
        A fitted model.
    folder : str or path-like, default="models"
        The models folder; created if missing.
    name : str, default="model"
        Manifest key and file stem: letters, digits, ``_`` and ``-``.
    source : str or None, default=None
        Where the model comes from, e.g. ``"models:/rfm-segmentation/3"``.

    Returns
    -------
    Path
        The ``.skops`` file written.

    Raises
    ------
    ConfigError
        If ``model`` is not a fitted `SegmentationModel`, ``name`` is invalid, or the model
        holds a type skops cannot save or outside `TRUSTED_TYPES` (it could not be loaded
        back).
    ModelIntegrityError
        If the existing manifest is unreadable (it is not overwritten).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> customers = pd.DataFrame({"customer_id": list("abcd"),
    ...                           "recency_days": [1, 10, 100, 300],
    ...                           "frequency": [9, 5, 2, 1],
    ...                           "monetary": [900.0, 300.0, 20.0, 10.0]})
    >>> model = SegmentationModel().fit(customers)
    >>> folder = tempfile.mkdtemp()
    >>> save_model(model, folder).name
    'model.skops'
    >>> load_model("model", folder).predict(customers).tolist()
    ['champions', 'loyal_customers', 'hibernating', 'hibernating']
    >>> sorted(read_manifest(folder)["models"]["model"])
    ['created', 'file', 'format', 'rfm_engine_version', 'sha256', 'source']
    """
    writers = model_writers(model, folder, name, source=source)
    write_all(writers, force=True)
    return next(iter(writers))


def model_writers(
    model: SegmentationModel,
    folder: str | os.PathLike[str] = "models",
    name: str = "model",
    *,
    source: str | None = None,
) -> dict[Path, Any]:
    """Serialize a model for `save_model` without writing it: ``{path: writer}``.

    Everything that can fail except the writing itself happens here (the skops
    serialization, the trusted-type check, reading the manifest), so a caller can
    prepare the model before writing its other outputs and write them all together.

    Parameters
    ----------
    model : SegmentationModel
        A fitted model.
    folder : str or path-like, default="models"
        The models folder (created when the writers run).
    name : str, default="model"
        Manifest key and file stem.
    source : str or None, default=None
        Where the model comes from.

    Returns
    -------
    dict
        ``{folder/name.skops: writer, folder/manifest.json: writer}`` for
        :func:`rfm_engine.io.writers.write_all`.

    Raises
    ------
    ConfigError, ModelIntegrityError
        As `save_model`.
    """
    import skops.io
    from skops.io.exceptions import UnsupportedTypeException

    if not isinstance(model, SegmentationModel):
        raise ConfigError(f"save_model saves a SegmentationModel; got {type(model).__name__}. "
                          "Wrap a scorer with SegmentationModel.from_scorer(scorer).")
    check_is_fitted(model)
    check_name(name)
    folder = Path(folder)
    try:
        data = skops.io.dumps(model)
    except (UnsupportedTypeException, TypeError) as exc:  # TypeError: e.g. a DataFrame attr
        raise ConfigError(f"Cannot save the model with skops ({exc}). Use a clusterer skops "
                          "supports, such as KMeans or a Pipeline ending in KMeans.") from None
    extra = _untrusted(data)
    if extra:
        raise ConfigError(
            f"The model holds type(s) {', '.join(extra)} outside TRUSTED_TYPES, so it could not "
            "be loaded back; use a clusterer such as KMeans, or add the type to "
            "rfm_engine.integrations.model_store.TRUSTED_TYPES after reviewing it."
        )
    manifest = read_manifest(folder, missing_ok=True)
    file_name = f"{name}.skops"
    manifest["models"][name] = _entry(file_name, hashlib.sha256(data).hexdigest(), "skops",
                                      source)

    def write_folder(tmp: Path) -> None:
        tmp.write_bytes(data)

    return {folder / file_name: write_folder,
            folder / MANIFEST_NAME: text_writer(_manifest_text(manifest))}


def record_model(
    file: str | os.PathLike[str],
    folder: str | os.PathLike[str] = "models",
    name: str | None = None,
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """Record the sha256 of a model file already in ``folder`` (e.g. a joblib or JSON file).

    Recording a file is the decision to trust it: `load_model` loads only recorded files
    whose hash still matches. A ``.joblib`` file runs code when loaded; record one only if
    you made it yourself.

    Parameters
    ----------
    file : str or path-like
        A ``.skops``, ``.joblib`` or ``.json`` (scorer) file directly inside ``folder``: a
        bare file name is taken inside ``folder``.
    folder : str or path-like, default="models"
        The models folder.
    name : str or None, default=None
        Manifest key; defaults to the file stem.
    source : str or None, default=None
        Where the file comes from.

    Returns
    -------
    dict
        The manifest entry written.

    Raises
    ------
    ModelIntegrityError
        If the file is outside ``folder`` or a symlink.
    ConfigError
        If the file does not exist or its suffix is not supported.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from rfm_engine.core.scoring import save_scorer
    >>> folder = Path(tempfile.mkdtemp())
    >>> scorer = RFMScorer(n_bins=2).fit(pd.DataFrame(
    ...     {"recency_days": [1, 9], "frequency": [3, 1], "monetary": [5.0, 1.0]}))
    >>> _ = save_scorer(scorer, folder / "scorer.json")
    >>> record_model("scorer.json", folder)["format"]
    'scorer-json'
    """
    folder_real = _folder(folder)
    path = _inside(Path(file), Path(folder), folder_real)
    fmt = _format(path)
    name = path.stem if name is None else name
    check_name(name)
    manifest = read_manifest(folder, missing_ok=True)
    entry = _entry(path.name, sha256_file(path), fmt, source)
    manifest["models"][name] = entry
    write_all({Path(folder) / MANIFEST_NAME: text_writer(_manifest_text(manifest))}, force=True)
    return entry


def read_manifest(folder: str | os.PathLike[str] = "models", *,
                  missing_ok: bool = False) -> dict[str, Any]:
    """Read ``folder/manifest.json``.

    Parameters
    ----------
    folder : str or path-like, default="models"
        The models folder.
    missing_ok : bool, default=False
        Return an empty manifest (``{"models": {}}``) when the file does not exist.

    Returns
    -------
    dict
        ``{"models": {name: entry}}``.

    Raises
    ------
    ModelIntegrityError
        If the manifest is missing (unless ``missing_ok``), a symlink, not JSON or not
        shaped as above.
    """
    path = Path(folder) / MANIFEST_NAME
    if path.is_symlink():
        raise ModelIntegrityError(f"{path} is a symlink; the model manifest must be a "
                                  "regular file in the models folder.")
    if not path.exists():
        if missing_ok:
            return {"models": {}}
        raise ModelIntegrityError(f"{path} not found: no model in {folder} is trusted. Save "
                                  "models with save_model (or record them with record_model).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{path}: cannot read the model manifest ({exc}).") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("file"), str)
        and isinstance(e.get("sha256"), str) for e in models.values()
    ):
        raise ModelIntegrityError(f"{path}: expected {{\"models\": {{name: {{\"file\": ..., "
                                  "\"sha256\": ..., ...}}}}}; the manifest is malformed.")
    return data


# ---------------------------------------------------------------------------- load


def load_model(
    path_or_name: str | os.PathLike[str],
    folder: str | os.PathLike[str] = "models",
    *,
    rules: str | os.PathLike[str] = "rf-grid",
) -> SegmentationModel:
    """Load a model from the models folder after checking its sha256 against the manifest.

    Steps, in order: resolve the file inside ``folder`` (refusing ``..``, symlinks and
    anything outside); find its manifest entry; read its bytes once (not following
    symlinks) and compare their sha256 with the entry; only then deserialize those same
    bytes. ``.skops`` files are checked with ``skops.io.get_untrusted_types`` and loaded
    with ``trusted=TRUSTED_TYPES``. ``.joblib`` files are unpickled: a joblib (pickle)
    file runs code when loaded, so only files you recorded yourself get this far.
    ``.json`` scorer files are parsed as data and wrapped with
    `SegmentationModel.from_scorer`.

    Parameters
    ----------
    path_or_name : str or path-like
        A manifest name (``"model"``), a file name inside ``folder``
        (``"model.skops"``) or a path to a file directly inside ``folder``.
    folder : str or path-like, default="models"
        The configured models folder.
    rules : str or path-like, default="rf-grid"
        Rule set given to a bare scorer (JSON file, or a joblib file holding an
        `RFMScorer`); a `SegmentationModel` carries its own.

    Returns
    -------
    SegmentationModel
        The fitted model.

    Raises
    ------
    ModelIntegrityError
        The file is outside ``folder``, a symlink, not in the manifest, does not match its
        recorded sha256, or holds an untrusted type or an unexpected object.
    ConfigError
        The folder or file does not exist, the name is unknown, or the suffix is not
        ``.skops``, ``.joblib`` or ``.json``.
    """
    folder = Path(folder)
    folder_real = _folder(folder)
    text = os.fspath(path_or_name)
    if isinstance(path_or_name, str) and _NAME.fullmatch(text):
        manifest = read_manifest(folder)
        entry = manifest["models"].get(text)
        if entry is None:
            known = ", ".join(sorted(manifest["models"])) or "none"
            raise ConfigError(f"No model named {text!r} in {folder / MANIFEST_NAME}; "
                              f"recorded: {known}.")
        if Path(entry["file"]).name != entry["file"]:
            raise ModelIntegrityError(f"{folder / MANIFEST_NAME}: entry {text!r} names "
                                      f"{entry['file']!r}, which is not a plain file name.")
        path = _inside(Path(entry["file"]), folder, folder_real)
    else:
        path = _inside(Path(text), folder, folder_real)
        manifest = read_manifest(folder)
        entries = [e for e in manifest["models"].values() if e["file"] == path.name]
        if not entries:
            raise ModelIntegrityError(
                f"{path} is not recorded in {folder / MANIFEST_NAME}; refusing to load an "
                "unrecorded model file. Save it with save_model (or record_model if you made "
                "it yourself)."
            )
        entry = entries[0]
    fmt = _format(path)
    if entry.get("format", fmt) != fmt:
        raise ModelIntegrityError(f"{path}: the manifest records format {entry['format']!r} "
                                  f"but the file suffix means {fmt!r}.")
    data = _read_no_follow(path)
    digest = hashlib.sha256(data).hexdigest()
    if not hmac.compare_digest(digest, entry["sha256"].lower()):
        raise ModelIntegrityError(
            f"{path}: sha256 {digest[:12]}... does not match {entry['sha256'][:12]}... recorded "
            f"in {folder / MANIFEST_NAME}; the file was changed or replaced. Refusing to load "
            "it; restore the file or promote/save the model again."
        )
    if fmt == "skops":
        obj = load_skops(data, str(path))
    elif fmt == "joblib":
        import joblib

        with _moved_modules():
            obj = joblib.load(io.BytesIO(data))  # runs code: reached only after the hash check
    else:
        try:
            obj = RFMScorer.from_dict(json.loads(data.decode("utf-8")), source=str(path))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a JSON scorer file ({exc}).") from None
    if isinstance(obj, RFMScorer):
        return SegmentationModel.from_scorer(obj, rules=rules)
    if not isinstance(obj, SegmentationModel):
        raise ModelIntegrityError(f"{path} holds a {type(obj).__module__}."
                                  f"{type(obj).__qualname__}, not a SegmentationModel.")
    return obj


def load_skops(data: bytes, where: str) -> Any:
    """Load skops bytes allowing only skops' defaults and `TRUSTED_TYPES`."""
    import skops.io

    data = _moved_paths(data)
    extra = _untrusted(data, where)
    if extra:
        raise ModelIntegrityError(
            f"{where} holds type(s) {', '.join(extra)} outside TRUSTED_TYPES "
            f"({', '.join(TRUSTED_TYPES)}); refusing to load it."
        )
    return skops.io.loads(data, trusted=list(TRUSTED_TYPES))


def _moved_paths(data: bytes) -> bytes:
    """Return skops bytes whose schema names every class of `MOVED_TYPES` at its new path.

    Bytes that are not a readable skops file are returned as they are (`_untrusted` reports
    them); so are files that name no moved class.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
            schema = json.loads(archive.read("schema.json"))
    except Exception:  # zipfile/json errors on a damaged file
        return data
    moved = 0

    def visit(node: Any) -> None:
        nonlocal moved
        if isinstance(node, dict):
            new = MOVED_TYPES.get(f"{node.get('__module__')}.{node.get('__class__')}")
            if new is not None:
                node["__module__"], node["__class__"] = new.rsplit(".", 1)
                moved += 1
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    if not moved:
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info, content in members:
            if info.filename == "schema.json":
                content = json_text(schema).encode("utf-8")
            archive.writestr(info, content)
    return out.getvalue()


@contextmanager
def _moved_modules() -> Iterator[None]:
    """While a pickle is read, let the old module paths of `MOVED_TYPES` name the new modules."""
    import importlib

    added = []
    for old, new in MOVED_TYPES.items():
        old_module, new_module = old.rsplit(".", 1)[0], new.rsplit(".", 1)[0]
        if old_module not in sys.modules:
            sys.modules[old_module] = importlib.import_module(new_module)
            added.append(old_module)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def _untrusted(data: bytes, where: str = "the model") -> list[str]:
    import skops.io

    try:
        found = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # zipfile/json/skops errors on a damaged file
        raise ModelIntegrityError(f"{where}: not a readable skops file ({exc}).") from None
    return [t for t in found if t not in TRUSTED_TYPES]


# ---------------------------------------------------------------------------- helpers


def _folder(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"Models folder {str(path)!r} does not exist.")
    return path.resolve(strict=True)


def _inside(path: Path, folder: Path, folder_real: Path) -> Path:
    """Resolve ``path`` to a regular, non-symlink file directly inside ``folder``."""
    if ".." in path.parts:
        raise ModelIntegrityError(f"{path}: '..' is not allowed in a model path; models load "
                                  f"only from {folder}.")
    if not path.is_absolute() and len(path.parts) == 1:
        path = folder / path
    if path.is_symlink():
        raise ModelIntegrityError(f"{path} is a symlink; models load only from regular files "
                                  f"in {folder}.")
    if path.parent.resolve() != folder_real:
        raise ModelIntegrityError(f"{path} is outside the models folder {folder}; copy it there "
                                  "and record it, or configure that folder.")
    if not path.is_file():
        raise ConfigError(f"Model file {str(path)!r} not found.")
    return path


def _read_no_follow(path: Path) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelIntegrityError(f"{path}: cannot open the model file ({exc}).") from None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unsupported model file suffix {path.suffix!r}; use "
                          f"{', '.join(FORMATS)}.")
    return fmt


def check_name(name: str) -> None:
    """Refuse a model name that is not 1-100 letters, digits, ``_`` or ``-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError("A model name must be 1-100 letters, digits, '_' or '-', starting "
                          f"with a letter or digit. Got {name!r} instead.")


def _entry(file: str, sha256: str, fmt: str, source: str | None) -> dict[str, Any]:
    return {
        "file": file,
        "sha256": sha256,
        "format": fmt,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rfm_engine_version": __version__,
        "source": source,
    }


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json_text(manifest, sort_keys=True)


def load_frozen(path: str | os.PathLike[str], *, folder: str | os.PathLike[str] = "models",
                rules: str | os.PathLike[str] = "rf-grid") -> SegmentationModel:
    """Load the frozen model a run names: a JSON scorer from anywhere, a model from ``folder``.

    A ``.json`` scorer (:func:`rfm_engine.save_scorer`) is plain data, parsed without
    running code, so it loads from any path and gets ``rules``. ``.skops`` and
    ``.joblib`` models go through :func:`load_model`: only from ``folder``, and only
    after their sha256 matches the manifest.

    Parameters
    ----------
    path : str or path-like
        The model or scorer file.
    folder : str or path-like, default="models"
        The configured models folder.
    rules : str or path-like, default="rf-grid"
        Rule set for a bare scorer.

    Returns
    -------
    SegmentationModel
    """
    if str(path).endswith(".json"):
        from ..core.scoring import load_scorer

        return SegmentationModel.from_scorer(load_scorer(path), rules=rules)
    return load_model(path, folder=folder, rules=rules)
