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

FILLER = "the a cat dog sat on mat today we saw one house car tree river blue green small big old".split()


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


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("kw")
    data = write_csv(tmp / "kw.csv", keyword_rows())
    # metric loss: the best checkpoint is the most fitted one (macro_f1 ties at 1.0 from an early epoch on)
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 25, "learning_rate": 3e-3, "batch_size": 16,
                                                       "metric": "loss"},
                     data={"split": {"validation": 0.1, "test": 0.1}})
    return train(cfg, log=lambda m: None).path


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


def test_the_keyword_gets_the_largest_attribution(explainer):
    for text in TEXTS:
        r = explainer.explain(text)
        top = max(r["words"], key=lambda w: w["attribution"])
        assert top["text"] in ("excellent", "awful"), (text, r["words"])


def test_deleting_top_attributed_words_lowers_the_probability_more_than_random(keyword_run, explainer):
    pred = Predictor(keyword_run)
    rng = random.Random(1)
    top_drops, random_drops = [], []
    for text, label in [r for r in keyword_rows(36, seed=7) if r[1] != "neu"]:
        r = explainer.explain(text)
        words = [w["text"] for w in r["words"]]
        top = int(np.argmax([w["attribution"] for w in r["words"]]))
        rand = rng.randrange(len(words))
        without = lambda k: " ".join(w for i, w in enumerate(words) if i != k)  # noqa: E731
        p0 = pred.predict([text])[0]["scores"][r["target"]]
        top_drops.append(p0 - pred.predict([without(top)])[0]["scores"][r["target"]])
        random_drops.append(p0 - pred.predict([without(rand)])[0]["scores"][r["target"]])
    assert np.mean(top_drops) > 2 * max(np.mean(random_drops), 1e-3)


def test_target_class_and_rendering(explainer):
    r = explainer.explain("we saw the excellent cat", target="neu")
    assert r["target"] == "neu"
    top = min(r["words"], key=lambda w: w["attribution"])
    assert top["text"] == "excellent"  # evidence against "neg"
    page = html_page(r)
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
