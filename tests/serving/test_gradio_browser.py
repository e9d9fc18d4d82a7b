"""The Gradio app in a real browser: headless Chromium (Debian's package) driven by Selenium against the app
served on localhost over the tiny system.

The test types a Korean sentence with an alternative and the explain switch on, submits, and checks what is
rendered: the summary's numbers (against the pipeline's own result), the emotion chart's 28 bars, the clause
table, the JSON in its accordion; then a whitespace-only text (an error message, the app keeps answering) and
an English text. Nothing may be fetched from outside: every request the browser makes goes to the app, and the
app process opens no connection beyond the loopback. A screenshot is saved under the test's tmp folder (and
copied into ``$RH_SCREENSHOT_DIR`` when set).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[serving]')")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from redheart.serving.gradio_app import build_app, launch  # noqa: E402
from redheart.serving.service import AnalysisService  # noqa: E402
from redheart.serving.settings import ServingSettings  # noqa: E402
from redheart.serving.testing import free_port  # noqa: E402

# Gradio's queue still calls pandas options that pandas 3 deprecates (not this project's code).
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KO = "친구와의 약속을 어기고 야근을 했다, 하지만 팀을 도왔다"
KO_ALTERNATIVE = "약속을 지키고 친구를 만났다"
WAIT_S = 90

#: Hosts the app process tried to reach beyond the loopback while the app was up (see `outbound_guard`).
OUTBOUND: list[str] = []
_guarding = False


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if not _guarding:
        return
    if event == "socket.connect" and args[0].family in (socket.AF_INET, socket.AF_INET6):
        host = args[1][0]
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if not _is_loopback(host):
        OUTBOUND.append(f"{event} {host}")


@pytest.fixture(scope="module")
def outbound_guard():
    """Record every connection (and name lookup) of this process that leaves the loopback."""
    global _guarding
    sys.addaudithook(_audit)  # hooks stay for the process; this one only records while guarding
    _guarding = True
    yield OUTBOUND
    _guarding = False


@pytest.fixture(scope="module")
def app_url(tiny_system, outbound_guard):
    service = AnalysisService(ServingSettings(model=str(tiny_system)))
    app = build_app(service)
    _, url, _ = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url
    app.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} absent: apt-get install -y chromium chromium-driver (CI does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1400,2300",
        "--lang=ko-KR",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str):
    return WebDriverWait(driver, WAIT_S).until(condition, message=f"waited {WAIT_S} s for {what}")


def submit(driver, text: str, alternatives: str = "", explain: bool = False) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#rh-text textarea")
    box.clear()
    box.send_keys(text)
    alts = driver.find_element(By.CSS_SELECTOR, "#rh-alts textarea")
    alts.clear()
    if alternatives:
        alts.send_keys(alternatives)
    checkbox = driver.find_element(By.CSS_SELECTOR, "#rh-explain input")
    if checkbox.is_selected() != explain:
        checkbox.click()
    driver.find_element(By.CSS_SELECTOR, "#rh-submit").click()


def summary(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#rh-summary").text


def save_screenshot(driver, path: Path) -> None:
    """The whole page (the window grown to its height), copied into ``$RH_SCREENSHOT_DIR`` when set."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 200, 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("RH_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["RH_SCREENSHOT_DIR"]) / path.name)


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            urls.append(message["params"].get("request", {}).get("url") or message["params"].get("url", ""))
    return urls


def test_korean_text_renders_charts_numbers_and_explanation(browser, app_url, tiny_pipeline, tmp_path):
    browser.get(app_url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#rh-text textarea"), "the text box")
    submit(browser, KO, KO_ALTERNATIVE, explain=True)
    wait_for(browser, lambda d: "Utility" in summary(d), "the summary of the analysis")

    expected = tiny_pipeline(KO, alternatives=[KO_ALTERNATIVE])
    shown = summary(browser)
    assert "Language ko" in shown
    utility = re.search(r"Utility (-?\d+\.\d+) ± (\d+\.\d+)", shown)
    assert float(utility[1]) == pytest.approx(expected["analysis"]["bentham"]["utility"], abs=0.006)
    assert float(utility[2]) == pytest.approx(expected["analysis"]["bentham"]["utility_std"], abs=0.006)
    regret = float(re.search(r"Regret (\d+\.\d+)", shown)[1])
    assert regret == pytest.approx(expected["analysis"]["regret"]["potential"], abs=0.006)

    bars = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#rh-emotions svg .mark-rect path"),
        "the emotion chart's bars",
    )
    assert len(bars) == 28
    explanation = browser.find_element(By.CSS_SELECTOR, "#rh-explanation").text
    assert "3 clauses, 7 subsets" in explanation
    assert "하지만 팀을 도왔다" in browser.page_source  # the clause table

    save_screenshot(browser, tmp_path / "gradio_screenshot.png")

    browser.find_element(By.XPATH, "//button[contains(., 'Full result (JSON)')]").click()
    json_view = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#rh-json"), "the JSON view")
    wait_for(browser, lambda d: "integrated" in json_view.text, "the JSON to show")


def test_blank_text_shows_an_error_and_the_app_keeps_answering(browser, app_url):
    if not browser.current_url.startswith(app_url):
        browser.get(app_url)
    submit(browser, "   ")
    wait_for(browser, lambda d: "empty or whitespace-only" in d.page_source, "the error message")
    submit(browser, "I returned the wallet I found on the street.")
    wait_for(browser, lambda d: "Language en" in summary(d), "the English analysis")


def test_nothing_is_fetched_from_outside(browser, app_url, outbound_guard):
    if not browser.current_url.startswith(app_url):
        browser.get(app_url)
    origin = app_url.rstrip("/").split("://")[1]
    external = [
        url
        for url in requested_urls(browser)
        if re.match(r"(https?|wss?)://", url) and url.split("/")[2] != origin
    ]
    assert external == []
    assert outbound_guard == []
