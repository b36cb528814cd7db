"""Config validation: unknown keys, bad values and overrides produce errors that name the key."""
from __future__ import annotations

from pathlib import Path

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
    assert cfg.run_dir == Path.cwd() / "runs" / "run"  # a default path: the current folder's


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


def test_dump_is_headed_by_the_format_version(tmp_path):
    from graftkit.modeling.run_format import FORMAT_VERSION

    text = dump_config(load_config(_write(tmp_path, "data: {train: x.csv}\n")))
    assert text.startswith(f"format_version: {FORMAT_VERSION}\n")


def test_an_old_config_file_with_ner_keys_under_data_still_loads_with_a_note(tmp_path, caplog):
    old = ("data: {train: x.conll, format: conll, tag_column: 2, scheme: IOB1, repair_tags: true}\n"
           "task: {type: ner, crf: true}\n")
    with caplog.at_level("WARNING", logger="graftkit.config"):
        cfg = load_config(_write(tmp_path, old), ["data.strip_segment_digit=true"])
    assert (cfg.task.tag_column, cfg.task.file_scheme, cfg.task.repair_tags, cfg.task.strip_segment_digit) \
        == (2, "IOB1", True, True)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 4 and all(n.startswith(str(tmp_path / "c.yaml")) and "\n" not in n for n in notes)
    assert any("data.scheme is task.file_scheme now" in n for n in notes)
    # the new place works without a note, and the moved keys are gone from data
    caplog.clear()
    with caplog.at_level("WARNING", logger="graftkit.config"):
        cfg = load_config(_write(tmp_path, "data: {train: x.conll}\ntask: {type: ner, file_scheme: BIOES}\n"))
    assert cfg.task.file_scheme == "BIOES" and not caplog.records
    with pytest.raises(ConfigError, match=r"task\.scheme: unknown key for task type 'ner'"):
        load_config(_write(tmp_path, "data: {train: x.conll}\ntask: {type: ner, scheme: BIOES}\n"))


def test_data_format_is_checked_against_the_registered_formats(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "data: {train: x.csv, format: xlsx}\n"))
    msg = str(e.value)
    assert "data.format" in msg and "'xlsx'" in msg
    for name in ("auto", "csv", "parquet", "hf_disk", "conll", "cluener", "mind"):
        assert name in msg
    assert load_config(_write(tmp_path, "data: {train: x.tsv, format: tsv}\n")).data.format == "tsv"


@pytest.mark.parametrize("fmt,owner,other", [("conll", "ner", "classification"), ("cluener", "ner", "regression"),
                                             ("mind", "ranking", "ner")])
def test_a_format_of_one_task_is_refused_for_another_in_one_line(tmp_path, fmt, owner, other):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, f"data: {{train: x, format: {fmt}}}\ntask: {{type: {other}}}\n"))
    msg = str(e.value)
    assert "\n" not in msg and f"'{fmt}' belongs to task type '{owner}', not '{other}'" in msg
    assert load_config(_write(tmp_path, f"data: {{train: x, format: {fmt}}}\ntask: {{type: {owner}}}\n")) \
        .data.format == fmt


def test_a_format_registered_later_is_accepted_for_its_task(tmp_path, monkeypatch):
    from graftkit.data.readers import READERS, DataFormat

    monkeypatch.setitem(READERS._items, "brat", DataFormat(None, "ner"))
    assert load_config(_write(tmp_path, "data: {train: x, format: brat}\ntask: {type: ner}\n")).data.format == "brat"
    with pytest.raises(ConfigError, match="'brat' belongs to task type 'ner'"):
        load_config(_write(tmp_path, "data: {train: x, format: brat}\n"))
