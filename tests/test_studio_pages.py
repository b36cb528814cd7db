"""The studio's Label and Deploy pages and its explanation heat-maps in headless Chromium, on one tiny run (the
studio in a thread of this process): rows suggested from a pool are answered by keyboard, undone and imported into
the labelled file; an ONNX export shows its parity report; a local service shows its URL and its key once, and
stops; a mistake's row and the Try box show the words tinted by their attributions, and a refusal in one line."""
from __future__ import annotations

import csv
import json
import re
import urllib.request

import pytest

from browser_helpers import browser_factory  # noqa: F401  (fixture)
from conftest import write_csv
from studio_helpers import Page, studio_thread, workspace_with_run
from graftkit.apps.studio.heatmap import MAX_CHARS

POOL = [["a lovely story"], ["an awful plot"], ["fine acting"], ["tedious and long"], ["i loved it"], ["i hated it"]]
TEXT = "a lovely and moving film"
RGBA = re.compile(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir):
    ws = workspace_with_run(tmp_path_factory.mktemp("studio-pages"), tiny_model_dir, steps=2, plots=False)
    write_csv(ws / "data" / "pool.csv", POOL, header=("text",))
    return ws


@pytest.fixture(scope="module")
def page(workspace, browser_factory):  # noqa: F811
    with studio_thread(workspace) as url:
        yield Page(browser_factory(), url, wait=120)


def _api(page: Page, path: str, body: dict | None = None) -> dict:
    ask = urllib.request.Request(page.url + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(ask, timeout=120) as reply:
        return json.load(reply)


def _press(page: Page, key: str, answered: int) -> None:
    page.css("body")[0].send_keys(key)
    page.until(lambda b: page.text("label-progress") == f"{answered} / 3 answered")


def _sheet_labels(workspace) -> list[str]:
    return [r["label"] for r in csv.DictReader((workspace / "label" / "first-1.csv").open(encoding="utf-8"))]


def test_label_page_suggest_answer_by_keyboard_undo_and_import(page, workspace):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    page.open("label")
    Select(page.el("label-run")).select_by_value("first")
    Select(page.el("label-pool")).select_by_value("data/pool.csv")
    Select(page.el("label-strategy")).select_by_value("entropy")
    page.el("label-k").clear()
    page.el("label-k").send_keys("3")
    page.el("label-select").click()
    page.until(lambda b: page.text("label-progress") == "0 / 3 answered")
    assert page.text("label-sheet") == "label/first-1.csv" and page.text("label-pos") == "1 of 3"
    first, suggested = page.text("label-text"), page.text("label-suggested")
    assert [first] in POOL and suggested in ("neg", "pos")
    assert page.css("#label-buttons button.preselected")[0].get_attribute("data-label") == suggested
    _press(page, Keys.ENTER, 1)  # accept the suggestion: saved at once, the next row shown
    assert _sheet_labels(workspace) == [suggested, "", ""] and page.text("label-pos") == "2 of 3"
    _press(page, Keys.BACKSPACE, 0)  # undo: back on the first row, its answer removed from the file
    assert _sheet_labels(workspace) == ["", "", ""] and page.text("label-text") == first
    _press(page, "1", 1)  # the first label (neg)
    assert _sheet_labels(workspace) == ["neg", "", ""]
    before = (workspace / "data" / "reviews.csv").read_text(encoding="utf-8")
    page.el("label-import").click()
    page.until(lambda b: page.text("label-status").startswith("merged"))
    assert page.text("label-status") == "merged 1 rows into data/reviews.csv (2 not answered)"
    after = (workspace / "data" / "reviews.csv").read_text(encoding="utf-8")
    assert after.startswith(before) and after[len(before):].strip() == f"{first},neg"


def test_deploy_page_export_with_parity_then_a_service_with_its_key_shown_once(page, workspace):
    page.open("deploy")
    assert page.el("deploy-run").get_attribute("value") == "first" and page.text("export-state") == "not exported"
    page.el("export-btn").click()
    page.until(lambda b: page.text("export-state") in ("complete", "failed") or page.text("error"))
    assert page.text("export-state") == "complete", page.text("export-log") + page.text("error")
    report = json.loads((workspace / "runs" / "first" / "onnx" / "parity.json").read_text())
    shown = set(page.texts("#export-report tbody td:first-child"))
    assert shown == set(report["backends"]) and {"torch", "onnx_fp32"} <= shown
    page.el("serve-btn").click()
    page.until(lambda b: page.css("#services-table tbody tr"))
    key = page.text("serve-key-value")
    assert page.el("serve-key").is_displayed() and len(key) >= 16
    run, url, state = page.texts("#services-table tbody td")[:3]
    assert run == "first" and re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and state in ("starting", "ready")
    listed = key in json.dumps(_api(page, "/api/services"))
    assert not listed  # (a bool, so that a failure prints no key)
    page.until(lambda b: page.css("#services-table button[data-run=first]")[0].click() or True)  # retried if stale
    page.until(lambda b: page.texts("#services-table tbody td")[2].startswith("exited"))
    assert not page.css("#services-table button")  # stopped: no Stop button
    page.open("runs")
    page.open("deploy")  # shown once: gone from the page when it is opened again
    still_there = key in page.b.page_source
    assert not page.el("serve-key").is_displayed() and not still_there


def _heat_words(page: Page, within) -> list[tuple[str, float, tuple]]:
    """(word, score, rgba) of each word of a heat-map."""
    out = []
    for span in page.css(".tok", within):
        m = RGBA.fullmatch(span.value_of_css_property("background-color"))
        out.append((span.text, float(span.get_attribute("data-score")),
                    (int(m[1]), int(m[2]), int(m[3]), float(m[4] or 1))))
    return out


def _check_tints(words) -> None:
    """Green toward the target, red against, the largest magnitude in full colour, the others in proportion."""
    scale = max(abs(s) for _, s, _ in words)
    for _, score, (r, g, b, a) in words:
        assert (r, g, b) == ((22, 163, 74) if score > 0 else (220, 38, 38))
        assert a == pytest.approx(abs(score) / scale, abs=0.01)


def test_heat_maps_on_a_mistake_and_on_try(page):
    page.open("run/first")
    row = page.css("#mistakes tr.pick")[0]
    text = row.find_element(page.By.TAG_NAME, "td").text
    page.css("button.explain-btn", row)[0].click()
    page.until(lambda b: page.css("#mistakes tr.heat-row .tok"))
    heat = page.css("#mistakes tr.heat-row")[0]
    words = _heat_words(page, heat)
    assert [w for w, _, _ in words] == text.split() and page.text("mistake-detail") == ""  # the row did not open
    _check_tints(words)
    assert page.css(".ramp", heat) and "red: against the target · green: toward it" in heat.text
    page.el("try-text").send_keys(TEXT)
    page.el("try-btn").click()
    page.until(lambda b: page.css("#try-explain"))
    page.el("try-explain").click()
    page.until(lambda b: page.css("#try-heat .tok"))
    words = _heat_words(page, page.el("try-heat"))
    want = _api(page, "/api/runs/first/explain", {"text": TEXT})["blocks"][0]
    assert [w for w, _, _ in words] == want["tokens"] == TEXT.split()
    assert [s for _, s, _ in words] == pytest.approx(want["scores"], rel=1e-6)
    _check_tints(words)
    page.el("try-text").send_keys(" and" * (MAX_CHARS // 4))  # over the explanation limit: refused in one line
    page.el("try-btn").click()
    page.until(lambda b: not page.css("#try-heat .tok") and page.css("#try-explain"))
    page.el("try-explain").click()
    page.until(lambda b: page.css("#try-heat .heat-error"))
    assert re.fullmatch(rf"the text has \d+ characters; explanations take at most {MAX_CHARS} .*",
                        page.text("try-heat"))
