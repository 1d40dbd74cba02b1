"""Lint a segment rule set over every score cell.

:func:`lint_rules` enumerates every ``(r, f, m)`` score cell of an ``n_bins`` scale,
derives ``fm_score`` (round-half-up mean of F and M) and ``rfm_score`` (R + F + M),
runs the ordered rules on each cell and reports:

* the cell -> segment table (:meth:`LintReport.to_frame`);
* cells no rule covers (their customers get the rule set's default segment);
* segments that can never fire;
* rules shadowed entirely by earlier rules, and rules that match no cell at all.

Rules with raw-feature bounds (``recency_days = { max = 30 }``...) cannot be decided
from the scores alone. They are treated as *possibly* matching: they never shadow a
later rule, they count as reachable wherever their score conditions leave a cell
open, and the report lists them and the cells they might take.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ConfigError
from ...io._validation import is_int
from ...io.writers import json_text
from .rules import Rule, RuleSet, load_rules

__all__ = ["LintReport", "RuleIssue", "lint_rules", "score_cells"]


@dataclass(frozen=True)
class RuleIssue:
    """A rule that can never give its segment to anybody.

    Parameters
    ----------
    rule : int
        1-based rule number.
    segment : str
        The rule's segment.
    shadowed_by : tuple of int, default=()
        Numbers of the earlier rules that take every cell the rule matches; empty when
        the rule matches no cell at all.
    """

    rule: int
    segment: str
    shadowed_by: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = f"rule {self.rule} (segment {self.segment!r})"
        if self.shadowed_by:
            by = ", ".join(map(str, self.shadowed_by))
            return f"{where} is shadowed by rule(s) {by}"
        return f"{where} matches no score cell"


def score_cells(n_bins: int) -> pd.DataFrame:
    """Every score cell of an ``n_bins`` scale, with its derived scores.

    Parameters
    ----------
    n_bins : int
        Number of score bins (2..9).

    Returns
    -------
    pandas.DataFrame
        ``n_bins ** 3`` rows in R, F, M order with columns ``cell`` (``"545"``),
        ``r_score``, ``f_score``, ``m_score``, ``fm_score`` (round-half-up mean of F
        and M) and ``rfm_score`` (R + F + M).

    Examples
    --------
    >>> cells = score_cells(5)
    >>> len(cells), cells["cell"].iloc[0], cells["cell"].iloc[-1]
    (125, '111', '555')
    >>> cells.set_index("cell").loc["534"].tolist()  # fm_score: (3 + 4) / 2 rounds up
    [5, 3, 4, 4, 12]
    """
    _check_n_bins(n_bins)
    scores = np.arange(1, n_bins + 1)
    r, f, m = (a.ravel() for a in np.meshgrid(scores, scores, scores, indexing="ij"))
    return pd.DataFrame(
        {
            "cell": [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)],
            "r_score": r,
            "f_score": f,
            "m_score": m,
            "fm_score": (f + m + 1) // 2,
            "rfm_score": r + f + m,
        }
    )


def lint_rules(rule_set: RuleSet | str | os.PathLike[str], n_bins: int | None = None) -> LintReport:
    """Check a rule set against every score cell.

    Parameters
    ----------
    rule_set : RuleSet, str or path-like
        The rule set, or a built-in name or TOML path for :func:`load_rules`.
    n_bins : int or None, default=None
        Score scale to enumerate (2..9); ``None`` uses the rule set's ``n_bins``.

    Returns
    -------
    LintReport
        The findings; ``str(report)`` renders them as text.

    Raises
    ------
    ConfigError
        If ``n_bins`` is invalid or the rule set cannot be loaded.

    Examples
    --------
    >>> report = lint_rules("pymc")
    >>> report.n_cells, report.n_covered, len(report.uncovered_cells), report.ok
    (64, 46, 18, True)
    >>> lint_rules("rf-grid").n_covered
    125
    """
    rules = load_rules(rule_set)
    if n_bins is None:
        n_bins = rules.n_bins
    _check_n_bins(n_bins, "The 'n_bins' parameter of lint_rules")
    return LintReport(rules, n_bins)


class LintReport:
    """What a rule set does with every score cell; built by :func:`lint_rules`.

    Everything is computed lazily on first use.

    Parameters
    ----------
    rule_set : RuleSet
        The linted rule set.
    n_bins : int
        The score scale enumerated.

    Attributes
    ----------
    rule_set : RuleSet
        The linted rule set.
    n_bins : int
        The score scale enumerated.

    Examples
    --------
    >>> report = lint_rules("seed")
    >>> report.cells_per_segment
    {'VIP': 8, 'Loyal': 4, 'Potential': 4, 'Other': 109}
    >>> report.to_frame().set_index("cell").loc["545", "segment"]
    'VIP'
    >>> print(str(report).splitlines()[0])
    Rule set 'seed' (rfm_engine/core/segments/builtin/seed.toml)
    """

    def __init__(self, rule_set: RuleSet, n_bins: int) -> None:
        self.rule_set = rule_set
        self.n_bins = n_bins

    def __repr__(self) -> str:
        return (
            f"LintReport(rule_set={self.rule_set.name!r}, n_bins={self.n_bins}, "
            f"covered={self.n_covered}/{self.n_cells}, ok={self.ok})"
        )

    # ------------------------------------------------------------------ computation

    @cached_property
    def _cells(self) -> pd.DataFrame:
        return score_cells(self.n_bins)

    @cached_property
    def _matches(self) -> np.ndarray:
        """Boolean (rules x cells): the rule's score conditions hold on the cell."""
        arrays = {
            col: self._cells[col].to_numpy(dtype="float64")
            for col in ("r_score", "f_score", "m_score", "fm_score", "rfm_score")
        }
        rules = self.rule_set.rules
        return np.array([rule.score_mask(arrays) for rule in rules]).reshape(len(rules), -1)

    @cached_property
    def _bounded(self) -> np.ndarray:
        return np.array([rule.has_bounds for rule in self.rule_set.rules], dtype=bool)

    @cached_property
    def _first_definite(self) -> np.ndarray:
        """Per cell: index of the first score-only rule that matches, or -1."""
        definite = self._matches & ~self._bounded[:, None]
        first = definite.argmax(axis=0)
        return np.where(definite.any(axis=0), first, -1)

    @cached_property
    def _open_before(self) -> np.ndarray:
        """Boolean (rules x cells): no score-only rule before this one takes the cell."""
        first = self._first_definite
        index = np.arange(len(self.rule_set.rules))[:, None]
        return (first[None, :] == -1) | (index <= first[None, :])

    @cached_property
    def _reachable(self) -> np.ndarray:
        return (self._matches & self._open_before).any(axis=1)

    # ------------------------------------------------------------------ findings

    @property
    def n_cells(self) -> int:
        """Number of score cells enumerated (``n_bins ** 3``)."""
        return self.n_bins**3

    @cached_property
    def covered(self) -> np.ndarray:
        """Boolean per cell (in :meth:`to_frame` order): a score-only rule takes it."""
        return self._first_definite >= 0

    @property
    def n_covered(self) -> int:
        """Number of cells a score-only rule takes for certain."""
        return int(self.covered.sum())

    @cached_property
    def uncovered_cells(self) -> list[str]:
        """Cells no score-only rule covers: they go to the default segment.

        Cells a raw-bounded rule might take are included (see :meth:`to_frame`'s
        ``possible`` column): customers failing the bounds still get the default.
        """
        return self._cells["cell"][~self.covered].tolist()

    @cached_property
    def unmatchable_rules(self) -> list[RuleIssue]:
        """Rules whose score conditions hold on no cell of the scale."""
        return [
            RuleIssue(rule.number, rule.segment)
            for rule, row in zip(self.rule_set.rules, self._matches, strict=True)
            if not row.any()
        ]

    @cached_property
    def shadowed_rules(self) -> list[RuleIssue]:
        """Rules that match some cells, all of them taken by earlier rules."""
        issues = []
        for i, rule in enumerate(self.rule_set.rules):
            if self._reachable[i] or not self._matches[i].any():
                continue
            by = np.unique(self._first_definite[self._matches[i]]) + 1
            issues.append(RuleIssue(rule.number, rule.segment, tuple(int(n) for n in by)))
        return issues

    @cached_property
    def unreachable_segments(self) -> list[str]:
        """Rule segments none of whose rules can ever fire (the default is not counted)."""
        reachable = {
            rule.segment
            for rule, ok in zip(self.rule_set.rules, self._reachable, strict=True)
            if ok
        }
        names = dict.fromkeys(rule.segment for rule in self.rule_set.rules)
        return [name for name in names if name not in reachable]

    @cached_property
    def raw_bound_rules(self) -> list[Rule]:
        """Rules with raw-feature bounds, treated as possibly matching."""
        return [rule for rule in self.rule_set.rules if rule.has_bounds]

    @cached_property
    def cells_per_segment(self) -> dict[str, int]:
        """Cells each segment takes (certain assignments only), in segment order."""
        counts = self.to_frame()["segment"].value_counts()
        return {name: int(counts.get(name, 0)) for name in self.rule_set.segments}

    @property
    def ok(self) -> bool:
        """True when every rule can fire: no unreachable segment, shadowed or dead rule.

        Uncovered cells do not make a report fail: leaving cells to the default
        segment is a choice (``pymc`` leaves 18 of 64), and the report counts them.
        """
        return not (self.unreachable_segments or self.shadowed_rules or self.unmatchable_rules)

    # ------------------------------------------------------------------ writers

    def to_frame(self) -> pd.DataFrame:
        """Return the cell -> segment table.

        Returns
        -------
        pandas.DataFrame
            One row per cell: ``cell``, ``r_score``, ``f_score``, ``m_score``,
            ``fm_score``, ``rfm_score``, ``segment`` (what a customer in the cell gets
            when no raw-bounded rule takes it), ``rule`` (number of the rule giving
            ``segment``, missing for the default) and ``possible`` (segments of
            raw-bounded rules that could take the cell first, comma-separated).
        """
        return self._frame.copy()

    @cached_property
    def _frame(self) -> pd.DataFrame:
        rules = self.rule_set.rules
        first = self._first_definite
        frame = self._cells.copy()
        segments = np.array([rule.segment for rule in rules] + [self.rule_set.default])
        frame["segment"] = segments[np.where(first >= 0, first, len(rules))]
        frame["rule"] = pd.Series(first + 1, dtype="Int64").mask(first < 0)
        maybe = self._matches & self._open_before & self._bounded[:, None]
        frame["possible"] = [
            ", ".join(dict.fromkeys(rules[i].segment for i in np.flatnonzero(column)))
            for column in maybe.T
        ]
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Return the findings as plain, JSON-ready data.

        Returns
        -------
        dict
            Keys ``rule_set``, ``source``, ``n_bins``, ``rules_n_bins``, ``n_cells``,
            ``covered_cells``, ``default``, ``uncovered_cells``, ``cells_per_segment``,
            ``unreachable_segments``, ``shadowed_rules``, ``unmatchable_rules``,
            ``raw_bound_rules`` and ``ok``.

        Examples
        --------
        >>> d = lint_rules("classic").to_dict()
        >>> d["covered_cells"], len(d["uncovered_cells"]), d["unreachable_segments"]
        (89, 36, [])
        """
        return {
            "rule_set": self.rule_set.name,
            "source": self.rule_set.source,
            "n_bins": self.n_bins,
            "rules_n_bins": self.rule_set.n_bins,
            "n_cells": self.n_cells,
            "covered_cells": self.n_covered,
            "default": self.rule_set.default,
            "uncovered_cells": list(self.uncovered_cells),
            "cells_per_segment": dict(self.cells_per_segment),
            "unreachable_segments": list(self.unreachable_segments),
            "shadowed_rules": [
                {"rule": i.rule, "segment": i.segment, "shadowed_by": list(i.shadowed_by)}
                for i in self.shadowed_rules
            ],
            "unmatchable_rules": [
                {"rule": i.rule, "segment": i.segment} for i in self.unmatchable_rules
            ],
            "raw_bound_rules": [
                {"rule": r.number, "segment": r.segment, "features": list(r.bounds)}
                for r in self.raw_bound_rules
            ],
            "ok": self.ok,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Return the findings of :meth:`to_dict` as a JSON string.

        Parameters
        ----------
        indent : int or None, default=2
            Passed to :func:`rfm_engine.io.writers.json_text`.

        Returns
        -------
        str
            The JSON text.
        """
        return json_text(self.to_dict(), indent=indent, ensure_ascii=False).removesuffix("\n")

    def __str__(self) -> str:
        rs = self.rule_set
        lines = [f"Rule set {rs.name!r} ({rs.source})"]
        scale = f"{self.n_bins} bins"
        if self.n_bins != rs.n_bins:
            scale += f"; NOTE: the rules were written for n_bins = {rs.n_bins}"
        lines.append(
            f"{self.n_cells} score cells ({scale}): {self.n_covered} covered by rules, "
            f"{len(self.uncovered_cells)} go to the default segment {rs.default!r}"
        )
        lines.append("Cells per segment:")
        width = max(len(name) for name in rs.segments)
        for name, count in self.cells_per_segment.items():
            lines.append(f"  {name:<{width}}  {count:>4}")
        if self.uncovered_cells:
            lines.append(f"Uncovered cells (R F M -> {rs.default!r}):")
            lines += textwrap.wrap(
                " ".join(self.uncovered_cells),
                width=88,
                initial_indent="  ",
                subsequent_indent="  ",
            )
        lines.append(
            "Unreachable segments: " + (", ".join(map(repr, self.unreachable_segments)) or "none")
        )
        lines.append("Shadowed rules: " + ("; ".join(map(str, self.shadowed_rules)) or "none"))
        if self.unmatchable_rules:
            lines.append("Rules matching no cell: " + "; ".join(map(str, self.unmatchable_rules)))
        if self.raw_bound_rules:
            lines.append(
                "Rules with raw-feature bounds (not decidable from scores; treated as "
                "possibly matching, so they shadow no later rule):"
            )
            for rule in self.raw_bound_rules:
                n_possible = int((self._matches & self._open_before)[rule.number - 1].sum())
                lines.append(
                    f"  {rule.label}: {', '.join(rule.bounds)}; may take {n_possible} cell(s)"
                )
        lines.append("OK" if self.ok else "PROBLEMS FOUND")
        return "\n".join(lines)


def _check_n_bins(n_bins: Any, what: str = "n_bins") -> None:
    if not is_int(n_bins) or not 2 <= n_bins <= 9:
        raise ConfigError(f"{what} must be an int from 2 to 9. Got {n_bins!r} instead.")
