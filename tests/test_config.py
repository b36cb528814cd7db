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


def test_key_of_another_task_is_refused_naming_key_and_task(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "data: {train: x.csv}\ntask: {type: classification, crf: true}\n"))
    msg = str(e.value)
    assert "task.crf" in msg and "unknown key" in msg and "task type 'classification'" in msg
    with pytest.raises(ConfigError, match=r"task\.loss: unknown key for task type 'ner'"):
        load_config(_write(tmp_path, "data: {train: x.csv}\ntask: {type: ner, loss: huber}\n"))
    # the same keys are fine for the task they belong to
    assert load_config(_write(tmp_path, "data: {train: x.csv}\ntask: {type: ner, crf: true}\n")).task.crf is True
    assert load_config(_write(tmp_path, "data: {train: x.csv}\ntask: {type: regression, loss: huber}\n")).task.loss \
        == "huber"


def test_unknown_task_type_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "data: {train: x.csv}\ntask: {type: clasification}\n"))
    msg = str(e.value)
    assert "task.type" in msg and "'clasification'" in msg
    for known in ("classification", "ner", "regression", "embedding"):
        assert known in msg


def test_max_length_beyond_the_models_positions_names_both_numbers(tmp_path, tiny_model_dir):
    from transformers import AutoConfig

    from graftkit.modeling.load import load_pretrained
    from graftkit.tasks import build_task
    from graftkit.tasks.capabilities import TrainsWithTrainer

    cfg = load_config(_write(tmp_path, f"data: {{train: x.csv, max_length: 4096}}\nmodel: {{name_or_path: '{tiny_model_dir}'}}\n"))
    limit = AutoConfig.from_pretrained(tiny_model_dir).max_position_embeddings
    task = build_task(cfg.task, cfg.data)
    task.labels = ["a", "b"]
    kwargs = task.capability(TrainsWithTrainer, "train").model_kwargs()
    with pytest.raises(ConfigError) as e:
        load_pretrained(cfg.model, task.model_class, kwargs, cfg.data.max_length)
    assert "data.max_length is 4096" in str(e.value) and f"max_position_embeddings {limit}" in str(e.value)
    load_pretrained(cfg.model, task.model_class, kwargs, limit)  # at the limit it loads
