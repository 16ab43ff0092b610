"""The report in a real browser: headless Chromium through selenium and chromedriver.

Checks that every figure decodes, that the page logs no console error, and that
the expected section headings are there; saves a full-page screenshot under the
test's tmp folder (and to ``$PGBENCH_REPORT_SCREENSHOT`` when that is set).
Skipped when selenium, Chromium or chromedriver is missing:
``pip install selenium`` and ``apt-get install chromium chromium-driver``.
"""

from __future__ import annotations

import os
import shutil

import pytest
from report_rows import add_downstream, make_store, sample_rows

from pgbench.cli import main

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")

# the closed network makes Chromium's background services log errors unless they are off
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
HEADINGS = ["Verdict", "Results per data set", "The paper's numbers beside this run's", "Summary", "Empty clusters per layer type", "Share of layers with empty clusters",
            "Empty-cluster resolution: rounds and time", "The paper's claims in comparable units",
            "Accuracy against compression ratio", "Per-iteration curves",
            "Cluster-size distributions", "Centroid index on ground-truth sets"]


def _find(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture
def browser(tmp_path):
    chromium = _find("PGBENCH_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
    driver_path = _find("PGBENCH_CHROMEDRIVER", "chromedriver")
    if not chromium:
        pytest.skip("no Chromium found (apt-get install chromium, or set PGBENCH_CHROMIUM)")
    if not driver_path:
        pytest.skip("no chromedriver found (apt-get install chromium-driver, or set PGBENCH_CHROMEDRIVER)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=900,1000")   # figures and tables must stay readable at 900 px
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(tmp_path, browser):
    results = make_store(tmp_path / "results", sample_rows())
    add_downstream(results)
    page = tmp_path / "report.html"
    assert main(["report", str(results), "-o", str(page)]) == 0

    browser.get(page.resolve().as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) == 5, images                  # Pareto front, resolution, downstream, curves, sizes
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"figure not decoded: {alt}"
    headings = browser.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);")
    assert headings == HEADINGS
    assert browser.title == "pgbench report: t"
    # the new sections: the headline first, a table per data set, the paper's numbers beside the measured ones
    ids = browser.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id);")
    assert ids[:4] == ["verdict", "per-dataset", "paper-claims", "summary"] and "paper-checks" in ids
    headline = browser.execute_script("return document.querySelector('#verdict ul.headline').innerText;")
    assert "has the lowest inertia relative to the best" in headline
    top = browser.execute_script("return document.querySelector('#verdict ul.headline').getBoundingClientRect().top;")
    assert top < 1000                                 # on the first screen
    per_dataset = browser.execute_script("return document.querySelectorAll('#per-dataset table').length;")
    assert per_dataset == 7     # win / tie / loss; inertia, time, empties, rounds per data set; the two data sets
    measured = browser.execute_script(
        "return Array.from(document.querySelectorAll('#paper-claims td.best')).length;")
    assert measured > 0                               # the layer at paper-11.81 and the downstream rows match
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []

    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(900, min(int(height) + 40, 16000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("PGBENCH_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["PGBENCH_REPORT_SCREENSHOT"])
