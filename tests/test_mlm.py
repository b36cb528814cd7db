"""mlm task and task-adaptive pre-training end to end on a tiny model (graftkit/tasks/mlm, train/pretrain.py)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import run_config, write_csv
from graftkit.errors import DataError
from graftkit.inference.predictor import Predictor
from graftkit.io import read_json
from graftkit.train.pretrain import pretrain, pretrain_run_dir, train_with_pretrain
from graftkit.train.trainer import train

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ate the fish",
          "国内银行现在走的是台湾的发卡模式", "彭军认为国内银行很好"]


def _mlm_cfg(tmp_path, model_dir, text_file, **train):
    return run_config(tmp_path, model_dir, text_file, task={"type": "mlm", "mlm_probability": 0.3},
                      data={"train": str(text_file), "max_length": 32,
                            "split": {"validation": 0.2, "test": 0.0, "stratify": False}},
                      model={"name_or_path": model_dir, "extend_vocab": "auto"},
                      train={"epochs": 1, "max_steps": 60, "learning_rate": 5e-3, "warmup": 0, **train})


def test_mlm_lowers_loss_and_reports_perplexity(tmp_path, tiny_model_dir):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(CORPUS * 10) + "\n", encoding="utf-8")
    run = train(_mlm_cfg(tmp_path, tiny_model_dir, text), log=lambda m: None)
    losses = [h["loss"] for h in read_json(run.history) if "loss" in h]
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0
    val = read_json(run.metrics)["validation"]
    assert val["masked_tokens"] > 0 and 0 <= val["masked_accuracy"] <= 1
    assert val["perplexity"] < math.exp(losses[0]) / 2  # far below the untrained model's
    # extended vocabulary: 彭 and 军 are tokens of the saved tokenizer
    tok = AutoTokenizer.from_pretrained(run.path)
    assert tok.tokenize("彭军") == ["彭", "军"]
    filled = Predictor(run.path).predict(["the cat sat on the [MASK]"])[0]
    candidates = filled.masks[0]["candidates"]
    scores = [c["score"] for c in candidates]
    assert len(candidates) == 5 and scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
    assert candidates[0]["token"] in set(tok.tokenize(" ".join(CORPUS)))  # it learned the corpus' tokens


def test_mlm_result_is_a_starting_point_for_fine_tuning(tmp_path, tiny_model_dir):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(CORPUS * 4) + "\n", encoding="utf-8")
    mlm = train(_mlm_cfg(tmp_path, tiny_model_dir, text, max_steps=5), log=lambda m: None)
    rows = [[t, "a" if "cat" in t or "银行" in t else "b"] for t in CORPUS] * 4
    cfg = run_config(tmp_path, str(mlm.path), write_csv(tmp_path / "cls.csv", rows), name="cls",
                     task={"type": "classification"}, train={"max_steps": 3})
    run = train(cfg, log=lambda m: None)
    start = AutoModelForSequenceClassification.from_pretrained(mlm.path)
    assert start.config.vocab_size == len(AutoTokenizer.from_pretrained(run.path))
    assert run.is_complete


def test_pretrain_block_runs_tapt_then_fine_tunes_and_resumes(tmp_path, tiny_model_dir):
    rows = [[t, "a" if "cat" in t or "银行" in t else "b"] for t in CORPUS] * 4
    cfg = run_config(tmp_path, tiny_model_dir, write_csv(tmp_path / "cls.csv", rows), name="cls",
                     model={"name_or_path": tiny_model_dir, "extend_vocab": "auto"},
                     pretrain={"epochs": 1, "max_steps": 4, "batch_size": 8}, train={"max_steps": 3})
    logs: list[str] = []
    run = train_with_pretrain(cfg, log=logs.append)
    pre = pretrain_run_dir(cfg)
    assert (pre / "COMPLETE").is_file() and run.is_complete
    saved = (run.path / "config.yaml").read_text(encoding="utf-8")
    assert str(pre) in saved and "pretrain: null" in saved
    # the pre-training text is the training split only
    texts = (tmp_path / "runs" / "cls-pretrain.train.txt").read_text(encoding="utf-8").splitlines()
    assert len(texts) == read_json(run.metrics)["data"]["train"]
    # the fine-tuned model starts from the pre-trained encoder (not from the original checkpoint)
    pre_model = AutoModelForSequenceClassification.from_pretrained(pre)
    orig = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    emb = lambda m: m.bert.embeddings.position_embeddings.weight  # noqa: E731
    assert not torch.equal(emb(pre_model), emb(orig))
    logs.clear()
    assert pretrain(cfg, log=logs.append).path == pre  # a finished stage is reused, not redone
    assert any("reusing the finished pre-training run" in m for m in logs)


def test_empty_text_file_is_an_error(tmp_path, tiny_model_dir):
    text = tmp_path / "empty.txt"
    text.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt.*holds no text"):
        train(_mlm_cfg(tmp_path, tiny_model_dir, text), log=lambda m: None)


def test_mlm_reads_a_text_column(tmp_path, tiny_model_dir):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": t}) for t in CORPUS * 3) + "\n", encoding="utf-8")
    cfg = _mlm_cfg(tmp_path, tiny_model_dir, path, max_steps=2)
    cfg.data.text_column = "body"
    run = train(cfg, log=lambda m: None)
    assert read_json(run.metrics)["data"]["train"] > 10
