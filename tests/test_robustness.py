"""Robustness: seeded perturbations are reproducible, change what they say, and keep entity offsets right."""
from __future__ import annotations

import pytest

from graftkit.data.perturb import CHINESE, LATIN, PERTURBATIONS, map_spans, perturb, word_offsets

TEXT = "The refund, for order 1234, never arrived at my home in Boston!"


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_perturbations_are_seeded_and_reproducible(name):
    text = TEXT if name in LATIN else "我们今天去北京，天气很好。"
    runs = [perturb(text, name, seed=7, key=i, rate=0.3).text for i in range(5)]
    again = [perturb(text, name, seed=7, key=i, rate=0.3).text for i in range(5)]
    assert runs == again
    assert all(r != text for r in runs)  # every perturbation changes the text
    if name not in ("punctuation", "whitespace"):
        other_seed = [perturb(text, name, seed=8, key=i, rate=0.3).text for i in range(5)]
        assert other_seed != runs


def test_each_perturbation_does_what_its_name_says():
    assert perturb(TEXT, "punctuation", 0).text == "The refund for order 1234 never arrived at my home in Boston"
    assert perturb(TEXT, "whitespace", 0, rate=1.0).text.split() == TEXT.split()
    cased = perturb(TEXT, "case", 0, rate=1.0).text
    assert cased.lower() == TEXT.lower() and cased != TEXT
    dropped = perturb("abcdefgh", "typo_drop", 0).text
    assert len(dropped) == 7 and all(c in "abcdefgh" for c in dropped)
    swapped = perturb("abcdefgh", "typo_swap", 0).text
    assert sorted(swapped) == sorted("abcdefgh") and swapped != "abcdefgh"
    inserted = perturb("abcdefgh", "typo_insert", 0).text
    assert len(inserted) == 9
    keyed = perturb("aaaa", "typo_keyboard", 0).text
    assert sum(c != "a" for c in keyed) == 1 and all(c in "aqwszx" for c in keyed)
    zh = perturb("我们今天去北京", "zh_char_delete", 0).text
    assert len(zh) == 6
    zh2 = perturb("我们今天去北京", "zh_char_duplicate", 0).text
    assert len(zh2) == 8 and set(zh2) == set("我们今天去北京")
    assert set(CHINESE) <= set(PERTURBATIONS)


@pytest.mark.parametrize("name", ["typo_insert", "typo_drop", "whitespace", "punctuation", "zh_char_delete"])
def test_entity_offsets_follow_the_perturbed_text(name):
    text = "张三 lives in New York , works at 北京大学 ."
    words = word_offsets(text)
    spans = [[text.index(w), text.index(w) + len(w), t] for w, t in (("张三", "PER"), ("New York", "LOC"),
                                                                      ("北京大学", "ORG"))]
    p = perturb(text, name, seed=3, rate=0.5, words=words)
    moved = map_spans(spans, words, p)
    for start, end, label in moved:
        new = p.text[start:end]
        assert new == new.strip() and new, (name, new)
    # untouched words keep their text; each surviving entity's words are the perturbed original words
    for (s, e), (ns, ne) in zip(words, p.words):
        if ne > ns and name in ("whitespace",):
            assert p.text[ns:ne] == text[s:e]
    if name == "whitespace":
        # whitespace noise may land inside an entity; its words are all there, in order
        assert [" ".join(p.text[s:e].split()) for s, e, _ in moved][1] == "New York"
        assert ["".join(p.text[s:e].split()) for s, e, _ in moved] == ["张三", "NewYork", "北京大学"]
    if name == "typo_insert":
        assert len(moved) == 3 and all(len(p.text[s:e]) >= e0 - s0 for (s, e, _), (s0, e0, _) in zip(moved, spans))


# -- reports over trained runs -------------------------------------------------------------
@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory, tiny_model_dir):
    from conftest import run_config, write_csv
    from test_explain import keyword_rows
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("kw-robust")
    data = write_csv(tmp / "kw.csv", keyword_rows(120))
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 15, "learning_rate": 3e-3, "batch_size": 16,
                                                       "metric": "loss"})
    return train(cfg, log=lambda m: None).path


def test_classification_report_is_reproducible_per_seed(keyword_run):
    from test_explain import keyword_rows
    from graftkit.data.dataset import Example
    from graftkit.evaluate.robustness import robustness_report
    from graftkit.inference.predictor import Predictor

    pred = Predictor(keyword_run)
    rows = [Example(t, label=y, path="x.csv", line=i + 2) for i, (t, y) in enumerate(keyword_rows(45, seed=5))]
    names = ["typo_drop", "typo_swap", "case", "punctuation"]
    a = robustness_report(pred, rows, "accuracy", names, seed=1, rate=0.5)
    b = robustness_report(pred, rows, "accuracy", names, seed=1, rate=0.5)
    c = robustness_report(pred, rows, "accuracy", names, seed=2, rate=0.5)
    assert a == b
    assert a["perturbations"]["typo_drop"]["example"] != c["perturbations"]["typo_drop"]["example"]
    assert a["clean"] == 1.0
    # an uncased tokenizer cannot see case changes; the keyword model ignores punctuation
    assert a["perturbations"]["case"]["flip_rate"] == 0.0
    assert a["perturbations"]["case"]["metric"] == 1.0
    drop = a["perturbations"]["typo_drop"]
    # a dropped letter in the keyword word flips the prediction; the flip rate equals the accuracy lost here
    assert drop["flip_rate"] > 0 and drop["metric"] == pytest.approx(1.0 - drop["flip_rate"])


def test_ner_report_maps_gold_offsets(tmp_path, tiny_model_dir):
    from conftest import run_config
    from test_ner_train import SENTENCES, write_jsonl
    from graftkit.evaluate.robustness import robustness_report
    from graftkit.inference.predictor import Predictor
    from graftkit.tasks.ner.readers import read_ner
    from graftkit.train.trainer import train

    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     data={"validation": str(train_file), "test": str(train_file)},
                     train={"epochs": 40, "learning_rate": 5e-3})
    run = train(cfg, log=lambda m: None)
    pred = Predictor(run.path)
    examples, _ = read_ner(str(write_jsonl(tmp_path / "t.jsonl", SENTENCES)), cfg.data, cfg.task, True)
    rep = robustness_report(pred, examples, "f1", ["whitespace", "punctuation", "typo_insert"], seed=0, rate=0.3)
    assert rep["clean"] == 1.0
    # whitespace noise moves every offset; mapped gold spans keep the entity F1 at 1.0 with nothing flipped
    assert rep["perturbations"]["whitespace"]["metric"] == 1.0
    assert rep["perturbations"]["whitespace"]["flip_rate"] == 0.0
    assert 0.0 <= rep["perturbations"]["typo_insert"]["metric"] <= 1.0


def test_capped_report_samples_across_a_label_sorted_file():
    """A file sorted by label: the first 30 rows hold one class, a seeded sample of 30 holds all three."""
    from graftkit.data.dataset import Example
    from graftkit.evaluate.robustness import capped_sample

    rows = [Example(text=f"row {i}", label=lab) for lab in ("a", "b", "c") for i in range(50)]
    picked = capped_sample(rows, 30, seed=13)
    assert len(picked) == 30 and {e.label for e in picked} == {"a", "b", "c"}
    assert [rows.index(e) for e in picked] == sorted(rows.index(e) for e in picked)  # file order kept
    assert capped_sample(rows, 30, seed=13) == picked and capped_sample(rows, 30, seed=14) != picked
    assert capped_sample(rows, 0, seed=13) == rows and capped_sample(rows, 500, seed=13) == rows
