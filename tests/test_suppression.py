import hashlib
import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns.exports import export_writers
from rfm_engine.campaigns.suppression import (
    SuppressionList,
    is_valid_email,
    load_suppression,
    normalize_customer_id,
    normalize_email,
    verify_no_suppressed,
)
from rfm_engine.errors import ComplianceError, InputError
from rfm_engine.io.writers import write_all


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["17850", "00042", "c3", "c4", "c5"],
        "email": ["ann@example.com", "Bob@Example.com ", None, "dee@example.org", ""],
        "first_name": ["Ann", "Bob", "Cy", "Dee", "Eve"],
        "segment": ["Champions"] * 5,
        "campaign": ["retention_champions"] * 5,
    })


# --- normalization and validity ------------------------------------------------------------

def test_normalize_email_trims_lowercases_and_composes():
    raw = pd.Series(["  Ann@Example.COM\t", "Jose\u0301@x.org", "", "   ", None],
                    index=[5, 6, 7, 8, 9])
    out = normalize_email(raw)
    assert out.index.tolist() == [5, 6, 7, 8, 9]
    assert out.iloc[:2].tolist() == ["ann@example.com", "jos\u00e9@x.org"]
    assert out.iloc[2:].isna().all()


def test_normalize_customer_id_like_the_loader():
    out = normalize_customer_id(pd.Series([" 17850.0 ", "00123", "12.50", "", None]))
    assert out.iloc[:3].tolist() == ["17850", "00123", "12.50"]
    assert out.iloc[3:].isna().all()


@pytest.mark.parametrize("address", [
    "ann@example.com", " Ann@Example.COM ", "o'neil@example.ie", "a.b+tag@mail.example.co.uk",
    "x@m\u00fcnchen.de",
])
def test_valid_emails(address):
    assert is_valid_email(pd.Series([address])).tolist() == [True]


@pytest.mark.parametrize("address", [
    "", "ann", "@example.com", "ann@", "ann@localhost", "ann@example", "ann@.com", "ann@example.",
    "ann@example..com", "a@b@example.com", "ann smith@example.com",
    "ann@example.com,bob@example.com",
    "ann@example.com;bob@example.com", '"Ann"@example.com', "Ann <ann@example.com>",
    "a" * 250 + "@x.org",
])
def test_invalid_emails(address):
    assert is_valid_email(pd.Series([address])).tolist() == [False]


def test_is_valid_email_missing_is_false_and_keeps_index():
    out = is_valid_email(pd.Series([None, np.nan, "a@b.co"], index=["x", "y", "z"]))
    assert out.dtype == bool
    assert out.to_dict() == {"x": False, "y": False, "z": True}



def test_email_pattern_spells_out_pythons_whitespace():
    import sys

    from rfm_engine.io.identifiers import _SPACE

    assert set(_SPACE) == {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.one_of(
    st.sampled_from(list("aeoAC \t\u00a0\u3000")),
    st.sampled_from(["\u0301", "\u0308", "\u0327", "\u030a", "\u1100", "\u1161", "\u11a8",
                     "\u212b", "\u2126", "\ufb01", "\u0344", "\u1e9b", "\u0323"]),
    st.characters(codec="utf-8")), max_size=6)), max_size=8))
def test_nfc_text_is_pythons_nfc_and_strip(values):
    # Arrow's NFC (utf8proc) stands in for Python's unicodedata: the ids and addresses it
    # normalises must come out as Python's NFC and str.strip would write them.
    import unicodedata

    from rfm_engine.io.identifiers import nfc_text

    got = nfc_text(pd.Series(values, dtype=object)).tolist()
    want = [None if v is None else unicodedata.normalize("NFC", v).strip() for v in values]
    assert [None if pd.isna(g) else g for g in got] == want


# The rule as Python's re reads it (\s: Unicode whitespace); is_valid_email runs it in RE2.
_PYTHON_BAD = r"\s\x00-\x1f\x7f,;\"<>\\"
_PYTHON_EMAIL = re.compile(rf"[^@{_PYTHON_BAD}]+@[^@.{_PYTHON_BAD}]+(?:\.[^@.{_PYTHON_BAD}]+)+")


_CHARS = st.sampled_from(list("ab.@-_'\"\\,;<>+é") + [
    "\t", "\n", "\x0b", "\x1c", "\x1f", "\x7f", "\x00", "\x85", "\xa0", "\u1680", "\u2000",
    "\u2028", "\u3000", "\u200b", "\ufeff", "\U0001f600"])
_PART = st.text(alphabet=st.one_of(st.just("a"), _CHARS), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(
    st.text(alphabet=_CHARS, max_size=12),
    st.builds(lambda a, b, c: f"{a}@{b}.{c}", _PART, _PART, _PART),  # address-shaped
), max_size=20))
def test_is_valid_email_means_what_pythons_re_means(addresses):
    norm = normalize_email(pd.Series(addresses, dtype=object))
    expected = [isinstance(a, str) and bool(_PYTHON_EMAIL.fullmatch(a)) and len(a) <= 254
                for a in norm.astype(object).where(norm.notna(), None)]
    assert is_valid_email(pd.Series(addresses, dtype=object)).tolist() == expected


# --- loading -------------------------------------------------------------------------------

def test_load_csv_with_bom_semicolon_and_aliases(tmp_path):
    path = tmp_path / "unsub.csv"
    raw = "\ufeffE-Mail;Customer ID;Reason\n Ann@Example.com ;17850.0;unsub\n;00042;erased\n"
    path.write_bytes(raw.encode("utf-8"))
    os.utime(path, (1_767_225_600, 1_767_225_600))  # 2026-01-01T00:00:00Z
    sup = load_suppression([path], now=1_767_225_600 + 1.5 * 86_400)
    assert sup.emails == {"ann@example.com"}
    assert sup.customer_ids == {"17850", "00042"}
    assert len(sup) == 3
    assert sup.sources == [{
        "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows": 2, "emails": 1, "ids": 2, "modified": "2026-01-01T00:00:00+00:00",
        "age_days": 1.5,
    }]


def test_load_several_files_tab_pipe_and_txt(tmp_path):
    (tmp_path / "bounced.csv").write_text("email_address\treason\nBOB@example.com\thard\n")
    (tmp_path / "erased.csv").write_text("external_id|note\nc9|gdpr\n")
    (tmp_path / "plain.txt").write_text("dee@example.org\n\n  eve@example.org  \n")
    sup = load_suppression([tmp_path / "bounced.csv", tmp_path / "erased.csv",
                            tmp_path / "plain.txt"])
    assert sup.emails == {"bob@example.com", "dee@example.org", "eve@example.org"}
    assert sup.customer_ids == {"c9"}
    assert sup.counts == {
        "emails": 3, "ids": 1,
        "files": {
            str(tmp_path / "bounced.csv"): {"rows": 1, "emails": 1, "ids": 0},
            str(tmp_path / "erased.csv"): {"rows": 1, "emails": 0, "ids": 1},
            str(tmp_path / "plain.txt"): {"rows": 2, "emails": 2, "ids": 0},
        },
    }


def test_load_single_column_id_file(tmp_path):
    (tmp_path / "ids.csv").write_text("id\n1.0\n2\n")
    assert load_suppression([tmp_path / "ids.csv"]).customer_ids == {"1", "2"}


def test_load_without_email_or_id_column_lists_available(tmp_path):
    (tmp_path / "bad.csv").write_text("name,reason\nAnn,unsub\n")
    with pytest.raises(InputError, match=r"bad\.csv: no email or customer id column.*"
                                         r"available: 'name', 'reason'"):
        load_suppression([tmp_path / "bad.csv"])


def test_headerless_csv_error_never_shows_the_address(tmp_path):
    (tmp_path / "list.csv").write_text("secret.person@example.com\nother@example.com\n")
    with pytest.raises(InputError, match=r"available: <an email address>.*\.txt file") as info:
        load_suppression([tmp_path / "list.csv"])
    assert "secret.person" not in str(info.value)


def test_load_two_email_columns_is_ambiguous(tmp_path):
    (tmp_path / "two.csv").write_text("Email,E-mail\na@x.org,b@x.org\n")
    with pytest.raises(InputError, match=r"two\.csv: several email columns \('Email', 'E-mail'\)"):
        load_suppression([tmp_path / "two.csv"])


@pytest.mark.parametrize(("content", "message"), [
    (None, r"missing\.csv does not exist"),
    (b"", r"empty\.csv is empty"),
    (b"email\nann@example.com\nj\xf6rg@example.com\n", r"latin\.csv, row 2: not UTF-8"),
])
def test_load_unreadable_files(tmp_path, content, message):
    name = {None: "missing.csv", b"": "empty.csv"}.get(content, "latin.csv")
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_suppression([tmp_path / name])


# --- mask ----------------------------------------------------------------------------------

def test_mask_by_id_or_normalized_email(customers):
    sup = SuppressionList(emails=["BOB@example.com", "nobody@example.com"],
                          customer_ids=["17850.0", "zzz"])
    assert sup.mask(customers).tolist() == [True, True, False, False, False]
    assert isinstance(sup.mask(customers), np.ndarray)


def test_mask_missing_values_never_match(customers):
    sup = SuppressionList(emails=[""], customer_ids=[" "])
    assert len(sup) == 0
    assert not sup.mask(customers).any()


def test_mask_with_email_only_and_without_either():
    sup = SuppressionList(emails=["a@x.org"])
    assert sup.mask(pd.DataFrame({"email": ["A@X.org", "b@x.org"]})).tolist() == [True, False]
    with pytest.raises(InputError, match=r"neither a 'customer_id' nor an 'email' column; "
                                         r"available: 'name'"):
        sup.mask(pd.DataFrame({"name": ["a"]}))


def test_mask_does_not_modify_customers(customers):
    before = customers.copy()
    SuppressionList(emails=["ann@example.com"]).mask(customers)
    pd.testing.assert_frame_equal(customers, before)


_local = st.text("abcXYZ.", min_size=1, max_size=4)
_address = st.builds(lambda local, dom: f"{local}@{dom}.org", _local, st.sampled_from("pqR"))
_padded = st.builds(lambda pad1, a, pad2: pad1 + a + pad2,
                    st.sampled_from(["", " ", "\t", "  "]), _address,
                    st.sampled_from(["", " ", "\n"]))
_recased = st.builds(lambda a, upper: a.upper() if upper else a.swapcase(), _padded, st.booleans())


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["1", "2", "3", "4", "5"]),
                            st.one_of(st.none(), _padded)), min_size=1, max_size=30),
    sup_emails=st.lists(_recased, max_size=8),
    sup_ids=st.lists(st.sampled_from(["1", "2.0", " 3 ", "9"]), max_size=3),
)
def test_property_no_kept_row_is_suppressed(rows, sup_emails, sup_ids):
    customers = pd.DataFrame(rows, columns=["customer_id", "email"])
    sup = SuppressionList(emails=sup_emails, customer_ids=sup_ids)
    kept = customers[~sup.mask(customers)]
    bad_emails = {e.strip().lower() for e in sup_emails}
    bad_ids = {i.strip().removesuffix(".0") for i in sup_ids}
    for cid, email in kept.itertuples(index=False):
        assert cid not in bad_ids
        assert email is None or pd.isna(email) or email.strip().lower() not in bad_emails
    # and nothing else was dropped
    dropped = customers[sup.mask(customers)]
    for cid, email in dropped.itertuples(index=False):
        assert cid in bad_ids or (isinstance(email, str) and email.strip().lower() in bad_emails)


# --- verification of written files ---------------------------------------------------------

def test_verify_passes_on_clean_exports(tmp_path, customers):
    sup = SuppressionList(emails=["bob@example.com"], customer_ids=["17850"])
    clean = customers[~sup.mask(customers) & customers["email"].notna()
                      & (customers["email"] != "")]
    paths = []
    for layout in ("generic", "mailchimp", "klaviyo", "hubspot", "braze"):
        paths += write_all(export_writers(f"c_{layout}", clean, layout, tmp_path))
    assert verify_no_suppressed(paths, sup) is None


@pytest.mark.parametrize("layout", ["generic", "mailchimp", "klaviyo", "hubspot", "braze"])
def test_verify_catches_suppressed_rows_without_showing_them(tmp_path, customers, capsys, layout):
    valid = customers[is_valid_email(customers["email"])]
    paths = write_all(export_writers("retention_champions", valid, layout, tmp_path))
    sup = SuppressionList(emails=["  ANN@example.com"])
    with pytest.raises(ComplianceError, match=r"retention_champions\.csv: 1 suppressed row\(s\)"
                       ) as info:
        verify_no_suppressed(paths, sup)
    assert info.value.exit_code == 4
    assert "ann@example.com" not in str(info.value).lower()
    assert capsys.readouterr() == ("", "")


def test_verify_by_id_counts_each_file(tmp_path):
    (tmp_path / "a.csv").write_text("external_id,email\n1,x@x.org\n2,y@x.org\n3,z@x.org\n")
    (tmp_path / "b.csv").write_text("customer_id\n4\n")
    with pytest.raises(ComplianceError, match=r"a\.csv: 2 suppressed row\(s\)\. Do not"):
        verify_no_suppressed([tmp_path / "a.csv", tmp_path / "b.csv"],
                             SuppressionList(customer_ids=["1", "3"]))


def test_verify_fails_closed_on_a_file_it_cannot_check(tmp_path):
    (tmp_path / "odd.csv").write_text("name\nAnn\n")
    with pytest.raises(ComplianceError, match=r"odd\.csv: no email or customer id column"):
        verify_no_suppressed([tmp_path / "odd.csv"], SuppressionList(emails=["a@x.org"]))
    with pytest.raises(ComplianceError, match=r"gone\.csv: cannot be read back"):
        verify_no_suppressed([tmp_path / "gone.csv"], SuppressionList(emails=["a@x.org"]))
