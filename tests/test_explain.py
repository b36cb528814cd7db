"""Explanations: completeness, faithfulness on a keyword-rule model, word aggregation, bad input."""
from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import run_config, write_csv

from graftkit.errors import GraftkitError
from graftkit.evaluate.explain import Explainer, html_page, rich_text
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train

FILLER = ["the", "a", "cat", "dog", "sat", "on", "mat", "today", "we", "saw", "one", "house",
          "car", "tree", "river", "blue", "green", "small", "big", "old"]


def keyword_rows(n=180, seed=0):
    """pos iff the text holds 'excellent', neg iff it holds 'awful', neu otherwise; five random filler words.

    The third class matters: with two, "no 'awful'" already means pos and 'excellent' carries nothing."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.sample(FILLER, 5)
        if i % 3 < 2:
            words.insert(rng.randrange(6), "excellent" if i % 3 == 0 else "awful")
        rows.append([" ".join(words), ["pos", "neg", "neu"][i % 3]])
    return rows


#: for the explanation fixture: every word one WordPiece token, many of them, so that nothing but the keyword
#: separates the classes and a text of no words (the [PAD] baseline) reads as "no keyword" (neu)
WIDE_FILLER = ["the", "a", "cat", "dog", "sat", "on", "mat", "today", "we", "saw", "one", "house", "car", "tree",
               "river", "blue", "green", "small", "big", "old", "by", "was", "and", "in", "at", "of", "to", "it",
               "is", "this", "that", "with", "from", "for", "red", "two", "three", "four", "man", "woman", "child",
               "boat", "road", "city", "park", "door", "window", "table", "chair", "book", "water", "sun", "moon",
               "night", "day", "street", "hill", "field", "town"]


def wide_keyword_rows(n=180, seed=0):
    """The keyword rule over WIDE_FILLER, three to seven filler words a row."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = rng.sample(WIDE_FILLER, rng.randint(3, 7))
        if i % 3 < 2:
            words.insert(rng.randrange(len(words) + 1), "excellent" if i % 3 == 0 else "awful")
        rows.append([" ".join(words), ["pos", "neg", "neu"][i % 3]])
    return rows


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("kw")
    rows = wide_keyword_rows()
    data = write_csv(tmp / "kw.csv", rows)
    # metric loss: the best checkpoint is the most fitted one (macro_f1 ties at 1.0 from an early epoch on).
    # calibrate off: the validation split is perfectly separated, so the NLL-optimal T is the floor (0.05),
    # which saturates every softmax to 1 - 1e-9 and leaves Integrated Gradients no slope (the "flat" run);
    # explanations under a temperature are tested on a copy with T set by hand
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 25, "learning_rate": 3e-3, "batch_size": 16,
                                                       "metric": "loss"},
                     data={"split": {"validation": 0.1, "test": 0.1}}, eval={"calibrate": False,
                                                                              "robustness_rows": 0})
    run = train(cfg, log=lambda m: None).path
    _require_the_rule_was_learned(run, rows)
    return run


def _require_the_rule_was_learned(run, rows):
    """Fail loudly (not as a puzzling attribution) when the tiny model did not fit the keyword rule."""
    pred = Predictor(run)
    fresh = wide_keyword_rows(30, seed=99)
    wrong = [(t, y, p.label) for (t, y), p in zip(rows + fresh, pred.predict([r[0] for r in rows + fresh]))
             if p.label != y]
    if wrong:
        pytest.fail(f"the keyword fixture model did not learn the rule: {len(wrong)} of {len(rows) + len(fresh)} "
                    f"rows wrong, e.g. {wrong[:3]}; retune the fixture's training")
    r = Explainer(run, steps=8, max_steps=8, predictor=pred).explain("we saw the excellent cat")
    if r["score"] - r["baseline_score"] < 0.5:  # the [PAD] baseline must read as "no keyword"
        pytest.fail(f"the keyword fixture model gives the [PAD] baseline p(pos) = {r['baseline_score']:.3f}; "
                    "attributions would be flat")


@pytest.fixture(scope="module")
def explainer(keyword_run):
    return Explainer(keyword_run, steps=50)


TEXTS = ["we saw the excellent cat on a mat", "awful blue car by the old river", "a dog sat excellent today",
         "the small house was awful and green"]


@pytest.mark.parametrize("text", TEXTS)
def test_completeness_within_the_stated_delta(explainer, text):
    r = explainer.explain(text)
    gap = r["score"] - r["baseline_score"]
    total = sum(w["attribution"] for w in r["words"])
    # the stated tolerance: |delta| <= 2% of |f(input) - f(baseline)| + 1e-4 (steps double until it holds)
    assert r["converged"] and abs(r["delta"]) <= 0.02 * abs(gap) + 1e-4
    assert total == pytest.approx(gap, abs=0.02 * abs(gap) + 1e-4)  # words carry all of it (specials carry none)
    assert [w["text"] for w in r["words"]] == text.split()


def test_the_explained_score_is_the_calibrated_probability(keyword_run, tmp_path):
    import json
    import shutil

    scaled = shutil.copytree(keyword_run, tmp_path / "scaled")
    state = json.loads((scaled / "labels.json").read_text())
    state["temperature"] = [3.0]
    (scaled / "labels.json").write_text(json.dumps(state))
    text = "a dog sat excellent today"
    r = Explainer(scaled).explain(text)
    assert r["score"] == pytest.approx(Predictor(scaled).predict([text])[0].scores["pos"], abs=1e-5)
    assert r["score"] < Predictor(keyword_run).predict([text])[0].scores["pos"] - 1e-3  # T = 3 softened it
    assert abs(r["delta"]) <= 0.02 * abs(r["score"] - r["baseline_score"]) + 1e-4


def test_the_keyword_gets_the_largest_attribution(explainer):
    for text in TEXTS:
        r = explainer.explain(text)
        top = max(r["words"], key=lambda w: w["attribution"])
        assert top["text"] in ("excellent", "awful"), (text, r["words"])


def test_deleting_top_attributed_words_lowers_the_probability_more_than_random(keyword_run, explainer):
    pred = Predictor(keyword_run)
    rng = random.Random(1)
    top_drops, random_drops = [], []
    for text, label in [r for r in wide_keyword_rows(36, seed=7) if r[1] != "neu"]:
        r = explainer.explain(text)
        words = [w["text"] for w in r["words"]]
        top = int(np.argmax([w["attribution"] for w in r["words"]]))
        rand = rng.randrange(len(words))
        without = lambda k, words=words: " ".join(w for i, w in enumerate(words) if i != k)
        p0 = pred.predict([text])[0].scores[r["target"]]
        top_drops.append(p0 - pred.predict([without(top)])[0].scores[r["target"]])
        random_drops.append(p0 - pred.predict([without(rand)])[0].scores[r["target"]])
    assert np.mean(top_drops) > 2 * max(np.mean(random_drops), 1e-3)


def test_target_class_and_rendering(explainer):
    r = explainer.explain("we saw the excellent cat", target="neu")
    assert r["target"] == "neu"
    top = min(r["words"], key=lambda w: w["attribution"])
    assert top["text"] == "excellent"  # evidence against "neg"
    page = html_page(r, explainer.blocks(r))
    assert "<script" not in page and "excellent" in page and "rgba(220,38,38" in page
    assert rich_text(r["words"]).plain == "we saw the excellent cat"
    with pytest.raises(GraftkitError, match="unknown class 'maybe'"):
        explainer.explain("text", target="maybe")


def test_chinese_is_aggregated_to_characters(explainer):
    r = explainer.explain("我们今天 awful")
    assert [w["text"] for w in r["words"]] == ["我", "们", "今", "天", "awful"]


def test_export_only_run_needs_the_torch_weights(tmp_path, keyword_run):
    import shutil

    export_only = tmp_path / "exported"
    export_only.mkdir()
    for name in ("config.json", "labels.json", "config.yaml", "tokenizer.json", "tokenizer_config.json"):
        if (keyword_run / name).is_file():
            shutil.copy(keyword_run / name, export_only / name)
    (export_only / "onnx").mkdir()
    (export_only / "onnx" / "model.onnx").write_bytes(b"graph")
    with pytest.raises(GraftkitError, match="needs? the torch weights"):
        Explainer(export_only)


def test_steps_are_capped(keyword_run):
    with pytest.raises(GraftkitError, match="steps must be between"):
        Explainer(keyword_run, steps=5000)
    capped = Explainer(keyword_run, steps=2, max_steps=2).explain(TEXTS[1])
    assert capped["steps"] == 2 and capped["converged"] == (abs(capped["delta"]) <= 0.02 * abs(
        capped["score"] - capped["baseline_score"]) + 1e-4)


# -- POST /v1/explain and the playground heat-map -------------------------------------------------
KEY = "explain-key-0123456789"


@pytest.fixture
def client(keyword_run):
    from fastapi.testclient import TestClient

    from graftkit.serve import ServeConfig, create_app

    app = create_app(keyword_run, ServeConfig(api_keys=[KEY], log_level="warning", explain_per_minute=3,
                                              explain_max_chars=60, explain_max_steps=200))
    with TestClient(app) as c:
        yield c


def test_explain_endpoint_limits_and_caps(client, keyword_run):
    h = {"X-API-Key": KEY}
    r = client.post("/v1/explain", json={"text": TEXTS[0]}, headers=h)
    assert r.status_code == 200, r.text
    x = r.json()["explanation"]
    direct = Explainer(keyword_run, steps=50, max_steps=200).explain(TEXTS[0])  # the server's settings
    assert x["target"] == direct["target"] == "pos"
    assert [w["text"] for w in x["words"]] == TEXTS[0].split()
    assert [w["attribution"] for w in x["words"]] == pytest.approx([w["attribution"] for w in direct["words"]],
                                                                    abs=1e-5)
    too_long = client.post("/v1/explain", json={"text": "word " * 20}, headers=h)
    assert too_long.status_code == 422 and too_long.json()["limit"]["name"] == "explain_max_chars"
    too_many = client.post("/v1/explain", json={"text": "ok", "steps": 201}, headers=h)
    assert too_many.status_code == 422 and too_many.json()["limit"]["name"] == "explain_max_steps"
    limited = client.post("/v1/explain", json={"text": "one more"}, headers=h)  # the 4th in this minute
    assert limited.status_code == 429 and limited.json()["limit"]["name"] == "explain_per_minute"
    assert client.post("/v1/predict", json={"texts": ["still fine"]}, headers=h).status_code == 200
    assert client.post("/v1/explain", json={"text": "x"}).status_code == 401


@pytest.mark.browser
def test_playground_heatmap_in_chromium(keyword_run, tmp_path_factory):
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):  # see tests/test_serve_browser.py: a missing browser is a broken machine
        pytest.fail("headless Chromium tests need Debian's `chromium` and `chromium-driver`")
    from deploy_helpers import serving
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from graftkit.serve import ServeConfig, create_app

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-explain')}"):
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        with serving(create_app(keyword_run, ServeConfig(api_keys=[KEY], log_level="warning"))) as url:
            browser.get(url + "/")
            browser.find_element(By.ID, "key").send_keys(KEY)
            browser.find_element(By.ID, "text").send_keys("a dog sat excellent today")
            browser.find_element(By.ID, "explain-go").click()
            WebDriverWait(browser, 60).until(ec.any_of(ec.presence_of_element_located((By.ID, "heatmap")),
                                                       ec.presence_of_element_located((By.ID, "error"))))
            spans = browser.find_elements(By.CSS_SELECTOR, "#heatmap span.attr")
            assert [s.text for s in spans] == ["a", "dog", "sat", "excellent", "today"]
            attrs = [float(s.get_attribute("data-attribution")) for s in spans]
            assert spans[int(np.argmax(attrs))].text == "excellent"
            assert "rgb(22, 163, 74)" in spans[3].get_attribute("style")  # the strongest word: fully green
    finally:
        browser.quit()


# -- other run kinds ---------------------------------------------------------------------------
def _completeness_holds(r):
    return abs(r["delta"]) <= 0.02 * abs(r["score"] - r["baseline_score"]) + 1e-4


def test_ner_explains_each_predicted_entity(tmp_path, tiny_model_dir):
    from test_ner_train import SENTENCES, write_jsonl

    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     data={"validation": str(train_file), "test": str(train_file)},
                     train={"epochs": 40, "learning_rate": 5e-3}, eval={"robustness_rows": 0})
    run = train(cfg, log=lambda m: None)
    text = "Angela Merkel visited Munich."
    r = Explainer(run.path).explain(text)
    assert r["task"] == "ner"
    assert [(e["text"], e["label"]) for e in r["entities"]] == [("Angela Merkel", "PER"), ("Munich", "LOC")]
    for e in r["entities"]:
        assert e["converged"] and _completeness_holds(e)
        assert [w["text"] for w in e["words"]] == ["Angela", "Merkel", "visited", "Munich", "."]
        inside = [w for w in e["words"] if e["start"] <= w["start"] < e["end"]]
        outside = [w for w in e["words"] if not e["start"] <= w["start"] < e["end"]]
        # the entity's own words carry more of its tag probability than the others do
        assert max(abs(w["attribution"]) for w in inside) > min(abs(w["attribution"]) for w in outside)


def test_ensemble_attributes_the_averaged_output(tmp_path, keyword_run, tiny_model_dir):
    from graftkit.modeling.run_folder import RunFolder
    from graftkit.tasks.run_config import config_from_dict
    from graftkit.train.ensemble import build_ensemble

    tree = RunFolder(keyword_run).config_tree()  # same data and splits, another seed
    tree.update(output_dir=str(tmp_path / "runs"), name="other")
    tree["train"].update(seed=7, epochs=10)
    tree["eval"]["robustness_rows"] = 0
    other = train(config_from_dict(tree), log=lambda m: None).path
    ens = tmp_path / "ensemble"
    build_ensemble([keyword_run, other], ens, log=lambda m: None)
    ex = Explainer(ens)
    assert len(ex.layers) == 2  # one embedding layer per member, interpolated together
    r = ex.explain("we saw the excellent cat")
    assert _completeness_holds(r)
    probs = Predictor(ens).predict(["we saw the excellent cat"])[0].scores
    assert r["score"] == pytest.approx(probs[r["target"]], abs=1e-4)  # f is the ensemble's averaged probability
