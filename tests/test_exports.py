import csv
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns import exports
from rfm_engine.campaigns.exports import (
    LAYOUT_COLUMNS,
    LAYOUTS,
    export_frame,
    export_writers,
    formula_cells,
    overlong_first_names,
    split_for_layout,
)
from rfm_engine.errors import ConfigError, InputError
from rfm_engine.io import writers
from rfm_engine.io.identifiers import is_valid_email
from rfm_engine.io.writers import table_writer, write_all, write_csv, write_table


@pytest.fixture
def targets() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["c2", "c1", "c3"],
        "email": ["Bea@Example.com", " al@example.com", "cy@example.org"],
        "first_name": ["Bea", "Al", None],
        "segment": ["Champions", "Champions", "Can't Lose Them"],
        "campaign": ["retention_champions"] * 3,
        "campaign_type": ["retention"] * 3,
        "channel": ["email"] * 3,
        "group": ["treatment"] * 3,
        "recency": [3, 10, 200],
        "suggestions": ["socks, hats", "mugs", None],
    })


EXPECTED_HEADERS = {
    "generic": "customer_id,email,first_name,segment,campaign,suggestions",
    "mailchimp": "Email Address,First Name,Tags,suggestions",
    "klaviyo": ("Email Address,First Name,customer_id,rfm_segment,campaign,previous_segment,"
                "segment_since,suggestions"),
    "hubspot": ("Email,First Name,customer_id,rfm_segment,campaign,previous_segment,"
                "segment_since,suggestions"),
    "braze": ("external_id,email,first_name,rfm_segment,campaign,previous_segment,"
              "segment_since,suggestions"),
}


def test_layouts_are_the_documented_five():
    assert LAYOUTS == ("generic", "mailchimp", "klaviyo", "hubspot", "braze")
    assert set(LAYOUT_COLUMNS) == set(LAYOUTS)
    for layout, header in EXPECTED_HEADERS.items():
        assert header.startswith(",".join(LAYOUT_COLUMNS[layout]))
        assert f"``{LAYOUT_COLUMNS[layout][0]}``" in exports.__doc__


@pytest.mark.parametrize("layout", LAYOUTS)
def test_written_header_per_layout(tmp_path, targets, layout):
    (path,) = write_all(export_writers("retention_champions", targets, layout, tmp_path))
    assert path == tmp_path / "retention_champions.csv"
    assert path.read_text().split("\n")[0] == EXPECTED_HEADERS[layout]


def test_generic_file_spelled_out(tmp_path, targets):
    (path,) = write_all(export_writers("retention_champions", targets, "generic", tmp_path))
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r" not in raw
    assert raw.decode() == (
        "customer_id,email,first_name,segment,campaign,suggestions\n"
        'c1,al@example.com,Al,Champions,retention_champions,mugs\n'
        'c2,bea@example.com,Bea,Champions,retention_champions,"socks, hats"\n'
        "c3,cy@example.org,,Can't Lose Them,retention_champions,\n"
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_lone_carriage_return_is_quoted_and_reads_back_as_one_row(tmp_path, targets, layout):
    """Excel and ESP importers end a row at a bare CR: every CSV quotes such a field."""
    targets["first_name"] = ["Bea\rAnn", "Al", None]
    targets["suggestions"] = ["socks\r", "mugs\r\nhats", None]
    (path,) = write_all(export_writers("retention_champions", targets, layout, tmp_path))
    raw = path.read_bytes()
    assert b'"Bea\rAnn"' in raw and b'"socks\r"' in raw and b'"mugs\r\nhats"' in raw
    assert raw.count(b"\n") == 4 + 1  # header and 3 rows end in LF; one LF inside quotes
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 4 and {len(r) for r in rows} == {len(rows[0])}
    assert "Bea\rAnn" in rows[2] and "socks\r" in rows[2] and "mugs\r\nhats" in rows[1]
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(back) == 3 and (back == "Bea\rAnn").any(axis=None)


def test_every_csv_writer_quotes_a_lone_carriage_return(tmp_path):
    frame = pd.DataFrame({"id": ["a\rb", "c"], "n": [1.5, 2.0]})
    for path in (write_table(frame, tmp_path / "t.csv"),
                 write_all({tmp_path / "u.csv": table_writer(frame, ".csv")})[0]):
        assert path.read_bytes() == b'id,n\n"a\rb",1.5\nc,2.0\n'
        pd.testing.assert_frame_equal(pd.read_csv(path), frame)


def test_mailchimp_tags_in_one_quoted_cell(tmp_path, targets):
    (path,) = write_all(export_writers("retention_champions", targets, "mailchimp", tmp_path))
    assert path.read_text().split("\n")[1:3] == [
        'al@example.com,Al,"rfm:champions,campaign:retention_champions",mugs',
        'bea@example.com,Bea,"rfm:champions,campaign:retention_champions","socks, hats"',
    ]
    frame = export_frame(targets, "mailchimp")
    assert frame["Tags"].tolist()[2] == "rfm:cant_lose_them,campaign:retention_champions"


def test_mailchimp_tag_over_100_characters(targets):
    long = targets.assign(campaign="x" * 92)
    with pytest.raises(ConfigError, match=r"has 101 characters; Mailchimp allows 100"):
        export_frame(long, "mailchimp")
    assert len(export_frame(targets.assign(campaign="x" * 91), "mailchimp")) == 3


def test_rows_sorted_and_output_deterministic(tmp_path, targets):
    shuffled = targets.sample(frac=1, random_state=0).set_index(pd.Index([7, 3, 5]))
    (a,) = write_all(export_writers("x", targets, "braze", tmp_path / "a"))
    (b,) = write_all(export_writers("x", shuffled, "braze", tmp_path / "b"))
    assert a.read_bytes() == b.read_bytes()
    assert [line.split(",")[0] for line in a.read_text().splitlines()[1:]] == ["c1", "c2", "c3"]


def test_export_frame_keeps_index_and_does_not_mutate(targets):
    before = targets.copy()
    frame = export_frame(targets.set_index(pd.Index([10, 11, 12])), "klaviyo")
    assert frame.index.tolist() == [10, 11, 12]
    assert frame["Email Address"].tolist() == ["bea@example.com", "al@example.com",
                                               "cy@example.org"]
    pd.testing.assert_frame_equal(targets, before)


def test_extras_default_explicit_missing_and_clash(targets):
    assert list(export_frame(targets.drop(columns="suggestions"), "generic").columns) == [
        "customer_id", "email", "first_name", "segment", "campaign"]
    frame = export_frame(targets, "hubspot", extra_columns=["recency", "channel"])
    assert frame.columns.tolist()[-2:] == ["recency", "channel"]
    assert frame["recency"].tolist() == ["3", "10", "200"]  # plain string properties
    assert export_frame(targets, "generic", extra_columns=["recency"])["recency"].tolist() == [
        3, 10, 200]
    with pytest.raises(InputError, match=r"extra column\(s\) 'nope' not found"):
        export_frame(targets, "generic", extra_columns=["nope"])
    with pytest.raises(ConfigError, match=r"'campaign' clash with the braze layout"):
        export_frame(targets, "braze", extra_columns=["campaign"])


def test_braze_has_no_arrays(targets):
    listy = targets.assign(suggestions=[["socks", "hats"], np.array(["mugs"]), None])
    frame = export_frame(listy, "braze")
    assert frame["suggestions"].iloc[:2].tolist() == ["socks|hats", "mugs"]
    assert pd.isna(frame["suggestions"].iloc[2])


@pytest.mark.parametrize("layout", ["mailchimp", "klaviyo", "hubspot"])
def test_email_keyed_layouts_refuse_rows_without_email(targets, layout):
    no_mail = targets.assign(email=["a@x.org", "  ", None])
    with pytest.raises(InputError, match=rf"2 row\(s\) without an email \(first: customer_id "
                                         rf"'c1'\); the {layout} layout is keyed by email"):
        export_frame(no_mail, layout)


@pytest.mark.parametrize("layout", ["generic", "braze"])
def test_id_keyed_layouts_accept_rows_without_email(targets, layout):
    frame = export_frame(targets.drop(columns="email"), layout)
    assert frame["email"].isna().all()


def test_bad_parameters(targets):
    with pytest.raises(ConfigError, match=r"The 'layout' parameter must be one of generic, "
                                          r"mailchimp, klaviyo, hubspot, braze\. Got 'csv'"):
        export_frame(targets, "csv")
    with pytest.raises(InputError, match=r"missing column\(s\) 'segment'; available: "):
        export_frame(targets.drop(columns="segment"), "generic")
    with pytest.raises(InputError, match=r"row 2: missing customer_id"):
        export_frame(targets.assign(customer_id=["a", " ", "c"]), "generic")
    with pytest.raises(ConfigError, match=r"Campaign name '\.\./x' cannot be a file name"):
        export_writers("../x", targets, "generic", "out")


# --- formula guard -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=1+1", " +A1", "@SUM(A1:A2)", "\t=", "-2+3", "\r=1", "\nx",
                                  "  =HYPERLINK(\"x\")", "\uff1d1+1"])
def test_formula_cells_caught(cell):
    frame = pd.DataFrame({"first_name": ["Ann", cell], "n": [1, 2]})
    assert formula_cells(frame).tolist() == [False, True]


@pytest.mark.parametrize("cell", ["Jo-Ann", "ann@example.com", "rfm:a,campaign:b", "", None,
                                  "O'Neil", "1+1"])
def test_formula_cells_ignores_safe_text(cell):
    assert formula_cells(pd.DataFrame({"first_name": [cell]})).tolist() == [False]


def test_formula_cells_only_text_cells():
    frame = pd.DataFrame({"score": [-5, 2], "ratio": [-0.5, 1.0],
                          "mixed": [-3, "ok"], "cat": pd.Categorical(["@x", "y"])})
    assert formula_cells(frame).tolist() == [True, False]


def test_quarantine_flow_and_refusal(tmp_path, targets):
    dirty = targets.assign(first_name=["Bea", "=cmd|' /C calc'!A0", None])
    with pytest.raises(InputError, match=r"1 row\(s\) have a cell a spreadsheet would run as "
                                         r"a formula \(first: customer_id 'c1', column "
                                         r"'First Name'\)"):
        export_writers("x", dirty, "hubspot", tmp_path)
    bad = formula_cells(export_frame(dirty, "hubspot"))
    assert bad.tolist() == [False, True, False]
    (path,) = write_all(export_writers("x", dirty[~bad], "hubspot", tmp_path))
    assert "cmd" not in path.read_text()


# --- HubSpot row limit ---------------------------------------------------------------------

def test_hubspot_limits_are_the_documented_ones():
    # knowledge.hubspot.com "Set up import files": 1,048,576 rows per file (paid), 20 MB
    # (free tools); Klaviyo 50 MB per upload; Braze 500 MB per attribute import.
    assert exports.HUBSPOT_MAX_ROWS == 1_048_576
    assert exports.FILE_LIMITS == {"generic": None, "mailchimp": None, "klaviyo": 50_000_000,
                                   "hubspot": 20_000_000, "braze": 500_000_000}


def test_hubspot_split_with_small_limit(tmp_path, targets, monkeypatch):
    monkeypatch.setattr(exports, "HUBSPOT_MAX_ROWS", 3)
    five = pd.concat([targets, targets.assign(customer_id=["c5", "c4", "c0"])])
    five = five.iloc[:5]
    parts = split_for_layout(export_frame(five, "hubspot"), "hubspot")
    assert [len(p) for p in parts] == [2, 2, 1]
    assert [len(p) for p in split_for_layout(export_frame(five, "braze"), "braze")] == [5]
    assert [len(p) for p in split_for_layout(export_frame(five.iloc[:2], "hubspot"),
                                             "hubspot")] == [2]
    paths = write_all(export_writers("winback", five, "hubspot", tmp_path))
    assert [p.name for p in paths] == ["winback.part1.csv", "winback.part2.csv",
                                       "winback.part3.csv"]
    ids = []
    for path in paths:
        lines = path.read_text().splitlines()
        assert lines[0] == EXPECTED_HEADERS["hubspot"]
        assert len(lines) - 1 < 3
        ids += [line.split(",")[2] for line in lines[1:]]
    assert ids == ["c1", "c2", "c3", "c4", "c5"]


_TRICKY = st.text(alphabet=[",", '"', "\r", "\n", " ", "a", "é", "=", "\t"], max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _TRICKY), _TRICKY), max_size=8),
       st.sampled_from(["str", "object"]))
def test_text_tables_are_written_exactly_as_the_csv_module_writes_them(rows, dtype):
    # Text tables (the campaign lists) are built column-wise; every other table goes through
    # pandas and the csv module: both must give the same bytes.
    frame = pd.DataFrame(rows, columns=["a,b", "c"]).astype(dtype)
    fast, slow = io.StringIO(), io.StringIO()
    write_csv(frame, fast)
    frame.to_csv(writers._RowsEndInLineFeed(slow), index=False, lineterminator="\r\n")
    assert fast.getvalue() == slow.getvalue()
    assert (writers._text_rows(frame) is not None) == (len(frame) > 0)  # the fast path


def test_text_tables_take_the_column_wise_path():
    frame = pd.DataFrame({"id": ["a\rb", "c", None], "note": ['say "hi"', "x,y", ""]})
    assert writers._text_rows(frame) is not None
    assert writers._text_rows(frame.assign(n=1.5)) is None  # numbers: pandas formats them
    out = io.StringIO()
    write_csv(frame, out)
    assert out.getvalue() == 'id,note\n"a\rb","say ""hi"""\nc,"x,y"\n,\n'


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.dates()), st.one_of(st.none(), _TRICKY),
                          st.floats(allow_nan=False, allow_infinity=False)), max_size=8))
def test_arrow_columns_are_written_as_their_python_values(rows):
    # The customer table keeps dates (and may keep text) in Arrow columns; the CSV holds
    # what the same values as Python objects give: ISO dates, the text, empty for missing.
    objects = pd.DataFrame(rows, columns=["day", "note", "n"], dtype=object)
    objects["n"] = objects["n"].astype(float)
    arrow = objects.astype({"day": pd.ArrowDtype(pa.date32()),
                            "note": pd.ArrowDtype(pa.string())})
    fast, slow = io.StringIO(), io.StringIO()
    write_csv(arrow, fast)
    objects.to_csv(writers._RowsEndInLineFeed(slow), index=False, lineterminator="\r\n")
    assert fast.getvalue() == slow.getvalue()


# --- Per layout: what each tool accepts (issue 14) -----------------------------------------

def test_mailchimp_refuses_non_ascii_before_the_at(targets):
    # Mailchimp cannot process UTF-8 characters in an address's prefix; the domain may have them.
    emails = pd.Series(["zoë@example.com", "zoe@exämple.com", "zoe@example.com"])
    assert is_valid_email(emails).tolist() == [True, True, True]
    assert is_valid_email(emails, "mailchimp").tolist() == [False, True, True]
    for layout in ("generic", "klaviyo", "hubspot", "braze"):
        assert is_valid_email(emails, layout).tolist() == [True, True, True]
    zoe = targets.assign(email=["zoë@example.com", "al@example.com", "cy@example.org"])
    with pytest.raises(InputError, match=r"1 address\(es\) the mailchimp tool refuses "
                                         r"\(first: customer_id 'c2'"):
        export_frame(zoe, "mailchimp")
    assert export_frame(zoe, "klaviyo")["Email Address"].iloc[0] == "zoë@example.com"


def test_hubspot_and_klaviyo_split_by_bytes_as_written(tmp_path, targets):
    many = pd.concat([targets.assign(customer_id=[f"c{i:03d}a", f"c{i:03d}b", f"c{i:03d}c"])
                      for i in range(40)], ignore_index=True)  # 120 rows
    whole = write_all(export_writers("big", many, "klaviyo", tmp_path / "one"))
    size = whole[0].stat().st_size
    limit = size // 3
    paths = write_all(export_writers("big", many, "klaviyo", tmp_path / "parts",
                                     max_bytes=limit))
    assert len(paths) >= 3 and all(p.stat().st_size <= limit for p in paths)
    lines = [p.read_text().splitlines() for p in paths]
    assert all(part[0] == EXPECTED_HEADERS["klaviyo"] for part in lines)
    assert [row for part in lines for row in part[1:]] == whole[0].read_text().splitlines()[1:]
    rows = split_for_layout(export_frame(many, "hubspot"), "hubspot", max_rows=50)
    assert [len(p) for p in rows] == [50, 50, 20]
    with pytest.raises(InputError, match=r"Row 1 of the list takes \d+ bytes"):
        split_for_layout(export_frame(many, "hubspot"), "hubspot", max_bytes=60)


def test_overlong_text_first_names_flagged_list_values_cut(targets):
    long_name = targets.assign(first_name=["B" * 256, "Al", None])
    assert overlong_first_names(long_name, "braze").tolist() == [True, False, False]
    assert overlong_first_names(long_name, "hubspot").tolist() == [False, False, False]
    with pytest.raises(InputError, match=r"1 first name\(s\) longer than the 255 characters "
                                         r"mailchimp keeps \(first: customer_id 'c2'\)"):
        export_frame(long_name, "mailchimp")
    items = "|".join(f"item{i:03d}" for i in range(40))  # 319 characters
    cut = export_frame(targets.assign(suggestions=[items, "mugs", None]), "braze")
    kept = cut["suggestions"].iloc[0]
    assert len(kept) <= 255 and items.startswith(kept + "|") and kept.endswith("item031")
    assert export_frame(targets.assign(suggestions=[items, "mugs", None]),
                        "klaviyo")["suggestions"].iloc[0] == items
    with pytest.raises(ConfigError, match=r"campaign name .* has 300 characters; braze keeps"):
        export_frame(targets.assign(campaign="c" * 300), "braze")


def test_segment_change_exported_as_profile_properties(targets):
    moved = targets.assign(previous_segment=["Loyal", None, "At Risk"],
                           segment_since=pd.to_datetime(["2025-12-31", "2025-06-30",
                                                         "2025-01-07"]).date)
    for layout in ("klaviyo", "hubspot", "braze"):
        frame = export_frame(moved, layout)
        assert frame["previous_segment"].tolist()[::2] == ["Loyal", "At Risk"]
        assert pd.isna(frame["previous_segment"].iloc[1])
        assert frame["segment_since"].tolist() == ["2025-12-31", "2025-06-30", "2025-01-07"]
    assert "previous_segment" not in export_frame(moved, "mailchimp")
    assert "previous_segment" not in export_frame(moved, "generic")
