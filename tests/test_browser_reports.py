"""The static reports of a weekly run, opened in a real headless Chromium (tests/browser.py).

A run of the installed ``rfm-engine`` over the generated sample (the demo config); its
``summary.html`` and ``kpis.html`` are opened at 1280 x 900 (and at 800 px): the page never
scrolls sideways, each table fits its box or scrolls inside it, the plots load and fit
their column, and the summary's links point at the run's list files. The plots' own
labels are checked in tests/test_report_plots.py (they are PNGs). Screenshots of both
pages go to docs/ under ``make screenshots``.
"""

from pathlib import Path

import pandas as pd
import pytest

from tests.browser import (
    IMAGES,
    PAGE_WIDTH,
    TABLE_BOXES,
    WIDTH,
    save_screenshot,
    screenshot_folder,
    weekly_run,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A weekly run of the demo config over a 1,500-customer sample (the real CLI)."""
    return weekly_run(tmp_path_factory.mktemp("browser-run"))


def open_page(browser, path: Path, width: int = WIDTH) -> None:
    browser.set_window_size(width, 900)
    browser.get(path.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"


def assert_readable_at(browser, width: int) -> list[dict]:
    page = browser.execute_script(PAGE_WIDTH)
    assert page["scroll"] <= page["client"], f"the page scrolls sideways at {width} px: {page}"
    boxes = browser.execute_script(TABLE_BOXES)
    assert boxes
    for box in boxes:
        assert box["fits"] or box["scrolls"], box
        assert box["right"] <= page["client"], box
    for image in browser.execute_script(IMAGES):
        assert image["loaded"], image["alt"]
        assert image["right"] <= image["column"] + 1, image["alt"]
    return boxes


@pytest.mark.parametrize("width", [WIDTH, 800])
def test_summary_fits_the_window_and_links_the_lists(browser, run_dir, width, tmp_path):
    open_page(browser, run_dir / "summary.html", width)
    boxes = assert_readable_at(browser, width)
    if width == WIDTH:
        assert all(box["fits"] for box in boxes)  # the summary's tables need no scrolling
        save_screenshot(browser, screenshot_folder(tmp_path) / "summary.png")
        heading = browser.find_element("xpath", "//h2[normalize-space(.)='Campaigns']")
        browser.execute_script("arguments[0].scrollIntoView();", heading)
        save_screenshot(browser, screenshot_folder(tmp_path) / "summary-campaigns.png")
    links = browser.execute_script(
        "return Array.from(document.links).map(a => [a.textContent, a.href]);")
    campaigns = pd.read_csv(run_dir / "campaigns.csv")
    targets = campaigns.loc[campaigns["targets"] > 0, "campaign"]
    linked = {Path(href.removeprefix("file://")).relative_to(run_dir).as_posix()
              for _, href in links}
    listed = {p.relative_to(run_dir).as_posix() for p in (run_dir / "campaigns").iterdir()}
    assert linked == listed and len(listed) >= len(targets) > 0
    assert all(href == (run_dir / text).as_uri() for text, href in links)  # text is the path


@pytest.mark.parametrize("width", [WIDTH, 800])
def test_kpi_report_fits_the_window_and_its_table_scrolls_in_its_box(browser, run_dir, width,
                                                                      tmp_path):
    open_page(browser, run_dir / "kpis.html", width)
    boxes = assert_readable_at(browser, width)
    kpis = next(box for box in boxes if box["header"] == "Period")
    if not kpis["fits"]:
        assert kpis["scrolls"] and kpis["width"] > kpis["box"]
    headers = browser.execute_script(
        "return Array.from(document.querySelectorAll('div.table')[0].querySelectorAll('th'))"
        ".map(th => [th.textContent, th.title]);")
    assert [h for h, _ in headers[:3]] == ["Period", "Customers at start", "New customers"]
    assert all("_" not in h for h, _ in headers)
    assert all(title for _, title in headers)  # the raw column name, as in kpis.csv
    assert {title for _, title in headers} <= set(pd.read_csv(run_dir / "kpis.csv").columns)
    if width == WIDTH:
        folder = screenshot_folder(tmp_path)
        save_screenshot(browser, folder / "kpis.png")
        box = browser.find_element("css selector", "div.table")
        browser.execute_script("arguments[0].scrollIntoView();", box)
        shot = save_screenshot(browser, folder / "kpis-table.png", element=box)
        assert shot.stat().st_size < 400_000
