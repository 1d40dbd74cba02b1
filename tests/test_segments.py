"""Segment rule engine: built-in maps, rule semantics, lint numbers, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.core.segments import (
    LintReport,
    Rule,
    RuleSet,
    builtin_rule_sets,
    lint_rules,
    load_rules,
    score_cells,
)
from rfm_engine.errors import ConfigError, DataError, MissingColumnsError

BUILTINS = ["classic", "pymc", "rf-grid", "seed"]


def customers(cells: dict[str, str], **features: list[float]) -> pd.DataFrame:
    """Customer table from {customer_id: "RFM digits"}, with derived and raw columns."""
    digits = np.array([[int(d) for d in cell] for cell in cells.values()]).reshape(-1, 3)
    r, f, m = digits.T
    n = len(cells)
    data = {
        "r_score": r,
        "f_score": f,
        "m_score": m,
        "fm_score": (f + m + 1) // 2,
        "rfm_score": r + f + m,
        "recency_days": [10.0] * n,
        "frequency": [1.0] * n,
        "monetary": [50.0] * n,
        "avg_order_value": [50.0] * n,
        "tenure_days": [100.0] * n,
    }
    data.update(features)
    return pd.DataFrame(data, index=pd.Index(list(cells), name="customer_id"))


def rules_from(body: str, name: str = "t", head: str = "") -> RuleSet:
    return RuleSet.from_toml(f'name = "{name}"\n{head}\n{body}', source="test.toml")


# --------------------------------------------------------------------------- built-ins


def test_builtin_names():
    assert builtin_rule_sets() == BUILTINS
    assert load_rules().name == "rf-grid"


def test_rf_grid_one_customer_per_segment():
    table = customers(
        {
            "a": "111",
            "b": "234",
            "c": "155",
            "d": "321",
            "e": "333",
            "f": "445",
            "g": "411",
            "h": "512",
            "i": "421",
            "j": "541",
        }
    )
    assert load_rules("rf-grid").assign(table).to_dict() == {
        "a": "hibernating",
        "b": "at_risk",
        "c": "cant_lose",
        "d": "about_to_sleep",
        "e": "need_attention",
        "f": "loyal_customers",
        "g": "promising",
        "h": "new_customers",
        "i": "potential_loyalists",
        "j": "champions",
    }


def test_seed_segments():
    table = customers({"v": "545", "l": "453", "p": "132", "o1": "535", "o2": "332"})
    result = load_rules("seed").assign(table)
    assert result.tolist() == ["VIP", "Loyal", "Potential", "Other", "Other"]
    assert load_rules("seed").segments == ("VIP", "Loyal", "Potential", "Other")


def test_classic_changed_rules_fire():
    table = customers(
        {
            "champ": "455",
            "loyal": "233",
            "new5": "511",
            "new4": "411",
            "prom": "311",
            "potl": "523",
            "need": "223",
            "sleep": "211",
            "cant": "145",
            "risk": "125",
            "risk122": "122",
            "lost": "111",
            "hib": "112",
            "other": "113",
        }
    )
    assert load_rules("classic").assign(table).to_dict() == {
        "champ": "Champions",
        "loyal": "Loyal Customers",
        "new5": "New Customers",
        "new4": "New Customers",
        "prom": "Promising",
        "potl": "Potential Loyalist",
        "need": "Need Attention",
        "sleep": "About To Sleep",
        "cant": "Can't Lose Them",
        "risk": "At Risk",
        "risk122": "At Risk",
        "lost": "Lost",
        "hib": "Hibernating",
        "other": "Other",
    }


# pymc-marketing `_default_rfm_segment_config` (pymc_marketing/clv/utils.py), verbatim.
PYMC_CONFIG = {
    "Premium Customer": ["334", "443", "444", "344", "434", "433", "343", "333"],
    "Repeat Customer": ["244", "234", "232", "332", "143", "233", "243"],
    "Top Spender": [
        "424",
        "414",
        "144",
        "314",
        "324",
        "124",
        "224",
        "423",
        "413",
        "133",
        "323",
        "313",
        "134",
    ],  # fmt: skip
    "At Risk Customer": [
        "422",
        "223",
        "212",
        "122",
        "222",
        "132",
        "322",
        "312",
        "412",
        "123",
        "214",
    ],  # fmt: skip
    "Inactive Customer": ["411", "111", "113", "114", "112", "211", "311"],
}


def test_pymc_reproduces_the_default_config_cell_by_cell():
    expected = {cell: name for name, cells in PYMC_CONFIG.items() for cell in cells}
    table = load_rules("pymc").assign(customers({c: c for c in score_cells(4)["cell"]}))
    assert table.to_dict() == {c: expected.get(c, "Other") for c in table.index}
    assert load_rules("pymc").n_bins == 4


@pytest.mark.parametrize(
    ("name", "n_cells", "covered", "uncovered"),
    [
        ("rf-grid", 125, 125, 0),
        ("seed", 125, 16, 109),
        ("classic", 125, 89, 36),
        ("pymc", 64, 46, 18),
    ],
)
def test_builtin_lint_numbers(name, n_cells, covered, uncovered):
    report = lint_rules(name)
    assert (report.n_cells, report.n_covered, len(report.uncovered_cells)) == (
        n_cells,
        covered,
        uncovered,
    )
    assert report.unreachable_segments == []
    assert report.shadowed_rules == [] and report.unmatchable_rules == []
    assert report.ok
    counts = report.cells_per_segment
    assert all(counts[rule.segment] > 0 for rule in report.rule_set.rules)
    assert counts[report.rule_set.default] == uncovered
    assert sum(counts.values()) == n_cells


def test_rf_grid_covers_each_rf_cell_exactly_once():
    rules = load_rules("rf-grid")
    cells = score_cells(5)
    arrays = {c: cells[c].to_numpy(float) for c in ("r_score", "f_score", "m_score")}
    hits = np.sum([rule.score_mask(arrays) for rule in rules.rules], axis=0)
    assert (hits == 1).all()


def test_pymc_uncovered_cells():
    assert lint_rules("pymc").uncovered_cells == (
        "121 131 141 142 213 221 231 241 242 321 331 341 342 421 431 432 441 442".split()
    )


PUBLISHED_CLASSIC = """
[[rules]]
segment = "Champions"
r = [4, 5]
f = [4, 5]
m = [4, 5]
[[rules]]
segment = "Loyal Customers"
r = [2, 5]
f = [3, 5]
m = [3, 5]
[[rules]]
segment = "Potential Loyalist"
r = [3, 5]
f = [1, 3]
m = [1, 3]
[[rules]]
segment = "New Customers"
r = [4, 5]
f = 1
m = 1
[[rules]]
segment = "Promising"
r = [3, 4]
f = 1
m = 1
[[rules]]
segment = "Need Attention"
r = [2, 3]
f = [2, 3]
m = [2, 3]
[[rules]]
segment = "About To Sleep"
r = [2, 3]
f = [1, 2]
m = [1, 2]
[[rules]]
segment = "At Risk"
r = [1, 2]
f = [2, 5]
m = [2, 5]
[[rules]]
segment = "Can't Lose Them"
r = 1
f = [4, 5]
m = [4, 5]
[[rules]]
segment = "Hibernating"
r = [1, 2]
f = [1, 2]
m = [1, 2]
[[rules]]
segment = "Lost"
r = [1, 2]
f = [1, 2]
m = [1, 2]
"""


def test_lint_finds_the_published_classic_problems():
    report = lint_rules(rules_from(PUBLISHED_CLASSIC, head='default = "Others"'))
    assert len(report.uncovered_cells) == 36
    assert report.unreachable_segments == ["New Customers", "Promising", "Can't Lose Them", "Lost"]
    assert [(i.rule, i.shadowed_by) for i in report.shadowed_rules] == [
        (4, (3,)),
        (5, (3,)),
        (9, (8,)),
        (11, (6, 7, 8, 10)),
    ]
    assert not report.ok
    text = str(report)
    assert 'rule 9 (segment "Can\'t Lose Them") is shadowed by rule(s) 8' in text
    assert "PROBLEMS FOUND" in text
    # the shipped classic covers the same cells
    assert report.uncovered_cells == lint_rules("classic").uncovered_cells


@pytest.mark.parametrize("name", BUILTINS)
def test_assign_agrees_with_lint_table(name):
    report = lint_rules(name)
    table = report.to_frame()
    assigned = report.rule_set.assign(
        customers(dict(zip(table["cell"], table["cell"], strict=True)))
    )
    assert assigned.tolist() == table["segment"].tolist()


# ------------------------------------------------------------------------- semantics


def test_first_match_wins():
    body = """
[[rules]]
segment = "recent"
r = [4, 5]
[[rules]]
segment = "frequent"
f = [4, 5]
"""
    table = customers({"both": "555", "r": "511", "f": "155", "none": "111"})
    assert rules_from(body).assign(table).tolist() == ["recent", "recent", "frequent", "Other"]
    swapped = """
[[rules]]
segment = "frequent"
f = [4, 5]
[[rules]]
segment = "recent"
r = [4, 5]
"""
    assert rules_from(swapped).assign(table).tolist() == ["frequent", "recent", "frequent", "Other"]


def test_same_segment_in_several_rules_and_segments_order():
    body = """
[[rules]]
segment = "good"
r = 5
[[rules]]
segment = "meh"
r = 3
[[rules]]
segment = "good"
f = 5
"""
    rs = rules_from(body, head='default = "meh"')
    assert rs.segments == ("good", "meh")
    assert rs.assign(customers({"a": "511", "b": "155", "c": "311", "d": "111"})).tolist() == [
        "good",
        "good",
        "meh",
        "meh",
    ]


def test_patterns_ranges_and_fm_disambiguation():
    body = """
[[rules]]
segment = "rfm"
rfm = "5[4-5]."
[[rules]]
segment = "fm_pattern"
fm = "1[1-2]"
[[rules]]
segment = "fm_range"
fm = [4, 5]
[[rules]]
segment = "any_of"
rm = ["21", "3[1-9]"]
[[rules]]
segment = "total"
rfm_score = [9, 9]
"""
    table = customers(
        {
            "a": "541",  # rfm pattern, any M
            "b": "311",  # fm digits "11"
            "c": "435",  # fm_score = round_half_up(4) = 4
            "d": "422",  # fm_score 2 -> not fm_range; rm "42" no; rfm_score 8 -> not total
            "e": "213",  # rm "23"? no; fm "13"? no; rfm_score 6
            "f": "321",  # rm "31" matches
            "g": "252",  # fm "52" no; fm_score round_half_up(3.5) = 4 -> fm_range
            "h": "333",  # rm "33" -> any_of before total
            "i": "144",  # fm_score 4 -> fm_range
            "j": "243",  # fm_score 4 (3.5 rounds up)
            "k": "441",  # fm_score round_half_up(2.5) = 3; rm "41" no; rfm_score 9 -> total
        }
    )
    assert rules_from(body).assign(table).to_dict() == {
        "a": "rfm",
        "b": "fm_pattern",
        "c": "fm_range",
        "d": "Other",
        "e": "Other",
        "f": "any_of",
        "g": "fm_range",
        "h": "any_of",
        "i": "fm_range",
        "j": "fm_range",
        "k": "total",
    }


def test_pattern_must_match_whole_digit_string():
    rs = rules_from('[[rules]]\nsegment = "x"\nrf = "5"')
    assert rs.assign(customers({"a": "555", "b": "511"})).tolist() == ["Other", "Other"]
    rs = rules_from('[[rules]]\nsegment = "x"\nrfm = "5"')
    assert rs.assign(customers({"a": "555"})).tolist() == ["Other"]


def test_raw_bounds_inclusive_and_nan_never_matches():
    body = """
[[rules]]
segment = "recent_big"
recency_days = { max = 30 }
monetary = { min = 100, max = 500 }
[[rules]]
segment = "long_tenure"
tenure_days = { min = 365 }
"""
    table = customers(
        {"a": "111", "b": "111", "c": "111", "d": "111", "e": "111", "f": "111"},
        recency_days=[30.0, 31.0, 0.0, np.nan, 5.0, 5.0],
        monetary=[100.0, 200.0, 500.0, 200.0, 500.01, 99.99],
        tenure_days=[0.0, 365.0, 0.0, 400.0, np.nan, 10.0],
    )
    assert rules_from(body).assign(table).tolist() == [
        "recent_big",
        "long_tenure",
        "recent_big",
        "long_tenure",
        "Other",
        "Other",
    ]


def test_raw_bounds_combined_with_scores():
    body = """
[[rules]]
segment = "vip_recent"
rf = "5[4-5]"
recency_days = { max = 7 }
[[rules]]
segment = "vip"
rf = "5[4-5]"
"""
    table = customers({"a": "555", "b": "555", "c": "155"}, recency_days=[7, 8, 1])
    assert rules_from(body).assign(table).tolist() == ["vip_recent", "vip", "Other"]


def test_assign_keeps_index_and_never_mutates():
    table = customers({"x9": "555", "x1": "111"})
    table.index = pd.Index([42, 7])
    before = table.copy(deep=True)
    result = load_rules("classic").assign(table)
    pd.testing.assert_frame_equal(table, before)
    assert result.index.tolist() == [42, 7]
    assert result.name == "segment"


def test_assign_only_needs_the_columns_the_rules_read():
    table = pd.DataFrame({"r_score": [5], "f_score": [5]})
    assert load_rules("rf-grid").assign(table).tolist() == ["champions"]
    assert load_rules("rf-grid").columns == ("r_score", "f_score")


def test_assign_empty_frame():
    result = load_rules("seed").assign(customers({}))
    assert len(result) == 0 and result.name == "segment"


def test_assign_accepts_nullable_and_float_scores():
    table = pd.DataFrame(
        {"r_score": pd.array([5, 1], dtype="Int64"), "f_score": np.array([4.0, 1.0])}
    )
    assert load_rules("rf-grid").assign(table).tolist() == ["champions", "hibernating"]


def test_direct_construction_renumbers_rules():
    rule = Rule(segment="vip", ranges={"r": (5, 5)})
    rs = RuleSet(name="manual", rules=[rule, Rule(segment="rest", ranges={"r": (1, 4)})])
    assert [r.number for r in rs.rules] == [1, 2]
    assert rs.assign(pd.DataFrame({"r_score": [5, 2]})).tolist() == ["vip", "rest"]


def test_load_rules_from_path_and_passthrough(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[[rules]]\nsegment = "x"\nr = 5\n', encoding="utf-8")
    assert load_rules(path).name == "mine"
    assert load_rules(str(path)).source == str(path)
    rs = load_rules("seed")
    assert load_rules(rs) is rs


# ----------------------------------------------------------------------- lint details


def test_lint_raw_bounded_rules_never_shadow():
    body = """
[[rules]]
segment = "recent_champ"
rf = "5[4-5]"
recency_days = { max = 7 }
[[rules]]
segment = "champ"
rf = "5[4-5]"
[[rules]]
segment = "late"
rf = "55"
"""
    report = lint_rules(rules_from(body))
    assert report.unreachable_segments == ["late"]
    assert [(i.rule, i.segment, i.shadowed_by) for i in report.shadowed_rules] == [
        (3, "late", (2,))
    ]
    assert [r.number for r in report.raw_bound_rules] == [1]
    frame = report.to_frame().set_index("cell")
    assert frame.loc["555", "segment"] == "champ"
    assert frame.loc["555", "rule"] == 2
    assert frame.loc["555", "possible"] == "recent_champ"
    assert frame.loc["111", "possible"] == ""
    assert pd.isna(frame.loc["111", "rule"])
    assert report.n_covered == 10  # R 5 x F 4-5 x any M
    text = str(report)
    assert "raw-feature bounds" in text
    assert "rule 1 (segment 'recent_champ'): recency_days; may take 10 cell(s)" in text
    assert report.to_dict()["raw_bound_rules"] == [
        {"rule": 1, "segment": "recent_champ", "features": ["recency_days"]}
    ]


def test_lint_raw_bounded_rule_reachable_only_on_uncovered_cells():
    body = """
[[rules]]
segment = "all_recent"
r = [1, 5]
[[rules]]
segment = "big"
monetary = { min = 1000 }
"""
    report = lint_rules(rules_from(body))
    assert report.unreachable_segments == ["big"]
    assert report.shadowed_rules[0].shadowed_by == (1,)


def test_lint_other_scale_reports_dead_rules():
    report = lint_rules("rf-grid", n_bins=4)
    assert report.n_cells == 64 and report.n_covered == 64
    assert report.unreachable_segments == ["cant_lose", "new_customers", "champions"]
    assert [i.rule for i in report.unmatchable_rules] == [3, 8, 10]
    assert not report.ok
    assert "rules were written for n_bins = 5" in str(report)
    assert "rule 3 (segment 'cant_lose') matches no score cell" in str(report)


def test_lint_report_writers():
    report = lint_rules("pymc")
    assert isinstance(report, LintReport)
    frame = report.to_frame()
    assert frame.columns.tolist() == [
        "cell",
        "r_score",
        "f_score",
        "m_score",
        "fm_score",
        "rfm_score",
        "segment",
        "rule",
        "possible",
    ]
    assert len(frame) == 64
    frame.loc[0, "segment"] = "changed"  # a copy: the report is unaffected
    assert report.to_frame().loc[0, "segment"] == "Inactive Customer"
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert data["covered_cells"] == 46 and len(data["uncovered_cells"]) == 18
    assert data["cells_per_segment"]["Other"] == 18
    text = str(report)
    assert "64 score cells (4 bins): 46 covered by rules, 18 go to the default segment" in text
    assert text.endswith("OK")
    assert "covered=46/64" in repr(report)


def test_score_cells_derivations():
    cells = score_cells(3).set_index("cell")
    assert len(cells) == 27
    assert cells.loc["312"].tolist() == [3, 1, 2, 2, 6]  # fm 1.5 rounds up to 2
    assert cells.loc["123"].tolist() == [1, 2, 3, 3, 6]  # fm 2.5 rounds up to 3


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            '[[rules]]\nsegment = "vip"\nr = 5\nrecency = 3',
            r"test\.toml: rule 1 \(segment 'vip'\): unknown key 'recency' \(did you mean "
            r"'recency_days'\?\); allowed keys: segment, description; score ranges: r, f, m, "
            r"fm, rfm_score; cell patterns: r, f, m, rf, rm, fm, rfm; raw bounds: recency_days",
        ),
        (
            '[[rules]]\nsegment = "a"\nr = 5\n[[rules]]\nsegment = "b"\nr = [4, 6]',
            r"test\.toml: rule 2 \(segment 'b'\): r = \[4, 6\] is out of range for "
            r"n_bins = 5; expected an integer or \[low, high\] with 1 <= low <= high <= 5",
        ),
        (
            '[[rules]]\nsegment = "a"\nf = [5, 4]',
            r"rule 1 \(segment 'a'\): f = \[5, 4\] is out of range",
        ),
        (
            '[[rules]]\nsegment = "a"\nrfm_score = [2, 15]',
            r"rfm_score = \[2, 15\] is out of range .* 3 <= low <= high <= 15",
        ),
        (
            '[[rules]]\nsegment = "a"\nr = 2.5',
            r"rule 1 \(segment 'a'\): r = 2\.5 is not a score range",
        ),
        (
            '[[rules]]\nsegment = "a"\nrf = 55',
            r"rule 1 \(segment 'a'\): 'rf' is a cell pattern and must be a string .* got 55",
        ),
        (
            '[[rules]]\nsegment = "a"\nrf = "5[4-"',
            r"rule 1 \(segment 'a'\): rf = '5\[4-' is not a valid regular expression",
        ),
        (
            '[[rules]]\nsegment = "a"\nrecency_days = 30',
            r"rule 1 \(segment 'a'\): recency_days must be a table with 'min' and/or 'max'",
        ),
        (
            '[[rules]]\nsegment = "a"\nmonetary = { min = 500, max = 100 }',
            r"rule 1 \(segment 'a'\): monetary has min 500 > max 100",
        ),
        (
            '[[rules]]\nsegment = "a"\nmonetary = { low = 5 }',
            r"rule 1 \(segment 'a'\): monetary: unknown key 'low'; allowed keys: min, max",
        ),
        (
            '[[rules]]\nsegment = "a"\nmonetary = { min = "5" }',
            r"rule 1 \(segment 'a'\): monetary\.min must be a number, got '5'",
        ),
        ("[[rules]]\nr = 5", r"test\.toml: rule 1: 'segment' must be a non-empty string"),
        (
            '[[rules]]\nsegment = "all"\ndescription = "everyone"',
            r"rule 1 \(segment 'all'\): no condition, so it would match every customer",
        ),
        ("", r"test\.toml: no rules; add at least one \[\[rules\]\] table"),
        (
            'colour = "red"\n[[rules]]\nsegment = "a"\nr = 5',
            r"test\.toml: top level: unknown key 'colour'; allowed keys: name, description, "
            r"default, n_bins, rules",
        ),
        (
            'n_bins = 12\n[[rules]]\nsegment = "a"\nr = 5',
            r"'n_bins' must be an integer from 2 to 9",
        ),
        ('default = ""\n[[rules]]\nsegment = "a"\nr = 5', r"'default' must be a non-empty string"),
    ],
)
def test_rule_file_errors(body, match):
    with pytest.raises(ConfigError, match=match):
        rules_from(body)


def test_score_key_with_string_is_a_pattern_not_a_range():
    # m = "high" is read as a cell pattern (a regex over the M digit) and matches nothing
    rs = rules_from('[[rules]]\nsegment = "a"\nm = "high"')
    assert rs.rules[0].patterns == {"m": ("high",)}
    assert lint_rules(rs).unmatchable_rules[0].rule == 1


def test_missing_name_and_invalid_toml():
    with pytest.raises(ConfigError, match=r"x\.toml: 'name' must be a non-empty string"):
        RuleSet.from_toml('[[rules]]\nsegment = "a"\nr = 5', source="x.toml")
    with pytest.raises(ConfigError, match=r"x\.toml: not valid TOML: .*at line 2"):
        RuleSet.from_toml('name = "x"\n[[rules]\n', source="x.toml")


def test_load_rules_errors(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"Unknown rule set 'gold': not a built-in rule set \(classic, pymc, rf-grid, "
        r"seed\) and no such file",
    ):
        load_rules("gold")
    with pytest.raises(ConfigError, match=r"Rule file '.*missing\.toml' not found"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[rules]]\nsegment = "x"\nrfm = 555\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{bad.name}: rule 1 \(segment 'x'\): 'rfm' is a"):
        load_rules(bad)


def test_assign_missing_columns():
    table = pd.DataFrame({"r_score": [5], "monetary": [1.0]})
    with pytest.raises(
        MissingColumnsError,
        match=r"customer table: missing column\(s\) 'f_score', 'm_score'; "
        r"available: 'r_score', 'monetary'",
    ):
        load_rules("seed").assign(table)


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        (
            "r_score",
            [5, 0],
            r"column 'r_score': got .*0.*expected a whole-number score from 1 to 9",
        ),
        ("f_score", [4.5, 1], r"column 'f_score': got .*4\.5.*First at index 'a'; 1 row"),
        ("f_score", [np.nan, np.nan], r"column 'f_score': got .*nan.*2 row\(s\) affected"),
        ("r_score", ["5", "1"], r"column 'r_score': got '5', expected a whole-number score"),
    ],
)
def test_assign_bad_scores(column, values, match):
    table = pd.DataFrame({"r_score": [5, 1], "f_score": [5, 1]}, index=["a", "b"])
    table[column] = values
    with pytest.raises(DataError, match=match):
        load_rules("rf-grid").assign(table)


def test_assign_non_numeric_feature():
    rs = rules_from('[[rules]]\nsegment = "a"\nmonetary = { min = 1 }')
    with pytest.raises(DataError, match=r"column 'monetary': got 'lots', expected a number"):
        rs.assign(pd.DataFrame({"monetary": ["lots"]}))


@pytest.mark.parametrize("n_bins", [1, 10, 2.0, True])
def test_lint_bad_n_bins(n_bins):
    with pytest.raises(ConfigError, match=r"'n_bins' parameter of lint_rules must be an int"):
        lint_rules("seed", n_bins=n_bins)


# --------------------------------------------------------------------------- property


@st.composite
def customer_tables(draw):
    n = draw(st.integers(min_value=0, max_value=30))
    cells = draw(st.lists(st.tuples(*[st.integers(1, 5)] * 3), min_size=n, max_size=n))
    ids = [f"c{i}" for i in range(n)]
    raw = st.one_of(st.floats(0, 1000, allow_nan=False), st.just(float("nan")))
    feats = {
        key: draw(st.lists(raw, min_size=n, max_size=n))
        for key in ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
    }
    return customers({i: "".join(map(str, c)) for i, c in zip(ids, cells, strict=True)}, **feats)


MIXED = rules_from(
    """
[[rules]]
segment = "recent_vip"
rfm = "5[4-5][4-5]"
recency_days = { max = 30 }
[[rules]]
segment = "vip"
r = [4, 5]
fm = [4, 5]
[[rules]]
segment = "spender"
monetary = { min = 500 }
[[rules]]
segment = "low"
rfm_score = [3, 6]
""",
    head='default = "rest"',
)


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(table=customer_tables(), name=st.sampled_from([*BUILTINS, "mixed"]))
def test_every_customer_gets_exactly_one_known_segment(table, name):
    rules = MIXED if name == "mixed" else load_rules(name)
    before = table.copy(deep=True)
    result = rules.assign(table)
    pd.testing.assert_frame_equal(table, before)
    assert result.index.equals(table.index)
    assert len(result) == len(table)
    assert set(result) <= set(rules.segments)
    assert result.notna().all()
    assert result.equals(rules.assign(table))  # reruns reproduce


def test_builtin_files_are_where_the_package_data_says():
    folder = Path(__file__).resolve().parents[1] / "rfm_engine" / "core" / "segments" / "builtin"
    assert sorted(p.stem for p in folder.glob("*.toml")) == BUILTINS
