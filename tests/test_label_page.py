"""The labelling page: answers are checked and saved atomically after each; in headless Chromium three rows are
labelled by keyboard (one taken back with undo), and after a reload the answers are still there."""
from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient

from browser_helpers import browser_factory  # noqa: F401  (fixture)
from conftest import run_config, write_csv
from deploy_helpers import serving
from graftkit.apps.labelling.page import labelling_app
from graftkit.train.trainer import train

ROWS = [["a wonderful film", "pos"], ["a dull film", "neg"], ["great fun", "pos"], ["boring and bad", "neg"]]
SHEET = [["first row to label", "pos"], ["second row to label", "neg"], ["third row to label", "pos"],
         ["fourth row to label", "neg"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("page-run")
    data = write_csv(tmp / "train.csv", ROWS * 2)
    cfg = run_config(tmp, tiny_model_dir, data, data={"validation": str(data), "test": str(data)},
                     train={"max_steps": 1}, eval={"plots": False, "robustness_rows": 0, "calibrate": False})
    return train(cfg, log=lambda m: None).path


def _sheet(path):
    return write_csv(path, [[t, "", s, "0.5", "", f"pool.csv:{i + 2}"] for i, (t, s) in enumerate(SHEET)],
                     header=("text", "label", "suggested", "score", "given", "source"))


def _labels(path) -> list[str]:
    return [r["label"] for r in csv.DictReader(path.open())]


def test_answers_are_checked_saved_and_undone(run, tmp_path):
    sheet = _sheet(tmp_path / "to_label.csv")
    with TestClient(labelling_app(sheet, run)) as client:
        assert client.get("/api/sheet").json()["labels"] == ["neg", "pos"]
        r = client.put("/api/rows/1", json={"label": "meh"})
        assert r.status_code == 400 and r.json()["error"] == "label 'meh' is not one of the run's labels (neg, pos)"
        assert client.put("/api/rows/9", json={"label": "pos"}).status_code == 400
        assert client.put("/api/rows/1", json={"label": "pos"}).json()["answered"] == 1
        assert _labels(sheet) == ["", "pos", "", ""]  # on disk at once
        assert client.post("/api/undo").json()["index"] == 1 and _labels(sheet) == ["", "", "", ""]
        assert client.post("/api/undo").json() == {"error": "nothing to undo"}
    assert "first row to label" in sheet.read_text()  # the other columns are kept


@pytest.mark.browser
def test_label_three_rows_by_keyboard_then_reload(run, tmp_path, browser_factory):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    sheet = _sheet(tmp_path / "to_label.csv")
    browser = browser_factory()

    def progress(answered: int) -> None:
        WebDriverWait(browser, 30).until(
            lambda b: b.find_element(By.ID, "progress").text.startswith(f"{answered} / 4 answered"))

    def press(key: str, answered: int) -> None:
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
        progress(answered)

    with serving(labelling_app(sheet, run)) as url:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        assert browser.find_element(By.CSS_SELECTOR, "button.preselected").get_attribute("data-label") == "pos"
        press(Keys.ENTER, 1)  # row 1: the suggestion, pos
        press("2", 2)         # row 2: label 2, pos
        press("2", 3)         # row 3: pos ...
        press("u", 2)         # ... taken back
        press("1", 3)         # row 3: neg
        assert _labels(sheet) == ["pos", "pos", "neg", ""]
        browser.refresh()
        progress(3)
        assert browser.find_element(By.ID, "text").text == "fourth row to label"  # the first unanswered row
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
        assert browser.find_element(By.CSS_SELECTOR, "button.chosen").get_attribute("data-label") == "neg"
    assert _labels(sheet) == ["pos", "pos", "neg", ""]
