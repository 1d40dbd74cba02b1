"""The weekly run end to end: folder layout, manifest, list properties, failure injection,
compliance, reruns, two consecutive weeks, formula quarantine, ESP layouts, caps, cross-sell.

Small generated histories (``write_sample``); the expensive runs are module fixtures.
"""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_engine.campaigns.assign import GROUPS
from rfm_engine.campaigns.exports import LAYOUT_COLUMNS
from rfm_engine.campaigns.plan import DEFAULT_PLAN, Campaign
from rfm_engine.campaigns.suppression import (
    load_suppression,
    normalize_customer_id,
    normalize_email,
)
from rfm_engine.config import load_config
from rfm_engine.datasets.sample_data import write_sample
from rfm_engine.errors import ComplianceError, OutputExistsError
from rfm_engine.reports.summary_report import RunSummary
from rfm_engine.runs import publish, weekly

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
WEEK1 = "2025-12-24"
AS_OF = "2025-12-31"  # the sample's last day; week 2 of the two-week tests
MAPPING = {
    "customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate",
    "quantity": "Quantity", "unit_price": "Price", "email": "Email",
    "first_name": "First Name", "country": "Country", "channel": "Channel",
    "product_id": "StockCode", "category": "Category",
}
RESURRECTION = {c.name for c in DEFAULT_PLAN if c.type == "resurrection"}
SUGGESTIONS = ("cross_sell", "upsell")
FIXED_FILES = {
    "customers.parquet", "segments.csv", "campaigns.csv", "quality.json",
    "migration/transition_matrix.csv", "migration/transition_matrix.png", "summary.html",
    "kpis.html", "kpis.csv", "kpis.json", "kpis_cohorts.csv", "kpis_by_segment.csv",
    "scorer.json", "manifest.json",
}


# --- helpers ----------------------------------------------------------------------------------


def cli(*args, cwd=None):
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def write_config(path, transactions, *, as_of=AS_OF, unmapped=(), extra=""):
    """A run config over ``transactions`` (absolute path), mapping the sample's columns."""
    lines = ["[input]", f"path = {json.dumps(str(transactions))}", "[columns]"]
    lines += [f'{key} = "{value}"' for key, value in MAPPING.items() if key not in unmapped]
    if as_of:
        lines += ["[features]", f'as_of = "{as_of}"']
    path = Path(path)
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(folder):
    """Every entry under ``folder`` (hidden ones too): files by hash, folders by name."""
    folder = Path(folder)
    if not folder.exists():
        return None
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            found[(Path(root) / name).relative_to(folder).as_posix()] = "<dir>"
        for name in files:
            path = Path(root) / name
            found[path.relative_to(folder).as_posix()] = sha256(path)
    return found


def run_files(run_dir):
    return {p.relative_to(run_dir).as_posix() for p in Path(run_dir).rglob("*") if p.is_file()}


def read_csv(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def list_paths(run_dir):
    return sorted((Path(run_dir) / "campaigns").glob("*.csv"))


def header(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return next(csv.reader(handle))


def list_ids(run_dir):
    """Campaign -> customer ids of its list (generic layout)."""
    return {p.stem: read_csv(p)["customer_id"].tolist() for p in list_paths(run_dir)}


def customers_of(run_dir):
    return pd.read_parquet(Path(run_dir) / "customers.parquet")


def copy_run(run_dir, output_dir):
    """Put a copy of a published run folder into ``output_dir``; return the copy."""
    target = Path(output_dir) / Path(run_dir).name
    shutil.copytree(run_dir, target)
    return target


def run(sample, output_dir, *, config=None, **kwargs):
    """Run the weekly job in-process over the sample, with its suppression list."""
    kwargs.setdefault("suppression", [sample["suppression"]])
    return weekly.run_weekly(load_config(config or sample["config"]), output_dir=output_dir,
                             **kwargs)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    paths = write_sample(folder, n_customers=400, seed=11)
    paths["config"] = write_config(folder / "weekly.toml", paths["transactions"])
    return paths


@pytest.fixture(scope="module")
def first(sample, tmp_path_factory):
    """One run of the default plan, no earlier run."""
    return run(sample, tmp_path_factory.mktemp("first"))


@pytest.fixture(scope="module")
def weeks(sample, tmp_path_factory):
    """Two consecutive weekly runs through the CLI, into one output folder."""
    out = tmp_path_factory.mktemp("weeks")
    for day in (WEEK1, AS_OF):
        result = cli("run", "--config", sample["config"], "--as-of", day, "--output-dir", out,
                     "--suppression", sample["suppression"])
        assert result.returncode == 0, result.stderr
    return out / WEEK1, out / AS_OF


# --- 1. layout and manifest -------------------------------------------------------------------


def test_run_folder_layout(first):
    run_dir = first.run_dir
    assert run_dir.name == AS_OF == first.as_of.isoformat()
    campaigns = {f"campaigns/{c.name}.csv" for c in DEFAULT_PLAN}
    assert run_files(run_dir) == FIXED_FILES | campaigns  # no triggers on a first run
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]

    customers = customers_of(run_dir)
    assert {"customer_id", "segment", "previous_segment", "segment_since", "campaign", "group",
            "exclusion_reason", "holdout_draw"} <= set(customers)
    assert "email_valid" not in customers
    assert customers["customer_id"].is_unique
    assert set(customers["group"]) <= set(GROUPS)
    assert customers["previous_segment"].isna().all()
    assert (customers["segment_since"].astype(str) == AS_OF).all()
    assert customers.loc[customers["group"] == "none", "campaign"].isna().all()
    assert customers.loc[customers["group"] != "none", "campaign"].notna().all()

    segments = pd.read_csv(run_dir / "segments.csv")
    assert segments["customers"].sum() == len(customers)
    counts = pd.read_csv(run_dir / "campaigns.csv")
    assert counts["campaign"].tolist() == [c.name for c in DEFAULT_PLAN]
    assert (counts["candidates"] == counts.drop(columns=["campaign", "candidates"])
            .sum(axis=1)).all()
    pd.testing.assert_frame_equal(counts, first.campaigns, check_dtype=False)
    quality = json.loads((run_dir / "quality.json").read_text())
    assert quality["as_of"] == AS_OF
    assert (run_dir / "migration" / "transition_matrix.png").read_bytes()[1:4] == b"PNG"
    assert json.loads((run_dir / "scorer.json").read_text())["format"] == "rfm-engine/RFMScorer"
    assert (run_dir / "summary.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_manifest_hashes_rows_and_counts(first, sample):
    run_dir = first.run_dir
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(first.manifest, default=str))
    assert manifest["as_of"] == AS_OF and manifest["run_dir"] == AS_OF
    assert manifest["inputs"]["previous_run"] is None

    tx = manifest["inputs"]["transactions"]
    assert [Path(f["path"]) for f in tx["files"]] == [sample["transactions"]]
    assert tx["files"][0]["sha256"] == sha256(sample["transactions"])
    assert tx["files"][0]["bytes"] == sample["transactions"].stat().st_size
    suppression = manifest["inputs"]["suppression"]
    assert [Path(s["path"]) for s in suppression] == [sample["suppression"]]
    assert suppression[0]["sha256"] == sha256(sample["suppression"])

    outputs = {entry["path"]: entry for entry in manifest["outputs"]}
    assert set(outputs) == run_files(run_dir) - {"manifest.json"}
    for name, entry in outputs.items():
        path = run_dir / name
        assert entry["sha256"] == sha256(path), name
        assert entry["bytes"] == path.stat().st_size, name
        if path.suffix == ".csv":
            assert entry["rows"] == len(pd.read_csv(path)), name
        elif path.suffix == ".parquet":
            assert entry["rows"] == len(pd.read_parquet(path)), name
        else:
            assert "rows" not in entry, name

    counts = pd.read_csv(run_dir / "campaigns.csv")
    assert manifest["counts"]["campaigns"] == counts.to_dict(orient="records")
    for name, entry in outputs.items():
        if name.startswith("campaigns/"):
            campaign = Path(name).stem
            assert entry["rows"] == counts.set_index("campaign").loc[campaign, "targets"]
    segments = pd.read_csv(run_dir / "segments.csv")
    assert manifest["counts"]["segments"] == dict(zip(segments["segment"],
                                                      segments["customers"], strict=True))
    assert manifest["counts"]["suppression_entries"] == len(
        load_suppression([sample["suppression"]]))


def test_no_email_address_in_manifest_or_summary(first):
    assert any("@" in p.read_text() for p in list_paths(first.run_dir))  # the check can fail
    for name in ("manifest.json", "summary.html"):
        assert "@" not in (first.run_dir / name).read_text(encoding="utf-8"), name


# --- 2. properties ----------------------------------------------------------------------------


def test_lists_hold_exactly_the_targets(first, sample):
    customers = customers_of(first.run_dir)
    by_list = list_ids(first.run_dir)
    for campaign in DEFAULT_PLAN:
        expected = customers.loc[(customers["campaign"] == campaign.name)
                                 & (customers["group"] == "target"), "customer_id"]
        assert sorted(by_list[campaign.name]) == sorted(expected), campaign.name
    listed = [cid for ids in by_list.values() for cid in ids]
    assert len(listed) == len(set(listed)) > 0  # each customer in at most one list
    holdout = set(customers.loc[customers["group"] == "holdout", "customer_id"])
    assert holdout and not holdout & set(listed)

    suppression = load_suppression([sample["suppression"]])
    suppressed = customers[suppression.mask(customers)]
    assert len(suppressed) > 0 and (suppressed["group"] == "suppressed").all()
    for path in list_paths(first.run_dir):
        frame = read_csv(path)
        assert not suppression.mask(frame).any(), path.name
        assert not set(normalize_email(frame["email"]).dropna()) & suppression.emails
        assert not set(frame["customer_id"]) & suppression.customer_ids


SPELLINGS = ("id", "id_spaced", "id_float", "email_upper", "email_spaced", "email_capitalized",
             "both_odd")


def _spell(customer_id, email, spelling):
    """One suppression row (email, id) naming a customer in an odd but equivalent way."""
    return {
        "id": (None, customer_id),
        "id_spaced": (None, f"  {customer_id} "),
        "id_float": (None, f"{customer_id}.0"),
        "email_upper": (email.upper(), None),
        "email_spaced": (f"   {email}  ", None),
        "email_capitalized": (email.capitalize(), None),
        "both_odd": (f" {email.upper()}", f"{customer_id} "),
    }[spelling]


@settings(max_examples=3, derandomize=True, deadline=None, database=None)
@given(data=st.data())
def test_suppressed_people_never_reach_a_list(first, sample, data):
    customers = customers_of(first.run_dir)
    pool = customers[customers["group"] == "target"].sort_values("customer_id")
    picks = data.draw(st.lists(
        st.tuples(st.integers(0, len(pool) - 1), st.sampled_from(SPELLINGS)),
        min_size=1, max_size=12, unique_by=lambda pick: pick[0]))
    chosen = pool.iloc[[i for i, _ in picks]]
    rows = [_spell(cid, email, spelling) for (cid, email), (_, spelling)
            in zip(chosen[["customer_id", "email"]].itertuples(index=False), picks, strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unsubscribed.csv"
        pd.DataFrame(rows, columns=["Email Address", "Customer ID"]).to_csv(path, index=False)
        result = run(sample, Path(tmp) / "out", suppression=[path])
        got = result.customers.set_index("customer_id")
        assert (got.loc[chosen["customer_id"], "group"] == "suppressed").all()
        assert result.campaigns["suppressed"].sum() == len(chosen)
        ids, emails = set(chosen["customer_id"]), set(chosen["email"])
        for list_path in list_paths(result.run_dir):
            frame = read_csv(list_path)
            assert not set(frame["customer_id"]) & ids, list_path.name
            assert not set(normalize_email(frame["email"]).dropna()) & emails, list_path.name


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    paths = write_sample(folder, n_customers=3000, seed=3)
    paths["config"] = write_config(folder / "weekly.toml", paths["transactions"])
    return run(paths, folder / "out")


def test_holdout_share_within_binomial_noise(big):
    customers = big.customers
    eligible = customers[customers["group"].isin(["target", "holdout"])]
    is_holdout = eligible["group"] == "holdout"
    # the split is the documented draw: holdout exactly when the draw is below the fraction
    fraction = eligible["campaign"].map({c.name: c.holdout_fraction for c in DEFAULT_PLAN})
    assert (is_holdout == (eligible["holdout_draw"] < fraction)).all()

    def within(holdout, n, p=0.1):
        return abs(holdout / n - p) <= 4 * np.sqrt(p * (1 - p) / n)

    assert len(eligible) > 2000
    assert within(is_holdout.sum(), len(eligible))
    for campaign, flags in is_holdout.groupby(eligible["campaign"]):
        assert within(flags.sum(), len(flags)), campaign
    counts = big.campaigns.set_index("campaign")
    assert (counts["holdout"] == is_holdout.groupby(eligible["campaign"]).sum()
            .reindex(counts.index, fill_value=0)).all()
    listed = {cid for ids in list_ids(big.run_dir).values() for cid in ids}
    assert not listed & set(eligible.loc[is_holdout, "customer_id"])


# --- 5. existing run, --force, byte-identical rerun --------------------------------------------


def test_existing_run_exits_5_then_force_replaces_it_byte_for_byte(first, sample, tmp_path):
    out = tmp_path / "other"
    stale = copy_run(first.run_dir, out)
    (stale / "campaigns" / "retention_loyal.csv").write_text("stale\n")
    (stale / "notes.txt").write_text("from an earlier run\n")
    before = snapshot(out)
    args = ("run", "--config", sample["config"], "--output-dir", out,
            "--suppression", sample["suppression"])

    refused = cli(*args)
    assert refused.returncode == 5
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(out) == before

    forced = cli(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == [AS_OF]  # no staging or old folder left
    assert run_files(stale) == run_files(first.run_dir)
    for name in [*(f"campaigns/{c.name}.csv" for c in DEFAULT_PLAN), "customers.parquet"]:
        assert sha256(stale / name) == sha256(first.run_dir / name), name


def test_existing_run_is_refused_when_as_of_comes_from_the_data(first, sample, tmp_path):
    config = write_config(tmp_path / "no_as_of.toml", sample["transactions"], as_of=None)
    out = tmp_path / "out"
    copy_run(first.run_dir, out)
    before = snapshot(out)
    with pytest.raises(OutputExistsError, match=f"{AS_OF} already exists"):
        run(sample, out, config=config)
    assert snapshot(out) == before


# --- 3. failure injection ---------------------------------------------------------------------


class Injected(RuntimeError):
    pass


def _raise(*args, **kwargs):
    raise Injected("injected failure")


def _break_summary(monkeypatch):
    monkeypatch.setattr(RunSummary, "to_html", _raise)


def _break_heatmap(monkeypatch):
    monkeypatch.setattr(publish, "write_heatmap_png", _raise)


def _break_manifest(monkeypatch):
    monkeypatch.setattr(publish, "versions", _raise)


def _break_export(monkeypatch):
    """The writer of one list writes half a file, then fails."""
    real = publish.export_writers

    def export_writers(campaign, *args, **kwargs):
        writers = real(campaign, *args, **kwargs)
        if campaign != "retention_loyal":
            return writers

        def half_then_fail(tmp):
            Path(tmp).write_text("customer_id,email\n1,")
            raise Injected("injected failure")

        return {path: half_then_fail for path in writers}

    monkeypatch.setattr(publish, "export_writers", export_writers)


INJECTIONS = {"summary_html": _break_summary, "heatmap_png": _break_heatmap,
              "export_writer": _break_export, "manifest": _break_manifest}


@pytest.mark.parametrize("state", ["empty", "earlier_run", "force_over_existing"])
@pytest.mark.parametrize("injection", list(INJECTIONS))
def test_failure_mid_write_leaves_output_dir_as_it_was(first, weeks, sample, tmp_path,
                                                       monkeypatch, injection, state):
    out = tmp_path / "out"
    out.mkdir()
    if state != "empty":
        copy_run(weeks[0], out)  # week 1: migration, triggers and contact history run too
    if state == "force_over_existing":
        copy_run(first.run_dir, out)
    before = snapshot(out)
    INJECTIONS[injection](monkeypatch)
    with pytest.raises(Injected, match="injected failure"):
        run(sample, out, force=state == "force_over_existing")
    assert snapshot(out) == before


def test_failure_without_output_dir_creates_nothing(sample, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _break_heatmap(monkeypatch)
    with pytest.raises(Injected, match="injected failure"):
        run(sample, out)
    assert not out.exists()


def test_failed_swap_keeps_the_existing_run(first, sample, tmp_path, monkeypatch):
    out = tmp_path / "out"
    copy_run(first.run_dir, out)
    before = snapshot(out)
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".staging"):
            raise OSError("injected failure")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="injected failure"):
        run(sample, out, force=True)
    assert snapshot(out) == before


# --- 4. compliance ----------------------------------------------------------------------------


def test_email_plan_without_suppression_source_is_refused(sample, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ComplianceError, match="need a suppression source.*Nothing was written"):
        run(sample, out, suppression=[])
    assert not out.exists()
    result = cli("run", "--config", sample["config"], "--output-dir", out)
    assert result.returncode == 4
    assert "--no-suppression" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_no_suppression_waives_the_source_on_purpose(sample, tmp_path):
    result = run(sample, tmp_path / "out", suppression=[], no_suppression=True)
    assert result.manifest["inputs"]["suppression"] == []
    assert result.manifest["counts"]["suppression_entries"] == 0
    assert (result.campaigns["suppressed"] == 0).all()
    assert result.campaigns["targets"].sum() > 0
    assert (result.run_dir / "manifest.json").is_file()


def _suppressed_by(sample, kind):
    """Keys of suppression rows naming a person by email only, or by id only."""
    rows = pd.read_csv(sample["suppression"], dtype=str)
    if kind == "email":
        return "email", set(normalize_email(rows.loc[rows["customer_id"].isna(), "email"])
                            .dropna())
    return "customer_id", set(normalize_customer_id(
        rows.loc[rows["email"].isna(), "customer_id"]).dropna())


@pytest.mark.parametrize("layout, kind", [
    ("generic", "email"),
    ("generic", "id"),
    ("mailchimp", "email"),
    ("mailchimp", "id"),
])
def test_suppressed_person_slipping_into_a_list_stops_the_run(first, sample, tmp_path,
                                                              monkeypatch, layout, kind):
    column, keys = _suppressed_by(sample, kind)
    real = weekly.assign_campaigns
    leaked = []

    def leaky_assign(customers, plan, *, suppressed, **kwargs):
        flags = np.asarray(suppressed, dtype=bool)
        rows = np.flatnonzero(flags & customers[column].isin(keys).to_numpy()
                              & customers["email_valid"].to_numpy())
        for row in rows:  # the first one that would be a target without the flag
            let_through = flags.copy()
            let_through[row] = False
            out = real(customers, plan, suppressed=let_through, **kwargs)
            if out["group"].iloc[row] == "target":
                leaked.append(customers["customer_id"].iloc[row])
                return out
        raise AssertionError("no suppressed customer could be let through")

    monkeypatch.setattr(weekly, "assign_campaigns", leaky_assign)
    out = tmp_path / "out"
    copy_run(first.run_dir, out)
    before = snapshot(out)
    with pytest.raises(ComplianceError,
                       match=r"Suppression check failed: .*: 1 suppressed row") as exc:
        run(sample, out, layout=layout, force=True)
    assert len(leaked) == 1
    assert "@" not in str(exc.value)
    assert snapshot(out) == before


# --- 6. two consecutive weeks -----------------------------------------------------------------


def test_second_week_knows_the_previous_segments(weeks):
    week1, week2 = (customers_of(d).set_index("customer_id") for d in weeks)
    manifest = json.loads((weeks[1] / "manifest.json").read_text())
    assert manifest["inputs"]["previous_run"] == WEEK1
    assert week1["previous_segment"].isna().all()
    both = week2.index.intersection(week1.index)
    new = week2.index.difference(week1.index)
    assert len(both) > 0.9 * len(week2)
    assert (week2.loc[both, "previous_segment"] == week1.loc[both, "segment"]).all()
    assert week2.loc[new, "previous_segment"].isna().all()
    since = week2["segment_since"].astype(str)
    unchanged = both[week2.loc[both, "segment"] == week1.loc[both, "segment"]]
    changed = week2.index.difference(unchanged)
    assert len(changed) > 0 and len(unchanged) > 0
    assert (since[unchanged] == WEEK1).all()
    assert (since[changed] == AS_OF).all()


def test_transition_matrix_totals_are_the_customers(weeks):
    week1, week2 = (customers_of(d) for d in weeks)
    matrix = pd.read_csv(weeks[1] / "migration" / "transition_matrix.csv").set_index("from")
    assert matrix.drop(columns="(gone)").to_numpy().sum() == len(week2)
    assert matrix.drop(index="(new)").to_numpy().sum() == len(week1)
    per_segment = matrix.drop(columns="(gone)").sum()
    assert per_segment.to_dict() == week2["segment"].value_counts().reindex(
        per_segment.index, fill_value=0).to_dict()
    first_matrix = pd.read_csv(weeks[0] / "migration" / "transition_matrix.csv")
    assert first_matrix.set_index("from").drop(index="(new)").to_numpy().sum() == 0


@pytest.mark.parametrize("name, segment", [("entered_at_risk", "at_risk"),
                                           ("became_champion", "champions")])
def test_trigger_lists_hold_only_customers_who_entered(weeks, name, segment):
    assert not (weeks[0] / "triggers").exists()
    customers = customers_of(weeks[1])
    entered = customers[(customers["segment"] == segment)
                        & (customers["previous_segment"] != segment).fillna(True)]
    trigger = read_csv(weeks[1] / "triggers" / f"{name}.csv")
    assert len(trigger) > 0  # so the checks below are not vacuous
    assert sorted(trigger["customer_id"]) == sorted(entered["customer_id"])
    assert (trigger["segment"] == segment).all()
    assert not (trigger["previous_segment"] == segment).any()
    assert "email" not in trigger and "first_name" not in trigger


def test_contacted_in_week_one_is_not_targeted_again_by_the_same_campaign(weeks):
    week1, week2 = (customers_of(d).set_index("customer_id") for d in weeks)
    spacing = {c.name: c.min_days_between_contacts for c in DEFAULT_PLAN}
    targeted = week1[week1["group"] == "target"]
    again = targeted.index.intersection(week2.index)
    again = again[week2.loc[again, "campaign"] == targeted.loc[again, "campaign"]]
    assert len(again) > 0
    assert all(spacing[c] >= 14 for c in week2.loc[again, "campaign"])
    assert (week2.loc[again, "group"] == "excluded").all()
    assert (week2.loc[again, "exclusion_reason"] == "contacted_recently").all()
    counts = pd.read_csv(weeks[1] / "campaigns.csv").set_index("campaign")
    assert counts["contacted_recently"].sum() == len(again)
    listed = {cid for ids in list_ids(weeks[1]).values() for cid in ids}
    assert not listed & set(again)


def test_earlier_runs_are_read_once_and_only_within_the_longest_spacing(tmp_path):
    # Runs 35 and 28 days back are outside the default plan's longest spacing (28 days):
    # their files are never opened (garbage would fail to parse); the previous run is read
    # once, for migration and history both.
    def write_run(day, rows):
        folder = tmp_path / day
        folder.mkdir()
        (folder / "manifest.json").write_text("{}")
        if rows is None:
            (folder / "customers.parquet").write_bytes(b"not parquet")
            return
        pd.DataFrame(rows, columns=["customer_id", "segment", "segment_since", "campaign",
                                    "group", "email"]).to_parquet(folder / "customers.parquet")

    write_run("2025-11-26", None)
    write_run("2025-12-03", None)
    write_run("2025-12-10", [("a", "champions", "2025-12-10", "retention_loyal", "target",
                              "a@x.org"),
                             ("b", "loyal", "2025-12-10", "retention_loyal", "holdout", None)])
    write_run("2025-12-24", [("a", "loyal", "2025-12-24", "retention_nudge", "target", None),
                             ("c", "at_risk", "2025-12-01", None, "none", None)])
    as_of = pd.Timestamp("2025-12-31").date()
    previous_dir, previous, history = weekly._earlier_runs(tmp_path, as_of, DEFAULT_PLAN)
    assert previous_dir == tmp_path / "2025-12-24"
    assert list(previous.columns) == ["customer_id", "segment", "segment_since"]
    assert previous["customer_id"].tolist() == ["a", "c"]
    assert history.astype({"as_of": str}).values.tolist() == [
        ["a", "retention_loyal", "2025-12-10"], ["a", "retention_nudge", "2025-12-24"]]
    none = weekly._earlier_runs(tmp_path, as_of, (Campaign("x", "retention", ("loyal",)),))
    assert none[1]["customer_id"].tolist() == ["a", "c"] and none[2].empty


# --- 7. formula cells are quarantined ---------------------------------------------------------

FORMULAS = ('=HYPERLINK("http://evil.example","click")', "@SUM(1)")


@pytest.fixture(scope="module")
def formula_run(first, sample, tmp_path_factory):
    """The sample with two targets' first names replaced by spreadsheet formulas."""
    folder = tmp_path_factory.mktemp("formula")
    tx = pd.read_csv(sample["transactions"], dtype=str, keep_default_na=False)
    targets = first.customers[(first.customers["group"] == "target")
                              & first.customers["first_name"].notna()]
    victims = (targets.sort_values("customer_id").drop_duplicates("campaign")
               ["customer_id"].head(len(FORMULAS)).tolist())
    ids = normalize_customer_id(tx["Customer ID"])
    for victim, formula in zip(victims, FORMULAS, strict=True):
        tx.loc[(ids == victim).to_numpy(), "First Name"] = formula
    tx.to_csv(folder / "transactions.csv", index=False)
    config = write_config(folder / "weekly.toml", folder / "transactions.csv")
    return run(sample, folder / "out", config=config), victims


def test_formula_cells_reach_no_list_and_are_counted(formula_run):
    result, victims = formula_run
    customers = result.customers.set_index("customer_id")
    assert sorted(customers.loc[victims, "first_name"]) == sorted(FORMULAS)
    assert (customers.loc[victims, "group"] == "excluded").all()
    assert (customers.loc[victims, "exclusion_reason"] == "quarantined").all()
    counts = pd.read_csv(result.run_dir / "campaigns.csv").set_index("campaign")
    assert counts["quarantined"].sum() == len(victims)
    expected = customers.loc[victims, "campaign"].value_counts()
    assert counts.loc[expected.index, "quarantined"].to_dict() == expected.to_dict()
    manifest_counts = {r["campaign"]: r["quarantined"]
                       for r in result.manifest["counts"]["campaigns"]}
    assert manifest_counts == counts["quarantined"].to_dict()
    for path in list_paths(result.run_dir):
        text = path.read_text(encoding="utf-8")
        assert "HYPERLINK" not in text and "SUM(1)" not in text, path.name
        assert not set(read_csv(path)["customer_id"]) & set(victims), path.name


# --- 8. ESP layouts ---------------------------------------------------------------------------

ESP_LAYOUTS = ("mailchimp", "klaviyo", "hubspot", "braze")


@pytest.fixture(scope="module")
def layout_runs(sample, tmp_path_factory):
    """One CLI run per layout, two at a time."""
    root = tmp_path_factory.mktemp("layouts")
    procs = {}
    for layout in ESP_LAYOUTS:
        procs[layout] = subprocess.Popen(
            [*RFM, "--quiet", "run", "--config", str(sample["config"]), "--output-dir",
             str(root / layout), "--suppression", str(sample["suppression"]),
             "--format", layout], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if len(procs) % 2 == 0:
            for proc in procs.values():
                proc.wait(timeout=600)
    for layout, proc in procs.items():
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, (layout, stderr)
    return {layout: root / layout / AS_OF for layout in ESP_LAYOUTS}


@pytest.mark.parametrize("layout", ESP_LAYOUTS)
def test_each_layout_writes_its_tools_header(layout_runs, first, layout):
    run_dir = layout_runs[layout]
    assert json.loads((run_dir / "manifest.json").read_text())["layout"] == layout
    counts = pd.read_csv(run_dir / "campaigns.csv").set_index("campaign")
    paths = list_paths(run_dir)
    assert {p.stem for p in paths} == {c.name for c in DEFAULT_PLAN}
    for path in paths:
        extras = list(SUGGESTIONS) if path.stem in RESURRECTION else []
        assert header(path) == [*LAYOUT_COLUMNS[layout], *extras], path.name
        assert len(read_csv(path)) == counts.loc[path.stem, "targets"], path.name
    # the layout changes the files, not who is in them
    pd.testing.assert_frame_equal(counts.reset_index(), first.campaigns, check_dtype=False)


def test_mailchimp_run_counts_what_mailchimp_refuses(first, sample, tmp_path):
    """Issue 14: a non-ASCII address prefix -> invalid_email; a 300-character first name ->
    quarantined (Mailchimp keeps 255); neither reaches a list."""
    tx = pd.read_csv(sample["transactions"], dtype=str, keep_default_na=False)
    targets = first.customers[(first.customers["group"] == "target")
                              & (first.customers["channel"] == "email")]
    zoe, longname = targets.sort_values("customer_id")["customer_id"].head(2).tolist()
    ids = normalize_customer_id(tx["Customer ID"])
    tx.loc[(ids == zoe).to_numpy(), "Email"] = "zoë.test@example.com"
    tx.loc[(ids == longname).to_numpy(), "First Name"] = "N" * 300
    tx.to_csv(tmp_path / "transactions.csv", index=False)
    config = write_config(tmp_path / "weekly.toml", tmp_path / "transactions.csv")
    result = run(sample, tmp_path / "out", config=config, layout="mailchimp")
    customers = result.customers.set_index("customer_id")
    assert customers.loc[zoe, "exclusion_reason"] == "invalid_email"
    assert customers.loc[longname, "exclusion_reason"] == "quarantined"
    counts = pd.read_csv(result.run_dir / "campaigns.csv").set_index("campaign")
    assert counts.loc[customers.loc[zoe, "campaign"], "invalid_email"] >= 1
    for path in list_paths(result.run_dir):
        text = path.read_text(encoding="utf-8")
        assert "zoë" not in text and "N" * 256 not in text, path.name


# --- 9. custom plan with caps ------------------------------------------------------------------

CUSTOM_PLAN = """
[[campaigns]]
name = "vip_push"
type = "retention"
segments = ["champions", "loyal_customers"]
channel = "push"
priority = 5
holdout_fraction = 0.2
max_size = 20

[[campaigns]]
name = "winback_capped"
type = "resurrection"
segments = ["hibernating", "at_risk"]
max_size = 15
"""


@pytest.fixture(scope="module")
def custom_run(sample, tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom")
    config = write_config(folder / "weekly.toml", sample["transactions"], extra=CUSTOM_PLAN)
    return run(sample, folder / "out", config=config)


def test_custom_plan_caps_targets_at_max_size(custom_run):
    run_dir = custom_run.run_dir
    assert {p.stem for p in list_paths(run_dir)} == {"vip_push", "winback_capped"}
    counts = pd.read_csv(run_dir / "campaigns.csv").set_index("campaign")
    customers = custom_run.customers
    assert "none" in set(customers["group"])  # segments the plan leaves out
    for name, cap in (("vip_push", 20), ("winback_capped", 15)):
        assert counts.loc[name, "targets"] == cap
        assert counts.loc[name, "over_cap"] > 0
        assert len(read_csv(run_dir / "campaigns" / f"{name}.csv")) == cap
        mine = customers[customers["campaign"] == name]
        targets = mine.loc[mine["group"] == "target", "monetary"]
        cut = mine.loc[mine["exclusion_reason"] == "over_cap", "monetary"]
        assert targets.min() >= cut.max()  # the cap keeps the highest spenders


def test_push_list_carries_no_email(custom_run):
    push = read_csv(custom_run.run_dir / "campaigns" / "vip_push.csv")
    assert header(custom_run.run_dir / "campaigns" / "vip_push.csv")[:5] == list(
        LAYOUT_COLUMNS["generic"])
    assert (push["email"] == "").all()
    assert "@" not in (custom_run.run_dir / "campaigns" / "vip_push.csv").read_text()


# --- 10. cross-sell and up-sell ---------------------------------------------------------------


def test_only_resurrection_lists_carry_suggestions(first, custom_run):
    for run_dir, resurrection in ((first.run_dir, RESURRECTION),
                                  (custom_run.run_dir, {"winback_capped"})):
        for path in list_paths(run_dir):
            columns = header(path)
            if path.stem in resurrection:
                assert columns[-2:] == list(SUGGESTIONS), path.name
                frame = read_csv(path)
                assert (frame["cross_sell"] != "").any(), path.name
            else:
                assert not set(SUGGESTIONS) & set(columns), path.name
    customers = first.customers
    elsewhere = ~customers["campaign"].isin(RESURRECTION)
    assert customers.loc[elsewhere, ["cross_sell", "upsell"]].isna().all().all()


@pytest.mark.parametrize("unmapped, expected", [
    (("product_id",), ["cross_sell"]),
    (("product_id", "category"), []),
])
def test_suggestion_columns_follow_the_mapping(sample, tmp_path, unmapped, expected):
    config = write_config(tmp_path / "weekly.toml", sample["transactions"], unmapped=unmapped)
    result = run(sample, tmp_path / "out", config=config)
    for path in list_paths(result.run_dir):
        extras = header(path)[len(LAYOUT_COLUMNS["generic"]):]
        assert extras == (expected if path.stem in RESURRECTION else []), path.name


def test_clustering_section_adds_clusters_and_the_model_carries_the_clusterer(sample, tmp_path):
    config = write_config(tmp_path / "c.toml", sample["transactions"],
                          extra="[clustering]\nenabled = true\nn_clusters = 3\n")
    result = run(sample, tmp_path / "out", config=config)
    table = customers_of(result.run_dir)
    assert table["cluster"].nunique() == 3
    assert table.groupby("cluster")["cluster_name"].nunique().eq(1).all()
    assert {"clustering/clusters.csv", "clustering/crosstab.csv", "clustering/elbow.png",
            "clustering/silhouette.png"} <= run_files(result.run_dir)
    assert result.model.clusterer_.n_clusters_ == 3
    listed = {entry["path"] for entry in result.manifest["outputs"]}
    assert "clustering/crosstab.csv" in listed


def test_lift_command_reads_a_published_run(first, sample, tmp_path):
    out = tmp_path / "lift.csv"
    result = cli("lift", first.run_dir, "--transactions", sample["transactions"], "--days", "30",
                 "-o", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    campaigns = set(pd.read_csv(Path(first.run_dir) / "campaigns.csv")["campaign"])
    assert set(table["campaign"]) == campaigns | {"(total)"}
    assert out.with_name("lift.csv.png").read_bytes()[:4] == b"\x89PNG"
    # the sample ends on the run's as-of date: no outcome data, and the report says so
    assert "after" in result.stderr


def test_run_prints_the_data_quality_report_unless_quiet(sample, tmp_path):
    args = ("--config", sample["config"], "--suppression", sample["suppression"],
            "--no-tracking")
    loud = cli("run", *args, "--output-dir", tmp_path / "loud")
    assert loud.returncode == 0, loud.stderr
    assert "data quality:" in loud.stderr and "rows read" in loud.stderr
    assert loud.stderr.count("data quality:") == 1
    quiet = cli("run", "-q", *args, "--output-dir", tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert (tmp_path / "quiet" / AS_OF / "manifest.json").is_file()


def _with_outcomes(source, target, *, sep=",", decimal="."):
    """The sample plus one purchase 10 days after as_of by every 3rd customer, optionally
    written the European way (';' between fields, ',' decimals)."""
    table = pd.read_csv(source, dtype=str, keep_default_na=False)
    buyers = table.loc[table["Customer ID"] != "", "Customer ID"].drop_duplicates()[::3]
    extra = table.drop_duplicates("Customer ID").set_index("Customer ID").loc[buyers]
    extra = extra.reset_index().assign(Invoice=[f"X{i}" for i in range(len(extra))],
                                       InvoiceDate="2026-01-10 12:00:00", Quantity="2",
                                       Price="10.50")
    table = pd.concat([table, extra[table.columns]], ignore_index=True)
    if decimal != ".":
        for column in ("Price", "Quantity"):
            table[column] = table[column].str.replace(".", decimal, regex=False)
    table.to_csv(target, sep=sep, index=False)
    return target


def test_lift_takes_the_input_options(first, sample, tmp_path):
    outcomes = _with_outcomes(sample["transactions"], tmp_path / "next.csv")
    plain = cli("lift", first.run_dir, "--transactions", outcomes, "-o", tmp_path / "plain.csv")
    assert plain.returncode == 0, plain.stderr
    expected = pd.read_csv(tmp_path / "plain.csv")
    assert expected["conversion_target"].max() > 0
    european = _with_outcomes(sample["transactions"], tmp_path / "eu.csv", sep=";",
                              decimal=",")
    refused = cli("lift", first.run_dir, "--transactions", european)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    read = cli("lift", first.run_dir, "--transactions", european, "--delimiter", ";",
               "--decimal", ",", "-q", "-o", tmp_path / "eu_lift.csv")
    assert read.returncode == 0, read.stderr
    assert read.stderr == ""
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "eu_lift.csv"), expected)
    # --config alone: its [input] path, read with its [columns] and [input] options; its
    # [features] as_of (the run's) does not cut the outcome window
    config = write_config(tmp_path / "eu.toml", european)
    config.write_text(config.read_text().replace(
        "[input]\n", '[input]\ndelimiter = ";"\ndecimal = ","\n', 1))
    from_config = cli("lift", first.run_dir, "--config", config, "-o", tmp_path / "cfg.csv")
    assert from_config.returncode == 0, from_config.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cfg.csv"), expected)
    # --as-of cuts the outcome data: nothing after the run's as_of is seen
    cut = cli("lift", first.run_dir, "--transactions", outcomes, "--as-of", AS_OF,
              "-o", tmp_path / "cut.csv")
    assert cut.returncode == 0, cut.stderr
    assert pd.read_csv(tmp_path / "cut.csv")["conversion_target"].max() == 0
    neither = cli("lift", first.run_dir)
    assert neither.returncode == 2
    assert "No transactions: give --transactions" in neither.stderr
