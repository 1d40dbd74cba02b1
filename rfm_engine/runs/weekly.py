"""The weekly run: transactions to segments to campaign target lists, then published.

``run_weekly`` is what ``rfm-engine run`` calls every Monday. This module computes; it
writes nothing itself::

    load -> features -> scores (frozen model or fitted) -> segments -> migration
         -> suppression, holdout, campaigns -> KPI report          (this module)
         -> exports -> verification -> manifest -> publish          (runs.publish)

Everything the run folder holds is computed first (:class:`WeeklyRun`), then
:func:`rfm_engine.runs.publish.publish_run` writes it into a hidden staging folder beside
``DIR/<as_of>``, re-reads the lists there to prove them free of suppressed addresses, and
only then renames the folder into place. A failure at any point leaves ``DIR`` as it was.
From the moment its as-of date is known the run holds the lock ``DIR/.<as_of>.lock``: a
second run into the same folder and date is refused (exit code 5), and the leftovers of
killed runs are removed (:func:`rfm_engine.io.writers.publish_lock`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from ..campaigns.assign import assign_campaigns, campaign_counts, customer_flags
from ..campaigns.consent import ConsentList, load_consent
from ..campaigns.exports import LAYOUTS
from ..campaigns.plan import (
    DEFAULT_PLAN,
    Campaign,
    check_plan,
    load_campaigns,
)
from ..campaigns.suggestions import suggest_items
from ..campaigns.suppression import (
    SuppressionList,
    check_freshness,
    load_suppression,
)
from ..config import Config
from ..core.features import customer_features
from ..core.model import SegmentationModel
from ..core.pipeline import Segmentation, segment_customers
from ..core.segments import load_rules
from ..engines import spark_engine
from ..errors import ComplianceError, ConfigError, OutputExistsError
from ..integrations.model_store import load_frozen
from ..io.loading import Transactions, connect, load_transactions
from ..io.quality import DataQualityReport
from ..io.writers import check_output_folder, publish_lock, staging_folder
from ..measurement.kpis import SegmentFiles
from ..measurement.migration import (
    CUSTOMERS_FILE,
    Migration,
    customers_parts,
    earlier_runs,
    migrate,
    trigger_lists,
)
from ..progress import step
from ..reports.kpi_report import report_kpis, saved_clv_params
from .publish import CustomerTable, publish_run

if TYPE_CHECKING:  # k-means (scikit-learn) is imported only by a run that clusters
    from ..core.clustering import Clustering

__all__ = ["RunResult", "WeeklyRun", "run_weekly", "campaign_plan", "check_suppression_source"]

#: Columns of the previous run's customers.parquet that migration reads.
_MIGRATION_COLUMNS = ["customer_id", "segment", "segment_since"]


@dataclass
class RunResult:
    """What a weekly run produced.

    Attributes
    ----------
    run_dir : Path
        ``DIR/<as_of>``.
    as_of : datetime.date
        Inclusive observation end of the run.
    customers : DataFrame
        Every customer with features, scores, segment, migration and campaign columns
        (a run on Spark: a Spark DataFrame, lazy, as ``customers.parquet`` holds it; read
        the run's folder rather than collect it).
    segments : DataFrame
        The segment summary table.
    campaigns : DataFrame
        Counts per campaign (candidates, suppressed, excluded by reason, holdout, targets).
    manifest : dict
        The manifest written last.
    model : SegmentationModel
        The model that scored the run (frozen, or fitted in this run).
    warnings : list of str
        Things worth a look that did not stop the run.
    quality : DataQualityReport or None
        The data-quality report of the transactions read (also ``quality.json``).
    """

    run_dir: Path
    as_of: dt.date
    customers: Any
    segments: pd.DataFrame
    campaigns: pd.DataFrame
    manifest: dict[str, Any]
    model: SegmentationModel
    warnings: list[str] = field(default_factory=list)
    quality: DataQualityReport | None = None


@dataclass
class WeeklyRun:
    """Everything a weekly run computed, before a file is written.

    :func:`rfm_engine.runs.publish.publish_run` writes exactly this; nothing is computed
    while writing but the file formats themselves (HTML, CSV, the manifest).

    Attributes
    ----------
    config : Config
        The effective configuration (overrides applied), recorded in the manifest.
    plan : tuple of Campaign
        The campaigns of the run.
    layout : str
        The email tool's import layout of the email lists.
    tx : Transactions
        The transactions read; after computing only their report, source and dates are
        used (the DuckDB connection is closed).
    customers : DataFrame
        Every customer with features, scores, segment, migration and campaign columns
        (a run on Spark: a Spark DataFrame, never collected).
    segmentation : Segmentation
        Scores and segments (``summary``, ``scorer``, ``effective_bins``).
    migration : Migration
        The comparison with the previous run.
    triggers : dict of str to DataFrame
        The trigger lists (empty on a first run).
    counts : DataFrame
        Counts per campaign.
    kpi : object
        The KPI report (:func:`rfm_engine.reports.kpi_report.report_kpis`).
    suppressions : SuppressionList
        The suppression list the lists were filtered with.
    consents : ConsentList or None
        The consent records, when a consent file was given.
    objected : list of str
        Customers left out because they objected to profiling.
    compliance : dict
        The compliance settings recorded in the manifest.
    previous_dir : Path or None
        The previous run compared with.
    clustering : Clustering or None
        k-means beside the rule segments.
    fitted_here : bool
        Whether the scorer was fitted in this run (else: the frozen model's).
    model : SegmentationModel
        The model that scored the run.
    warnings : list of str
        Things worth a look that did not stop the run.
    table : object, optional
        The customer table as publishing reads it, when it is not ``customers`` on the
        driver: the Spark run's :class:`rfm_engine.engines.spark.handoff.SparkCustomers`.
    segment_ids : object, optional
        ``customer_id, segment`` of every customer for the segment table's CLV columns,
        when not from ``customers``: the Spark run's
        :class:`~rfm_engine.measurement.kpis.SegmentFiles`.
    """

    config: Config
    plan: tuple[Campaign, ...]
    layout: str
    tx: Transactions
    customers: Any
    segmentation: Segmentation
    migration: Migration
    triggers: dict[str, pd.DataFrame]
    counts: pd.DataFrame
    kpi: Any
    suppressions: SuppressionList
    consents: ConsentList | None
    objected: list[str]
    compliance: dict[str, Any]
    previous_dir: Path | None
    clustering: Clustering | None
    fitted_here: bool
    model: SegmentationModel
    warnings: list[str] = field(default_factory=list)
    table: Any = None
    segment_ids: Any = None

    def customer_table(self) -> Any:
        """Return the customer table as publishing reads it (:class:`~.publish.CustomerTable`).

        The Spark run's is written by Spark, as a folder of part files.
        """
        return self.table if self.table is not None else CustomerTable(self.customers)

    @cached_property
    def segments(self) -> pd.DataFrame:
        """The segment table: the summary plus the predicted CLV of the run's KPI report.

        ``predicted_clv`` (total), ``mean_clv`` and ``mean_p_alive`` per segment, from the
        CLV fit of the KPI report (not fitted twice); null when it could not be fitted
        (``kpi.clv_problem`` says why).
        """
        from ..measurement.clv.value import segment_clv  # scipy: only once the run has a table

        ids = self.segment_ids if self.segment_ids is not None else self.customers
        return segment_clv(self.segmentation.summary, ids, self.kpi.clv)


def campaign_plan(config: Config) -> tuple[Campaign, ...]:
    """Return the campaigns of ``config`` (``[[campaigns]]``), or the default plan."""
    if config.campaigns is None:
        return DEFAULT_PLAN
    return load_campaigns(config.campaigns, source=config.source or "<config>")


def _has_email(plan: tuple[Campaign, ...]) -> bool:
    return any(c.channel == "email" for c in plan)


def check_suppression_source(plan: tuple[Campaign, ...], paths: list[str],
                             no_suppression: bool) -> None:
    """Refuse email campaigns without a suppression source unless it is waived on purpose.

    Raises
    ------
    ComplianceError
        Naming the email campaigns (exit code 4).
    """
    email = [c.name for c in plan if c.channel == "email"]
    if email and not paths and not no_suppression:
        raise ComplianceError(
            f"Email campaign(s) {', '.join(email)} need a suppression source (unsubscribed, "
            "bounced, complained, erased): pass --suppression FILE or [output] suppression, or "
            "--no-suppression to waive it on purpose. Nothing was written."
        )


def _earlier_runs(output_dir: Path, as_of: dt.date, plan: tuple[Campaign, ...], *,
                  migration: bool = True
                  ) -> tuple[Path | None, pd.DataFrame | None, pd.DataFrame]:
    """Read what this run needs of the earlier runs: each file once, in the columns needed.

    Returns the previous run's folder, its customers (``customer_id``, ``segment`` and
    ``segment_since``, for migration; None with ``migration=False``: the Spark run reads
    them on Spark) and the contact history (``customer_id``, ``campaign``, ``as_of``: the
    targets of the runs within the plan's longest spacing, the only ones that can exclude
    anyone as ``contacted_recently``).
    """
    runs = earlier_runs(output_dir, as_of)
    previous_dir = runs[-1][1] if runs else None
    window = max((c.min_days_between_contacts or 0 for c in plan), default=0)
    previous = None
    frames = []
    for day, folder in runs:
        recent = (as_of - day).days < window
        path = folder / CUSTOMERS_FILE  # a file, or a folder of part files (Spark)
        parts = customers_parts(folder)
        if folder == previous_dir and migration:  # read whole: a missing file stops the run
            names = pq.read_schema(parts[0] if parts else path).names
            columns = [c for c in _MIGRATION_COLUMNS if c in names]
            table = pd.read_parquet(path, columns=columns + (
                [c for c in ("campaign", "group") if c not in columns] if recent else []))
            previous = table[columns]
            if recent:
                targets = table[table["group"] == "target"]
                frames.append(targets[["customer_id", "campaign"]].assign(as_of=day))
        elif recent and parts:
            targets = pd.read_parquet(path, columns=["customer_id", "campaign"],
                                      filters=[("group", "==", "target")])
            frames.append(targets.assign(as_of=day))
    if not frames:
        history = pd.DataFrame({"customer_id": pd.Series(dtype=str),
                                "campaign": pd.Series(dtype=str),
                                "as_of": pd.Series(dtype=object)})
    else:
        history = pd.concat(frames, ignore_index=True)
    return previous_dir, previous, history


def _lock_run(locks: contextlib.ExitStack, run_dir: Path, force: bool) -> None:
    """Hold the publish lock of ``run_dir`` for the rest of the run; refuse an existing run.

    Another run writing the same folder and as-of date gets exit code 5; the leftovers
    of killed runs in the folder are removed (:func:`~rfm_engine.io.writers.publish_lock`).
    """
    locks.enter_context(publish_lock(run_dir))
    _refuse_existing(run_dir, force)  # again under the lock: another run may just have published


def run_weekly(
    config: Config,
    *,
    output_dir: str | Path | None = None,
    suppression: list[str | Path] | None = None,
    no_suppression: bool | None = None,
    layout: str | None = None,
    force: bool = False,
    allow_stale_suppression: bool | None = None,
    max_suppression_age_days: int | None = None,
    consent: str | Path | None = None,
    consent_required: bool | None = None,
) -> RunResult:
    """Run the weekly job and write ``DIR/<as_of>/``.

    The keyword arguments override ``config`` (validated like it); the manifest's
    ``config`` is that effective configuration.

    Parameters
    ----------
    config : Config
        The run configuration (:func:`rfm_engine.load_config`); ``[input] path`` names
        the transactions.
    output_dir : str or Path, optional
        ``DIR`` (default: ``[output] dir``, ``out``).
    suppression : list of paths, optional
        Suppression files (default: ``[output] suppression``).
    no_suppression : bool, optional
        Run email campaigns without a suppression source, on purpose.
    layout : {"generic", "mailchimp", "klaviyo", "hubspot", "braze"}, optional
        The email tool's import layout (default: ``[output] format``).
    force : bool, default=False
        Replace an existing ``DIR/<as_of>``.
    allow_stale_suppression : bool, optional
        Use suppression files older than the limit, with a warning (default:
        ``[output] allow_stale_suppression``, false).
    max_suppression_age_days : int, optional
        The age limit of suppression files in days (default: ``[output]
        max_suppression_age_days``, 7); see
        :func:`rfm_engine.campaigns.suppression.check_freshness`.
    consent : str or Path, optional
        The consent file (default: ``[output] consent``); see :mod:`rfm_engine.campaigns.consent`.
        Customers who objected to profiling are left out of the run; email campaigns
        exclude customers without valid consent on ``as_of`` (``no_consent``).
    consent_required : bool, optional
        With a consent file, customers without a row have no consent (default:
        ``[output] consent_required``, true).

    Returns
    -------
    RunResult

    Raises
    ------
    ComplianceError
        An email campaign without a suppression source, a suppression file older than
        the age limit (nothing is read further), or a suppressed address found in a
        written list (nothing is published).
    OutputExistsError
        ``DIR/<as_of>`` exists and ``force`` is false, or another run is writing it
        (:class:`~rfm_engine.errors.OutputBusyError`).
    OutputError
        ``DIR`` is a file or cannot be written (checked before anything is read).
    """
    with contextlib.ExitStack() as locks:  # publish locks, held until the run ends
        # The effective config: what runs is what the manifest (and MLflow) records.
        config = config.with_overrides({
            "output.dir": None if output_dir is None else str(output_dir),
            "output.suppression": None if suppression is None else [str(p) for p in suppression],
            "output.no_suppression": no_suppression, "output.format": layout or None,
            "output.allow_stale_suppression": allow_stale_suppression,
            "output.max_suppression_age_days": max_suppression_age_days,
            "output.consent": None if consent is None else str(consent),
            "output.consent_required": consent_required})
        out = config.output
        output_dir = Path(out.dir)
        paths = list(out.suppression)
        waive = out.no_suppression
        layout = out.format
        if layout not in LAYOUTS:
            raise ConfigError(f"The export format must be one of {', '.join(LAYOUTS)}. "
                              f"Got {layout!r} instead.")
        plan = campaign_plan(config)
        check_suppression_source(plan, paths, waive)
        check_output_folder(output_dir)  # fail fast, before reading anything
        if config.features.as_of:
            _lock_run(locks, output_dir / str(config.features.as_of), force)
        if not (config.input.path or (config.input.engine == "spark" and config.input.table)):
            raise ConfigError("No input: give --input PATH or [input] path in the config.")
        frozen = _frozen_model(config)
        rule_set = frozen.rule_set_ if frozen is not None else load_rules(config.segments.rules)
        scorer = frozen.scorer_ if frozen is not None else None
        suppressions = load_suppression(paths) if paths else SuppressionList.empty()
        compliance: dict[str, Any] = {
            "max_suppression_age_days": out.max_suppression_age_days,
            "allow_stale_suppression": out.allow_stale_suppression,
        }
        stale = check_freshness(suppressions, compliance["max_suppression_age_days"],
                                allow_stale=compliance["allow_stale_suppression"]
                                or not _has_email(plan))
        consent_path = out.consent
        compliance["consent_required"] = out.consent_required
        consents = (load_consent(consent_path, required=compliance["consent_required"])
                    if consent_path else None)
        saved_clv = saved_clv_params(config.kpis)  # a bad params file: before any work

        spark = config.input.engine == "spark"
        if spark:  # the lines stay on the cluster (rfm_engine.engines.spark)
            engine = spark_engine()
            tx = engine.load_transactions(config.input.path, **config.load_options())
            locks.callback(tx.release)  # unpersist the run's frames when it ends, however
        else:
            tx = load_transactions(config.input.path, **config.load_options(), con=connect())
        run_dir = output_dir / tx.as_of.isoformat()
        _lock_run(locks, run_dir, force)
        if spark:
            objected = _remove_objected_spark(engine, consents, tx)
            # Scores and segments on Spark (fitted or frozen edges, the rule set compiled
            # to one expression, the segment table aggregated once).
            seg = engine.segment_customers(
                engine.customer_frame_spark(tx), rules=rule_set, n_bins=config.scoring.n_bins,
                edges=config.scoring.edges, scorer=scorer,
                **config.scoring.spark_fit_options())
            # The driver-side steps (KPIs, CLV) read Spark's Parquet with DuckDB, from a
            # hidden folder beside the run (removed at the end; a killed run's is removed
            # by the next run's lock, as a staging folder).
            handoff = locks.enter_context(staging_folder(run_dir))
            local = engine.driver_transactions(tx, handoff,
                                               memory_limit=config.input.memory_limit)
        else:
            objected = consents.remove_objected(tx) if consents is not None else []
            seg = segment_customers(customer_features(tx), rules=rule_set,
                                    n_bins=config.scoring.n_bins, edges=config.scoring.edges,
                                    scorer=scorer)
            local = tx
        warnings = (stale + list(tx.report.warnings) + seg.warnings
                    + check_plan(plan, rule_set.segments))
        previous_dir, previous, history = _earlier_runs(output_dir, tx.as_of, plan,
                                                        migration=not spark)
        previous_as_of = dt.date.fromisoformat(previous_dir.name) if previous_dir else None
        if spark:  # the customer table stays on Spark (issue 13)
            clustering = _clustering(config, frozen, seg.customers, engine=engine)
            if clustering is not None:
                tx.hold(clustering.labelled)  # persisted by k-means: released with the rest
            previous = previous_dir / CUSTOMERS_FILE if previous_dir else None
            table, migration, counts = _spark_steps(
                engine, plan, layout, tx,
                clustering.customers if clustering is not None else seg.customers, rule_set,
                previous, previous_as_of, history, suppressions, consents)
            # the KPI report and the CLV columns read (customer_id, segment) from Parquet
            engine.write_parts(table.select("customer_id", "segment"), handoff / "segments")
            segments_of: Any = SegmentFiles(handoff / "segments")
        else:
            clustering = _clustering(config, frozen, seg.customers)
            scored = clustering.customers if clustering is not None else seg.customers
            table, migration, counts = _driver_steps(
                plan, layout, tx, local, scored, rule_set, previous, previous_as_of, history,
                suppressions, consents)
            segments_of = table[["customer_id", "segment"]]
        triggers = (trigger_lists(migration, config.migration.triggers)
                    if migration.has_previous else {})  # first run: everyone is "new"
        with step("KPI report"):
            kpi = _kpi_report(config, local, segments_of, saved_clv, clv_summary=(
                _spark_clv_summary(engine, tx) if spark else None))
        warnings += kpi.warnings
        local.con.close()  # every query is done: free DuckDB's tables before writing

        # Everything the result needs is built before publishing: nothing after it can fail.
        model = frozen or SegmentationModel.from_scorer(
            seg.scorer, rules=config.segments.rules,
            clusterer=clustering.clusterer if clustering is not None else None)
        run = WeeklyRun(config=config, plan=plan, layout=layout, tx=tx, customers=table,
                        segmentation=seg, migration=migration, triggers=triggers,
                        counts=counts, kpi=kpi, suppressions=suppressions, consents=consents,
                        objected=objected, compliance=compliance, previous_dir=previous_dir,
                        clustering=clustering, fitted_here=scorer is None, model=model,
                        warnings=warnings, segment_ids=segments_of,
                        table=(engine.SparkCustomers(table, rows=_customers(seg))
                               if spark else None))
        manifest = publish_run(run, run_dir, force=force)
        return RunResult(run_dir, tx.as_of, table, run.segments, counts, manifest, model, warnings,
                         quality=tx.report)


def _driver_steps(plan: tuple[Campaign, ...], layout: str, tx: Any, local: Transactions,
                  scored: pd.DataFrame, rule_set: Any, previous: pd.DataFrame | None,
                  previous_as_of: dt.date | None, history: pd.DataFrame,
                  suppressions: SuppressionList, consents: ConsentList | None
                  ) -> tuple[pd.DataFrame, Migration, pd.DataFrame]:
    """Migration, campaigns and suggestions on the driver: the customer table, migration, counts."""
    with step("migration against the previous run", rows=len(scored)):
        migration = migrate(scored, previous, tx.as_of, order=rule_set.segments,
                            previous_as_of=previous_as_of)
        table = migration.customers

    with step("campaigns: suppression, holdout, caps", rows=len(table)):
        flags = customer_flags(table, as_of=tx.as_of, layout=layout,  # the tool's rules
                               suppression=suppressions, consents=consents)
        for column in ("email", "email_valid", "email_consent"):
            if column in flags:
                table[column] = flags[column]
        assignment = assign_campaigns(
            table, plan, as_of=tx.as_of,
            suppressed=flags["suppressed"].to_numpy(),
            contact_history=history,
            quarantined=flags["quarantined"].to_numpy(),
            no_consent=(~flags["email_consent"].to_numpy(dtype=bool)
                        if consents is not None else None),
        )
        table = pd.concat([table, assignment], axis=1)
        resurrected = table["campaign"].isin(_resurrection(plan))
        targets = table.loc[resurrected, "customer_id"]
        for column, values in suggest_items(local, table, targets=targets).items():
            table[column] = values.set_axis(table.index)  # NA but for the targets
        counts = campaign_counts(table, plan).reset_index()
    return table, migration, counts


def _spark_steps(engine: ModuleType, plan: tuple[Campaign, ...], layout: str, tx: Any,
                 scored: Any, rule_set: Any, previous: Path | None,
                 previous_as_of: dt.date | None, history: pd.DataFrame,
                 suppressions: SuppressionList, consents: ConsentList | None
                 ) -> tuple[Any, Migration, pd.DataFrame]:
    """Migration, campaigns and suggestions on Spark: the customer table never leaves it.

    The same steps as :func:`_driver_steps`, by :mod:`rfm_engine.engines.spark`'s
    ``migrate``, ``assign_campaigns``, ``suggest_items`` and ``campaign_counts``. The
    segmented (or clustered) customers and the final table are persisted (each is read
    by several steps) and unpersisted with the lines when the run ends, however it ends
    (``tx.release``).
    """
    scored = tx.hold(scored)
    with step("migration against the previous run (spark)"):
        migration = engine.migrate(scored, previous, tx.as_of, order=rule_set.segments,
                                   previous_as_of=previous_as_of)
    with step("campaigns: suppression, holdout, caps (spark)"):
        assigned = engine.assign_campaigns(
            migration.customers, plan, as_of=tx.as_of, layout=layout,
            suppression=suppressions, consents=consents, contact_history=history)
        suggested = engine.suggest_items(tx, assigned,
                                         targets=engine.in_campaigns(_resurrection(plan)))
        table = tx.hold(suggested)
        counts = engine.campaign_counts(table, plan).reset_index()
    # The trigger lists read the entrants from the persisted table (it holds the migration
    # columns), not from the join with the previous run again, once per trigger.
    migration.customers = table
    return table, migration, counts


def _resurrection(plan: tuple[Campaign, ...]) -> list[str]:
    """Return the resurrection campaigns of ``plan`` (their targets get suggestions)."""
    return [c.name for c in plan if c.type == "resurrection"]


def _remove_objected_spark(engine: ModuleType, consents: ConsentList | None,
                           tx: Any) -> list[str]:
    """Leave the customers who objected to profiling out of Spark transactions ``tx``.

    The rule is :meth:`ConsentList.objected_ids` over the distinct ids (and addresses)
    of the lines, collected only when the consent file holds an objection.
    """
    if consents is None or not consents.counts["objected"]:
        return []
    removed = consents.objected_ids(engine.people(tx))
    engine.without_customers(tx, removed)
    return removed


def _customers(seg: Segmentation) -> int:
    """Return the number of customers segmented (from the segment table)."""
    return int(seg.summary["customers"].sum())


def _frozen_model(config: Config) -> SegmentationModel | None:
    """Load the frozen model of ``[scoring] model``, or return None to fit one in this run."""
    if not config.scoring.model:
        return None
    return load_frozen(config.scoring.model, folder=config.scoring.models_dir,
                       rules=config.segments.rules)


def _clustering(config: Config, frozen: SegmentationModel | None, customers: Any, *,
                engine: ModuleType | None = None) -> Clustering | None:
    """k-means beside the rule segments: the frozen model's clusterer, else ``[clustering]``.

    With ``engine`` (:mod:`rfm_engine.engines.spark`), on Spark: the same sample, fit,
    labels and names, the customers staying there.
    """
    if frozen is not None and frozen.clusterer_ is not None:
        if engine is not None:
            return engine.apply_clusterer(customers, frozen.clusterer_)
        from ..core.clustering import apply_clusterer

        return apply_clusterer(customers, frozen.clusterer_)
    settings = config.clustering
    if not settings.enabled:
        return None
    if engine is not None:
        cluster_customers: Any = engine.cluster_customers
    else:
        from ..core.clustering import cluster_customers

    with step("k-means clustering"):
        return cluster_customers(customers, n_clusters=settings.n_clusters,
                                 k_range=tuple(settings.k_range),
                                 sample_size=settings.sample_size,
                                 random_state=settings.random_state)


def _kpi_report(config: Config, tx: Transactions, segments: pd.DataFrame,
                saved_clv: Any = None, clv_summary: Any = None) -> Any:
    """Build the run's KPI report, with the optional inputs of ``[kpis.inputs]``.

    ``saved_clv``: `saved_clv_params` (score the predicted CLV with them instead of fitting);
    ``clv_summary``: time unit to the CLV summary, when not computed from ``tx``.
    """
    from ..io.crm_inputs import read_inputs

    settings = config.kpis
    return report_kpis(tx, read_inputs(settings.inputs), period=settings.period,
                       segments=segments, churn_days=settings.churn_days, clv=settings.clv,
                       clv_horizon=settings.clv_horizon, clv_model=settings.clv_model,
                       clv_params=saved_clv, clv_summary=clv_summary)


def _spark_clv_summary(engine: ModuleType, tx: Any) -> Any:
    """Return the CLV summary of the Spark run's lines, computed on Spark and collected.

    The model is fitted on the driver, so its input (one row per customer) is collected:
    the one per-customer table of the run that reaches the driver, as the step line says.
    """
    def summarise(time_unit: str) -> pd.DataFrame:
        with step("CLV summary (spark, collected to the driver for the fit)"):
            return engine.clv_summary(tx, time_unit=time_unit)

    return summarise


def _refuse_existing(run_dir: Path, force: bool) -> None:
    if run_dir.exists() and not force:
        raise OutputExistsError(f"{run_dir} already exists (a run for this as-of date); pass "
                                "--force to replace it. Nothing was written.")


