import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.axes import Axes

from rfm_engine.errors import ConfigError, InputError, MissingColumnsError
from rfm_engine.measurement.migration import (
    DEFAULT_TRIGGERS,
    GONE,
    NEW,
    TRIGGER_COLUMNS,
    find_previous_run,
    migrate,
    trigger_lists,
)

D = dt.date
ORDER = ["champions", "loyal_customers", "at_risk", "hibernating"]
WEEK1, WEEK2 = D(2025, 12, 22), D(2025, 12, 29)


@pytest.fixture
def previous() -> pd.DataFrame:
    """Week 1 as written by the run of 2025-12-22."""
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "segment": ["champions", "champions", "loyal_customers", "at_risk", "hibernating"],
        "previous_segment": ["champions", "loyal_customers", pd.NA, "at_risk", "hibernating"],
        "segment_since": [D(2025, 12, 1), D(2025, 12, 15), D(2025, 11, 3), D(2025, 12, 22),
                          D(2025, 10, 6)],
    })


@pytest.fixture
def current() -> pd.DataFrame:
    """Week 2: a stays, b falls to at_risk, c becomes champion, d stays, e is gone,
    f and g are new."""
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "f", "g"],
        "segment": ["champions", "at_risk", "champions", "at_risk", "at_risk", "champions"],
        "recency_days": [3, 70, 5, 120, 90, 1],
        "frequency": [12, 4, 9, 3, 2, 7],
        "monetary": [900.0, 150.0, 610.5, 80.0, 45.0, 300.0],
        "email": ["a@example.com", "b@example.com", "c@example.com", "d@example.com",
                  "f@example.com", "g@example.com"],
    })


def test_matrix_is_spelled_out(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    expected = pd.DataFrame(
        [[1, 0, 1, 0, 0],   # champions: a stays, b -> at_risk
         [1, 0, 0, 0, 0],   # loyal_customers: c -> champions
         [0, 0, 1, 0, 0],   # at_risk: d stays
         [0, 0, 0, 0, 1],   # hibernating: e gone
         [1, 0, 1, 0, 0]],  # new: g -> champions, f -> at_risk
        index=pd.Index([*ORDER, NEW], name="from"),
        columns=pd.Index([*ORDER, GONE], name="to"),
    )
    pd.testing.assert_frame_equal(m.matrix, expected)
    assert m.moved_share == 0.5  # a, b, c, d in both runs; b and c moved
    assert (m.n_new, m.n_gone) == (2, 1)


def test_segment_since_and_previous_segment(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    got = m.customers.set_index("customer_id")
    assert got["segment_since"].to_dict() == {
        "a": D(2025, 12, 1),   # unchanged: kept
        "b": WEEK2,            # changed
        "c": WEEK2,            # changed
        "d": D(2025, 12, 22),  # unchanged: kept
        "f": WEEK2,            # new
        "g": WEEK2,            # new
    }
    assert got.loc[["a", "b", "c", "d"], "previous_segment"].tolist() == [
        "champions", "champions", "loyal_customers", "at_risk"]
    assert got.loc[["f", "g"], "previous_segment"].isna().all()
    assert list(m.customers.columns) == [*current.columns, "previous_segment", "segment_since"]


def test_inputs_are_not_modified(current, previous):
    before_current, before_previous = current.copy(), previous.copy()
    migrate(current, previous, WEEK2, order=ORDER).matrix  # noqa: B018
    pd.testing.assert_frame_equal(current, before_current)
    pd.testing.assert_frame_equal(previous, before_previous)


def test_long_form(current, previous):
    frame = migrate(current, previous, WEEK2, order=ORDER).to_frame()
    assert list(frame.columns) == ["from", "to", "customers", "share_of_from"]
    assert frame.values.tolist() == [
        ["champions", "champions", 1, 0.5],
        ["champions", "at_risk", 1, 0.5],
        ["loyal_customers", "champions", 1, 1.0],
        ["at_risk", "at_risk", 1, 1.0],
        ["hibernating", GONE, 1, 1.0],
        [NEW, "champions", 1, 0.5],
        [NEW, "at_risk", 1, 0.5],
    ]


def test_entered_includes_new_customers(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    assert m.entered("at_risk").customer_id.tolist() == ["b", "f"]
    assert m.entered("champions").customer_id.tolist() == ["c", "g"]
    assert m.entered("hibernating").empty


def test_first_run_has_everyone_new(current):
    m = migrate(current, None, WEEK2, order=ORDER)
    assert not m.has_previous
    assert m.customers["previous_segment"].isna().all()
    assert m.customers["segment_since"].tolist() == [WEEK2] * 6
    assert m.matrix.loc[NEW].tolist() == [3, 0, 3, 0, 0]
    assert m.matrix.drop(index=NEW).to_numpy().sum() == 0
    assert math.isnan(m.moved_share)
    assert m.entered("at_risk").customer_id.tolist() == ["b", "d", "f"]


def test_previous_without_segment_since_uses_previous_as_of(current, previous):
    old = previous.drop(columns=["segment_since", "previous_segment"])
    since = migrate(current, old, WEEK2, previous_as_of="2025-12-22").customers["segment_since"]
    assert since.tolist() == [WEEK1, WEEK2, WEEK2, WEEK1, WEEK2, WEEK2]
    unknown = migrate(current, old, WEEK2).customers["segment_since"]
    assert unknown.tolist() == [None, WEEK2, WEEK2, None, WEEK2, WEEK2]


def test_rerun_replaces_migration_columns(current, previous):
    first = migrate(current, previous, WEEK2).customers
    again = migrate(first, previous, WEEK2).customers
    pd.testing.assert_frame_equal(first, again)


def test_segment_since_survives_parquet_between_weeks(current, previous, tmp_path):
    week2 = migrate(current, previous, WEEK2, order=ORDER).customers
    week2.drop(columns="email").to_parquet(tmp_path / "customers.parquet", index=False)
    reread = pd.read_parquet(tmp_path / "customers.parquet")
    week3 = migrate(current, reread, D(2026, 1, 5)).customers
    assert week3["segment_since"].tolist() == week2["segment_since"].tolist()
    assert week3["previous_segment"].tolist() == current["segment"].tolist()


def test_unlisted_segments_follow_the_order_alphabetically(current, previous):
    m = migrate(current, previous, WEEK2, order=["at_risk"])
    assert list(m.matrix.columns) == ["at_risk", "champions", "hibernating", "loyal_customers",
                                      GONE]
    assert list(m.matrix.index) == ["at_risk", "champions", "hibernating", "loyal_customers",
                                    NEW]


def test_duplicate_ids_are_refused(current, previous):
    doubled = pd.concat([previous, previous.iloc[[0]]])
    with pytest.raises(InputError,
                       match=r"previous customer table: customer_id must be unique.*'a'"):
        migrate(current, doubled, WEEK2)


def test_missing_ids_are_refused(current):
    broken = current.assign(customer_id=["a", None, "c", "d", "f", "g"])
    with pytest.raises(InputError, match=r"current customer table, row 2: customer_id is missing"):
        migrate(broken, None, WEEK2)


def test_missing_columns_are_named(current, previous):
    with pytest.raises(MissingColumnsError, match=r"previous customer table: missing column\(s\) "
                                                  r"'segment'; available: 'customer_id'"):
        migrate(current, previous[["customer_id"]], WEEK2)


def test_bad_as_of_is_refused(current):
    with pytest.raises(ConfigError, match=r"'as_of' parameter must be a date.*Got '29/12/2025'"):
        migrate(current, None, "29/12/2025")


def test_plot_heatmap_returns_axes(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    ax = m.plot_heatmap()
    assert isinstance(ax, Axes)
    # hibernating is empty now but was used before: kept; labels are the segment names
    assert [t.get_text() for t in ax.get_yticklabels()] == [*ORDER, NEW]
    assert [t.get_text() for t in ax.get_xticklabels()] == [*ORDER, GONE]
    texts = {t.get_text() for t in ax.texts}
    assert {"1\n50%", "1\n100%"} <= texts
    from matplotlib.figure import Figure

    given_ax = Figure().add_subplot()
    assert m.plot_heatmap(ax=given_ax) is given_ax


def test_plot_heatmap_leaves_out_segments_empty_in_both_runs(current, previous):
    m = migrate(current, previous, WEEK2, order=[*ORDER, "Other"])
    assert "Other" in m.matrix.index
    labels = [t.get_text() for t in m.plot_heatmap().get_yticklabels()]
    assert "Other" not in labels


# ----------------------------------------------------------------- find_previous_run


def _run(folder, complete=True):
    folder.mkdir(parents=True)
    (folder / "customers.parquet").write_bytes(b"")
    if complete:
        (folder / "manifest.json").write_text("{}")


@pytest.mark.parametrize("as_of", ["2025-12-29", D(2025, 12, 29)])
def test_find_previous_run_skips_incomplete_later_and_odd_folders(tmp_path, as_of):
    _run(tmp_path / "2025-12-08")
    _run(tmp_path / "2025-12-15")
    _run(tmp_path / "2025-12-22", complete=False)   # no manifest: still being written
    _run(tmp_path / "2025-12-29")                    # the run itself
    _run(tmp_path / "2026-01-05")                    # later
    _run(tmp_path / "latest")                        # not a date
    _run(tmp_path / "2025-12-28-backup")             # not exactly a date
    _run(tmp_path / "20251227")                      # basic ISO format: not a run name
    _run(tmp_path / "2025-12-32")                    # not a real date
    (tmp_path / "2025-12-26").write_text("a file")   # not a folder
    assert find_previous_run(tmp_path, as_of) == tmp_path / "2025-12-15"


def test_find_previous_run_without_runs(tmp_path):
    assert find_previous_run(tmp_path / "missing", "2025-12-29") is None
    _run(tmp_path / "2025-12-29")
    assert find_previous_run(tmp_path, "2025-12-29") is None


# ----------------------------------------------------------------- triggers


def test_default_triggers(current, previous):
    lists = trigger_lists(migrate(current, previous, WEEK2, order=ORDER))
    assert set(lists) == set(DEFAULT_TRIGGERS)
    at_risk, champions = lists["entered_at_risk"], lists["became_champion"]
    assert list(at_risk.columns) == TRIGGER_COLUMNS  # no email: internal lists
    expected = pd.DataFrame({
        "customer_id": ["b", "f"], "segment": ["at_risk", "at_risk"],
        "previous_segment": ["champions", np.nan], "recency_days": [70, 90],
        "frequency": [4, 2], "monetary": [150.0, 45.0]})
    pd.testing.assert_frame_equal(at_risk, expected)
    assert champions.customer_id.tolist() == ["c", "g"]
    assert champions.previous_segment.tolist()[0] == "loyal_customers"
    assert not any("@" in str(v) for frame in lists.values() for v in frame.to_numpy().ravel())


def test_custom_triggers(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    lists = trigger_lists(m, {"lost_a_champion": "at_risk", "sleepers": "hibernating"})
    assert lists["lost_a_champion"].customer_id.tolist() == ["b", "f"]
    assert lists["sleepers"].empty and list(lists["sleepers"].columns) == TRIGGER_COLUMNS


def test_trigger_with_unknown_segment_is_refused(current, previous):
    m = migrate(current, previous, WEEK2, order=ORDER)
    with pytest.raises(ConfigError, match=r"Trigger 'x' names segment 'At Risk'.*known segments: "
                                          r"'champions', 'loyal_customers'"):
        trigger_lists(m, {"x": "At Risk"})


def test_default_triggers_skip_segments_the_rule_set_lacks(current):
    seed = current.assign(segment=["VIP", "Loyal", "VIP", "Other", "Other", "Potential"])
    m = migrate(seed, None, WEEK2, order=["VIP", "Loyal", "Potential", "Other"])
    assert trigger_lists(m) == {}


# ----------------------------------------------------------------- invariants


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    before=st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(["x", "y", "z"])),
    after=st.dictionaries(st.sampled_from("abcdefgh"), st.sampled_from(["x", "y", "z"]),
                          min_size=1),
)
def test_matrix_margins_match_both_runs(before, after):
    previous = pd.DataFrame({"customer_id": list(before), "segment": list(before.values())})
    current = pd.DataFrame({"customer_id": list(after), "segment": list(after.values())})
    m = migrate(current, previous, WEEK2, order=["x", "y", "z"])
    rows = m.matrix.sum(axis=1).drop(NEW)
    cols = m.matrix.sum(axis=0).drop(GONE)
    assert rows.to_dict() == {s: list(before.values()).count(s) for s in "xyz"}
    assert cols.to_dict() == {s: list(after.values()).count(s) for s in "xyz"}
    assert m.matrix.to_numpy().sum() == len(set(before) | set(after))
    assert m.n_new == len(set(after) - set(before))
    assert m.n_gone == len(set(before) - set(after))


def test_unreadable_segment_since_is_refused(current, previous):
    broken = previous.assign(segment_since=["soon"] * 5)
    with pytest.raises(InputError, match=r"previous customer table, row 1, column "
                                         r"'segment_since': got 'soon', expected a date"):
        migrate(current, broken, WEEK2)
