"""Slot error rate of data-to-text outputs (graftkit/data/slots.py) on hand-written outputs,
on the E2E references, and next to BLEU/ROUGE in the generation report."""
from __future__ import annotations

import csv
import json

import pytest

from graftkit.data import slots
from graftkit.data.dataset import Example
from graftkit.tasks.common.generation import metrics
from graftkit.tasks.predictions import GeneratedText

MR = ("name[The Eagle], eatType[coffee shop], food[French], priceRange[moderate], customer rating[3 out of 5], "
      "area[riverside], familyFriendly[yes], near[Burger King]")
GOOD = ("The Eagle is a kid friendly coffee shop serving French food at moderate prices, with an average customer "
        "rating. It is in the riverside area near Burger King.")


def _check(mr: str, text: str, known=()):
    return slots.check(slots.parse_mr(mr), text, known)


def test_an_mr_parses_into_its_slots_and_plain_text_does_not():
    assert slots.parse_mr(MR)[0] == ("name", "The Eagle") and len(slots.parse_mr(MR)) == 8
    assert slots.parse_mr("customer rating[3 out of 5]") == [("customer rating", "3 out of 5")]
    assert slots.parse_mr("tell me about The Eagle") is None and slots.parse_mr("a [b] c") is None
    assert slots.is_data_to_text([MR, "name[X], food[Chinese]"]) and not slots.is_data_to_text([MR, "hello"])


def test_a_correct_paraphrase_has_no_slot_error():
    assert _check(MR, GOOD).errors == 0
    cheap = "name[Aromi], priceRange[cheap], familyFriendly[yes]"
    assert _check(cheap, "Aromi is low-priced and children friendly.").errors == 0
    assert _check(cheap, "Aromi is an inexpensive place, welcoming to families.").errors == 0
    assert _check("name[Aromi], priceRange[less than £20]", "Aromi is cheap.").errors == 0  # an equivalent value


def test_a_missing_slot_a_wrong_value_and_an_added_slot_are_counted():
    missing = _check(MR, GOOD.replace(" It is in the riverside area", " It is"))
    assert (missing.missing, missing.wrong, missing.added) == (["area"], [], [])
    assert missing.ser == pytest.approx(1 / 8)
    wrong = _check(MR, GOOD.replace("kid friendly", "not kid friendly"))  # negation flips the value
    assert (wrong.missing, wrong.wrong, wrong.added) == ([], ["familyFriendly"], [])
    added = _check("name[Aromi], food[Chinese]", "Aromi serves Chinese food in the city centre.")
    assert added.added == ["area"] and added.ser == pytest.approx(1 / 2)
    name = _check("name[Aromi], near[Clare Hall]", "Aromi is near Burger King.", known={"Burger King"})
    assert name.wrong == ["near:Burger King"] and name.errors == 1


def test_names_are_masked_before_other_slots_are_matched():
    text = "Wildwood is a pub near Raja Indian Cuisine and Café Sicilia."
    assert _check("name[Wildwood], eatType[pub], near[Raja Indian Cuisine]", text, {"Café Sicilia"}).added == \
        ["name:Café Sicilia"]  # neither "Indian" food nor a "Café" coffee shop was added


def test_the_e2e_references_have_a_low_slot_error_rate(shared_data):
    with open(shared_data / "e2e_nlg_cleaned" / "test-fixed.csv", encoding="utf-8") as fh:
        rows = [r for _, r in zip(range(600), csv.DictReader(fh))]
    scores, per = slots.corpus_ser([r["mr"] for r in rows], [r["ref"] for r in rows])
    assert scores["ser"] < 5  # the cleaned references are (nearly) faithful; the patterns cover their wording
    shuffled, _ = slots.corpus_ser([r["mr"] for r in rows], [r["ref"] for r in rows[300:] + rows[:300]])
    assert shuffled["ser"] > 50  # references of other MRs are full of slot errors


def test_a_data_to_text_report_has_ser_next_to_bleu_and_rouge(tmp_path):
    other = "name[Aromi], food[Chinese]"
    examples = [Example(text=MR, label=GOOD, path="t.csv", line=2), Example(text=other, label="Aromi serves Chinese "
                "food.", path="t.csv", line=3)]
    preds = [GeneratedText(GOOD), GeneratedText("Aromi serves Chinese food in the city centre.")]
    result = metrics.report(examples, [e.text for e in examples], preds, tmp_path)
    assert {"bleu", "rougeL", "ser", "ser_added"} <= set(result)
    assert result["ser"] == pytest.approx(100 * 1 / 10) and result["ser_added"] == pytest.approx(10)
    rows = [json.loads(line) for line in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert rows[1]["slot_errors"] == {"missing": [], "wrong": [], "added": ["area"]}
    plain = metrics.report([Example(text="hi", label="hello", path="t", line=2)], ["hi"], [GeneratedText("hello")],
                           None)
    assert "ser" not in plain and "bleu" in plain


def test_a_planted_error_is_a_wrong_value_the_checker_finds():
    import random

    mr = slots.parse_mr(MR)
    rng = random.Random(0)
    planted = {slots.plant_error(mr, GOOD, {"The Eagle", "Burger King", "Aromi"}, rng) for _ in range(20)}
    assert len(planted) > 3  # different slots and values
    for text in planted:
        errors = _check(MR, text, {"Aromi"})
        assert errors.wrong and not errors.missing and len(text.split()) >= len(GOOD.split()) - 4
    for slot, values in slots.SURFACE.items():  # every planted wording reads as its own value
        assert all(value in slots.mentioned(slot, surface) for value, surface in values.items())
    assert slots.plant_error(slots.parse_mr("name[Aromi]"), "Aromi.", {"Aromi"}, rng) is None


def test_pairs_reject_the_runs_outputs_with_slot_errors(tmp_path):
    from typer.testing import CliRunner

    from conftest import run_config
    from generation_helpers import tiny_decoder, write_jsonl
    from graftkit.cli import app
    from graftkit.train.trainer import train

    rows = [{"prompt": MR, "completion": GOOD},
            {"prompt": "name[Aromi], food[Chinese]", "completion": "Aromi serves Chinese food."}]
    path = write_jsonl(tmp_path / "d2t.jsonl", rows * 2)
    base = tiny_decoder(tmp_path / "base", texts=[r["prompt"] + " " + r["completion"] for r in rows] * 4)
    cfg = run_config(tmp_path, base, path, data={"validation": str(path), "test": str(path), "max_length": 64},
                     task={"type": "causal_lm", "eval_samples": 0, "generation": {"max_new_tokens": 4}},
                     train={"max_steps": 1, "batch_size": 4, "warmup": 0})
    run = train(cfg, log=lambda m: None).path
    out = tmp_path / "pairs.jsonl"
    res = CliRunner().invoke(app, ["pairs", str(run), "--data", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(pairs) == 4 and all(p["chosen"] == r["completion"] for p, r in zip(pairs, rows * 2))
    for p in pairs:  # four random tokens realise no slot: the run's own output is the rejected one
        assert p["source"] == "model" and p["rejected_errors"]["missing"]
        assert slots.check(slots.parse_mr(p["prompt"]), p["rejected"]).errors > 0
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "hello", "completion": "hi"}])
    res = CliRunner().invoke(app, ["pairs", str(run), "--data", str(plain), "--out", str(out)])
    assert res.exit_code != 0 and "not meaning representations" in res.output
