"""The assistant: the out-of-scope decision (the intent run's detector; the confidence for a run without one),
follow-ups, sessions in the store, handoff reasons, threshold calibration, the generation seam, and the CLI —
on tiny trained intent + FAQ runs."""
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
from graftkit.apps.assistant.pipeline import Analysis, is_followup, reads_as_followup
from graftkit.errors import ConfigError
from graftkit.inference.scope import ScopeRule


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.getbasetemp() / "assistant"
    return intent_run(base, tiny_model_dir), retrieval_run(base, tiny_model_dir)


@pytest.fixture(scope="module")
def oos_runs(tmp_path_factory, tiny_model_dir, runs):
    """The intent run with an out-of-scope detector, and the same FAQ run."""
    return intent_run(tmp_path_factory.getbasetemp() / "assistant", tiny_model_dir, detector=True), runs[1]


def _bot(runs, tmp_path, **extra) -> Assistant:
    return Assistant.from_config(assistant_config_from_dict(assistant_tree(*runs, f"sqlite:///{tmp_path / 'a.db'}",
                                                                           **extra)))


def test_decide_combines_the_signals_in_order():
    conf = ScopeRule(None, 0.6)
    assert decide("pin", 0.9, None, 0.8, conf, 0.4).answer
    assert decide("pin", 0.9, None, 0.8, conf, 0.4).decided_by == "confidence"
    oos_class = decide("oos", 0.99, None, 0.9, conf, 0.4, oos_label="oos")
    assert "out of scope" in oos_class.reason and oos_class.decided_by == "out_of_scope_class"
    assert "confidence 0.50 is below 0.60" in decide("pin", 0.5, None, 0.9, conf, 0.4).reason
    low_sim = decide("pin", 0.9, None, 0.3, conf, 0.4)
    assert "similar enough (0.30 < 0.40)" in low_sim.reason and low_sim.decided_by == "similarity"
    assert decide("pin", 0.9, None, None, conf, 0.4).answer  # no retrieval configured: similarity is not a signal
    agent = decide("talk_to_agent", 0.9, None, 0.9, conf, 0.4, handoff_intents=["talk_to_agent"])
    assert not agent.answer and agent.intent == "talk_to_agent" and "always handed" in agent.reason
    # with a detector its score decides, whatever the confidence
    det = ScopeRule("energy", 2.0)
    off = decide("pin", 0.99, 3.25, 0.9, det)
    assert not off.answer and off.intent is None and off.decided_by == "detector" and off.out_of_scope_score == 3.25
    assert off.reason == "the question fits none of the intents (energy score 3.25 > threshold 2.00)"
    kept = decide("pin", 0.2, 1.5, 0.9, det)
    assert kept.answer and kept.intent == "pin" and kept.decided_by == "detector"


def _analysis(intent: str, confidence: float) -> Analysis:
    return Analysis(intent, confidence, None, None, [])


def test_followup_detection():
    assert is_followup("and how long does that take?", 8)
    assert is_followup("what about abroad", 8)
    assert not is_followup("how do i change the pin on my new debit card abroad", 8)
    assert not is_followup("reset my card pin", 8)
    # read after the previous message, the previous intent must win, and more surely than the message's own
    assert reads_as_followup(_analysis("transfer_pending", 0.66), _analysis("lost_card", 0.8), "lost_card")
    assert not reads_as_followup(_analysis("transfer_pending", 0.66), _analysis("lost_card", 0.6), "lost_card")
    assert not reads_as_followup(_analysis("change_pin", 0.5), _analysis("change_pin", 0.9), "lost_card")


def test_in_scope_answer_new_sessions_and_followup(runs, tmp_path):
    ((text, label),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0})
    first = bot.reply(text)
    assert first["intent"] == label and not first["handoff"] and first["turn"] == 1, first
    assert first["decided_by"] == "confidence" and first["out_of_scope_score"] is None
    assert first["answers"][0]["intent"] == label and first["reply"] in faq_answers(label)
    assert bot.reply(text)["session_id"] != first["session_id"]  # no id → a new session
    # planted readings: alone the follow-up is another intent, read after the first message it is `label`
    real = bot.analyze
    seen = []

    def planted(messages):
        seen.append(list(messages))
        return [_analysis("other", 0.4) if m.startswith("and ") else
                Analysis(label, 0.7, None, 0.5, real([m])[0].hits) for m in messages]

    bot.analyze = planted
    bot.cfg.thresholds = Thresholds(intent_confidence=0.6)  # alone the follow-up is unsure: it would be handed off
    follow = bot.reply("and how long does that take?", first["session_id"])
    assert seen[-1] == ["and how long does that take?", f"{text} and how long does that take?"]
    assert follow["session_id"] == first["session_id"] and follow["turn"] == 2
    assert follow["followup"] and follow["intent"] == label and not follow["handoff"], follow
    again = bot.reply("and what about that?", first["session_id"])  # a chain reads after the first question
    assert again["followup"] and seen[-1][1] == f"{text} and what about that?"
    history = bot.history(first["session_id"])
    assert [(t["turn"], t["intent"], t["followup"]) for t in history] == \
        [(1, label, False), (2, label, True), (3, label, True)]
    unknown = bot.reply(text, "no-such-session")
    assert unknown["session_id"] == "no-such-session" and unknown["turn"] == 1
    bot.close()


def test_an_out_of_scope_turn_ends_the_context(runs, tmp_path):
    ((text, label),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0})
    first = bot.reply(text)
    bot.analyze = lambda messages: [_analysis("other", 0.1) if m == "what is the weather" else
                                    _analysis(label, 0.9) for m in messages]
    bot.cfg.thresholds = Thresholds(intent_confidence=0.5)
    assert bot.reply("what is the weather", first["session_id"])["handoff"]
    after = bot.reply("and how long does that take?", first["session_id"])
    assert not after["followup"]  # nothing to follow: the previous question was handed off
    bot.close()


def test_out_of_scope_is_handed_off_with_the_reason_stored(runs, tmp_path):
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 1.0})
    out = bot.reply("what is the weather in paris")
    assert out["handoff"] and out["intent"] is None and out["answers"] == []
    assert "is below 1.00" in out["reason"] and out["decided_by"] == "confidence"
    assert out["reply"] == bot.cfg.handoff_message
    (turn,) = bot.history(out["session_id"])
    assert turn["handoff"] and turn["reason"] == out["reason"]
    bot.close()
    with pytest.raises(ConfigError, match="oos_label 'oos' is not a label"):
        _bot(runs, tmp_path, oos_label="oos")
    with pytest.raises(ConfigError, match="thresholds.out_of_scope_score: intent run .* has no out-of-scope detector"):
        _bot(runs, tmp_path, thresholds={"out_of_scope_score": 1.0})


def test_the_runs_detector_decides_and_its_threshold_can_move(oos_runs, tmp_path):
    with pytest.raises(ConfigError, match="thresholds.intent_confidence: intent run .* decides by its out-of-scope"):
        _bot(oos_runs, tmp_path)  # assistant_tree sets intent_confidence, which a run with a detector cannot use
    bot = _bot(oos_runs, tmp_path, thresholds={})
    detector, own = bot.intent.detector.chosen
    texts = [t for ts in INTENTS.values() for t in ts] + OUT_OF_SCOPE
    scores = [a.out_of_scope_score for a in bot.analyze(texts)]
    for text, score, out in zip(texts, scores, (bot.reply(t) for t in texts)):
        assert out["handoff"] == (score > own) and out["decided_by"] == "detector", (text, score, out)
        assert out["out_of_scope_score"] == pytest.approx(score, abs=1e-4)
        if out["handoff"]:
            assert out["reason"].startswith(f"the question fits none of the intents ({detector} score ")
        else:
            assert out["intent"] == out["closest_intent"]
    bot.cfg.thresholds = Thresholds(out_of_scope_score=max(scores) + 1)  # nothing is over it: all answered
    assert not any(bot.reply(t)["handoff"] for t in texts)
    bot.cfg.thresholds = Thresholds(out_of_scope_score=min(scores) - 1)  # everything is over it: all handed off
    assert all(bot.reply(t)["handoff"] for t in texts)
    bot.close()


def _labelled():
    texts = [t for ts in INTENTS.values() for t in ts] + OUT_OF_SCOPE
    labels = [lab for lab, ts in INTENTS.items() for _ in ts] + ["oos"] * len(OUT_OF_SCOPE)
    return texts, labels


def _check_calibration(bot, texts, labels, target, keys):
    res = calibrate(bot, texts, labels, target_accuracy=target)
    assert res["rows"] == 20 and res["out_of_scope_rows"] == 4 and set(res["thresholds"]) == keys
    assert res["target_reached"] and res["in_scope_accuracy"] >= target
    assert res["oos_recall"] >= res["before"]["oos_recall"] or res["before"]["in_scope_accuracy"] < target
    bot.cfg.thresholds = Thresholds(**res["thresholds"])
    again = evaluate(bot, texts, labels)
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "handoff_rate"):
        assert again[key] == res[key], key
    # the recall chosen is the best any grid point reaching the target has: raising the bar never helps
    stricter = calibrate(bot, texts, labels, target_accuracy=min(1.0, target + 0.1))
    assert not stricter["target_reached"] or stricter["oos_recall"] <= res["oos_recall"]
    return res


def test_calibration_meets_the_target_and_matches_evaluate(runs, tmp_path):
    bot = _bot(runs, tmp_path, thresholds={"intent_confidence": 0.0})
    texts, labels = _labelled()
    base = evaluate(bot, texts, labels)
    assert base["oos_recall"] == 0.0 and base["decided_by"] == "confidence"  # no threshold, no OOS class
    target = round(base["in_scope_accuracy"] * 0.8, 4)  # reachable whatever the tiny model learned
    res = _check_calibration(bot, texts, labels, target, {"out_of_scope_score", "intent_confidence",
                                                          "retrieval_similarity"})
    assert res["thresholds"]["out_of_scope_score"] is None and res["before"]["oos_recall"] == 0.0
    bot.close()


def test_calibration_of_the_detector_threshold(oos_runs, tmp_path):
    bot = _bot(oos_runs, tmp_path, thresholds={})
    texts, labels = _labelled()
    bot.cfg.thresholds = Thresholds(out_of_scope_score=1e9)  # nothing handed off: the most accurate the run can be
    target = round(evaluate(bot, texts, labels)["in_scope_accuracy"] * 0.8, 4)
    bot.cfg.thresholds = Thresholds()
    res = _check_calibration(bot, texts, labels, target, {"out_of_scope_score", "intent_confidence",
                                                          "retrieval_similarity"})
    assert res["decided_by"] == "detector" and res["detector"] == bot.intent.detector.chosen[0]
    assert res["thresholds"]["intent_confidence"] is None
    assert res["before"]["thresholds"]["out_of_scope_score"] is None  # before: the run's own threshold
    assert res["run_default"] == {k: res["before"][k] for k in res["run_default"]}
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


def test_cli_chat_and_calibrate(oos_runs, tmp_path):
    from graftkit.cli.apps import assistant_app
    from graftkit.cli.main import friendly

    cfg = tmp_path / "assistant.yaml"
    cfg.write_text(yaml.safe_dump(assistant_tree(*oos_runs, f"sqlite:///{tmp_path / 'a.db'}", thresholds={})))
    cli = assistant_app(friendly)
    res = CliRunner().invoke(cli, ["chat", str(cfg), "i lost my card", "and how long does that take?"])
    assert res.exit_code == 0, res.output
    turns = [json.loads(line) for line in res.stdout.splitlines()]
    assert turns[0]["session_id"] == turns[1]["session_id"] and turns[1]["turn"] == 2
    assert all(t["decided_by"] == "detector" and t["out_of_scope_score"] is not None for t in turns)
    val = tmp_path / "val.csv"
    rows = [(t, lab) for lab, ts in INTENTS.items() for t in ts] + [(t, "oos") for t in OUT_OF_SCOPE]
    val.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    res = CliRunner().invoke(cli, ["calibrate", str(cfg), "--validation", str(val), "--test", str(val),
                                   "--target-accuracy", "0.0", "--out", str(tmp_path / "tuned.yaml")])
    assert res.exit_code == 0, res.output
    assert "validation before: in-scope accuracy" in res.stderr and "validation after:" in res.stderr
    report = json.loads(res.stdout)
    tuned = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert tuned["thresholds"] == report["thresholds"]
    assert report["test"]["in_scope_accuracy"] == report["in_scope_accuracy"]
    assert report["test"]["before"]["oos_recall"] == report["before"]["oos_recall"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,intent\nhello,x\n")
    res = CliRunner().invoke(cli, ["calibrate", str(cfg), "--validation", str(bad)])
    assert res.exit_code == 2 and "bad.csv, line 2, field 'label'" in res.output
    cfg.write_text(yaml.safe_dump(assistant_tree(*oos_runs, f"sqlite:///{tmp_path / 'a.db'}")))
    res = CliRunner().invoke(cli, ["chat", str(cfg), "hello"])
    assert res.exit_code == 2 and "thresholds.intent_confidence" in res.output and "Traceback" not in res.output
