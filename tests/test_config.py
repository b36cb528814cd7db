"""Config validation: unknown keys, bad values and overrides produce errors that name the key."""
from __future__ import annotations

import pytest

from graftkit.config import parse_overrides
from graftkit.tasks.run_config import dump_config, load_config
from graftkit.errors import ConfigError


def _write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_minimal_config_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, "data: {train: x.csv}\n"))
    assert cfg.model.name_or_path == "bundled:minilm"
    assert cfg.task.type == "classification" and cfg.train.optimizer == "adamw"
    assert cfg.run_dir.as_posix() == "runs/run"


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "data: {train: x.csv}\ntrain: {epoch: 3}\n"))
    assert "train.epoch" in str(e.value) and "unknown key" in str(e.value)


def test_bad_value_is_named_with_input(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "data: {train: x.csv}\ntrain: {optimizer: adam}\n"))
    msg = str(e.value)
    assert "train.optimizer" in msg and "'adam'" in msg and "adamw" in msg


def test_missing_data_source(tmp_path):
    with pytest.raises(ConfigError, match="data.train"):
        load_config(_write(tmp_path, "data: {text_column: t}\n"))


def test_split_must_leave_training_rows(tmp_path):
    with pytest.raises(ConfigError, match="data.split"):
        load_config(_write(tmp_path, "data: {train: x.csv, split: {validation: 0.5, test: 0.5}}\n"))


def test_overrides_apply_and_are_typed(tmp_path):
    cfg = load_config(_write(tmp_path, "data: {train: x.csv}\n"),
                      ["train.epochs=2", "train.learning_rate=1e-4", "name=abc", "train.early_stopping=null"])
    assert cfg.train.epochs == 2 and cfg.train.learning_rate == 1e-4 and cfg.name == "abc"
    assert cfg.train.early_stopping is None
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["train.epochs"])
    with pytest.raises(ConfigError, match="train.nope"):
        load_config(_write(tmp_path, "data: {train: x.csv}\n"), ["train.nope=1"])


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "data: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_dump_round_trips(tmp_path):
    cfg = load_config(_write(tmp_path, "data: {train: x.csv}\ntrain: {epochs: 4}\n"))
    again = load_config(_write(tmp_path, dump_config(cfg)))
    assert again == cfg
