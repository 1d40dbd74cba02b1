"""The report plots stay readable: no two axis labels overlap, legends cover no data.

Issue 12: the month labels of the retention and revenue charts were printed over each other
from about a year of history on. Each plot is drawn (as the reports save it) and the
bounding boxes of its visible tick labels are compared; histories of 1 to 10 years.
"""

import itertools

import numpy as np
import pandas as pd
import pytest

from rfm_engine import load_transactions
from rfm_engine.io._html import report_png
from rfm_engine.measurement.kpis import cohort_retention, plot_cohort_heatmap, transaction_kpis
from rfm_engine.plotting import compact_amount, label_periods, new_axes
from rfm_engine.reports.kpi_report import plot_segment_revenue

SEGMENTS = ["champions", "loyal_customers", "potential_loyalists", "new_customers",
            "promising", "need_attention", "about_to_sleep", "at_risk", "cant_lose",
            "hibernating", "lost"]


def history(months: int, customers: int = 60, seed: int = 0) -> pd.DataFrame:
    """One order per customer and month at random, over ``months`` months to 2025-12-31."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-12-01") - pd.DateOffset(months=months - 1)
    rows = []
    for m in range(months):
        month = start + pd.DateOffset(months=m)
        for c in rng.choice(customers, size=max(customers // 3, 2), replace=False):
            rows.append((f"c{c:03d}", (month + pd.Timedelta(days=int(c) % 28)).date(),
                         float(rng.integers(5, 500))))
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])


def drawn_labels(ax, axis="x"):
    """Draw the figure as the reports do; return the visible tick labels and their boxes."""
    report_png(ax.figure)
    renderer = ax.figure.canvas.get_renderer()
    ticks = ax.xaxis.get_major_ticks() if axis == "x" else ax.yaxis.get_major_ticks()
    labels = [t.label1 for t in ticks if t.label1.get_visible() and t.label1.get_text()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in labels]


def assert_no_overlap(labels):
    for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
        assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"


def assert_legend_beside(ax):
    renderer = ax.figure.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.bbox.x1, "the legend covers the plotting area"
    assert legend.x1 <= ax.figure.bbox.x1 + 1, "the legend is cut off by the figure's edge"


@pytest.mark.parametrize("months", [1, 3, 12, 24, 36, 60, 120])
@pytest.mark.parametrize("period", ["month", "quarter"])
def test_retention_and_revenue_labels_never_overlap(months, period):
    tx = load_transactions(history(months), as_of="2025-12-20")  # December is partial
    kpis = transaction_kpis(tx, period=period)
    every = kpis.period_labels()
    for ax in (kpis.plot_retention(), kpis.plot_revenue()):
        labels = drawn_labels(ax)
        assert_no_overlap(labels)
        shown = [text for text, _ in labels]
        assert shown[-1] == every[-1] and shown[-1].endswith("*")  # the latest, partial
        assert set(shown) <= set(every)
        assert len(shown) >= min(len(every), 4)  # thinned, not emptied
        assert_legend_beside(ax)


def test_per_segment_plots_keep_their_legend_beside_the_lines():
    tx = load_transactions(history(36), as_of="2025-12-31")
    segments = pd.DataFrame({"customer_id": [f"c{c:03d}" for c in range(60)],
                             "segment": [SEGMENTS[c % len(SEGMENTS)] for c in range(60)]})
    kpis = transaction_kpis(tx, by="segment", segments=segments)
    for ax in (kpis.plot_retention(), kpis.plot_revenue()):
        assert_no_overlap(drawn_labels(ax))
        assert_legend_beside(ax)
    ax = plot_segment_revenue(kpis.to_frame())
    labels = drawn_labels(ax)
    assert_no_overlap(labels)
    assert labels[-1][0] == "2025-12"
    assert_legend_beside(ax)
    colours = [tuple(bars.patches[0].get_facecolor()) for bars in ax.containers]
    assert len(colours) == len(SEGMENTS) == len(set(colours))  # one colour per segment


@pytest.mark.parametrize("months", [6, 24, 40])
def test_cohort_heatmap_labels_never_overlap_and_fit_a_page(months):
    cohorts = cohort_retention(load_transactions(history(months), as_of="2025-12-31"))
    ax = plot_cohort_heatmap(cohorts)
    assert ax.figure.get_size_inches()[0] <= 10.5
    for axis in ("x", "y"):
        labels = drawn_labels(ax, axis)
        assert_no_overlap(labels)
        assert len(labels) >= min(months, 4)
    assert drawn_labels(ax, "y")[-1][0].startswith(f"{cohorts.index[-1]} (n=")  # the latest


def test_label_periods_shows_all_labels_when_they_fit():
    ax = new_axes(10, 3)
    ax.plot(range(4), range(4))
    label_periods(ax, ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4*"])
    assert [text for text, _ in drawn_labels(ax)] == ["2024-Q1", "2024-Q2", "2024-Q3",
                                                      "2024-Q4*"]


def test_compact_amount():
    assert [compact_amount(v) for v in (0, 999, 1_000, 35_000, 1_250_000, 3e9, 0.05)] == [
        "0", "999", "1k", "35k", "1.25M", "3B", "0.05"]
