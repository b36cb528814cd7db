"""Optuna search: a 3-trial search on a tiny model completes, resumes, writes results; bad spaces fail early."""
from __future__ import annotations

import csv

import pytest
import yaml

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.train.tune import tune

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]]

SPACE = {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
         "train.batch_size": {"type": "categorical", "choices": [4, 8]}}


def _cfg(tmp_path, tiny_model_dir, space=SPACE):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    return run_config(tmp_path, tiny_model_dir, train_file, name="search", tune={"trials": 3, "space": space},
                      data={"validation": str(train_file), "test": str(train_file)},
                      train={"epochs": 1, "save_total_limit": 1})


def test_search_completes_and_resumes(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir)
    logs = []
    first = tune(cfg, trials=2, log=logs.append)
    assert first["trials"] == 2
    second = tune(cfg, log=logs.append)  # tune.trials = 3: one more trial, same study
    assert any("resuming study" in m for m in logs)
    assert second["trials"] == 3 and second["states"]["complete"] + second["states"]["pruned"] == 3
    out = tmp_path / "runs" / "search-tune"
    rows = list(csv.DictReader(open(out / "results.csv", encoding="utf-8")))
    assert [r["trial"] for r in rows] == ["0", "1", "2"]
    assert {"train.learning_rate", "train.batch_size", "macro_f1"} <= set(rows[0])
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["train"]["learning_rate"] == pytest.approx(second["best_params"]["train.learning_rate"])
    assert "tune" not in best and best["name"] == "search-best"
    from graftkit.tasks.run_config import config_from_dict

    config_from_dict(best)  # the best config is a valid run config


def test_bad_search_space_fails_before_training(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="empty"):
        tune(_cfg(tmp_path, tiny_model_dir, space={}))
    with pytest.raises(ConfigError, match="learning_rat"):
        tune(_cfg(tmp_path, tiny_model_dir, space={"train.learning_rat": {"type": "float", "low": 1e-4, "high": 1e-3}}))
    with pytest.raises(ConfigError, match="batch_size"):
        tune(_cfg(tmp_path, tiny_model_dir, space={"train.batch_size": {"type": "int", "low": 0, "high": 8}}))
    assert not (tmp_path / "runs" / "search-tune" / "trials").exists()


def test_a_config_without_tune_points_to_a_file_that_exists(tmp_path, tiny_model_dir):
    from pathlib import Path

    cfg = _cfg(tmp_path, tiny_model_dir, space={}).model_copy(update={"tune": None})
    with pytest.raises(ConfigError, match=r"configs/tune-sentiment\.yaml") as err:
        tune(cfg)
    named = str(err.value).split("(")[1].split(" ")[0]
    assert (Path(__file__).resolve().parents[1] / named).is_file()


def test_cli_commands_report_bad_input(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from graftkit.cli import app

    cfg = _cfg(tmp_path, tiny_model_dir, space={})
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    res = CliRunner().invoke(app, ["tune", str(path), "--trials", "3"])
    assert res.exit_code == 2 and "tune.space is empty" in res.output
    res = CliRunner().invoke(app, ["merge", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(app, ["ensemble", str(tmp_path / "a"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "at least two" in res.output


def test_a_metric_typo_ends_the_search_at_the_first_trial(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir)
    cfg = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"metric": "macro_f"})})
    with pytest.raises(ConfigError, match="tune.metric: validation metrics have no 'macro_f'.*macro_f1"):
        tune(cfg)
    trials = tmp_path / "runs" / "search-tune" / "trials"
    names = [p.name for p in trials.iterdir()]
    assert any("trial-000" in n for n in names) and not any("trial-001" in n for n in names), names  # one trial
