"""graftkit studio end to end in headless Chromium, on the tiny model: upload a CSV and pick classification,
launch a run and watch it finish, launch a second with another learning rate, compare them, open a mistake,
get a prediction, stop and resume a third run, then restart the studio process and find all three runs."""
from __future__ import annotations

import re

import pytest

from browser_helpers import browser_factory  # noqa: F401  (fixture)
from conftest import write_csv
from studio_helpers import Page, free_port, studio_process

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]] * 5
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]


def test_studio_end_to_end(tmp_path, tiny_model_dir, browser_factory):  # noqa: F811
    from selenium.webdriver.support.ui import Select

    from graftkit.inference.runs import open_run

    workspace = tmp_path / "ws"
    upload = write_csv(tmp_path / "reviews.csv", ROWS)
    settings = {"model__name_or_path": tiny_model_dir, "data__max_length": "32", "train__batch_size": "8",
                "train__report_to": "[]", "train__early_stopping": "", "eval__robustness_rows": "8",
                "train__logging_steps": "1", "eval__calibrate": "false"}
    browser = browser_factory()
    with studio_process(workspace, free_port()) as url:
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
        # long enough (a tiny model runs ~100 steps/s) for the stop to land while it trains, not while it evaluates
        page.launch("third", train__max_steps="1000", train__eval_strategy="steps", train__eval_steps="250",
                    **{**settings, "eval__robustness_rows": "0"})
        page.until(lambda b: re.match(r"[1-7][0-9]{2}/1000", page.text("live-progress")))  # training, not done
        browser.find_element(page.By.CSS_SELECTOR, "#jobs-table button[data-act=stop]").click()
        assert page.live_state("stopped", "complete", "failed") == "stopped", page.text("live-log")
        assert "checkpoint" in page.text("live-message")
        page.until(lambda b: b.find_elements(page.By.CSS_SELECTOR, "#jobs-table button[data-act=resume]"))
        browser.find_element(page.By.CSS_SELECTOR, "#jobs-table button[data-act=resume]").click()
        assert page.live_state("complete", "failed") == "complete", page.text("live-log")
        assert "resuming from" in page.text("live-log")
    # 8. a new studio process over the same workspace lists all three runs, complete
    with studio_process(workspace, free_port()) as url:
        page = Page(browser, url)
        page.open("runs")
        statuses = {tr.get_attribute("data-run"): tr.find_element(page.By.CSS_SELECTOR, "td.status").text
                    for tr in browser.find_elements(page.By.CSS_SELECTOR, "#runs-table tbody tr")}
        assert statuses == {"first": "complete", "second": "complete", "third": "complete"}
        page.open("jobs")
        assert [tr.find_element(page.By.CSS_SELECTOR, "td.state").text for tr in
                browser.find_elements(page.By.CSS_SELECTOR, "#jobs-table tbody tr")] == ["complete"] * 3
