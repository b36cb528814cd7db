"""The Chinese recipes in configs/ turn on vocabulary extension and task-adaptive pre-training,
and a training log names the switch when the training text is mostly [UNK]."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_config, write_csv
from graftkit.tasks.run_config import load_config
from graftkit.train.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CHINESE = sorted(p for p in CONFIGS.glob("*.yaml") if "Chinese" in p.read_text(encoding="utf-8").split("\nname:")[0])


def test_the_chinese_recipes_are_found():
    assert {p.name for p in CHINESE} >= {"ner-cluener.yaml", "ner-weibo.yaml", "sentiment-chnsenticorp.yaml"}


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_chinese_recipe_extends_the_vocabulary_and_pretrains(path):
    cfg = load_config(path)
    assert cfg.model.extend_vocab.source == "auto"
    assert cfg.pretrain is not None and (cfg.pretrain.epochs or cfg.pretrain.max_steps)


def test_training_log_warns_about_unknown_text_and_names_the_switch(tmp_path, tiny_model_dir):
    # 彭 and 军 are [UNK] to the bundled uncased WordPiece vocabulary: far above 5% of the characters
    data = write_csv(tmp_path / "train.csv", [["彭军彭军好", "pos"], ["军彭不", "neg"]] * 4)
    lines: list[str] = []
    train(run_config(tmp_path, tiny_model_dir, data, train={"max_steps": 1}), log=lines.append)
    warned = [m for m in lines if m.startswith("WARNING") and "[UNK]" in m]
    assert len(warned) == 1 and "set model.extend_vocab: auto" in warned[0]
    lines.clear()
    train(run_config(tmp_path, tiny_model_dir, data, name="ext", train={"max_steps": 1},
                     model={"name_or_path": tiny_model_dir, "extend_vocab": "auto"}), log=lines.append)
    assert not [m for m in lines if m.startswith("WARNING") and "[UNK]" in m]
