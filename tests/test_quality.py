"""Data-quality report: planted duplicates, leakage, conflicts, truncation and short texts are found."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from graftkit.data.dataset import Example, Splits
from graftkit.data.quality import quality_report, warnings


#: the one right answer of a classification example, as a GoldLabels capability gives it
GOLD = lambda e: e.label  # noqa: E731


def _ex(text, label, path, line):
    return Example(text=text, label=label, path=path, line=line)


@pytest.fixture(scope="module")
def tokenizer(bundled_model_dir):
    return AutoTokenizer.from_pretrained(bundled_model_dir)


def _splits():
    train = [_ex(f"clean sentence number {i} about the weather", "a" if i % 2 else "b", "train.csv", i + 2)
             for i in range(20)]
    train += [_ex("the service was great", "pos", "train.csv", 30),
              _ex("the service was great", "pos", "train.csv", 31),      # exact duplicate
              _ex("The service, was GREAT!", "pos", "train.csv", 32),    # near-exact duplicate
              _ex("refund took forever", "neg", "train.csv", 33),
              _ex("Refund took forever.", "pos", "train.csv", 34),       # conflicting label
              _ex("ok", "pos", "train.csv", 35),                         # one token
              _ex(" ".join(["word"] * 60), "neg", "train.csv", 36)]      # truncated at max_length 32
    validation = [_ex("a totally new validation text", "a", "val.csv", 2)]
    test = [_ex("clean sentence number 3 about the weather", "a", "test.csv", 2),  # leaks from train.csv:5
            _ex("something only in test", "b", "test.csv", 3)]
    return Splits(train, validation, test)


def test_planted_problems_are_found(tokenizer):
    rep = quality_report(_splits(), tokenizer, max_length=32, gold_key=GOLD)
    assert rep["rows"] == {"train": 27, "validation": 1, "test": 2}
    within = rep["duplicates"]["within"]["train"]
    assert within["exact"] == 1 and within["near"] == 2  # line 32 and the refund pair (34 differs from 33)
    assert ["train.csv:30", "train.csv:31", "train.csv:32"] in within["examples"]
    leak = rep["duplicates"]["leakage"]
    assert leak["train/test"]["rows"] == 1
    assert leak["train/test"]["examples"] == [["train.csv:5", "test.csv:2"]]
    assert leak["train/validation"]["rows"] == 0 and leak["validation/test"]["rows"] == 0
    conflicts = rep["conflicts"]
    assert conflicts["texts"] == 1
    assert {x["where"] for x in conflicts["examples"][0]} == {"train.csv:33", "train.csv:34"}
    tok = rep["tokens"]["train"]
    assert tok["truncated"] == 1 and tok["truncated_examples"] == ["train.csv:36"]
    assert tok["short_examples"] == ["train.csv:35"]
    assert tok["percentiles"]["max"] == 62
    assert rep["balance"]["train"]["counts"]["pos"] == 5
    text = "\n".join(warnings(rep))
    for needle in ("leakage train/test", "conflicting labels", "truncated", "single token", "duplicate"):
        assert needle in text, needle


def test_clean_data_gives_no_warnings(tokenizer):
    train = [_ex(f"sentence {w} is here", "a" if i % 2 else "b", "t.csv", i) for i, w in
             enumerate(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])]
    rep = quality_report(Splits(train, [], [_ex("another text entirely", "a", "x.csv", 1)]), tokenizer, 32, GOLD)
    assert warnings(rep) == []
    assert set(rep["rows"]) == {"train", "test"}


def test_leakage_examples_name_the_two_splits_of_each_pair(tokenizer):
    shared = "the same sentence sits in every split"
    splits = Splits([_ex(shared, "a", "train.csv", 7), _ex("train only", "b", "train.csv", 8)],
                    [_ex(shared, "a", "val.csv", 3)], [_ex(shared, "a", "test.csv", 4)])
    leak = quality_report(splits, tokenizer, 32, GOLD)["duplicates"]["leakage"]
    assert leak["validation/test"]["examples"] == [["val.csv:3", "test.csv:4"]]
    assert leak["train/test"]["examples"] == [["train.csv:7", "test.csv:4"]]
    assert leak["train/validation"]["examples"] == [["train.csv:7", "val.csv:3"]]


def test_without_gold_labels_balance_and_conflicts_are_left_out(tokenizer):
    rep = quality_report(_splits(), tokenizer, 32)
    assert rep["balance"] == {} and rep["conflicts"]["texts"] == 0


def test_unknown_token_rate(tokenizer):
    train = [_ex("hello \u16a0\u16a1\u16a2 world", "a", "t.csv", 1), _ex("plain words here", "b", "t.csv", 2)]
    rep = quality_report(Splits(train, [], []), tokenizer, 32, GOLD)
    assert rep["tokens"]["train"]["unk_tokens"] >= 1
    assert any("[UNK]" in w for w in warnings(rep))
