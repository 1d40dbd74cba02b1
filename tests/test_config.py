"""The run configuration: strict types, one rule for relative paths, the effective config
that MLflow logs, and the --save-model round trip. Real files, real subprocesses of the
installed command, a real MLflow sqlite store."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pandas as pd
import pytest

import rfm_engine.config as config_module
from rfm_engine.config import Config, config_keys, load_config
from rfm_engine.errors import ConfigError

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
RETAIL = ("customer_id=Customer ID,order_id=Invoice,order_date=InvoiceDate,quantity=Quantity,"
          "unit_price=Price")
RETAIL_TOML = ('[columns]\ncustomer_id = "Customer ID"\norder_id = "Invoice"\n'
               'order_date = "InvoiceDate"\nquantity = "Quantity"\nunit_price = "Price"\n')


def run(*args, cwd=None, env=None):
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env=env)


# --- A. types --------------------------------------------------------------------------------

# (TOML text, expected substring of the one-line error)
TYPE_ERRORS = [
    ('[clustering]\nenabled = "no"',
     "[clustering] enabled: expected true or false, got 'no' (a string)."),
    ("[clustering]\nenabled = 1", "[clustering] enabled: expected true or false, got 1"),
    ('[scoring]\nn_bins = "5"', "[scoring] n_bins: expected an integer, got '5' (a string)."),
    ("[scoring]\nn_bins = 5.0", "[scoring] n_bins: expected an integer, got 5.0 (a float)."),
    ("[output]\nsuppression = 5", "[output] suppression: expected an array, got 5"),
    ("[output]\nsuppression = [1]",
     "[output] suppression[0]: expected a string, got 1 (an integer)."),
    ('[output]\nformat = "mailchump"', "[output] format: expected one of 'generic', "),
    ("[output]\nmax_suppression_age_days = -1",
     "[output] max_suppression_age_days: expected an integer >= 0, got -1"),
    ('[output]\nallow_stale_suppression = "yes"',
     "[output] allow_stale_suppression: expected true or false, got 'yes'"),
    ("[output]\nconsent = true", "[output] consent: expected a string, got true (a boolean)."),
    ('[input]\non_bad_rows = "skip"',
     "[input] on_bad_rows: expected one of 'raise', 'drop', got 'skip' (a string)."),
    ("[input]\nmax_drop_fraction = 2", "[input] max_drop_fraction: expected a number <= 1"),
    ("[input]\npath = 3", "[input] path: expected a string, got 3 (an integer)."),
    ('[features]\nas_of = "31/12/2025"',
     "[features] as_of: expected an ISO date (YYYY-MM-DD), got '31/12/2025' (a string)."),
    ("[features]\nwindow_days = 0", "[features] window_days: expected an integer >= 1, got 0"),
    ('[scoring.edges]\nrecency_days = [30, "90"]',
     "[scoring.edges] recency_days[1]: expected a number, got '90' (a string)."),
    ("[clustering]\nk_range = [2]", "[clustering] k_range: expected 2 values, got [2]"),
    ('[kpis]\nperiod = "week"', "[kpis] period: expected one of 'month', 'quarter'"),
    ('[kpis.inputs]\nreviews = "r.csv"', "[kpis] inputs: unknown input kind(s) 'reviews'"),
    ("[migration.triggers]\nentered_at_risk = 1",
     "[migration.triggers] entered_at_risk: expected a string, got 1 (an integer)."),
    ("[columns]\ncustomer_id = 1", "[columns] customer_id: expected a string, got 1"),
    ("input = 5", "[input]: expected a table, got 5 (an integer)."),
    ("campaigns = 5", "[campaigns]: expected an array, got 5 (an integer)."),
    ("[scoring]\nbins = 5",
     "unknown key(s) bins in [scoring]; allowed: approx_accuracy, edges, model"),
    ("[scorng]\nn_bins = 5", "unknown section(s) scorng; allowed: campaigns, clustering"),
    ('source = "x"', "unknown section(s) source"),
]


@pytest.mark.parametrize(("text", "message"), TYPE_ERRORS, ids=[t for t, _ in TYPE_ERRORS])
def test_a_wrong_type_names_the_key_the_type_and_the_value(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^" + re.escape(f"{path}: ")) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_value_stops_the_command_with_one_line_and_exit_2(tmp_path, data_dir):
    (tmp_path / "c.toml").write_text('[clustering]\nenabled = "no"\n')
    out = tmp_path / "out" / "s.csv"
    result = run("segment", data_dir / "online_retail_ii_small.csv", "--columns", RETAIL,
                 "--config", tmp_path / "c.toml", "-o", out)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'c.toml'}: [clustering] enabled: expected true or false, got "
        "'no' (a string)."]
    assert not out.parent.exists()


def test_one_suppression_file_as_a_string_is_a_one_element_list(tmp_path):
    (tmp_path / "c.toml").write_text('[output]\nsuppression = "crm/unsubscribed.csv"\n')
    config = load_config(tmp_path / "c.toml")
    assert config.output.suppression == [str(tmp_path / "crm" / "unsubscribed.csv")]


def test_toml_dates_and_the_new_output_keys(tmp_path):
    (tmp_path / "c.toml").write_text(
        "[features]\nas_of = 2025-12-31\n[output]\nmax_suppression_age_days = 10\n"
        'allow_stale_suppression = true\nconsent = "consent.csv"\nconsent_required = true\n')
    config = load_config(tmp_path / "c.toml")
    assert config.features.as_of == "2025-12-31"
    assert config.output.consent == str(tmp_path / "consent.csv")
    assert (config.output.max_suppression_age_days, config.output.allow_stale_suppression,
            config.output.consent_required) == (10, True, True)
    defaults = Config().output
    assert (defaults.max_suppression_age_days, defaults.allow_stale_suppression,
            defaults.consent, defaults.consent_required) == (7, False, None, True)


def test_overrides_and_assignments_are_validated():
    config = Config()
    with pytest.raises(ConfigError, match=r"^\[clustering\] enabled: expected true or false, "
                                          r"got 'no' \(a string\)\.$"):
        config.clustering.enabled = "no"
    assert config.clustering.enabled is False
    with pytest.raises(ConfigError, match=r"^--as-of: expected an ISO date \(YYYY-MM-DD\), "
                                          r"got '2025-13-01'"):
        config.with_overrides({"features.as_of": "2025-13-01"},
                              names={"features.as_of": "--as-of"})
    effective = config.with_overrides({"features.as_of": "2025-12-31", "input.path": None})
    assert (effective.features.as_of, effective.input.path) == ("2025-12-31", None)
    assert config.features.as_of is None  # the original is left as it was


def test_a_bad_command_line_override_names_the_option(tmp_path, data_dir):
    result = run("segment", data_dir / "online_retail_ii_small.csv", "--columns", RETAIL,
                 "--window-days", "0", "-o", tmp_path / "s.csv")
    assert result.returncode == 2
    assert "error: --window-days: expected an integer >= 1, got 0 (an integer)." in result.stderr
    assert "Traceback" not in result.stderr


# --- F. every key is listed ------------------------------------------------------------------


def test_config_keys_lists_every_field_and_the_docstring_shows_them():
    keys = config_keys()
    assert {"input.path", "input.table", "input.delimiter", "input.encoding", "input.decimal",
            "output.no_suppression", "output.max_suppression_age_days",
            "output.allow_stale_suppression", "output.consent", "output.consent_required",
            "clustering.sample_size", "clustering.random_state", "scoring.models_dir",
            "kpis.inputs", "columns", "campaigns"} <= set(keys)
    assert "source" not in keys
    doc = config_module.__doc__
    for key in keys:
        *section, name = key.split(".")
        header = f"[{'.'.join(section)}]" if section else None
        if key == "campaigns":
            assert "[[campaigns]]" in doc
        elif key in ("columns", "scoring.edges", "kpis.inputs", "migration.triggers"):
            assert f"[{key}]" in doc, key
        else:
            block = doc[doc.index(header):]
            assert f"\n    {name} = " in block.split("\n\n")[0], key


# --- B. one rule for relative paths ----------------------------------------------------------


def test_default_paths_are_next_to_the_config_file(tmp_path):
    (tmp_path / "c.toml").write_text("[scoring]\nn_bins = 4\n")
    config = load_config(tmp_path / "c.toml")
    assert config.scoring.models_dir == str(tmp_path / "models")
    assert config.output.dir == str(tmp_path / "out")
    assert Config().scoring.models_dir == "models"  # no file: the working folder


def test_a_config_with_a_frozen_model_runs_from_another_working_folder(tmp_path, data_dir):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(data_dir / "online_retail_ii_small.csv", project / "tx.csv")
    saved = run("segment", "tx.csv", "--columns", RETAIL, "--bins", "2", "-o", "week1.csv",
                "--save-model", "models/weekly.skops", cwd=project)
    assert saved.returncode == 0, saved.stderr
    (project / "weekly.toml").write_text(
        '[input]\npath = "tx.csv"\n' + RETAIL_TOML
        + '[scoring]\nmodel = "models/weekly.skops"\n')   # models_dir: the default
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("segment", "--config", project / "weekly.toml", "-o", "week2.csv",
                 cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(project / "week1.csv"),
                                  pd.read_csv(elsewhere / "week2.csv"))


# --- C. the effective config is what MLflow logs ---------------------------------------------


def _params(uri):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs(client.get_experiment_by_name("rfm-engine").experiment_id)
    return [run.data.params for run in runs]


def test_segment_and_cluster_log_the_effective_config(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("RFM_ENGINE_NO_TRACKING")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = data_dir / "online_retail_ii_small.csv"
    (tmp_path / "c.toml").write_text("[scoring]\nn_bins = 4\n[clustering]\nsample_size = 100\n")
    segmented = run("segment", source, "--config", tmp_path / "c.toml", "--columns", RETAIL,
                    "--as-of", "2010-12-31", "--bins", "2", "--segments", "seed",
                    "-o", tmp_path / "s.csv", "--tracking-uri", uri, cwd=tmp_path)
    assert segmented.returncode == 0, segmented.stderr
    [params] = _params(uri)
    assert params["input.path"] == str(source)
    assert params["columns.customer_id"] == "Customer ID"
    assert params["columns.unit_price"] == "Price"
    assert params["features.as_of"] == "2010-12-31"
    assert params["scoring.n_bins"] == "2"            # the option, not the file's 4
    assert params["segments.rules"] == "seed"
    assert params["scoring.models_dir"] == str(tmp_path / "models")
    assert params["source"] == str(tmp_path / "c.toml")

    clustered = run("cluster", source, "--config", tmp_path / "c.toml", "--columns", RETAIL,
                    "--k", "2", "-o", tmp_path / "k.csv", "--tracking-uri", uri, cwd=tmp_path)
    assert clustered.returncode == 0, clustered.stderr
    params = next(p for p in _params(uri) if p.get("clustering.n_clusters") == "2")
    assert params["clustering.sample_size"] == "100"   # from the file
    assert params["scoring.n_bins"] == "4"
    assert params["input.path"] == str(source)


def test_run_logs_and_records_the_effective_config(tmp_path, monkeypatch):
    from rfm_engine.datasets.sample_data import write_sample

    monkeypatch.delenv("RFM_ENGINE_NO_TRACKING")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    paths = write_sample(tmp_path / "data", n_customers=120, seed=3)
    (tmp_path / "weekly.toml").write_text(
        '[input]\npath = "data/transactions.csv"\n' + RETAIL_TOML
        + 'email = "Email"\n[output]\nformat = "generic"\n[kpis]\nclv = false\n')
    result = run("run", "--config", tmp_path / "weekly.toml", "--as-of", "2025-12-31",
                 "--output-dir", "runs", "--suppression", paths["suppression"],
                 "--format", "mailchimp", "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "runs" / "2025-12-31" / "manifest.json").read_text())
    output = manifest["config"]["output"]
    assert output["dir"] == "runs"
    assert output["format"] == "mailchimp"
    assert output["suppression"] == [str(paths["suppression"])]
    assert manifest["config"]["features"]["as_of"] == "2025-12-31"
    [params] = _params(uri)
    assert params["output.format"] == "mailchimp"
    assert params["output.dir"] == "runs"
    assert params["features.as_of"] == "2025-12-31"
    assert params["input.path"] == str(tmp_path / "data" / "transactions.csv")


# --- D. --save-model saves what the suffix says ----------------------------------------------


def test_save_model_skops_round_trip(tmp_path, data_dir):
    source = data_dir / "online_retail_ii_small.csv"
    saved = run("segment", source, "--columns", RETAIL, "--bins", "2", "-o", "a.csv",
                "--save-model", "models/t.skops", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    model = tmp_path / "models" / "t.skops"
    entry = json.loads((tmp_path / "models" / "manifest.json").read_text())["models"]["t"]
    assert entry["file"] == "t.skops" and entry["format"] == "skops"
    assert entry["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    reused = run("segment", source, "--columns", RETAIL, "--model", "models/t.skops",
                 "-o", "b.csv", cwd=tmp_path)
    assert reused.returncode == 0, reused.stderr
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(a, b)
    again = run("segment", source, "--columns", RETAIL, "-o", "c.csv",
                "--save-model", "models/t.skops", cwd=tmp_path)
    assert again.returncode == 5
    assert "already exists" in again.stderr
    assert not (tmp_path / "c.csv").exists()


def test_save_model_json_stays_the_scorer(tmp_path, data_dir):
    source = data_dir / "online_retail_ii_small.csv"
    saved = run("segment", source, "--columns", RETAIL, "--bins", "2", "-o", "a.csv",
                "--save-model", "scorer.json", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert json.loads((tmp_path / "scorer.json").read_text())["params"]["n_bins"] == 2
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(("name", "message"), [
    ("models/t.joblib", "the suffix must be .json (the scorer, plain JSON) or .skops"),
    ("models/t.pkl", "the suffix must be .json"),
    ("models/t", "got 'none'"),
    ("models/t.v2.skops", "A model name must be 1-100 letters"),
])
def test_save_model_refuses_a_bad_name_before_any_work(tmp_path, name, message):
    result = run("segment", tmp_path / "missing.csv", "-o", tmp_path / "a.csv",
                 "--save-model", tmp_path / name)
    assert result.returncode == 2
    assert message in result.stderr
    assert "missing.csv" not in result.stderr  # refused before reading the input
    assert not (tmp_path / "models").exists() and not (tmp_path / "a.csv").exists()


def test_both_date_keys_share_one_date_type():
    """[input] min_date and [features] as_of use one Annotated date type, no per-class copy."""
    from rfm_engine.config import FeaturesConfig, InputConfig

    date_type = config_module._IsoDate
    for section, key in ((InputConfig, "min_date"), (FeaturesConfig, "as_of")):
        assert not section.__pydantic_decorators__.field_validators, section.__name__
        hint = typing.get_type_hints(section, include_extras=True)[key]
        assert hint == date_type or date_type in typing.get_args(hint), key
    assert [m.func for m in typing.get_args(date_type)[1:]] == [config_module._iso_date]
    config = Config()
    config.input.min_date = pd.Timestamp("2001-02-03").date()
    config.features.as_of = " 2025-12-31 "
    assert (config.input.min_date, config.features.as_of) == ("2001-02-03", "2025-12-31")
    with pytest.raises(ConfigError, match=r"\[input\] min_date: expected an ISO date"):
        config.input.min_date = "03/02/2001"


def test_memory_limit_is_a_size_checked_like_every_key(tmp_path):
    assert Config().input.memory_limit == "1GB"
    (tmp_path / "c.toml").write_text('[input]\nmemory_limit = "512 MiB"\n')
    assert load_config(tmp_path / "c.toml").input.memory_limit == "512 MiB"
    with pytest.raises(ConfigError, match=r"^--memory-limit: expected a memory size such as "
                                          r"'1GB' or '512MB' .*got 'lots'"):
        Config().with_overrides({"input.memory_limit": "lots"},
                                names={"input.memory_limit": "--memory-limit"})
