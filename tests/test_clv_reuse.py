"""CLV with either purchase model, saved parameters, and the horizon in months.

lifetimes (not installed) is reproduced by an independent implementation of its
``utils._customer_lifetime_value`` (lifetimes 0.11.3): for ``i`` in ``1..time`` months,
the purchases expected between ``(i-1) * factor`` and ``i * factor`` model periods (factor
4.345 for weeks, 30 for days, 1 for months), valued at the Gamma-Gamma expected spend and
discounted by ``(1 + discount_rate) ** i``.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rfm_engine.core.features import clv_summary
from rfm_engine.errors import ConfigError
from rfm_engine.io.loading import load_transactions
from rfm_engine.measurement.clv import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    clv_time,
    customer_lifetime_value,
    fit_clv,
    read_params,
    score_clv,
)

from .conftest import DATA, read_cdnow

RFM = [sys.executable, "-m", "rfm_engine"]
PUBLISHED = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv").rename(
    columns={"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
MODELS = {
    "bgnbd": BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
    "pareto-nbd": ParetoNBDModel.from_params({"r": 0.553, "alpha": 10.578, "s": 0.606,
                                              "beta": 11.669}),
}
GG = GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44})


def lifetimes_clv(model, gg, summary, time=12, discount_rate=0.01, freq="W"):
    """lifetimes' customer_lifetime_value, re-implemented from its published code."""
    factor = {"W": 4.345, "M": 1.0, "D": 30, "H": 30 * 24}[freq]
    value = gg.expected_average_value(summary)
    clv = pd.Series(0.0, index=summary.index)
    for i in np.arange(1, time + 1) * factor:
        purchases = (model.predict_purchases(i, summary)
                     - (model.predict_purchases(i - factor, summary) if i > factor else 0.0))
        clv += value * purchases / (1 + discount_rate) ** (i / factor)
    return clv


@pytest.fixture
def cdnow_csv(tmp_path, cdnow):
    path = tmp_path / "cdnow.csv"
    cdnow.to_csv(path, index=False)
    return path


def run(*args):
    return subprocess.run([*RFM, *map(str, args)], capture_output=True, text=True, timeout=600)


# ---------------------------------------------------------------- time


@pytest.mark.parametrize("name", ["bgnbd", "pareto-nbd"])
def test_monthly_discounting_reproduces_lifetimes_on_cdnow(name):
    model = MODELS[name]
    expected = lifetimes_clv(model, GG, PUBLISHED, time=12, discount_rate=0.01, freq="W")
    time = clv_time("W", horizon=12, horizon_unit="month", discount_rate=0.01,
                    discount_per="month", days_per_month=30.415)
    got = customer_lifetime_value(model, GG, PUBLISHED, **time.kwargs())
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # With the default month (30.4375 days, 4.348 weeks) the totals differ by 0.06%.
    ours = customer_lifetime_value(model, GG, PUBLISHED,
                                   **clv_time("W", horizon=12, horizon_unit="month",
                                              discount_rate=0.01, discount_per="month").kwargs())
    assert ours.sum() / expected.sum() - 1 == pytest.approx(0.0006, abs=0.0003)


def test_daily_model_reproduces_lifetimes_freq_d():
    # A daily summary: the weekly one's ages times 7 and the daily model's scale params.
    daily = PUBLISHED.assign(recency=PUBLISHED.recency * 7, T=PUBLISHED["T"] * 7)
    model = BetaGeoModel.from_params({"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426})
    expected = lifetimes_clv(model, GG, daily, time=6, discount_rate=0.02, freq="D")
    time = clv_time("D", horizon=6, horizon_unit="month", discount_rate=0.02,
                    discount_per="month", days_per_month=30)
    np.testing.assert_allclose(customer_lifetime_value(model, GG, daily, **time.kwargs()),
                               expected, rtol=1e-12)


def test_clv_time_units():
    weeks = clv_time("W", horizon=52)
    assert (weeks.horizon, weeks.discount_rate, weeks.step) == (52.0, 0.0, 1.0)
    assert weeks.description == "52 weeks, not discounted"
    months = clv_time("W", horizon=12, horizon_unit="month", discount_rate=0.01,
                      discount_per="month")
    assert months.horizon == pytest.approx(12 * 30.4375 / 7)
    assert months.step == pytest.approx(30.4375 / 7)
    assert (1 + months.discount_rate) ** months.step == pytest.approx(1.01, rel=1e-14)
    assert months.description == "12 months (52.18 W), discounted 1% per month"
    # a monthly summary: a month is one period, a week 7 / 30.4375 of one
    monthly = clv_time("M", horizon=2, horizon_unit="week")
    assert monthly.horizon == pytest.approx(14 / 30.4375)
    days = clv_time("D", horizon=1, horizon_unit="W", discount_rate=0.1, discount_per="day")
    assert (days.horizon, days.step) == (7.0, 1.0)
    for bad in ({"horizon_unit": "year"}, {"discount_per": "fortnight"},
                {"horizon": 0}, {"discount_rate": -0.1}, {"days_per_month": 0}):
        with pytest.raises(ConfigError):
            clv_time("W", **bad)
    with pytest.raises(ConfigError, match="time_unit"):
        clv_time("Y")


# ---------------------------------------------------------------- both models


def test_fit_clv_with_pareto_nbd_on_cdnow():
    result = fit_clv(PUBLISHED, model="pareto-nbd", horizon=39, discount_rate=0.0,
                     time_unit="W")
    assert result.model == "pareto-nbd" and result.bgnbd is None
    assert list(result.params) == ["pareto_nbd", "gamma_gamma"]
    assert result.params["pareto_nbd"]["r"] == pytest.approx(0.553, abs=0.002)
    np.testing.assert_allclose(result.customers["p_alive"],
                               result.purchase_model.probability_alive(PUBLISHED))
    np.testing.assert_allclose(result.customers["expected_purchases"],
                               result.purchase_model.predict_purchases(39, PUBLISHED))
    # Undiscounted, the steps telescope to expected purchases times expected spend.
    np.testing.assert_allclose(
        result.customers["clv"],
        result.customers["expected_purchases"] * result.customers["expected_average_value"],
        rtol=1e-10)
    document = json.loads(result.to_json())
    assert document["model"] == "pareto-nbd" and document["time_unit"] == "W"
    assert document["fit"]["pareto_nbd"]["log_likelihood"] == pytest.approx(-9595.0, abs=0.05)
    assert document["source"] is None


def test_unknown_model_is_refused():
    with pytest.raises(ConfigError, match="'model'"):
        fit_clv(PUBLISHED, model="pareto")


# ---------------------------------------------------------------- saved parameters


@pytest.mark.parametrize("name", ["bgnbd", "pareto-nbd"])
def test_params_round_trip_scores_without_refitting(tmp_path, name):
    fitted = fit_clv(PUBLISHED, model=name, horizon=52, discount_rate=0.001, time_unit="W")
    path = fitted.write_params(tmp_path / "params.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["model"] == name and document["time_unit"] == "W"
    saved = read_params(path)
    assert saved.model == name and saved.time_unit == "W" and saved.source == str(path)
    assert saved.purchase_model.params_ == fitted.purchase_model.params_
    # New data: half the customers, scored with the saved parameters.
    new = PUBLISHED.iloc[::2]
    again = score_clv(new, saved, horizon=52, discount_rate=0.001)
    assert again.source == str(path)
    assert again.purchase_model.n_customers_ == 0  # nothing was fitted
    pd.testing.assert_frame_equal(
        again.customers.reset_index(drop=True),
        fitted.customers.iloc[::2].reset_index(drop=True), check_exact=False, rtol=1e-12)
    assert json.loads(again.to_json())["fit"][name.replace("-", "_")]["log_likelihood"] is None


def test_params_file_with_intervals_reads_and_intervals_need_a_fit(tmp_path, cdnow_csv):
    fitted = fit_clv(PUBLISHED, model="pareto-nbd", horizon=39, time_unit="W", intervals=0.9)
    path = fitted.write_params(tmp_path / "params.json")
    assert "intervals" in json.loads(path.read_text())
    saved = read_params(path)  # the intervals are not parameters: ignored
    assert saved.purchase_model.params_ == fitted.purchase_model.params_
    refused = run("clv", cdnow_csv, "--columns", "order_date=date", "--date-format", "%Y%m%d",
                  "--params-in", path, "--intervals", "0.9", "-o", tmp_path / "no.csv")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {path}: intervals need a fit (its information matrix); they cannot be given "
        "with saved parameters. Leave out the intervals or the params file.")
    assert not list(tmp_path.glob("no.csv*"))


def test_params_file_of_an_older_version_reads(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
                                "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}))
    saved = read_params(path)
    assert saved.model == "bgnbd" and saved.time_unit is None


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the CLV parameters"),
    ("{not json", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"gamma_gamma": {"p": 1, "q": 2, "v": 3}}', "found neither"),
    ('{"bgnbd": {}, "pareto_nbd": {}, "gamma_gamma": {}}', "found both"),
    ('{"pareto_nbd": {"r": 0.5, "alpha": 10, "s": 0.6, "beta": 11}}',
     "key 'gamma_gamma' is missing"),
    ('{"pareto_nbd": {"r": 0.5, "alpha": 10, "s": 0.6}, "gamma_gamma": {"p": 1, "q": 2, '
     '"v": 3}}', "key 'pareto_nbd': Pareto/NBD parameters must be a mapping with exactly"),
    ('{"pareto_nbd": {"r": 0.5, "alpha": 10, "s": 0.6, "beta": -1}, "gamma_gamma": '
     '{"p": 1, "q": 2, "v": 3}}', "key 'pareto_nbd': The 'beta' parameter must be"),
    ('{"bgnbd": {"r": 0.2, "alpha": 4, "a": 0.8, "b": 2.4}, "gamma_gamma": {"p": "x", '
     '"q": 2, "v": 3}}', "key 'gamma_gamma': The 'p' parameter"),
    ('{"model": "pareto-nbd", "bgnbd": {"r": 0.2, "alpha": 4, "a": 0.8, "b": 2.4}, '
     '"gamma_gamma": {"p": 1, "q": 2, "v": 3}}', "key 'model' is 'pareto-nbd'"),
    ('{"time_unit": "Y", "bgnbd": {"r": 0.2, "alpha": 4, "a": 0.8, "b": 2.4}, '
     '"gamma_gamma": {"p": 1, "q": 2, "v": 3}}', "key 'time_unit' must be one of"),
])
def test_a_bad_params_file_is_one_line_naming_file_and_key(tmp_path, content, message):
    path = tmp_path / "params.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        read_params(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


# ---------------------------------------------------------------- command line


def test_cli_pareto_nbd_months_and_params_in(tmp_path, cdnow_csv):
    common = ["--columns", "order_date=date", "--date-format", "%Y%m%d"]
    out, params = tmp_path / "clv.csv", tmp_path / "params.json"
    fitted = run("clv", cdnow_csv, *common, "--as-of", "1997-09-30", "--model", "pareto-nbd",
                 "--horizon", "12", "--horizon-unit", "month", "--discount-rate", "0.01",
                 "--discount-per", "month", "--days-per-month", "30.415", "-o", out,
                 "--params-out", params)
    assert fitted.returncode == 0, fitted.stderr
    assert "Pareto/NBD r=0.553" in fitted.stdout
    assert "over 12 months (52.14 W), discounted 1% per month" in fitted.stdout
    document = json.loads(params.read_text())
    assert list(document) == ["model", "time_unit", "pareto_nbd", "gamma_gamma"]
    assert document["model"] == "pareto-nbd" and document["time_unit"] == "W"
    for name, value in {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}.items():
        assert abs(document["pareto_nbd"][name] - value) <= 0.005, name
    # lifetimes' figures, from the written parameters on the same customers' summary.
    tx = load_transactions(read_cdnow(), as_of="1997-09-30", columns={"order_date": "date"},
                           date_format="%Y%m%d")
    summary = clv_summary(tx, time_unit="W").set_index("customer_id", drop=False)
    expected = lifetimes_clv(ParetoNBDModel.from_params(document["pareto_nbd"]),
                             GammaGammaModel.from_params(document["gamma_gamma"]), summary)
    table = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    np.testing.assert_allclose(table["clv"].loc[expected.index], expected, rtol=1e-9)

    # New data (the whole file, as of its end) scored with the saved parameters.
    scored = tmp_path / "scored.csv"
    again = run("clv", cdnow_csv, *common, "--params-in", params, "-o", scored)
    assert again.returncode == 0, again.stderr
    assert f"(read from {params}, not fitted)" in again.stdout
    assert "Pareto/NBD r=0.5533, alpha=10.58, s=0.6062, beta=11.67" in again.stdout
    assert len(pd.read_csv(scored)) == 2357

    # The params file decides the model and the time unit; asking for others is refused.
    for extra, words in ((["--model", "bgnbd"], "holds the parameters of 'pareto-nbd'"),
                         (["--time-unit", "D"], "key 'time_unit' is 'W'")):
        refused = run("clv", cdnow_csv, *common, "--params-in", params, *extra,
                      "-o", tmp_path / "no.csv")
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [f"error: {params}: " +
                                                       refused.stderr.split(f"{params}: ")[1]
                                                       .strip()]
        assert words in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "no.csv").exists()

    bad = tmp_path / "bad.json"
    bad.write_text('{"pareto_nbd": {"r": 1}, "gamma_gamma": {"p": 1, "q": 2, "v": 3}}')
    refused = run("clv", cdnow_csv, *common, "--params-in", bad, "-o", tmp_path / "no.csv")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {bad}: key 'pareto_nbd': Pareto/NBD parameters must be a mapping with exactly "
        "the keys r, alpha, s, beta. Got ['r'] instead.")
    assert not list(tmp_path.glob("no.csv*"))


# ---------------------------------------------------------------- the weekly run


def test_weekly_run_scores_with_saved_parameters(tmp_path):
    import hashlib

    from rfm_engine.config import load_config
    from rfm_engine.datasets.sample_data import write_sample
    from rfm_engine.runs import weekly

    paths = write_sample(tmp_path / "sample", n_customers=300, seed=3)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({
        "model": "pareto-nbd", "time_unit": "W",
        "pareto_nbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
        "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}))
    mapping = ('[columns]\ncustomer_id = "Customer ID"\norder_id = "Invoice"\n'
               'order_date = "InvoiceDate"\nquantity = "Quantity"\nunit_price = "Price"\n'
               'email = "Email"\n')
    config = tmp_path / "weekly.toml"
    config.write_text(f'[input]\npath = {json.dumps(str(paths["transactions"]))}\n{mapping}'
                      '[kpis]\nclv_params = "params.json"\n', encoding="utf-8")
    result = weekly.run_weekly(load_config(config), output_dir=tmp_path / "out",
                               suppression=[paths["suppression"]])
    kpis = json.loads((result.run_dir / "kpis.json").read_text())
    assert kpis["predicted_clv_model"]["model"] == "pareto-nbd"
    assert kpis["predicted_clv_model"]["params_file"] == str(params)
    assert kpis["predicted_clv_model"]["params"]["pareto_nbd"]["beta"] == 11.669
    assert kpis["predicted_clv"]["total"] > 0
    entry = result.manifest["inputs"]["clv_params"]
    assert entry["sha256"] == hashlib.sha256(params.read_bytes()).hexdigest()
    assert result.manifest["config"]["kpis"]["clv_params"] == str(params)
    # MLflow: the run's tags name the model used and the params file; its params the config.
    from rfm_engine.integrations import tracking

    tags = tracking.run_tags(result)
    assert tags == {"as_of": result.as_of.isoformat(), "clv_model": "pareto-nbd",
                    "clv_params": str(params)}
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    info = tracking.track_run("weekly", params=result.manifest["config"], tags=tags,
                              tracking_uri=uri)
    logged = MlflowClient(tracking_uri=uri).get_run(info["run_id"]).data
    assert logged.tags["clv_model"] == "pareto-nbd"
    assert logged.params["kpis.clv_params"] == str(params)

    # A bad params file stops the run in one line naming it; no run folder is published.
    params.write_text('{"pareto_nbd": {"r": 1}, "gamma_gamma": {"p": 1, "q": 2, "v": 3}}')
    with pytest.raises(ConfigError, match=r"params\.json: key 'pareto_nbd'"):
        weekly.run_weekly(load_config(config), output_dir=tmp_path / "out2",
                          suppression=[paths["suppression"]])
    assert not list((tmp_path / "out2").glob("*-*-*")) if (tmp_path / "out2").exists() else True
    # ... before any work: the transactions (here missing) are not even read.
    config.write_text(config.read_text().replace(str(paths["transactions"]), "missing.csv"))
    with pytest.raises(ConfigError, match=r"params\.json: key 'pareto_nbd'"):
        weekly.run_weekly(load_config(config), output_dir=tmp_path / "out3",
                          suppression=[paths["suppression"]])


# ---------------------------------------------------------------- rfm-engine kpis


def test_kpis_command_reads_the_clv_keys_of_the_config(tmp_path, cdnow_csv):
    """``kpis --config`` gives the CLV of the weekly run: [kpis] clv_model and clv_params."""
    config = tmp_path / "kpis.toml"
    head = ('[input]\ndate_format = "%Y%m%d"\n[columns]\norder_date = "date"\n'
            '[features]\nas_of = "1997-09-30"\n[kpis]\nclv_model = "pareto-nbd"\n')
    config.write_text(head, encoding="utf-8")

    def kpis(name, *extra):
        done = run("kpis", cdnow_csv, "--config", config, *extra, "-o", tmp_path / name)
        assert done.returncode == 0, done.stderr
        return json.loads((tmp_path / f"{name}.json").read_text())

    fitted = kpis("fitted.csv")["predicted_clv_model"]
    assert fitted["model"] == "pareto-nbd" and fitted["params_file"] is None
    assert abs(fitted["params"]["pareto_nbd"]["beta"] - 11.67) <= 0.005  # fitted, not read
    assert kpis("option.csv", "--model", "bgnbd")["predicted_clv_model"]["model"] == "bgnbd"

    # Saved parameters (BG/NBD's published ones: the file's model wins over clv_model) score
    # the customers: the predicted CLV is clv --params-in's on the same data.
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"model": "bgnbd", "time_unit": "W",
                                  "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793,
                                            "b": 2.426},
                                  "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}))
    config.write_text(head + 'clv_params = "params.json"\n', encoding="utf-8")
    scored = kpis("scored.csv")
    assert scored["predicted_clv_model"] == {
        "model": "bgnbd", "params_file": str(params), "params": {
            "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
            "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}}
    reference = run("clv", cdnow_csv, "--config", config, "--params-in", params,
                    "-o", tmp_path / "clv.csv")
    assert reference.returncode == 0, reference.stderr
    clv = pd.read_csv(tmp_path / "clv.csv")["clv"]
    assert len(clv) == 2357
    assert scored["predicted_clv"]["total"] == pytest.approx(clv.sum(), rel=1e-12, abs=0)
    assert scored["predicted_clv"]["mean"] == pytest.approx(clv.mean(), rel=1e-12, abs=0)
    # --params-in names the same file from the command line.
    config.write_text(head, encoding="utf-8")
    assert kpis("option2.csv", "--params-in", params)["predicted_clv"] == scored["predicted_clv"]

    # A bad params file: one line naming it, exit 2, before the (missing) input is read.
    bad = tmp_path / "bad.json"
    bad.write_text('{"pareto_nbd": {"r": 1}, "gamma_gamma": {"p": 1, "q": 2, "v": 3}}')
    config.write_text(head + 'clv_params = "bad.json"\n', encoding="utf-8")
    for extra in ([], ["--params-in", bad]):
        refused = run("kpis", tmp_path / "missing.csv", "--config", config, *extra,
                      "-o", tmp_path / "no.csv")
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            f"error: {bad}: key 'pareto_nbd': Pareto/NBD parameters "
            "must be a mapping with exactly the keys r, alpha, s, beta. Got ['r'] instead.")
        assert not list(tmp_path.glob("no.csv*"))


def test_config_refuses_an_unknown_clv_model(tmp_path):
    from rfm_engine.config import load_config

    config = tmp_path / "c.toml"
    config.write_text('[kpis]\nclv_model = "pareto"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="clv_model"):
        load_config(config)
