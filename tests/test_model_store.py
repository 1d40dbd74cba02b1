import json
import os
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.cluster import BisectingKMeans, KMeans
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rfm_engine.core.model import SegmentationModel
from rfm_engine.core.scoring import RFMScorer, save_scorer
from rfm_engine.errors import ConfigError, ModelIntegrityError
from rfm_engine.integrations.model_store import (
    MOVED_TYPES,
    TRUSTED_TYPES,
    load_model,
    read_manifest,
    record_model,
    save_model,
)
from rfm_engine.io.manifest import sha256_file


@pytest.fixture
def customers() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": list("abcdefgh"),
        "recency_days": [1, 10, 100, 200, 300, 5, 50, 70],
        "frequency": [9, 5, 3, 2, 1, 4, 2, 1],
        "monetary": [900.0, 300.0, 50.0, 20.0, 10.0, 80.0, 40.0, 30.0],
    })


@pytest.fixture
def model(customers) -> SegmentationModel:
    clusterer = make_pipeline(StandardScaler(), KMeans(2, random_state=0, n_init=1))
    return SegmentationModel(clusterer=clusterer).fit(customers)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "models"


# ---------------------------------------------------------------------------- model


def test_model_segments_customers(customers, model):
    out = model.segment(customers)
    # recency edges 7, 42, 76, 160 (reversed); frequency 1.4, 2, 3.2, 4.6; monetary 24, 38, 56, 212
    assert out["rfm_cell"].tolist() == ["555", "455", "233", "121", "111", "544", "323", "312"]
    assert out["segment"].tolist() == [
        "champions", "loyal_customers", "at_risk", "hibernating", "hibernating", "champions",
        "about_to_sleep", "about_to_sleep"]
    assert set(out["cluster"]) == {0, 1}
    assert list(model.get_feature_names_out()) == [
        "r_score", "f_score", "m_score", "rfm_cell", "fm_score", "rfm_score", "cluster"]
    assert model.transform(customers).shape == (8, 7)
    assert list(customers.columns) == ["customer_id", "recency_days", "frequency", "monetary"]


def test_model_keeps_rules_text_and_frozen_scorer(customers):
    frozen = RFMScorer(3).fit(customers[["recency_days", "frequency", "monetary"]])
    model = SegmentationModel(frozen, rules="seed").fit(customers.iloc[:2])
    assert model.scorer_ is not frozen
    np.testing.assert_array_equal(model.scorer_.bin_edges_[0], frozen.bin_edges_[0])
    assert 'name = "seed"' in model.rules_toml_
    assert model.rule_set_.name == "seed"


def test_model_segmentation_is_segment_customers_with_the_frozen_parts(customers, model):
    from rfm_engine.core.pipeline import segment_customers

    small = SegmentationModel(n_bins=3).fit(customers)  # rf-grid is written for 5 levels
    got = small.segmentation(customers)
    want = segment_customers(customers, rules=small.rule_set_, scorer=small.scorer_)
    pd.testing.assert_frame_equal(got.customers, want.customers)
    assert got.warnings == want.warnings
    assert "rfm-engine segments lint rf-grid --bins 3" in got.warnings[0]
    with_clusters = model.segmentation(customers).customers
    pd.testing.assert_frame_equal(
        with_clusters.drop(columns="cluster"),
        segment_customers(customers, rules=model.rule_set_, scorer=model.scorer_).customers)


def test_model_reads_rules_paths_as_load_rules_does(tmp_path, customers):
    from rfm_engine.core.segments import load_rules

    folder = tmp_path / "version=2"  # an '=' in a path does not make it TOML text
    folder.mkdir()
    path = folder / "vip.toml"
    path.write_text('name = "vip"\n[[rules]]\nsegment = "best"\nr = 5\n', encoding="utf-8")
    model = SegmentationModel(rules=str(path)).fit(customers)
    assert model.rules_toml_ == path.read_text(encoding="utf-8")
    assert model.rule_set_.segments == load_rules(str(path)).segments == ("best", "Other")
    for missing in (str(folder / "gone.toml"), "rules/rf-grid"):
        with pytest.raises(ConfigError, match=r"^Rule file .* not found\.$"):
            load_rules(missing)
        with pytest.raises(ConfigError, match=r"^Rule file .* not found\.$"):
            SegmentationModel(rules=missing).fit(customers)


def test_model_refuses_bad_params(customers):
    with pytest.raises(ConfigError, match="'rules' parameter of SegmentationModel"):
        SegmentationModel(rules=3).fit(customers)
    with pytest.raises(ConfigError, match="Unknown rule set 'gold'"):
        SegmentationModel(rules="gold").fit(customers)
    with pytest.raises(ConfigError, match="'clusterer' parameter .* fit and predict"):
        SegmentationModel(clusterer=object()).fit(customers)


# ---------------------------------------------------------------------------- round trip


def test_round_trip(customers, model, folder):
    path = save_model(model, folder)
    assert path == folder / "model.skops"
    entry = read_manifest(folder)["models"]["model"]
    assert entry["file"] == "model.skops"
    assert entry["sha256"] == sha256_file(path)
    assert entry["format"] == "skops"
    assert entry["rfm_engine_version"] == "0.1.0"
    assert entry["source"] is None
    expected = model.segment(customers)
    for ref in ("model", "model.skops", path, str(path)):
        loaded = load_model(ref, folder)
        assert isinstance(loaded, SegmentationModel)
        pd.testing.assert_frame_equal(loaded.segment(customers), expected)


def test_save_keeps_other_entries_and_records_source(model, folder):
    save_model(model, folder, "weekly", source="models:/rfm-segmentation/3")
    save_model(model, folder, "model")
    models = read_manifest(folder)["models"]
    assert sorted(models) == ["model", "weekly"]
    assert models["weekly"]["source"] == "models:/rfm-segmentation/3"


def test_trusted_types_are_what_the_bundle_needs(model):
    assert skops.io.get_untrusted_types(data=skops.io.dumps(model)) == [
        "rfm_engine.core.model.SegmentationModel", "rfm_engine.core.scoring.RFMScorer"]
    assert len(TRUSTED_TYPES) == len(set(TRUSTED_TYPES)) == 5


def test_clustering_pipeline_round_trips(customers, folder):
    from rfm_engine.core import clustering
    model = SegmentationModel(clusterer=clustering.make_pipeline(2)).fit(customers)
    assert set(skops.io.get_untrusted_types(data=skops.io.dumps(model))) <= set(TRUSTED_TYPES)
    save_model(model, folder)
    pd.testing.assert_frame_equal(load_model("model", folder).segment(customers),
                                  model.segment(customers))


@pytest.mark.parametrize("name", ["", "../x", "a/b", "model.skops", "-x"])
def test_save_refuses_bad_names(model, folder, name):
    with pytest.raises(ConfigError, match="A model name must be"):
        save_model(model, folder, name)


def test_save_refuses_types_it_could_not_load(customers, folder):
    model = SegmentationModel(clusterer=BisectingKMeans(2, random_state=0)).fit(customers)
    with pytest.raises(ConfigError, match="outside TRUSTED_TYPES, so it could not be loaded"):
        save_model(model, folder)
    assert not folder.exists() or not any(folder.iterdir())


# ---------------------------------------------------------------------------- hash check


def test_hash_mismatch_in_manifest(model, folder, monkeypatch):
    save_model(model, folder)
    manifest = read_manifest(folder)
    manifest["models"]["model"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(skops.io, "loads", _never)
    with pytest.raises(ModelIntegrityError, match="does not match 000000000000"):
        load_model("model", folder)


def test_tampered_file_is_refused_before_deserializing(model, folder, monkeypatch):
    path = save_model(model, folder)
    with open(path, "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(skops.io, "loads", _never)
    monkeypatch.setattr(skops.io, "get_untrusted_types", _never)
    with pytest.raises(ModelIntegrityError, match="was changed or replaced") as info:
        load_model("model.skops", folder)
    assert info.value.exit_code == 6


def test_unrecorded_file_is_refused(model, folder):
    path = save_model(model, folder)
    (folder / "copy.skops").write_bytes(path.read_bytes())
    with pytest.raises(ModelIntegrityError, match="not recorded in .*manifest.json"):
        load_model("copy.skops", folder)


def test_missing_manifest_is_refused(model, folder):
    save_model(model, folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(ModelIntegrityError, match="manifest.json not found"):
        load_model("model.skops", folder)


def test_unreadable_manifest_is_refused(model, folder):
    save_model(model, folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="cannot read the model manifest"):
        load_model("model", folder)


def test_unknown_name_and_missing_folder(model, folder, tmp_path):
    save_model(model, folder)
    with pytest.raises(ConfigError, match="No model named 'other' .* recorded: model"):
        load_model("other", folder)
    with pytest.raises(ConfigError, match="Models folder .*nowhere.* does not exist"):
        load_model("model", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="Model file .*gone.skops.* not found"):
        load_model("gone.skops", folder)


# ---------------------------------------------------------------------------- paths


def test_path_outside_folder_is_refused(model, folder, tmp_path):
    elsewhere = save_model(model, tmp_path / "elsewhere")
    folder.mkdir()
    with pytest.raises(ModelIntegrityError, match="outside the models folder"):
        load_model(elsewhere, folder)
    with pytest.raises(ModelIntegrityError, match="'..' is not allowed"):
        load_model(folder / ".." / "elsewhere" / "model.skops", folder)
    sub = folder / "sub"
    sub.mkdir()
    (sub / "model.skops").write_bytes(elsewhere.read_bytes())
    with pytest.raises(ModelIntegrityError, match="outside the models folder"):
        load_model(sub / "model.skops", folder)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
@pytest.mark.parametrize("target", ["inside", "outside"])
def test_symlink_is_refused(model, folder, tmp_path, target):
    path = save_model(model, folder)
    source = path if target == "inside" else save_model(model, tmp_path / "elsewhere")
    link = folder / "link.skops"
    link.symlink_to(source)
    manifest = read_manifest(folder)
    manifest["models"]["link"] = {**manifest["models"]["model"], "file": "link.skops"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for ref in ("link", "link.skops", link):
        with pytest.raises(ModelIntegrityError, match="is a symlink"):
            load_model(ref, folder)
    with pytest.raises(ModelIntegrityError, match="is a symlink"):
        record_model("link.skops", folder)


# ---------------------------------------------------------------------------- types


class Planted:
    """Not in TRUSTED_TYPES; records whether skops ever rebuilt it."""

    rebuilt = False

    def __init__(self):
        self.payload = "x"

    def __setstate__(self, state):
        Planted.rebuilt = True
        self.__dict__.update(state)


def _bisecting(customers):
    return BisectingKMeans(2, random_state=0).fit(customers[["frequency"]])


@pytest.mark.parametrize("make", [lambda c: Planted(), lambda c: {"call": print}, _bisecting],
                         ids=["class", "function", "sklearn-internal-types"])
def test_untrusted_type_is_refused(folder, customers, make):
    obj = make(customers)
    folder.mkdir()
    path = folder / "evil.skops"
    skops.io.dump(obj, path)
    untrusted = skops.io.get_untrusted_types(file=path)
    assert untrusted and not set(untrusted) & set(TRUSTED_TYPES)
    record_model(path.name, folder)  # the hash matches: the type check must still refuse
    with pytest.raises(ModelIntegrityError, match=r"evil.skops holds type\(s\) .* outside "
                                                  r"TRUSTED_TYPES"):
        load_model("evil", folder)
    assert not Planted.rebuilt


def test_trusted_but_wrong_object_is_refused(folder, customers):
    folder.mkdir()
    skops.io.dump(KMeans(2, n_init=1, random_state=0).fit(customers[["frequency"]]),
                  folder / "kmeans.skops")
    record_model("kmeans.skops", folder)
    with pytest.raises(ModelIntegrityError, match="holds a sklearn.cluster.*KMeans, not a "
                                                  "SegmentationModel"):
        load_model("kmeans", folder)


# ---------------------------------------------------------------------------- joblib, JSON


def test_joblib_loads_only_after_hash_check(customers, model, folder, monkeypatch):
    folder.mkdir()
    path = folder / "legacy.joblib"
    joblib.dump(model, path)
    save_model(model, folder)  # a manifest exists, without the joblib file
    calls = []
    real_load = joblib.load
    monkeypatch.setattr(joblib, "load", lambda f: calls.append(f) or real_load(f))
    with pytest.raises(ModelIntegrityError, match="not recorded"):
        load_model("legacy.joblib", folder)
    assert calls == []
    record_model(path.name, folder, source="hand-made")
    loaded = load_model("legacy", folder)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(loaded.segment(customers), model.segment(customers))
    with open(path, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model("legacy", folder)
    assert len(calls) == 1


def test_json_scorer_is_wrapped(customers, model, folder):
    folder.mkdir()
    save_scorer(model.scorer_, folder / "scorer.json")
    entry = record_model("scorer.json", folder)
    assert entry["format"] == "scorer-json"
    loaded = load_model("scorer", folder, rules="rf-grid")
    assert isinstance(loaded, SegmentationModel)
    expected = model.segment(customers).drop(columns="cluster")
    pd.testing.assert_frame_equal(loaded.segment(customers), expected)
    (folder / "scorer.json").write_text((folder / "scorer.json").read_text() + " ")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model("scorer.json", folder)


def test_format_must_match_suffix(model, folder):
    save_model(model, folder)
    manifest = read_manifest(folder)
    manifest["models"]["model"]["format"] = "joblib"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="records format 'joblib'"):
        load_model("model", folder)


def test_unsupported_suffix(folder):
    folder.mkdir()
    (folder / "model.pkl").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"unsupported model file suffix '\.pkl'"):
        record_model("model.pkl", folder)


def _never(*args, **kwargs):
    raise AssertionError("deserialization reached before the integrity check")


def test_bundle_with_rfm_clusterer_round_trips(tmp_path):
    import numpy as np

    from rfm_engine.core.clustering import RFMClusterer
    from rfm_engine.core.model import SegmentationModel
    from rfm_engine.integrations.model_store import load_model, save_model

    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"customer_id": [str(i) for i in range(300)],
                              "recency_days": rng.integers(0, 300, 300),
                              "frequency": rng.integers(1, 10, 300),
                              "monetary": rng.lognormal(3, 1, 300)})
    model = SegmentationModel(clusterer=RFMClusterer(n_clusters=3)).fit(customers)
    save_model(model, tmp_path)
    loaded = load_model("model", tmp_path)
    np.testing.assert_array_equal(loaded.transform(customers), model.transform(customers))
    pd.testing.assert_frame_equal(loaded.clusterer_.cluster_centers_,
                                  model.clusterer_.cluster_centers_)


# --- models saved before the layered layout (tests/data/premove_model/README.md) -------------

PREMOVE = Path(__file__).parent / "data" / "premove_model"


@pytest.fixture(scope="module")
def premove_customers() -> pd.DataFrame:
    from rfm_engine import customer_features, load_transactions

    return customer_features(load_transactions(PREMOVE / "transactions.csv"))


@pytest.mark.parametrize("file, clustered", [("model.skops", False),
                                             ("clustered.skops", True),
                                             ("clustered.joblib", True)])
def test_models_saved_before_the_move_load_and_segment_as_now(premove_customers, file,
                                                               clustered):
    from rfm_engine.core.clustering import RFMClusterer

    clusterer = RFMClusterer(n_clusters=3, random_state=0) if clustered else None
    now = SegmentationModel(n_bins=4, rules="classic", clusterer=clusterer)
    now.fit(premove_customers)
    old = load_model(file, PREMOVE)
    assert type(old) is SegmentationModel and type(old.scorer_) is RFMScorer
    assert ("cluster" in old.segment(premove_customers)) is clustered
    pd.testing.assert_frame_equal(old.segment(premove_customers), now.segment(premove_customers))
    assert "rfm_engine.model" not in sys.modules  # the old names stood in only while loading


def test_old_files_record_old_paths_and_new_files_new_ones(tmp_path):
    old = skops.io.get_untrusted_types(data=(PREMOVE / "clustered.skops").read_bytes())
    assert "rfm_engine.model.SegmentationModel" in old
    assert set(old) == set(MOVED_TYPES)  # every old path the file names is mapped
    assert set(MOVED_TYPES.values()) == set(TRUSTED_TYPES)
    save_model(load_model("clustered.skops", PREMOVE), tmp_path)
    new = skops.io.get_untrusted_types(data=(tmp_path / "model.skops").read_bytes())
    assert set(new) == set(TRUSTED_TYPES)


def test_an_old_path_that_is_not_mapped_is_refused(tmp_path, monkeypatch):
    import shutil

    from rfm_engine.integrations import model_store

    shutil.copytree(PREMOVE, tmp_path / "models")
    monkeypatch.setattr(model_store, "MOVED_TYPES", {
        k: v for k, v in MOVED_TYPES.items() if not k.endswith("RFMScorer")})
    with pytest.raises(ModelIntegrityError,
                       match=r"holds type\(s\) rfm_engine\.scoring\.RFMScorer outside "
                             r"TRUSTED_TYPES"):
        load_model("model.skops", tmp_path / "models")
