"""Ordered segment rules: load a rule set from TOML and give every customer one segment.

A rule set is a TOML file::

    name = "my-map"
    description = "What the map is for."
    default = "Other"        # segment of customers no rule matches
    n_bins = 5               # score scale the rules were written for (2..9)

    [[rules]]                # tried in order: the first rule that matches wins
    segment = "champions"
    description = "Bought recently, buy often and spend the most"
    r = [4, 5]               # score range, inclusive; or a single score: r = 5
    rf = "5[4-5]"            # cell pattern: a regex over the concatenated score digits
    recency_days = { max = 30 }   # raw feature bound, inclusive

Every condition of a rule must hold. Condition keys:

* score ranges (an integer or ``[low, high]``): ``r``, ``f``, ``m``, ``fm`` and
  ``rfm_score``, on the columns ``r_score``, ``f_score``, ``m_score``, ``fm_score``
  and ``rfm_score``;
* cell patterns (a string, or a list of strings of which any may match): keys made of
  the letters ``r``, ``f``, ``m`` in that order (``r``, ``rf``, ``rm``, ``fm``,
  ``rfm``...). The pattern is a regular expression that must match the whole digit
  string, e.g. ``rfm = "5[4-5]."`` for R 5, F 4-5 and any M;
* raw feature bounds (``{ min = ..., max = ... }``, both inclusive, either optional):
  ``recency_days``, ``frequency``, ``monetary``, ``avg_order_value``, ``tenure_days``.
  A missing (NaN) feature value never satisfies a bound.

The value's type tells a score range from a pattern: ``fm = 4`` and ``fm = [4, 5]``
bound the ``fm_score`` column, while ``fm = "4[4-5]"`` matches the F and M digits.
``rfm_score`` is the sum ``r_score + f_score + m_score`` (3 to ``3 * n_bins``).

Several rules may name the same segment. The built-in rule sets (see
:func:`builtin_rule_sets`) ship as TOML files in ``rfm_engine/core/segments/builtin``.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...errors import ConfigError, DataError
from ...io._validation import is_int, is_real, require_columns

__all__ = [
    "DEFAULT_RULE_SET",
    "FEATURE_KEYS",
    "PATTERN_KEYS",
    "SCORE_KEYS",
    "Rule",
    "RuleSet",
    "builtin_rule_sets",
    "is_rule_path",
    "load_rules",
    "rule_file_text",
]

#: Name of the built-in rule set used when none is configured.
DEFAULT_RULE_SET = "rf-grid"

#: Score-range keys and the customer-table column each one bounds.
SCORE_KEYS: Mapping[str, str] = {
    "r": "r_score",
    "f": "f_score",
    "m": "m_score",
    "fm": "fm_score",
    "rfm_score": "rfm_score",
}

#: Cell-pattern keys: the letters r, f, m in order, each standing for one score digit.
PATTERN_KEYS: tuple[str, ...] = ("r", "f", "m", "rf", "rm", "fm", "rfm")

#: Raw customer features a rule may bound with ``{ min = ..., max = ... }``.
FEATURE_KEYS: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_days",
)

_MAX_BINS = 9  # cell patterns work on single digits
_LETTER_COLUMNS = {"r": "r_score", "f": "f_score", "m": "m_score"}
_META_KEYS = ("segment", "description")
_TOP_LEVEL_KEYS = ("name", "description", "default", "n_bins", "rules")
_CONDITION_KEYS = tuple(dict.fromkeys([*SCORE_KEYS, *PATTERN_KEYS, *FEATURE_KEYS]))
_ALLOWED_RULE_KEYS_TEXT = (
    f"{', '.join(_META_KEYS)}; score ranges: {', '.join(SCORE_KEYS)}; "
    f"cell patterns: {', '.join(PATTERN_KEYS)}; raw bounds: {', '.join(FEATURE_KEYS)}"
)
_CUSTOMERS = "customer table"


@dataclass(frozen=True)
class Rule:
    """One ordered rule: a segment name and the conditions that must all hold.

    Rules are normally built by :meth:`RuleSet.from_toml` or :meth:`RuleSet.from_dict`,
    which validate every key and value; the fields below hold the parsed conditions.

    Parameters
    ----------
    segment : str
        Segment given to customers the rule matches.
    number : int, default=0
        1-based position of the rule in its rule set (as in error and lint messages);
        :class:`RuleSet` sets it.
    description : str, default=""
        What the segment means.
    ranges : mapping of str to (int, int), default={}
        Inclusive score ranges, keyed by score key (``"r"``, ``"fm"``, ``"rfm_score"``...).
    patterns : mapping of str to tuple of str, default={}
        Cell patterns keyed by letters (``"rf"``, ``"rfm"``...); a cell matches when any
        of the regular expressions matches its whole digit string.
    bounds : mapping of str to (float or None, float or None), default={}
        Inclusive ``(min, max)`` bounds on raw features; ``None`` leaves a side open.

    Examples
    --------
    >>> rule = RuleSet.from_dict(
    ...     {"name": "demo", "rules": [{"segment": "vip", "rf": "5[4-5]", "m": [4, 5]}]}
    ... ).rules[0]
    >>> rule.segment, rule.number, rule.columns
    ('vip', 1, ('m_score', 'r_score', 'f_score'))
    """

    segment: str
    number: int = 0
    description: str = ""
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How messages name the rule, e.g. ``rule 3 (segment 'champions')``."""
        return f"rule {self.number} (segment {self.segment!r})"

    @property
    def columns(self) -> tuple[str, ...]:
        """Customer-table columns the rule reads, without duplicates."""
        cols = [SCORE_KEYS[key] for key in self.ranges]
        cols += [_LETTER_COLUMNS[letter] for key in self.patterns for letter in key]
        cols += list(self.bounds)
        return tuple(dict.fromkeys(cols))

    @property
    def has_bounds(self) -> bool:
        """Whether the rule bounds raw features (and so cannot be linted cell by cell)."""
        return bool(self.bounds)

    def score_mask(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate the score ranges and cell patterns.

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            Equal-length float arrays keyed by column name; score columns must hold
            whole numbers (patterns need single digits 1..9).

        Returns
        -------
        numpy.ndarray of bool
            True where every score condition holds (all True if the rule has none).
        """
        mask = np.ones(_length(arrays), dtype=bool)
        for key, (low, high) in self.ranges.items():
            values = arrays[SCORE_KEYS[key]]
            mask &= (values >= low) & (values <= high)
        for key, patterns in self.patterns.items():
            code = np.zeros(mask.shape, dtype=np.int64)
            for letter in key:
                code = code * 10 + arrays[_LETTER_COLUMNS[letter]].astype(np.int64)
            mask &= np.isin(code, _matching_codes(key, patterns))
        return mask

    def bounds_mask(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate the raw feature bounds (NaN never satisfies a bound).

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            Equal-length float arrays keyed by column name.

        Returns
        -------
        numpy.ndarray of bool
            True where every bound holds (all True if the rule has none).
        """
        mask = np.ones(_length(arrays), dtype=bool)
        for feature, (low, high) in self.bounds.items():
            values = arrays[feature]
            if low is not None:
                mask &= values >= low
            if high is not None:
                mask &= values <= high
        return mask

    def mask(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate every condition of the rule.

        Parameters
        ----------
        arrays : mapping of str to numpy.ndarray
            Equal-length float arrays keyed by column name.

        Returns
        -------
        numpy.ndarray of bool
            True where the rule matches.
        """
        return self.score_mask(arrays) & self.bounds_mask(arrays)


@dataclass(frozen=True)
class RuleSet:
    """An ordered list of segment rules; the first rule that matches a customer wins.

    Build one with :func:`load_rules`, :meth:`from_toml` or :meth:`from_dict`: they
    validate the rules. Direct construction only renumbers the rules.

    Parameters
    ----------
    name : str
        Name of the rule set.
    description : str, default=""
        What the map is, where it comes from, what was changed.
    default : str, default="Other"
        Segment of customers no rule matches.
    n_bins : int, default=5
        Number of score bins the rules were written for (2..9).
    rules : sequence of Rule, default=()
        The rules, in matching order.
    source : str, default="<rules>"
        Where the rules came from (a file path), used in messages.

    Examples
    --------
    >>> rules = RuleSet.from_toml('''
    ... name = "demo"
    ... [[rules]]
    ... segment = "best"
    ... r = [4, 5]
    ... f = 5
    ... [[rules]]
    ... segment = "recent"
    ... r = [4, 5]
    ... ''')
    >>> rules.segments
    ('best', 'recent', 'Other')
    >>> customers = pd.DataFrame({"r_score": [5, 4, 2], "f_score": [5, 1, 5]})
    >>> rules.assign(customers).tolist()
    ['best', 'recent', 'Other']
    """

    name: str
    description: str = ""
    default: str = "Other"
    n_bins: int = 5
    rules: Sequence[Rule] = ()
    source: str = "<rules>"

    def __post_init__(self) -> None:
        numbered = tuple(replace(rule, number=i) for i, rule in enumerate(self.rules, 1))
        object.__setattr__(self, "rules", numbered)

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> RuleSet:
        r"""Parse and validate a rule set written in TOML.

        Parameters
        ----------
        text : str
            The TOML document.
        source : str, default="<string>"
            The file the text came from, named in error messages.

        Returns
        -------
        RuleSet
            The validated rule set.

        Raises
        ------
        ConfigError
            If the text is not TOML or a key or value is invalid; the message names
            the source, the rule (number and segment) and what is wrong.

        Examples
        --------
        >>> RuleSet.from_toml('name = "x"\n[[rules]]\nsegment = "a"\nrf = "5."').n_bins
        5
        >>> RuleSet.from_toml('name = "x"\n[[rules]]\nsegment = "a"\nr = [4, 6]')
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rfm_engine.errors.ConfigError: <string>: rule 1 (segment 'a'): r = [4, 6] is out of range...
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> RuleSet:
        """Validate a rule set given as plain data (the parsed form of the TOML file).

        Parameters
        ----------
        data : mapping
            Top-level keys ``name``, ``description``, ``default``, ``n_bins`` and
            ``rules`` (a list of tables), as in the TOML file.
        source : str, default="<dict>"
            Where the data came from, named in error messages.

        Returns
        -------
        RuleSet
            The validated rule set.

        Raises
        ------
        ConfigError
            If a key or value is invalid.

        Examples
        --------
        >>> rs = RuleSet.from_dict({"name": "x", "default": "rest",
        ...                         "rules": [{"segment": "big", "monetary": {"min": 100}}]})
        >>> rs.segments
        ('big', 'rest')
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a rule set must be a table, got {type(data).__name__}")
        _check_keys(data, _TOP_LEVEL_KEYS, f"{source}: top level", ", ".join(_TOP_LEVEL_KEYS))
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{source}: 'name' must be a non-empty string, got {name!r}")
        description = _text(data.get("description", ""), f"{source}: 'description'")
        default = data.get("default", "Other")
        if not isinstance(default, str) or not default.strip():
            raise ConfigError(f"{source}: 'default' must be a non-empty string, got {default!r}")
        n_bins = data.get("n_bins", 5)
        if not is_int(n_bins) or not 2 <= n_bins <= _MAX_BINS:
            raise ConfigError(
                f"{source}: 'n_bins' must be an integer from 2 to {_MAX_BINS} "
                f"(cell patterns use one digit per score), got {n_bins!r}"
            )
        tables = data.get("rules")
        if not isinstance(tables, list) or not tables:
            raise ConfigError(
                f"{source}: no rules; add at least one [[rules]] table with a 'segment'"
            )
        rules = tuple(
            _parse_rule(table, number, source, n_bins) for number, table in enumerate(tables, 1)
        )
        return cls(
            name=name,
            description=description,
            default=default,
            n_bins=n_bins,
            rules=rules,
            source=source,
        )

    @property
    def segments(self) -> tuple[str, ...]:
        """Segment names in rule order, without duplicates, the default last.

        Examples
        --------
        >>> load_rules("seed").segments
        ('VIP', 'Loyal', 'Potential', 'Other')
        """
        names = [rule.segment for rule in self.rules]
        return tuple(dict.fromkeys([*names, self.default]))

    @property
    def columns(self) -> tuple[str, ...]:
        """Customer-table columns the rules read, in first-use order.

        Examples
        --------
        >>> load_rules("rf-grid").columns
        ('r_score', 'f_score')
        """
        return tuple(dict.fromkeys(col for rule in self.rules for col in rule.columns))

    def assign(self, customers: pd.DataFrame) -> pd.Series:
        """Give each customer the segment of the first rule it matches.

        Parameters
        ----------
        customers : pandas.DataFrame
            One row per customer with the columns the rules read (see :attr:`columns`):
            integer scores ``r_score``, ``f_score``, ``m_score``, ``fm_score`` (1..9),
            ``rfm_score``, and raw features. It is not modified.

        Returns
        -------
        pandas.Series
            Segment names, named ``segment``, on the same index as ``customers``;
            customers no rule matches get :attr:`default`.

        Raises
        ------
        MissingColumnsError
            If a column the rules read is absent.
        DataError
            If a score is missing, not a whole number or (for ``r``, ``f``, ``m``,
            ``fm``) outside 1..9, or a raw feature is not numeric.

        Examples
        --------
        >>> customers = pd.DataFrame(
        ...     {"r_score": [5, 1, 3], "f_score": [5, 1, 3]}, index=["c1", "c2", "c3"]
        ... )
        >>> load_rules("rf-grid").assign(customers).to_dict()
        {'c1': 'champions', 'c2': 'hibernating', 'c3': 'need_attention'}
        """
        arrays = _customer_arrays(customers, self.columns)
        cells, cell_of_row = _score_cells(arrays)
        # Score conditions are checked once per score cell, which gives each cell its first
        # score-only rule; rules with raw bounds are then checked per customer and win
        # where they match and come earlier.
        rules = self.rules
        in_cell = [rule.score_mask(cells) for rule in rules]
        cell_codes = np.full(_length(cells), len(rules))
        for number in reversed(range(len(rules))):
            if not rules[number].has_bounds:
                cell_codes[in_cell[number]] = number
        codes = cell_codes[cell_of_row]
        for number, rule in enumerate(rules):
            if rule.has_bounds:
                hit = in_cell[number][cell_of_row] & rule.bounds_mask(arrays) & (codes > number)
                codes[hit] = number
        names = pd.array([*(rule.segment for rule in rules), self.default], dtype="str")
        return pd.Series(names.take(codes), index=customers.index, name="segment")


def builtin_rule_sets() -> list[str]:
    """Names of the built-in rule sets, sorted.

    Returns
    -------
    list of str
        Names accepted by :func:`load_rules`.

    Examples
    --------
    >>> builtin_rule_sets()
    ['classic', 'pymc', 'rf-grid', 'seed']
    """
    folder = resources.files("rfm_engine.core.segments").joinpath("builtin")
    return sorted(
        item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml")
    )


def load_rules(name_or_path: str | os.PathLike[str] | RuleSet = DEFAULT_RULE_SET) -> RuleSet:
    """Load a built-in rule set by name, or a rule set from a TOML file.

    Parameters
    ----------
    name_or_path : str, path-like or RuleSet, default="rf-grid"
        A built-in name (see :func:`builtin_rule_sets`) or the path of a TOML file.
        A string containing a path separator or ending in ``.toml`` is always a path.
        A :class:`RuleSet` is returned unchanged.

    Returns
    -------
    RuleSet
        The validated rule set.

    Raises
    ------
    ConfigError
        If the name is neither a built-in nor an existing file (the message lists
        the built-in names), or the file is invalid.

    Examples
    --------
    >>> rules = load_rules("pymc")
    >>> rules.n_bins, rules.default, len(rules.rules)
    (4, 'Other', 5)
    >>> load_rules("gold")
    Traceback (most recent call last):
    ...
    rfm_engine.errors.ConfigError: Unknown rule set 'gold': not a built-in rule set \
(classic, pymc, rf-grid, seed) and no such file.
    """
    if isinstance(name_or_path, RuleSet):
        return name_or_path
    text, source = rule_file_text(name_or_path)
    return RuleSet.from_toml(text, source=source)


def is_rule_path(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether ``name_or_path`` can only be a file path, never a built-in rule set name.

    A path-like object, or a string with a path separator or ending in ``.toml``. The one
    definition of what counts as a path, for :func:`load_rules` and
    :class:`~rfm_engine.core.model.SegmentationModel`.

    Parameters
    ----------
    name_or_path : str or path-like
        A built-in name or a rule file path.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_rule_path("rf-grid"), is_rule_path("rules/vip.toml"), is_rule_path("vip.toml")
    (False, True, True)
    """
    text = os.fspath(name_or_path)
    return not isinstance(name_or_path, str) or text.endswith(".toml") or os.sep in text \
        or "/" in text


def rule_file_text(name_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    """Return the TOML text of a built-in rule set or a rule file, and where it came from.

    Parameters
    ----------
    name_or_path : str or path-like
        A built-in name (see :func:`builtin_rule_sets`) or the path of a TOML file; a
        string that :func:`is_rule_path` calls a path is never taken as a name.

    Returns
    -------
    text : str
        The file's TOML text (not yet validated).
    source : str
        The file it came from, for messages (``rfm_engine/core/segments/builtin/<name>.toml``
        for a built-in).

    Raises
    ------
    ConfigError
        If the name is neither a built-in nor an existing file (the message lists the
        built-in names), or the file cannot be read.

    Examples
    --------
    >>> text, source = rule_file_text("pymc")
    >>> source, 'name = "pymc"' in text
    ('rfm_engine/core/segments/builtin/pymc.toml', True)
    """
    names = builtin_rule_sets()
    text = os.fspath(name_or_path)
    looks_like_path = is_rule_path(name_or_path)
    if not looks_like_path and text in names:
        resource = resources.files("rfm_engine.core.segments").joinpath("builtin", f"{text}.toml")
        return (resource.read_text(encoding="utf-8"),
                f"rfm_engine/core/segments/builtin/{text}.toml")
    path = Path(text)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read rule file: {exc}") from exc
    if looks_like_path:
        raise ConfigError(f"Rule file {text!r} not found.")
    raise ConfigError(
        f"Unknown rule set {text!r}: not a built-in rule set ({', '.join(names)}) and no such file."
    )


# ---------------------------------------------------------------------------- parsing


def _parse_rule(table: Any, number: int, source: str, n_bins: int) -> Rule:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: rule {number} must be a [[rules]] table, got {table!r}")
    segment = table.get("segment")
    if not isinstance(segment, str) or not segment.strip():
        raise ConfigError(
            f"{source}: rule {number}: 'segment' must be a non-empty string, got {segment!r}"
        )
    where = f"{source}: rule {number} (segment {segment!r})"
    _check_keys(table, _META_KEYS + _CONDITION_KEYS, where, _ALLOWED_RULE_KEYS_TEXT)
    description = _text(table.get("description", ""), f"{where}: 'description'")
    ranges: dict[str, tuple[int, int]] = {}
    patterns: dict[str, tuple[str, ...]] = {}
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for key, value in table.items():
        if key in _META_KEYS:
            continue
        if key in FEATURE_KEYS:
            bounds[key] = _parse_bounds(key, value, where)
        elif key in PATTERN_KEYS and (isinstance(value, str) or _is_str_list(value)):
            patterns[key] = _parse_patterns(key, value, where)
        elif key in SCORE_KEYS:
            ranges[key] = _parse_range(key, value, where, n_bins)
        else:  # a pattern key such as "rf" with a non-string value
            raise ConfigError(
                f"{where}: {key!r} is a cell pattern and must be a string (or a list of "
                f"strings) such as {key} = {'[4-5]' * len(key)!r}, got {value!r}"
            )
    if not (ranges or patterns or bounds):
        raise ConfigError(
            f"{where}: no condition, so it would match every customer; use the "
            "top-level 'default' for a catch-all segment"
        )
    return Rule(
        segment=segment,
        number=number,
        description=description,
        ranges=ranges,
        patterns=patterns,
        bounds=bounds,
    )


def _parse_range(key: str, value: Any, where: str, n_bins: int) -> tuple[int, int]:
    low_limit, high_limit = (3, 3 * n_bins) if key == "rfm_score" else (1, n_bins)
    hint = f"an integer or [low, high] with {low_limit} <= low <= high <= {high_limit}"
    if is_int(value):
        low = high = value
    elif isinstance(value, list) and len(value) == 2 and all(is_int(v) for v in value):
        low, high = value
    else:
        raise ConfigError(f"{where}: {key} = {value!r} is not a score range; expected {hint}")
    if not low_limit <= low <= high <= high_limit:
        raise ConfigError(
            f"{where}: {key} = {value!r} is out of range for n_bins = {n_bins}; expected {hint}"
        )
    return (low, high)


def _parse_patterns(key: str, value: str | list[str], where: str) -> tuple[str, ...]:
    patterns = (value,) if isinstance(value, str) else tuple(value)
    if not patterns:
        raise ConfigError(f"{where}: {key} = [] lists no pattern")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"{where}: {key} = {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
    return patterns


def _parse_bounds(key: str, value: Any, where: str) -> tuple[float | None, float | None]:
    example = f"{key} = {{ min = 0, max = 30 }}"
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"{where}: {key} must be a table with 'min' and/or 'max', e.g. {example}; got {value!r}"
        )
    _check_keys(value, ("min", "max"), f"{where}: {key}", "min, max")
    low, high = value.get("min"), value.get("max")
    for side, bound in (("min", low), ("max", high)):
        if bound is not None and not (is_real(bound) and not np.isnan(bound)):
            raise ConfigError(f"{where}: {key}.{side} must be a number, got {bound!r}")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}: {key} has min {low!r} > max {high!r}; nothing can match")
    return (low, high)


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, text: str) -> None:
    for key in table:
        if key not in allowed:
            close = [name for name in allowed if name.startswith(str(key))]
            close = close or difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed keys: {text}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value.strip()


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


@lru_cache(maxsize=256)
def _matching_codes(key: str, patterns: tuple[str, ...]) -> np.ndarray:
    """Integer codes (digits 1..9 read in base 10) of the cells a pattern matches."""
    compiled = [re.compile(p) for p in patterns]
    codes = [
        int("".join(digits))
        for digits in itertools.product("123456789", repeat=len(key))
        if any(p.fullmatch("".join(digits)) for p in compiled)
    ]
    return np.array(codes, dtype=np.int64)


# ------------------------------------------------------------------------- customers


def _length(arrays: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0


def _customer_arrays(customers: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Validate the columns the rules read and return them as float arrays."""
    if not isinstance(customers, pd.DataFrame):
        raise TypeError(f"customers must be a pandas DataFrame, got {type(customers).__name__}")
    require_columns(customers, columns, _CUSTOMERS)
    arrays = {}
    for col in columns:
        series = customers[col]
        is_score = col in SCORE_KEYS.values()
        expected = (
            "a whole-number score"
            if col == "rfm_score"
            else "a whole-number score from 1 to 9"
            if is_score
            else "a number"
        )
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise _bad_value(customers, col, np.ones(len(series), dtype=bool), expected)
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        if is_score:
            bad = ~np.isfinite(values) | (values != np.round(values))
            if col != "rfm_score":
                bad |= (values < 1) | (values > _MAX_BINS)
            if bad.any():
                raise _bad_value(customers, col, bad, expected)
        arrays[col] = values
    return arrays


def _score_cells(
    arrays: Mapping[str, np.ndarray],
) -> tuple[Mapping[str, np.ndarray], np.ndarray]:
    """Group rows by their score columns: ``cells[col][cell_of_row] == arrays[col]``.

    ``cells`` holds every combination of the score columns between their observed
    minimum and maximum; when there are no more rows than combinations (or no score
    columns), every row is its own cell and ``cells`` is ``arrays``.
    """
    n_rows = _length(arrays)
    columns = [col for col in arrays if col in SCORE_KEYS.values()] if n_rows else []
    # Python floats: a huge span overflows to inf without a warning.
    ranges = {col: (float(arrays[col].min()), float(arrays[col].max())) for col in columns}
    n_cells = math.prod(high - low + 1 for low, high in ranges.values())
    if not ranges or n_cells >= n_rows:
        return arrays, np.arange(n_rows)
    position = np.zeros(n_rows)
    for col, (low, high) in ranges.items():
        position *= high - low + 1
        position += arrays[col] - low
    grid = np.arange(int(n_cells))
    cells = {}
    for col, (low, high) in reversed(ranges.items()):
        grid, digit = np.divmod(grid, high - low + 1)
        cells[col] = low + digit
    return cells, position.astype(np.intp)


def _bad_value(customers: pd.DataFrame, col: str, bad: np.ndarray, expected: str) -> DataError:
    position = int(np.flatnonzero(bad)[0])
    return DataError(
        _CUSTOMERS,
        None,
        col,
        customers[col].iloc[position],
        expected,
        hint=f"First at index {customers.index[position]!r}; {int(bad.sum())} row(s) affected.",
    )
