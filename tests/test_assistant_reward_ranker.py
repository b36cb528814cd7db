"""The assistant's reward ranker (``reward_run:``): a reward run scores every candidate reply (the FAQ answers shown,
a generated reply) for the message and the best one is the reply; a run that scores no responses is refused.

The planted rule: the reward run learned that a response saying "great" is the better one. The FAQ of these tests
has, for every intent, an entry tagged with it whose answer does not say "great" (the reply without a reward run,
since entries of the decided intent come first) and an untagged one whose answer does."""
from __future__ import annotations

import pytest
from assistant_helpers import INTENTS, assistant_tree, intent_run, known_texts, retrieval_run
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import run_config, write_csv
from generation_helpers import write_jsonl
from graftkit.apps.assistant import Assistant
from graftkit.apps.assistant.config import assistant_config_from_dict
from graftkit.apps.assistant.store import turns
from graftkit.errors import ConfigError
from graftkit.inference.retrieval.index import build_index
from graftkit.serve.apps import create_assistant_app
from graftkit.serve.settings import ServeConfig
from graftkit.train.trainer import train

PROMPTS = ["tell me about the city", "what is for dinner", "describe the river", "who won the game",
           "where is the station", "how is the weather"]
#: the planted rule: the chosen response always says "great"; the rejected one never does
REWARD_ROWS = [{"prompt": p, "chosen": f"it is great {w}", "rejected": f"it is {w}"}
               for p, w in zip(PROMPTS, ["today", "here", "now", "again", "there", "indeed"])]
#: words the reward run never saw, so the ranking rests on the rule, not on remembered answers
FAQ_WORDS = ["fun", "done", "fine", "open"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """(intent run, retrieval run with the 'planted' FAQ index, reward run)."""
    base = tmp_path_factory.getbasetemp() / "assistant"
    intent, retrieval = intent_run(base, tiny_model_dir), retrieval_run(base, tiny_model_dir)
    rows = [[f"{lab}-{k}", INTENTS[lab][0], f"it is {w}" if k == "own" else f"it is great {w}",
             lab if k == "own" else "general"]
            for lab, w in zip(INTENTS, FAQ_WORDS) for k in ("own", "general")]
    faq = write_csv(tmp_path_factory.mktemp("faq") / "planted.csv", rows, header=("id", "question", "answer", "intent"))
    build_index(retrieval, faq, text_column="question", name="planted")
    return intent, retrieval, _reward_run(tmp_path_factory.mktemp("reward"), tiny_model_dir)


def _reward_run(tmp, model_dir: str):
    path = write_jsonl(tmp / "prefs.jsonl", REWARD_ROWS * 4)
    data = {"text_column": "prompt", "text_pair_column": "response", "max_length": 32, "validation": str(path),
            "test": str(path), "split": {"validation": 0.0, "test": 0.0}}
    cfg = run_config(tmp, model_dir, path, data=data, task={"type": "reward"},
                     train={"epochs": 8, "learning_rate": 3e-3, "warmup": 0, "logging_steps": 50})
    return train(cfg, log=lambda m: None).path


def _bot(runs, tmp_path, **extra) -> Assistant:
    intent, retrieval, _ = runs
    extra = {"store": f"sqlite:///{tmp_path / 'a.db'}", **extra}
    tree = assistant_tree(intent, retrieval, index="planted", k=8, thresholds={"intent_confidence": 0.0}, **extra)
    return Assistant.from_config(assistant_config_from_dict(tree))


def test_the_reward_run_chooses_the_reply_it_scores_best(runs, tmp_path):
    ((text, intent),) = known_texts(runs[0], 1)
    plain = _bot(runs, tmp_path, store=f"sqlite:///{tmp_path / 'plain.db'}")
    before = plain.reply(text)
    plain.close()
    assert before["reward"] is None and before["answers"][0]["intent"] == intent
    assert before["reply"] == before["answers"][0]["answer"] and "great" not in before["reply"]

    bot = _bot(runs, tmp_path, reward_run=str(runs[2]))
    out = bot.reply(text)
    assert "great" in out["reply"]  # the planted rule changed the reply
    rewards = {a["answer"]: a["reward"] for a in out["answers"]}
    assert len(rewards) == 8 and out["reward"] == max(rewards.values()) == rewards[out["reply"]]
    assert min(r for a, r in rewards.items() if "great" in a) > max(r for a, r in rewards.items() if "great" not in a)
    assert [a["rank"] for a in out["answers"]] == list(range(1, 9))
    assert [a["reward"] for a in out["answers"]] == sorted(rewards.values(), reverse=True)
    # the score is the reward run's own predict output for (message, reply)
    assert out["reward"] == pytest.approx(bot.ranker.runner.predict([(text, out["reply"])])[0].reward, abs=1e-4)
    with bot.engine.connect() as conn:  # the stored turn names the FAQ entry the reply came from, and its reward
        stored = conn.execute(select(turns.c.faq_id, turns.c.reply, turns.c.reward)).one()
    assert stored.reply == out["reply"] and stored.faq_id == out["answers"][0]["id"]
    assert stored.faq_id.endswith("-general") and stored.reward == out["reward"]
    bot.close()
    plain = _bot(runs, tmp_path, store=f"sqlite:///{tmp_path / 'plain.db'}")
    assert [t["reward"] for t in plain.history(before["session_id"])] == [None]  # no reward run: NULL stored
    plain.close()


def test_a_generated_reply_is_one_candidate_among_the_faq_answers(runs, tmp_path):
    from graftkit.apps.assistant.config import GenerationSettings

    ((text, _),) = known_texts(runs[0], 1)
    bot = _bot(runs, tmp_path, reward_run=str(runs[2]))
    bot.cfg.generation = GenerationSettings(run="unused", prompt="{question}")
    for generated in ("it is great indeed", "it is indeed"):
        bot.generate = lambda prompt: generated
        out = bot.reply(text)
        best_faq = out["answers"][0]["answer"]
        own, faq = (p.reward for p in bot.ranker.runner.predict([(text, generated), (text, best_faq)]))
        assert len(out["answers"]) == 8 and "great" in out["reply"]
        assert out["reply"] == (generated if own > faq else best_faq)
        assert out["reward"] == pytest.approx(max(own, faq), abs=1e-4)
    assert out["reply"] != "it is indeed"  # without the rule's word the generated reply loses
    bot.close()


def test_a_run_that_scores_no_responses_is_refused_in_one_line(runs, tmp_path):
    with pytest.raises(ConfigError) as err:
        _bot(runs, tmp_path, reward_run=str(runs[0]))
    message = str(err.value)
    assert "reward_run" in message and "not a classification run" in message and "\n" not in message


def test_chat_over_http_passes_on_the_chosen_replys_reward(runs, tmp_path):
    """``/v1/chat`` answers the reward of the reply (documented in the OpenAPI schema); the history keeps it."""
    ((text, _),) = known_texts(runs[0], 1)
    tree = assistant_tree(runs[0], runs[1], f"sqlite:///{tmp_path / 'a.db'}", index="planted", k=8,
                          thresholds={"intent_confidence": 0.0}, reward_run=str(runs[2]))
    app = create_assistant_app(assistant_config_from_dict(tree), ServeConfig(allow_anonymous=True, log_level="warning"))
    with TestClient(app) as client:
        out = client.post("/v1/chat", json={"message": text}).json()
        scored = app.state.application.ranker.runner.predict([(text, out["reply"])])[0].reward
        assert "great" in out["reply"] and out["reward"] == pytest.approx(scored, abs=1e-4)
        assert out["reward"] == max(a["reward"] for a in out["answers"])
        history = client.get(f"/v1/chat/{out['session_id']}").json()["turns"]
        assert [t["reward"] for t in history] == [out["reward"]]
        field = client.get("/openapi.json").json()["components"]["schemas"]["ChatResponse"]["properties"]["reward"]
        assert "reward run" in field["description"] and {"type": "null"} in field["anyOf"]
