"""Headless Chromium for the tests: Debian's ``chromium`` driven by ``selenium`` through
the system ``chromedriver``.

Without them a browser test is skipped, with the reason; with
``PEESTORE_REQUIRE_BROWSER=1`` (CI sets it) it fails instead, so CI cannot pass
by skipping.  Screenshots go to ``build/screenshots/``.
"""
import contextlib
import os
import pathlib
import shutil
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
#: Headless, and quiet: without the background-networking flags Chromium keeps
#: calling home, which a machine without a network answers with a flood of retries.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PANEL = (800, 480)
DESKTOP = (1280, 800)
WAIT = 20  # seconds any one condition may take before the test fails


def chromium():
    """The Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromedriver():
    """The system chromedriver, or None."""
    return shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)


def missing(driver=True):
    """Why the browser tests cannot run here, or None (``driver=False``: Chromium is
    enough, without selenium and chromedriver)."""
    if chromium() is None:
        return "headless Chromium is not installed (apt-get install chromium)"
    if not driver:
        return None
    if chromedriver() is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    return None


def require(driver=True):
    """Skip the calling test when there is no browser; fail under PEESTORE_REQUIRE_BROWSER=1."""
    reason = missing(driver)
    if reason is None:
        return
    if os.environ.get("PEESTORE_REQUIRE_BROWSER") == "1":
        pytest.fail("PEESTORE_REQUIRE_BROWSER=1 but %s" % reason, pytrace=False)
    pytest.skip(reason)


def start(profile_dir=None):
    """A new headless Chromium (selenium WebDriver) with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=" + (profile_dir or tempfile.mkdtemp(
        prefix="peestore-chromium-")))
    options.add_argument("--window-size=%d,%d" % DESKTOP)
    options.binary_location = chromium()
    driver = webdriver.Chrome(service=Service(chromedriver()), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    resize(driver, PANEL)   # the tests work the console as on the machine's panel
    return driver


@contextlib.contextmanager
def session():
    """A browser (``start``) for the block, quit at its end.  Inside the block of a
    server (``background``): a browser keeps its connections open, and the server's
    thread ends only when they close."""
    driver = start()
    try:
        yield driver
    finally:
        driver.quit()


def resize(driver, size):
    """Give the page exactly ``size`` (width, height) CSS pixels of viewport."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})


def wait(driver, condition, message=""):
    """Wait (bounded) until ``condition(driver)`` is true; its value.  An element that the
    page replaced while the condition read it counts as "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException,)
                         ).until(condition, message)


def horizontal_overflow(driver):
    """How many CSS pixels the page itself is wider than its viewport (0: no scrolling)."""
    return driver.execute_script(
        "var d = document.documentElement; return Math.max(0, d.scrollWidth - d.clientWidth);")


def screenshots(driver, name, at=None):
    """Save ``name-800x480.png`` and ``name-1280x800.png`` of the page as it is (scrolled
    to the element ``at``, a CSS selector, when given) into build/screenshots/; returns
    the page's horizontal overflow on the panel, whose size the page then has again."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflow = None
    for size in (PANEL, DESKTOP):
        resize(driver, size)
        if at:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView("
                                  "{block: 'center'})", at)
        if size == PANEL:
            overflow = horizontal_overflow(driver)
        driver.save_screenshot(str(SCREENSHOTS / ("%s-%dx%d.png" % (name, size[0], size[1]))))
    resize(driver, PANEL)
    return overflow
