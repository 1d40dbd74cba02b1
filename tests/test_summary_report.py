import datetime as dt
import re
import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rfm_engine.core.pipeline import segment_summary
from rfm_engine.errors import MissingColumnsError
from rfm_engine.measurement.migration import migrate
from rfm_engine.reports.summary_report import (
    RunSummary,
    plot_campaigns,
    plot_segments,
    write_heatmap_png,
)

ORDER = ["champions", "loyal_customers", "at_risk", "hibernating"]
PNG = b"\x89PNG\r\n\x1a\n"


def _customers():
    previous = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e"],
        "segment": ["champions", "champions", "loyal_customers", "at_risk", "hibernating"],
        "segment_since": [dt.date(2025, 12, 1)] * 5,
    })
    current = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "f", "g"],
        "segment": ["champions", "at_risk", "champions", "at_risk", "at_risk", "champions"],
        "recency_days": [3, 70, 5, 120, 90, 1],
        "frequency": [12, 4, 9, 3, 2, 7],
        "monetary": [900.0, 150.0, 610.5, 80.0, 45.0, 300.0],
        "email": ["ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com",
                  "fay@example.com", "gus@example.com"],
        "first_name": ["Ann", "Bob", "Cy", "Dee", "Fay", "Gus"],
    })
    return current, previous


def _report(**overrides) -> RunSummary:
    current, previous = _customers()
    campaigns = pd.DataFrame({
        "campaign": ["winback", "vip_thanks"],
        "type": ["retention", "activation"],
        "channel": ["email", "email"],
        "segments": [["at_risk"], ["champions"]],
        "candidates": [3, 3], "suppressed": [1, 0], "excluded": [0, 1], "holdout": [1, 0],
        "targets": [1, 2],
    })
    quality = {
        "source": "orders.csv", "rows_read": 1200,
        "dropped": {"missing_customer_id": 12, "duplicate_line": 3},
        "rows_kept": 1185, "as_of": "2025-12-29",
        "warnings": ["bad email 'zed@example.com' in row 7", "3 duplicate lines dropped"],
    }
    arguments = dict(
        segments=segment_summary(current, order=ORDER),
        campaigns=campaigns,
        migration=migrate(current, previous, dt.date(2025, 12, 29), order=ORDER),
        quality=quality,
        as_of=dt.date(2025, 12, 29),
        input_name="orders.csv",
        counts={"rows read": 1200},
        lists={"winback": ["campaigns/winback.csv"],
               "vip_thanks": ["campaigns/vip_thanks.part1.csv",
                              "campaigns/vip_thanks.part2.csv"]},
    )
    arguments.update(overrides)
    return RunSummary(**arguments)


def test_html_has_every_section_and_three_plots():
    html = _report().to_html()
    assert html.startswith("<!DOCTYPE html>")
    for text in ["<h2>Segments</h2>", "<h2>Campaigns</h2>", "<h2>Segment migration</h2>",
                 "<h2>Data quality</h2>", "<th>Segment</th>", "<td>loyal_customers</td>",
                 "<td>winback</td>", "<td>at_risk</td>", "Targets (exported)",
                 "50.0% of the customers present in both runs changed segment",
                 "2 new customers, 1 gone", "dropped: missing customer id",
                 "3 duplicate lines dropped"]:
        assert text in html
    assert html.count('<img src="data:image/png;base64,') == 3
    assert html.count("<table>") == 4  # segments, campaigns, largest moves, quality


def test_html_is_self_contained_and_never_shows_emails():
    html = _report().to_html()
    assert "@" not in html  # neither customers' emails nor the one in a warning
    assert "[email removed]" in html
    assert "<script" not in html.lower()
    assert not re.search(r"src=\"(?!data:)", html)  # every image inline
    assert re.findall(r"href=\"([^\"]*)\"", html) == ["campaigns/winback.csv",
                                                     "campaigns/vip_thanks.part1.csv",
                                                     "campaigns/vip_thanks.part2.csv"]
    assert "http" not in html
    assert "Ann" not in html  # no customer rows at all


def test_summary_links_to_each_campaigns_list_files():
    html = _report().to_html()
    assert ('<li>winback (1 targets): <a href="campaigns/winback.csv">campaigns/winback.csv'
            '</a></li>') in html
    assert ('<li>vip_thanks (2 targets): <a href="campaigns/vip_thanks.part1.csv">'
            'campaigns/vip_thanks.part1.csv</a>, <a href="campaigns/vip_thanks.part2.csv">')\
        in html
    assert "List files" not in _report(lists=None).to_html()
    quoted = _report(lists={"x": ['campaigns/a"><script>.csv']}).to_html()
    assert "<script" not in quoted and 'href="campaigns/a&#34;&gt;&lt;script&gt;.csv"' in quoted


def test_headline_numbers():
    headline = _report().headline
    assert headline["customers"] == 6
    assert headline["revenue"] == pytest.approx(2085.5)
    assert headline["targets"] == 3 and headline["holdout"] == 1
    assert headline["suppressed"] == 1 and headline["excluded"] == 1
    assert headline["moved share"] == 0.5
    assert headline["new customers"] == 2 and headline["gone customers"] == 1
    assert headline["top revenue segment"] == "champions (87%)"
    assert headline["rows read"] == 1200


def test_numbers_follow_the_one_format_convention():
    # rfm_engine.io._format: shares are fractions shown as percentages, a missing value is
    # "n/a" as in the text reports (KPIs, lift, stability) and the CLI's segment table.
    html = _report().to_html()
    row = re.search(r"<tr><td>hibernating</td>(.*?)</tr>", html).group(1)
    assert re.findall(r"<td class=num>([^<]*)</td>", row) == [
        "0", "0.0%", "0.00", "0.0%", "n/a", "n/a", "n/a"]
    assert "–" not in html
    moved = migrate(_customers()[0], None, "2025-12-29")
    assert moved.moved_share != moved.moved_share  # NaN: no customer in both runs
    assert "moved_share=n/a" in repr(moved)


def test_text_is_escaped():
    current, _ = _customers()
    current["segment"] = current["segment"].replace("at_risk", "<b>risk & co</b>")
    html = _report(segments=segment_summary(current), migration=None,
                   input_name="<script>x</script>").to_html()
    assert "&lt;b&gt;risk &amp; co&lt;/b&gt;" in html
    assert "<b>" not in html and "<script" not in html


def test_script_in_a_segment_or_campaign_name_is_escaped():
    # The page is a jinja2 template with autoescape on: names are text in every table.
    script = "<script>alert(1)</script>"
    current, previous = _customers()
    current["segment"] = current["segment"].replace("at_risk", script)
    previous["segment"] = previous["segment"].replace("at_risk", script)
    campaigns = pd.DataFrame({"campaign": [script], "segments": [[script, "champions"]],
                              "targets": [2]})
    html = _report(segments=segment_summary(current), campaigns=campaigns,
                   migration=migrate(current, previous, dt.date(2025, 12, 29)),
                   quality={"warnings": [f"segment {script} is empty"]}).to_html()
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<td>{escaped}</td>" in html  # segments table, largest moves
    assert f"<td>{escaped}, champions</td>" in html  # the campaign's segments
    assert f"<li class=warn>segment {escaped} is empty</li>" in html
    assert html.count(escaped) >= 5


def test_rerender_is_byte_identical(tmp_path):
    first = _report().write_html(tmp_path / "one.html")
    second = _report().write_html(tmp_path / "two.html")
    assert first.read_bytes() == second.read_bytes()


def test_optional_sections():
    current, _ = _customers()
    html = _report(campaigns=None, migration=None, quality=None).to_html()
    assert "No campaign in this run." in html
    assert "Segment migration was not computed." in html
    assert "No data-quality report." in html
    assert html.count("data:image/png;base64,") == 1
    first = migrate(current, None, "2025-12-29")
    assert "all 6 customers are new" in _report(migration=first).to_html()


def test_exported_stands_for_targets():
    report = _report(campaigns=pd.DataFrame({"campaign": ["x"], "exported": [5]}))
    assert report.headline["targets"] == 5


def test_missing_columns_are_named():
    with pytest.raises(MissingColumnsError, match=r"segment summary: missing column\(s\) "
                                                  r"'revenue_share'"):
        _report(segments=pd.DataFrame(columns=["segment", "customers", "share", "revenue"]))
    with pytest.raises(MissingColumnsError, match=r"campaign table: missing column\(s\) 'targets'"):
        _report(campaigns=pd.DataFrame({"campaign": ["x"]}))


def test_plot_helpers_return_axes():
    report = _report()
    ax = plot_segments(report.segments)
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_yticklabels()] == ORDER
    given = Figure().add_subplot()
    assert plot_segments(report.segments, ax=given) is given
    ax = plot_campaigns(report.campaigns)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["winback", "vip_thanks"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "targets", "holdout", "suppressed", "excluded"]
    given = Figure().add_subplot()
    assert plot_campaigns(report.campaigns, ax=given) is given


def test_heatmap_png_is_reproducible(tmp_path):
    migration = _report().migration
    one = write_heatmap_png(migration, tmp_path / "a" / "migration" / "transition_matrix.png")
    two = write_heatmap_png(migration, tmp_path / "b.png")
    assert one.read_bytes().startswith(PNG)
    assert one.read_bytes() == two.read_bytes()


def test_no_pyplot():
    code = ("import sys, datetime as dt, pandas as pd\n"
            "from rfm_engine.measurement.migration import migrate\n"
            "from rfm_engine.reports.summary_report import write_heatmap_png\n"
            "m = migrate(pd.DataFrame({'customer_id': ['a'], 'segment': ['x']}), None, "
            "dt.date(2025, 1, 1))\n"
            "write_heatmap_png(m, sys.argv[1])\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", code, f"{folder}/x.png"], check=True)
