"""Compliance of the weekly run: suppression freshness and consent (issue 9).

Freshness: a suppression file older than the limit stops an email run (exit 4, nothing
written) unless allowed; its age is recorded. Consent: objections to profiling leave the
run, email lists keep only customers with valid consent on ``as_of``; the written lists are
re-read to prove it.
"""

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfm_engine import customer_features, load_transactions
from rfm_engine.campaigns.consent import INQUIRY_CONSENT_MONTHS, ConsentList, load_consent
from rfm_engine.campaigns.suppression import (
    SuppressionList,
    check_freshness,
    is_valid_email,
    load_suppression,
    normalize_email,
)
from rfm_engine.config import load_config
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import (
    ComplianceError,
    ConfigError,
    DataError,
    InputError,
    MissingColumnsError,
)
from rfm_engine.runs import weekly

from .test_weekly import AS_OF, MAPPING, cli, customers_of, read_csv, snapshot, write_config

DAY = 86_400
PUSH_PLAN = """
[[campaigns]]
name = "push_all"
type = "retention"
channel = "push"
segments = ["champions", "loyal_customers", "potential_loyalists", "new_customers",
            "promising", "need_attention", "about_to_sleep", "at_risk", "cant_lose",
            "hibernating"]
"""
# Two customers appended to the sample: one whose last purchase is more than two years
# before AS_OF (implied consent expired), one just inside the two years.
OLD_LINES = [
    "900001,85123A,OLD BUYER,2,2023-12-30 10:00:00,5.00,OLD-1,United Kingdom,"
    "old1@example.com,Olga,Home,online",
    "900002,85123A,OLD BUYER,2,2024-01-02 10:00:00,5.00,OLD-2,United Kingdom,"
    "old2@example.com,Otto,Home,online",
]


def age(path, days):
    """Set ``path``'s modification time to ``days`` days ago."""
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    paths = write_sample(folder, n_customers=300, seed=5)
    with open(paths["transactions"], "a", encoding="utf-8") as handle:
        handle.write("\n".join(OLD_LINES) + "\n")
    paths["config"] = write_config(folder / "weekly.toml", paths["transactions"])
    return paths


def fresh_copy(sample, tmp_path, days=0.0):
    path = tmp_path / "suppression.csv"
    shutil.copyfile(sample["suppression"], path)
    return age(path, days)


# --- freshness: the library ---------------------------------------------------------------------


def test_age_is_wall_clock_minus_mtime_and_the_limit_is_inclusive(sample, tmp_path):
    path = fresh_copy(sample, tmp_path)
    mtime = path.stat().st_mtime
    at_limit = load_suppression([path], now=mtime + 7 * DAY)
    assert at_limit.sources[0]["age_days"] == 7.0
    assert at_limit.sources[0]["modified"].endswith("+00:00")
    assert check_freshness(at_limit, 7) == []
    over = load_suppression([path], now=mtime + 7.01 * DAY)
    with pytest.raises(ComplianceError, match=r"suppression.csv is 7.01 days old .*limit of 7 "
                                              r"days.*CAN-SPAM and CASL.*Nothing was written"):
        check_freshness(over, 7)
    assert check_freshness(over, 7, allow_stale=True) == [
        f"suppression file {path} is 7.01 days old (limit 7 days); used anyway "
        "(--allow-stale-suppression)."]
    assert check_freshness(over, 8) == []


@pytest.mark.parametrize("limit", [0, -3, True, 7.5, "7"])
def test_age_limit_must_be_a_positive_int(limit):
    with pytest.raises(ConfigError, match=r"'max_suppression_age_days' setting must be an int "
                                          r">= 1\. Got"):
        check_freshness(SuppressionList.empty(), limit)


# --- freshness: the weekly run ------------------------------------------------------------------


def test_stale_suppression_stops_an_email_run_and_writes_nothing(sample, tmp_path):
    stale = fresh_copy(sample, tmp_path, days=10)
    out = tmp_path / "out"
    result = cli("run", "--config", sample["config"], "--output-dir", out,
                 "--suppression", stale)
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(stale) in lines[0]
    assert "is 10 days old" in lines[0] and "limit of 7 days" in lines[0]
    assert not out.exists()
    # an existing output folder is left exactly as it was
    out.mkdir()
    (out / "keep.txt").write_text("x")
    before = snapshot(out)
    with pytest.raises(ComplianceError, match="10 days old"):
        weekly.run_weekly(load_config(sample["config"]), output_dir=out, suppression=[stale])
    assert snapshot(out) == before


def test_stale_suppression_allowed_on_purpose_runs_with_a_warning(sample, tmp_path):
    stale = fresh_copy(sample, tmp_path, days=10)
    out = tmp_path / "out"
    result = cli("run", "--config", sample["config"], "--output-dir", out,
                 "--suppression", stale, "--allow-stale-suppression")
    assert result.returncode == 0, result.stderr
    assert f"warning: suppression file {stale} is 10 days old (limit 7 days)" in result.stderr
    manifest = json.loads((out / AS_OF / "manifest.json").read_text())
    source = manifest["inputs"]["suppression"][0]
    assert 9.99 <= source["age_days"] <= 10.01
    assert manifest["compliance"]["allow_stale_suppression"] is True
    assert manifest["compliance"]["max_suppression_age_days"] == 7
    assert any("10 days old" in w for w in manifest["warnings"])


def test_age_limit_from_the_option_and_the_config(sample, tmp_path):
    stale = fresh_copy(sample, tmp_path, days=10)
    result = cli("run", "--config", sample["config"], "--output-dir", tmp_path / "a",
                 "--suppression", stale, "--max-suppression-age-days", "11")
    assert result.returncode == 0, result.stderr
    assert "days old" not in result.stderr
    result = cli("run", "--config", sample["config"], "--output-dir", tmp_path / "b",
                 "--suppression", stale, "--max-suppression-age-days", "0")
    assert result.returncode == 2 and "--max-suppression-age-days" in result.stderr
    config = write_config(tmp_path / "c.toml", sample["transactions"],
                          extra=f"[output]\nsuppression = [{json.dumps(str(stale))}]\n"
                                "max_suppression_age_days = 9\n")
    with pytest.raises(ComplianceError, match="limit of 9 days"):
        weekly.run_weekly(load_config(config), output_dir=tmp_path / "c")
    config.write_text(config.read_text() + "allow_stale_suppression = true\n")
    result = weekly.run_weekly(load_config(config), output_dir=tmp_path / "c")
    assert result.warnings[0].startswith(f"suppression file {stale} is 10 days old (limit 9")


def test_stale_suppression_only_warns_without_an_email_campaign(sample, tmp_path):
    stale = fresh_copy(sample, tmp_path, days=30)
    config = write_config(tmp_path / "push.toml", sample["transactions"], extra=PUSH_PLAN)
    result = weekly.run_weekly(load_config(config), output_dir=tmp_path / "out",
                               suppression=[stale])
    assert any("30 days old" in w for w in result.warnings)
    assert result.campaigns["targets"].sum() > 0


# --- consent: the rules -------------------------------------------------------------------------


def _customers(**columns):
    frame = pd.DataFrame(columns)
    if "last_purchase" in frame:
        frame["last_purchase"] = pd.to_datetime(frame["last_purchase"])
    return frame


def test_implied_consent_ends_on_the_second_anniversary_of_the_last_purchase():
    rows = pd.DataFrame({"customer_id": ["a", "b"], "status": ["granted", "granted"],
                         "basis": ["implied", "implied"]})
    customers = _customers(customer_id=["a", "b"], last_purchase=["2023-12-31", "2024-02-29"])
    consent = ConsentList(rows)
    assert consent.valid(customers, "2025-12-30").tolist() == [True, True]
    assert consent.valid(customers, "2025-12-31").tolist() == [False, True]
    assert consent.valid(customers, "2026-02-27").tolist() == [False, True]
    assert consent.valid(customers, "2026-02-28").tolist() == [False, False]


def test_inquiry_consent_lasts_six_calendar_months_from_the_inquiry(tmp_path):
    """CASL s. 10(10)(d): valid from the inquiry until the day six months on (excluded)."""
    path = tmp_path / "consent.csv"
    path.write_text("customer_id,status,basis,granted_at,expires_at\n"
                    "a,granted,inquiry,2025-01-15,\n"
                    "b,granted,inquiry,2025-08-31 16:30,\n"  # 6 months on: 2026-02-28
                    "c,granted,inquiry,2025-01-15,2025-03-01\n"  # an earlier expiry wins
                    "d,withdrawn,inquiry,,\n", encoding="utf-8")
    consent = load_consent(path)
    customers = _customers(customer_id=["a", "b", "c", "d"])
    assert consent.valid(customers, "2025-01-14").tolist() == [False, False, False, False]
    assert consent.valid(customers, "2025-01-15").tolist() == [True, False, True, False]
    assert consent.valid(customers, "2025-02-28").tolist() == [True, False, True, False]
    assert consent.valid(customers, "2025-03-01").tolist() == [True, False, False, False]
    assert consent.valid(customers, "2025-07-14").tolist() == [True, False, False, False]
    assert consent.valid(customers, "2025-07-15").tolist() == [False, False, False, False]
    assert consent.valid(customers, "2025-08-31").tolist() == [False, True, False, False]
    assert consent.valid(customers, "2026-02-27").tolist() == [False, True, False, False]
    assert consent.valid(customers, "2026-02-28").tolist() == [False, False, False, False]
    assert INQUIRY_CONSENT_MONTHS == 6


def test_inquiry_consent_without_its_date_is_refused_in_python_too():
    rows = pd.DataFrame({"customer_id": ["a"], "status": ["granted"], "basis": ["inquiry"]})
    with pytest.raises(InputError, match="basis 'inquiry' needs its granted_at date"):
        ConsentList(rows).valid(_customers(customer_id=["a"]), "2025-01-01")


def test_express_consent_holds_from_its_grant_until_its_expiry():
    rows = pd.DataFrame({
        "customer_id": ["a", "b", "c"], "status": ["granted"] * 3, "basis": ["express"] * 3,
        "granted_at": pd.to_datetime(["2025-01-01", "2025-06-01 18:00", None],
                                     format="ISO8601"),
        "expires_at": pd.to_datetime(["2025-06-01", None, "2025-03-01"]),
    })
    customers = _customers(customer_id=["a", "b", "c"])
    consent = ConsentList(rows)
    assert consent.valid(customers, "2024-12-31").tolist() == [False, False, True]
    assert consent.valid(customers, "2025-05-31").tolist() == [True, False, False]
    assert consent.valid(customers, "2025-06-01").tolist() == [False, True, False]


def test_the_most_protective_row_wins_and_email_keys_match_normalised():
    rows = pd.DataFrame({
        "customer_id": ["a", None, "b", None],
        "email": [None, "ann@example.com", None, "bob@example.com"],
        "status": ["granted", "withdrawn", "granted", "objected"],
        "basis": ["express", None, "express", None]})
    customers = _customers(customer_id=["a", "b", "c"],
                           email=[" ANN@example.com", "bob@example.com", "cy@example.com"])
    consent = ConsentList(rows)
    assert consent.valid(customers, "2025-01-01").tolist() == [False, False, False]
    assert consent.objected(customers).tolist() == [False, True, False]
    assert ConsentList(rows, required=False).valid(customers, "2025-01-01").tolist() == [
        False, False, True]


@pytest.mark.parametrize("text, error, message", [
    ("customer_id,status,basis\n7,maybe,express\n", DataError,
     r"consent.csv, row 1, column 'status': got 'maybe', expected one of 'granted', "
     r"'withdrawn', 'objected'"),
    ("customer_id,status,basis\n7,granted,\n", DataError,
     r"row 1, column 'basis': got an empty value, expected a basis"),
    ("customer_id,email,status\n,,withdrawn\n", DataError,
     r"row 1, column 'customer_id': .*expected a person: customer_id or email must be set"),
    ("customer_id,status,basis,granted_at,expires_at\n7,granted,express,2025-02-01,2025-01-01\n",
     DataError, r"row 1, column 'expires_at': got '2025-01-01', expected a timestamp not "
                r"before granted_at"),
    ("email,status\nann@example,withdrawn\n", DataError,
     r"column 'email': got '<an email address>', expected an email address"),
    ("customer_id,status\n7,withdrawn\n7.0,objected\n", DataError,
     r"row 2, column 'customer_id': got '7.0', expected a unique customer_id \(row 1 has "
     r"the same\)"),
    ("email,customer_id,status\nann@x.org,,withdrawn\nANN@x.org,,objected\n", DataError,
     r"row 2, column 'email': got '<an email address>', expected a unique email \(row 1 has "
     r"the same; customer_id empty in both\)"),
    ("customer_id,email,status\n7,,withdrawn\n8,,withdrawn\n7,,objected\n", DataError,
     r"row 3, column 'customer_id': got '7', expected a unique customer_id \(row 1 has the "
     r"same; email empty in both\)"),
    ("customer_id,email,status\n7,ann@x.org,withdrawn\n7,ann@x.org,objected\n", DataError,
     r"row 2, column 'customer_id': got '7', expected a unique \(customer_id, email\) \(row 1 "
     r"has the same\)"),
    ("customer_id,status,basis,granted_at\n7,granted,inquiry,\n", DataError,
     r"row 1, column 'granted_at': got an empty value, expected a granted_at date for basis "
     r"'inquiry'"),
    ("customer_id,status,basis\n7,withdrawn,\n8,granted,inquiry\n", DataError,
     r"row 2, column 'basis': got 'inquiry', expected a granted_at date for basis 'inquiry'"),
    ("customer,status\n7,withdrawn\n", MissingColumnsError, r"customer_id or email"),
])
def test_bad_consent_files_get_one_line_errors(tmp_path, text, error, message):
    path = tmp_path / "consent.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error, match=message) as exc:
        load_consent(path)
    assert "\n" not in str(exc.value) and "ann@" not in str(exc.value)


# --- consent: the weekly run --------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(sample):
    """Customers of the sample chosen for each consent case (none of them suppressed)."""
    tx = load_transactions(sample["transactions"], columns=MAPPING, as_of=AS_OF)
    customers = customer_features(tx)
    customers = customers[~load_suppression([sample["suppression"]]).mask(customers)
                          & is_valid_email(customers["email"]).to_numpy()
                          & ~customers["customer_id"].str.startswith("OLD")
                          & ~customers["email"].duplicated(keep=False).to_numpy()]
    ids = customers["customer_id"].tolist()
    email = dict(zip(customers["customer_id"], customers["email"], strict=True))
    groups = {
        "express_id": ids[0:40], "express_email": ids[40:60], "expired": ids[60:64],
        "future": ids[64:66], "implied": ids[66:69] + ["OLD-2"], "implied_old": ["OLD-1"],
        "withdrawn": ids[69:72], "objected_id": ids[72:74], "objected_email": ids[74:76],
    }
    email.update({"OLD-1": "old1@example.com", "OLD-2": "old2@example.com"})
    rows = []
    for who in groups["express_id"]:
        rows.append([who, "", "granted", "express", "2024-01-01", ""])
    for who in groups["express_email"]:  # spelled differently from the transactions
        rows.append(["", f" {email[who].upper()} ", "granted", "express", "", ""])
    for who in groups["expired"]:
        rows.append([who, "", "granted", "express", "2024-01-01", AS_OF])
    for who in groups["future"]:
        rows.append([who, "", "granted", "express", "2026-01-05", ""])
    for who in groups["implied"] + groups["implied_old"]:
        rows.append([who, "", "granted", "implied", "", ""])
    for who in groups["withdrawn"]:
        rows.append(["", email[who], "withdrawn", "", "", ""])
    for who in groups["objected_id"]:
        rows.append([f"{who}.0", "", "objected", "", "", ""])
    for who in groups["objected_email"]:
        rows.append(["", email[who], "objected", "", "", ""])
    path = Path(sample["transactions"]).with_name("consent.csv")
    pd.DataFrame(rows, columns=["customer_id", "email", "status", "basis", "granted_at",
                                "expires_at"]).to_csv(path, index=False)
    groups["valid"] = groups["express_id"] + groups["express_email"] + groups["implied"]
    groups["objected"] = groups["objected_id"] + groups["objected_email"]
    groups["no_row"] = [i for i in ids if not any(i in g for g in groups.values())]
    return path, groups


def consent_run(sample, people, out, **kwargs):
    return weekly.run_weekly(load_config(sample["config"]), output_dir=out,
                             suppression=[sample["suppression"]], consent=people[0], **kwargs)


@pytest.fixture(scope="module")
def with_consent(sample, people, tmp_path_factory):
    return consent_run(sample, people, tmp_path_factory.mktemp("consent"))


def listed(run_dir):
    """Customer id -> campaign of every row of every written list (generic layout)."""
    rows = {}
    for path in sorted((Path(run_dir) / "campaigns").glob("*.csv")):
        for cid in read_csv(path)["customer_id"]:
            rows[cid] = path.stem
    return rows


def test_objected_customers_are_left_out_of_the_whole_run(with_consent, people):
    _, groups = people
    table = customers_of(with_consent.run_dir)
    objected = set(groups["objected"])
    assert len(objected) == 4
    assert not objected & set(table["customer_id"])
    assert not objected & set(listed(with_consent.run_dir))
    counts = with_consent.manifest["counts"]["consent"]
    assert counts["objected_customers_removed"] == 4 and counts["objected"] == 4
    assert with_consent.manifest["inputs"]["consent"]["rows"] == counts["rows"]
    summary = (with_consent.run_dir / "summary.html").read_text(encoding="utf-8")
    assert "objected to profiling (left out)" in summary


def test_email_consent_decides_who_may_be_listed(with_consent, people):
    _, groups = people
    table = customers_of(with_consent.run_dir).set_index("customer_id")
    valid = set(groups["valid"])
    assert table["email_consent"].to_dict() == {i: i in valid for i in table.index}
    lacking = (groups["expired"] + groups["future"] + groups["implied_old"]
               + groups["withdrawn"] + groups["no_row"])
    assert (table.loc[lacking, "exclusion_reason"] == "no_consent").all()
    assert (table.loc[lacking, "group"] == "excluded").all()
    assert not (table.loc[sorted(valid), "exclusion_reason"] == "no_consent").any()
    assert "OLD-2" in valid and table.loc["OLD-1", "exclusion_reason"] == "no_consent"


def test_written_lists_hold_only_customers_with_valid_consent(with_consent, people):
    _, groups = people
    on_lists = listed(with_consent.run_dir)
    assert len(on_lists) >= 40  # the valid customers minus holdout and duplicates
    assert set(on_lists) <= set(groups["valid"])


def test_no_consent_is_counted_in_campaigns_csv_manifest_and_summary(with_consent):
    table = customers_of(with_consent.run_dir)
    expected = int((table["exclusion_reason"] == "no_consent").sum())
    assert expected > 100
    counts = read_csv(with_consent.run_dir / "campaigns.csv")
    assert counts["no_consent"].astype(int).sum() == expected
    assert with_consent.manifest["counts"]["consent"]["no_consent"] == expected
    records = with_consent.manifest["counts"]["campaigns"]
    assert sum(r["no_consent"] for r in records) == expected
    summary = (with_consent.run_dir / "summary.html").read_text(encoding="utf-8")
    assert "of which no consent" in summary


def test_consent_not_required_mails_customers_without_a_row(sample, people, tmp_path):
    _, groups = people
    result = consent_run(sample, people, tmp_path / "out", consent_required=False)
    table = result.customers.set_index("customer_id")
    assert table.loc[groups["no_row"], "email_consent"].all()
    blocked = groups["expired"] + groups["future"] + groups["implied_old"] + groups["withdrawn"]
    assert not table.loc[blocked, "email_consent"].any()
    assert set(listed(result.run_dir)).isdisjoint(blocked + groups["objected"])
    assert result.manifest["compliance"]["consent_required"] is False


def test_consent_from_the_config_through_the_cli(sample, people, tmp_path):
    path, groups = people
    suppression = json.dumps(str(sample["suppression"]))
    config = write_config(tmp_path / "weekly.toml", sample["transactions"],
                          extra=f"[output]\nsuppression = [{suppression}]\n"
                                f"consent = {json.dumps(os.path.relpath(path, tmp_path))}\n")
    out = tmp_path / "out"
    result = cli("run", "--config", config, "--output-dir", out, "--format", "mailchimp")
    assert result.returncode == 0, result.stderr
    emails = set()
    for list_path in (out / AS_OF / "campaigns").glob("*.csv"):
        emails |= set(normalize_email(read_csv(list_path)["Email Address"]))
    table = customers_of(out / AS_OF)
    consenting = set(table.loc[table["email_consent"], "email"].dropna())
    assert emails and emails <= consenting
    assert not set(groups["objected"]) & set(table["customer_id"])


def test_bad_consent_file_exits_2_and_writes_nothing(sample, tmp_path):
    path = tmp_path / "consent.csv"
    path.write_text("customer_id,status\n7,granted\n", encoding="utf-8")
    out = tmp_path / "out"
    result = cli("run", "--config", sample["config"], "--output-dir", out,
                 "--suppression", sample["suppression"], "--consent", path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"{path}, row 1, column 'status'" in lines[0] and "a basis" in lines[0]
    assert not out.exists()
    result = cli("run", "--config", sample["config"], "--output-dir", out,
                 "--suppression", sample["suppression"], "--consent", tmp_path / "none.csv")
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not out.exists()


def test_a_leaked_customer_without_consent_stops_the_run(sample, people, tmp_path,
                                                         monkeypatch):
    real = weekly.assign_campaigns

    def leaky(customers, plan, *, no_consent, **kwargs):
        let_through = np.asarray(no_consent, dtype=bool).copy()
        let_through[:] = False
        return real(customers, plan, no_consent=let_through, **kwargs)

    monkeypatch.setattr(weekly, "assign_campaigns", leaky)
    out = tmp_path / "out"
    with pytest.raises(ComplianceError, match=r"Consent check failed: .*row\(s\) without "
                                              r"consent.*fix the consent step"):
        consent_run(sample, people, out)
    assert not out.exists() or not any(out.iterdir())


def test_sample_consent_file_loads_and_covers_every_status(tmp_path):
    from rfm_engine.datasets.sample_data import generate_consent, generate_transactions

    transactions = generate_transactions(400, seed=3)
    rows = generate_consent(transactions, seed=3)
    pd.testing.assert_frame_equal(rows, generate_consent(transactions, seed=3))
    path = tmp_path / "consent.csv"
    rows.to_csv(path, index=False)
    consent = load_consent(path)
    assert consent.counts["rows"] == len(rows) > 300
    assert all(consent.counts[s] > 0 for s in ("granted", "withdrawn", "objected"))
    assert set(consent.frame["basis"].dropna()) == {"express", "implied"}
