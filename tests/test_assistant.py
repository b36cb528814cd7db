"""The assistant: the out-of-scope decision, follow-ups, sessions in the store, handoff reasons,
threshold calibration, the generation seam, and the CLI — on tiny trained intent + FAQ runs."""
from __future__ import annotations

import json

import pytest
import yaml
from assistant_helpers import (
    INTENTS,
    OUT_OF_SCOPE,
    assistant_tree,
    faq_answers,
    intent_run,
    known_texts,
    retrieval_run,
)
from typer.testing import CliRunner

from graftkit.apps.assistant import Assistant
from graftkit.apps.assistant.calibrate import calibrate, evaluate
from graftkit.apps.assistant.config import Thresholds, assistant_config_from_dict
from graftkit.apps.assistant.decide import decide
from graftkit.apps.assistant.pipeline import is_followup
from graftkit.errors import ConfigError


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.getbasetemp() / "assistant"
    return intent_run(base, tiny_model_dir), retrieval_run(base, tiny_model_dir)


def _bot(runs, tmp_path, **extra) -> Assistant:
    return Assistant.from_config(assistant_config_from_dict(assistant_tree(*runs, f"sqlite:///{tmp_path / 'a.db'}",
                                                                           **extra)))


def test_decide_combines_the_three_signals_in_order():
    th = Thresholds(intent_confidence=0.6, retrieval_similarity=0.4)
    assert decide("pin", 0.9, 0.8, th).answer
    assert "out of scope" in decide("oos", 0.99, 0.9, th, oos_label="oos").reason
    assert "confidence 0.50 is below 0.60" in decide("pin", 0.5, 0.9, th).reason
    assert "similar enough (0.30 < 0.40)" in decide("pin", 0.9, 0.3, th).reason
    assert decide("pin", 0.9, None, th).answer  # no retrieval configured: similarity is not a signal
    agent = decide("talk_to_agent", 0.9, 0.9, th, handoff_intents=["talk_to_agent"])
    assert not agent.answer and agent.intent == "talk_to_agent" and "always handed" in agent.reason


def test_followup_detection():
    assert is_followup("and how long does that take?", 8)
    assert is_followup("what about abroad", 8)
    assert not is_followup("how do i change the pin on my new debit card abroad", 8)
    assert not is_followup("reset my card pin", 8)


def test_in_scope_answer_new_sessions_and_followup(runs, tmp_path):
    ((text, label),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0})
    first = bot.reply(text)
    assert first["intent"] == label and not first["handoff"] and first["turn"] == 1, first
    assert first["answers"][0]["intent"] == label and first["reply"] in faq_answers(label)
    assert bot.reply(text)["session_id"] != first["session_id"]  # no id → a new session
    bot.cfg.thresholds = Thresholds(intent_confidence=1.0)  # the follow-up's own intent is unsure now
    follow = bot.reply("and how long does that take?", first["session_id"])
    assert follow["session_id"] == first["session_id"] and follow["turn"] == 2
    assert follow["followup"] and follow["intent"] == label and not follow["handoff"]
    history = bot.history(first["session_id"])
    assert [(t["turn"], t["intent"], t["followup"]) for t in history] == [(1, label, False), (2, label, True)]
    unknown = bot.reply(text, "no-such-session")
    assert unknown["session_id"] == "no-such-session" and unknown["turn"] == 1
    bot.close()


def test_out_of_scope_is_handed_off_with_the_reason_stored(runs, tmp_path):
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 1.0})
    out = bot.reply("what is the weather in paris")
    assert out["handoff"] and out["intent"] is None and out["answers"] == []
    assert "is below 1.00" in out["reason"]
    assert out["reply"] == bot.cfg.handoff_message
    (turn,) = bot.history(out["session_id"])
    assert turn["handoff"] and turn["reason"] == out["reason"]
    bot.close()
    with pytest.raises(ConfigError, match="oos_label 'oos' is not a label"):
        _bot(runs, tmp_path, oos_label="oos")


def test_calibration_meets_the_target_and_matches_evaluate(runs, tmp_path):
    bot = _bot(runs, tmp_path)
    texts = [t for ts in INTENTS.values() for t in ts] + OUT_OF_SCOPE
    labels = [lab for lab, ts in INTENTS.items() for _ in ts] + ["oos"] * len(OUT_OF_SCOPE)
    base = calibrate(bot, texts, labels, target_accuracy=0.0)["no_threshold"]
    assert base["oos_recall"] == 0.0  # no threshold, no trained OOS class: nothing handed off
    target = round(base["in_scope_accuracy"] * 0.8, 4)  # reachable whatever the tiny model learned
    res = calibrate(bot, texts, labels, target_accuracy=target)
    assert res["rows"] == 20 and res["out_of_scope_rows"] == 4
    assert res["target_reached"] and res["in_scope_accuracy"] >= target and res["oos_recall"] >= 0.0
    bot.cfg.thresholds = Thresholds(**res["thresholds"])
    again = evaluate(bot, texts, labels)
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "handoff_rate"):
        assert again[key] == res[key], key
    # the recall chosen is the best any grid point reaching the target has: raising the bar never helps
    stricter = calibrate(bot, texts, labels, target_accuracy=min(1.0, target + 0.1))
    assert not stricter["target_reached"] or stricter["oos_recall"] <= res["oos_recall"]
    bot.close()


def test_generated_reply_uses_the_retrieved_answers(runs, tmp_path):
    from graftkit.apps.assistant.config import GenerationSettings

    prompts = []
    ((text, _),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0})
    bot.cfg.generation = GenerationSettings(run="unused", prompt="Q: {question}\nFAQ:\n{context}")
    bot.generate = lambda prompt: prompts.append(prompt) or "generated reply"
    out = bot.reply(text)
    assert out["reply"] == "generated reply"
    assert prompts[0].startswith(f"Q: {text}") and out["answers"][0]["answer"] in prompts[0]
    bot.close()


def test_a_generation_run_named_in_the_config_writes_the_reply(runs, tmp_path):
    """The real seam: the configured causal_lm run generates with the config's max_new_tokens."""
    from conftest import run_config
    from generation_helpers import pair_rows, tiny_decoder, write_jsonl
    from graftkit.inference.generator import Generator
    from graftkit.train.trainer import train

    data = write_jsonl(tmp_path / "gen.jsonl", pair_rows() * 3)
    gen_cfg = run_config(tmp_path / "gen", tiny_decoder(tmp_path / "gpt2"), data, task={"type": "causal_lm"},
                         data={"split": {"validation": 0.0, "test": 0.0}}, train={"epochs": 1})
    gen_run = train(gen_cfg, log=lambda m: None).path
    ((text, _),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0},
               generation={"run": str(gen_run), "prompt": "Q: {question}", "max_new_tokens": 3})
    out = bot.reply(text)
    expected = Generator(gen_run).generate([f"Q: {text}"], max_new_tokens=3)[0].strip()
    assert expected and out["reply"] == expected
    assert len(Generator(gen_run).tokenizer(expected)["input_ids"]) <= 3
    bot.close()


def test_cli_chat_and_calibrate(runs, tmp_path):
    from graftkit.cli.apps import assistant_app
    from graftkit.cli.main import friendly

    cfg = tmp_path / "assistant.yaml"
    cfg.write_text(yaml.safe_dump(assistant_tree(*runs, f"sqlite:///{tmp_path / 'a.db'}")))
    cli = assistant_app(friendly)
    res = CliRunner().invoke(cli, ["chat", str(cfg), "i lost my card", "and how long does that take?"])
    assert res.exit_code == 0, res.output
    turns = [json.loads(line) for line in res.stdout.splitlines()]
    assert turns[0]["session_id"] == turns[1]["session_id"] and turns[1]["turn"] == 2
    val = tmp_path / "val.csv"
    rows = [(t, lab) for lab, ts in INTENTS.items() for t in ts] + [(t, "oos") for t in OUT_OF_SCOPE]
    val.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    res = CliRunner().invoke(cli, ["calibrate", str(cfg), "--validation", str(val), "--test", str(val),
                                   "--out", str(tmp_path / "tuned.yaml")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    tuned = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert tuned["thresholds"] == report["thresholds"]
    assert report["test"]["in_scope_accuracy"] == report["in_scope_accuracy"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nhello,x\n")
    res = CliRunner().invoke(cli, ["calibrate", str(cfg), "--validation", str(bad)])
    assert res.exit_code == 2 and "bad.csv, line 2, field 'label'" in res.output
