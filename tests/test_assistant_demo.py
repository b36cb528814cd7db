"""The shipped customer-service demo behaves: configs/customer-service-intent.yaml and -faq.yaml trained exactly
as shipped (only output_dir differs), the FAQ indexed as the README says, and configs/assistant.yaml with the
thresholds it ships. Obvious out-of-domain questions are handed off, a banking question is answered, a short
follow-up keeps the previous intent, and held-out questions are answered at the intent config's target.

Slow (bundled MiniLM, both runs trained once for the module): about a minute on two idle cores (54 s measured).
"""
from __future__ import annotations

import pytest
from conftest import REPO

from graftkit.apps.assistant import Assistant, load_assistant_config
from graftkit.apps.assistant.calibrate import evaluate, read_labelled
from graftkit.tasks.run_config import load_config

pytestmark = pytest.mark.slow
CONFIGS = REPO / "configs"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The assistant over the two shipped runs, trained into a temporary folder, with a fresh store."""
    from graftkit.inference.retrieval.index import build_index
    from graftkit.train.trainer import train

    base = tmp_path_factory.mktemp("demo")
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # as the README runs them (the configs' own paths are relative to their folder)
        for name in ("customer-service-intent", "customer-service-faq"):
            cfg = load_config(CONFIGS / f"{name}.yaml")
            cfg.output_dir = str(base / "runs")
            runs[name] = train(cfg, log=lambda m: None).path
        build_index(runs["customer-service-faq"], REPO / "examples" / "customer_service_faq.csv",
                    text_column="question", name="faq")
    cfg = load_assistant_config(CONFIGS / "assistant.yaml")
    cfg.intent_run, cfg.retrieval_run = str(runs["customer-service-intent"]), str(runs["customer-service-faq"])
    cfg.store = f"sqlite:///{base / 'assistant.db'}"
    bot = Assistant.from_config(cfg)
    yield bot
    bot.close()


def test_out_of_domain_questions_are_handed_off(demo):
    for question in ("what is the capital of france", "my package never arrived"):
        out = demo.reply(question)
        assert out["handoff"] and out["intent"] is None and out["answers"] == [], out
        assert out["decided_by"] in ("detector", "similarity") and out["reason"], out


def test_a_banking_question_then_its_follow_up(demo):
    from assistant_helpers import faq_answers

    first = demo.reply("i lost my card")
    assert not first["handoff"] and first["intent"] == "lost_card" and not first["followup"], first
    assert first["reply"] in faq_answers("lost_card")
    follow = demo.reply("and how long does that take?", first["session_id"])
    assert follow["followup"] and follow["intent"] == "lost_card" and not follow["handoff"], follow
    assert follow["closest_intent"] == "lost_card" and follow["answers"][0]["intent"] == "lost_card"


def test_held_out_questions_are_answered_at_the_target(demo):
    target = load_config(CONFIGS / "customer-service-intent.yaml").task.out_of_scope.target_in_scope_accuracy
    m = evaluate(demo, *read_labelled(REPO / "examples" / "customer_service_intents_test.csv", "text", "intent"))
    # the threshold is chosen for the target on validation; the test file's 32 in-scope questions are a fresh
    # sample, where one question is 3 points: two of slack keep a retrained run on another CPU from flipping it
    assert m["in_scope_accuracy"] >= target - 2 / 32, m
    assert m["oos_recall"] > 0.5, m  # and most of the test file's out-of-scope questions are handed off
