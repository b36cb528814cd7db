"""train.strategy zero_shot: an ordinary classification run from label descriptions alone, honest in its card."""
from __future__ import annotations

import json

import pytest

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.inference.runs import open_run
from graftkit.train.trainer import train

DESCRIPTIONS = [["sports, games, teams, players and matches", "sports"],
                ["a match, a goal, a race or a tournament", "sports"],
                ["the weather: rain, sun, storms and temperature", "weather"],
                ["food, cooking, recipes and restaurants", "food"]]
TEST = [["the striker scored twice in the final", "sports"], ["our team lost the match yesterday", "sports"],
        ["the coach praised the players", "sports"], ["heavy rain is expected tomorrow", "weather"],
        ["a storm hit the coast last night", "weather"], ["it will be sunny and warm", "weather"],
        ["this pasta recipe needs garlic", "food"], ["the new restaurant serves great soup", "food"],
        ["bake the bread for twenty minutes", "food"]]


def _config(tmp_path, model, **sections):
    sections.setdefault("train", {})
    sections["train"] = {"strategy": "zero_shot", **sections["train"]}
    cfg = run_config(tmp_path, model, write_csv(tmp_path / "labels.csv", DESCRIPTIONS),
                     data={"test": str(write_csv(tmp_path / "test.csv", TEST)), "validation": None}, **sections)
    # run_config's training defaults (epochs, batch size, ...) are not zero-shot settings: back to the defaults
    return cfg.model_copy(update={"train": type(cfg.train)(strategy="zero_shot")})


@pytest.mark.slow
def test_zero_shot_run_from_label_descriptions(tmp_path, bundled_model_dir):
    lines: list[str] = []
    run = train(_config(tmp_path, bundled_model_dir), log=lines.append).path
    assert "strategy: zero_shot (train.strategy: zero_shot)" in lines
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.8 and metrics["strategy"]["trained"] is False
    predictions = open_run(run).predict(["the goalkeeper saved a penalty", "snow is falling on the hills"])
    assert [p.label for p in predictions] == ["sports", "weather"]
    card = (run / "README.md").read_text()
    assert "built without training (zero-shot: no labelled examples)" in card and "**zero_shot**" in card
    assert "## Hyper-parameters" not in card and "(4 label descriptions)" in card


def test_zero_shot_refuses_what_it_cannot_apply(tmp_path, tiny_model_dir):
    cfg = _config(tmp_path, tiny_model_dir)
    with pytest.raises(ConfigError, match=r"^train.epochs: classification runs \(trained by nothing"):
        train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 5})}))
    multi = cfg.model_copy(update={"task": cfg.task.model_copy(update={"multi_label": True})})
    with pytest.raises(ConfigError, match="zero_shot: multi-label needs a decision threshold"):
        train(multi, log=lambda m: None)
    assert not (tmp_path / "runs").exists()  # refused before anything was written
