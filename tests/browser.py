"""A real headless browser for the tests: Debian's Chromium driven by selenium.

``make install`` installs ``chromium`` and ``chromium-driver`` with apt where they are
missing (no browser build is downloaded: selenium is told where both are, so Selenium
Manager fetches nothing). :func:`chromium` starts one browser with a new, empty profile
and the flags below; the ``browser`` fixture of ``tests/conftest.py`` shares one per test
session. A machine without them skips the browser tests, saying why.

Screenshots for the README: ``make screenshots`` runs the browser tests with
``RFM_ENGINE_SCREENSHOTS=docs``; :func:`save_screenshot` then writes small PNGs into
``docs/`` (otherwise into the test's temporary folder, so a plain test run changes no
tracked file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("RFM_ENGINE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RFM_ENGINE_CHROMEDRIVER", "/usr/bin/chromedriver"))
#: The window the reports are checked in: a laptop screen.
WIDTH, HEIGHT = 1280, 900
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def missing() -> str | None:
    """Why the browser cannot start here (None: it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing: `make install` installs chromium and chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install -e '.[test]'"
    return None


@contextmanager
def chromium(downloads: Path | None = None) -> Iterator[Any]:
    """Start headless Chromium (a new, empty profile) at 1280 x 900; quit it afterwards.

    Parameters
    ----------
    downloads : Path, optional
        Where downloads are saved, without asking.

    Yields
    ------
    selenium.webdriver.Chrome
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="rfm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        driver.set_window_size(WIDTH, HEIGHT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def weekly_run(root: Path, customers: int = 1500) -> Path:
    """Run the installed ``rfm-engine`` as ``make demo`` does, in ``root``; return the run.

    The sample (``root/data/sample``) and the demo config (``root/examples/demo.toml``,
    whose relative paths then point at that sample), published into ``root/out/<as_of>``.
    """
    rfm = str(Path(sys.executable).with_name("rfm-engine"))
    (root / "examples").mkdir(parents=True)
    shutil.copy(DOCS.parent / "examples" / "demo.toml", root / "examples" / "demo.toml")
    subprocess.run([rfm, "sample", "-q", str(root / "data" / "sample"),
                    "--customers", str(customers)], check=True)
    subprocess.run([rfm, "run", "-q", "--config", str(root / "examples" / "demo.toml"),
                    "--no-tracking"], check=True)
    (folder,) = (root / "out").iterdir()
    return folder


def screenshot_folder(tmp_path: Path) -> Path:
    """``docs/`` under ``make screenshots``, else ``tmp_path``."""
    return DOCS if os.environ.get("RFM_ENGINE_SCREENSHOTS") == "docs" else tmp_path


def save_screenshot(driver: Any, path: Path, *, element: Any = None,
                    width: int = 960) -> Path:
    """Save the window (or one element) as a small PNG: ``width`` px wide, 256 colours."""
    from io import BytesIO

    from PIL import Image

    png = element.screenshot_as_png if element is not None else driver.get_screenshot_as_png()
    image = Image.open(BytesIO(png)).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)),
                             Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


#: The layout of every report table, read in the page: does it fit, or scroll in its box?
TABLE_BOXES = """
return Array.from(document.querySelectorAll('div.table')).map(box => {
  const table = box.querySelector('table');
  const rect = box.getBoundingClientRect();
  return {fits: table.scrollWidth <= box.clientWidth + 1,
          scrolls: ['auto', 'scroll'].includes(getComputedStyle(box).overflowX),
          right: rect.right, width: table.scrollWidth, box: box.clientWidth,
          header: table.querySelector('th') ? table.querySelector('th').textContent : ''};
});
"""
#: The page's own overflow: wider than the window means a sideways scroll bar.
PAGE_WIDTH = """
const e = document.documentElement;
return {scroll: e.scrollWidth, client: e.clientWidth, body: document.body.scrollWidth};
"""
#: Each image: loaded, and drawn no wider than its column.
IMAGES = """
return Array.from(document.images).map(img => ({
  alt: img.alt, loaded: img.complete && img.naturalWidth > 0,
  right: img.getBoundingClientRect().right,
  column: img.parentElement.getBoundingClientRect().right}));
"""
