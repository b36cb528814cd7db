"""Generation metrics: multi-reference grouping and scores checked against hand-computed values."""
from __future__ import annotations

import json

import pytest

from graftkit.data.dataset import Example
from graftkit.tasks.common.generation import metrics
from graftkit.tasks.predictions import GeneratedText


def _ex(inp, ref, line):
    return Example(text=inp, label=ref, path="test.csv", line=line)


def test_references_are_grouped_by_input():
    examples = [_ex("a", "x y", 2), _ex("b", "z", 3), _ex("a", "x w", 4), _ex("a", "x y", 5)]
    groups = metrics.group_references(examples, [e.text for e in examples])
    assert [(g.input, g.references, g.line) for g in groups] == [("a", ["x y", "x w"], 2), ("b", ["z"], 3)]


def test_multi_reference_scores_match_a_hand_computed_example():
    # input 1: hypothesis "the cat sat" vs refs "the cat sat on the mat" / "a cat sat"
    #   ROUGE-1 F vs ref 1: P = 3/3, R = 3/6 -> F = 2/3; vs ref 2: P = 2/3, R = 2/3 -> F = 2/3; best = 2/3
    #   ROUGE-2 F vs ref 1: bigrams "the cat", "cat sat" both in ref (5 bigrams): P = 1, R = 2/5 -> F = 4/7
    #            vs ref 2: "cat sat" only: P = 1/2, R = 1/2 -> F = 1/2; best = 4/7
    # input 2: hypothesis equals its second reference exactly: every score is 100, exact match 100
    hyps = ["the cat sat", "dogs bark loudly"]
    refs = [["the cat sat on the mat", "a cat sat"], ["cats meow", "dogs bark loudly"]]
    corpus, per = metrics.corpus_scores(hyps, refs)
    assert per[0]["rouge1"] == pytest.approx(100 * 2 / 3)
    assert per[0]["rouge2"] == pytest.approx(100 * 4 / 7)
    assert per[0]["exact_match"] == 0 and per[1]["exact_match"] == 100
    assert per[1]["rougeL"] == pytest.approx(100)
    assert corpus["rouge1"] == pytest.approx((100 * 2 / 3 + 100) / 2)
    assert corpus["exact_match"] == pytest.approx(50)
    assert (corpus["n_inputs"], corpus["n_references"]) == (2, 4)
    # BLEU (4-grams, so a 5-word sentence) with both references available is perfect there; with only the first it is not
    single, _ = metrics.corpus_scores(["dogs bark loudly at night"], [["cats meow"]])
    multi, _ = metrics.corpus_scores(["dogs bark loudly at night"], [["cats meow", "dogs bark loudly at night"]])
    assert multi["bleu"] == pytest.approx(100) and single["bleu"] < 1


def test_chinese_is_scored_over_characters():
    # 4 of the reference's 7 characters, in order: P = 1, R = 4/7 -> F = 8/11
    corpus, per = metrics.corpus_scores(["我爱北京"], [["我爱北京天安门"]])
    assert per[0]["rougeL"] == pytest.approx(100 * 8 / 11)
    assert corpus["bleu"] > 0  # sacrebleu's zh tokenizer: characters are tokens
    words, _ = metrics.corpus_scores(["我爱北京"], [["我爱北京天安门"]], tokenization="words")
    assert words["rougeL"] == 0  # why: rouge-score's default tokenizer drops every non-ASCII character
    assert metrics.use_chars([["这是中文文本 text"]]) and not metrics.use_chars([["plain english"]])


def test_report_writes_generations_and_the_worst_examples(tmp_path):
    examples = [_ex("a", "the cat sat", 2), _ex("a", "a cat sat", 3), _ex("b", "dogs bark", 4)]
    preds = [GeneratedText("the cat sat"), GeneratedText("the cat sat"), GeneratedText("birds sing")]
    result = metrics.report(examples, [e.text for e in examples], preds, tmp_path, worst=1)
    assert result["n"] == 3 and result["n_inputs"] == 2 and result["exact_match"] == pytest.approx(50)
    rows = [json.loads(line) for line in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert rows[0]["references"] == ["the cat sat", "a cat sat"] and rows[0]["scores"]["exact_match"] == 100
    worst = [json.loads(line) for line in (tmp_path / "worst.jsonl").read_text().splitlines()]
    assert [w["input"] for w in worst] == ["b"]
