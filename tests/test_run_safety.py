"""The run never fails on valid data: unidentified CLV models, strict JSON, post-publish safety.

Issue 9, "The run fails on valid data": a file where the BG/NBD likelihood has no finite
maximum used to publish the lists and then exit 2 on a NaN metric, with a bare ``NaN`` in
``kpis.json`` and the same numpy warning printed many times.
"""

import contextlib
import datetime as dt
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfm_engine.errors import ModelNotIdentifiedError
from rfm_engine.io.writers import json_text
from rfm_engine.measurement.clv import (
    BetaGeoModel,
    GammaGammaModel,
    fit_clv,
    identification_problem,
    simulate_summary,
)

RFM = [str(Path(sys.executable).with_name("rfm-engine"))]


def _no_constants(constant: str) -> None:
    raise ValueError(f"not strict JSON: {constant}")


def strict_load(text: str) -> object:
    """``json.loads`` that refuses NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_no_constants)


def run(*args, env=None, cwd=None):
    environment = {k: v for k, v in os.environ.items() if k != "RFM_ENGINE_NO_TRACKING"}
    environment.update(env or {})
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=environment, timeout=300)


def steady_buyers(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Customers who all buy every week up to the last day: nobody looks dropped out.

    BG/NBD has no finite maximum on these (r ~ 1e8, a ~ 1e-10) and its predictions are
    NaN: the run used to publish, write ``NaN`` into kpis.json and exit 2.
    """
    rng = np.random.default_rng(seed)
    end = dt.date(2025, 12, 31)
    rows = []
    for c in range(n_customers):
        for week in range(int(rng.integers(3, 60))):
            rows.append((f"C{c:05d}", (end - dt.timedelta(days=7 * week)).isoformat(),
                         round(float(rng.gamma(2, 30)), 2), f"c{c}@example.com"))
    frame = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount", "email"])
    frame.insert(1, "order_id", [f"O{i}" for i in range(len(frame))])
    return frame


# ------------------------------------------------------------------ strict JSON helper


def test_json_text_writes_null_for_non_finite_numbers():
    data = {"nan": float("nan"), "inf": float("inf"), "neg": -math.inf,
            "np_nan": np.float64("nan"), "np_int": np.int64(7), "np_bool": np.bool_(True),
            "array": np.array([1.5, np.nan]), "nested": [{"x": np.float32("inf")}],
            "na": pd.NA, "nat": pd.NaT, "day": dt.date(2025, 12, 31), "path": Path("a/b"),
            np.int64(3): "numpy key"}
    text = json_text(data)
    assert text.endswith("}\n")
    assert strict_load(text) == {
        "nan": None, "inf": None, "neg": None, "np_nan": None, "np_int": 7, "np_bool": True,
        "array": [1.5, None], "nested": [{"x": None}], "na": None, "nat": None,
        "day": "2025-12-31", "path": "a/b", "3": "numpy key"}


def test_json_text_options_and_plain_values():
    assert json_text({"b": 1, "a": [1, 2]}, indent=None, sort_keys=True) == \
        '{"a": [1, 2], "b": 1}\n'
    assert json_text({"name": "Zoë"}, indent=None, ensure_ascii=False) == '{"name": "Zoë"}\n'
    assert json_text(1e308 * 10, indent=None) == "null\n"


def test_every_json_writer_goes_through_the_helper():
    """No module writes JSON with json.dumps directly (one definition of strict JSON)."""
    package = Path(__file__).parents[1] / "rfm_engine"
    offenders = [f"{path.name}:{number}" for path in sorted(package.rglob("*.py"))
                 if path.name != "writers.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if "json.dumps(" in line and ">>>" not in line]
    assert offenders == []


# ------------------------------------------------------------------ CLV identification


def _summary(n_customers, rng_seed=0, repeaters=True):
    rng = np.random.default_rng(rng_seed)
    big_t = rng.uniform(20, 52, n_customers)
    if not repeaters:
        return pd.DataFrame({"customer_id": [str(i) for i in range(n_customers)],
                             "frequency": 0, "recency": 0.0, "T": big_t,
                             "monetary_value": 0.0})
    x = rng.integers(5, 30, n_customers)
    return pd.DataFrame({"customer_id": [str(i) for i in range(n_customers)],
                         "frequency": x, "recency": big_t - rng.uniform(0, 0.3, n_customers),
                         "T": big_t, "monetary_value": rng.gamma(4, 10, n_customers)})


def test_identified_models_have_no_problem():
    summary = simulate_summary(1000, T=39.0, random_state=0)
    assert identification_problem(BetaGeoModel().fit(summary)) is None
    assert identification_problem(GammaGammaModel().fit(summary)) is None


@pytest.mark.parametrize(("params", "match"), [
    ({"r": 0.5, "alpha": 4.0, "a": 3e12, "b": 2.0},
     r"BG/NBD cannot be fitted on these data: its likelihood has no finite maximum "
     r"\(a = 3e\+12\): the drop-out of customers cannot be estimated"),
    ({"r": 2e5, "alpha": 4.0, "a": 1.0, "b": 2e-6},
     r"no finite maximum \(r = 2e\+05, b = 2e-06\): the purchase rate and drop-out"),
])
def test_identification_problem_names_the_runaway_parameters(params, match):
    problem = identification_problem(BetaGeoModel.from_params(params))
    assert problem is not None
    assert re.search(match, problem), problem


def test_gamma_gamma_without_a_population_mean_is_not_identified():
    model = GammaGammaModel.from_params({"p": 6.0, "q": 0.8, "v": 15.0})
    assert identification_problem(model) == (
        "Gamma-Gamma cannot be used on these data: q = 0.8 <= 1, so the population mean "
        "spend p v / (q - 1) that customers without repeat purchases get does not exist.")


def test_fit_clv_refuses_customers_who_never_came_back():
    with pytest.raises(ModelNotIdentifiedError,
                       match=r"too few repeat purchases to fit BG/NBD: none of the 40 customers "
                             r"bought on a second day"):
        fit_clv(_summary(40, repeaters=False))


def test_fit_clv_refuses_a_likelihood_without_maximum_and_warns_nothing_raw():
    summary = _summary(300)  # everybody buys steadily to the end: nobody dropped out
    with pytest.raises(ModelNotIdentifiedError, match=r"BG/NBD cannot be fitted on these data: "
                                                      r"its likelihood has no finite maximum"), \
            np.errstate(all="raise"):
        fit_clv(summary, horizon=52)


def test_fit_clv_keeps_worded_warnings_once():
    summary = simulate_summary(3000, T=39.0, random_state=2)
    summary["monetary_value"] = np.where(summary.frequency > 0,
                                         5.0 * summary.frequency + summary.monetary_value, 0.0)
    with pytest.warns(UserWarning, match=r"frequency and monetary_value are correlated") as got:
        result = fit_clv(summary)
    assert len([w for w in got if "correlated" in str(w.message)]) == 1
    assert result.warnings == [str(w.message) for w in got]
    assert np.isfinite(result.customers.drop(columns="customer_id").to_numpy()).all()


# ------------------------------------------------------------------ through the CLI


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steady")
    steady_buyers(600).to_csv(folder / "tx.csv", index=False)
    (folder / "s.csv").write_text("email\nc1@example.com\n")
    return folder


def test_run_on_unidentifiable_clv_publishes_and_exits_0(steady, tmp_path):
    out = tmp_path / "out"
    result = run("run", "--input", steady / "tx.csv", "--as-of", "2025-12-31",
                 "--suppression", steady / "s.csv", "--output-dir", out,
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert result.returncode == 0, result.stderr
    run_dir = out / "2025-12-31"
    assert (run_dir / "manifest.json").is_file()
    assert any((run_dir / "campaigns").glob("*.csv"))
    skipped = [line for line in result.stderr.splitlines() if "predicted CLV" in line]
    assert len(skipped) == 1, result.stderr
    assert skipped[0].startswith("warning: predicted CLV skipped: BG/NBD cannot be fitted on "
                                 "these data: its likelihood has no finite maximum (")
    assert "RuntimeWarning" not in result.stderr
    assert "Warning:" not in result.stderr
    assert "overflow" not in result.stderr and "invalid value" not in result.stderr
    assert "logged MLflow run" in result.stderr
    kpis = strict_load((run_dir / "kpis.json").read_text())
    assert kpis["predicted_clv"] == {"total": None, "mean": None}
    for path in run_dir.rglob("*.json"):
        strict_load(path.read_text())


def test_clv_command_exits_3_with_one_line_and_writes_nothing(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,order_date,amount\n"
                  + "".join(f"c{i},2025-0{1 + i % 9}-1{i % 9},{10 + i}\n" for i in range(5)))
    out = tmp_path / "o" / "clv.csv"
    result = run("clv", tx, "-o", out, "--params-out", tmp_path / "o" / "p.json")
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tx}: no CLV predicted: too few repeat purchases to fit BG/NBD: "
                      "none of the 5 customers bought on a second day, so nothing tells how "
                      "often customers come back. Nothing was written."]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize("case", ["tiny", "no_repeat"])
def test_run_on_tiny_or_repeatless_files_exits_0(tmp_path, case):
    if case == "tiny":
        lines = [f"c{i},O{i},2025-1{i % 3}-0{1 + i},{5 + i},c{i}@example.com" for i in range(4)]
    else:
        lines = [f"c{i},O{i},2025-{1 + i % 12:02d}-{1 + i % 28:02d},{5 + i},c{i}@example.com"
                 for i in range(60)]
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,order_id,order_date,amount,email\n" + "\n".join(lines) + "\n")
    result = run("run", "--input", tx, "--as-of", "2025-12-31", "--no-suppression",
                 "--output-dir", tmp_path / "out",
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "predicted CLV" in line] == [
        "warning: predicted CLV skipped: too few repeat purchases to fit BG/NBD: none of the "
        f"{len(lines)} customers bought on a second day, so nothing tells how often customers "
        "come back."]
    for path in (tmp_path / "out").rglob("*.json"):
        strict_load(path.read_text())


def test_tracking_failure_after_writing_only_warns(tmp_path):
    """An input whose path holds an address: the e-mail guard refuses the artifacts."""
    folder = tmp_path / "bob@example.com"
    folder.mkdir()
    tx = folder / "tx.csv"
    tx.write_text("customer_id,order_date,amount\na,2025-01-01,10\na,2025-02-01,20\n"
                  "b,2025-01-15,5\n")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    seg = run("segment", tx, "-o", tmp_path / "seg.csv", "--tracking-uri", uri)
    assert seg.returncode == 0, seg.stderr
    assert (tmp_path / "seg.csv").is_file()
    assert [line for line in seg.stderr.splitlines() if line.startswith("warning: MLflow")] == [
        f"warning: MLflow tracking failed ({tmp_path / 'seg.csv.quality.json'}, line 2: holds an "
        "e-mail address. Tracking artifacts must never hold e-mail addresses: log segment "
        "summaries and counts, not target lists.); the outputs are written, the run is not "
        "logged."]
    weekly = run("run", "--input", tx, "--no-suppression", "--output-dir", tmp_path / "out",
                 "--tracking-uri", uri)
    assert weekly.returncode == 0, weekly.stderr
    assert (tmp_path / "out" / "2025-02-01" / "manifest.json").is_file()
    assert "warning: MLflow tracking failed (" in weekly.stderr


# ------------------------------------------------------------------ data-quality counters


def test_every_command_reports_the_real_customer_counts(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,order_id,order_date,amount\n"
                  "a,1,2025-01-01,10\na,2,2025-02-01,20\na,3,2025-02-10,-20\n"
                  "b,4,2025-01-15,5\nb,5,2025-03-01,7\nc,6,2025-02-01,-4\n")
    reports = {}
    for command in ("features", "clv-summary", "kpis", "clv"):
        out = tmp_path / command / "x.csv"
        result = run(command, tx, "-o", out, "--no-clv" if command == "kpis" else "--as-of",
                     *([] if command == "kpis" else ["2025-03-01"]))
        assert result.returncode in (0, 3), result.stderr
        if result.returncode == 0:
            reports[command] = strict_load(out.with_name("x.csv.quality.json").read_text())
    assert set(reports) >= {"features", "clv-summary", "kpis"}
    for command, report in reports.items():
        assert (report["customers"], report["customers_without_purchase"],
                report["non_positive_orders"]) == (2, 1, 2), command


# ------------------------------------------------------------------ property test


def _transactions():
    day = st.integers(0, 400).map(lambda d: (dt.date(2024, 11, 1) + dt.timedelta(days=d)))
    amount = st.one_of(st.just(0.0), st.floats(-50, 300, allow_nan=False).map(lambda v:
                                                                               round(v, 2)))
    line = st.tuples(st.integers(0, 5), st.integers(0, 30), day, amount)
    return st.lists(line, min_size=1, max_size=25)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real MLflow SQLite store shared by the examples (creating one takes seconds).

    The CLI runs in this process here, and MLflow keeps the last tracking and registry
    URIs in module globals (and exports them to the environment, for subprocesses):
    reset them, or later tests' subprocesses would register into this store.
    """
    yield tmp_path_factory.mktemp("mlflow")
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=_transactions(), suppress_first=st.booleans())
def test_any_small_transaction_set_runs_with_a_documented_exit_code(store, monkeypatch, lines,
                                                                     suppress_first):
    """Random small sets (returns, zero amounts, one-day customers) through the whole run,
    tracking on: always exit 0 or a documented code, and every JSON file strict."""
    from rfm_engine.cli import main

    monkeypatch.delenv("RFM_ENGINE_NO_TRACKING", raising=False)
    for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # restored afterwards
        monkeypatch.setenv(variable, f"sqlite:///{store}/mlflow.db")

    with tempfile.TemporaryDirectory(prefix="rfm-run-safe-") as tmp:
        root = Path(tmp)
        rows = ["customer_id,order_id,order_date,amount,email"]
        rows += [f"k{c},O{o},{d.isoformat()},{a},k{c}@example.com" for c, o, d, a in lines]
        (root / "tx.csv").write_text("\n".join(rows) + "\n")
        (root / "s.csv").write_text("email\nnobody@example.com\n"
                                    + ("k0@example.com\n" if suppress_first else ""))
        stderr = io.StringIO()
        argv = ["run", "--input", str(root / "tx.csv"), "--suppression", str(root / "s.csv"),
                "--output-dir", str(root / "out"), "--as-of", "2025-12-31",
                "--tracking-uri", f"sqlite:///{store}/mlflow.db"]
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), \
                pytest.raises(SystemExit) as exited:
            main(argv)
        text = stderr.getvalue()
        assert exited.value.code in (0, 2, 3), text
        assert "Traceback" not in text and "RuntimeWarning" not in text
        assert "encountered in" not in text  # numpy's floating-point warnings, raw
        for path in (root / "out").rglob("*.json"):
            strict_load(path.read_text())
        if exited.value.code == 0:
            assert (root / "out" / "2025-12-31" / "manifest.json").is_file()

