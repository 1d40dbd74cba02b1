"""Segment migration: how customers moved between segments since the previous run.

A weekly run writes ``<output_dir>/<as_of>/customers.parquet`` and, last, a
``manifest.json``. :func:`find_previous_run` picks the latest complete run before this
one; :func:`migrate` compares the two customer tables; :func:`trigger_lists` turns
moves into internal lists (such as customers who just became at risk).

Customers of the previous run who are absent now are counted as moving to
:data:`GONE`; customers absent from the previous run come from :data:`NEW`.

Examples
--------
>>> import datetime as dt
>>> import pandas as pd
>>> before = pd.DataFrame({"customer_id": ["a", "b", "c"],
...                        "segment": ["champions", "loyal", "loyal"],
...                        "segment_since": [dt.date(2025, 1, 1)] * 3})
>>> now = pd.DataFrame({"customer_id": ["a", "b", "d"],
...                     "segment": ["champions", "champions", "loyal"]})
>>> m = migrate(now, before, dt.date(2025, 1, 8), order=["champions", "loyal"])
>>> m.matrix  # doctest: +NORMALIZE_WHITESPACE
to         champions  loyal  (gone)
from
champions          1      0       0
loyal              1      0       1
(new)              0      1       0
>>> m.moved_share
0.5
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..io._format import percent
from ..io._validation import as_date, require_columns
from ..plotting import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["CUSTOMERS_FILE", "DEFAULT_TRIGGERS", "GONE", "NEW", "TRIGGER_COLUMNS", "Migration",
           "customers_parts", "earlier_runs", "find_previous_run", "migrate", "trigger_lists"]

#: Pseudo-segment of customers absent from the previous run (a row of the matrix).
NEW = "(new)"
#: Pseudo-segment of customers of the previous run absent now (a column of the matrix).
GONE = "(gone)"
#: Trigger name -> segment: a trigger lists customers who entered that segment.
DEFAULT_TRIGGERS: dict[str, str] = {"entered_at_risk": "at_risk", "became_champion": "champions"}
#: Columns of a trigger list (no contact fields: these lists are internal).
TRIGGER_COLUMNS = ["customer_id", "segment", "previous_segment", "recency_days", "frequency",
                   "monetary"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MANIFEST = "manifest.json"
#: A run's customer table: one Parquet file (the DuckDB engine), or a folder of Parquet
#: part files of one schema (the Spark engine's ``part-00000.parquet``, ...).
CUSTOMERS_FILE = "customers.parquet"


def customers_parts(run_dir: str | Path) -> list[Path]:
    """Return the Parquet file(s) of a run's ``customers.parquet``, in row order.

    The file itself, or the part files of a folder (``*.parquet``, names starting with
    ``.`` or ``_`` left out, as pyarrow and Spark do), sorted by name: read in this order
    they give the table's rows in order. Every reader of a run's customers takes its
    files from here, so a run of either engine reads the same way.

    Parameters
    ----------
    run_dir : str or Path
        ``DIR/<as_of>``.

    Returns
    -------
    list of Path
        Empty when the run has no ``customers.parquet``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> (run / "customers.parquet").mkdir()
    >>> for name in ["part-00001.parquet", "part-00000.parquet", "_SUCCESS"]:
    ...     _ = (run / "customers.parquet" / name).write_bytes(b"")
    >>> [p.name for p in customers_parts(run)]
    ['part-00000.parquet', 'part-00001.parquet']
    """
    path = Path(run_dir) / CUSTOMERS_FILE
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".parquet"
                      and not p.name.startswith((".", "_")))
    return [path] if path.is_file() else []


def find_previous_run(output_dir: str | Path, as_of: dt.date | str) -> Path | None:
    """Return the latest complete run folder strictly before ``as_of``.

    A run folder is named by its ISO as-of date (``2025-12-29``) and is complete once
    its ``manifest.json`` exists (written last). Other names, incomplete folders and
    runs on or after ``as_of`` are ignored.

    Parameters
    ----------
    output_dir : str or Path
        The folder holding one sub-folder per run. A missing folder has no runs.
    as_of : date or str
        The as-of date of the current run.

    Returns
    -------
    Path or None
        The run folder, or None when there is no earlier complete run.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["2025-12-15", "2025-12-22", "2025-12-29", "latest"]:
    ...     (out / name).mkdir()
    ...     _ = (out / name / "manifest.json").write_text("{}")
    >>> (out / "2025-12-22" / "manifest.json").unlink()   # incomplete run
    >>> find_previous_run(out, "2025-12-29").name
    '2025-12-15'
    >>> find_previous_run(out, "2025-12-15") is None
    True
    """
    runs = earlier_runs(output_dir, as_of)
    return runs[-1][1] if runs else None


def earlier_runs(output_dir: str | Path, as_of: dt.date | str) -> list[tuple[dt.date, Path]]:
    """Return every complete run folder strictly before ``as_of``, oldest first.

    Same rules as :func:`find_previous_run`: a folder named by an ISO date, with its
    ``manifest.json``.

    Parameters
    ----------
    output_dir : str or Path
        The folder holding one sub-folder per run. A missing folder has no runs.
    as_of : date or str
        The as-of date of the current run.

    Returns
    -------
    list of (date, Path)
    """
    as_of = as_date(as_of, "as_of")
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    runs: list[tuple[dt.date, Path]] = []
    for folder in output_dir.iterdir():
        if not (folder.is_dir() and _ISO_DATE.fullmatch(folder.name)):
            continue
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:  # e.g. 2025-13-01
            continue
        if day < as_of and (folder / _MANIFEST).is_file():
            runs.append((day, folder))
    return sorted(runs)


def _check_customers(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    require_columns(frame, columns, f"{name} customer table")
    ids = frame["customer_id"]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InputError(f"{name} customer table, row {row + 1}: customer_id is missing; "
                         "every customer needs an id.")
    duplicated = ids[ids.duplicated()].astype(str).unique().tolist()
    if duplicated:
        raise InputError(f"{name} customer table: customer_id must be unique, got "
                         f"{len(duplicated):,} duplicated id(s), e.g. {duplicated[:3]}.")
    if frame["segment"].isna().any():
        row = int(np.flatnonzero(frame["segment"].isna().to_numpy())[0])
        raise InputError(f"{name} customer table, row {row + 1} (customer_id "
                         f"{ids.iloc[row]!r}): segment is missing.")


def _labelled(codes: np.ndarray, labels: pd.Index) -> pd.Categorical:
    """Return the segment labels at ``codes``, a categorical over every label of the run."""
    return pd.Categorical.from_codes(codes, categories=labels)


def _previous_since(previous: pd.DataFrame) -> pd.Series:
    """Return the previous table's ``segment_since`` as dates (None when missing or absent)."""
    if "segment_since" not in previous.columns:
        return pd.Series(None, index=previous.index, dtype=object)
    raw = previous["segment_since"]
    if pd.api.types.infer_dtype(raw, skipna=True) in ("date", "empty"):  # as runs write it
        return raw.astype(object).where(raw.notna(), None)
    parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"previous customer table, row {row + 1}, column "
                         f"'segment_since': got {raw.iloc[row]!r}, expected a date "
                         "(YYYY-MM-DD).")
    since = parsed.dt.date.astype(object)
    return since.where(since.notna(), None)


class Migration:
    """Customers' moves between the previous run's segments and this run's.

    Built by :func:`migrate`; the tables are computed on first use.

    Parameters
    ----------
    customers : DataFrame
        The current customer table with ``previous_segment`` and ``segment_since``.
    moves : DataFrame
        ``from, to, customers``: how many customers of either run made each move (with
        :data:`NEW` and :data:`GONE`); see :meth:`from_moves`.
    as_of : date
        As-of date of the current run.
    segments : sequence of str
        Segment order of the matrix (without :data:`NEW` and :data:`GONE`).
    has_previous : bool
        Whether there was a previous run to compare with.

    Attributes
    ----------
    customers : DataFrame
        As given.
    as_of : date
        As given.
    segments : tuple of str
        As given.
    has_previous : bool
        As given.
    """

    def __init__(self, customers: pd.DataFrame, moves: pd.DataFrame, as_of: dt.date,
                 segments: Sequence[str], has_previous: bool) -> None:
        self.customers = customers
        self._moves = moves.astype({"from": object, "to": object, "customers": "int64"})
        self.as_of = as_of
        self.segments = tuple(segments)
        self.has_previous = has_previous

    @classmethod
    def from_moves(cls, customers: pd.DataFrame, moves: pd.DataFrame, as_of: dt.date, *,
                   order: Sequence[str] | None = None, has_previous: bool = True
                   ) -> Migration:
        """Build a migration from its counts of moves (what :func:`migrate` does last).

        Parameters
        ----------
        customers : DataFrame
            The current customer table with ``previous_segment`` and ``segment_since``.
        moves : DataFrame
            ``from, to, customers``: how many customers made each move, :data:`NEW` and
            :data:`GONE` included; however an engine counted them.
        as_of : date
            As-of date of the current run.
        order : sequence of str, optional
            Segment order of the matrix; segments found in ``moves`` but not listed follow
            in alphabetical order. Without it, all are sorted.
        has_previous : bool, default=True
            Whether there was a previous run to compare with.

        Returns
        -------
        Migration
        """
        listed = [str(s) for s in order] if order is not None else []
        seen = set(moves.loc[moves["customers"] > 0, "from"].astype(str)) | set(
            moves.loc[moves["customers"] > 0, "to"].astype(str))
        extra = sorted(seen - set(listed) - {NEW, GONE})
        return cls(customers, moves, as_of, list(dict.fromkeys([*listed, *extra])),
                   has_previous)

    def __repr__(self) -> str:
        now = int(self._moves.loc[self._moves["to"] != GONE, "customers"].sum())
        return (f"{type(self).__name__}(as_of={self.as_of.isoformat()}, customers={now:,}, "
                f"new={self.n_new:,}, gone={self.n_gone:,}, "
                f"moved_share={percent(self.moved_share)})")

    @cached_property
    def matrix(self) -> pd.DataFrame:
        """Transition counts between the previous run's segments and this run's.

        Rows are previous segments, then :data:`NEW`; columns are current segments, then
        :data:`GONE`; both in :attr:`segments` order. Every segment of :attr:`segments`
        gets a row and a column, with zeros if empty.
        """
        moves = self._moves
        counts = (moves.groupby(["from", "to"])["customers"].sum().unstack("to", fill_value=0)
                  if len(moves) else pd.DataFrame(dtype="int64"))
        table = counts.reindex(index=[*self.segments, NEW], columns=[*self.segments, GONE],
                               fill_value=0).astype("int64")
        table.index.name, table.columns.name = "from", "to"
        return table

    @cached_property
    def shares(self) -> pd.DataFrame:
        """:attr:`matrix` divided by its row sums (NaN for rows without customers)."""
        totals = self.matrix.sum(axis=1)
        return self.matrix.div(totals.where(totals > 0), axis=0)

    @cached_property
    def moved_share(self) -> float:
        """Share of customers present in both runs whose segment changed (NaN if none)."""
        moves = self._moves
        both = moves[(moves["from"] != NEW) & (moves["to"] != GONE)]
        total = int(both["customers"].sum())
        if not total:
            return float("nan")
        return int(both.loc[both["from"] != both["to"], "customers"].sum()) / total

    @property
    def n_new(self) -> int:
        """Customers in this run absent from the previous one."""
        return int(self._moves.loc[self._moves["from"] == NEW, "customers"].sum())

    @property
    def n_gone(self) -> int:
        """Customers of the previous run absent from this one."""
        return int(self._moves.loc[self._moves["to"] == GONE, "customers"].sum())

    def to_frame(self) -> pd.DataFrame:
        """Return the non-zero cells of :attr:`matrix` in long form.

        Returns
        -------
        DataFrame
            ``from, to, customers, share_of_from`` in matrix order; ``share_of_from``
            is the share of the ``from`` row's customers.

        Examples
        --------
        >>> import datetime as dt
        >>> import pandas as pd
        >>> before = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "x"]})
        >>> now = pd.DataFrame({"customer_id": ["a", "c"], "segment": ["y", "x"]})
        >>> migrate(now, before, dt.date(2025, 1, 8)).to_frame()
            from      to  customers  share_of_from
        0      x       y          1            0.5
        1      x  (gone)          1            0.5
        2  (new)       x          1            1.0
        """
        counts = self.matrix.stack().rename("customers")
        shares = self.shares.stack().rename("share_of_from")
        long = pd.concat([counts, shares], axis=1).reset_index()
        return long[long["customers"] > 0].reset_index(drop=True)

    def entered(self, segment: str) -> pd.DataFrame:
        """Return the customers in ``segment`` now who were elsewhere (or new) before.

        Parameters
        ----------
        segment : str
            A segment name.

        Returns
        -------
        DataFrame
            Rows of :attr:`customers`, in their order. Without a previous run every
            customer is new, so this is the whole segment.

        Examples
        --------
        >>> import datetime as dt
        >>> import pandas as pd
        >>> before = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "y"]})
        >>> now = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["y", "y", "y"]})
        >>> migrate(now, before, dt.date(2025, 1, 8)).entered("y").customer_id.tolist()
        ['a', 'c']
        """
        now = self.customers["segment"] == segment
        before = self.customers["previous_segment"] == segment
        return self.customers[now & ~before.fillna(False).astype(bool)]

    def plot_heatmap(self, ax: Axes | None = None) -> Axes:
        """Draw the matrix as row-normalised shares, each cell annotated with its count.

        Cells of customers who stayed are outlined; segments without customers in
        either run are left out of the picture.

        Parameters
        ----------
        ax : Axes, optional
            Where to draw; a new Agg figure sized to the matrix when omitted.

        Returns
        -------
        Axes

        Examples
        --------
        >>> import datetime as dt
        >>> import pandas as pd
        >>> now = pd.DataFrame({"customer_id": ["a"], "segment": ["x"]})
        >>> migrate(now, None, dt.date(2025, 1, 8)).plot_heatmap().get_title()
        'Segment migration to 2025-01-08'
        """
        import matplotlib
        from matplotlib.patches import Rectangle

        # Segments empty in both runs (such as an unused default) would only add blank
        # rows and columns; the matrix keeps them, the picture does not.
        matrix = self.matrix
        used = [s for s in self.segments if matrix.loc[s].sum() or matrix[s].sum()]
        matrix = matrix.loc[[*used, NEW], [*used, GONE]]
        if ax is None:
            ax = new_axes(1.6 + 0.85 * (len(used) + 1), 1.4 + 0.55 * (len(used) + 1))
        counts = matrix.to_numpy()
        totals = counts.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
        cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#eeeeee")  # grey: empty row
        image = ax.imshow(np.ma.masked_invalid(shares), cmap=cmap, vmin=0.0, vmax=1.0,
                          aspect="auto")
        small = len(used) <= 6
        for (i, j), count in np.ndenumerate(counts):
            if i == j < len(used):  # customers who stayed: outline the cell
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor="#555555", linewidth=0.8))
            if count == 0:
                continue
            share = shares[i, j]
            text = f"{count:,}\n{share:.0%}" if small else f"{count:,}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if share > 0.6 else "#1a1a1a")
        ax.set_xticks(range(counts.shape[1]), list(matrix.columns), rotation=35,
                      ha="right", rotation_mode="anchor")
        ax.set_yticks(range(counts.shape[0]), list(matrix.index))
        ax.set_xlabel(f"segment on {self.as_of.isoformat()}")
        ax.set_ylabel("segment in the previous run")
        ax.set_title(f"Segment migration to {self.as_of.isoformat()}")
        ax.tick_params(length=0)
        ax.figure.colorbar(image, ax=ax, label="share of the previous segment's customers",
                           format=lambda x, _: f"{x:.0%}")
        return ax


def migrate(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    as_of: dt.date | str,
    *,
    order: Sequence[str] | None = None,
    previous_as_of: dt.date | str | None = None,
) -> Migration:
    """Compare this run's segments with the previous run's.

    Parameters
    ----------
    current : DataFrame
        This run's customer table (``customer_id``, ``segment``; not modified). Existing
        ``previous_segment`` and ``segment_since`` columns are replaced.
    previous : DataFrame or None
        The previous run's customer table (``customer_id``, ``segment``, and
        ``segment_since`` when that run had it), or None for a first run.
    as_of : date or str
        As-of date of this run.
    order : sequence of str, optional
        Segment order of the matrix, e.g. ``RuleSet.segments``; segments found in the
        data but not listed follow in alphabetical order. Without it, all are sorted.
    previous_as_of : date or str, optional
        As-of date of the previous run: the ``segment_since`` of unchanged customers
        when the previous table has no ``segment_since`` (runs older than this step).
        If neither is known, such customers get a missing ``segment_since``.

    Returns
    -------
    Migration
        Its ``customers`` is ``current`` plus ``previous_segment`` (missing for new
        customers and without a previous run) and ``segment_since`` (a date: the
        previous run's ``segment_since`` when the segment is unchanged, else
        ``as_of``).

    Raises
    ------
    MissingColumnsError
        If a table lacks ``customer_id`` or ``segment``.
    InputError
        If a customer id is missing or duplicated, or a segment is missing.

    Examples
    --------
    >>> import datetime as dt
    >>> import pandas as pd
    >>> before = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "y"],
    ...                        "segment_since": [dt.date(2025, 1, 1), dt.date(2024, 6, 1)]})
    >>> now = pd.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["y", "y", "x"]})
    >>> m = migrate(now, before, "2025-01-08")
    >>> m.customers
      customer_id segment previous_segment segment_since
    0           a       y                x    2025-01-08
    1           b       y                y    2024-06-01
    2           c       x              NaN    2025-01-08
    """
    as_of = as_date(as_of, "as_of")
    _check_customers(current, "current", ["customer_id", "segment"])
    # pandas copies on write: the new columns never reach ``current``
    out = current.drop(columns=["previous_segment", "segment_since"], errors="ignore")
    ids = out["customer_id"].astype("str")
    # segments as codes of one list of labels (``labels``): the pairs hold a byte or two a
    # customer, never a Python string each
    now = pd.Categorical(out["segment"].astype("str"))
    has_previous = previous is not None
    if previous is None:
        labels = pd.Index([*now.categories, NEW, GONE], dtype="str").unique()
        to = labels.get_indexer(now.categories)[now.codes]
        out["previous_segment"] = pd.Series(pd.NA, index=out.index, dtype="str")
        out["segment_since"] = pd.Series([as_of] * len(out), index=out.index, dtype=object)
        pairs = pd.DataFrame({"customer_id": ids.array,
                              "from": _labelled(np.full(len(out), labels.get_loc(NEW)), labels),
                              "to": _labelled(to, labels)})
    else:
        _check_customers(previous, "previous", ["customer_id", "segment"])
        prev_ids = previous["customer_id"].astype("str")
        prev = pd.Categorical(previous["segment"].astype("str"))
        labels = pd.Index([*now.categories, *prev.categories, NEW, GONE], dtype="str").unique()
        to = labels.get_indexer(now.categories)[now.codes]
        prev_codes = labels.get_indexer(prev.categories)[prev.codes]
        since = _previous_since(previous)
        if previous_as_of is not None:
            since = since.where(since.notna(), as_date(previous_as_of, "previous_as_of"))
        # one hash lookup of this run's ids in the previous run's (unique, checked above)
        at = pd.Index(prev_ids).get_indexer(ids)
        found = at >= 0
        came = np.full(len(out), labels.get_loc(NEW), dtype=np.int64)
        came[found] = prev_codes[at[found]]
        unchanged = found & (came == to)
        before = np.full(len(out), np.nan, dtype=object)
        before[found] = labels.to_numpy(dtype=object)[prev_codes[at[found]]]
        kept_since = np.full(len(out), None, dtype=object)
        kept_since[found] = since.to_numpy(dtype=object)[at[found]]
        out["previous_segment"] = pd.array(before, dtype="str").to_numpy()
        del before
        out["segment_since"] = pd.Series(np.where(unchanged, kept_since, as_of),
                                         index=out.index, dtype=object)
        out["segment_since"] = out["segment_since"].where(out["segment_since"].notna(), None)
        gone = np.ones(len(prev_ids), dtype=bool)
        gone[at[found]] = False
        pairs = pd.concat([
            pd.DataFrame({"customer_id": ids.array, "from": _labelled(came, labels),
                          "to": _labelled(to, labels)}),
            pd.DataFrame({"customer_id": prev_ids.array[gone],
                          "from": _labelled(prev_codes[gone], labels),
                          "to": _labelled(np.full(int(gone.sum()), labels.get_loc(GONE)),
                                          labels)}),
        ], ignore_index=True)
    moves = (pairs.groupby(["from", "to"], observed=True).size().rename("customers")
             .reset_index())
    return Migration.from_moves(out, moves, as_of, order=order, has_previous=has_previous)


def trigger_lists(
    migration: Migration, triggers: Mapping[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """Return, per trigger, the customers who entered its segment in this run.

    Parameters
    ----------
    migration : Migration
        From :func:`migrate`.
    triggers : Mapping, optional
        Trigger name -> segment. Defaults to :data:`DEFAULT_TRIGGERS`, keeping only
        the triggers whose segment the migration knows (so rule sets without an
        ``at_risk`` segment get no empty list); a segment given explicitly must be
        known.

    Returns
    -------
    dict of str to DataFrame
        Each with :data:`TRIGGER_COLUMNS` (columns the customer table lacks are
        left out). Contact fields such as email never appear: the lists are internal.

    Raises
    ------
    ConfigError
        If an explicitly given trigger names a segment that is neither in the
        migration's segment order nor in the data.

    Examples
    --------
    >>> import datetime as dt
    >>> import pandas as pd
    >>> before = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["champions", "at_risk"]})
    >>> now = pd.DataFrame({"customer_id": ["a", "b"], "segment": ["at_risk", "at_risk"],
    ...                     "recency_days": [40, 90], "frequency": [6, 3],
    ...                     "monetary": [300.0, 80.0], "email": ["a@x.org", "b@x.org"]})
    >>> lists = trigger_lists(migrate(now, before, dt.date(2025, 1, 8)))
    >>> lists["entered_at_risk"]
      customer_id  segment previous_segment  recency_days  frequency  monetary
    0           a  at_risk        champions            40          6     300.0
    >>> lists["became_champion"].empty
    True
    """
    known = set(migration.segments)
    if triggers is None:
        chosen = {name: seg for name, seg in DEFAULT_TRIGGERS.items() if seg in known}
    else:
        chosen = dict(triggers)
        for name, segment in chosen.items():
            if segment not in known:
                raise ConfigError(
                    f"Trigger {name!r} names segment {segment!r}, which is not a segment of "
                    f"this run; known segments: {', '.join(map(repr, migration.segments))}. "
                    "Check the spelling, or pass order=RuleSet.segments to migrate().")
    columns = [c for c in TRIGGER_COLUMNS if c in migration.customers.columns]
    return {name: migration.entered(segment)[columns].reset_index(drop=True)
            for name, segment in chosen.items()}
