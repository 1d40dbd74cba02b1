"""One-off runs of a transactions file: segments, clusters or KPIs, written beside one output.

What ``rfm-engine segment``, ``cluster`` and ``kpis`` call: each function takes the effective
:class:`~rfm_engine.config.Config` (the file with the command-line options over it), reads
the transactions it names, computes, writes ``OUTPUT`` and its side files
(``OUTPUT.quality.json``, ...; :func:`rfm_engine.io.writers.beside`) all or nothing, and
returns what it computed for the caller to print or track. Unlike :func:`run_weekly
<rfm_engine.runs.weekly.run_weekly>` there is no run folder, lock or manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..core.clustering import Clustering, cluster_customers
from ..core.features import customer_features
from ..core.model import SegmentationModel
from ..core.pipeline import Segmentation, segment_customers
from ..core.segments import load_rules
from ..errors import ConfigError
from ..io.crm_inputs import read_inputs
from ..io.loading import Transactions, connect, load_transactions
from ..io.quality import DataQualityReport
from ..io.writers import Writer, beside, table_writer, text_writer, write_all
from ..reports.kpi_report import KPIReport, report_kpis

__all__ = ["CLUSTER_SIDES", "ClusterRun", "KPIRun", "SegmentRun", "read_transactions",
           "run_cluster", "run_kpis", "run_segment"]


def read_transactions(config: Config, *, progress_bar: bool = False) -> Transactions:
    """Load the transactions ``config`` names (``[input]``, ``[columns]``, ``[features]``).

    Parameters
    ----------
    config : Config
        The effective configuration; ``config.input.path`` is the file or database.
    progress_bar : bool, default=False
        Let DuckDB draw its progress bar (on a terminal).

    Returns
    -------
    Transactions

    Raises
    ------
    ConfigError
        ``config`` names no input.
    """
    if not config.input.path:
        raise ConfigError("No input: give INPUT or [input] path in the config.")
    return load_transactions(config.input.path, **config.load_options(),
                             con=connect(progress_bar=progress_bar))


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
    from ..integrations.model_store import load_frozen

    output = Path(output)
    rules = config.segments.rules
    frozen = (load_frozen(config.scoring.model, folder=config.scoring.models_dir, rules=rules)
              if config.scoring.model else None)
    rule_set = frozen.rule_set_ if frozen is not None else load_rules(rules)
    tx = read_transactions(config, progress_bar=progress_bar)
    result = segment_customers(customer_features(tx), rules=rule_set,
                               n_bins=config.scoring.n_bins, edges=config.scoring.edges,
                               scorer=frozen.scorer_ if frozen is not None else None)
    fitted = SegmentationModel.from_scorer(result.scorer, rules=rules)
    done = SegmentRun(config, tx.report, result, fitted)
    outputs = {beside(output, "quality.json"): text_writer(tx.report.to_json()),
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
    output = Path(output)
    settings = config.clustering
    tx = read_transactions(config, progress_bar=progress_bar)
    seg = segment_customers(customer_features(tx), rules=config.segments.rules,
                            n_bins=config.scoring.n_bins, edges=config.scoring.edges)
    clustering = cluster_customers(seg.customers, n_clusters=settings.n_clusters,
                                   k_range=tuple(settings.k_range),
                                   sample_size=settings.sample_size,
                                   random_state=settings.random_state)
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
        with ``by="segment"``). Its ``[kpis]`` section is NOT read: the arguments say.
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
        Predict CLV for the report.
    force : bool, default=False
        Replace existing files.
    progress_bar : bool, default=False
        See :func:`read_transactions`.

    Returns
    -------
    KPIRun
    """
    output = Path(output)
    tables = read_inputs(inputs or {})
    tx = read_transactions(config, progress_bar=progress_bar)
    segments = None
    if by == "segment":
        seg = segment_customers(customer_features(tx), rules=config.segments.rules,
                                n_bins=config.scoring.n_bins, edges=config.scoring.edges)
        segments = seg.customers[["customer_id", "segment"]]
    report = report_kpis(tx, tables, period=period, segments=segments, churn_days=churn_days,
                         clv=clv)
    done = KPIRun(tx.report, report)
    write_all({beside(output, "quality.json"): text_writer(tx.report.to_json()),
               beside(output, "cohorts.csv"): table_writer(report.cohorts.reset_index(), ".csv"),
               beside(output, "html"): text_writer(report.to_html()),
               beside(output, "json"): text_writer(report.to_json()),
               output: table_writer(done.table.to_frame(), output.suffix)}, force=force)
    return done

