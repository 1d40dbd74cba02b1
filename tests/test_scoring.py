import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from rfm_engine.core.scoring import (
    SCORER_FORMAT_VERSION,
    BinsCollapsedWarning,
    RFMScorer,
    load_scorer,
    save_scorer,
)
from rfm_engine.errors import ConfigError

RFM_OUT = ["r_score", "f_score", "m_score", "rfm_cell", "fm_score", "rfm_score"]


@pytest.fixture
def customers():
    """Six customers; expected n_bins=3 scores are worked out in test_hand_computed_scores."""
    return pd.DataFrame(
        {
            "recency_days": [3, 10, 10, 45, 120, 400],
            "frequency": [6, 1, 1, 2, 3, 1],
            "monetary": [500.0, 20.0, 35.0, 80.0, 150.0, 10.0],
        },
        index=pd.Index(["c1", "c2", "c3", "c4", "c5", "c6"], name="customer_id"),
    )


# RFMScorer follows scikit-learn's conventions without deriving from BaseEstimator (importing
# scikit-learn would cost more than the whole segmentation of a small file): the checks say so.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Estimator RFMScorer does not inherit", UserWarning)
    _SKLEARN_CHECKS = parametrize_with_checks(
        [RFMScorer(), RFMScorer(n_bins=3, reverse=[]), RFMScorer(n_bins=9)])


@_SKLEARN_CHECKS
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        check(estimator)


def test_hand_computed_scores(customers):
    # Levels 1/3 and 2/3 fall at sorted positions 5/3 and 10/3 (linear interpolation).
    # recency (reversed, on -x): sorted -400,-120,-45,-10,-10,-3 -> edges -70, -10,
    #   i.e. raw edges [10, 70] with left-closed bins: 3->3, 10->2, 45->2, 120->1, 400->1.
    # frequency: sorted 1,1,1,2,3,6 -> edges 1, 2+1/3: 1->1, 2->2, 3->3, 6->3.
    # monetary: sorted 10,20,35,80,150,500 -> edges 30, 80+70/3: 10,20->1; 35,80->2; else 3.
    scorer = RFMScorer(n_bins=3).set_output(transform="pandas")
    out = scorer.fit_transform(customers)
    expected = pd.DataFrame(
        {
            "r_score": [3, 2, 2, 2, 1, 1],
            "f_score": [3, 1, 1, 2, 3, 1],
            "m_score": [3, 1, 2, 2, 3, 1],
            "rfm_cell": [333, 211, 212, 222, 133, 111],
            "fm_score": [3, 1, 2, 2, 3, 1],  # (1 + 2) / 2 = 1.5 rounds half up to 2
            "rfm_score": [9, 4, 5, 6, 7, 3],
        },
        index=customers.index,
        dtype="int64",
    )
    pd.testing.assert_frame_equal(out, expected)
    assert scorer.bin_edges_[0].tolist() == pytest.approx([10.0, 70.0])
    assert scorer.bin_edges_[1].tolist() == pytest.approx([1.0, 7 / 3])
    assert scorer.bin_edges_[2].tolist() == pytest.approx([30.0, 80 + 70 / 3])
    assert scorer.reverse_.tolist() == [True, False, False]
    assert scorer.closed_.tolist() == ["left", "right", "right"]
    assert scorer.n_bins_.tolist() == [3, 3, 3]


def test_tied_frequency_keeps_bottom_and_top_scores():
    # Sorted positions 9*[.2, .4, .6, .8] = 1.8, 3.6, 5.4, 7.2 -> edges 1, 1, 1.4, 2.2.
    freq = pd.DataFrame({"frequency": [1, 1, 1, 1, 1, 1, 2, 2, 3, 7]})
    with pytest.warns(
        BinsCollapsedWarning, match=r"'frequency'.* 4 distinct scores \[1, 3, 4, 5\]"
    ):
        scorer = RFMScorer(n_bins=5).fit(freq)
    assert scorer.transform(freq).ravel().tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert scorer.bin_edges_[0].tolist() == pytest.approx([1.0, 1.0, 1.4, 2.2])
    assert scorer.n_bins_.tolist() == [4]
    assert scorer.scores_[0].tolist() == [1, 3, 4, 5]
    assert scorer.max_score_.tolist() == [5]


def test_tied_frequency_sixty_percent_ones_large():
    rng = np.random.default_rng(20240601)
    n = 1000
    freq = np.where(np.arange(n) < 600, 1, 1 + rng.geometric(0.3, size=n))
    rng.shuffle(freq)
    frame = pd.DataFrame({"frequency": freq})
    with pytest.warns(BinsCollapsedWarning, match="'frequency'"):
        scores = RFMScorer().fit_transform(frame).ravel()
    assert set(scores[freq == 1]) == {1}
    assert scores[freq == freq.max()].tolist() == [5] * int((freq == freq.max()).sum())
    assert scores[freq > 1].min() > 1


def test_fixed_edges_right_closed_and_reversed():
    frame = pd.DataFrame(
        {
            "recency_days": [10, 30, 31, 90, 400],
            "frequency": [1, 2, 3, 4, 5],
            "monetary": [50.0, 50.01, 100.0, 600.0, 0.0],
        }
    )
    edges = {"recency_days": [30, 90, 180, 365], "monetary": [50, 100, 500]}
    scorer = RFMScorer(edges=edges).set_output(transform="pandas")
    out = scorer.fit_transform(frame)
    # recency: #edges below x = 0, 0, 1, 1, 4 -> reversed 5 - k.
    assert out["r_score"].tolist() == [5, 5, 4, 4, 1]
    # monetary: #edges below x = 0, 1, 1, 3, 0 -> 1 + k on a 1..4 scale.
    assert out["m_score"].tolist() == [1, 2, 2, 4, 1]
    assert out["f_score"].tolist() == [1, 2, 3, 4, 5]
    assert scorer.max_score_.tolist() == [5, 5, 4]
    assert scorer.n_bins_.tolist() == [5, 5, 4]
    assert scorer.closed_.tolist() == ["right", "right", "right"]


def test_fixed_edges_by_position_on_unnamed_input():
    X = np.array([[1.0, 5.0], [2.0, 15.0]])
    scorer = RFMScorer(n_bins=2, edges={1: [10]}, reverse=[]).fit(X)
    assert scorer.transform(X).tolist() == [[1, 1], [2, 2]]
    assert scorer.get_feature_names_out().tolist() == ["x0_score", "x1_score"]


def test_reversed_recency_and_explicit_reverse(customers):
    out = RFMScorer(n_bins=3).fit_transform(customers)
    recency = customers["recency_days"].to_numpy()
    assert out[np.argmin(recency), 0] == 3
    assert out[np.argmax(recency), 0] == 1
    flipped = RFMScorer(n_bins=3, reverse=["frequency"]).fit_transform(customers)
    assert flipped[np.argmin(recency), 0] == 1  # recency no longer reversed
    # frequency reversed, on -x: sorted -6,-3,-2,-1,-1,-1 -> edges -7/3, -1; the tied ones
    # sit on the top edge, so like any tie on an edge they take the lower score (2).
    assert flipped[:, 1].tolist() == [1, 2, 2, 2, 1, 2]


def test_unnamed_three_columns_are_rfm(customers):
    scorer = RFMScorer(n_bins=3)
    out = scorer.fit_transform(customers.to_numpy())
    assert scorer.reverse_.tolist() == [True, False, False]
    assert scorer.get_feature_names_out().tolist() == RFM_OUT
    assert out[:, 3].tolist() == [333, 211, 212, 222, 133, 111]


def test_set_output_pandas_columns(customers):
    out = RFMScorer(n_bins=3).set_output(transform="pandas").fit_transform(customers)
    assert out.columns.tolist() == RFM_OUT
    assert (out.dtypes == "int64").all()


def test_rfm_columns_in_other_order_still_derive(customers):
    reordered = customers[["monetary", "recency_days", "frequency"]]
    scorer = RFMScorer(n_bins=3).set_output(transform="pandas")
    out = scorer.fit_transform(reordered)
    assert out.columns.tolist() == ["m_score", "r_score", "f_score", *RFM_OUT[3:]]
    assert out["rfm_cell"].tolist() == [333, 211, 212, 222, 133, 111]


def test_other_feature_names(customers):
    frame = customers.assign(tenure_days=[400, 30, 60, 90, 500, 800])
    scorer = RFMScorer(n_bins=3).fit(frame)
    assert scorer.get_feature_names_out().tolist() == [
        "r_score",
        "f_score",
        "m_score",
        "tenure_days_score",
    ]
    assert scorer.rfm_index_ is None
    assert scorer.transform(frame).shape == (6, 4)


def test_frozen_edges_score_new_values(customers):
    scorer = RFMScorer(n_bins=3).fit(customers)
    new = pd.DataFrame({"recency_days": [0, 9999], "frequency": [100, 0], "monetary": [1e6, -5.0]})
    out = scorer.transform(new)
    assert out[:, :3].tolist() == [[3, 3, 3], [1, 1, 1]]


@pytest.mark.parametrize("n_bins", [1, 10, 2.5, True, "5", None])
def test_bad_n_bins(customers, n_bins):
    message = (
        rf"The 'n_bins' parameter of RFMScorer must be an int in \[2, 9\]\. "
        rf"Got {repr(n_bins)} instead\."
    )
    with pytest.raises(ConfigError, match=message):
        RFMScorer(n_bins=n_bins).fit(customers)


@pytest.mark.parametrize(
    ("edges", "match"),
    [
        ([30, 90], r"'edges' parameter of RFMScorer must be None or a dict"),
        ({"recency_days": [90, 30]}, r"feature 'recency_days' a strictly ascending list"),
        ({"frequency": [1, 1]}, r"feature 'frequency' a strictly ascending list"),
        ({"frequency": list(range(9))}, r"1 to 8 finite numbers \(at most 9 bins\)"),
        ({"frequency": []}, r"1 to 8 finite numbers"),
        ({"frequency": [1, np.inf]}, r"finite numbers"),
        ({"tenure": [1]}, r"names feature 'tenure', which is not in the input; features: "),
        ({3: [1]}, r"names feature 3, which is not in the input"),
        ({"frequency": [1], 1: [2]}, r"gives feature 'frequency' twice"),
        ({2.5: [1]}, r"keys\. Got key 2\.5 instead"),
    ],
)
def test_bad_edges(customers, edges, match):
    with pytest.raises(ConfigError, match=match):
        RFMScorer(edges=edges).fit(customers)


@pytest.mark.parametrize(
    ("reverse", "match"),
    [
        ("recency_days", r"'reverse' parameter of RFMScorer must be 'auto' or a list"),
        (5, r"'reverse' parameter of RFMScorer must be 'auto' or a list.*Got 5 instead"),
        (["recency"], r"'reverse' parameter of RFMScorer names feature 'recency'"),
    ],
)
def test_bad_reverse(customers, reverse, match):
    with pytest.raises(ConfigError, match=match):
        RFMScorer(reverse=reverse).fit(customers)


def test_nan_and_inf_rejected(customers):
    bad = customers.astype({"monetary": float})
    bad.loc["c2", "monetary"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RFMScorer().fit(bad)
    scorer = RFMScorer(n_bins=3).fit(customers)
    bad.loc["c2", "monetary"] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        scorer.transform(bad)


def test_not_fitted_and_wrong_columns(customers):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        RFMScorer().transform(customers)
    scorer = RFMScorer(n_bins=3).fit(customers)
    with pytest.raises(ValueError, match="feature names should match"):
        scorer.transform(customers.rename(columns={"monetary": "revenue"}))


def test_json_round_trip(tmp_path, customers):
    scorer = RFMScorer(n_bins=4, edges={"monetary": [50, 100, 400]}).fit(customers)
    path = save_scorer(scorer, tmp_path / "scorer.json")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["format_version"] == SCORER_FORMAT_VERSION
    assert saved["fitted"]["feature_names_in"] == ["recency_days", "frequency", "monetary"]
    loaded = load_scorer(path)
    assert loaded.get_params() == scorer.get_params()
    assert loaded.to_dict() == scorer.to_dict()
    np.testing.assert_array_equal(loaded.transform(customers), scorer.transform(customers))
    np.testing.assert_array_equal(loaded.n_bins_, scorer.n_bins_)
    assert loaded.get_feature_names_out().tolist() == RFM_OUT
    probe = pd.DataFrame(
        {"recency_days": [0, 10, 70, 71], "frequency": [1, 2, 9, 0], "monetary": [50, 51, 1, 1e9]}
    )
    np.testing.assert_array_equal(loaded.transform(probe), scorer.transform(probe))


def test_round_trip_unfitted_and_positional_edges():
    scorer = RFMScorer(3, edges={0: [1.5]}, reverse=[1])
    loaded = RFMScorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
    assert loaded.get_params() == {"n_bins": 3, "edges": {0: [1.5]}, "reverse": [1]}
    with pytest.raises(NotFittedError, match="not fitted yet"):
        loaded.transform([[1.0, 2.0]])


def _fitted_dict(customers):
    return RFMScorer(n_bins=3).fit(customers).to_dict()


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda d: d.pop("fitted"), r"missing key\(s\) 'fitted'"),
        (lambda d: d.update(format_version=99), r"'format_version' is 99; this rfm-engine reads"),
        (lambda d: d.update(format="pickle"), r"'format' is 'pickle'"),
        (lambda d: d["params"].update(n_bins=12), r"'n_bins' parameter .* Got 12 instead"),
        (
            lambda d: d["fitted"]["features"][1].update(edges=[3, 1]),
            r"features\[1\]\.edges must be an ascending list",
        ),
        (
            lambda d: d["fitted"]["features"][0].update(closed="both"),
            r"features\[0\]\.closed must be 'left' or 'right'",
        ),
        (
            lambda d: d["fitted"]["features"][0].update(reverse=False),
            r"'reverse' flags .* do not match 'params\.reverse'",
        ),
        (lambda d: d["fitted"].update(n_features_in=2), r"'feature_names_in' must be null or 2"),
        (
            lambda d: d["params"].update(edges=[{"feature": "monetary", "edges": [5.0, 9.0]}]),
            r"does not match the fixed edges \[5\.0, 9\.0\] given for 'monetary'",
        ),
    ],
)
def test_load_malformed_file(tmp_path, customers, corrupt, match):
    data = _fitted_dict(customers)
    corrupt(data)
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"scorer\.json: .*{match}"):
        load_scorer(path)


def test_load_not_json_or_missing(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON \(line 1, column 12"):
        load_scorer(path)
    with pytest.raises(ConfigError, match=r"absent\.json: cannot read the scorer file"):
        load_scorer(tmp_path / "absent.json")


# ---------------------------------------------------------------- properties

_rows = st.lists(
    st.tuples(
        st.integers(0, 1000),
        st.integers(1, 40),
        st.floats(-1e4, 1e7, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
)


def _frame(rows):
    return pd.DataFrame(rows, columns=["recency_days", "frequency", "monetary"])


def _assert_monotone(raw, scores, decreasing):
    order = np.argsort(raw, kind="stable")
    steps = np.diff(scores[order])
    assert (steps <= 0).all() if decreasing else (steps >= 0).all()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(train=_rows, probe=_rows, n_bins=st.integers(2, 9))
def test_score_properties(train, probe, n_bins):
    frame = _frame(train)
    before = frame.copy()
    scorer = RFMScorer(n_bins=n_bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        scorer.fit(frame)
    pd.testing.assert_frame_equal(frame, before)  # input not mutated

    both = pd.concat([frame, _frame(probe)], ignore_index=True)
    before = both.copy()
    out = scorer.transform(both)
    pd.testing.assert_frame_equal(both, before)
    for j, name in enumerate(both.columns):
        raw, scores = both[name].to_numpy(), out[:, j]
        assert ((scores >= 1) & (scores <= n_bins)).all()
        assert np.isin(scores, scorer.scores_[j]).all()
        _assert_monotone(raw, scores, decreasing=(name == "recency_days"))
        # Equal raw values, equal scores.
        assert (pd.Series(scores).groupby(raw).nunique() == 1).all()
    # The bottom keeps its meaning: the worst fitted value of every dimension scores 1.
    fitted = out[: len(frame)]
    assert fitted[frame["recency_days"].to_numpy().argmax(), 0] == 1
    assert fitted[frame["frequency"].to_numpy().argmin(), 1] == 1
    assert fitted[frame["monetary"].to_numpy().argmin(), 2] == 1
    # Derived columns follow from the scores.
    r, f, m = out[:, 0], out[:, 1], out[:, 2]
    np.testing.assert_array_equal(out[:, 3], 100 * r + 10 * f + m)
    np.testing.assert_array_equal(out[:, 4], np.floor((f + m) / 2 + 0.5).astype(int))
    np.testing.assert_array_equal(out[:, 5], r + f + m)
    # A JSON round trip scores identically.
    loaded = RFMScorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
    np.testing.assert_array_equal(loaded.transform(both), out)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    ones=st.integers(0, 80),
    rest=st.lists(st.integers(2, 30), min_size=1, max_size=40),
)
def test_unique_top_frequency_reaches_top_score(ones, rest):
    freq = np.array([1] * ones + rest + [max(rest) + 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BinsCollapsedWarning)
        scores = RFMScorer().fit_transform(pd.DataFrame({"frequency": freq})).ravel()
    assert scores[-1] == 5
    assert scores[freq == freq.min()].max() == 1


def test_scikit_learn_tools_take_the_scorer(customers):
    # RFMScorer does not derive from BaseEstimator (issue 11: process start), yet clone,
    # Pipeline, ColumnTransformer, set_output, nested parameters and pickling work with it.
    import pickle

    from sklearn.base import BaseEstimator, clone
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    scorer = RFMScorer(n_bins=3).set_output(transform="pandas")
    assert not isinstance(scorer, BaseEstimator)
    copy = clone(scorer)
    assert copy.get_params() == scorer.get_params() and not hasattr(copy, "bin_edges_")
    assert repr(RFMScorer(n_bins=3, reverse=[])) == "RFMScorer(n_bins=3, reverse=[])"
    expected = RFMScorer(n_bins=3).fit_transform(customers)
    pipe = make_pipeline(FunctionTransformer(lambda x: x, feature_names_out="one-to-one"),
                         RFMScorer(n_bins=3)).set_output(transform="pandas")
    out = pipe.fit_transform(customers)
    assert out.columns.tolist() == RFM_OUT and out.index.equals(customers.index)
    np.testing.assert_array_equal(out.to_numpy(), expected)
    pipe.set_params(rfmscorer__n_bins=4)
    assert pipe.fit(customers)[-1].max_score_.tolist() == [4, 4, 4]
    columns = ColumnTransformer([("rfm", RFMScorer(n_bins=3), list(customers.columns))])
    np.testing.assert_array_equal(columns.fit_transform(customers), expected)
    fitted = RFMScorer(n_bins=3).fit(customers)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(customers),
                                  expected)
    with pytest.raises(ValueError, match="Invalid parameter 'bins' for estimator RFMScorer"):
        RFMScorer().set_params(bins=3)
