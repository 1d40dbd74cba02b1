"""Segment rules: ordered TOML rule sets that give every customer one segment.

Load a built-in map (``rf-grid``, the default; ``seed``; ``classic``; ``pymc``) or
your own TOML file with :func:`load_rules`, assign segments with
:meth:`RuleSet.assign`, and check a map over every score cell with
:func:`lint_rules`.

Examples
--------
>>> import pandas as pd
>>> from rfm_engine.core.segments import lint_rules, load_rules
>>> customers = pd.DataFrame({"r_score": [5, 2], "f_score": [4, 5]})
>>> load_rules().assign(customers).tolist()
['champions', 'cant_lose']
>>> lint_rules("rf-grid").ok
True
"""

from .lint import LintReport, RuleIssue, lint_rules, score_cells
from .rules import (
    DEFAULT_RULE_SET,
    FEATURE_KEYS,
    PATTERN_KEYS,
    SCORE_KEYS,
    Rule,
    RuleSet,
    builtin_rule_sets,
    is_rule_path,
    load_rules,
    rule_file_text,
)

__all__ = [
    "DEFAULT_RULE_SET",
    "FEATURE_KEYS",
    "PATTERN_KEYS",
    "SCORE_KEYS",
    "LintReport",
    "Rule",
    "RuleIssue",
    "RuleSet",
    "builtin_rule_sets",
    "is_rule_path",
    "lint_rules",
    "load_rules",
    "rule_file_text",
    "score_cells",
]
