"""Settings are honoured or refused by name (graftkit/train/keys.py): which keys a config sets, that every key of
the training sections is declared by a component or step of the Trainer path, and that the sentence-transformers
path refuses what it does not apply in one line, before any work, and honours what it declares."""
from __future__ import annotations

import json
import typing

import pytest
import torch
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from conftest import run_config, write_csv
from graftkit.cli import app
from graftkit.errors import ConfigError, UnsupportedError
from graftkit.tasks import build_task
from graftkit.tasks.common.bi_encoder import SUPPORTED_KEYS
from graftkit.tasks.run_config import RunConfig, config_from_dict
from graftkit.train.keys import SECTIONS, covers, set_keys
from graftkit.train.pretrain import PRETRAIN_KEYS
from graftkit.train.trainer import check_settings, path_keys, train

PAIRS = [["where is my card", "card delivery status"], ["cancel my order", "how to cancel an order"],
         ["reset my pin", "change or reset the pin"], ["top up by card", "adding money with a card"]]


def _section_model(annotation) -> type[BaseModel] | None:
    """The settings model a field holds (``X``, ``X | None``), or None for a plain value."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _leaves(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        inner = _section_model(field.annotation)
        out += _leaves(inner, f"{prefix}.{name}") if inner else [f"{prefix}.{name}"]
    return out


def config_leaves() -> list[str]:
    """Every leaf key of the training sections (TrainConfig, ModelConfig, PeftSettings, AugmentConfig,
    PretrainConfig and the models inside them), read from the settings models themselves."""
    return [leaf for s in SECTIONS for leaf in _leaves(_section_model(RunConfig.model_fields[s].annotation), s)]


def _cfg(task: dict, **sections) -> RunConfig:
    return config_from_dict({"data": {"train": "unused.csv"}, "task": task, **sections})


def test_set_keys_are_values_off_their_defaults_and_present_optional_sections():
    assert set_keys(_cfg({"type": "classification"})) == []
    spelled_out = _cfg({"type": "embedding"}).model_dump(mode="json")  # a saved run config spells out defaults
    assert set_keys(config_from_dict(spelled_out)) == []
    cfg = _cfg({"type": "classification"}, model={"dropout": 0.2, "extend_vocab": "auto"},
               train={"early_stopping": None, "freeze": {"layers": 1}, "distill": {"teacher": "t"}},
               peft={"method": "lora"}, augment={"copies": 2})
    assert set_keys(cfg) == ["model.dropout", "model.extend_vocab.source", "train.early_stopping",
                             "train.freeze.layers", "train.distill", "train.distill.teacher", "peft", "augment",
                             "augment.copies"]
    assert covers("train.distill.teacher", "train.distill") and covers("train.distributed", "train.distributed.backend")
    assert not covers("train.distill.teacher", "train.distributed")


def test_every_training_key_is_declared_by_the_trainer_path():
    """Fails when a field is added to TrainConfig, ModelConfig, PeftSettings, AugmentConfig or PretrainConfig (or
    a model inside them) without a component or step of the Trainer path declaring it: no key is silently ignored
    on the main path."""
    declared = set(path_keys(build_task(_cfg({"type": "classification"}).task))[0]) | set(PRETRAIN_KEYS)
    leaves = config_leaves()
    assert [leaf for leaf in leaves if leaf not in declared] == []
    assert sorted(k for k in declared if k not in leaves) == []  # and nothing declared that does not exist
    assert {"train.threads", "train.distill.teacher", "augment.copies", "peft.r", "pretrain.texts"} <= set(leaves)


def test_the_sentence_transformers_path_declares_real_keys_only():
    leaves = config_leaves()
    assert all(any(covers(key, leaf) for leaf in leaves) for key in SUPPORTED_KEYS)
    assert "train.threads" in SUPPORTED_KEYS and "train.rdrop" not in SUPPORTED_KEYS


@pytest.mark.parametrize("section, key", [({"train": {"rdrop": 1.0}}, "train.rdrop"),
                                          ({"model": {"dropout": 0.3}}, "model.dropout"),
                                          ({"model": {"keep_layers": [0]}}, "model.keep_layers"),
                                          ({"train": {"max_tokens_per_batch": 64}}, "train.max_tokens_per_batch"),
                                          ({"train": {"cache_datasets": True}}, "train.cache_datasets"),
                                          ({"model": {"extend_vocab": "auto"}}, "model.extend_vocab.source")])
def test_embedding_refuses_what_sentence_transformers_does_not_apply(section, key):
    with pytest.raises(ConfigError) as err:
        check_settings(_cfg({"type": "embedding"}, **section))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{key}: embedding runs (trained by sentence-transformers) do not apply it; remove it")
    assert "their training honours: train.epochs" in message and "train.threads" in message


def test_capability_gated_keys_use_the_matrix_wording():
    with pytest.raises(UnsupportedError, match=r"^train\.distill: embedding runs do not support this; embedding runs "
                                                r"support: train, predict"):
        check_settings(_cfg({"type": "embedding"}, train={"distill": {"teacher": "t"}}))
    with pytest.raises(UnsupportedError, match=r"^train\.distill: causal_lm runs do not support this"):
        check_settings(_cfg({"type": "causal_lm"}, train={"distill": {"teacher": "t"}}))
    with pytest.raises(UnsupportedError, match=r"^augment: ner runs do not support this; ner runs support: train"):
        check_settings(_cfg({"type": "ner"}, augment={}))
    check_settings(_cfg({"type": "classification"}, train={"distill": {"teacher": "t"}}, augment={}))


def test_what_the_sentence_transformers_path_honours_passes():
    check_settings(_cfg({"type": "embedding"}, train={"threads": 1, "epochs": 2, "report_to": [], "seed": 3,
                                                     "early_stopping": None}))  # it never stops early anyway
    with pytest.raises(ConfigError, match=r"^train\.early_stopping\.patience: ranking \(two_tower\) runs"):
        check_settings(_cfg({"type": "ranking", "architecture": "two_tower"},
                            train={"early_stopping": {"patience": 5}}))


def test_graftkit_train_refuses_in_one_line_before_anything(tmp_path, tiny_model_dir):
    data = write_csv(tmp_path / "pairs.csv", PAIRS, header=("query", "question"))
    tree = {"name": "e", "output_dir": str(tmp_path / "runs"), "task": {"type": "embedding"},
            "data": {"train": str(data), "text_column": "query", "text_pair_column": "question"},
            "model": {"name_or_path": tiny_model_dir}, "train": {"rdrop": 0.5, "distributed": {"backend": "gloo"}}}
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "train.rdrop: embedding runs (trained by sentence-transformers)" in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_train_refuses_a_pretrain_section_it_does_not_run(tmp_path, tiny_model_dir):
    cfg = run_config(tmp_path, tiny_model_dir, "unused.csv", pretrain={"epochs": 1})
    with pytest.raises(ConfigError, match=r"^pretrain: classification runs"):
        train(cfg, log=lambda m: None)
    from graftkit.train.pretrain import check_settings as check_with_stage

    check_with_stage(cfg)  # graftkit train runs the stage first


def test_an_embedding_run_records_its_threads_and_data(tmp_path, tiny_model_dir):
    data = write_csv(tmp_path / "pairs.csv", PAIRS * 3, header=("query", "question"))
    cfg = run_config(tmp_path, tiny_model_dir, data, task={"type": "embedding"},
                     data={"text_column": "query", "text_pair_column": "question",
                           "split": {"validation": 0.0, "test": 0.0}},
                     train={"max_steps": 2, "batch_size": 4, "threads": 1})
    saved = torch.get_num_threads()
    try:
        run = train(cfg, log=lambda m: None)
    finally:
        torch.set_num_threads(saved)
    setup = json.loads((run.path / "training_setup.json").read_text())
    assert setup["threads"]["intra_op_threads"] == 1 and setup["components"] == ["threads"]
    assert setup["data_digest"]["train"] and setup["trainable_parameters"] == setup["total_parameters"] > 0
