"""The PEFT / adversarial / augmentation switches on other task heads: NER and regression."""
from __future__ import annotations

import json

import pytest

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train
from test_ner_train import SENTENCES, write_jsonl


def test_ner_with_lora_trains_head_and_serves(tmp_path, tiny_model_dir):
    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=2)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     peft={"method": "lora", "r": 2}, train={"max_steps": 2},
                     data={"split": {"validation": 0.0, "test": 0.0}})
    run = train(cfg, log=lambda m: None)
    from safetensors import safe_open

    with safe_open(str(run.path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("classifier" in k for k in keys)  # the head is saved with the adapter
    assert any("lora_A" in k for k in keys)
    pred = Predictor(run.path).predict([SENTENCES[0][0]])
    assert "entities" in pred[0]

    # a CRF head under LoRA: its transitions live in the adapter file under a prefixed key
    crf_cfg = run_config(tmp_path, tiny_model_dir, train_file, name="lora-crf", task={"type": "ner", "crf": True},
                         peft={"method": "lora", "r": 2}, train={"max_steps": 2},
                         data={"split": {"validation": 0.0, "test": 0.0}})
    crf_run = train(crf_cfg, log=lambda m: None)
    assert "entities" in Predictor(crf_run.path).predict([SENTENCES[0][0]])[0]

    bad = run_config(tmp_path, tiny_model_dir, train_file, name="aug", task={"type": "ner"}, augment={"copies": 1})
    with pytest.raises(ConfigError, match="token positions"):
        train(bad, log=lambda m: None)
    smooth = run_config(tmp_path, tiny_model_dir, train_file, name="ls", task={"type": "ner", "crf": True},
                        train={"label_smoothing": 0.1})
    with pytest.raises(ConfigError, match="label_smoothing"):
        train(smooth, log=lambda m: None)


def test_regression_with_fgm_and_ia3(tmp_path, tiny_model_dir):
    rows = [["great", 4.5], ["awful", 1.0], ["fine", 3.0], ["good", 4.0]] * 4
    path = write_csv(tmp_path / "reg.csv", rows)
    for name, extra in (("fgm", {"train": {"max_steps": 2, "adversarial": {"method": "fgm"}}}),
                        ("ia3", {"train": {"max_steps": 2}, "peft": {"method": "ia3"}})):
        cfg = run_config(tmp_path, tiny_model_dir, path, name=name, task={"type": "regression"},
                         data={"split": {"validation": 0.0, "test": 0.25}}, **extra)
        run = train(cfg, log=lambda m: None)
        assert json.loads(run.metrics.read_text())["test"]
        assert len(Predictor(run.path).predict(["great"])) == 1
