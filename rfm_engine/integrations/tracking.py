"""MLflow tracking of runs and the model registry (optional integration).

MLflow is an optional dependency, the ``mlflow`` extra (``pip install 'rfm-engine[mlflow]'``).
Core modules never import this module; it imports MLflow only inside its functions, so
``import rfm_engine.integrations.tracking`` is cheap and works without MLflow: a function
that needs it then raises :class:`~rfm_engine.errors.MissingDependencyError` naming the
extra (the CLI skips tracking with one line saying so). Every function first sets
``MLFLOW_DISABLE_TELEMETRY=true`` (MLflow 3.2+ sends anonymous usage data unless it is
set *before* ``import mlflow``): the engine never reaches the network.

* `tracking_uri` picks the store: the argument, else ``MLFLOW_TRACKING_URI``, else
  ``sqlite:///mlflow.db`` in the working folder (MLflow 3's recommended local store; the
  file store is deprecated). Artifacts of a new experiment go to ``mlruns/`` beside a
  SQLite database.
* `track_run` logs one run: config as params, KPIs as metrics, summary files as artifacts
  (never a file holding e-mail addresses) and the fitted model, saved with skops and
  registered as a new version of ``rfm-segmentation``.
* `list_models` lists the registered versions; `promote` freezes one into ``models/``
  (hash-checked manifest) and points the ``production`` alias at it.

Loading registered models (design decision). `promote` does not call
``mlflow.sklearn.load_model``: MLflow 3 refuses to deserialize any model, skops included,
unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` is set process-wide (which would also
allow pickles), and it trusts the ``skops_trusted_types`` list written in the artifact's
own ``MLmodel`` file. `promote` downloads the artifact and loads its ``model.skops`` with
this package's own :data:`~rfm_engine.integrations.model_store.TRUSTED_TYPES` instead.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import logging
import math
import numbers
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ComplianceError, ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

    from ..core.model import SegmentationModel

__all__ = [
    "DEFAULT_EXPERIMENT",
    "DEFAULT_REGISTERED_MODEL",
    "DEFAULT_TRACKING_URI",
    "INSTALL_HINT",
    "list_models",
    "promote",
    "track_run",
    "tracking_uri",
]

#: Store used when neither the argument nor ``MLFLOW_TRACKING_URI`` names one.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Experiment the runs are logged to.
DEFAULT_EXPERIMENT = "rfm-engine"
#: Registered model the fitted models become versions of.
DEFAULT_REGISTERED_MODEL = "rfm-segmentation"

#: How to install MLflow: named by every message about it missing.
INSTALL_HINT = "pip install 'rfm-engine[mlflow]'"

_MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value
_MAX_KEY = 250  # MLflow's limit on a param/metric key
_EMAIL = re.compile(rb"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# A header that names an address column ("Email", "e-mail", "Email Address"), not a count
# such as "no_email"; text files are also scanned for addresses themselves.
_EMAIL_COLUMN = re.compile(r"\s*(e[-_ ]?mail|e[-_ ]?mail[-_ ]?address(es)?|mail[-_ ]?address)\s*",
                           re.IGNORECASE)
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".jsonl", ".html", ".htm", ".md", ".xml",
                  ".yaml", ".yml", ".toml", ".svg", ".log"}
_TABLE_SUFFIXES = {".csv", ".tsv"}


def _quiet_environment() -> None:
    """Keep MLflow off the network; must run before the first ``import mlflow``.

    Its INFO chatter ("Created version 3 ...") is also turned down: the CLI reports the
    run id and model version itself.
    """
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _import_mlflow() -> Any:
    """Import MLflow, telemetry off first.

    Raises
    ------
    MissingDependencyError
        If ``import mlflow`` fails (not installed: the ``mlflow`` extra).
    """
    _quiet_environment()
    try:
        import mlflow
    except ImportError as exc:
        raise MissingDependencyError(f"MLflow is not installed ({exc}); install it with "
                                     f"{INSTALL_HINT}") from None
    return mlflow


def tracking_uri(uri: str | None = None) -> str:
    """Return the MLflow tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else SQLite.

    Also sets ``MLFLOW_DISABLE_TELEMETRY=true`` (for MLflow imported afterwards).

    Parameters
    ----------
    uri : str or None, default=None
        An explicit tracking URI, e.g. ``"sqlite:///runs/mlflow.db"``.

    Returns
    -------
    str
        The URI; the default is ``"sqlite:///mlflow.db"``, relative to the working folder.

    Examples
    --------
    >>> tracking_uri("sqlite:///tmp/x.db")
    'sqlite:///tmp/x.db'
    >>> os.environ["MLFLOW_DISABLE_TELEMETRY"]
    'true'
    """
    return _resolve_uri(uri)


def _resolve_uri(uri: str | None) -> str:
    _quiet_environment()
    if uri:
        return str(uri)
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def track_run(
    kind: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]]
    | None = None,
    model: SegmentationModel | None = None,
    register_as: str | None = DEFAULT_REGISTERED_MODEL,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Log one engine run to MLflow: params, metrics, artifacts and the fitted model.

    Every artifact is checked before the run starts, so a refused file leaves no run.

    Parameters
    ----------
    kind : str
        What ran (``"weekly"``, ``"segment"``...): the run name and tag
        ``rfm_engine.kind``.
    params : mapping or None, default=None
        Configuration. Nested mappings are flattened with dotted keys
        (``{"scoring": {"n_bins": 5}}`` -> ``scoring.n_bins``); values longer than 6000
        characters are truncated (``...`` at the end).
    metrics : mapping or None, default=None
        Numbers, nested mappings allowed (``{"segment_size": {"champions": 120}}`` ->
        ``segment_size.champions``). Names are sanitized to MLflow's characters
        (letters, digits, ``_ - . / space``; anything else becomes ``_``). A value that
        is not a finite number (NaN, infinity, None) is not logged; one warning names
        them all.
    artifacts : mapping, sequence or None, default=None
        Files or folders to log: a sequence logs each under its own name; a mapping
        ``{artifact name: path}`` logs each file under the given (relative) name, e.g.
        ``{"summary/segments.csv": path}``.
    model : SegmentationModel or None, default=None
        The fitted model, logged with ``mlflow.sklearn.log_model`` in skops format
        (trusted types: :data:`~rfm_engine.integrations.model_store.TRUSTED_TYPES`).
    register_as : str or None, default="rfm-segmentation"
        Registered model the logged model becomes a new version of; None to not register.
    tracking_uri : str or None, default=None
        See :func:`tracking_uri`.
    experiment : str, default="rfm-engine"
        Experiment name; created if missing.
    tags : mapping or None, default=None
        Extra run tags.

    Returns
    -------
    dict
        ``run_id``, ``experiment_id``, ``model_uri`` (or None) and ``model_version``
        (int, or None when no model was registered).

    Raises
    ------
    MissingDependencyError
        If MLflow is not installed (checked first: nothing else is done then).
    ComplianceError
        If an artifact holds e-mail addresses (a CSV/TSV column named like ``email``, or an
        address in a text file) or is a Parquet file with such a column.
    ConfigError
        If an artifact is missing, a metric is text or another non-number, or a name is
        invalid.

    Examples
    --------
    >>> track_run("weekly", params={"scoring": {"n_bins": 5}},
    ...           metrics={"segment_size": {"champions": 120}},
    ...           artifacts=["out/summary.csv"], model=model)  # doctest: +SKIP
    {'run_id': '...', 'experiment_id': '1', 'model_uri': 'models:/m-...', 'model_version': 1}
    """
    uri = _resolve_uri(tracking_uri)
    mlflow = _import_mlflow()
    flat_params = {_key(k): _param_value(v) for k, v in _flatten(params or {}).items()}
    flat_metrics: dict[str, float] = {}
    not_finite: list[str] = []
    for name, value in _flatten(metrics or {}).items():
        number = _metric_value(name, value)
        if math.isfinite(number):
            flat_metrics[_key(name)] = number
        else:
            not_finite.append(name)
    if not_finite:
        warnings.warn(f"{len(not_finite)} metric(s) not logged to MLflow because they are not "
                      f"finite numbers: {', '.join(not_finite)}.", UserWarning, stacklevel=2)
    files = _artifact_files(artifacts)
    for _, path in files:
        _check_no_emails(path)
    if model is not None:
        from ..core._estimator import check_is_fitted

        check_is_fitted(model)

    importlib.import_module("mlflow.sklearn")

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # the CLI reports run and version


    with _pointed_at(uri):
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return _log_run(mlflow, uri, kind, experiment, tags, flat_params, flat_metrics, files,
                        model, register_as)


def _log_run(mlflow: Any, uri: str, kind: str, experiment: str,
             tags: Mapping[str, Any] | None, flat_params: dict[str, str],
             flat_metrics: dict[str, float], files: list[tuple[str, Path]], model: Any,
             register_as: str | None) -> dict[str, Any]:
    experiment_id = _experiment_id(mlflow, experiment, uri)
    run_tags = {"rfm_engine.kind": str(kind), **{str(k): str(v) for k, v in (tags or {}).items()}}
    result: dict[str, Any] = {"run_id": None, "experiment_id": experiment_id,
                              "model_uri": None, "model_version": None}
    with mlflow.start_run(experiment_id=experiment_id, run_name=str(kind),
                          tags=run_tags) as run:
        result["run_id"] = run.info.run_id
        items = list(flat_params.items())
        for start in range(0, len(items), 100):  # MLflow's batch limit
            mlflow.log_params(dict(items[start:start + 100]))
        if flat_metrics:
            mlflow.log_metrics(flat_metrics)
        if files:
            with tempfile.TemporaryDirectory(prefix="rfm-artifacts-") as staging:
                for name, path in files:
                    target = Path(staging, name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                mlflow.log_artifacts(staging)
        if model is not None:
            # MLflow prints "Registered model ... / Created version N" straight to stderr;
            # the caller reports the version from the return value instead.
            with contextlib.redirect_stderr(io.StringIO()):
                info = _log_model(mlflow, model, register_as)
            result["model_uri"] = info.model_uri
            if register_as is not None and info.registered_model_version is not None:
                result["model_version"] = int(info.registered_model_version)
    return result


def list_models(name: str = DEFAULT_REGISTERED_MODEL,
                tracking_uri: str | None = None) -> pd.DataFrame:
    """List the registered versions of a model, oldest first.

    Parameters
    ----------
    name : str, default="rfm-segmentation"
        Registered model name.
    tracking_uri : str or None, default=None
        See :func:`tracking_uri`.

    Returns
    -------
    DataFrame
        ``version`` (int), ``run_id``, ``created`` (UTC timestamp), ``aliases`` (comma
        separated), ``stage``, ``status`` and ``source``; empty when nothing is
        registered under ``name``.

    Raises
    ------
    MissingDependencyError
        If MLflow is not installed.

    Examples
    --------
    >>> list_models(tracking_uri="sqlite:///mlflow.db")  # doctest: +SKIP
       version  run_id  created  aliases     stage  status  source
    0        1  ...      ...      production  None   READY   models:/m-...
    """
    import pandas as pd

    client = _client(tracking_uri)
    quoted = name.replace("'", "\\'")
    versions = sorted(client.search_model_versions(f"name = '{quoted}'"),
                      key=lambda v: int(v.version))
    # search_model_versions leaves ModelVersion.aliases empty on the SQL store: read the
    # registered model's alias -> version map instead.
    aliases: dict[int, list[str]] = {}
    if versions:
        for alias, number in client.get_registered_model(name).aliases.items():
            aliases.setdefault(int(number), []).append(alias)
    rows = [{
        "version": int(v.version),
        "run_id": v.run_id,
        "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC"),
        "aliases": ",".join(sorted(aliases.get(int(v.version), []))),
        "stage": v.current_stage,
        "status": v.status,
        "source": v.source,
    } for v in versions]
    columns = ["version", "run_id", "created", "aliases", "stage", "status", "source"]
    return pd.DataFrame(rows, columns=columns)


def promote(
    version: int | str,
    name: str = DEFAULT_REGISTERED_MODEL,
    folder: str | os.PathLike[str] = "models",
    tracking_uri: str | None = None,
    *,
    as_name: str = "model",
    alias: str = "production",
) -> Path:
    """Freeze a registered model version into ``folder`` and point ``alias`` at it.

    Downloads the version's artifact, loads its ``model.skops`` with this package's
    :data:`~rfm_engine.integrations.model_store.TRUSTED_TYPES` (not MLflow's loader, see the
    module notes), saves it with :func:`rfm_engine.integrations.model_store.save_model` (the
    manifest records ``source = "models:/<name>/<version>"``) and sets the alias on that
    version.

    Parameters
    ----------
    version : int or str
        Registered version number.
    name : str, default="rfm-segmentation"
        Registered model name.
    folder : str or path-like, default="models"
        The models folder.
    tracking_uri : str or None, default=None
        See :func:`tracking_uri`.
    as_name : str, default="model"
        Name in the models folder (file ``<as_name>.skops``).
    alias : str, default="production"
        Alias set on the promoted version.

    Returns
    -------
    Path
        The ``.skops`` file written.

    Raises
    ------
    MissingDependencyError
        If MLflow is not installed.
    ConfigError
        If the version does not exist.
    ModelIntegrityError
        If the artifact holds a type outside ``TRUSTED_TYPES`` or is not a model.

    Examples
    --------
    >>> promote(3, folder="models")  # doctest: +SKIP
    PosixPath('models/model.skops')
    """
    uri = _resolve_uri(tracking_uri)
    with _pointed_at(uri):
        return _promote(version, name, folder, uri, as_name, alias)


def _promote(version: int | str, name: str, folder: str | os.PathLike[str], uri: str,
             as_name: str, alias: str) -> Path:
    from ..core.model import SegmentationModel
    from ..errors import ModelIntegrityError
    from .model_store import load_skops, save_model

    client = _client(uri)
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise ConfigError(f"No version {version!r} of registered model {name!r} in {uri} "
                          f"({exc.message}). See list_models().") from None
    import mlflow.artifacts

    source = f"models:/{name}/{mv.version}"
    with tempfile.TemporaryDirectory(prefix="rfm-promote-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=tmp, tracking_uri=uri, registry_uri=uri))
        found = sorted(local.rglob("model.skops")) if local.is_dir() else [local]
        if len(found) != 1 or found[0].is_symlink() or not found[0].is_file():
            raise ModelIntegrityError(f"{source}: expected one model.skops file in the "
                                      "artifact (a model logged by track_run).")
        model = load_skops(found[0].read_bytes(), source)
    if not isinstance(model, SegmentationModel):
        raise ModelIntegrityError(f"{source} holds a {type(model).__name__}, not a "
                                  "SegmentationModel.")
    path = save_model(model, folder, as_name, source=source)
    client.set_registered_model_alias(name, alias, str(mv.version))
    return path


# ---------------------------------------------------------------------------- helpers


def _log_model(mlflow: Any, model: Any, register_as: str | None) -> Any:
    from .model_store import TRUSTED_TYPES

    return mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=list(TRUSTED_TYPES),
        registered_model_name=register_as,
        pip_requirements=_pip_requirements(),  # skips the slow inference subprocess
    )


@contextlib.contextmanager
def _pointed_at(uri: str) -> Iterator[None]:
    """Set ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` to ``uri``; restore them after.

    MLflow reads them where an explicit URI is not passed down (resolving ``models:/``
    URIs), and its ``set_tracking_uri``/``set_registry_uri`` write them process-wide, so
    every later subprocess would inherit them.
    """
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, uri))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _client(uri: str | None) -> Any:
    uri = _resolve_uri(uri)
    return _import_mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(mlflow: Any, name: str, uri: str) -> str:
    """Return the experiment's id, creating it (artifacts in ``mlruns/`` by the db)."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        location = (db.resolve().parent / "mlruns").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def _pip_requirements() -> list[str]:
    import importlib.metadata

    found = []
    for package in ("rfm-engine", "scikit-learn", "skops", "numpy", "pandas"):
        try:
            found.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with dotted keys.

    Examples
    --------
    >>> _flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3})
    {'a.b': 1, 'a.c.d': 2, 'e': 3}
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def _key(name: str) -> str:
    """Sanitize a param or metric name to MLflow's allowed characters.

    Examples
    --------
    >>> _key("segment_size.Can't lose/2")
    'segment_size.Can_t lose/2'
    >>> _key("../revenue share (EUR)")
    'revenue share _EUR_'
    """
    clean = re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(name))
    parts = [p.strip() for p in clean.split("/")]
    clean = "/".join(p for p in parts if p and set(p) != {"."})
    if not clean:
        raise ConfigError(f"Cannot log {name!r}: nothing is left of the name after keeping "
                          "letters, digits, '_', '-', '.', ' ' and '/'.")
    return clean[:_MAX_KEY]


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, Path):
        text = str(value)
    else:
        try:
            from ..io.writers import json_text

            text = json_text(value, indent=None).removesuffix("\n")
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > _MAX_PARAM_VALUE:
        text = text[:_MAX_PARAM_VALUE - 3] + "..."
    return text


def _metric_value(name: str, value: Any) -> float:
    """Return a metric as a float: NaN for None or a missing value (never logged)."""
    if value is None:
        return math.nan
    if isinstance(value, numbers.Real):
        return float(value)
    raise ConfigError(f"Metric {name!r} must be a number; got {value!r}.")


def _artifact_files(
    artifacts: Mapping[str, Any] | Sequence[Any] | None,
) -> list[tuple[str, Path]]:
    """Artifact name (relative, POSIX) and local file, folders expanded."""
    if artifacts is None:
        return []
    if isinstance(artifacts, str | os.PathLike):
        artifacts = [artifacts]
    if isinstance(artifacts, Mapping):
        named = [(str(name), Path(path)) for name, path in artifacts.items()]
    else:
        named = [(Path(path).name, Path(path)) for path in artifacts]
    files: list[tuple[str, Path]] = []
    for name, path in named:
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise ConfigError(f"Artifact name {name!r} must be a relative path without '..'.")
        if path.is_dir():
            files += [(Path(name, f.relative_to(path)).as_posix(), f)
                      for f in sorted(path.rglob("*")) if f.is_file()]
        elif path.is_file():
            files.append((Path(name).as_posix(), path))
        else:
            raise ConfigError(f"Artifact {str(path)!r} not found.")
    return files


def _check_no_emails(path: Path) -> None:
    """Refuse a file that looks like it holds e-mail addresses (nothing is logged then)."""
    suffix = path.suffix.lower()
    hint = ("Tracking artifacts must never hold e-mail addresses: log segment summaries and "
            "counts, not target lists.")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = pq.read_schema(path).names
        bad = [c for c in columns if _EMAIL_COLUMN.fullmatch(str(c))]
        if bad:
            raise ComplianceError(f"{path}: column(s) {', '.join(map(repr, bad))} look like "
                                  f"e-mail addresses. {hint}")
        return
    if suffix in _TABLE_SUFFIXES:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ","), [])
        bad = [c for c in header if _EMAIL_COLUMN.fullmatch(c)]
        if bad:
            raise ComplianceError(f"{path}: column(s) {', '.join(map(repr, bad))} look like "
                                  f"e-mail addresses. {hint}")
    if suffix in _TEXT_SUFFIXES:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if _EMAIL.search(line):
                    raise ComplianceError(f"{path}, line {number}: holds an e-mail address. "
                                          f"{hint}")


def segmentation_metrics(summary: Any, quality: Mapping[str, Any] | None = None) -> dict:
    """Metrics of a segmentation: sizes, shares and revenue shares per segment, drops.

    Parameters
    ----------
    summary : DataFrame
        The segment table (:func:`rfm_engine.segment_summary`).
    quality : mapping, optional
        ``DataQualityReport.to_dict()``.

    Returns
    -------
    dict
        Nested metrics for :func:`track_run`.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"segment": ["a"], "customers": [3], "share": [1.0],
    ...                       "revenue_share": [1.0]})
    >>> segmentation_metrics(table)["segment_size"]
    {'a': 3}
    """
    metrics: dict[str, Any] = {
        "customers": int(summary["customers"].sum()),
        "segment_size": dict(zip(summary["segment"], summary["customers"].astype(int),
                                 strict=True)),
        "segment_share": dict(zip(summary["segment"], summary["share"], strict=True)),
        "revenue_share": dict(zip(summary["segment"], summary["revenue_share"].fillna(0.0),
                                  strict=True)),
    }
    if quality:
        metrics["dropped"] = dict(quality.get("dropped", {}))
        metrics["rows_read"] = quality.get("rows_read", 0)
        metrics["rows_kept"] = quality.get("rows_kept", 0)
    return metrics


def run_metrics(result: Any) -> dict:
    """Metrics of a weekly run: the segmentation's, plus per-campaign list counts.

    Parameters
    ----------
    result : RunResult
        From :func:`rfm_engine.run_weekly`.

    Returns
    -------
    dict
        Nested metrics for :func:`track_run`.
    """
    metrics = segmentation_metrics(result.segments, result.manifest["counts"]["cleaning"])
    kpis = Path(result.run_dir) / "kpis.json"
    if kpis.is_file():
        headline = json.loads(kpis.read_text(encoding="utf-8"))
        metrics["kpi"] = headline.get("period", {})
        # null: predicted CLV was skipped (the run's warnings say why), nothing to log.
        metrics["predicted_clv"] = {k: v for k, v in (headline.get("predicted_clv") or {}).items()
                                    if v is not None}
    for row in result.campaigns.to_dict("records"):
        name = row.pop("campaign")
        metrics[f"campaign.{name}"] = {k: v for k, v in row.items()
                                       if isinstance(v, int | float)}
    return metrics


def run_tags(result: Any) -> dict[str, str]:
    """Tags of a weekly run: its as-of date and the CLV model it predicted with.

    ``clv_model`` (``"bgnbd"``, ``"pareto-nbd"``) and ``clv_params`` (the params file it
    scored with, when it did not fit) come from ``kpis.json``; absent when predicted CLV
    was skipped.

    Parameters
    ----------
    result : RunResult
        From :func:`rfm_engine.run_weekly`.

    Returns
    -------
    dict
        For :func:`track_run`'s ``tags``.
    """
    tags = {"as_of": result.as_of.isoformat()}
    kpis = Path(result.run_dir) / "kpis.json"
    if kpis.is_file():
        used = json.loads(kpis.read_text(encoding="utf-8")).get("predicted_clv_model") or {}
        if used.get("model"):
            tags["clv_model"] = used["model"]
        if used.get("params_file"):
            tags["clv_params"] = used["params_file"]
    return tags


#: Files of a run folder that are safe to log: no list, no customer table, no email.
RUN_ARTIFACTS = ("manifest.json", "segments.csv", "campaigns.csv", "quality.json",
                 "summary.html", "kpis.html", "kpis.csv", "kpis.json",
                 "migration/transition_matrix.csv", "migration/transition_matrix.png")


def run_artifacts(run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Return the loggable artifacts of a run folder, ``{artifact name: path}``."""
    folder = Path(run_dir)
    return {name: folder / name for name in RUN_ARTIFACTS if (folder / name).is_file()}
