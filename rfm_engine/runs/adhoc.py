"""One-off runs of a transactions file, written beside one output file.

What ``rfm-engine features``, ``clv-summary``, ``segment``, ``cluster``, ``kpis``, ``clv``,
``clv-validate`` and ``lift`` call, one function each: it takes the effective
:class:`~rfm_engine.config.Config` (the file with the command-line options over it), reads
the transactions it names, computes, writes ``OUTPUT`` and its side files
(``OUTPUT.quality.json``, ...; :func:`rfm_engine.io.writers.beside`) all or nothing, and
returns what it computed for the caller to print or track. Unlike :func:`run_weekly
<rfm_engine.runs.weekly.run_weekly>` there is no run folder, lock or manifest.

scikit-learn, scipy and matplotlib are imported inside the functions that use them, so
that a command loads only what it runs (``features`` needs none of them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..core.features import clv_summary, count_customers, customer_features
from ..engines import refuse_spark, spark_engine
from ..errors import ConfigError, ModelNotIdentifiedError
from ..io.loading import Transactions, connect, load_transactions
from ..io.quality import DataQualityReport
from ..io.writers import (
    Writer,
    beside,
    figure_writer,
    json_text,
    table_writer,
    text_writer,
    write_all,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..core.clustering import Clustering
    from ..core.model import SegmentationModel
    from ..core.pipeline import Segmentation
    from ..measurement.clv import CLVResult, CLVValidation
    from ..measurement.lift import LiftReport
    from ..reports.kpi_report import KPIReport

__all__ = ["CLUSTER_SIDES", "CLV_SIDES", "CLV_VALIDATE_SIDES", "CLVRun", "CLVValidateRun",
           "ClusterRun", "KPIRun", "SegmentRun", "TableRun", "read_transactions", "run_cluster",
           "run_clv", "run_clv_summary", "run_clv_validate", "run_features", "run_kpis",
           "run_lift", "run_segment"]


def read_transactions(config: Config, *, progress_bar: bool = False,
                      command: str = "this command") -> Transactions:
    """Load the transactions ``config`` names (``[input]``, ``[columns]``, ``[features]``).

    Parameters
    ----------
    config : Config
        The effective configuration; ``config.input.path`` is the file or database.
    progress_bar : bool, default=False
        Let DuckDB draw its progress bar (on a terminal).
    command : str, default="this command"
        What a refusal of ``[input] engine = "spark"`` names (the commands that run on
        Spark call :func:`customer_table` instead).

    Returns
    -------
    Transactions

    Raises
    ------
    ConfigError
        ``config`` names no input, or its engine is Spark.
    """
    if not config.input.path:
        raise ConfigError("No input: give INPUT or [input] path in the config.")
    refuse_spark(config.input.engine, command)
    return load_transactions(config.input.path, **config.load_options(),
                             con=connect(progress_bar=progress_bar))


def customer_table(config: Config, *, progress_bar: bool = False
                   ) -> tuple[DataQualityReport, pd.DataFrame]:
    """Load ``config``'s transactions and compute the customer table, on its engine.

    ``[input] engine = "duckdb"`` (default): :func:`read_transactions` and
    :func:`~rfm_engine.core.features.customer_features`; ``"spark"``: the same on Spark
    (:mod:`rfm_engine.engines.spark`: the table is collected to the driver).

    Returns
    -------
    tuple
        The data-quality report and the customer table.
    """
    if config.input.engine == "spark":
        spark, tx = _spark_transactions(config)
        return tx.report, spark.customer_features(tx)
    tx = read_transactions(config, progress_bar=progress_bar)
    return tx.report, customer_features(tx)


def _spark_transactions(config: Config) -> tuple[Any, Any]:
    """Return :mod:`rfm_engine.engines.spark` and ``config``'s transactions loaded on Spark.

    The input is INPUT (``[input] path``) or a table of Spark's catalog (``[input] table``).
    """
    spark = spark_engine()
    return spark, spark.load_transactions(config.input.path, **config.load_options())


@dataclass
class TableRun:
    """What :func:`run_features` and :func:`run_clv_summary` computed and wrote.

    Attributes
    ----------
    quality : DataQualityReport
        The data-quality report of the transactions (also ``OUTPUT.quality.json``).
    table : DataFrame
        The customer table written to ``OUTPUT``.
    """

    quality: DataQualityReport
    table: pd.DataFrame


def run_features(config: Config, output: str | Path, *, force: bool = False,
                 progress_bar: bool = False) -> TableRun:
    """Compute the RFM customer table of ``config``'s transactions; write it.

    Writes ``output`` (one row per customer: :func:`~rfm_engine.core.features.customer_features`;
    .csv or .parquet) and ``output.quality.json``.

    Parameters
    ----------
    config : Config
        The effective configuration (the input, ``[columns]``, ``[features]``).
    output : str or Path
        The customer table; its suffix picks the format.
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    TableRun
    """
    report, table = customer_table(config, progress_bar=progress_bar)
    return _write_table(report, table, Path(output), force)


def run_clv_summary(config: Config, output: str | Path, *, time_unit: str = "D",
                    force: bool = False, progress_bar: bool = False) -> TableRun:
    """Write the summary BG/NBD and Gamma-Gamma models take (lifetimes' names).

    Writes ``output`` (:func:`~rfm_engine.core.features.clv_summary`: ``customer_id``,
    ``frequency``, ``recency``, ``T``, ``monetary_value``) and ``output.quality.json``.

    Parameters
    ----------
    config : Config
        The effective configuration; ``[features] as_of`` ends the calibration period.
    output : str or Path
        The summary table; its suffix picks the format.
    time_unit : {"D", "W", "M"}, default="D"
        Unit of ``recency`` and ``T``: days, weeks (7 days), months (30.4375 days).
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    TableRun
    """
    tx, summary = _clv_input(config, time_unit, progress_bar=progress_bar,
                             command="clv-summary")
    return _write_table(tx.report, summary, Path(output), force)


def _clv_input(config: Config, time_unit: str, *, progress_bar: bool,
               command: str) -> tuple[Any, pd.DataFrame]:
    """Return ``config``'s transactions and their CLV summary, by its engine.

    DuckDB: :func:`~rfm_engine.core.features.clv_summary`; Spark: grouped on Spark, the
    summary (one row per customer) collected to the driver, where the models are fitted.
    """
    if config.input.engine == "spark":
        spark, tx = _spark_transactions(config)
        return tx, spark.clv_summary(tx, time_unit=time_unit)
    tx = read_transactions(config, progress_bar=progress_bar, command=command)
    return tx, clv_summary(tx, time_unit=time_unit)


def _write_table(report: DataQualityReport, table: pd.DataFrame, output: Path,
                 force: bool) -> TableRun:
    """Write ``table`` to ``output`` and the quality report beside it, all or nothing."""
    write_all({beside(output, "quality.json"): text_writer(report.to_json()),
               output: table_writer(table, output.suffix)}, force=force)
    return TableRun(report, table)


@dataclass
class SegmentRun:
    """What :func:`run_segment` computed and wrote.

    Attributes
    ----------
    config : Config
        The effective configuration.
    quality : DataQualityReport
        The data-quality report of the transactions (also ``OUTPUT.quality.json``).
    segmentation : Segmentation
        Customers with scores and segments; ``segmentation.summary`` is
        ``OUTPUT.summary.csv``.
    model : SegmentationModel
        The scorer (fitted, or the frozen one) and the rule set's name.
    notes : list of str
        Remarks on the outputs (e.g. a model saved outside the models folder).
    """

    config: Config
    quality: DataQualityReport
    segmentation: Segmentation
    model: SegmentationModel
    notes: list[str] = field(default_factory=list)


def run_segment(config: Config, output: str | Path, *, save_model: str | Path | None = None,
                force: bool = False, progress_bar: bool = False) -> SegmentRun:
    """Score and segment the customers of ``config``'s transactions; write the tables.

    Applies the frozen model ``[scoring] model`` when set, else fits the scorer. Writes
    ``output`` (customers with features, scores and segment; .csv or .parquet),
    ``output.summary.csv`` (the segment table) and ``output.quality.json``; with
    ``save_model``, the model too: ``NAME.json`` (the scorer, plain JSON) or
    ``DIR/NAME.skops`` (recorded in ``DIR/manifest.json``).

    Parameters
    ----------
    config : Config
        The effective configuration (``[segments] rules``, ``[scoring]``, the input).
    output : str or Path
        The customer table; its suffix picks the format.
    save_model : str or Path, optional
        Where to save the model (see above).
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    SegmentRun

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rfm_engine.config import Config
    >>> from rfm_engine.datasets.sample_data import write_sample
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> tx = write_sample(folder, n_customers=200)["transactions"]
    >>> config = Config().with_overrides({"input.path": str(tx), "columns": {
    ...     "customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
    ...     "quantity": "Quantity", "unit_price": "Price"}, "input.on_bad_rows": "drop"})
    >>> done = run_segment(config, folder / "segments.csv")
    >>> sorted(p.name for p in folder.glob("segments.csv*"))
    ['segments.csv', 'segments.csv.quality.json', 'segments.csv.summary.csv']
    """
    from ..core.model import SegmentationModel
    from ..core.pipeline import segment_customers
    from ..core.segments import load_rules
    from ..integrations.model_store import load_frozen

    output = Path(output)
    rules = config.segments.rules
    frozen = (load_frozen(config.scoring.model, folder=config.scoring.models_dir, rules=rules)
              if config.scoring.model else None)
    rule_set = frozen.rule_set_ if frozen is not None else load_rules(rules)
    options = dict(rules=rule_set, n_bins=config.scoring.n_bins, edges=config.scoring.edges,
                   scorer=frozen.scorer_ if frozen is not None else None)
    if config.input.engine == "spark":  # scored on Spark; the scored table is collected
        spark, tx = _spark_transactions(config)
        report = tx.report
        result = spark.segment_customers(spark.customer_frame_spark(tx), **options,
                                         **config.scoring.spark_fit_options()).collect()
    else:
        report, table = customer_table(config, progress_bar=progress_bar)
        result = segment_customers(table, **options)
    fitted = SegmentationModel.from_scorer(result.scorer, rules=rules)
    done = SegmentRun(config, report, result, fitted)
    outputs = {beside(output, "quality.json"): text_writer(report.to_json()),
               beside(output, "summary.csv"): table_writer(result.summary, ".csv"),
               output: table_writer(result.customers, output.suffix)}
    saved = _model_outputs(Path(save_model), fitted, config, done.notes) if save_model else {}
    in_folder = save_model is not None and Path(save_model).suffix.lower() == ".skops"
    write_all({**outputs, **({} if in_folder else saved)}, force=force)
    if in_folder:  # the model and its manifest entry, together (checked before any work)
        write_all(saved, force=True)
    return done


def _model_outputs(path: Path, model: SegmentationModel, config: Config,
                   notes: list[str]) -> dict[Path, Writer]:
    """Return the writers of a saved model: the scorer JSON, or the model and its manifest."""
    if path.suffix.lower() == ".json":
        from ..core.scoring import scorer_json

        return {path: text_writer(scorer_json(model.scorer_))}
    from ..integrations.model_store import model_writers

    folder = Path(config.scoring.models_dir)
    if path.parent.resolve() != folder.resolve():
        notes.append(f"note: {path} is outside the models folder {folder}; --model and "
                     "[scoring] model load it only with [scoring] models_dir set to its folder.")
    return model_writers(model, path.parent, path.stem,
                         source=f"rfm-engine segment {config.input.path}")


@dataclass
class ClusterRun:
    """What :func:`run_cluster` computed and wrote.

    Attributes
    ----------
    config : Config
        The effective configuration.
    quality : DataQualityReport
        The data-quality report of the transactions.
    segmentation : Segmentation
        The rule segments the clusters are compared with.
    clustering : Clustering
        Clusters, their summary, the clusters x segments crosstab and the k scores.
    paths : list of Path
        The files written, ``output`` last.
    """

    config: Config
    quality: DataQualityReport
    segmentation: Segmentation
    clustering: Clustering
    paths: list[Path]

    def model(self) -> SegmentationModel:
        """Return the scorer, rule set and clusterer as one model (to track or save)."""
        from ..core.model import SegmentationModel

        return SegmentationModel.from_scorer(self.segmentation.scorer,
                                             rules=self.config.segments.rules,
                                             clusterer=self.clustering.clusterer)


#: The side files of run_cluster, in the order they are written (output comes last).
CLUSTER_SIDES = ("quality.json", "clusters.csv", "crosstab.csv", "k_scores.csv", "elbow.png",
                 "silhouette.png")


def run_cluster(config: Config, output: str | Path, *, force: bool = False,
                progress_bar: bool = False) -> ClusterRun:
    """Cluster the customers with k-means on R, F, M and compare with the rule segments.

    Writes ``output`` (customers with segment, cluster, cluster_name) and beside it
    ``output.clusters.csv`` (per cluster), ``output.crosstab.csv`` (clusters x
    segments), ``output.k_scores.csv`` (inertia, silhouette per k), ``output.elbow.png``,
    ``output.silhouette.png`` and ``output.quality.json``.

    Parameters
    ----------
    config : Config
        The effective configuration (``[clustering]``, ``[segments] rules``,
        ``[scoring]``, the input).
    output : str or Path
        The customer table; its suffix picks the format.
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    ClusterRun
    """
    from ..core.clustering import cluster_customers
    from ..core.pipeline import segment_customers

    output = Path(output)
    settings = config.clustering
    options = dict(n_clusters=settings.n_clusters, k_range=tuple(settings.k_range),
                   sample_size=settings.sample_size, random_state=settings.random_state)
    scoring = dict(rules=config.segments.rules, n_bins=config.scoring.n_bins,
                   edges=config.scoring.edges)
    tx: Any
    if config.input.engine == "spark":  # scored and clustered on Spark; the table collected
        spark, tx = _spark_transactions(config)
        seg = spark.segment_customers(spark.customer_frame_spark(tx), **scoring,
                                      **config.scoring.spark_fit_options())
        clustering = spark.cluster_customers(seg.customers, **options).collect()
    else:
        tx = read_transactions(config, progress_bar=progress_bar, command="cluster")
        seg = segment_customers(customer_features(tx), **scoring)
        clustering = cluster_customers(seg.customers, **options)
    plots = {beside(output, p.name): w for p, w in clustering.plot_writers(output.parent).items()}
    outputs = {beside(output, "quality.json"): text_writer(tx.report.to_json()),
               beside(output, "clusters.csv"): table_writer(clustering.summary, ".csv"),
               beside(output, "crosstab.csv"): table_writer(
                   clustering.crosstab.reset_index(), ".csv"),
               beside(output, "k_scores.csv"): table_writer(clustering.k_scores, ".csv"),
               **plots,
               output: table_writer(clustering.customers, output.suffix)}
    write_all(outputs, force=force)
    return ClusterRun(config, tx.report, seg, clustering, list(outputs))


@dataclass
class KPIRun:
    """What :func:`run_kpis` computed and wrote.

    Attributes
    ----------
    quality : DataQualityReport
        The data-quality report of the transactions.
    report : KPIReport
        The KPIs, cohorts, CLV and the KPIs of the optional inputs (``report.extras``).
    """

    quality: DataQualityReport
    report: KPIReport

    @property
    def table(self) -> Any:
        """The KPI table written to ``output``: per period and segment, or per period."""
        report = self.report
        return report.by_segment if report.by_segment is not None else report.kpis


def run_kpis(config: Config, output: str | Path, *,
             inputs: Mapping[str, str | Path | None] | None = None, period: str = "month",
             by: str | None = None, churn_days: int | None = 90, clv: bool = True,
             force: bool = False, progress_bar: bool = False) -> KPIRun:
    """Compute the CRM KPIs of ``config``'s transactions per period; write the report.

    Writes ``output`` (one row per period, or per period and segment with
    ``by="segment"``), ``output.cohorts.csv`` (first-purchase cohort x periods since),
    ``output.html`` (the KPI report with plots), ``output.json`` (headline numbers and the
    KPIs of the optional inputs) and ``output.quality.json``. The optional inputs are
    read (and checked) before the transactions.

    Parameters
    ----------
    config : Config
        The effective configuration (the input; ``[segments] rules`` and ``[scoring]``
        with ``by="segment"``). Of its ``[kpis]`` section only the predicted CLV's
        ``clv_model``, ``clv_params`` and ``clv_horizon`` are read, as the weekly run
        reads them (the same CLV for the same config); the other keys: the arguments say.
    output : str or Path
        The KPI table; its suffix picks the format.
    inputs : Mapping, optional
        Kind (``costs``, ``surveys``, ``tickets``, ``leads``, ``subscriptions``,
        ``email_events``) to file; None values are skipped.
    period : {"month", "quarter"}, default="month"
        KPI period.
    by : {"segment"}, optional
        Also per segment (each customer's current segment).
    churn_days : int or None, default=90
        A customer is lost after this many days without a purchase (0 or None: not
        active in the next period).
    clv : bool, default=True
        Predict CLV for the report (``[kpis] clv`` is not read).
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    KPIRun

    Raises
    ------
    ConfigError
        A ``[kpis] clv_params`` file that cannot be read or is not one (one line naming
        the file and the key), before the transactions are read.
    """
    from ..core.pipeline import segment_customers
    from ..io.crm_inputs import read_inputs
    from ..reports.kpi_report import report_kpis, saved_clv_params

    output = Path(output)
    tables = read_inputs(inputs or {})
    settings = config.kpis.model_copy(update={"clv": clv})
    saved = saved_clv_params(settings)  # a bad params file: before the transactions
    tx = read_transactions(config, progress_bar=progress_bar, command="kpis")
    segments = None
    if by == "segment":
        seg = segment_customers(customer_features(tx), rules=config.segments.rules,
                                n_bins=config.scoring.n_bins, edges=config.scoring.edges)
        segments = seg.customers[["customer_id", "segment"]]
    report = report_kpis(tx, tables, period=period, segments=segments, churn_days=churn_days,
                         clv=clv, clv_horizon=settings.clv_horizon,
                         clv_model=settings.clv_model, clv_params=saved)
    done = KPIRun(tx.report, report)
    write_all({beside(output, "quality.json"): text_writer(tx.report.to_json()),
               beside(output, "cohorts.csv"): table_writer(report.cohorts.reset_index(), ".csv"),
               beside(output, "html"): text_writer(report.to_html(table_file=output.name)),
               beside(output, "json"): text_writer(report.to_json()),
               output: table_writer(done.table.to_frame(), output.suffix)}, force=force)
    return done



#: The side files of run_clv (output comes last).
CLV_SIDES = ("quality.json", "frequency_recency.png", "p_alive.png")


@dataclass
class CLVRun:
    """What :func:`run_clv` computed and wrote.

    Attributes
    ----------
    quality : DataQualityReport
        The data-quality report of the transactions.
    result : CLVResult
        The fitted models, their parameters and the per-customer predictions.
    horizon : str
        The horizon and its discounting in words (``CLVTime.description``).
    """

    quality: DataQualityReport
    result: CLVResult
    horizon: str = ""


def run_clv(config: Config, output: str | Path, *, model: str | None = None,
            params_in: str | Path | None = None, time_unit: str | None = None,
            horizon: float = 52, horizon_unit: str | None = None, discount_rate: float = 0.0,
            discount_per: str | None = None, days_per_month: float | None = None,
            params_out: str | Path | None = None, intervals: float | None = None,
            force: bool = False, progress_bar: bool = False) -> CLVRun:
    """Fit a purchase model and Gamma-Gamma (or read them) and value each customer; write it.

    Writes ``output`` (``customer_id``, ``p_alive``, ``expected_purchases`` over the
    horizon, ``expected_average_value``, ``clv``) and beside it
    ``output.frequency_recency.png``, ``output.p_alive.png`` and ``output.quality.json``;
    with ``params_out``, the parameters as JSON too (:meth:`CLVResult.params_document
    <rfm_engine.measurement.clv.CLVResult.params_document>`). With ``intervals``, the
    table also has ``expected_purchases_low/high`` and ``clv_low/high`` and the parameters
    file their intervals (:mod:`rfm_engine.measurement.clv.uncertainty`).

    Parameters
    ----------
    config : Config
        The effective configuration; ``[features] as_of`` ends the calibration period.
    output : str or Path
        The per-customer table; its suffix picks the format.
    model : {"bgnbd", "pareto-nbd"}, optional
        The purchase model to fit (default "bgnbd"). With ``params_in`` the file's keys
        choose; a different model is refused.
    params_in : str or Path, optional
        A params file (``params_out`` of an earlier run): score with its parameters, do
        not fit (:func:`~rfm_engine.measurement.clv.read_params`).
    time_unit : {"D", "W", "M"}, optional
        Time unit of the models (days, weeks, months). Default: the params file's, else
        "W"; one that differs from the params file's is refused.
    horizon : float, default=52
        Forecast horizon, in ``horizon_unit``.
    horizon_unit, discount_per : {"D", "W", "M", "day", "week", "month"}, optional
        Unit of the horizon and period of the discount rate (default: the time unit).
    discount_rate : float, default=0.0
        Discount rate per ``discount_per``.
    days_per_month : float, optional
        Length of a month (default 30.4375 days; lifetimes: 30.415 with weeks, 30 with
        days). See :func:`~rfm_engine.measurement.clv.clv_time`.
    params_out : str or Path, optional
        Where to write ``{"model", "time_unit", "bgnbd" or "pareto_nbd": {...},
        "gamma_gamma": {p, q, v}}`` (and ``"intervals"`` with ``intervals``).
    intervals : float, optional
        Coverage of the intervals (e.g. 0.9); default: no intervals. Not with
        ``params_in`` (the intervals come from the fit's information matrix).
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    CLVRun

    Raises
    ------
    ModelNotIdentifiedError
        The data cannot identify the models (e.g. too few repeat purchases); the message
        names the input and says why. Nothing is written.
    ConfigError
        A params file that cannot be read or is not one (one line naming the file and
        the key).
    """
    from ..measurement.clv import (
        clv_time,
        fit_clv,
        plot_frequency_recency,
        plot_probability_alive_matrix,
        read_params,
        score_clv,
    )

    output = Path(output)
    if params_in is not None and intervals is not None:
        raise ConfigError(f"{params_in}: intervals need a fit (its information matrix); "
                          "they cannot be given with saved parameters. Leave out the "
                          "intervals or the params file.")
    saved = read_params(params_in) if params_in is not None else None
    time_unit = _clv_time_unit(saved, time_unit)
    if saved is not None and model is not None and model != saved.model:
        raise ConfigError(f"{saved.source}: holds the parameters of {saved.model!r}, but the "
                          f"model {model!r} was asked for; leave the model out or refit.")
    month = {} if days_per_month is None else {"days_per_month": days_per_month}
    time = clv_time(time_unit, horizon=horizon, horizon_unit=horizon_unit,
                    discount_rate=discount_rate, discount_per=discount_per, **month)
    tx, summary = _clv_input(config, time_unit, progress_bar=progress_bar, command="clv")
    try:
        if saved is not None:
            result = score_clv(summary, saved, **time.kwargs())
        else:
            result = fit_clv(summary, model=model or "bgnbd", time_unit=time_unit,
                             intervals=intervals, **time.kwargs())
    except ModelNotIdentifiedError as exc:
        raise ModelNotIdentifiedError(f"{tx.source.name}: no CLV predicted: {exc} Nothing was "
                                      "written.") from None
    # The plots' ranges: the summary's (a model read from a file saw no data).
    ranges = {"max_frequency": max(int(summary["frequency"].max()), 1),
              "max_recency": max(float(summary["T"].max()), 1.0)}
    outputs = {
        beside(output, "quality.json"): text_writer(tx.report.to_json()),
        beside(output, "frequency_recency.png"): figure_writer(
            plot_frequency_recency(result.purchase_model, **ranges).figure),
        beside(output, "p_alive.png"): figure_writer(
            plot_probability_alive_matrix(result.purchase_model, **ranges).figure),
        output: table_writer(result.customers, output.suffix),
    }
    if params_out is not None:
        outputs[Path(params_out)] = text_writer(json_text(result.params_document()))
    write_all(outputs, force=force)
    return CLVRun(tx.report, result, time.description)


def _clv_time_unit(saved: Any, time_unit: str | None) -> str:
    """Return the time unit of a CLV run: the one given, else the params file's, else W."""
    if saved is None or saved.time_unit is None:
        return time_unit or "W"
    if time_unit is not None and time_unit != saved.time_unit:
        raise ConfigError(f"{saved.source}: key 'time_unit' is {saved.time_unit!r}, but the "
                          f"time unit {time_unit!r} was asked for: its alpha and beta are per "
                          f"{saved.time_unit!r}; leave the time unit out or refit.")
    return saved.time_unit


#: The side files of run_clv_validate (output comes last).
CLV_VALIDATE_SIDES = ("quality.json", "json", "figures.csv", "tracking.png",
                      "calibration_holdout.png")


@dataclass
class CLVValidateRun:
    """What :func:`run_clv_validate` computed and wrote.

    Attributes
    ----------
    quality : DataQualityReport
        The data-quality report of the transactions up to the holdout's end.
    validation : CLVValidation
        Metrics, tracking, conditional expectations and the fitted models.
    """

    quality: DataQualityReport
    validation: CLVValidation


def run_clv_validate(config: Config, output: str | Path, *, calibration_end: str,
                     holdout_end: str, model: str = "bgnbd", time_unit: str = "W",
                     force: bool = False, progress_bar: bool = False) -> CLVValidateRun:
    """Fit the CLV models on a calibration period and check them on the holdout; write it.

    Reads ``config``'s transactions twice, up to ``calibration_end`` and up to
    ``holdout_end`` (``[features] as_of`` and ``window_days`` are not used: the two
    dates set the periods), and writes ``output`` (per customer: the calibration summary,
    actual and expected holdout purchases and spend) and beside it ``output.json`` (the
    figures, strict JSON), ``output.figures.csv`` (the same figures as one long table),
    ``output.tracking.png``, ``output.calibration_holdout.png`` and
    ``output.quality.json``.

    Parameters
    ----------
    config : Config
        The effective configuration (the input and how to read it).
    output : str or Path
        The per-customer table; its suffix picks the format.
    calibration_end, holdout_end : str
        The last days of the calibration and holdout periods, ``YYYY-MM-DD``.
    model : {"bgnbd", "pareto-nbd"}, default="bgnbd"
        The purchase model.
    time_unit : {"D", "W", "M"}, default="W"
        Time unit of the models.
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    CLVValidateRun

    Raises
    ------
    ConfigError
        A date that is not ``YYYY-MM-DD``, or a holdout that does not end after the
        calibration period.
    ModelNotIdentifiedError
        The calibration data cannot identify the models; nothing is written.
    """
    from ..io._validation import as_date
    from ..measurement.clv import validate_clv

    output = Path(output)
    start = as_date(calibration_end, "--calibration-end")
    end = as_date(holdout_end, "--holdout-end")
    if not start < end:
        raise ConfigError(f"--holdout-end {end} must come after --calibration-end {start}.")
    options = {**config.load_options(), "window_days": None}
    spark = config.input.engine == "spark"
    if not (config.input.path or (spark and config.input.table)):
        raise ConfigError("No input: give INPUT or [input] path in the config.")
    if spark:  # the counts on Spark, collected small; the models on the driver
        engine = spark_engine()
        loaded = [engine.load_transactions(config.input.path, **{**options, "as_of": day})
                  for day in (start, end)]
    else:
        engine = None
        loaded = [load_transactions(config.input.path, **{**options, "as_of": day},
                                    con=connect(progress_bar=progress_bar))
                  for day in (start, end)]
    try:
        validation = validate_clv(*loaded, model=model, time_unit=time_unit, engine=engine)
    except ModelNotIdentifiedError as exc:
        raise ModelNotIdentifiedError(f"{loaded[0].source.name}: no CLV validation: {exc} "
                                      "Nothing was written.") from None
    # The report's customer counts, over both periods.
    (engine.count_customers if spark else count_customers)(loaded[1])
    quality = loaded[1].report
    write_all({
        beside(output, "quality.json"): text_writer(quality.to_json()),
        beside(output, "json"): text_writer(validation.to_json()),
        beside(output, "figures.csv"): table_writer(validation.figures_frame(), ".csv"),
        beside(output, "tracking.png"): figure_writer(validation.plot_tracking().figure),
        beside(output, "calibration_holdout.png"): figure_writer(
            validation.plot_calibration_holdout().figure),
        output: table_writer(validation.customers, output.suffix),
    }, force=force)
    return CLVValidateRun(quality, validation)


def run_lift(run_dir: str | Path, config: Config, *, from_config: bool = False,
             given: Collection[str] = (), days: int = 30, alpha: float = 0.05,
             output: str | Path | None = None, force: bool = False) -> LiftReport:
    """Measure each campaign of a weekly run against its holdout; write the lift table.

    The transactions ``config`` names (``[input] path``: they cover the days after the
    run's as-of date) are read with the run's own ``[columns]`` and ``[input]`` options
    (from its manifest) unless ``from_config`` or ``given`` say otherwise
    (:func:`~rfm_engine.measurement.lift.campaign_lift`).

    Parameters
    ----------
    run_dir : str or Path
        The run folder ``DIR/<as_of>/``.
    config : Config
        The effective configuration: the transactions and how to read them.
    from_config : bool, default=False
        Read with ``config``'s ``[input]`` and ``[columns]`` (a config file was given), not
        the run's. Its ``[features]`` are the run's, not the outcome window's: ignored.
    given : collection of str
        The reading options set on top (names of
        :meth:`Config.load_options <rfm_engine.config.Config.load_options>`' keys: ``columns``,
        ``date_format``, ..., ``as_of`` and ``window_days``, which cut the outcome data):
        taken from ``config`` over the run's.
    days : int, default=30
        Outcome window: the ``days`` after the run's as-of date.
    alpha : float, default=0.05
        Significance level (confidence intervals at ``1 - alpha``).
    output : str or Path, optional
        Write the lift table (.csv or .parquet) and ``output.png`` beside it.
    force : bool, default=False
        Replace existing files.

    Returns
    -------
    LiftReport

    Raises
    ------
    ConfigError
        ``config`` names no transactions.
    """
    from ..measurement.lift import campaign_lift

    if not config.input.path:
        raise ConfigError("No transactions: give --transactions or [input] path in the "
                          "config.")
    refuse_spark(config.input.engine, "lift")
    options = config.load_options()
    columns = options.pop("columns")
    chosen = set(given)
    if from_config:  # its [input] and [columns]; never its [features]: those are the run's
        chosen |= (options.keys() - {"as_of", "window_days"}) | {"columns"}
    reading = {key: value for key, value in options.items()
               if key in chosen and value is not None}
    report = campaign_lift(run_dir, config.input.path, days=days, alpha=alpha,
                           columns=columns if "columns" in chosen else None, **reading)
    if output is not None:
        output = Path(output)
        write_all({output: table_writer(report.to_frame(), output.suffix),
                   beside(output, "png"): figure_writer(report.plot().figure)}, force=force)
    return report
