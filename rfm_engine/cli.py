"""The ``rfm-engine`` command line: a thin adapter over the library.

Every command parses its options (shared ones are declared once, as decorators), calls
one library function and prints what it returns; :func:`main` maps errors to exit codes
(see :mod:`rfm_engine.errors`).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .errors import ConfigError, MissingDependencyError, RFMEngineError
from .io.columns import parse_column_spec
from .progress import bars_shown, show_bars

if TYPE_CHECKING:
    from .config import Config

__all__ = ["cli", "main"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: Units of ``clv --horizon-unit`` and ``--discount-per``.
_CLV_UNITS = ["D", "W", "M", "day", "week", "month"]


def _input_argument(func: Callable) -> Callable:
    return click.argument("input_path", metavar="INPUT", required=False,
                          type=click.Path(path_type=Path))(func)


def _input_options(func: Callable) -> Callable:
    """Options shared by every command that reads transactions."""
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path),
                     help="TOML run configuration ([input], [columns], [features], ...)."),
        click.option("--columns", help="Column mapping: 'customer_id=Customer ID,"
                     "order_date=InvoiceDate,...'."),
        click.option("--as-of", help="Inclusive observation end, YYYY-MM-DD "
                     "(default: the latest transaction date)."),
        click.option("--window-days", type=int, help="Only count the N days ending on --as-of."),
        click.option("--date-format", help="strftime format for non-ISO dates, e.g. '%d/%m/%Y'."),
        click.option("--decimal", type=click.Choice([".", ","]),
                     help="Decimal separator of numbers in text files (default '.')."),
        click.option("--on-bad-rows", type=click.Choice(["raise", "drop"]),
                     help="Malformed values stop the run (raise, default) or are dropped "
                     "and counted."),
        click.option("--max-drop-fraction", type=float,
                     help="Fail when more than this share of rows is dropped (default 0.5)."),
        click.option("--max-shared-order-fraction", type=float,
                     help="Fail when more than this share of order ids is used by more than "
                     "one customer (default 0.01)."),
        click.option("--min-date", help="Plausibility floor of order dates, YYYY-MM-DD: earlier "
                     "dates are refused, or dropped with --on-bad-rows drop (default 1900-01-01)."),
        click.option("--delimiter", help="CSV delimiter (default: sniffed); 'whitespace': "
                     "fields separated by runs of spaces or tabs (CDNOW's raw files)."),
        click.option("--encoding", help="CSV encoding (default: UTF-8, BOM or not)."),
        click.option("--no-header", "no_header", is_flag=True, default=None,
                     help="The text file has no header line (then --names names the columns)."),
        click.option("--names", help="Column names of a file without a header, one per field: "
                     "'master_id,customer_id,order_date,quantity,amount'."),
        click.option("--table", help="Table name when INPUT is a DuckDB database; with "
                     "--engine spark, a table of Spark's catalog (then no INPUT)."),
        click.option("--engine", type=click.Choice(["duckdb", "spark"]),
                     help="Where the transactions are loaded and aggregated: duckdb (default) "
                     "or spark (Parquet, Delta, CSV or a catalog table; pip install "
                     "rfm-engine[spark])."),
        click.option("--memory-limit", help="DuckDB's memory limit, such as 1GB (default); "
                     "beyond it DuckDB spills to a temporary folder."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _tracking_uri_option(func: Callable) -> Callable:
    """``--tracking-uri``: the MLflow store of every command that talks to MLflow."""
    return click.option("--tracking-uri",
                        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else "
                        "sqlite:///mlflow.db in the working folder).")(func)


def _tracking_options(func: Callable) -> Callable:
    """--tracking-uri / --no-tracking: every segment, cluster and run is an MLflow run."""
    func = click.option("--no-tracking", is_flag=True,
                        help="Do not log an MLflow run (also: RFM_ENGINE_NO_TRACKING=1).")(func)
    return _tracking_uri_option(func)


def _segments_option(purpose: str) -> Callable[[Callable], Callable]:
    """``--segments NAME|FILE``: the rule set, for ``purpose`` (the help text)."""
    return click.option("--segments", "rules", help=f"{purpose} (default: rf-grid).")


def _bins_option(help: str = "Score levels per dimension (default 5).") -> Callable[
        [Callable], Callable]:
    """``--bins N``: score levels per dimension."""
    return click.option("--bins", "n_bins", type=int, help=help)


def _track(enabled: bool, uri: str | None, kind: str,
           collect: Callable[[], dict[str, Any]]) -> None:
    """Log an MLflow run once the outputs are written (or published).

    ``collect`` returns the arguments of :func:`rfm_engine.integrations.tracking.track_run` (params,
    metrics, artifacts, model, tags); it runs here so that a failure while gathering them
    is handled like a failure to log. Nothing after the outputs may turn a finished
    command into a failure: any error (a refused artifact, a store that cannot be
    reached, a bug) is one warning line on stderr and the command still exits 0. Without
    MLflow (an optional extra) tracking is skipped with one line saying how to install it.
    """
    if not enabled or os.environ.get("RFM_ENGINE_NO_TRACKING", "") not in ("", "0"):
        return
    try:
        from .integrations.tracking import track_run

        info = track_run(kind, tracking_uri=uri, **collect())
    except MissingDependencyError as exc:
        _error(f"note: MLflow tracking skipped: {exc} (or pass --no-tracking).")
        return
    except Exception as exc:  # noqa: BLE001 - tracking must not fail a finished run
        why = str(exc) if isinstance(exc, RFMEngineError) else f"{type(exc).__name__}: {exc}"
        _error(f"warning: MLflow tracking failed ({why}); the outputs are written, the run is "
               "not logged.")
        return
    version = info.get("model_version")
    _echo(f"logged MLflow run {info['run_id']}" +
          (f", model version {version}" if version else ""))


def _force_option(func: Callable) -> Callable:
    """``--force``: replace existing output files."""
    return click.option("--force", is_flag=True, help="Replace existing output files.")(func)


def _output_options(func: Callable) -> Callable:
    """``-o/--output`` (required; the suffix picks the format) and ``--force``."""
    func = _force_option(func)
    return click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
                        help="Output file; the suffix (.csv or .parquet) picks the format.")(func)


#: Config key -> the command-line option that overrides it (errors name the option).
_OPTION_NAMES = {
    "input.path": "INPUT", "input.date_format": "--date-format", "input.decimal": "--decimal",
    "input.on_bad_rows": "--on-bad-rows", "input.delimiter": "--delimiter",
    "input.encoding": "--encoding", "input.table": "--table",
    "input.header": "--no-header", "input.names": "--names",
    "input.max_drop_fraction": "--max-drop-fraction", "input.min_date": "--min-date",
    "input.max_shared_order_fraction": "--max-shared-order-fraction",
    "input.memory_limit": "--memory-limit",
    "input.engine": "--engine",
    "columns": "--columns",
    "features.as_of": "--as-of", "features.window_days": "--window-days",
    "segments.rules": "--segments", "scoring.n_bins": "--bins", "scoring.model": "--model",
    "clustering.n_clusters": "--k", "clustering.k_range": "--k-range",
    "clustering.sample_size": "--sample-size", "output.dir": "--output-dir",
    "output.suppression": "--suppression", "output.no_suppression": "--no-suppression",
    "output.format": "--format", "output.allow_stale_suppression": "--allow-stale-suppression",
    "output.max_suppression_age_days": "--max-suppression-age-days",
    "output.consent": "--consent",
    "kpis.clv_model": "--model", "kpis.clv_params": "--params-in",
}


def _names(value: str | None) -> list[str] | None:
    """``--names a,b,c`` -> ``["a", "b", "c"]`` (checked when the file is opened)."""
    return None if value is None else [name.strip() for name in value.split(",")]


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


def _config(ctx_options: dict[str, Any], command: dict[str, Any] | None = None) -> Config:
    """Build the ONE effective config: the file, then the command-line options over it.

    ``ctx_options`` are the shared input options (consumed); ``command`` holds the
    command's own overrides as ``{"section.key": value}`` (None: not given). Every value
    is validated like the file's; what this returns is what the command uses, writes
    in manifests and logs to MLflow.
    """
    from .config import load_config

    config = load_config(ctx_options.pop("config_path"))
    columns = ctx_options.pop("columns", None)
    overrides = {
        "input.path": _path(ctx_options.pop("input_path")),
        "input.date_format": ctx_options.pop("date_format"),
        "input.decimal": ctx_options.pop("decimal"),
        "input.on_bad_rows": ctx_options.pop("on_bad_rows"),
        "input.delimiter": ctx_options.pop("delimiter"),
        "input.encoding": ctx_options.pop("encoding"),
        "input.header": False if ctx_options.pop("no_header") else None,
        "input.names": _names(ctx_options.pop("names")),
        "input.table": ctx_options.pop("table"),
        "input.max_drop_fraction": ctx_options.pop("max_drop_fraction"),
        "input.min_date": ctx_options.pop("min_date"),
        "input.max_shared_order_fraction": ctx_options.pop("max_shared_order_fraction"),
        "input.memory_limit": ctx_options.pop("memory_limit"),
        "input.engine": ctx_options.pop("engine"),
        "features.as_of": ctx_options.pop("as_of"),
        "features.window_days": ctx_options.pop("window_days"),
        "columns": {**config.columns, **parse_column_spec(columns)} if columns else None,
        **(command or {}),
    }
    return config.with_overrides(overrides, names=_OPTION_NAMES)


def _progress_bar() -> bool:
    """Step bars (following DuckDB's queries) only on a terminal and without -q."""
    return bars_shown()


def _beside(output: Path, tag: str) -> Path:
    """``out/segments.csv`` -> ``out/segments.csv.<tag>`` (:func:`rfm_engine.io.writers.beside`)."""
    from .io.writers import beside

    return beside(output, tag)


def _check_output(output: Path, force: bool, sides: tuple[str, ...] = (),
                  **others: Path | None) -> None:
    """Fail fast, before any work, on a bad suffix or an output that cannot be written.

    ``sides`` are the tags of the side files written beside ``output`` (:func:`_beside`);
    ``others`` are the other output options (``save_model=...`` for ``--save-model``),
    None when not given. Refuses an existing file (exit 5) unless ``force``, a folder
    where a file goes, a parent that is a file or not writable, two outputs on one path
    (exit 2).
    """
    from .io.writers import TABLE_FORMATS, check_outputs

    if output.suffix.lower() not in TABLE_FORMATS:
        raise ConfigError(f"--output {str(output)!r}: the suffix must be one of "
                          f"{', '.join(TABLE_FORMATS)}.")
    check_outputs([("--output", output),
                   *(("side file", _beside(output, tag)) for tag in sides),
                   *((f"--{key.replace('_', '-')}", path) for key, path in others.items()
                     if path is not None)], force=force)


_state = {"quiet": False}


def _set_quiet(quiet: bool) -> None:
    """Only errors reach the user: no report, tables, progress or 'wrote' lines."""
    _state["quiet"] = quiet
    logging.getLogger("rfm_engine").setLevel(logging.WARNING if quiet else logging.INFO)
    show_bars(not quiet and sys.stderr.isatty())


def _quiet_callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:  # the group's -q (rfm-engine -q run) already applied stays applied
        _set_quiet(True)


def _quiet_option(func: Callable) -> Callable:
    """``-q/--quiet``, taken by every command as well as by the group."""
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, is_eager=True,
                        callback=_quiet_callback, help="Only print errors.")(func)


def _echo(message: str = "") -> None:
    """Information for the user, on stderr; silent with --quiet."""
    if not _state["quiet"]:
        click.echo(message, err=True)


def _error(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="rfm-engine")
@click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
def cli(quiet: bool) -> None:
    """Turn raw transactions into RFM scores, segments and campaign lists.

    \b
    Example:
      rfm-engine segment data/sample/transactions.csv --config examples/demo.toml \\
          -o out/segments.csv
    """
    # Progress of our own steps only: other libraries' INFO chatter stays out.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    _set_quiet(quiet)


@cli.command(context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
def features(output: Path, force: bool, **options: Any) -> None:
    """Compute the RFM customer table (one row per customer).

    Writes OUTPUT and its data-quality report beside it, OUTPUT.quality.json
    (e.g. out/customers.parquet.quality.json).

    \b
    Example:
      rfm-engine features tx.csv --columns "customer_id=Customer ID,order_id=Invoice,\\
    order_date=InvoiceDate,quantity=Quantity,unit_price=Price" -o out/customers.parquet
    """
    from .runs.adhoc import run_features

    _check_output(output, force, ("quality.json",))
    done = run_features(_config(options), output, force=force, progress_bar=_progress_bar())
    _echo(str(done.quality))
    _echo(f"wrote {len(done.table):,} customers to {output}")


@cli.command("clv-summary", context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@click.option("--time-unit", type=click.Choice(["D", "W", "M"]), default="D", show_default=True,
              help="Unit of recency and T: days, weeks (7 days), months (30.4375 days).")
def clv_summary_command(output: Path, force: bool, time_unit: str, **options: Any) -> None:
    """Write the summary BG/NBD and Gamma-Gamma models take (lifetimes' names).

    Columns: customer_id, frequency (repeat purchase days), recency (age at the last
    purchase: first to last purchase; NOT the RFM recency_days), T (age at --as-of),
    monetary_value (mean value of the repeat purchases).

    \b
    Example (CDNOW's raw sample, calibration to 1997-09-30, weeks):
      rfm-engine clv-summary CDNOW_sample.txt --delimiter whitespace --no-header \\
          --names master_id,customer_id,order_date,cds,amount --date-format %Y%m%d \\
          --as-of 1997-09-30 --time-unit W -o out/cdnow_summary.csv
    """
    from .runs.adhoc import run_clv_summary

    _check_output(output, force, ("quality.json",))
    done = run_clv_summary(_config(options), output, time_unit=time_unit, force=force,
                           progress_bar=_progress_bar())
    _echo(str(done.quality))
    _echo(f"wrote {len(done.table):,} customers to {output}")


@cli.command(context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@_segments_option("Rule set: a built-in name (rf-grid, seed, classic, pymc) or a TOML file")
@_bins_option()
@click.option("--model", type=click.Path(path_type=Path),
              help="Frozen model to apply instead of fitting one: a scorer .json, or a "
              ".skops/.joblib model from the models folder (sha256-checked).")
@click.option("--save-model", type=click.Path(path_type=Path),
              help="Save the fitted model for later weeks: NAME.json (the scorer, plain JSON, "
              "anywhere) or DIR/NAME.skops (a SegmentationModel recorded with its sha256 in "
              "DIR/manifest.json; load it with --model from that models folder).")
@_tracking_options
def segment(output: Path, force: bool, rules: str | None, n_bins: int | None,
            model: Path | None, save_model: Path | None, tracking_uri: str | None,
            no_tracking: bool, **options: Any) -> None:
    """Score customers and assign segments; print the segment table.

    Writes OUTPUT (customers with features, scores and segment), OUTPUT.summary.csv
    (the segment table) and OUTPUT.quality.json beside it.

    \b
    Example:
      rfm-engine segment tx.csv --segments classic --bins 5 -o out/segments.csv
      rfm-engine segment next_week.csv --model models/scorer.json -o out/week2.csv
    """
    from .runs.adhoc import run_segment

    _check_output(output, force, ("quality.json", "summary.csv"), save_model=save_model)
    _check_save_model(save_model, force)
    config = _config(options, {"segments.rules": rules, "scoring.n_bins": n_bins,
                               "scoring.model": _path(model)})
    done = run_segment(config, output, save_model=save_model, force=force,
                       progress_bar=_progress_bar())
    _echo(str(done.quality))
    for message in done.segmentation.warnings:
        _echo(f"warning: {message}")
    summary = done.segmentation.summary
    if not _state["quiet"]:
        click.echo(format_summary(summary))
    for message in done.notes:
        _echo(message)
    _echo(f"wrote {len(done.segmentation.customers):,} customers to {output}")
    if save_model:
        _echo(f"saved the model to {save_model}")
    if not no_tracking:
        from .integrations.tracking import segmentation_metrics

        _track(True, tracking_uri, "segment", lambda: {
            "params": config.to_dict(),
            "metrics": segmentation_metrics(summary, done.quality.to_dict()),
            "artifacts": {"segments.csv": _beside(output, "summary.csv"),
                          "quality.json": _beside(output, "quality.json")},
            "model": done.model})


#: --save-model suffixes: the scorer as plain JSON, or a SegmentationModel in a models folder.
_SAVE_SUFFIXES = (".json", ".skops")


def _check_save_model(path: Path | None, force: bool) -> None:
    """Refuse a --save-model path before any work: unknown suffix, bad name, existing file."""
    if path is None:
        return
    from .errors import OutputExistsError
    from .integrations.model_store import MANIFEST_NAME, read_manifest

    suffix = path.suffix.lower()
    if suffix not in _SAVE_SUFFIXES:
        raise ConfigError(f"--save-model {str(path)!r}: the suffix must be .json (the scorer, "
                          "plain JSON) or .skops (a model recorded in its folder's "
                          f"{MANIFEST_NAME}); got {path.suffix or 'none'!r}.")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; pass --force to replace it.")
    if suffix == ".skops":
        from .integrations.model_store import check_name

        try:
            check_name(path.stem)
        except ConfigError as exc:
            raise ConfigError(f"--save-model {str(path)!r}: {exc}") from None
        if path.parent.is_dir():
            entry = read_manifest(path.parent, missing_ok=True)["models"].get(path.stem)
            if entry is not None and not force:
                raise OutputExistsError(f"{path.parent / MANIFEST_NAME} already records a model "
                                        f"named {path.stem!r}; pass --force to replace it.")


def _k_range(value: str | None) -> list[int] | None:
    if value is None:
        return None
    low, sep, high = value.partition("..")
    try:
        return [int(low), int(high)]
    except ValueError:
        raise ConfigError(f"--k-range: {value!r} is not of the form LOW..HIGH, e.g. 2..10.") \
            from None


@cli.command(context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@click.option("--k", "n_clusters", type=int, help="Number of clusters (default: chosen by "
              "silhouette within --k-range).")
@click.option("--k-range", help="Range of k to try, LOW..HIGH (default 2..10).")
@click.option("--sample-size", type=int, help="Customers sampled to fit and to score k "
              "(default 20000).")
@_segments_option("Rule set the clusters are compared with")
@_bins_option()
@_tracking_options
def cluster(output: Path, force: bool, n_clusters: int | None, k_range: str | None,
            sample_size: int | None, rules: str | None, n_bins: int | None,
            tracking_uri: str | None, no_tracking: bool, **options: Any) -> None:
    """Cluster customers with k-means on R, F, M and compare with the rule segments.

    Writes OUTPUT (customers with segment, cluster, cluster_name) and beside it
    OUTPUT.clusters.csv (per cluster), OUTPUT.crosstab.csv (clusters x segments),
    OUTPUT.k_scores.csv (inertia, silhouette per k), OUTPUT.elbow.png,
    OUTPUT.silhouette.png and OUTPUT.quality.json. Prints the adjusted Rand index.

    \b
    Example:
      rfm-engine cluster tx.csv --k-range 2..8 -o out/clusters.csv
      rfm-engine cluster tx.csv --k 5 --config weekly.toml -o out/clusters.parquet
    """
    from .runs.adhoc import CLUSTER_SIDES, run_cluster

    _check_output(output, force, CLUSTER_SIDES)
    config = _config(options, {"segments.rules": rules, "scoring.n_bins": n_bins,
                               "clustering.n_clusters": n_clusters,
                               "clustering.k_range": _k_range(k_range),
                               "clustering.sample_size": sample_size})
    done = run_cluster(config, output, force=force, progress_bar=_progress_bar())
    clustering = done.clustering
    _echo(str(done.quality))
    if not _state["quiet"]:
        click.echo(clustering.summary.to_string(index=False))
        click.echo(f"\nk = {clustering.clusterer.n_clusters_}; adjusted Rand index vs "
                   f"{config.segments.rules}: {clustering.adjusted_rand_index:.3f}")
    _echo(f"wrote {len(clustering.customers):,} customers to {output}")
    if not no_tracking:
        from .integrations.tracking import segmentation_metrics

        artifacts = {p.name.removeprefix(output.name + "."): p for p in done.paths
                     if p != output and p.suffix in (".csv", ".png", ".json")}
        _track(True, tracking_uri, "cluster", lambda: {
            "params": config.to_dict(),
            "metrics": {**segmentation_metrics(done.segmentation.summary,
                                               done.quality.to_dict()),
                        **{k: v for k, v in clustering.metrics().items() if v is not None}},
            "artifacts": artifacts,
            "model": done.model()})


@cli.command(context_settings=CONTEXT)
@_quiet_option
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path, exists=True,
                                                              file_okay=False))
@click.option("--transactions", "source", type=click.Path(path_type=Path),
              help="Transactions covering the days after the run's as-of date (default: "
              "[input] path of --config).")
@_input_options
@click.option("--days", type=int, default=30, show_default=True,
              help="Outcome window: the N days after the run's as-of date.")
@click.option("--alpha", type=float, default=0.05, show_default=True,
              help="Significance level (confidence intervals at 1 - alpha).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write the lift table (.csv or .parquet) and OUTPUT.png beside it.")
@_force_option
def lift(run_dir: Path, source: Path | None, days: int, alpha: float, output: Path | None,
         force: bool, **options: Any) -> None:
    """Measure each campaign of a weekly run against its holdout.

    For every campaign: conversion rate and revenue per customer of the targets vs the
    holdout in the DAYS after the run's as-of date; absolute and relative lift with
    confidence intervals, a two-proportion z-test, Welch and bootstrap intervals for
    revenue, and incremental revenue. A total row weights campaigns by their targets.

    The transactions are read with the run's own [columns] and [input] options (from its
    manifest), unless --config (its [input] and [columns]; its [features] are the run's,
    not the outcome window's, and are ignored) or the input options say otherwise.
    --as-of / --window-days cut the outcome data (rows after --as-of are ignored).

    \b
    Example:
      rfm-engine lift out/2025-12-29 --transactions data/transactions.csv --days 30
    """
    from .runs.adhoc import run_lift

    if output is not None:
        _check_output(output, force, ("png",))
    from_config = options["config_path"] is not None
    given = {key for key, value in options.items() if value is not None} - {"config_path"}
    options["input_path"] = source
    report = run_lift(run_dir, _config(options), from_config=from_config, given=given,
                      days=days, alpha=alpha, output=output, force=force)
    for message in report.warnings:
        _echo(f"warning: {message}")
    click.echo(str(report))
    if output is not None:
        _echo(f"wrote {output}")


_INPUT_KINDS = ("costs", "surveys", "tickets", "leads", "subscriptions", "email_events")


@cli.command(context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@click.option("--period", type=click.Choice(["month", "quarter"]), default="month",
              show_default=True, help="KPI period.")
@click.option("--by", type=click.Choice(["segment"]), help="Also per segment (the customer's "
              "current segment from --segments / the config's rule set).")
@_segments_option("Rule set for --by segment")
@click.option("--churn-days", type=int, default=90, show_default=True,
              help="A customer is lost after this many days without a purchase (0: not "
              "active in the next period).")
@click.option("--no-clv", is_flag=True, help="Skip the predictive CLV of the report.")
@click.option("--model", type=click.Choice(["bgnbd", "pareto-nbd"]),
              help="Purchase model of the predicted CLV: BG/NBD or Pareto/NBD (default: "
              "[kpis] clv_model, else bgnbd).")
@click.option("--params-in", type=click.Path(path_type=Path),
              help="Score the predicted CLV with the parameters of this file (clv "
              "--params-out), without fitting; its keys choose the model (default: [kpis] "
              "clv_params).")
@click.option("--costs", type=click.Path(path_type=Path), help="Marketing and sales costs "
              "per period: CAC and CLV/CAC.")
@click.option("--surveys", type=click.Path(path_type=Path), help="Survey responses: NPS, "
              "CSAT, CES.")
@click.option("--tickets", type=click.Path(path_type=Path),
              help="Support tickets: first-contact resolution.")
@click.option("--leads", type=click.Path(path_type=Path),
              help="Leads and deals: conversion rate, sales cycle.")
@click.option("--subscriptions", type=click.Path(path_type=Path),
              help="Subscriptions: renewal rate.")
@click.option("--email-events", type=click.Path(path_type=Path),
              help="Email events: delivery, open, click, bounce, spam, unsubscribe rates.")
def kpis(output: Path, force: bool, period: str, by: str | None, rules: str | None,
         churn_days: int, no_clv: bool, model: str | None, params_in: Path | None,
         **options: Any) -> None:
    """Compute CRM KPIs per period: retention, churn, repeat rate, AOV, CLV, cohorts.

    Writes OUTPUT (one row per period, or per period and segment with --by segment),
    OUTPUT.cohorts.csv (first-purchase cohort x periods since), OUTPUT.html (the KPI
    report with plots), OUTPUT.json (headline numbers and the KPIs of the optional
    inputs) and OUTPUT.quality.json; prints the table.

    \b
    Example:
      rfm-engine kpis tx.csv --config weekly.toml --period month --by segment \\
          --costs costs.csv --surveys surveys.csv -o out/kpis.csv
    """
    from .runs.adhoc import run_kpis

    _check_output(output, force, ("quality.json", "cohorts.csv", "html", "json"))
    inputs = {kind: options.pop(kind) for kind in _INPUT_KINDS}
    config = _config(options, {"segments.rules": rules, "kpis.clv_model": model,
                               "kpis.clv_params": _path(params_in)})
    done = run_kpis(config, output, inputs=inputs, period=period, by=by, churn_days=churn_days,
                    clv=not no_clv, force=force, progress_bar=_progress_bar())
    report = done.report
    _echo(str(done.quality))
    if not _state["quiet"]:
        click.echo(str(done.table))
        for title, table in report.extras.items():
            click.echo(f"\n{title}\n{table.to_string(index=False)}")
    for message in report.warnings:
        _echo(f"warning: {message}")
    _echo(f"wrote {output} and {_beside(output, 'html')}")


@cli.command(context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@click.option("--model", type=click.Choice(["bgnbd", "pareto-nbd"]),
              help="Purchase model: BG/NBD (default) or Pareto/NBD.")
@click.option("--params-in", type=click.Path(path_type=Path),
              help="Score with the parameters of this file (--params-out of an earlier "
              "run), without fitting; its keys choose the model.")
@click.option("--time-unit", type=click.Choice(["D", "W", "M"]),
              help="Time unit of the models (days, weeks, months; default W, or the "
              "params file's).")
@click.option("--horizon", type=float, default=52, show_default=True,
              help="Forecast horizon, in --horizon-unit.")
@click.option("--horizon-unit", type=click.Choice(_CLV_UNITS),
              help="Unit of the horizon (default: the time unit).")
@click.option("--discount-rate", type=float, default=0.0, show_default=True,
              help="Discount rate per --discount-per.")
@click.option("--discount-per", type=click.Choice(_CLV_UNITS),
              help="Discounting period (default: the time unit); purchases are discounted "
              "to the end of their period.")
@click.option("--days-per-month", type=float,
              help="Length of a month in days (default 30.4375; lifetimes: 30.415 with "
              "weeks, 30 with days).")
@click.option("--params-out", type=click.Path(path_type=Path),
              help="Write the parameters as JSON ({model, time_unit, bgnbd or pareto_nbd, "
              "gamma_gamma}; with --intervals, also intervals).")
@click.option("--intervals", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              metavar="LEVEL", default=None,
              help="Add LEVEL (e.g. 0.9) intervals: expected_purchases_low/high and "
              "clv_low/high columns, and the parameters' intervals in --params-out "
              "(observed information, delta method). Default: none.")
def clv(output: Path, force: bool, model: str | None, params_in: Path | None,
        time_unit: str | None, horizon: float, horizon_unit: str | None, discount_rate: float,
        discount_per: str | None, days_per_month: float | None, params_out: Path | None,
        intervals: float | None, **options: Any) -> None:
    """Fit BG/NBD (or Pareto/NBD) and Gamma-Gamma and predict each customer's lifetime value.

    Writes OUTPUT (customer_id, p_alive, expected_purchases over the horizon,
    expected_average_value, clv) and beside it OUTPUT.frequency_recency.png,
    OUTPUT.p_alive.png and OUTPUT.quality.json. When the data cannot identify the
    models (e.g. too few repeat purchases) it says why in one line, writes nothing and
    exits 3. With --params-in the models are not fitted: the file's parameters score
    the customers.

    \b
    Example (CDNOW's raw sample, calibration to 1997-09-30, weeks):
      rfm-engine clv CDNOW_sample.txt --delimiter whitespace --no-header \\
          --names master_id,customer_id,order_date,cds,amount --date-format %Y%m%d \\
          --as-of 1997-09-30 --time-unit W --model pareto-nbd --horizon 39 \\
          -o out/clv.csv --params-out out/params.json
    lifetimes' customer_lifetime_value(..., time=12, discount_rate=0.01, freq="W"):
      ... --time-unit W --horizon 12 --horizon-unit month --discount-rate 0.01 \\
          --discount-per month --days-per-month 30.415
    """
    from .runs.adhoc import CLV_SIDES, run_clv

    _check_output(output, force, CLV_SIDES, params_out=params_out)
    done = run_clv(_config(options), output, model=model, params_in=params_in,
                   time_unit=time_unit, horizon=horizon, horizon_unit=horizon_unit,
                   discount_rate=discount_rate, discount_per=discount_per,
                   days_per_month=days_per_month, params_out=params_out,
                   intervals=intervals, force=force, progress_bar=_progress_bar())
    result = done.result
    _echo(str(done.quality))
    if not _state["quiet"]:
        origin = f" (read from {result.source}, not fitted)" if result.source else ""
        click.echo(f"{result.purchase_model._LABEL} "
                   + ", ".join(f"{k}={v:.4g}" for k, v in result.purchase_model.params_.items())
                   + "; Gamma-Gamma "
                   + ", ".join(f"{k}={v:.4g}" for k, v in result.gamma_gamma.params_.items())
                   + origin)
        if result.intervals is not None:
            click.echo(str(result.intervals))
        click.echo(f"total CLV over {done.horizon}: "
                   f"{result.customers['clv'].sum():,.2f} for {len(result.customers):,} "
                   "customers")
    _echo(f"wrote {len(result.customers):,} customers to {output}")


@cli.command("clv-validate", context_settings=CONTEXT)
@_quiet_option
@_input_argument
@_input_options
@_output_options
@click.option("--calibration-end", required=True,
              help="Last day of the calibration period (the models are fitted up to it), "
              "YYYY-MM-DD.")
@click.option("--holdout-end", required=True,
              help="Last day of the holdout period (the predictions are checked up to it), "
              "YYYY-MM-DD.")
@click.option("--model", type=click.Choice(["bgnbd", "pareto-nbd"]), default="bgnbd",
              show_default=True, help="Purchase model: BG/NBD or Pareto/NBD.")
@click.option("--time-unit", type=click.Choice(["D", "W", "M"]), default="W",
              show_default=True, help="Time unit of the models (days, weeks, months).")
def clv_validate(output: Path, force: bool, calibration_end: str, holdout_end: str,
                 model: str, time_unit: str, **options: Any) -> None:
    """Fit the CLV models on a calibration period and check them against the holdout.

    Writes OUTPUT (per customer: calibration summary, actual and expected holdout purchases
    and spend) and beside it OUTPUT.json (MAE/RMSE per customer of purchases and spend,
    totals, conditional expectations, weekly tracking: strict JSON), OUTPUT.figures.csv
    (the same figures), OUTPUT.tracking.png, OUTPUT.calibration_holdout.png and
    OUTPUT.quality.json. --as-of and --window-days are not used: the two dates set the
    periods.

    \b
    Example (CDNOW's raw sample: 39 weeks of calibration, 39 of holdout):
      rfm-engine clv-validate CDNOW_sample.txt --delimiter whitespace --no-header \\
          --names master_id,customer_id,order_date,cds,amount --date-format %Y%m%d \\
          --calibration-end 1997-09-30 --holdout-end 1998-06-30 -o out/validation.csv
    """
    from .runs.adhoc import CLV_VALIDATE_SIDES, run_clv_validate

    _check_output(output, force, CLV_VALIDATE_SIDES)
    done = run_clv_validate(_config(options), output, calibration_end=calibration_end,
                            holdout_end=holdout_end, model=model, time_unit=time_unit,
                            force=force, progress_bar=_progress_bar())
    validation = done.validation
    _echo(str(done.quality))
    for message in validation.warnings:
        _echo(f"warning: {message}")
    if not _state["quiet"]:
        click.echo(format_validation(validation))
    _echo(f"wrote {len(validation.customers):,} customers to {output} and the figures to "
          f"{_beside(output, 'json')}")


def format_validation(validation: Any) -> str:
    """Render a CLV validation's metrics and conditional expectations for the terminal."""
    metrics = validation.metrics.rename(columns={
        "actual_total": "actual", "predicted_total": "predicted"})[
        ["actual", "predicted", "mae", "rmse"]]
    params = ", ".join(f"{k}={v:.4g}" for part in validation.fit.params.values()
                       for k, v in part.items())
    lines = [f"{validation.fit.purchase_model._LABEL} + Gamma-Gamma fitted to "
             f"{validation.calibration_end}: {params}",
             f"holdout {validation.calibration_end} .. {validation.holdout_end} "
             f"({validation.holdout_length:g} {validation.time_unit}), "
             f"{len(validation.customers):,} calibration customers",
             "totals and per-customer errors:",
             metrics.to_string(float_format=lambda v: f"{v:,.2f}"),
             "mean holdout purchases by calibration frequency:",
             validation.conditional.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    return "\n".join(lines)


def format_summary(summary: Any) -> str:
    """Render the segment table for the terminal."""
    from .io._format import MISSING, fixed, money, percent

    shown = summary.assign(
        share=summary["share"].map(percent),
        revenue_share=summary["revenue_share"].map(percent),
        revenue=summary["revenue"].map(lambda v: fixed(v, ",.0f")),
        mean_recency_days=summary["mean_recency_days"].map(lambda v: fixed(v, ".0f")),
        mean_frequency=summary["mean_frequency"].map(lambda v: fixed(v, ".2f")),
        mean_monetary=summary["mean_monetary"].map(money),
    )
    # The weekly run's segment table also has the predicted CLV (null when not fitted).
    predicted = {"predicted_clv": lambda v: fixed(v, ",.0f"), "mean_clv": money,
                 "mean_p_alive": percent}
    shown = shown.assign(**{c: summary[c].astype(object).map(f)
                            for c, f in predicted.items() if c in summary})
    shown = shown.rename(columns={"revenue_share": "rev_share", "mean_recency_days": "mean_R_days",
                                  "mean_frequency": "mean_F", "mean_monetary": "mean_M",
                                  "predicted_clv": "pred_CLV", "mean_clv": "mean_CLV",
                                  "mean_p_alive": "P_alive"})
    return shown.to_string(index=False, na_rep=MISSING)


@cli.command(context_settings=CONTEXT)
@_quiet_option
@click.option("--input", "input_path", type=click.Path(path_type=Path),
              help="Transactions (default: [input] path of the config).")
@_input_options
@click.option("--output-dir", type=click.Path(path_type=Path),
              help="Runs go to DIR/<as_of>/ (default: [output] dir, or out).")
@click.option("--suppression", "suppression", multiple=True, type=click.Path(path_type=Path),
              help="Suppression file (emails and/or customer ids); repeatable.")
@click.option("--no-suppression", is_flag=True, default=None,
              help="Run email campaigns without a suppression source, on purpose.")
@click.option("--max-suppression-age-days", type=click.IntRange(min=1),
              help="Suppression files older than N days stop an email run, exit 4 "
                   "(default: [output] max_suppression_age_days, or 7).")
@click.option("--allow-stale-suppression", is_flag=True, default=None,
              help="Use suppression files older than the limit anyway, with a warning.")
@click.option("--consent", "consent", type=click.Path(path_type=Path),
              help="Consent file: objections to profiling leave the run, email lists keep "
                   "only valid consent (default: [output] consent).")
@click.option("--format", "layout",
              type=click.Choice(["generic", "mailchimp", "klaviyo", "hubspot", "braze"]),
              help="Import layout of the email lists (default: [output] format, or generic).")
@click.option("--force", is_flag=True, help="Replace an existing run for the same as-of date.")
@_tracking_options
def run(output_dir: Path | None, suppression: tuple[Path, ...], no_suppression: bool | None,
        max_suppression_age_days: int | None, allow_stale_suppression: bool | None,
        consent: Path | None, layout: str | None, force: bool, tracking_uri: str | None,
        no_tracking: bool,
        **options: Any) -> None:
    """Run the weekly job: segments, campaign target lists, manifest, migration, summary.

    Runs load -> features -> scores (the frozen model when [scoring] model names one, else
    fitted and saved with the run) -> segments -> campaigns (suppression, holdout) ->
    exports, into DIR/<as_of>/. Without [[campaigns]] in the config it uses the default
    plan. Email campaigns refuse to run without a suppression source, or with a suppression
    file older than --max-suppression-age-days (exit 4).

    \b
    Example:
      rfm-engine run --config weekly.toml --as-of 2025-12-29 \\
          --suppression unsubscribed.csv --format mailchimp
    """
    from .runs.weekly import run_weekly

    config = _config(options, {
        "output.dir": _path(output_dir),
        "output.suppression": [str(p) for p in suppression] or None,
        "output.no_suppression": no_suppression, "output.format": layout,
        "output.allow_stale_suppression": allow_stale_suppression,
        "output.max_suppression_age_days": max_suppression_age_days,
        "output.consent": _path(consent)})
    result = run_weekly(config, force=force)
    shown: list[str] = []
    if result.quality is not None:
        _echo(str(result.quality))  # as segment does; its warnings are in it
        shown = result.quality.warnings
    for message in result.warnings:
        if message not in shown:
            _echo(f"warning: {message}")
    if not _state["quiet"]:
        click.echo(format_summary(result.segments))
        click.echo()
        click.echo(result.campaigns.to_string(index=False))
    _echo(f"wrote {result.run_dir}/ (summary.html, campaigns/, manifest.json)")
    if not no_tracking:
        from .integrations.tracking import run_artifacts, run_metrics, run_tags

        _track(True, tracking_uri, "weekly", lambda: {
            "params": result.manifest["config"], "metrics": run_metrics(result),
            "artifacts": run_artifacts(result.run_dir), "model": result.model,
            "tags": run_tags(result)})


@cli.command("ui", context_settings=CONTEXT)
@_quiet_option
@click.option("--runs", "runs_dir", type=click.Path(path_type=Path), default=Path("out"),
              show_default=True, help="The folder of the weekly runs (run --output-dir DIR).")
@click.option("--port", type=int, default=8501, show_default=True, help="TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. There is no login and the page downloads email lists: "
                   "bind beyond this machine only behind your own access control.")
def ui(runs_dir: Path, port: int, host: str) -> None:
    """Open the marketers' page over the weekly run folders (Streamlit).

    Pages: Overview, Trends, Campaigns, Build a list, Customer lookup, KPIs and CLV.
    Needs the ui extra: pip install 'rfm-engine[ui]'. Binds to 127.0.0.1 unless --host says
    otherwise; stop it with Ctrl+C.

    \b
    Example:
      rfm-engine ui --runs out --port 8501
    """
    from .ui.server import is_loopback, serve

    if not is_loopback(host):
        _error(f"warning: binding to {host}: the page has no login and downloads email "
               "lists; anyone who can reach this address and port can read them.")
    _echo(f"rfm-engine ui: http://{host}:{port} over {runs_dir} (Ctrl+C stops it)")
    serve(runs_dir, port=port, host=host, quiet=_state["quiet"])


@cli.group(context_settings=CONTEXT)
def models() -> None:
    """Manage registered segmentation models (MLflow) and the frozen weekly-run model."""


@models.command("list", context_settings=CONTEXT)
@_quiet_option
@click.option("--name", default="rfm-segmentation", show_default=True,
              help="Registered model name.")
@_tracking_uri_option
def models_list(name: str, tracking_uri: str | None) -> None:
    """List the registered versions of a segmentation model.

    \b
    Example:
      rfm-engine models list
    """
    from .integrations.tracking import list_models

    table = list_models(name, tracking_uri=tracking_uri)
    click.echo(table.to_string(index=False) if len(table) else f"no versions of {name!r}")


@models.command("promote", context_settings=CONTEXT)
@_quiet_option
@click.argument("version", type=int)
@click.option("--name", default="rfm-segmentation", show_default=True,
              help="Registered model name.")
@click.option("--folder", type=click.Path(path_type=Path), default=Path("models"),
              show_default=True, help="The models folder the weekly run loads from.")
@_tracking_uri_option
def models_promote(version: int, name: str, folder: Path, tracking_uri: str | None) -> None:
    """Make a registered version the frozen model of the weekly run.

    Writes FOLDER/model.skops and its sha256 in FOLDER/manifest.json, and sets the
    alias "production" on the version. Point the run config at it with
    [scoring] model = "models/model.skops".

    \b
    Example:
      rfm-engine models promote 3
    """
    from .integrations.tracking import promote
    from .io.writers import check_output_folder

    check_output_folder(folder, label="--folder")
    path = promote(version, name, folder=folder, tracking_uri=tracking_uri)
    _echo(f"version {version} of {name!r} is now the frozen model: {path}")


@cli.group(context_settings=CONTEXT)
def segments() -> None:
    """Inspect segment rule sets."""


@segments.command("lint", context_settings=CONTEXT)
@_quiet_option
@click.argument("rules", metavar="NAME|FILE")
@_bins_option("Score levels to check (default: the set's).")
@click.option("--cells", is_flag=True, help="Also print the cell -> segment table.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write the cell -> segment table (.csv or .parquet).")
def segments_lint(rules: str, n_bins: int | None, cells: bool, output: Path | None) -> None:
    """Check a rule set over every score cell.

    Lists uncovered cells, segments that can never fire, rules shadowed by earlier
    ones, and the cell -> segment table. Exits 2 when a segment can never fire.

    \b
    Example:
      rfm-engine segments lint classic --cells
      rfm-engine segments lint my_rules.toml --bins 4 -o out/cells.csv
    """
    from .core.segments import lint_rules

    report = lint_rules(rules, n_bins=n_bins)
    click.echo(str(report))
    table = report.to_frame()
    if cells:
        columns = ["cell", "segment", "rule"]
        click.echo("\n" + table[columns].to_string(index=False, na_rep="-"))
    if output is not None:
        from .io.writers import write_table

        _check_output(output, force=True)
        write_table(table, output)
        _echo(f"wrote {output}")
    if report.unreachable_segments:
        sys.exit(2)


@segments.command("list", context_settings=CONTEXT)
@_quiet_option
def segments_list() -> None:
    """List the built-in rule sets.

    \b
    Example:
      rfm-engine segments list
    """
    from .core.segments import builtin_rule_sets, load_rules

    for name in builtin_rule_sets():
        rule_set = load_rules(name)
        first_line = (rule_set.description or "").strip().splitlines()[0:1]
        click.echo(f"{name:<10} {' '.join(first_line)}")


@cli.command(context_settings=CONTEXT)
@_quiet_option
@click.argument("directory", type=click.Path(path_type=Path), default=Path("data/sample"))
@click.option("--customers", "n_customers", type=int, default=5000, show_default=True,
              help="Number of customers to simulate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
def sample(directory: Path, n_customers: int, seed: int) -> None:
    """Generate the sample data: transactions, suppression list and optional CRM inputs.

    Writes transactions.csv, suppression.csv, consent.csv (the weekly run's consent input)
    and costs.csv, surveys.csv, tickets.csv, leads.csv, subscriptions.csv, email_events.csv
    (the optional KPI inputs).

    Deterministic: the same --customers and --seed give byte-identical files.

    \b
    Example:
      rfm-engine sample data/sample --customers 5000 --seed 0
    """
    from .datasets.sample_data import write_sample_data
    from .io.writers import check_output_folder

    check_output_folder(directory, label="DIRECTORY")
    paths = write_sample_data(directory, n_customers=n_customers, seed=seed)
    for path in paths.values():
        _echo(f"wrote {path}")


def _warning_line(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    _echo(f"warning: {message}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become a one-line message and the documented exit code."""
    warnings.showwarning = _warning_line
    try:
        cli.main(args=argv, prog_name="rfm-engine", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        _error("aborted")
        sys.exit(1)
    except RFMEngineError as exc:
        _error(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)
    except Exception as exc:
        if _from_spark(exc):
            from .engines.spark.session import spark_failure

            message, code = spark_failure(exc)
            _error(f"error: {message}")
            sys.exit(code)
        if not _out_of_memory(exc):
            raise
        from .config import DEFAULT_MEMORY_LIMIT

        _error("error: DuckDB ran out of memory under its memory limit (--memory-limit, "
               f"[input] memory_limit; default {DEFAULT_MEMORY_LIMIT}): "
               f"{str(exc).splitlines()[0]}. Raise the limit, e.g. --memory-limit 4GB. "
               "Nothing was published.")
        sys.exit(2)
    sys.exit(0)


def _from_spark(exc: BaseException) -> bool:
    """Whether ``exc`` is Spark's (PySpark or Py4J): a job, the JVM or a Python worker failed."""
    return type(exc).__module__.split(".")[0] in ("pyspark", "py4j")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB refusing to go beyond its memory limit."""
    import duckdb  # loaded by then: only DuckDB raises this

    return isinstance(exc, duckdb.OutOfMemoryException)

