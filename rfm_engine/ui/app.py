"""The Streamlit script of ``rfm-engine ui``: the marketers' page over the run folders.

``rfm-engine ui --runs DIR`` runs this file with Streamlit (``streamlit run``), passing
``DIR`` in the environment variable :data:`RUNS_ENV`. Pages (the sidebar's ``Page``):
Overview, Trends, Campaigns, Build a list, Customer lookup, KPIs and CLV; the sidebar's
``Run (as-of date)`` picks the run.

Each run is read once per server (``st.cache_resource``, keyed by the folder and its
manifest's modification time, so a run replaced with ``--force`` is read again): a click
reruns the script over the cached tables, never re-reading ``customers.parquet``.
No email address reaches a URL, the query string or a log: the page keeps no query
parameters, previews hide addresses unless asked, and downloads are built in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from rfm_engine.campaigns.exports import LAYOUTS
from rfm_engine.campaigns.plan import CAMPAIGN_TYPES, CHANNELS, EXCLUSION_REASONS
from rfm_engine.errors import RFMEngineError
from rfm_engine.ui import charts
from rfm_engine.ui.folders import RunFolder, customer_history, run_folders, segment_trends
from rfm_engine.ui.lists import (
    BuiltList,
    Download,
    ListSpec,
    build_list,
    export_list,
    record_download,
    run_list_download,
)

#: The environment variable holding the runs folder (``rfm-engine ui --runs DIR``).
RUNS_ENV = "RFM_ENGINE_UI_RUNS"
PAGES = ("Overview", "Trends", "Campaigns", "Build a list", "Customer lookup", "KPIs and CLV")
#: Columns of the customer previews (email only when asked).
PREVIEW_COLUMNS = ["customer_id", "first_name", "segment", "rfm_cell", "recency_days",
                   "frequency", "monetary"]
_SEGMENT_LABELS = {"segment": "segment", "customers": "customers", "share": "share",
                   "revenue": "revenue", "revenue_share": "revenue share",
                   "mean_recency_days": "mean recency (days)", "mean_frequency": "mean orders",
                   "mean_monetary": "mean monetary", "orders": "orders", "aov": "AOV",
                   "predicted_clv": "predicted CLV", "mean_clv": "mean predicted CLV",
                   "mean_p_alive": "mean P(alive)"}

#: How the segment table's numbers read: counts and money with thousands separators, means
#: rounded to what a marketer compares (days whole, orders to a tenth, money to the cent).
_SEGMENT_FORMATS = {
    "customers": st.column_config.NumberColumn(format="localized"),
    "share": st.column_config.NumberColumn(format="%.1f%%"),
    "revenue": st.column_config.NumberColumn(format="%,.0f"),
    "revenue share": st.column_config.NumberColumn(format="%.1f%%"),
    "mean recency (days)": st.column_config.NumberColumn(format="%.0f"),
    "mean orders": st.column_config.NumberColumn(format="%.1f"),
    "mean monetary": st.column_config.NumberColumn(format="%,.2f"),
    "orders": st.column_config.NumberColumn(format="localized"),
    "AOV": st.column_config.NumberColumn(format="%,.2f"),
    "predicted CLV": st.column_config.NumberColumn(format="%,.0f"),
    "mean predicted CLV": st.column_config.NumberColumn(format="%,.2f"),
    "mean P(alive)": st.column_config.NumberColumn(format="%.2f"),
}


@st.cache_resource(show_spinner="Reading the run...", max_entries=8)
def load_run(path: str, stamp: float) -> RunFolder:
    """Read one run (its customers table once), shared by every session of the server."""
    run = RunFolder(path)
    _ = run.customers
    return run


@st.cache_data(show_spinner=False, max_entries=32)
def load_trends(folders: tuple[tuple[str, float], ...]) -> pd.DataFrame:
    """Segment sizes across runs, read once per set of runs (each run's segments.csv)."""
    return segment_trends([RunFolder(path) for path, _ in folders])


def _stamp(folder: RunFolder) -> float:
    return (folder.path / "manifest.json").stat().st_mtime


def _current(folder: RunFolder) -> RunFolder:
    return load_run(str(folder.path), _stamp(folder))


def _percent(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out:
            out[column] = out[column] * 100
    return out


def _preview(frame: pd.DataFrame, show_email: bool, rows: int = 200) -> pd.DataFrame:
    columns = [c for c in PREVIEW_COLUMNS if c in frame]
    if show_email and "email" in frame:
        columns.insert(1, "email")
    return frame[columns].head(rows)


def _can_audit(run: RunFolder) -> bool:
    """Say whether downloads can be offered: only where their audit record can be written."""
    if os.access(run.path, os.W_OK):
        return True
    st.error(f"{run.path} cannot be written: downloads are off, since each one must leave an "
             "audit record there (ui_downloads.jsonl).")
    return False


def _downloaded(run: RunFolder, download: Download, built: BuiltList | None,
                source: str) -> None:
    record_download(run, download, built=built, source=source)
    st.session_state["last_download"] = download.file_name


# --- pages -------------------------------------------------------------------------------------


def page_overview(run: RunFolder, runs: list[RunFolder]) -> None:
    """Headline cards, the segment table, the R x F heatmap and the revenue treemap."""
    st.header(f"Overview: run of {run.as_of.isoformat()}")
    head = run.headline
    cards = st.columns(6)
    cards[0].metric("Customers", f"{head['customers']:,}")
    cards[1].metric("Revenue", f"{head['revenue']:,.0f}")
    cards[2].metric("Segments", head["segments"])
    cards[3].metric("Targets", f"{head['targets']:,}")
    cards[4].metric("Holdout", f"{head['holdout']:,}")
    cards[5].metric("Suppressed", f"{head['suppressed']:,}")
    table = run.segment_table
    st.subheader("Segments")
    shown = _percent(table, ["share", "revenue_share"])
    st.dataframe(shown.rename(columns=_SEGMENT_LABELS), hide_index=True,
                 column_config=_SEGMENT_FORMATS)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.rf_heatmap(run.rf_counts), key="rf_heatmap")
    with right:
        st.plotly_chart(charts.segment_treemap(table), key="segment_treemap")


def page_trends(run: RunFolder, runs: list[RunFolder]) -> None:
    """Segment sizes across runs, the transition matrix and the trigger lists."""
    st.header("Trends")
    trends = load_trends(tuple((str(f.path), _stamp(f)) for f in runs))
    st.plotly_chart(charts.segment_trends(trends), key="segment_trends")
    st.subheader(f"Moves since the previous run (run of {run.as_of.isoformat()})")
    matrix = run.transitions
    previous = run.manifest.get("inputs", {}).get("previous_run")
    if matrix is None or not previous:
        st.info("This run is the first in its folder: there is no previous run to compare with.")
    else:
        st.caption(f"Previous run: {previous}. Rows: previous segment or (new); columns: this "
                   "run's segment or (gone).")
        st.plotly_chart(charts.transition_heatmap(matrix), key="transition_heatmap")
    st.subheader("Trigger lists")
    triggers = run.triggers
    if not triggers:
        st.info("No trigger lists in this run (they start with the second run).")
        return
    name = st.selectbox("Trigger list", list(triggers), key="trigger")
    frame = triggers[name]
    st.caption(f"{len(frame):,} customers entered this segment in this run (ids and RFM only).")
    st.dataframe(frame, hide_index=True)


def page_campaigns(run: RunFolder, runs: list[RunFolder]) -> None:
    """Per campaign: counts, exclusions by reason, a preview and the list as written."""
    st.header(f"Campaigns: run of {run.as_of.isoformat()}")
    counts = run.campaigns
    st.dataframe(counts, hide_index=True)
    names = counts["campaign"].astype(str).tolist()
    if not names:
        st.info("This run has no campaigns.")
        return
    name = st.selectbox("Campaign", names, key="campaign")
    row = counts.set_index("campaign").loc[name]
    reasons = [r for r in EXCLUSION_REASONS if r in row.index and r != "suppressed"]
    cards = st.columns(5)
    cards[0].metric("Candidates", f"{int(row['candidates']):,}")
    cards[1].metric("Targets", f"{int(row['targets']):,}")
    cards[2].metric("Holdout", f"{int(row['holdout']):,}")
    cards[3].metric("Suppressed", f"{int(row.get('suppressed', 0)):,}")
    cards[4].metric("Excluded", f"{int(row[reasons].sum()):,}")
    excluded = row[[r for r in EXCLUSION_REASONS if r in row.index]].astype(int)
    if excluded.sum():
        st.plotly_chart(charts.exclusions_bar(excluded), key="exclusions")
    show_email = st.checkbox("Show email addresses in the preview", key="campaign_emails")
    table = run.customers
    targets = table[(table["campaign"] == name) & (table["group"] == "target")]
    st.caption(f"Preview: the first {min(len(targets), 200):,} of {len(targets):,} targets.")
    st.dataframe(_preview(targets, show_email), hide_index=True)
    try:
        download = run_list_download(run, name)
    except RFMEngineError as exc:
        st.warning(str(exc))
        return
    if not _can_audit(run):
        return
    st.download_button("Download the list as written", data=download.data,
                       file_name=download.file_name, mime=download.mime,
                       key="download_run_list", on_click=_downloaded,
                       args=(run, download, None, f"run list {name}"))


def _range_slider(label: str, values: pd.Series, key: str) -> tuple[float, float] | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return None
    low, high = float(numbers.min()), float(numbers.max())
    if low == high:
        return None
    chosen = st.slider(label, min_value=low, max_value=high, value=(low, high), key=key)
    return None if chosen == (low, high) else (float(chosen[0]), float(chosen[1]))


def _spec_from_controls(run: RunFolder) -> ListSpec | None:
    table = run.customers
    segments = st.multiselect("Segments", sorted(table["segment"].dropna().unique()),
                              key="list_segments")
    with st.expander("Filters", expanded=True):
        recency = _range_slider("Recency (days since the last purchase)",
                                table["recency_days"], "list_recency")
        monetary = _range_slider("Monetary (net revenue)", table["monetary"], "list_monetary")
        frequency = _range_slider("Orders", table["frequency"], "list_orders")
        has_email = st.checkbox("Only customers with an email address", key="list_has_email")
        countries = clusters = None
        if "country" in table:
            picked = st.multiselect("Country", sorted(table["country"].dropna().unique()),
                                    key="list_country")
            countries = tuple(picked) or None
        if "cluster_name" in table:
            picked = st.multiselect("Cluster", sorted(table["cluster_name"].dropna().unique()),
                                    key="list_cluster")
            clusters = tuple(picked) or None
    with st.expander("Sending", expanded=True):
        name = st.text_input("List name", value="custom_list", key="list_name")
        kind = st.selectbox("Campaign type", CAMPAIGN_TYPES,
                            index=CAMPAIGN_TYPES.index("retention"), key="list_type")
        channel = st.selectbox("Channel", CHANNELS, key="list_channel")
        holdout = st.slider("Holdout fraction", min_value=0.0, max_value=0.9, value=0.1,
                            step=0.05, key="list_holdout")
        max_size = st.number_input("Max size (0: no cap)", min_value=0, value=0, step=100,
                                   key="list_max_size")
    if not segments:
        st.info("Pick at least one segment.")
        return None
    return ListSpec(tuple(segments), name=name.strip(), campaign_type=kind, channel=channel,
                    holdout_fraction=round(float(holdout), 4),
                    max_size=int(max_size) or None, recency_days=recency, monetary=monetary,
                    frequency=frequency, has_email=has_email, countries=countries,
                    clusters=clusters)


def page_build(run: RunFolder, runs: list[RunFolder]) -> None:
    """Pick segments and filters, see the count after suppression and holdout, download."""
    st.header(f"Build a list: run of {run.as_of.isoformat()}")
    spec = _spec_from_controls(run)
    if spec is None:
        return
    key = (str(run.path), spec)
    cached = st.session_state.get("built")
    try:
        if cached is not None and cached[0] == key:
            built = cached[1]
        else:
            built = build_list(run, spec)
            st.session_state["built"] = (key, built)
    except RFMEngineError as exc:
        st.error(str(exc))
        return
    for warning in built.warnings:
        st.warning(warning)
    counts = built.counts
    reasons = {r: counts.get(r, 0) for r in EXCLUSION_REASONS}
    cards = st.columns(5)
    cards[0].metric("Candidates", f"{counts['candidates']:,}")
    cards[1].metric("Suppressed", f"{reasons['suppressed']:,}")
    cards[2].metric("Excluded", f"{sum(reasons.values()) - reasons['suppressed']:,}")
    cards[3].metric("Holdout", f"{counts['holdout']:,}")
    cards[4].metric("Targets", f"{counts['targets']:,}")
    st.dataframe(pd.DataFrame({"step": list(counts), "customers": list(counts.values())}),
                 hide_index=True)
    show_email = st.checkbox("Show email addresses in the preview", key="list_emails")
    st.dataframe(_preview(built.targets, show_email), hide_index=True)
    layouts = list(LAYOUTS)
    layout = st.selectbox("Layout", layouts, index=layouts.index(run.layout)
                          if run.layout in layouts else 0, key="list_layout",
                          disabled=spec.channel != "email")
    if st.button("Prepare the download", key="list_prepare"):
        try:
            st.session_state["download"] = ((key, layout), export_list(built, layout))
        except RFMEngineError as exc:
            st.session_state.pop("download", None)
            st.error(str(exc))
    prepared = st.session_state.get("download")
    if prepared is not None and prepared[0] == (key, layout) and _can_audit(run):
        download = prepared[1]
        rows = sum(int(f["rows"]) for f in download.files)
        st.success(f"{download.file_name}: {rows:,} rows, checked against the suppression "
                   f"list after writing; sha256 {download.sha256[:16]}...")
        if download.refused:
            st.warning(f"{download.refused:,} target(s) left out: {layout} would refuse them "
                       "(an address it does not accept, or a first name longer than it keeps).")
        st.download_button("Download the list", data=download.data,
                           file_name=download.file_name, mime=download.mime,
                           key="list_download", on_click=_downloaded,
                           args=(run, download, built, "built list"))


def page_lookup(run: RunFolder, runs: list[RunFolder]) -> None:
    """One customer: features, scores, segment history across runs, campaigns received."""
    st.header("Customer lookup")
    wanted = st.text_input("Customer id", key="lookup_id").strip()
    if not wanted:
        st.info("Type a customer id.")
        return
    history = customer_history(runs, wanted)
    table = run.customers
    row = table[table["customer_id"] == (history["customer_id"].iloc[0]
                                         if len(history) else wanted)]
    if row.empty:
        st.warning(f"No customer {wanted!r} in the run of {run.as_of.isoformat()}.")
    else:
        shown = row.drop(columns=[c for c in ("email",) if c in row]).iloc[0]
        st.subheader(f"In the run of {run.as_of.isoformat()}")
        st.dataframe(pd.DataFrame({"field": shown.index.astype(str),
                                   "value": shown.astype(str).to_numpy()}), hide_index=True)
    if len(history):
        st.subheader("Segment history")
        st.dataframe(history, hide_index=True)
        received = history[history["group"] == "target"] if "group" in history else history[:0]
        st.subheader("Campaigns received")
        if received.empty:
            st.info("No campaign targeted this customer in these runs.")
        else:
            st.dataframe(received[["as_of", "campaign"]], hide_index=True)


_KPI_CHARTS = {
    "Retention and churn": (["retention_rate", "churn_rate"], "Retention and churn rate (%)"),
    "Revenue": (["revenue", "gmv"], "Revenue per period"),
    "Customers": (["active_customers", "new_customers", "customers_lost"],
                  "Customers per period"),
    "Order value and frequency": (["aov", "purchase_frequency"],
                                  "Average order value and purchase frequency"),
    "Historical CLV": (["clv", "cac", "clv_net_of_cac"], "Historical CLV per period"),
}


def page_kpis(run: RunFolder, runs: list[RunFolder]) -> None:
    """Draw the KPI report's charts, interactive, and predicted CLV."""
    st.header(f"KPIs and CLV: run of {run.as_of.isoformat()}")
    kpis, summary = run.kpis, run.kpi_summary
    if kpis is None:
        st.info("This run has no KPI report (kpis.csv).")
        return
    if summary is not None:
        clv = summary.get("predicted_clv") or {}
        cards = st.columns(3)
        cards[0].metric("Latest complete period", str(summary.get("latest_period", "n/a")))
        total, mean = clv.get("total"), clv.get("mean")
        cards[1].metric("Predicted CLV, total", "n/a" if total is None else f"{total:,.0f}")
        cards[2].metric("Predicted CLV, mean", "n/a" if mean is None else f"{mean:,.2f}")
        for warning in summary.get("warnings", []):
            st.warning(warning)
    available = list(_KPI_CHARTS)
    if run.kpi_cohorts is not None:
        available.append("Cohort retention")
    if run.kpi_by_segment is not None:
        available.append("Revenue by segment")
    picked = st.multiselect("Charts", available, default=available[:2], key="kpi_charts")
    for name in picked:
        if name == "Cohort retention":
            figure = charts.cohort_heatmap(run.kpi_cohorts)
        elif name == "Revenue by segment":
            figure = charts.segment_revenue(run.kpi_by_segment)
        else:
            columns, title = _KPI_CHARTS[name]
            figure = charts.kpi_lines(kpis, columns, title)
        st.plotly_chart(figure, key=f"kpi_{name}")
    st.subheader("KPIs per period")
    st.dataframe(kpis, hide_index=True)
    extras = (summary or {}).get("extras") or {}
    if extras:
        st.subheader("KPIs of the optional inputs")
        name = st.selectbox("Optional-input KPIs", list(extras), key="kpi_extra")
        st.dataframe(pd.DataFrame(extras[name]), hide_index=True)


PAGE_FUNCTIONS = {"Overview": page_overview, "Trends": page_trends, "Campaigns": page_campaigns,
                  "Build a list": page_build, "Customer lookup": page_lookup,
                  "KPIs and CLV": page_kpis}


def main() -> None:
    """Draw the page: the sidebar (page, run), then the chosen page."""
    st.set_page_config(page_title="rfm-engine", layout="wide")
    runs_dir = Path(os.environ.get(RUNS_ENV, "out"))
    folders = run_folders(runs_dir)
    st.sidebar.title("rfm-engine")
    if not folders:
        st.error(f"No run in {runs_dir}: a run folder is DIR/<as_of>/ with its manifest.json "
                 "(rfm-engine run --output-dir DIR writes them).")
        return
    page = st.sidebar.radio("Page", PAGES, key="page")
    dates = [f.as_of.isoformat() for f in reversed(folders)]
    as_of = st.sidebar.selectbox("Run (as-of date)", dates, key="as_of")
    st.sidebar.caption(f"{len(folders)} run(s) in {runs_dir}")
    folder = next(f for f in folders if f.as_of.isoformat() == as_of)
    try:
        run = _current(folder)
        PAGE_FUNCTIONS[page](run, folders)
    except RFMEngineError as exc:
        st.error(str(exc))


if __name__ == "__main__":
    main()
