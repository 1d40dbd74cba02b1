"""Issue 12 end to end: ``rfm-engine ui`` in a real headless Chromium (tests/browser.py).

The installed command serves a weekly run of the sample on a free port of 127.0.0.1; the
browser opens it, goes to "Build a list", picks a segment, prepares and downloads the list,
and the downloaded file must be the library's own export for the same segment (the same
bytes, rows of that segment only, nobody suppressed), with its audit record in the run
folder. Then every page is opened once and photographed (docs/ under ``make screenshots``).
"""

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.browser import save_screenshot, screenshot_folder, weekly_run

RFM = str(Path(sys.executable).with_name("rfm-engine"))
SEGMENT = "champions"
PAGES = ("Overview", "Trends", "Campaigns", "Build a list", "Customer lookup", "KPIs and CLV")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``rfm-engine ui --runs DIR --port P`` over one weekly run; stopped afterwards."""
    pytest.importorskip("streamlit", reason="the ui extra is not installed")
    run_dir = weekly_run(tmp_path_factory.mktemp("ui-run"))
    port = free_port()
    log = (run_dir.parent / "ui.log").open("w")
    server = subprocess.Popen([RFM, "ui", "--runs", str(run_dir.parent), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (run_dir.parent / "ui.log").read_text()
            assert time.monotonic() < deadline, "rfm-engine ui did not answer within 60 s"
            time.sleep(0.5)
        yield url, run_dir
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def wait(browser, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.25).until(condition)


def visible(browser, xpath):
    """Wait for the element at ``xpath`` to be displayed; return it."""
    def found(driver):
        elements = [e for e in driver.find_elements("xpath", xpath) if e.is_displayed()]
        return elements[0] if elements else False
    return wait(browser, found)


def settled(browser):
    """Wait until Streamlit has finished running the script (no "Running..." status)."""
    time.sleep(0.5)
    wait(browser, lambda d: not d.find_elements(
        "css selector", '[data-testid="stStatusWidget"]'))


def go_to(browser, page: str) -> None:
    visible(browser, f"//*[@data-testid='stSidebar']//label[normalize-space(.)='{page}']"
            ).click()
    visible(browser, f"//h2[starts-with(normalize-space(.), '{page.split()[0]}')]")
    settled(browser)


def test_pick_a_segment_download_the_list_it_is_the_librarys_export(browser, served,
                                                                     tmp_path):
    from selenium.webdriver.common.keys import Keys

    from rfm_engine.ui.folders import RunFolder
    from rfm_engine.ui.lists import ListSpec, build_list, export_list

    url, run_dir = served
    downloads = Path(browser.downloads)
    browser.execute_cdp_cmd("Page.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(downloads)})
    browser.get(url)
    visible(browser, "//h2[starts-with(normalize-space(.), 'Overview')]")
    go_to(browser, "Build a list")
    picker = visible(browser, "//div[@data-testid='stMultiSelect'][.//*[normalize-space(.)="
                              "'Segments']]//input")
    picker.click()
    picker.send_keys(SEGMENT)
    picker.send_keys(Keys.ENTER)
    picker.send_keys(Keys.ESCAPE)
    settled(browser)
    visible(browser, "//button[normalize-space(.)='Prepare the download']").click()
    settled(browser)
    button = visible(browser, "//div[@data-testid='stDownloadButton']//button")
    save_screenshot(browser, screenshot_folder(tmp_path) / "ui-build-a-list.png")
    before = set(downloads.iterdir())
    button.click()

    def downloaded(_):
        new = [p for p in set(downloads.iterdir()) - before
               if not p.name.endswith((".crdownload", ".tmp"))]
        return new[0] if new else False
    got = wait(browser, downloaded)

    run = RunFolder(run_dir)
    built = build_list(run, ListSpec((SEGMENT,)))
    expected = export_list(built, run.layout)
    assert got.name == expected.file_name == "custom_list.csv"
    assert got.read_bytes() == expected.data
    with got.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == built.counts["targets"] > 0
    customers = pd.read_parquet(run_dir / "customers.parquet")
    segment_of = dict(zip(customers["customer_id"].astype(str), customers["segment"],
                          strict=True))
    assert {segment_of[r["customer_id"]] for r in rows} == {SEGMENT}
    suppressed = pd.read_csv(run_dir.parents[1] / "data" / "sample" / "suppression.csv",
                             dtype=str)
    emails = {(r.get("email") or r.get("Email") or "").strip().lower() for r in rows}
    assert not set(suppressed["email"].dropna().str.strip().str.lower()) & emails
    assert not set(suppressed["customer_id"].dropna()) & {r["customer_id"] for r in rows}
    audit = (run_dir / "ui_downloads.jsonl").read_text().splitlines()
    record = json.loads(audit[-1])
    assert expected.sha256 in json.dumps(record) and "@" not in audit[-1]
    assert "@" not in browser.current_url


def test_every_page_opens_and_is_photographed(browser, served, tmp_path):
    url, _ = served
    browser.get(url)
    visible(browser, "//h2[starts-with(normalize-space(.), 'Overview')]")
    folder = screenshot_folder(tmp_path)
    for page in PAGES:
        go_to(browser, page)
        errors = browser.find_elements("css selector", '[data-testid="stException"]')
        assert not errors, f"{page}: {errors[0].text}"
        if page == "Build a list":  # photographed with a list built, by the test above
            folder = tmp_path
        shot = save_screenshot(browser, folder / f"ui-{page.lower().replace(' ', '-')}.png")
        folder = screenshot_folder(tmp_path)
        assert shot.stat().st_size > 5_000
