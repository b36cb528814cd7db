"""graftkit studio end to end in headless Chromium, on the tiny model: upload a CSV and pick classification,
launch a run and watch it finish, launch a second with another learning rate, compare them, open a mistake,
get a prediction, stop and resume a third run, then restart the studio process and find all three runs."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest

from browser_helpers import browser_factory  # noqa: F401  (fixture)
from conftest import write_csv

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]] * 5
#: generous: each job is a fresh `graftkit train` process (torch import included) on a possibly busy machine
WAIT = 600

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def studio_process(workspace, port: int):
    """``graftkit studio WORKSPACE`` as its own process; SIGTERM at the end, as a service manager stops it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "graftkit", "studio", str(workspace), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 240
        while True:
            try:
                urllib.request.urlopen(url + "/api/runs", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"studio did not start: {proc.stderr.read().decode()}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)


class Page:
    """The studio page in one browser: navigation and waits by element id."""

    def __init__(self, browser, url: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.b, self.url, self.By, self.Wait = browser, url, By, WebDriverWait

    def open(self, hash_: str) -> None:
        self.b.get(f"{self.url}/#{hash_}")
        self.until(lambda b: b.find_element(self.By.TAG_NAME, "body").get_attribute("data-ready") == hash_)
        assert self.text("error") == ""

    def until(self, check, timeout: float = WAIT):
        return self.Wait(self.b, timeout, poll_frequency=0.3).until(check)

    def el(self, id_: str):
        return self.b.find_element(self.By.ID, id_)

    def text(self, id_: str) -> str:
        return self.el(id_).text

    def set(self, key: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        field = self.el(f"f-{key}")
        if field.tag_name == "select":  # a key with choices (train.eval_strategy, ...)
            Select(field).select_by_visible_text(value)
            return
        field.clear()
        field.send_keys(value)

    def launch(self, name: str, **values: str) -> None:
        self.set("name", name)
        for key, value in values.items():
            self.set(key.replace("__", "."), value)
        self.el("launch-btn").click()
        self.until(lambda b: b.execute_script("return location.hash").startswith("#jobs/"))

    def live_state(self, *states: str) -> str:
        self.until(lambda b: self.text("live-state") in states)
        return self.text("live-state")


def test_studio_end_to_end(tmp_path, tiny_model_dir, browser_factory):  # noqa: F811
    from selenium.webdriver.support.ui import Select

    from graftkit.inference.runs import open_run

    workspace = tmp_path / "ws"
    upload = write_csv(tmp_path / "reviews.csv", ROWS)
    settings = {"model__name_or_path": tiny_model_dir, "data__max_length": "32", "train__batch_size": "8",
                "train__report_to": "[]", "train__early_stopping": "", "eval__robustness_rows": "8",
                "train__logging_steps": "1", "eval__calibrate": "false"}
    browser = browser_factory()
    with studio_process(workspace, _port()) as url:
        page = Page(browser, url)
        # 1. upload a small CSV, see its preview, pick classification
        page.open("new")
        page.el("upload").send_keys(str(upload))
        page.until(lambda b: "csv, 40 rows, columns: text, label" in page.text("preview-note"))
        Select(page.el("task")).select_by_value("classification")
        # 2. launch a run of a few steps and watch it finish; 3. a second with another learning rate
        page.launch("first", train__max_steps="4", train__learning_rate="0.001", **settings)
        assert page.live_state("complete", "failed") == "complete", page.text("live-log")
        assert "4/4" in page.text("live-progress")
        page.open("new")
        page.launch("second", train__max_steps="4", train__learning_rate="0.005", **{**settings, "eval__robustness_rows": "0"})
        assert page.live_state("complete", "failed") == "complete", page.text("live-log")
        # 4. compare the two: metrics side by side and the loss curves overlaid
        page.open("runs")
        for name in ("first", "second"):
            browser.find_element(page.By.CSS_SELECTOR, f"input.pick-run[value={name}]").click()
        page.el("compare-btn").click()
        page.until(lambda b: b.find_elements(page.By.CSS_SELECTOR, "#compare-chart polyline"))
        assert len(browser.find_elements(page.By.CSS_SELECTOR, "#compare-chart polyline")) == 2
        assert page.text("compare-metrics").splitlines()[0] == "metric first second"
        # 5. open a mistake; 6. type a sentence and get a prediction
        page.open("run/first")
        rows = browser.find_elements(page.By.CSS_SELECTOR, "#mistakes tr.pick")
        assert rows and "plots/training_curve.png" in page.text("run-plots")
        first_text = rows[0].find_elements(page.By.TAG_NAME, "td")[0].text
        rows[0].click()
        page.until(lambda b: page.text("mistake-detail").startswith("Mistake"))
        assert page.text("mistake-text") == first_text and "scores:" in page.text("mistake-detail")
        page.el("try-text").send_keys("a lovely and moving film")
        page.el("try-btn").click()
        page.until(lambda b: b.find_elements(page.By.ID, "try-label"))
        want = open_run(workspace / "runs" / "first").predict(["a lovely and moving film"])[0]
        assert page.text("try-label") == want.label and page.text("try-confidence") == f"{want.score:.4f}"
        # 7. stop a third run while it trains, then resume it to the end
        page.open("new")
        page.launch("third", train__max_steps="60", train__eval_strategy="steps", train__eval_steps="20",
                    **{**settings, "eval__robustness_rows": "0"})
        page.until(lambda b: re.match(r"([1-9]|[1-5][0-9])/60", page.text("live-progress")))  # training, not done
        browser.find_element(page.By.CSS_SELECTOR, "#jobs-table button[data-act=stop]").click()
        assert page.live_state("stopped", "complete", "failed") == "stopped", page.text("live-log")
        assert "checkpoint" in page.text("live-message")
        page.until(lambda b: b.find_elements(page.By.CSS_SELECTOR, "#jobs-table button[data-act=resume]"))
        browser.find_element(page.By.CSS_SELECTOR, "#jobs-table button[data-act=resume]").click()
        assert page.live_state("complete", "failed") == "complete", page.text("live-log")
        assert "resuming from" in page.text("live-log")
    # 8. a new studio process over the same workspace lists all three runs, complete
    with studio_process(workspace, _port()) as url:
        page = Page(browser, url)
        page.open("runs")
        statuses = {tr.get_attribute("data-run"): tr.find_element(page.By.CSS_SELECTOR, "td.status").text
                    for tr in browser.find_elements(page.By.CSS_SELECTOR, "#runs-table tbody tr")}
        assert statuses == {"first": "complete", "second": "complete", "third": "complete"}
        page.open("jobs")
        assert [tr.find_element(page.By.CSS_SELECTOR, "td.state").text for tr in
                browser.find_elements(page.By.CSS_SELECTOR, "#jobs-table tbody tr")] == ["complete"] * 3
