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
