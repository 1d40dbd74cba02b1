"""The page's interactive charts: plotly figures built from a run's tables.

Each function takes a plain table (from :mod:`rfm_engine.ui.folders`) and returns a
``plotly.graph_objects.Figure`` with hover values; none reads a file or holds state.
plotly is part of the optional ``ui`` extra and is imported here only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["cohort_heatmap", "exclusions_bar", "kpi_lines", "rf_heatmap", "segment_revenue",
           "segment_treemap", "segment_trends", "transition_heatmap"]


def rf_heatmap(counts: pd.DataFrame) -> go.Figure:
    """Draw customers per recency score (rows) and frequency score (columns), with counts.

    Parameters
    ----------
    counts : DataFrame
        :attr:`rfm_engine.ui.folders.RunFolder.rf_counts`.
    """
    import plotly.graph_objects as go

    figure = go.Figure(go.Heatmap(
        z=counts.to_numpy(), x=[str(c) for c in counts.columns],
        y=[str(i) for i in counts.index], text=counts.to_numpy(), texttemplate="%{text}",
        colorscale="Blues",
        hovertemplate="R score %{y}, F score %{x}: %{z} customers<extra></extra>"))
    figure.update_layout(title="Customers by recency (R) and frequency (F) score",
                         xaxis_title="F score", yaxis_title="R score",
                         xaxis={"type": "category"},
                         yaxis={"type": "category", "autorange": "reversed"})
    return figure


def segment_treemap(table: pd.DataFrame) -> go.Figure:
    """Draw segments sized by revenue; hover shows customers, revenue and shares.

    Parameters
    ----------
    table : DataFrame
        ``segment``, ``customers``, ``revenue``, ``share``, ``revenue_share``.
    """
    import plotly.graph_objects as go

    shown = table[table["revenue"] > 0]
    figure = go.Figure(go.Treemap(
        labels=shown["segment"].astype(str), parents=[""] * len(shown),
        values=shown["revenue"], customdata=shown[["customers", "share", "revenue_share"]],
        hovertemplate=("%{label}<br>revenue %{value:,.2f}<br>customers %{customdata[0]:,}"
                       "<br>share of customers %{customdata[1]:.1%}"
                       "<br>share of revenue %{customdata[2]:.1%}<extra></extra>")))
    figure.update_layout(title="Segments by revenue (positive revenue only)")
    return figure


def segment_trends(trends: pd.DataFrame) -> go.Figure:
    """Draw customers per segment across runs (``as_of``, ``segment``, ``customers``)."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for segment, rows in trends.groupby("segment", sort=False):
        figure.add_trace(go.Scatter(
            x=[str(d) for d in rows["as_of"]], y=rows["customers"], mode="lines+markers",
            name=str(segment),
            hovertemplate=f"{segment}<br>%{{x}}: %{{y:,}} customers<extra></extra>"))
    figure.update_layout(title="Segment sizes over time", xaxis_title="run (as-of date)",
                         yaxis_title="customers", xaxis={"type": "category"})
    return figure


def transition_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Draw the moves from each previous segment (rows) to each current one (columns)."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=[str(c) for c in matrix.columns],
        y=[str(i) for i in matrix.index], text=matrix.to_numpy(), texttemplate="%{text}",
        colorscale="Purples",
        hovertemplate="from %{y} to %{x}: %{z} customers<extra></extra>"))
    figure.update_layout(title="Moves since the previous run", xaxis_title="this run",
                         yaxis_title="previous run", yaxis={"autorange": "reversed"})
    return figure


def exclusions_bar(counts: pd.Series) -> go.Figure:
    """Draw customers per exclusion reason of one campaign (reasons with none left out)."""
    import plotly.graph_objects as go

    shown = counts[counts > 0]
    figure = go.Figure(go.Bar(x=[str(i) for i in shown.index], y=shown.to_numpy(),
                              hovertemplate="%{x}: %{y:,} customers<extra></extra>"))
    figure.update_layout(title="Candidates left out, by reason", yaxis_title="customers")
    return figure


def kpi_lines(kpis: pd.DataFrame, columns: Sequence[str], title: str,
              labels: dict[str, str] | None = None) -> go.Figure:
    """Draw KPIs per period as lines (partial periods drawn with open markers).

    Parameters
    ----------
    kpis : DataFrame
        ``kpis.csv`` of a run: ``period``, ``partial`` and the KPI columns.
    columns : sequence of str
        The KPIs to draw (those absent are skipped).
    title : str
        The chart's title.
    labels : dict, optional
        Column to legend label.
    """
    import plotly.graph_objects as go

    labels = labels or {}
    figure = go.Figure()
    periods = kpis["period"].astype(str)
    partial = kpis["partial"].astype(bool) if "partial" in kpis else pd.Series(False,
                                                                              index=kpis.index)
    for column in columns:
        if column not in kpis:
            continue
        name = labels.get(column, column.replace("_", " "))
        figure.add_trace(go.Scatter(
            x=periods, y=kpis[column], mode="lines+markers", name=name,
            marker={"symbol": ["circle-open" if p else "circle" for p in partial]},
            hovertemplate=f"{name}<br>%{{x}}: %{{y:,.2f}}<extra></extra>"))
    figure.update_layout(title=title, xaxis_title="period", xaxis={"type": "category"})
    return figure


def cohort_heatmap(cohorts: pd.DataFrame) -> go.Figure:
    """Draw the share of each cohort active N periods after its first purchase.

    Parameters
    ----------
    cohorts : DataFrame
        ``kpis_cohorts.csv``: index ``cohort``, ``customers``, then one column per period
        since the first purchase (percentages 0-100).
    """
    import plotly.graph_objects as go

    since = [c for c in cohorts.columns if c != "customers"]
    values = cohorts[since].to_numpy(dtype=float)
    figure = go.Figure(go.Heatmap(
        z=values, x=[str(c) for c in since], y=[str(i) for i in cohorts.index],
        customdata=[[n] * len(since) for n in cohorts["customers"]], colorscale="Greens",
        hovertemplate=("cohort %{y} (%{customdata:,} customers), %{x} period(s) later: "
                       "%{z:.1f}% active<extra></extra>")))
    figure.update_layout(title="Cohort retention (% of the cohort active)",
                         xaxis_title="periods since the first purchase",
                         yaxis_title="cohort (first purchase)",
                         xaxis={"type": "category"},
                         yaxis={"type": "category", "autorange": "reversed"})
    return figure


def segment_revenue(by_segment: pd.DataFrame) -> go.Figure:
    """Draw the revenue per period of each segment (``kpis_by_segment.csv``), stacked."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for segment, rows in by_segment.groupby("segment", sort=False):
        figure.add_trace(go.Bar(
            x=rows["period"].astype(str), y=rows["revenue"], name=str(segment),
            hovertemplate=f"{segment}<br>%{{x}}: %{{y:,.2f}}<extra></extra>"))
    figure.update_layout(title="Revenue per period by segment", barmode="relative",
                         xaxis_title="period", yaxis_title="revenue",
                         xaxis={"type": "category"})
    return figure
