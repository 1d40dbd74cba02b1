"""The weekly run folders the page shows: found, and each read once.

A run folder is ``DIR/<as_of>/`` with its ``manifest.json`` (written last by
:func:`rfm_engine.runs.publish.publish_run`); :func:`run_folders` lists the complete ones,
the rule :func:`rfm_engine.measurement.migration.earlier_runs` applies for migration.
:class:`RunFolder` reads a run's files lazily, each at most once (``customers.parquet`` is
the big one: the page caches one :class:`RunFolder` per run, so a click never re-reads it).
Nothing here writes; the audit records of downloads are written by :mod:`rfm_engine.ui.lists`.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..errors import InputError
from ..io.identifiers import normalize_customer_id
from ..measurement.migration import CUSTOMERS_FILE, customers_parts, earlier_runs

__all__ = ["RunFolder", "customer_history", "run_folders", "segment_trends"]

#: Per-customer predictions shown in the segment table when a run has them.
PREDICTION_COLUMNS = ("clv", "p_alive")


def run_folders(directory: str | Path) -> list[RunFolder]:
    """Return the complete runs of ``directory``, oldest first.

    Parameters
    ----------
    directory : str or Path
        ``DIR`` of ``rfm-engine run --output-dir DIR``.

    Returns
    -------
    list of RunFolder
        One per folder named by an ISO date that holds a ``manifest.json``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["2025-12-22", "2025-12-29", "notes"]:
    ...     (out / name).mkdir()
    ...     _ = (out / name / "manifest.json").write_text("{}")
    >>> [run.as_of.isoformat() for run in run_folders(out)]
    ['2025-12-22', '2025-12-29']
    """
    return [RunFolder(path) for _, path in earlier_runs(directory, dt.date.max)]


class RunFolder:
    """One published weekly run, read lazily and at most once per file.

    Parameters
    ----------
    path : str or Path
        ``DIR/<as_of>``.

    Attributes
    ----------
    path : Path
        The folder.
    as_of : datetime.date
        The run's as-of date (the folder's name).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.as_of = dt.date.fromisoformat(self.path.name)
        except ValueError:
            raise InputError(f"{self.path}: not a run folder (its name is not an as-of date "
                             "such as 2025-12-29).") from None
        if not (self.path / "manifest.json").is_file():
            raise InputError(f"{self.path}: no manifest.json; not a complete run folder.")

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The run's ``manifest.json``."""
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    @cached_property
    def customers(self) -> pd.DataFrame:
        """``customers.parquet``: every customer of the run (read once).

        A file, or the folder of part files of a Spark run.
        """
        return pd.read_parquet(self.path / CUSTOMERS_FILE)

    @cached_property
    def segments(self) -> pd.DataFrame:
        """``segments.csv``: the run's segment summary."""
        return pd.read_csv(self.path / "segments.csv")

    @cached_property
    def campaigns(self) -> pd.DataFrame:
        """``campaigns.csv``: counts per campaign."""
        return pd.read_csv(self.path / "campaigns.csv")

    @cached_property
    def transitions(self) -> pd.DataFrame | None:
        """The transition matrix since the previous run (rows: previous segment), or None."""
        path = self.path / "migration" / "transition_matrix.csv"
        if not path.is_file():
            return None
        frame = pd.read_csv(path)
        return frame.set_index(frame.columns[0])

    @cached_property
    def triggers(self) -> dict[str, pd.DataFrame]:
        """Trigger lists by name (``triggers/<name>.csv``; ids and RFM, no email)."""
        folder = self.path / "triggers"
        if not folder.is_dir():
            return {}
        return {p.stem: pd.read_csv(p, dtype={"customer_id": str})
                for p in sorted(folder.glob("*.csv"))}

    @cached_property
    def kpis(self) -> pd.DataFrame | None:
        """``kpis.csv``: the KPI report's table per period, or None."""
        path = self.path / "kpis.csv"
        return pd.read_csv(path) if path.is_file() else None

    @cached_property
    def kpi_cohorts(self) -> pd.DataFrame | None:
        """``kpis_cohorts.csv``: cohort retention (index ``cohort``), or None."""
        path = self.path / "kpis_cohorts.csv"
        return pd.read_csv(path, index_col="cohort") if path.is_file() else None

    @cached_property
    def kpi_by_segment(self) -> pd.DataFrame | None:
        """``kpis_by_segment.csv``: the KPIs per period and segment, or None."""
        path = self.path / "kpis_by_segment.csv"
        return pd.read_csv(path) if path.is_file() else None

    @cached_property
    def kpi_summary(self) -> dict[str, Any] | None:
        """``kpis.json``: headline KPIs, predicted CLV and the optional-input KPIs, or None."""
        path = self.path / "kpis.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    @property
    def layout(self) -> str:
        """The email tool layout the run's email lists were written in."""
        return str(self.manifest.get("layout", "generic"))

    def campaign_channels(self) -> dict[str, str]:
        """Return campaign name -> channel, as the run assigned them."""
        table = self.customers
        if "campaign" not in table or "channel" not in table:
            return {}
        pairs = table[["campaign", "channel"]].dropna().drop_duplicates("campaign")
        return dict(zip(pairs["campaign"].astype(str), pairs["channel"].astype(str),
                        strict=True))

    def list_files(self, campaign: str) -> list[Path]:
        """Return the list file(s) of ``campaign`` as the run wrote them (HubSpot parts too)."""
        folder = self.path / "campaigns"
        single = folder / f"{campaign}.csv"
        if single.is_file():
            return [single]
        parts = folder.glob(f"{campaign}.part*.csv")
        return sorted(parts, key=lambda p: int(p.name[len(campaign) + 5:-4]))

    @cached_property
    def segment_table(self) -> pd.DataFrame:
        """The segment summary with orders, AOV and the run's predictions (computed once).

        ``segments.csv`` (customers, share, revenue, revenue share, mean R/F/M and, since
        the runs have them, predicted CLV and mean P(alive)) plus, from
        ``customers.parquet``: ``orders`` (the sum of frequency), ``aov`` (revenue /
        orders) and the mean of each column of :data:`PREDICTION_COLUMNS` the run has
        that ``segments.csv`` does not.
        """
        table = self.customers
        grouped = table.groupby("segment", observed=True, sort=False)
        extra = pd.DataFrame({"orders": grouped["frequency"].sum()})
        for column in PREDICTION_COLUMNS:
            if column in table and f"mean_{column}" not in self.segments:
                extra[f"mean_{column}"] = grouped[column].mean()
        out = self.segments.merge(extra, left_on="segment", right_index=True, how="left")
        out["orders"] = out["orders"].fillna(0).astype("int64")
        with np.errstate(divide="ignore", invalid="ignore"):
            out["aov"] = np.where(out["orders"] > 0,
                                  out["revenue"] / out["orders"].where(out["orders"] > 0), np.nan)
        return out

    @cached_property
    def rf_counts(self) -> pd.DataFrame:
        """Customers per recency score (rows, 5 first) and frequency score (columns), once."""
        table = self.customers
        counts = pd.crosstab(table["r_score"], table["f_score"])
        return counts.sort_index(ascending=False)

    @cached_property
    def headline(self) -> dict[str, Any]:
        """Headline numbers: customers, revenue, segments, targets, holdout, suppressed."""
        table, campaigns = self.customers, self.campaigns
        return {
            "customers": len(table),
            "revenue": float(table["monetary"].sum()),
            "segments": int(table["segment"].nunique()),
            "targets": int(campaigns["targets"].sum()) if "targets" in campaigns else 0,
            "holdout": int(campaigns["holdout"].sum()) if "holdout" in campaigns else 0,
            "suppressed": int(campaigns["suppressed"].sum()) if "suppressed" in campaigns else 0,
        }


def segment_trends(runs: list[RunFolder]) -> pd.DataFrame:
    """Count customers per segment in each run (``as_of``, ``segment``, ``customers``).

    Reads only each run's small ``segments.csv``.
    """
    frames = [run.segments[["segment", "customers"]].assign(as_of=run.as_of) for run in runs]
    if not frames:
        return pd.DataFrame({"as_of": [], "segment": [], "customers": []})
    return pd.concat(frames, ignore_index=True)[["as_of", "segment", "customers"]]


#: Columns of a customer's row in each run shown by the lookup.
HISTORY_COLUMNS = ["customer_id", "segment", "rfm_cell", "recency_days", "frequency",
                   "monetary", "campaign", "group", "exclusion_reason"]


def customer_history(runs: list[RunFolder], customer_id: str) -> pd.DataFrame:
    """One customer's row in each run: segment, scores, campaign and group.

    One DuckDB query over every run's ``customers.parquet``, filtered to the one id, in the
    columns of :data:`HISTORY_COLUMNS` the runs have (no email): a look-up loads no whole
    run (about half the CPU time of reading each file filtered with pyarrow).

    Parameters
    ----------
    runs : list of RunFolder
        The runs to search, oldest first.
    customer_id : str
        Normalized like the loader writes ids (whitespace stripped, ``17850.0`` as
        ``17850``).

    Returns
    -------
    DataFrame
        ``as_of`` then the columns found, one row per run the customer is in, oldest first.
    """
    import duckdb

    wanted = normalize_customer_id(pd.Series([customer_id], dtype="str")).iloc[0]
    parts = {path: run.as_of for run in runs for path in customers_parts(run.path)}
    paths = list(parts)  # a run's file, or its part files (a Spark run's folder)
    if pd.isna(wanted) or not paths:
        return pd.DataFrame(columns=["as_of", *HISTORY_COLUMNS])
    names = set().union(*(pq.read_schema(p).names for p in paths))
    columns = [c for c in HISTORY_COLUMNS if c in names]
    select = ", ".join(f'"{c}"' for c in columns)
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT filename, {select} FROM read_parquet(?, filename = true, "
            "union_by_name = true) WHERE customer_id = ?",
            [[str(p) for p in paths], wanted]).df()
    as_of = {str(p): day for p, day in parts.items()}
    rows.insert(0, "as_of", rows.pop("filename").map(as_of))
    return rows.sort_values("as_of", kind="stable").reset_index(drop=True)
