import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib.axes import Axes
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import silhouette_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from rfm_engine.core.clustering import (
    Clustering,
    RFMClusterer,
    cluster_customers,
    make_pipeline,
    name_clusters,
    plot_elbow,
    plot_silhouette,
    signed_expm1,
    signed_log1p,
    silhouettes,
)
from rfm_engine.errors import ConfigError, InputError, MissingColumnsError

FEATURES = ["recency_days", "frequency", "monetary"]
# Raw (recency_days, frequency, monetary) profiles, far apart on the signed-log scale;
# the last one is a group of net returners (negative monetary).
PROFILES = [(3, 30, 20_000.0), (40, 6, 900.0), (400, 1, 30.0), (120, 2, -300.0), (15, 1, 5.0)]


def blobs(k: int, per_group: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers in ``k`` tight groups around PROFILES; returns the frame and group ids."""
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for g, (r, f, m) in enumerate(PROFILES[:k]):
        for _ in range(per_group):
            rows.append(
                (
                    round(r * rng.uniform(0.85, 1.15)),
                    max(1, round(f * rng.uniform(0.9, 1.1))),
                    round(m * rng.uniform(0.85, 1.15), 2),
                )
            )
            groups.append(g)
    frame = pd.DataFrame(rows, columns=FEATURES)
    frame.insert(0, "customer_id", [f"c{i:04d}" for i in range(len(frame))])
    return frame, np.asarray(groups)


@pytest.fixture
def customers() -> pd.DataFrame:
    frame, groups = blobs(3)
    frame["segment"] = np.asarray(["champions", "loyal", "lost"])[groups]
    return frame


# ---------------------------------------------------------------------- sklearn conventions


@parametrize_with_checks(
    [
        RFMClusterer(),
        RFMClusterer(k_range=(2, 4), chunk_size=7, n_jobs=2),
        RFMClusterer(3, algorithm="minibatch", sample_size=30),
    ]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_unfitted_predict_raises():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        RFMClusterer().predict([[1.0, 1.0, 1.0]])


def test_transform_set_output_pandas(customers):
    clusterer = RFMClusterer(3).set_output(transform="pandas")
    distances = clusterer.fit_transform(customers[FEATURES])
    assert list(distances.columns) == ["distance_0", "distance_1", "distance_2"]
    # Each row's nearest centroid is its label.
    assert (distances.to_numpy().argmin(axis=1) == clusterer.labels_).all()


# ---------------------------------------------------------------------- choosing k, labels


@pytest.mark.parametrize("true_k", [2, 3, 4, 5])
def test_silhouette_finds_the_true_k(true_k):
    frame, groups = blobs(true_k)
    clusterer = RFMClusterer(k_range=(2, 8)).fit(frame[FEATURES])
    assert clusterer.n_clusters_ == true_k
    assert clusterer.k_scores_["k"].tolist() == list(range(2, 9))
    assert list(clusterer.k_scores_.columns) == ["k", "inertia", "silhouette"]
    assert clusterer.k_scores_["inertia"].is_monotonic_decreasing
    # The clusters are the groups.
    assert pd.crosstab(clusterer.labels_, groups).gt(0).sum().eq(1).all()


def test_labels_ordered_by_descending_centroid_monetary():
    frame, groups = blobs(5)
    clusterer = RFMClusterer(5).fit(frame[FEATURES])
    centers = clusterer.cluster_centers_
    assert centers.index.name == "cluster" and centers.index.tolist() == [0, 1, 2, 3, 4]
    assert list(centers.columns) == FEATURES
    assert centers["monetary"].is_monotonic_decreasing
    # PROFILES sorted by monetary: 0, 1, 2, 4, 3 (the net returners last).
    assert clusterer.labels_[groups == 0][0] == 0 and clusterer.labels_[groups == 3][0] == 4
    # The centroids are back in raw units, close to the profiles.
    assert centers.loc[0, "monetary"] == pytest.approx(20_000, rel=0.1)
    assert centers.loc[4, "monetary"] == pytest.approx(-300, rel=0.1)
    # pipeline_ itself carries the renumbering.
    np.testing.assert_array_equal(
        clusterer.pipeline_.predict(frame[FEATURES].to_numpy()), clusterer.labels_
    )


def test_unnamed_three_columns_are_r_f_m(customers):
    clusterer = RFMClusterer(3).fit(customers[FEATURES].to_numpy())
    assert list(clusterer.cluster_centers_.columns) == FEATURES
    assert not hasattr(clusterer, "feature_names_in_")


def test_fixed_n_clusters_scores_only_that_k(customers):
    clusterer = RFMClusterer(4).fit(customers[FEATURES])
    assert clusterer.n_clusters_ == 4
    assert clusterer.k_scores_["k"].tolist() == [4]
    assert clusterer.algorithm_ == "kmeans"


@pytest.mark.parametrize("algorithm", ["auto", "kmeans", "minibatch"])
def test_algorithms_recover_the_groups(algorithm):
    frame, groups = blobs(4)
    clusterer = RFMClusterer(4, algorithm=algorithm).fit(frame[FEATURES])
    assert clusterer.algorithm_ == ("kmeans" if algorithm == "auto" else algorithm)
    assert pd.crosstab(clusterer.labels_, groups).gt(0).sum().eq(1).all()


def test_k_range_limited_by_distinct_rows():
    X = np.repeat([[1.0, 1.0, 10.0], [50.0, 3.0, 100.0], [300.0, 1.0, 5.0]], 10, axis=0)
    clusterer = RFMClusterer(k_range=(2, 10)).fit(X)
    assert clusterer.k_scores_["k"].tolist() == [2, 3]
    assert clusterer.n_clusters_ == 3


def test_deterministic_across_runs_and_row_order():
    # More rows than sample_size, so the sample matters.
    frame, _ = blobs(4, per_group=500, seed=3)
    params = {"sample_size": 300, "k_range": (2, 6)}
    first = RFMClusterer(**params).fit(frame[FEATURES])
    again = RFMClusterer(**params).fit(frame[FEATURES])
    np.testing.assert_array_equal(first.labels_, again.labels_)
    pd.testing.assert_frame_equal(first.k_scores_, again.k_scores_)

    shuffled = frame.sample(frac=1.0, random_state=11)
    other = RFMClusterer(**params).fit(shuffled[FEATURES])
    pd.testing.assert_frame_equal(first.cluster_centers_, other.cluster_centers_)
    pd.testing.assert_frame_equal(first.k_scores_, other.k_scores_)
    by_id = pd.Series(other.labels_, index=shuffled["customer_id"])
    np.testing.assert_array_equal(by_id.loc[frame["customer_id"]].to_numpy(), first.labels_)


def test_random_state_changes_the_sample():
    frame, _ = blobs(4, per_group=500, seed=3)
    a = RFMClusterer(4, sample_size=100, random_state=0).fit(frame[FEATURES])
    b = RFMClusterer(4, sample_size=100, random_state=1).fit(frame[FEATURES])
    assert a.k_scores_["inertia"].iloc[0] != b.k_scores_["inertia"].iloc[0]


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_chunked_predict_equals_unchunked(chunk_size, n_jobs):
    frame, _ = blobs(5, per_group=40)
    whole = RFMClusterer(5, chunk_size=10**6).fit(frame[FEATURES])
    chunked = RFMClusterer(5, chunk_size=chunk_size, n_jobs=n_jobs).fit(frame[FEATURES])
    np.testing.assert_array_equal(chunked.labels_, whole.labels_)
    np.testing.assert_array_equal(chunked.predict(frame[FEATURES]), whole.predict(frame[FEATURES]))
    np.testing.assert_allclose(
        chunked.transform(frame[FEATURES]), whole.transform(frame[FEATURES]), rtol=0, atol=1e-12
    )
    assert chunked.predict(frame[FEATURES]).dtype == np.int64


def test_negative_monetary_is_fine():
    frame, groups = blobs(4)
    assert (frame["monetary"] < 0).sum() == 60
    result = cluster_customers(frame, n_clusters=4)
    returners = result.customers.loc[groups == 3, "cluster"]
    assert returners.nunique() == 1
    assert result.clusterer.cluster_centers_.loc[returners.iloc[0], "monetary"] < 0
    assert np.isfinite(result.clusterer.transform(frame[FEATURES])).all()


def test_signed_log_round_trip():
    x = np.array([-1e6, -3.5, -1e-9, 0.0, 1e-9, 2.0, 1e9])
    np.testing.assert_allclose(signed_expm1(signed_log1p(x)), x, rtol=1e-12)
    assert np.all(np.diff(signed_log1p(x)) > 0)


@settings(max_examples=25, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(8, 40), st.just(3)),
        elements=st.floats(-1e4, 1e4, allow_nan=False, width=32),
    ),
    st.randoms(use_true_random=False),
)
def test_labels_invariants(X, random):
    clusterer = RFMClusterer(k_range=(2, 4), sample_size=20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = clusterer.fit_predict(X)
    except ConfigError as exc:  # too few distinct rows
        assert "too few" in str(exc)
        return
    assert labels.dtype == np.int64
    assert set(labels) <= set(range(clusterer.n_clusters_))
    np.testing.assert_array_equal(clusterer.predict(X), labels)
    order = list(range(len(X)))
    random.shuffle(order)
    np.testing.assert_array_equal(clusterer.predict(X[order]), labels[order])


# ---------------------------------------------------------------------- silhouette


def test_silhouettes_match_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    X[:20] = X[0]  # duplicates
    label_sets = [rng.integers(0, k, 300) for k in (2, 3, 7)]
    label_sets.append(np.r_[0, np.ones(299, dtype=int)])  # a singleton cluster
    expected = [silhouette_score(X, labels) for labels in label_sets]
    np.testing.assert_allclose(
        silhouettes(X, label_sets, chunk_rows=64), expected, rtol=0, atol=1e-12
    )
    assert np.isnan(silhouettes(X, [np.zeros(300)])[0])


# ---------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"n_clusters": 0},
            r"The 'n_clusters' parameter of RFMClusterer must be None or an int "
            r">= 1\. Got 0 instead\.",
        ),
        ({"n_clusters": 2.5}, r"'n_clusters' .* Got 2\.5 instead"),
        ({"n_clusters": True}, r"'n_clusters' .* Got True instead"),
        (
            {"k_range": (1, 5)},
            r"The 'k_range' parameter of RFMClusterer must be a pair of ints "
            r"\(low, high\) with 2 <= low <= high\. Got \(1, 5\) instead\.",
        ),
        ({"k_range": (6, 5)}, r"'k_range' .* Got \(6, 5\) instead"),
        ({"k_range": 5}, r"'k_range' .* Got 5 instead"),
        (
            {"sample_size": 1},
            r"The 'sample_size' parameter of RFMClusterer must be None or an int "
            r">= 2\. Got 1 instead\.",
        ),
        (
            {"algorithm": "elkan"},
            r"The 'algorithm' parameter of RFMClusterer must be one of 'auto', "
            r"'kmeans', 'minibatch'\. Got 'elkan' instead\.",
        ),
        ({"random_state": -1}, r"'random_state' .* Got -1 instead"),
        (
            {"n_jobs": 0},
            r"The 'n_jobs' parameter of RFMClusterer must be None or a nonzero int\. "
            r"Got 0 instead\.",
        ),
        (
            {"chunk_size": 0},
            r"The 'chunk_size' parameter of RFMClusterer must be an int >= 1\. "
            r"Got 0 instead\.",
        ),
    ],
)
def test_bad_parameters_raise_config_error(customers, params, match):
    with pytest.raises(ConfigError, match=match):
        RFMClusterer(**params).fit(customers[FEATURES])
    if "chunk_size" not in params:
        with pytest.raises(ConfigError, match=match):
            cluster_customers(customers, **params)


def test_too_few_rows_raise_config_error():
    with pytest.raises(
        ConfigError,
        match=r"n_samples=2 \(2 sampled, 2 distinct\) is too few "
        r"to choose k in k_range=\(2, 10\)",
    ):
        RFMClusterer().fit([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    with pytest.raises(
        ConfigError,
        match=r"n_samples=3 \(3 sampled\) should be >= "
        r"n_clusters=4",
    ):
        RFMClusterer(4).fit([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])


def test_make_pipeline_rejects_unknown_algorithm():
    with pytest.raises(
        ConfigError,
        match=r"'algorithm' parameter of make_pipeline .* "
        r"Got 'auto' instead",
    ):
        make_pipeline(3, "auto")


# ---------------------------------------------------------------------- names


def test_names_profile_majority_segment_and_unique():
    frame, groups = blobs(5)
    # 80% of each group in its own segment, the rest in "mixed".
    segments = np.asarray([f"seg{g}" for g in groups], dtype=object)
    segments[np.arange(len(groups)) % 5 == 0] = "mixed"
    frame["segment"] = segments
    result = cluster_customers(frame, n_clusters=5)
    names = result.names
    assert sorted(names) == [0, 1, 2, 3, 4]
    assert len(set(names.values())) == 5
    for g in range(5):
        label = int(result.customers.loc[groups == g, "cluster"].iloc[0])
        assert names[label].startswith(f"C{label} ")
        assert names[label].endswith(f"(mostly seg{g})")
    assert names[0] == "C0 recent·frequent·high-value (mostly seg0)"
    lapsed = int(result.customers.loc[groups == 2, "cluster"].iloc[0])
    assert names[lapsed] == f"C{lapsed} lapsed·one-off·mid-value (mostly seg2)"
    assert result.customers["cluster_name"].dtype == "str"
    assert (result.customers["cluster_name"] == result.customers["cluster"].map(names)).all()


def test_name_clusters_hand_computed():
    customers = pd.DataFrame(
        {
            "recency_days": [1, 2, 3, 100, 200, 300],
            "frequency": [1, 1, 1, 2, 5, 9],
            "monetary": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "segment": ["new", "new", "promising", "lost", "lost", "at_risk"],
        }
    )
    centers = pd.DataFrame(
        {
            "recency_days": [2.0, 250.0, 100.0],
            "frequency": [1.0, 7.0, 2.0],
            "monetary": [20.0, 55.0, 35.0],
        },
        index=[0, 1, 2],
    )
    # Mid-ranks (share below + half the share equal): recency 2 -> 1.5/6, 250 -> 5/6,
    # 100 -> 3.5/6; frequency 1 -> 1.5/6, 7 -> 5/6, 2 -> 3.5/6; monetary 20 -> 1.5/6,
    # 55 -> 5/6, 35 -> 3/6. Below 1/3 is the low word, above 2/3 the high one.
    names = name_clusters(centers, customers, [0, 0, 0, 1, 1, 1])
    assert names == {
        0: "C0 recent·one-off·low-value (mostly new)",
        1: "C1 lapsed·frequent·high-value (mostly lost)",
        2: "C2 cooling·repeat·mid-value",
    }  # no members: no segment
    assert (
        name_clusters(centers, customers.drop(columns="segment"), [0, 1, 2, 0, 1, 2])[0]
        == "C0 recent·one-off·low-value"
    )


def test_name_clusters_ties_go_to_the_alphabetically_first_segment():
    customers = pd.DataFrame(
        {
            "recency_days": [1, 2],
            "frequency": [1, 1],
            "monetary": [1.0, 2.0],
            "segment": ["zeta", "alpha"],
        }
    )
    centers = pd.DataFrame({"recency_days": [1.5], "frequency": [1.0], "monetary": [1.5]})
    assert name_clusters(centers, customers, [0, 0])[0].endswith("(mostly alpha)")


def test_name_clusters_errors(customers):
    with pytest.raises(MissingColumnsError, match=r"customers: missing column\(s\) 'monetary'"):
        name_clusters(pd.DataFrame(columns=FEATURES), customers.drop(columns="monetary"), [])
    with pytest.raises(MissingColumnsError, match=r"centers: missing column\(s\) 'frequency'"):
        name_clusters(pd.DataFrame(columns=["recency_days", "monetary"]), customers, [])
    with pytest.raises(
        InputError,
        match=r"labels must have one value per customer \(180\); "
        r"got shape \(3,\)",
    ):
        name_clusters(pd.DataFrame(columns=FEATURES), customers, [0, 1, 2])


# ---------------------------------------------------------------------- result object


def test_cluster_customers_result(customers):
    before = customers.copy()
    result = cluster_customers(customers, k_range=(2, 6))
    pd.testing.assert_frame_equal(customers, before)  # caller's frame untouched
    assert isinstance(result, Clustering)
    out = result.customers
    assert list(out.columns) == list(customers.columns) + ["cluster", "cluster_name"]
    assert out["cluster"].dtype == np.int64
    assert result.clusterer.n_clusters_ == 3
    # Segments coincide with the clusters.
    assert result.adjusted_rand_index == pytest.approx(1.0)
    crosstab = result.crosstab
    assert crosstab.to_numpy().sum() == len(customers)
    assert list(crosstab.index) == list(result.names.values())
    assert sorted(crosstab.columns) == ["champions", "lost", "loyal"]
    assert (crosstab.gt(0).sum(axis=1) == 1).all()

    summary = result.summary
    assert list(summary.columns) == [
        "cluster",
        "cluster_name",
        "customers",
        "share",
        "revenue",
        "revenue_share",
        "mean_recency_days",
        "mean_frequency",
        "mean_monetary",
    ]
    assert summary["customers"].sum() == len(customers)
    assert summary["share"].sum() == pytest.approx(1.0)
    assert summary["revenue_share"].sum() == pytest.approx(1.0)
    assert summary.loc[0, "mean_monetary"] == pytest.approx(
        customers.loc[out["cluster"] == 0, "monetary"].mean()
    )

    metrics = result.metrics()
    assert metrics["k"] == 3
    assert metrics["adjusted_rand_index"] == pytest.approx(1.0)
    row = result.k_scores.set_index("k").loc[3]
    assert metrics["silhouette"] == row["silhouette"] and metrics["inertia"] == row["inertia"]


def test_ari_below_one_when_segments_differ(customers):
    shuffled = customers.assign(
        segment=customers["segment"].sample(frac=1.0, random_state=0).to_numpy()
    )
    result = cluster_customers(shuffled, n_clusters=3)
    assert result.adjusted_rand_index < 0.1


def test_without_segment_column(customers):
    result = cluster_customers(customers.drop(columns="segment"), n_clusters=3)
    assert result.crosstab is None and result.adjusted_rand_index is None
    assert result.metrics()["adjusted_rand_index"] is None
    assert "mostly" not in " ".join(result.names.values())


def test_cluster_customers_missing_columns(customers):
    with pytest.raises(
        MissingColumnsError,
        match=r"customers: missing column\(s\) 'frequency'; "
        r"available: 'customer_id'",
    ):
        cluster_customers(customers.drop(columns="frequency"))


# ---------------------------------------------------------------------- plots


def test_plots_return_axes(customers):
    result = cluster_customers(customers, k_range=(2, 5))
    for ax in (
        result.plot_elbow(),
        result.plot_silhouette(),
        plot_elbow(result.k_scores),
        plot_silhouette(result.k_scores),
    ):
        assert isinstance(ax, Axes)
    ax = result.plot_silhouette()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chosen k = 3"]
    own = plot_elbow(result.k_scores).figure.add_subplot(2, 1, 2)
    assert plot_silhouette(result.k_scores, own) is own


def test_write_plots_is_byte_identical(customers, tmp_path):
    result = cluster_customers(customers, k_range=(2, 5))
    first = result.write_plots(tmp_path / "a")
    assert [p.name for p in first] == ["elbow.png", "silhouette.png"]
    again = cluster_customers(customers, k_range=(2, 5)).write_plots(tmp_path / "b")
    rewritten = result.write_plots(tmp_path / "a")
    for a, b, c in zip(first, again, rewritten, strict=True):
        assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["elbow.png", "silhouette.png"]
