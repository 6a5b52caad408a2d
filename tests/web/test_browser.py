"""A real browser against the real server: waitress on a free port, headless Chromium through selenium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.settings import Settings
from web import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The browser's view of the test corpus; docs/screenshot.png (the README's) shows the seed corpus instead.
SCREENSHOT = Path(os.environ.get("PERSONAE_SCREENSHOT", "/tmp/personae-browser-test.png"))


def _serve(settings: Settings) -> Iterator[str]:
    """The app served by waitress (as `personae serve` does) on an ephemeral 127.0.0.1 port."""
    from waitress.server import create_server

    srv = create_server(create_app(settings), host="127.0.0.1", port=0, threads=4, ident="personae-test")
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}"
    srv.close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def server(web_index: Settings) -> Iterator[str]:
    yield from _serve(web_index)


@pytest.fixture(scope="module")
def news_server(news_index) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The generated, dated news archive (tests/search/newsgen.py) behind a real server."""
    yield from _serve(news_index[0])


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).exists() and not shutil.which(Path(exe).name):  # both found, or skipped here
            pytest.skip(f"{exe} is missing; install chromium and chromium-driver to run browser tests")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium") or CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1280,900", "--hide-scrollbars",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.set_window_size(1280, 900)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_search_filter_and_entity_page_in_a_real_browser(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(server + "/")
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "form[role=search] input[name=q]")))
    box.send_keys("rare earth metals")
    box.submit()

    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".snippet mark")))
    assert "q=rare+earth+metals" in browser.current_url
    marks = [m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, ".snippet mark")]
    assert {"rare", "earth", "metals"} <= set(marks)
    assert browser.find_elements(By.CSS_SELECTOR, ".snippet a.ent.ent-person")
    assert not browser.find_elements(By.XPATH, "//*[contains(@class,'snippet')]//script")

    # The "why this result" panel opens on demand.
    why = browser.find_element(By.CSS_SELECTOR, "details.why summary")
    why.click()
    assert "Keyword (BM25)" in browser.find_element(By.CSS_SELECTOR, "details.why[open] table").text

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    why.click()  # close it again for a tidy screenshot
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    # Click an entity facet: the URL and the results are filtered, and the filter shows as a chip.
    facet = browser.find_element(By.CSS_SELECTOR, "aside.facets a.facet-link[data-entity='ukraine']")
    facet.click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.filters .chip")))
    assert "entity=ukraine" in browser.current_url
    assert "Ukraine" in browser.find_element(By.CSS_SELECTOR, "ul.filters .chip").text
    docs = browser.find_elements(By.CSS_SELECTOR, "ol.hits > li.doc")
    assert docs
    active = browser.find_element(By.CSS_SELECTOR, "aside.facets li.on a[aria-pressed=true]")
    assert "Ukraine" in active.text

    # Through to Lavrov's entity page from a linked mention in a snippet.
    browser.find_element(By.CSS_SELECTOR, ".snippet a.ent[data-entity='sergei-lavrov']").click()
    heading = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1#ent-name")))
    assert heading.text == "Sergei Lavrov"
    assert browser.current_url.endswith("/entities/sergei-lavrov")
    assert browser.find_elements(By.CSS_SELECTOR, "ol.mentions li.mention")
    quotes = browser.find_elements(By.CSS_SELECTOR, ".quotes blockquote")
    assert any("rare earth metals" in q.text for q in quotes)


def test_narrow_screen_puts_facets_below_results(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.set_window_size(400, 900)
    try:
        browser.get(server + "/?q=Lavrov")
        results = browser.find_element(By.CSS_SELECTOR, "section.results").rect
        facets = browser.find_element(By.CSS_SELECTOR, "aside.facets").rect
        assert facets["y"] >= results["y"] + results["height"] - 1
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400  # no horizontal scrolling on a phone
    finally:
        browser.set_window_size(1280, 900)


def test_exclusion_dates_histogram_and_paging_in_a_real_browser(news_server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    browser.get(news_server + "/")
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "form[role=search] input[name=q]")))
    box.send_keys("storm -Russia")
    box.submit()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ol.hits li.doc")))
    assert "Excluding" in browser.find_element(By.CSS_SELECTOR, "p.excluding").text
    for li in browser.find_elements(By.CSS_SELECTOR, "ol.hits li.doc"):
        assert "russia" not in li.text.lower()
    assert "all paragraphs that match" in browser.find_element(By.CSS_SELECTOR, ".facet-note").text

    # Click the tallest bar of the histogram: the page narrows to that period.
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.timeline-chart a.bar-link")
    assert len(bars) > 12
    heights = [float(b.find_element(By.CSS_SELECTOR, "rect.bar").get_attribute("height")) for b in bars]
    period = bars[heights.index(max(heights))].get_attribute("data-period")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                           bars[heights.index(max(heights))])
    wait.until(ec.url_contains(f"from={period}"))
    assert f"to={period}" in browser.current_url
    dates = [t.get_attribute("datetime") for t in browser.find_elements(By.CSS_SELECTOR, ".doc-meta time")]
    assert dates and all(d.startswith(period) for d in dates)
    assert browser.find_element(By.ID, "date-from").get_attribute("value").startswith(period)

    # Newest first, through the form.
    browser.get(news_server + "/?q=flooding")
    Select(browser.find_element(By.ID, "sort")).select_by_value("date")
    browser.find_element(By.CSS_SELECTOR, "form.date-form button[type=submit]").click()
    wait.until(ec.url_contains("sort=date"))
    dates = [t.get_attribute("datetime") for t in browser.find_elements(By.CSS_SELECTOR, ".doc-meta time")]
    assert len(dates) >= 5 and dates == sorted(dates, reverse=True)

    # The pager reaches the last page, which has results and no "Next".
    summary = browser.find_element(By.CSS_SELECTOR, "p.summary").text
    last = int(summary.split("page 1 of ")[1].split()[0])
    browser.get(news_server + f"/?q=flooding&sort=date&page={last}")
    assert browser.find_elements(By.CSS_SELECTOR, "ol.hits li.doc")
    assert browser.find_element(By.CSS_SELECTOR, "nav.pager span.disabled").text.startswith("Next")


def test_similar_articles_export_and_entity_timeline_in_a_real_browser(  # type: ignore[no-untyped-def]
    news_server: str, news_index, browser
) -> None:
    import csv
    import io
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    copied = next(a for a in news_index[1] if a.copy_of)  # a story and its wire copy
    wait = WebDriverWait(browser, 30)
    browser.get(news_server + f"/?q=%22story+{int(copied.copy_of[1:])}%22")
    similar = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "details.similar")))
    summary = similar.find_element(By.TAG_NAME, "summary")
    assert summary.text.startswith("+") and "similar article" in summary.text
    assert not similar.find_element(By.CSS_SELECTOR, "ul a").is_displayed()
    summary.click()
    link = similar.find_element(By.CSS_SELECTOR, "ul a")
    assert link.is_displayed() and link.text

    # The export link downloads every page of this result set as CSV.
    browser.get(news_server + "/?q=heatwave&mode=keyword")
    href = browser.find_element(By.CSS_SELECTOR, "a.export-csv").get_attribute("href")
    assert "format=csv" in href and "q=heatwave" in href
    with urllib.request.urlopen(href, timeout=60) as resp:  # noqa: S310 (our own test server)
        rows = list(csv.DictReader(io.StringIO(resp.read().decode("utf-8"))))
    total = int(browser.find_element(By.CSS_SELECTOR, "p.summary strong").text.replace(",", ""))
    assert len({r["doc_id"] for r in rows}) == total > 10

    # The entity page charts mentions over time; a bar opens the search for that entity and period.
    browser.get(news_server + "/entities/riyadh")
    bars = wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "svg.timeline-chart a.bar-link")))
    assert len(bars) > 12
    period = bars[0].get_attribute("data-period")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", bars[0])
    wait.until(ec.url_contains("entity=riyadh"))
    assert f"from={period}" in browser.current_url
    dates = [t.get_attribute("datetime") for t in browser.find_elements(By.CSS_SELECTOR, ".doc-meta time")]
    assert dates and all(d.startswith(period) for d in dates)
