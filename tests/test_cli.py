"""The CLI through its real entry point: a subprocess running the installed command."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]
RETAIL = ("customer_id=Customer ID,order_id=Invoice,order_date=InvoiceDate,quantity=Quantity,"
          "unit_price=Price,country=Country")


def run(*args, cwd=None):
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture
def cdnow_csv(tmp_path, cdnow):
    path = tmp_path / "cdnow.csv"
    cdnow.to_csv(path, index=False)
    return path


def test_segment_writes_table_summary_and_quality_report(tmp_path, data_dir):
    out = tmp_path / "out" / "segments.csv"
    result = run("segment", data_dir / "online_retail_ii_small.csv", "--columns", RETAIL,
                 "--bins", "2", "-o", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, dtype={"customer_id": str})
    assert table.customer_id.tolist() == ["12346", "13078", "13085", "16321"]
    assert {"r_score", "f_score", "m_score", "rfm_cell", "fm_score", "segment"} <= set(table)
    quality = json.loads(out.with_name("segments.csv.quality.json").read_text())
    assert quality["dropped"]["duplicate_line"] == 1
    summary = pd.read_csv(out.with_name("segments.csv.summary.csv"))
    assert summary.customers.sum() == 4
    assert "missing_customer_id" in result.stderr


def test_python_dash_m_works(tmp_path, data_dir):
    out = tmp_path / "c.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "rfm_engine", "features", data_dir / "online_retail_ii_small.csv",
         "--columns", RETAIL, "-o", out], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(out)) == 4


def test_existing_output_is_refused_then_forced(tmp_path, cdnow_csv):
    out = tmp_path / "f.csv"
    out.write_text("earlier run\n")
    args = ("features", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d",
            "-o", out)
    result = run(*args)
    assert result.returncode == 5
    assert "already exists" in result.stderr
    assert out.read_text() == "earlier run\n"
    assert run(*args, "--force").returncode == 0
    assert len(pd.read_csv(out)) == 2357


def test_malformed_value_exits_2_with_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,order_date,amount\n1,2024-01-01,3\n2,2024-13-45,3\n")
    out = tmp_path / "o" / "x.csv"
    result = run("segment", bad, "-o", out)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        f"error: {bad}, row 2, column 'order_date': got '2024-13-45', expected an ISO 8601 "
        "date or timestamp such as 2024-03-05 or 2024-03-05T14:30:00+01:00. Dates that are "
        "not ISO 8601 need --date-format (e.g. '%d/%m/%Y'); day/month order is never guessed. "
        "Fix the value, or pass --on-bad-rows drop to drop and count such rows."
    ]
    assert "Traceback" not in result.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_missing_columns_and_empty_result_exit_codes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    result = run("features", path, "-o", tmp_path / "o.csv")
    assert result.returncode == 2
    assert "available: 'a', 'b'" in result.stderr
    only_returns = tmp_path / "r.csv"
    only_returns.write_text("customer_id,order_date,amount\n1,2024-01-01,-3\n")
    result = run("features", only_returns, "-o", tmp_path / "o.csv")
    assert result.returncode == 3
    assert "no customer with a purchase" in result.stderr


def test_frozen_model_reused_next_week(tmp_path, cdnow_csv):
    model = tmp_path / "models" / "scorer.json"
    common = ("--columns", "order_date=date", "--date-format", "%Y%m%d")
    first = run("segment", cdnow_csv, *common, "--as-of", "1997-09-30", "--save-model", model,
                "-o", tmp_path / "w1.csv")
    assert first.returncode == 0, first.stderr
    second = run("segment", cdnow_csv, *common, "--model", model, "-o", tmp_path / "w2.csv")
    assert second.returncode == 0, second.stderr
    saved = json.loads(model.read_text())
    assert saved["format"] == "rfm-engine/RFMScorer"
    week2 = pd.read_csv(tmp_path / "w2.csv")
    assert week2.r_score.between(1, 5).all()


def test_clv_summary_command_matches_published(tmp_path, cdnow_csv, data_dir):
    out = tmp_path / "summary.csv"
    result = run("clv-summary", cdnow_csv, "--columns", "order_date=date", "--date-format",
                 "%Y%m%d", "--as-of", "1997-09-30", "--time-unit", "W", "-o", out)
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(out)
    published = pd.read_csv(data_dir / "cdnow_customers_summary_with_transactions.csv")
    assert len(got) == len(published)
    assert got.frequency.sum() == published.x.sum()


def test_config_file_with_relative_paths(tmp_path, data_dir):
    shutil.copy(data_dir / "online_retail_ii_small.csv", tmp_path / "tx.csv")
    (tmp_path / "weekly.toml").write_text(
        '[input]\npath = "tx.csv"\n[columns]\ncustomer_id = "Customer ID"\norder_id = "Invoice"\n'
        'order_date = "InvoiceDate"\nquantity = "Quantity"\nunit_price = "Price"\n'
        '[segments]\nrules = "seed"\n[scoring]\nn_bins = 3\n')
    result = run("segment", "--config", tmp_path / "weekly.toml", "-o", tmp_path / "s.csv",
                 cwd=data_dir)
    assert result.returncode == 0, result.stderr
    assert set(pd.read_csv(tmp_path / "s.csv").segment) <= {"VIP", "Loyal", "Potential", "Other"}


def test_bad_config_key_is_named(tmp_path):
    (tmp_path / "c.toml").write_text("[scoring]\nbins = 5\n")
    result = run("segment", "x.csv", "--config", tmp_path / "c.toml", "-o", tmp_path / "s.csv")
    assert result.returncode == 2
    assert "unknown key(s) bins in [scoring]" in result.stderr


def test_lint_exit_codes(tmp_path):
    assert run("segments", "lint", "rf-grid").returncode == 0
    rules = tmp_path / "r.toml"
    rules.write_text('name = "x"\n[[rules]]\nsegment = "a"\nr = [1, 5]\n'
                     '[[rules]]\nsegment = "never"\nr = 5\n')
    result = run("segments", "lint", rules)
    assert result.returncode == 2
    assert "never" in result.stdout


def test_usage_error_exits_2():
    result = run("segment", "--bins", "x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_tracking_registry_and_promotion_end_to_end(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("RFM_ENGINE_NO_TRACKING")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = data_dir / "online_retail_ii_small.csv"
    first = run("segment", source, "--columns", RETAIL, "--bins", "2", "-o", tmp_path / "a.csv",
                "--tracking-uri", uri, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "model version 1" in first.stderr
    listed = run("models", "list", "--tracking-uri", uri, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[0] == "1"
    promoted = run("models", "promote", "1", "--tracking-uri", uri, cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    assert (tmp_path / "models" / "model.skops").is_file()
    frozen = run("segment", source, "--columns", RETAIL, "--model", "models/model.skops",
                 "--no-tracking", "-o", tmp_path / "b.csv", cwd=tmp_path)
    assert frozen.returncode == 0, frozen.stderr
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(a, b)
    with open(tmp_path / "models" / "model.skops", "ab") as handle:
        handle.write(b"tampered")
    tampered = run("segment", source, "--columns", RETAIL, "--model", "models/model.skops",
                   "--no-tracking", "-o", tmp_path / "c.csv", cwd=tmp_path)
    assert tampered.returncode == 6
    assert "does not match" in tampered.stderr
    assert not (tmp_path / "c.csv").exists()
    assert (tmp_path / "mlflow.db").is_file()


def test_cluster_command_writes_clusters_crosstab_and_plots(tmp_path, cdnow_csv):
    out = tmp_path / "c.csv"
    result = run("cluster", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d",
                 "--k-range", "2..4", "-o", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert {"segment", "cluster", "cluster_name"} <= set(table)
    assert len(table) == 2357
    crosstab = pd.read_csv(tmp_path / "c.csv.crosstab.csv")
    assert crosstab.drop(columns="cluster_name").to_numpy().sum() == 2357
    k_scores = pd.read_csv(tmp_path / "c.csv.k_scores.csv")
    assert k_scores.k.tolist() == [2, 3, 4]
    assert table.cluster.nunique() == k_scores.loc[k_scores.silhouette.idxmax(), "k"]
    for plot in ("c.csv.elbow.png", "c.csv.silhouette.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "adjusted Rand index" in result.stdout
    bad = run("cluster", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d",
              "--k-range", "2-4", "-o", tmp_path / "d.csv")
    assert bad.returncode == 2
    assert "LOW..HIGH" in bad.stderr


def test_clv_command_reproduces_the_published_cdnow_parameters(tmp_path, cdnow_csv):
    out, params = tmp_path / "clv.csv", tmp_path / "params.json"
    result = run("clv", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d",
                 "--as-of", "1997-09-30", "--time-unit", "W", "--horizon", "39", "-o", out,
                 "--params-out", params)
    assert result.returncode == 0, result.stderr
    fitted = json.loads(params.read_text())
    assert set(fitted) == {"model", "time_unit", "bgnbd", "gamma_gamma"}
    assert (fitted["model"], fitted["time_unit"]) == ("bgnbd", "W")
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert fitted["bgnbd"][name] == pytest.approx(value, abs=0.002 if name != "alpha" else 0.02)
    assert fitted["gamma_gamma"]["p"] == pytest.approx(6.25, abs=0.02)
    table = pd.read_csv(out, dtype={"customer_id": str})
    assert len(table) == 2357
    assert table.p_alive.between(0, 1).all()
    # Hardie's spreadsheet: E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 (customer 0001)
    assert table.set_index("customer_id").loc["0001", "expected_purchases"] == pytest.approx(
        1.226, abs=0.002)
    assert (tmp_path / "clv.csv.p_alive.png").read_bytes()[:4] == b"\x89PNG"


def test_lint_prints_and_writes_the_cell_table(tmp_path):
    out = tmp_path / "cells.csv"
    result = run("segments", "lint", "pymc", "--cells", "-o", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, dtype={"cell": str})
    assert len(table) == 64
    assert (table.segment == "Other").sum() == 18
    assert "cell" in result.stdout and "Inactive Customer" in result.stdout


def _leaf_commands(group, prefix=""):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_takes_quiet():
    from rfm_engine.cli import cli

    lacking = [name for name, command in _leaf_commands(cli)
               if not any({"-q", "--quiet"} <= set(p.opts) for p in command.params)]
    assert lacking == []


@pytest.mark.parametrize("where", ["command", "group"])
def test_quiet_prints_nothing_but_writes(tmp_path, data_dir, where):
    out = tmp_path / "segments.csv"
    args = ["segment", data_dir / "online_retail_ii_small.csv", "--columns", RETAIL,
            "--bins", "2", "-o", out]
    result = run(*(args + ["-q"] if where == "command" else ["--quiet", *args]))
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert len(pd.read_csv(out)) == 4
    loud = run(*args, "--force")
    assert "data quality:" in loud.stderr and "wrote 4 customers" in loud.stderr


def test_quiet_keeps_errors(tmp_path):
    result = run("features", tmp_path / "missing.csv", "-q", "-o", tmp_path / "o.csv")
    assert result.returncode == 2
    assert result.stderr.startswith("error:")


def test_segment_table_shows_n_a_for_an_empty_segment():
    import pandas as pd

    from rfm_engine.cli import format_summary

    summary = pd.DataFrame({
        "segment": ["vip", "Other"], "customers": [2, 0], "share": [1.0, 0.0],
        "revenue": [10.0, 0.0], "revenue_share": [1.0, 0.0],
        "mean_recency_days": [3.0, float("nan")], "mean_frequency": [2.0, float("nan")],
        "mean_monetary": [5.0, float("nan")]})
    other = format_summary(summary).splitlines()[2].split()
    assert other[0] == "Other" and other[-3:] == ["n/a", "n/a", "n/a"]
    assert "nan" not in format_summary(summary)


def test_memory_limit_option(tmp_path, cdnow_csv):
    args = ("features", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d")
    bad = run(*args, "--memory-limit", "lots", "-o", tmp_path / "bad.csv")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --memory-limit: expected a memory size such as '1GB' or '512MB' (units B, KB, "
        "MB, GB, TB, KiB, MiB, GiB, TiB), got 'lots' (a string)."]
    assert not (tmp_path / "bad.csv").exists()
    good = run(*args, "--memory-limit", "256MB", "-o", tmp_path / "f.csv")
    assert good.returncode == 0, good.stderr
    assert len(pd.read_csv(tmp_path / "f.csv")) > 0


def test_memory_limit_too_small_is_one_line(tmp_path):
    """DuckDB out of memory under the limit: one line saying which option to raise, exit 2."""
    rng = np.random.default_rng(0)
    n = 200_000
    pd.DataFrame({
        "customer_id": [f"C{i}" for i in rng.integers(0, 50_000, n)],
        "order_id": [f"O{i}" for i in rng.integers(0, 100_000, n)],
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D"),
        "amount": rng.uniform(1, 100, n).round(2),
    }).to_parquet(tmp_path / "tx.parquet")
    result = run("segment", tmp_path / "tx.parquet", "-o", tmp_path / "s.csv", "--no-tracking",
                 "--memory-limit", "1MB")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("error: DuckDB ran out of memory under its memory limit")
    assert "--memory-limit 4GB" in lines[-1]
    assert not (tmp_path / "s.csv").exists()
