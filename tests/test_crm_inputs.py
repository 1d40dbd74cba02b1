"""Optional CRM inputs: schemas, the validating reader, the KPIs and the sample generator."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns.plan import DEFAULT_PLAN
from rfm_engine.datasets.sample_data import (
    CRM_INPUT_KINDS,
    generate_crm_inputs,
    generate_transactions,
    write_crm_inputs,
)
from rfm_engine.errors import ConfigError, DataError, InputError, MissingColumnsError
from rfm_engine.io.crm_inputs import INPUT_KINDS, INPUT_SCHEMAS, InputTable, read_input
from rfm_engine.measurement.crm_kpis import (
    cac,
    ces,
    clv_to_cac,
    csat,
    email_rates,
    first_contact_resolution,
    lead_conversion,
    nps,
    renewal_rate,
    sales_cycle,
)

# One valid row per kind, as text (the way a CSV holds it). Id columns get the row number
# appended so that keys stay unique over several rows.
VALID = {
    "costs": {"period": "2024-01", "channel": "search", "costs": "10.50"},
    "surveys": {"response_id": "r", "customer_id": "c1", "date": "2024-01-05",
                "survey": "nps", "score": "9"},
    "tickets": {"ticket_id": "t", "customer_id": "c1", "opened_at": "2024-01-05 10:00",
                "resolved_at": "2024-01-05 12:00", "contacts": "1"},
    "leads": {"lead_id": "l", "created_at": "2024-01-05", "won_at": "2024-01-20",
              "lost_at": "", "customer_id": "c1"},
    "subscriptions": {"subscription_id": "s", "customer_id": "c1", "period_end": "2024-01-31",
                      "renewed": "true"},
    "email_events": {"campaign": "spring", "customer_id": "c1", "email": "ann@example.com",
                     "event": "open", "timestamp": "2024-01-05T10:00:00Z"},
}
KEYS = {"surveys": "response_id", "tickets": "ticket_id", "leads": "lead_id",
        "subscriptions": "subscription_id"}


def rows(kind, n=3, **row2):
    """``n`` valid rows of ``kind`` with the values of ``row2`` on the second row."""
    out = []
    for i in range(1, n + 1):
        row = dict(VALID[kind])
        if kind in KEYS:
            row[KEYS[kind]] += str(i)
        if i == 2:
            row.update(row2)
        out.append(row)
    return pd.DataFrame(out, dtype="str")


def write_csv(path, frame):
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


# --- schemas and the reader --------------------------------------------------------------------

def test_every_kind_has_a_documented_schema():
    assert INPUT_KINDS == CRM_INPUT_KINDS == tuple(VALID)
    for kind, schema in INPUT_SCHEMAS.items():
        assert [c for c in schema if c in VALID[kind]] == list(VALID[kind]), kind
        assert all(field.meaning for field in schema.values())


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_valid_csv_reads_without_drops(tmp_path, kind):
    path = write_csv(tmp_path / f"{kind}.csv", rows(kind))
    table = read_input(kind, path)
    assert isinstance(table, InputTable)
    assert (table.source, table.rows_read, table.rows_dropped) == (str(path), 3, 0)
    assert list(table.frame.columns) == list(VALID[kind])
    assert table.columns == {c: c for c in VALID[kind]}


BAD_VALUES = [
    ("costs", "period", "March 2024", "a month 'YYYY-MM', a quarter 'YYYY-Qn' or an ISO"),
    ("costs", "costs", "-1", "a finite number >= 0"),
    ("costs", "costs", "12,50", "a finite number >= 0"),
    ("surveys", "response_id", "", "a non-empty id"),
    ("surveys", "date", "05/01/2024", "an ISO 8601 date or timestamp"),
    ("surveys", "survey", "sms", "one of 'nps', 'csat', 'ces'"),
    ("surveys", "score", "abc", "an integer"),
    ("surveys", "score", "8.5", "an integer"),
    ("surveys", "score", "11", "an integer from 0 to 10 for survey 'nps'"),
    ("tickets", "customer_id", "", "a non-empty id"),
    ("tickets", "opened_at", "yesterday", "an ISO 8601 date or timestamp"),
    ("tickets", "resolved_at", "2024-01-01", "a timestamp not before opened_at"),
    ("tickets", "contacts", "0", "an integer >= 1"),
    ("leads", "created_at", "2024-13-01", "an ISO 8601 date or timestamp"),
    ("leads", "won_at", "soon", "an ISO 8601 date or timestamp"),
    ("leads", "lost_at", "2024-01-25", "an empty cell: a lead is won or lost, not both"),
    ("subscriptions", "period_end", "31/01/2024", "an ISO 8601 date or timestamp"),
    ("subscriptions", "renewed", "maybe", "true or false"),
    ("email_events", "campaign", "", "a non-empty value"),
    ("email_events", "event", "opened", "one of 'delivered', 'open', 'click', 'bounce'"),
    ("email_events", "timestamp", "noon", "an ISO 8601 date or timestamp"),
]


@pytest.mark.parametrize(("kind", "column", "value", "expected"), BAD_VALUES)
def test_a_malformed_value_names_file_row_column_value_and_expectation(
    tmp_path, kind, column, value, expected
):
    path = write_csv(tmp_path / "input.csv", rows(kind, **{column: value}))
    got = f"'{value}'" if value else "an empty value"
    message = f"{path}, row 2, column '{column}': got {got}, expected {expected}"
    with pytest.raises(DataError, match=re.escape(message)) as info:
        read_input(kind, path)
    assert info.value.row == 2 and info.value.column == column
    assert info.type.exit_code == 2


@pytest.mark.parametrize(("kind", "column", "value", "expected"), BAD_VALUES)
def test_drop_mode_drops_and_counts_each_bad_row(tmp_path, kind, column, value, expected):
    path = write_csv(tmp_path / "input.csv", rows(kind, n=4, **{column: value}))
    table = read_input(kind, path, on_bad_rows="drop")
    assert (table.rows_read, table.rows_dropped, table.bad_values) == (4, 1, {column: 1})
    assert len(table.frame) == 3
    assert table.frame.index.equals(pd.RangeIndex(3))


def test_errors_name_the_source_column_of_a_mapping(tmp_path):
    frame = rows("costs", costs="lots").rename(columns={"costs": "Spend (GBP)",
                                                       "period": "Month"})
    path = write_csv(tmp_path / "costs.csv", frame)
    with pytest.raises(DataError, match=re.escape("row 2, column 'Spend (GBP)': got 'lots'")):
        read_input("costs", path, columns={"costs": "Spend (GBP)", "period": "Month"})
    table = read_input("costs", path, columns={"costs": "Spend (GBP)", "period": "Month"},
                       on_bad_rows="drop")
    assert table.bad_values == {"Spend (GBP)": 1}
    assert list(table.frame.columns) == ["period", "channel", "costs"]


def test_the_first_bad_value_in_row_order_is_reported():
    frame = rows("surveys", n=4)
    frame.loc[3, "date"] = "nope"
    frame.loc[1, "score"] = "12"
    with pytest.raises(DataError, match=r"DataFrame, row 2, column 'score': got '12'"):
        read_input("surveys", frame)


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_missing_columns_are_listed_with_the_available_ones(kind):
    required = [c for c, f in INPUT_SCHEMAS[kind].items() if f.required and f.group is None]
    frame = rows(kind).drop(columns=required[:1])
    available = ", ".join(repr(c) for c in frame.columns)
    with pytest.raises(MissingColumnsError,
                       match=re.escape(f"DataFrame: missing column(s) {required[0]!r}; "
                                       f"available: {available}")):
        read_input(kind, frame)


@pytest.mark.parametrize(("kind", "group"), [("tickets", ["contacts", "resolved_first_contact"]),
                                             ("email_events", ["customer_id", "email"])])
def test_one_column_of_a_group_is_needed(kind, group):
    frame = rows(kind).drop(columns=[c for c in group if c in VALID[kind]])
    with pytest.raises(MissingColumnsError, match=f"'{group[0]} or {group[1]}'"):
        read_input(kind, frame)
    alternative = rows(kind).assign(**{group[1]: "true"} if kind == "tickets" else {})
    assert len(read_input(kind, alternative.drop(columns=group[0])).frame) == 3


def test_a_mapped_column_must_exist():
    with pytest.raises(MissingColumnsError, match=r"missing column\(s\) 'Spend'"):
        read_input("costs", rows("costs"), columns={"costs": "Spend"})


def test_drop_mode_counts_per_column_and_keeps_the_valid_rows():
    frame = pd.DataFrame({"period": ["2024-01", "2024-02", "bad", "2024-04", "2024-05"],
                          "costs": ["1", "-2", "3", "x", "5"]})
    table = read_input("costs", frame, on_bad_rows="drop", max_drop_fraction=0.6)
    assert (table.rows_read, table.rows_dropped) == (5, 3)
    assert table.bad_values == {"period": 1, "costs": 2}
    assert table.frame["costs"].tolist() == [1.0, 5.0]
    assert table.frame["period"].astype(str).tolist() == ["2024-01", "2024-05"]


def test_too_many_dropped_rows_fail():
    frame = pd.DataFrame({"period": ["2024-01", "x", "y"], "costs": [1, 2, 3]})
    with pytest.raises(InputError, match=r"2 of 3 rows would be dropped \(67% > "
                                         r"max_drop_fraction 50%\): bad values in 'period' 2"):
        read_input("costs", frame, on_bad_rows="drop")
    table = read_input("costs", frame, on_bad_rows="drop", max_drop_fraction=0.7)
    assert table.rows_dropped == 2


# --- survey ranges ---------------------------------------------------------------------------

@pytest.mark.parametrize(("survey", "score", "ok"), [
    ("nps", "0", True), ("nps", "10", True), ("nps", "11", False), ("nps", "-1", False),
    ("csat", "1", True), ("csat", "5", True), ("csat", "0", False), ("csat", "6", False),
    ("ces", "1", True), ("ces", "7", True), ("ces", "8", False), ("ces", "0", False),
])
def test_scores_are_checked_against_the_scale_of_their_survey(survey, score, ok):
    frame = rows("surveys", survey=survey, score=score)
    if ok:
        assert read_input("surveys", frame).frame["score"].tolist()[1] == int(score)
    else:
        with pytest.raises(DataError, match=re.escape(
                f"row 2, column 'score': got '{score}', expected an integer from")):
            read_input("surveys", frame)


def test_survey_types_and_booleans_are_read_case_insensitively():
    frame = rows("surveys", survey=" CSAT ", score="4")
    assert read_input("surveys", frame).frame["survey"].tolist() == ["nps", "csat", "nps"]
    subs = pd.DataFrame({"subscription_id": list("abcdef"), "customer_id": "c",
                         "period_end": "2024-01-31",
                         "renewed": ["TRUE", "no", "1", "0", "Y", ""]})
    renewed = read_input("subscriptions", subs).frame["renewed"]
    assert renewed.tolist()[:5] == [True, False, True, False, True]
    assert renewed.isna().tolist() == [False] * 5 + [True]


# --- privacy -------------------------------------------------------------------------------------

SECRET = "Jane.Doe@Example.com"


@pytest.mark.parametrize("bad", ["jane doe@shop.test", "jane@", "@shop.test",
                                 "a@b@shop.test", "jane@localhost"])
def test_an_invalid_email_is_never_echoed(tmp_path, bad):
    path = write_csv(tmp_path / "events.csv", rows("email_events", email=bad))
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'email': got '<an email address>', expected an email address")) as e:
        read_input("email_events", path)
    assert bad not in str(e.value) and e.value.value == "<an email address>"


def test_errors_about_other_columns_show_no_email(tmp_path):
    frame = rows("email_events", email=SECRET, event="bounced", campaign="x")
    with pytest.raises(DataError, match="column 'event': got 'bounced'") as e:
        read_input("email_events", frame)
    assert "@" not in str(e.value)
    frame = frame.rename(columns={"email": SECRET})  # a header-less export: an address as header
    with pytest.raises(MissingColumnsError, match="available: .*'<an email address>'") as e:
        read_input("email_events", frame.drop(columns="customer_id"))
    assert SECRET not in str(e.value)
    with pytest.raises(InputError) as e:
        read_input("email_events", rows("email_events", n=2, email="bad@"),
                   on_bad_rows="drop", max_drop_fraction=0.1)
    assert "bad@" not in str(e.value)


def test_emails_are_normalized():
    frame = read_input("email_events", rows("email_events", email=f"  {SECRET} ")).frame
    assert frame["email"].tolist()[1] == SECRET.lower()


# --- dates, ids, keys, periods --------------------------------------------------------------------

def test_dates_are_iso_8601_with_offsets_converted_to_utc_never_guessed():
    frame = rows("leads", created_at="2024-03-05T14:30:00+01:00", won_at="2024-03-06")
    created = read_input("leads", frame).frame["created_at"]
    assert created[1] == pd.Timestamp("2024-03-05 13:30")
    assert str(created.dtype) == "datetime64[us]"
    ambiguous = rows("leads", created_at="03/04/2024", won_at="")
    with pytest.raises(DataError, match="day/month order is never guessed"):
        read_input("leads", ambiguous)
    day_first = pd.DataFrame({"lead_id": ["1", "2"], "created_at": ["03/04/2024", "13/04/2024"]})
    table = read_input("leads", day_first, date_format="%d/%m/%Y")
    assert table.frame["created_at"].tolist() == [pd.Timestamp("2024-04-03"),
                                                  pd.Timestamp("2024-04-13")]
    with pytest.raises(DataError, match=r"got '2024-04-03', expected a date in the format "
                                        r"'%d/%m/%Y'"):
        read_input("leads", day_first.assign(created_at=["2024-04-03", "x"]),
                   date_format="%d/%m/%Y")


def test_ids_are_text_like_transaction_customer_ids():
    frame = pd.DataFrame({"subscription_id": [" 007 ", "17850.0"], "customer_id": [12, 13],
                          "period_end": ["2024-01-31", "2024-01-31"], "renewed": [True, False]})
    out = read_input("subscriptions", frame).frame
    assert out["subscription_id"].tolist() == ["007", "17850"]
    assert out["customer_id"].tolist() == ["12", "13"]


def test_a_repeated_key_is_an_error_or_dropped():
    frame = rows("tickets", ticket_id="t1")
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'ticket_id': got 't1', expected a unique ticket_id (row 1 has the "
            "same)")):
        read_input("tickets", frame)
    assert read_input("tickets", frame, on_bad_rows="drop").frame["ticket_id"].tolist() == [
        "t1", "t3"]
    terms = pd.DataFrame({"subscription_id": ["s", "s", "s"], "customer_id": "c",
                          "period_end": ["2024-01-31", "2024-02-29", "2024-01-31T00:00:00Z"],
                          "renewed": "true"})
    with pytest.raises(DataError, match=re.escape(
            "row 3, column 'subscription_id': got 's', expected a unique (subscription_id, "
            "period_end) (row 1 has the same)")):
        read_input("subscriptions", terms)


def test_periods_are_months_quarters_or_dates_of_one_kind():
    months = read_input("costs", pd.DataFrame({"period": ["2024-01", "2024-02"],
                                               "costs": [1, 2]})).frame
    assert str(months["period"].dtype) == "period[M]"
    quarters = read_input("costs", pd.DataFrame({"period": ["2024-Q1", "2024q2"],
                                                 "costs": [1, 2]})).frame
    assert quarters["period"].astype(str).tolist() == ["2024Q1", "2024Q2"]
    days = read_input("costs", pd.DataFrame({"period": ["2024-01-05"], "costs": [1]})).frame
    assert str(days["period"].dtype) == "period[D]"
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'period': got '2024-Q1', expected a month 'YYYY-MM' like the first "
            "period '2024-01' (one kind of period per file)")):
        read_input("costs", pd.DataFrame({"period": ["2024-01", "2024-Q1"], "costs": [1, 2]}))


def test_ticket_flags_must_agree_and_resolved_tickets_need_one():
    both = rows("tickets").assign(resolved_first_contact=["true", "true", "false"],
                                  contacts=["1", "2", "3"])
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'resolved_first_contact': got 'true', expected true exactly when "
            "contacts is 1 (contacts is 2)")):
        read_input("tickets", both)
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'contacts': got an empty value, "
            "expected a value for a resolved ticket")):
        read_input("tickets", rows("tickets", contacts=""))
    assert len(read_input("tickets", rows("tickets", contacts="", resolved_at="")).frame) == 3


def test_every_email_event_needs_a_recipient():
    with pytest.raises(DataError, match=re.escape(
            "row 2, column 'customer_id': got an empty value, "
            "expected a recipient: customer_id or email")):
        read_input("email_events", rows("email_events", customer_id="", email=""))


def test_parquet_errors_name_the_file_and_row(tmp_path):
    frame = pd.DataFrame({"ticket_id": [1, 2, 3], "customer_id": ["a", "b", "c"],
                          "opened_at": pd.to_datetime(["2024-01-02"] * 3).tz_localize("UTC"),
                          "contacts": [1, 2, 0]})
    path = tmp_path / "tickets.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=re.escape(f"{path}, row 3, column 'contacts': got 0")):
        read_input("tickets", path)
    table = read_input("tickets", path, on_bad_rows="drop")
    assert table.frame["ticket_id"].tolist() == ["1", "2"]
    assert str(table.frame["opened_at"].dtype) == "datetime64[us]"


def test_the_callers_frame_is_not_modified():
    frame = rows("surveys", survey="CSAT", score="4")
    before = frame.copy()
    read_input("surveys", frame)
    csat(frame, period="M")
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: read_input("orders", rows("costs")),
     "Unknown input kind 'orders'; use one of costs, surveys"),
    (lambda: read_input("costs", rows("costs"), on_bad_rows="skip"),
     "The 'on_bad_rows' parameter of read_input must be 'raise' or 'drop'. Got 'skip'"),
    (lambda: read_input("costs", rows("costs"), columns={"amount": "x"}),
     "Unknown column(s) 'amount' in the column mapping of 'costs'; allowed: period"),
    (lambda: read_input("costs", rows("costs"), max_drop_fraction=2),
     "The 'max_drop_fraction' parameter of read_input must be a float in [0, 1]. Got 2"),
    (lambda: nps(rows("surveys"), period="month"),
     "The 'period' parameter of nps must be None or one of 'D', 'W', 'M', 'Q', 'Y'. "
     "Got 'month'"),
    (lambda: nps(read_input("costs", rows("costs"))),
     "nps needs the 'surveys' input. Got a 'costs' table."),
])
def test_parameter_errors(call, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        call()


# --- KPIs on tiny hand-written tables -------------------------------------------------------------

@pytest.fixture
def surveys():
    nps_scores = [10, 9, 9, 10, 9, 8, 7, 7, 3, 6]  # 5 promoters, 3 passives, 2 detractors
    dates = ["2024-01-10"] * 6 + ["2024-02-10"] * 4
    csat_scores, ces_scores = [5, 4, 4, 3, 1], [7, 5, 3]
    n = len(nps_scores) + len(csat_scores) + len(ces_scores)
    return pd.DataFrame({
        "response_id": [f"r{i}" for i in range(n)],
        "customer_id": ["c1"] * n,
        "date": dates + ["2024-01-15"] * 5 + ["2024-03-01", "2024-03-02", "2024-04-01"],
        "survey": ["nps"] * 10 + ["csat"] * 5 + ["ces"] * 3,
        "score": nps_scores + csat_scores + ces_scores,
    })


def test_nps(surveys):
    # 5 promoters, 3 passives, 2 detractors of 10: 50% - 20% = 30 points.
    assert nps(surveys).to_dict("records") == [
        {"n": 10, "promoters": 5, "passives": 3, "detractors": 2, "nps": 30.0}]
    monthly = nps(surveys, period="M")
    assert monthly["period"].astype(str).tolist() == ["2024-01", "2024-02"]
    # January: 5 promoters, 1 passive of 6 -> 83.33; February: 0 promoters, 2 detractors of 4.
    assert monthly["promoters"].tolist() == [5, 0]
    assert monthly["detractors"].tolist() == [0, 2]
    assert monthly["nps"].tolist() == pytest.approx([500 / 6, -50.0])


def test_nps_without_answers_is_nan(surveys):
    out = nps(surveys[surveys["survey"] != "nps"])
    assert out["n"].tolist() == [0] and math.isnan(out["nps"].iloc[0])
    assert nps(surveys[surveys["survey"] != "nps"], period="Q").empty


def test_csat(surveys):
    # 5, 4, 4, 3, 1: mean 17 / 5 = 3.4; 3 of 5 satisfied (4-5) = 0.6.
    assert csat(surveys).to_dict("records") == [
        {"n": 5, "satisfied": 3, "csat_mean": 3.4, "csat_share": 0.6}]


def test_ces(surveys):
    # 7, 5, 3: mean 5.0; per quarter: Q1 7 and 5 (6.0), Q2 3.
    assert ces(surveys).to_dict("records") == [{"n": 3, "ces_mean": 5.0}]
    quarterly = ces(surveys, period="Q")
    assert quarterly["period"].astype(str).tolist() == ["2024Q1", "2024Q2"]
    assert quarterly["n"].tolist() == [2, 1]
    assert quarterly["ces_mean"].tolist() == [6.0, 3.0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=30))
def test_nps_counts_add_up_and_stay_in_range(scores):
    frame = pd.DataFrame({"response_id": [str(i) for i in range(len(scores))],
                          "date": [f"2024-0{1 + i % 3}-01" for i in range(len(scores))],
                          "survey": "nps", "score": scores})
    overall = nps(frame).iloc[0]
    assert overall["promoters"] + overall["passives"] + overall["detractors"] == len(scores)
    assert -100 <= overall["nps"] <= 100
    expected = 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)
    assert overall["nps"] == pytest.approx(expected)
    assert nps(frame, period="M")["n"].sum() == len(scores)


def test_first_contact_resolution_from_flags():
    tickets = pd.DataFrame({
        "ticket_id": ["1", "2", "3", "4"], "customer_id": "c",
        "opened_at": ["2024-01-02", "2024-01-20", "2024-02-03", "2024-02-04"],
        "resolved_at": ["2024-01-02", "2024-01-25", None, "2024-02-04"],
        "resolved_first_contact": ["true", "false", None, "true"],
    })
    # 4 tickets, 3 resolved (ticket 3 is open), 2 of them at the first contact: 2/3.
    out = first_contact_resolution(tickets).iloc[0]
    assert (out["tickets"], out["resolved"], out["first_contact"]) == (4, 3, 2)
    assert out["fcr"] == pytest.approx(2 / 3)
    monthly = first_contact_resolution(tickets, period="M")
    assert monthly[["tickets", "resolved", "first_contact"]].values.tolist() == [[2, 2, 1],
                                                                                  [2, 1, 1]]
    assert monthly["fcr"].tolist() == [0.5, 1.0]


def test_first_contact_resolution_from_contacts_without_resolved_at():
    tickets = pd.DataFrame({"ticket_id": ["1", "2", "3", "4", "5"], "customer_id": "c",
                            "opened_at": "2024-01-02", "contacts": [1, 1, 1, 3, None]})
    # Without resolved_at, tickets with a known contact count are the resolved ones: 3 of 4.
    assert first_contact_resolution(tickets).to_dict("records") == [
        {"tickets": 5, "resolved": 4, "first_contact": 3, "fcr": 0.75}]


@pytest.fixture
def leads():
    return pd.DataFrame({
        "lead_id": ["1", "2", "3", "4", "5", "6"],
        "created_at": ["2024-01-01", "2024-01-05", "2024-01-09", "2024-01-20", "2024-02-01",
                       "2024-02-02"],
        "won_at": ["2024-01-11", "2024-02-04", None, None, None, None],
        "lost_at": [None, None, "2024-01-30", None, "2024-02-10", None],
        "customer_id": ["c1", "c2", None, None, None, None],
    })


def test_lead_conversion(leads):
    # 6 leads, 2 won: 1/3. January: 4 leads, 2 won, 1 lost, 1 open; February: 2, 0 won.
    assert lead_conversion(leads)["conversion_rate"].tolist() == pytest.approx([1 / 3])
    monthly = lead_conversion(leads, period="M")
    assert monthly[["leads", "won", "lost", "open"]].values.tolist() == [[4, 2, 1, 1],
                                                                         [2, 0, 1, 1]]
    assert monthly["conversion_rate"].tolist() == [0.5, 0.0]


def test_sales_cycle(leads):
    # Won after 10 days (January) and 30 days (February): mean and median 20.
    assert sales_cycle(leads).to_dict("records") == [
        {"n": 2, "mean_days": 20.0, "median_days": 20.0}]
    monthly = sales_cycle(leads, period="M")
    assert monthly["period"].astype(str).tolist() == ["2024-01", "2024-02"]
    assert monthly["mean_days"].tolist() == [10.0, 30.0]
    no_won = sales_cycle(leads.drop(columns="won_at")).iloc[0]
    assert no_won["n"] == 0 and math.isnan(no_won["mean_days"])


def test_renewal_rate():
    subs = pd.DataFrame({"subscription_id": ["a", "b", "c", "d", "e"], "customer_id": "c",
                         "period_end": ["2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29",
                                        "2024-03-31"],
                         "renewed": ["true", "true", "false", "true", None]})
    # 3 renewed, 1 not, 1 unknown: 3 / 4.
    assert renewal_rate(subs).to_dict("records") == [
        {"due": 5, "renewed": 3, "not_renewed": 1, "pending": 1, "renewal_rate": 0.75}]
    monthly = renewal_rate(subs, period="M")
    assert monthly["renewal_rate"].tolist()[:2] == [1.0, 0.5]
    assert math.isnan(monthly["renewal_rate"].iloc[2])


def test_email_rates_count_unique_recipients():
    events = pd.DataFrame([
        ("a", "1", None, "delivered"), ("a", "1", None, "open"), ("a", "1", None, "open"),
        ("a", "1", None, "click"),
        ("a", "2", None, "delivered"),
        ("a", "3", None, "bounce"),
        ("a", "4", None, "bounce"), ("a", "4", None, "delivered"),  # a retry got through
        ("a", "5", None, "click"),  # images blocked: delivered and opened implied
        ("a", "6", None, "delivered"), ("a", "6", None, "unsubscribe"),
        ("a", "6", None, "spam_complaint"),
        ("b", None, " X@Example.com", "delivered"), ("b", None, "x@example.com", "open"),
    ], columns=["campaign", "customer_id", "email", "event"]).assign(timestamp="2024-05-01")
    out = email_rates(events).set_index("campaign")
    a = out.loc["a"]
    # Delivered 1, 2, 4, 5, 6; bounced 3; opened 1, 5; clicked 1, 5.
    assert a[["sent", "delivered", "bounced", "opened", "clicked", "spam_complaints",
              "unsubscribed"]].tolist() == [6, 5, 1, 2, 2, 1, 1]
    assert a["delivery_rate"] == pytest.approx(5 / 6)
    assert a["bounce_rate"] == pytest.approx(1 / 6)
    assert a[["open_rate", "click_rate", "click_to_open_rate", "spam_complaint_rate",
              "unsubscribe_rate"]].tolist() == pytest.approx([0.4, 0.4, 1.0, 0.2, 0.2])
    b = out.loc["b"]
    assert b[["sent", "delivered", "opened", "clicked"]].tolist() == [1, 1, 1, 0]
    assert (b["open_rate"], b["click_to_open_rate"]) == (1.0, 0.0)
    assert math.isnan(email_rates(events[events["event"] == "bounce"])["open_rate"].iloc[0])


def test_email_rates_of_no_events():
    out = email_rates(rows("email_events").iloc[:0])
    assert out.empty and out.columns[0] == "campaign"


@pytest.fixture
def costs():
    return pd.DataFrame({"period": ["2024-01", "2024-01", "2024-02", "2024-03"],
                         "channel": ["search", "social", "search", "search"],
                         "costs": [600.0, 400.0, 900.0, 50.0]})


def test_cac(costs):
    # January 1000 / 40, February 900 / 30, March: no new customer -> NaN.
    out = cac(costs, pd.Series({"2024-01": 40, "2024-02": 30}))
    assert out["period"].astype(str).tolist() == ["2024-01", "2024-02", "2024-03"]
    assert out["costs"].tolist() == [1000.0, 900.0, 50.0]
    assert out["new_customers"].tolist() == [40, 30, 0]
    assert out["cac"].tolist()[:2] == [25.0, 30.0] and math.isnan(out["cac"].iloc[2])


def test_cac_rolls_finer_periods_up(costs):
    by_day = pd.Series([10, 20, 10], index=pd.to_datetime(["2024-01-03", "2024-01-28",
                                                           "2024-02-14"]))
    monthly = cac(costs, by_day)
    assert monthly["new_customers"].tolist() == [30, 10, 0]
    quarterly = cac(costs, by_day, period="Q")
    assert quarterly.to_dict("records") == [{"period": pd.Period("2024Q1", "Q"),
                                             "costs": 1950.0, "new_customers": 40,
                                             "cac": 48.75}]
    with pytest.raises(ConfigError, match=re.escape(
            "new_customers has periods of frequency Q-DEC that do not fit in one period of "
            "frequency M")):
        cac(costs, pd.Series({"2024Q1": 70}))


def test_clv_to_cac(costs):
    assert clv_to_cac(90.0, 30.0) == 3.0
    assert math.isnan(clv_to_cac(90.0, 0.0))
    table = cac(costs, pd.Series({"2024-01": 40, "2024-02": 30}))
    ratio = clv_to_cac(pd.Series(75.0, index=pd.PeriodIndex(["2024-01", "2024-02", "2024-03"],
                                                           freq="M")), table)
    assert ratio.iloc[:2].tolist() == [3.0, 2.5] and math.isnan(ratio.iloc[2])


# --- the sample generator ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def history():
    return generate_transactions(400, seed=11)


def test_generator_is_deterministic(history):
    before = history.copy()
    first = generate_crm_inputs(history, seed=3)
    second = generate_crm_inputs(history, seed=3)
    other = generate_crm_inputs(history, seed=4)
    assert list(first) == list(CRM_INPUT_KINDS)
    for kind in CRM_INPUT_KINDS:
        pd.testing.assert_frame_equal(first[kind], second[kind])
        assert list(first[kind].columns) == [c for c in INPUT_SCHEMAS[kind]
                                             if c in first[kind].columns], kind
        assert len(first[kind].columns) >= len(VALID[kind]), kind
    assert not first["surveys"].equals(other["surveys"])
    pd.testing.assert_frame_equal(history, before)


def test_generated_inputs_are_realistic(history):
    inputs = generate_crm_inputs(history, seed=3)
    ids = set(history["Customer ID"].dropna().str.strip().str.replace(r"\.0$", "", regex=True))
    won = inputs["leads"].dropna(subset=["won_at"])
    assert len(won) and set(won["customer_id"]) <= ids
    assert inputs["leads"]["won_at"].isna().sum() > len(won)  # most leads do not buy
    assert set(inputs["email_events"]["campaign"]) == {c.name for c in DEFAULT_PLAN}
    assert set(inputs["surveys"]["survey"]) == {"nps", "csat", "ces"}
    assert set(inputs["costs"]["channel"]) >= {"paid_search", "email"}
    end = pd.Timestamp(history["InvoiceDate"].max())
    for kind, column in [("tickets", "opened_at"), ("surveys", "date"), ("leads", "created_at"),
                         ("email_events", "timestamp")]:
        assert pd.to_datetime(inputs[kind][column]).max() <= end, kind
    fcr = first_contact_resolution(inputs["tickets"])["fcr"].iloc[0]
    assert 0.55 < fcr < 0.9
    rates = email_rates(inputs["email_events"])
    assert rates["delivery_rate"].between(0.9, 1).all()
    assert rates["open_rate"].between(0.05, 0.7).all()


def test_written_files_read_back_without_errors(tmp_path, history):
    paths = write_crm_inputs(tmp_path, history, seed=3)
    assert {k: p.name for k, p in paths.items()} == {k: f"{k}.csv" for k in CRM_INPUT_KINDS}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{k}.csv"
                                                                for k in CRM_INPUT_KINDS)
    frames = generate_crm_inputs(history, seed=3)
    for kind, path in paths.items():
        table = read_input(kind, path)
        assert (table.rows_read, table.rows_dropped) == (len(frames[kind]), 0), kind
    first = {k: p.read_bytes() for k, p in paths.items()}
    write_crm_inputs(tmp_path, history, seed=3)
    assert {k: p.read_bytes() for k, p in paths.items()} == first


def test_generator_needs_the_transaction_columns():
    with pytest.raises(MissingColumnsError, match=r"transactions: missing column\(s\) "
                                                  r"'Invoice', 'InvoiceDate'"):
        generate_crm_inputs(pd.DataFrame({"Customer ID": ["1"], "Email": [None]}))
    with pytest.raises(ConfigError, match="The 'seed' parameter of generate_crm_inputs must be "
                                          "an int >= 0. Got -1"):
        generate_crm_inputs(generate_transactions(5, seed=1), seed=-1)


def test_kpis_accept_the_input_table_as_read(tmp_path, history):
    paths = write_crm_inputs(tmp_path, history, seed=5)
    subs = read_input("subscriptions", paths["subscriptions"])
    pd.testing.assert_frame_equal(renewal_rate(subs, period="Q"),
                                  renewal_rate(subs.frame, period="Q"))
    assert np.isfinite(renewal_rate(subs)["renewal_rate"]).all()
