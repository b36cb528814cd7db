"""The playground page end to end in headless Chromium (Debian's chromium + chromium-driver, driven by selenium):
type a sentence, press Predict, read the label; NER entities are highlighted as <mark> elements."""
from __future__ import annotations

import shutil

import pytest

from deploy_helpers import classifier_run, ner_run, serving
from graftkit.serve import ServeConfig, create_app

KEY = "browser-key-0123456789"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):  # a missing browser is a broken test machine, not a reason to skip
        pytest.fail("headless Chromium tests need Debian's `chromium` and `chromium-driver` (see .ci/run)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    yield drv
    drv.quit()


def _predict_in_page(browser, url: str, text: str, key: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.ID, "go").click()
    WebDriverWait(browser, 60).until(ec.any_of(ec.presence_of_element_located((By.ID, "result")),
                                               ec.presence_of_element_located((By.ID, "error"))))
    return browser


def test_playground_classification(browser, tmp_path_factory, tiny_model_dir):
    from selenium.webdriver.common.by import By

    run = classifier_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    with serving(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as url:
        page = _predict_in_page(browser, url, "i loved every minute", KEY)
        assert page.find_element(By.ID, "label").text == "pos"
        assert "neg" in page.find_element(By.ID, "result").text  # the score table lists every label
        page = _predict_in_page(browser, url, "i loved every minute", "wrong-key")
        assert page.find_element(By.ID, "error").text.startswith("403")


def test_playground_highlights_entities(browser, tmp_path_factory, tiny_model_dir):
    from selenium.webdriver.common.by import By

    run = ner_run(tmp_path_factory.getbasetemp() / "deploy", tiny_model_dir)
    with serving(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as url:
        text = "Angela Merkel visited Siemens in Munich"
        page = _predict_in_page(browser, url, text, KEY)
        import httpx

        expected = httpx.post(url + "/v1/predict", json={"texts": [text]},
                              headers={"X-API-Key": KEY}).json()["predictions"][0]["entities"]
        marks = page.find_elements(By.CSS_SELECTOR, "#result mark.entity")
        assert expected, "the tiny NER model should find entities in its own training sentence"
        assert [m.get_attribute("data-label") for m in marks] == [e["label"] for e in expected]
        assert [m.text.split("\n")[0] for m in marks] == [text[e["start"]:e["end"]] + e["label"] for e in expected] \
            or [m.text.replace(e["label"], "").strip() for m, e in zip(marks, expected)] == [e["text"] for e in expected]
