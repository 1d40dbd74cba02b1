import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rfm_engine.core.model import SegmentationModel
from rfm_engine.errors import ComplianceError, ConfigError, MissingDependencyError
from rfm_engine.integrations import tracking
from rfm_engine.integrations.model_store import load_model, read_manifest

CUSTOMERS = pd.DataFrame({
    "customer_id": list("abcdefgh"),
    "recency_days": [1, 10, 100, 200, 300, 5, 50, 70],
    "frequency": [9, 5, 3, 2, 1, 4, 2, 1],
    "monetary": [900.0, 300.0, 50.0, 20.0, 10.0, 80.0, 40.0, 30.0],
})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store with two logged and registered runs, shared by the module."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    summary = root / "segments.csv"
    summary.write_text("segment,customers\nchampions,2\nhibernating,2\n")
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"outputs": [{"path": "segments.csv"}]}))
    first = SegmentationModel().fit(CUSTOMERS)
    second = SegmentationModel(
        n_bins=4, rules="pymc",
        clusterer=make_pipeline(StandardScaler(), KMeans(2, random_state=0, n_init=1)),
    ).fit(CUSTOMERS)
    runs = []
    for model in (first, second):
        runs.append(tracking.track_run(
            "weekly",
            params={"scoring": {"n_bins": model.n_bins, "edges": None}, "rules": model.rules,
                    "long": "x" * 7000},
            metrics={"segment_size": {"champions": 2, "can't lose": 1},
                     "revenue_share": {"champions": 0.8}, "dropped_rows": 3},
            artifacts=[summary, manifest],
            model=model,
            tracking_uri=uri,
            tags={"as_of": "2024-06-03"},
        ))
    return {"uri": uri, "root": root, "runs": runs, "models": (first, second)}


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_track_run_logs_params_metrics_artifacts(store):
    run = _client(store["uri"]).get_run(store["runs"][0]["run_id"])
    params = run.data.params
    assert params["scoring.n_bins"] == "5"
    assert params["scoring.edges"] == "null"
    assert params["rules"] == "rf-grid"
    assert len(params["long"]) == 6000 and params["long"].endswith("...")
    assert run.data.metrics == {
        "segment_size.champions": 2.0,
        "segment_size.can_t lose": 1.0,
        "revenue_share.champions": 0.8,
        "dropped_rows": 3.0,
    }
    assert run.data.tags["rfm_engine.kind"] == "weekly"
    assert run.data.tags["as_of"] == "2024-06-03"
    assert run.info.run_name == "weekly"
    names = {a.path for a in _client(store["uri"]).list_artifacts(run.info.run_id)}
    assert names == {"segments.csv", "manifest.json"}
    assert (store["root"] / "mlruns").is_dir()  # artifacts beside the database


def test_track_run_registers_new_versions(store):
    assert [r["model_version"] for r in store["runs"]] == [1, 2]
    assert all(r["model_uri"].startswith("models:/") for r in store["runs"])


def test_list_models_shows_both(store):
    table = tracking.list_models(tracking_uri=store["uri"])
    assert list(table.columns) == ["version", "run_id", "created", "aliases", "stage",
                                   "status", "source"]
    assert table["version"].tolist() == [1, 2]
    assert table["run_id"].tolist() == [r["run_id"] for r in store["runs"]]
    assert table["status"].tolist() == ["READY", "READY"]
    assert str(table["created"].dt.tz) == "UTC"
    assert tracking.list_models("no-such-model", tracking_uri=store["uri"]).empty


def test_promote_freezes_version_into_models(store, tmp_path):
    folder = tmp_path / "models"
    path = tracking.promote(1, folder=folder, tracking_uri=store["uri"])
    assert path == folder / "model.skops"
    entry = read_manifest(folder)["models"]["model"]
    assert entry["source"] == "models:/rfm-segmentation/1"
    loaded = load_model("model", folder)
    first = store["models"][0]
    pd.testing.assert_frame_equal(loaded.segment(CUSTOMERS), first.segment(CUSTOMERS))
    table = tracking.list_models(tracking_uri=store["uri"])
    assert table["aliases"].tolist() == ["production", ""]

    tracking.promote(2, folder=folder, tracking_uri=store["uri"])
    loaded = load_model("model", folder)
    second = store["models"][1]
    pd.testing.assert_frame_equal(loaded.segment(CUSTOMERS), second.segment(CUSTOMERS))
    assert "cluster" in loaded.segment(CUSTOMERS)
    assert tracking.list_models(tracking_uri=store["uri"])["aliases"].tolist() == [
        "", "production"]


def test_promote_reads_the_store_it_is_given_whatever_the_environment(store, tmp_path,
                                                                      monkeypatch):
    # A registry named by MLFLOW_REGISTRY_URI (set by the user, or leaked by an earlier
    # mlflow.set_registry_uri in the process) must not serve the model of another store.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", other)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)
    tracking.promote(2, folder=tmp_path / "models", tracking_uri=store["uri"],
                     alias="checked")
    loaded = load_model("model", tmp_path / "models")
    pd.testing.assert_frame_equal(loaded.segment(CUSTOMERS),
                                  store["models"][1].segment(CUSTOMERS))
    assert os.environ["MLFLOW_REGISTRY_URI"] == other
    assert os.environ["MLFLOW_TRACKING_URI"] == other


def test_track_run_leaves_the_environment_as_it_was(store, monkeypatch):
    # MLflow's set_tracking_uri/set_registry_uri also set MLFLOW_*_URI in os.environ, which
    # every later subprocess would inherit.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = os.environ.get("MLFLOW_TRACKING_URI")
    tracking.track_run("segment", metrics={"x": 1}, register_as=None, tracking_uri=store["uri"])
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert os.environ.get("MLFLOW_TRACKING_URI") == before


def test_promote_unknown_version(store, tmp_path):
    with pytest.raises(ConfigError, match="No version '9' of registered model "
                                          "'rfm-segmentation'"):
        tracking.promote("9", folder=tmp_path, tracking_uri=store["uri"])


@pytest.mark.parametrize(("name", "text", "match"), [
    ("targets.csv", "customer_id,Email\nc1,x\n", "column\\(s\\) 'Email' look like e-mail"),
    ("counts.csv", "customer_id,contact\nc1,ann@example.com\n", "line 2: holds an e-mail"),
    ("report.json", '{"owner": "ann@example.co.uk"}', "line 1: holds an e-mail"),
    ("report.html", "<p>mailto:bob@shop.example.org</p>", "holds an e-mail"),
])
def test_email_bearing_artifact_is_refused(store, tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    client = _client(store["uri"])
    experiment = client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    before = len(client.search_runs([experiment.experiment_id]))
    with pytest.raises(ComplianceError, match=match):
        tracking.track_run("weekly", params={}, metrics={}, artifacts={name: path},
                           tracking_uri=store["uri"])
    assert len(client.search_runs([experiment.experiment_id])) == before  # nothing logged


def test_email_column_in_parquet_is_refused(store, tmp_path):
    path = tmp_path / "list.parquet"
    pd.DataFrame({"customer_id": ["c1"], "e_mail": ["-"]}).to_parquet(path)
    with pytest.raises(ComplianceError, match="'e_mail' look like e-mail"):
        tracking.track_run("weekly", params={}, metrics={}, artifacts=[path],
                           tracking_uri=store["uri"])


def test_bad_metric_and_artifact(store, tmp_path):
    with pytest.raises(ConfigError, match="Metric 'silhouette' must be a number"):
        tracking.track_run("weekly", params={}, metrics={"silhouette": "high"},
                           artifacts=[], tracking_uri=store["uri"])
    with pytest.raises(ConfigError, match="Artifact .*missing.csv.* not found"):
        tracking.track_run("weekly", params={}, metrics={}, artifacts=[tmp_path / "missing.csv"],
                           tracking_uri=store["uri"])
    with pytest.raises(ConfigError, match="must be a relative path without '..'"):
        tracking.track_run("weekly", params={}, metrics={},
                           artifacts={"../x.csv": tmp_path}, tracking_uri=store["uri"])


def test_telemetry_disabled(store):
    from mlflow.telemetry.utils import is_telemetry_disabled

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert is_telemetry_disabled()


def test_tracking_uri_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert tracking.tracking_uri() == "sqlite:///env.db"
    assert tracking.tracking_uri("sqlite:///arg.db") == "sqlite:///arg.db"


RFM = str(Path(sys.executable).with_name("rfm-engine"))
RETAIL = ("customer_id=Customer ID,order_id=Invoice,order_date=InvoiceDate,quantity=Quantity,"
          "unit_price=Price")


def _without_mlflow(tmp_path):
    """The environment of a subprocess where `import mlflow` fails as if not installed.

    A folder first on PYTHONPATH holds an ``mlflow.py`` that raises the error Python raises
    for a missing module.
    """
    shim = tmp_path / "no_mlflow"
    shim.mkdir()
    (shim / "mlflow.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mlflow'\", name='mlflow')\n")
    env = {**os.environ, "PYTHONPATH": str(shim)}
    env.pop("RFM_ENGINE_NO_TRACKING", None)
    return env


def test_without_mlflow_tracking_is_skipped_with_one_line(tmp_path, data_dir):
    env = _without_mlflow(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import mlflow"], env=env,
                           capture_output=True, text=True, check=False)
    assert probe.returncode == 1 and "No module named 'mlflow'" in probe.stderr
    out = tmp_path / "segments.csv"
    result = subprocess.run([RFM, "segment", str(data_dir / "online_retail_ii_small.csv"),
                             "--columns", RETAIL, "--bins", "2", "-o", str(out)],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    lines = [line for line in result.stderr.replace(str(tmp_path), "TMP").splitlines()
             if "mlflow" in line.lower()]
    assert lines == ["note: MLflow tracking skipped: MLflow is not installed (No module named "
                     "'mlflow'); install it with pip install 'rfm-engine[mlflow]' (or pass "
                     "--no-tracking)."]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    # The registry commands need MLflow: one error line naming the extra, exit 2.
    listed = subprocess.run([RFM, "models", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, check=False)
    assert listed.returncode == 2
    assert listed.stderr.strip().splitlines() == [
        "error: MLflow is not installed (No module named 'mlflow'); install it with "
        "pip install 'rfm-engine[mlflow]'"]


def test_without_mlflow_the_library_raises_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'rfm-engine\[mlflow\]'"):
        tracking.track_run("weekly", metrics={"x": 1})
    with pytest.raises(MissingDependencyError, match="MLflow is not installed"):
        tracking.list_models()


def test_import_is_cheap_and_core_does_not_import_tracking():
    code = (
        "import sys, rfm_engine.integrations.tracking, rfm_engine.integrations.model_store\n"
        "import rfm_engine.core.pipeline\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'\n"
        "del sys.modules['rfm_engine.integrations.tracking']\n"
        "import rfm_engine.runs.weekly, rfm_engine.cli, rfm_engine.core.model\n"
        "assert 'rfm_engine.integrations.tracking' not in sys.modules, 'core imports tracking'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
