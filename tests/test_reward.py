"""task.type reward: Bradley–Terry training on graftkit's Trainer learns a planted preference, predicts a score
per (prompt, response), reloads the same, and refuses bad rows by file, line and field."""
from __future__ import annotations

import json

import pytest

from conftest import run_config
from generation_helpers import tiny_decoder, write_jsonl
from graftkit.errors import ConfigError, DataError
from graftkit.inference.runs import open_run
from graftkit.train.trainer import train

PROMPTS = ["tell me about the city", "what is for dinner", "describe the river", "who won the game",
           "where is the station", "how is the weather"]
#: the planted rule: the chosen response always says "great"; the rejected one never does
ROWS = [{"prompt": p, "chosen": f"it is great {w}", "rejected": f"it is {w}"}
        for p, w in zip(PROMPTS, ["today", "here", "now", "again", "there", "indeed"])]
DATA = {"text_column": "prompt", "text_pair_column": "response", "max_length": 32,
        "split": {"validation": 0.0, "test": 0.0}}


def _cfg(tmp_path, model, rows=ROWS, **sections):
    path = write_jsonl(tmp_path / "prefs.jsonl", rows * 4)
    data = {**DATA, "train": str(path), "validation": str(path), "test": str(write_jsonl(tmp_path / "t.jsonl", rows))}
    return run_config(tmp_path, model, path, data=data, task={"type": "reward"},
                      train={"epochs": 8, "learning_rate": 3e-3, "warmup": 0, "logging_steps": 50}, **sections)


@pytest.mark.parametrize("base", ["bert", "gpt2"])
def test_a_reward_model_learns_a_planted_preference_and_scores_pairs(tmp_path, tiny_model_dir, base):
    model = tiny_model_dir if base == "bert" else tiny_decoder(tmp_path / "gpt2", texts=[
        f"{r['prompt']} {r['chosen']}" for r in ROWS] * 4)
    run = train(_cfg(tmp_path, model), log=lambda m: None).path
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == 1.0 and metrics["test"]["margin"] > 0
    assert metrics["validation"]["accuracy"] == 1.0
    evals = [h for h in json.loads((run / "trainer_state.json").read_text())["log_history"] if "eval_accuracy" in h] \
        if (run / "trainer_state.json").is_file() else []
    assert all(0 <= h["eval_accuracy"] <= 1 for h in evals)
    runner = open_run(run)
    unseen = [("tell me about the park", "it is great fun"), ("tell me about the park", "it is fun")]
    good, bad = runner.predict(unseen)
    assert good.reward > bad.reward and good.rejected_reward is None
    again = open_run(run).predict(unseen[:1])  # reloaded: the same score, batch or single
    assert again[0].reward == pytest.approx(good.reward, abs=1e-5)


def test_bad_preference_rows_are_refused_by_file_line_and_field(tmp_path, tiny_model_dir):
    same = ROWS[:3] + [{"prompt": "a", "chosen": "same answer", "rejected": "same answer "}]
    with pytest.raises(DataError) as err:
        train(_cfg(tmp_path, tiny_model_dir, same), log=lambda m: None)
    assert "identical" in str(err.value) and "prefs.jsonl, line 4" in str(err.value) and "rejected" in str(err.value)
    empty = ROWS[:2] + [{"prompt": "a", "chosen": " ", "rejected": "b"}]
    with pytest.raises(DataError) as err:
        train(_cfg(tmp_path, tiny_model_dir, empty), log=lambda m: None)
    assert "empty" in str(err.value) and "prefs.jsonl, line 3" in str(err.value) and "chosen" in str(err.value)
    cfg = _cfg(tmp_path, tiny_model_dir).model_dump()
    cfg["data"]["text_pair_column"] = None
    from graftkit.tasks.run_config import config_from_dict

    with pytest.raises(ConfigError, match="data.text_pair_column"):
        train(config_from_dict(cfg), log=lambda m: None)
