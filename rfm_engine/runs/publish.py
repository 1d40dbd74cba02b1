"""Publishing a weekly run: write the staging folder, verify the lists, manifest, rename.

:func:`publish_run` takes what :func:`rfm_engine.runs.weekly.run_weekly` computed (a
:class:`~rfm_engine.runs.weekly.WeeklyRun`) and writes it; it computes nothing but the
file formats::

    staging folder -> lists, tables, reports -> lists re-read and verified
                   -> manifest (inputs, config, counts, sizes and hashes) -> rename

Everything is written into a hidden staging folder beside ``DIR/<as_of>``; the lists are
re-read there and proven free of suppressed addresses (and, with a consent file, of
customers without consent); only then is the folder renamed into place
(:func:`rfm_engine.io.writers.publish_folder`). A failure leaves ``DIR`` as it was.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..campaigns.exports import export_writers
from ..campaigns.plan import EXCLUSION_REASONS
from ..campaigns.suppression import SuppressionList, email_ids, verify_no_suppressed
from ..core.scoring import scorer_json
from ..io.manifest import file_entry, sha256_file, versions
from ..io.writers import (
    TableWriter,
    json_text,
    publish_folder,
    staging_folder,
    table_writer,
    text_writer,
    write_all,
)
from ..measurement.migration import CUSTOMERS_FILE
from ..progress import logger, step
from ..reports.summary_report import RunSummary, write_heatmap_png

if TYPE_CHECKING:
    from .weekly import WeeklyRun

__all__ = ["CustomerTable", "file_dtypes", "publish_run"]

_SUGGESTION_COLUMNS = ("cross_sell", "upsell")


def publish_run(run: WeeklyRun, run_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Write ``run`` into a staging folder, verify it, and rename it to ``run_dir``.

    Parameters
    ----------
    run : WeeklyRun
        What the run computed.
    run_dir : Path
        ``DIR/<as_of>``; the caller holds its publish lock.
    force : bool, default=False
        Replace an existing ``run_dir``.

    Returns
    -------
    dict
        The manifest written last (``manifest.json``).

    Raises
    ------
    ComplianceError
        A written list holds a suppressed address or a customer without consent
        (nothing is published).
    OutputExistsError
        ``run_dir`` exists and ``force`` is false.
    """
    with step(f"writing {run_dir}"), staging_folder(run_dir) as staging:
        manifest = _write_run(staging, run_dir, run)
        run.tx.source.check_unchanged()  # every read of the input is done
        publish_folder(staging, run_dir, force=force)
    logger.info("published %s", run_dir)
    return manifest


class CustomerTable:
    """A run's customer table as publishing reads it: a pandas DataFrame (the DuckDB run).

    The Spark run gives an object with the same methods over a Spark DataFrame
    (:class:`rfm_engine.engines.spark.handoff.SparkCustomers`): the table is written by
    Spark and only the lists and the few rows the checks need are collected.

    Parameters
    ----------
    frame : DataFrame
        Every customer with features, scores, segment, migration and campaign columns.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)
        self._out = frame.drop(columns=["email_valid"])

    def targets(self, campaign: str) -> pd.DataFrame:
        """Return the targets of ``campaign`` in the columns of ``customers.parquet``."""
        out = self._out
        return out[(out["campaign"] == campaign) & (out["group"] == "target")]

    def writers(self, path: Path) -> dict[Path, Any]:
        """Return the writer of ``customers.parquet``: one file (written with the rest)."""
        return {path: table_writer(self._out, ".parquet", dtypes=file_dtypes(self._out))}

    def write(self, path: Path) -> dict[Path, int]:
        """Write nothing: the file is one of :meth:`writers`."""
        return {}

    def suppressed_email_ids(self, suppressions: SuppressionList) -> dict[str, list[str]]:
        """Email to ids of the customers suppressed by id (for lists without an id column)."""
        return email_ids(self.frame, suppressions.mask(self.frame[["customer_id"]]))

    def without_consent(self) -> tuple[list[str], dict[str, list[str]]]:
        """Ids without valid consent, and email to ids of such targets (the consent check)."""
        table = self.frame
        no_consent = ~table["email_consent"].to_numpy(dtype=bool)
        return (table.loc[no_consent, "customer_id"].tolist(),
                email_ids(table, no_consent & (table["group"] == "target").to_numpy()))


def _write_run(staging: Path, run_dir: Path, run: WeeklyRun) -> dict[str, Any]:
    seg, migration, counts = run.segmentation, run.migration, run.counts
    tx, config, layout, consents = run.tx, run.config, run.layout, run.consents
    suppressions, table = run.suppressions, run.customer_table()
    with step("lists and reports"):
        outputs, lists, email_lists = _outputs(staging, run, table)
    with step("writing the files"):
        write_all(outputs, force=True)
        write_heatmap_png(migration, staging / "migration" / "transition_matrix.png")
    rows = {path: writer.rows for path, writer in outputs.items()  # known, not re-read
            if isinstance(writer, TableWriter)}
    rows.update(table.write(staging / CUSTOMERS_FILE))  # Spark: part files, each listed
    del outputs  # the lists' frames

    # Every list is read back from disk (it parses, and it has the column to check) even
    # when there is nothing to find; a list without an id column (Mailchimp) is checked by
    # address against the customers suppressed by id too.
    with step("verifying the lists against the suppression list"):
        verify_no_suppressed(lists, suppressions,
                             email_ids=table.suppressed_email_ids(suppressions))
    if consents is not None:
        with step("verifying the email lists against the consent records"):
            ids, addresses = table.without_consent()
            verify_no_suppressed(sorted(email_lists), SuppressionList(customer_ids=ids),
                                 email_ids=addresses, check="consent")

    model_path = config.scoring.model
    manifest = {
        "rfm_engine_manifest": 1,
        "as_of": tx.as_of.isoformat(),
        "run_dir": run_dir.name,
        "inputs": {
            "transactions": {"source": tx.source.name, "rows": tx.report.rows_read,
                             "files": [file_entry(p) for p in tx.source.paths]},
            "suppression": suppressions.sources,
            "previous_run": run.previous_dir.name if run.previous_dir else None,
            "consent": consents.source if consents is not None else None,
            "clv_params": (file_entry(config.kpis.clv_params)
                           if config.kpis.clv and config.kpis.clv_params else None),
        },
        "config": config.to_dict(),
        "model": {"path": model_path, "sha256": sha256_file(model_path) if model_path else None,
                  "fitted_in_this_run": run.fitted_here,
                  "effective_scores": seg.effective_bins()},
        "layout": layout,
        "counts": {
            "cleaning": tx.report.to_dict(),
            "segments": dict(zip(seg.summary["segment"], seg.summary["customers"].astype(int),
                                 strict=True)),
            "campaigns": json.loads(counts.to_json(orient="records")),
            "suppression_entries": len(suppressions),
            "consent": None if consents is None else {
                **consents.counts, "objected_customers_removed": len(run.objected),
                "no_consent": int(counts["no_consent"].sum())},
        },
        "compliance": run.compliance,
        "outputs": [file_entry(p, root=staging, rows=rows.get(p))
                    for p in sorted(staging.rglob("*")) if p.is_file()],
        "warnings": run.warnings,
        "versions": versions(),
    }
    write_all({staging / "manifest.json": text_writer(json_text(manifest))}, force=True)
    return manifest


def _outputs(staging: Path, run: WeeklyRun, table: CustomerTable
             ) -> tuple[dict[Path, Any], list[Path], list[Path]]:
    """Return the writers of every file of the run, the lists, and the email lists."""
    seg, migration, counts = run.segmentation, run.migration, run.counts
    tx, layout, consents, clustering = run.tx, run.layout, run.consents, run.clustering
    lists: dict[Path, Any] = {}
    email_lists: list[Path] = []
    links: dict[str, list[str]] = {}  # campaign -> its list file(s), for the summary
    for campaign in run.plan:
        targets = table.targets(campaign.name)
        if campaign.channel != "email":
            targets = targets.drop(columns=["email"])
        extras = [c for c in _SUGGESTION_COLUMNS if c in targets and campaign.type ==
                  "resurrection"]
        writers = export_writers(campaign.name, targets, layout if campaign.channel == "email"
                                 else "generic", staging / "campaigns", extra_columns=extras,
                                 **run.config.output.file_limits())
        lists.update(writers)
        links[campaign.name] = [p.relative_to(staging).as_posix() for p in writers]
        if campaign.channel == "email":
            email_lists += list(writers)
    outputs: dict[Path, Any] = {
        **table.writers(staging / CUSTOMERS_FILE),
        staging / "segments.csv": table_writer(run.segments, ".csv"),
        staging / "campaigns.csv": table_writer(counts, ".csv"),
        staging / "quality.json": text_writer(tx.report.to_json()),
        staging / "migration" / "transition_matrix.csv": table_writer(
            migration.matrix.reset_index(), ".csv"),
        **lists,
    }
    for name, frame in run.triggers.items():
        outputs[staging / "triggers" / f"{name}.csv"] = table_writer(frame, ".csv")
    if run.fitted_here:
        outputs[staging / "scorer.json"] = text_writer(scorer_json(seg.scorer))
    if clustering is not None:
        outputs[staging / "clustering" / "clusters.csv"] = table_writer(clustering.summary, ".csv")
        if clustering.crosstab is not None:
            outputs[staging / "clustering" / "crosstab.csv"] = table_writer(
                clustering.crosstab.reset_index(), ".csv")
        outputs.update(clustering.plot_writers(staging / "clustering"))
    reasons = [r for r in EXCLUSION_REASONS if r != "suppressed"]
    shown = counts.assign(excluded=counts[reasons].sum(axis=1))
    if consents is None:
        shown = shown.drop(columns=["no_consent"])
    summary = RunSummary(run.segments, shown,
                         migration, tx.report, as_of=tx.as_of,
                         input_name=Path(tx.source.name).name,
                         counts={"customers": table.rows, "layout": layout,
                                 **({"objected to profiling (left out)": len(run.objected)}
                                    if consents is not None else {})},
                         lists=links,
                         segment_notes=[_clv_note(run.kpi)])
    outputs[staging / "summary.html"] = text_writer(summary.to_html())
    kpi = run.kpi
    outputs[staging / "kpis.html"] = text_writer(kpi.to_html(table_file="kpis.csv"))
    outputs[staging / "kpis.csv"] = table_writer(kpi.to_frame(), ".csv")
    outputs[staging / "kpis.json"] = text_writer(kpi.to_json())
    # The tables behind the report's cohort heatmap and revenue-by-segment chart, for the
    # marketers' page (rfm_engine.ui) to draw interactively.
    outputs[staging / "kpis_cohorts.csv"] = table_writer(
        kpi.cohorts.reset_index().rename(columns=str), ".csv")
    if kpi.by_segment is not None:
        outputs[staging / "kpis_by_segment.csv"] = table_writer(kpi.by_segment.to_frame(),
                                                                ".csv")
    return outputs, sorted(lists), email_lists


def _clv_note(kpi: Any) -> str:
    """Say what the segment table's predicted CLV columns hold, or why they are empty."""
    clv = kpi.clv
    if clv is None:
        return f"Predicted CLV: none in this run ({kpi.clv_problem})."
    # The KPI report fits in weeks ([kpis] clv_horizon).
    discount = ("undiscounted" if clv.discount_rate == 0
                else f"discounted {clv.discount_rate:.2%} a week")
    return (f"Predicted CLV: what the CLV models of the KPI report expect the segment's "
            f"customers to spend in the next {clv.horizon:g} weeks ({discount}), in total and "
            "per customer; mean P(alive): how likely they are, on average, to still be "
            "customers.")


def file_dtypes(table: pd.DataFrame) -> dict[str, Any]:
    """Return the dtypes ``customers.parquet`` holds for the compact columns of ``table``.

    The run keeps text of few values (campaign, group, ...) as categoricals in memory;
    the file holds them as text, as it always has (same schema, same bytes).
    """
    return {str(name): "str" for name, dtype in table.dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype)}
