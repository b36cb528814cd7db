"""PEFT through `peft`: each method learns, only adapter + head change, adapter runs save/load/merge."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import run_config, write_csv
from graftkit.config import PeftSettings
from graftkit.errors import ConfigError
from graftkit.export.merge import merge_run
from graftkit.modeling.peft import wrap_model
from graftkit.inference.predictor import Predictor
from graftkit.train.trainer import train

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]]


def _model(tiny_model_dir):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)


def _batch(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = tok([r[0] for r in ROWS], padding=True, return_tensors="pt")
    return dict(enc), torch.tensor([1, 0, 1, 0])


def fit(model, inputs, labels, steps: int = 15, lr: float = 2e-2) -> tuple[float, float]:
    """Train the trainable parameters a few AdamW steps; returns the eval-mode loss before and after."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model(**inputs).logits, labels).item()

    start = eval_loss()
    for _ in range(steps):
        model.train()
        torch.nn.functional.cross_entropy(model(**inputs).logits, labels).backward()
        opt.step()
        opt.zero_grad()
    return start, eval_loss()


@pytest.mark.parametrize("method", ["lora", "adalora", "ia3", "prompt_tuning"])
def test_method_learns_and_changes_only_adapter_and_head(tiny_model_dir, method):
    model = _model(tiny_model_dir)
    # the pooler stays frozen here: this lr (fine for adapters) wrecks a full dense layer of a tiny random model
    settings = PeftSettings(method=method, r=4, num_virtual_tokens=4, train_pooler=False)
    peft_model = wrap_model(model, settings, total_steps=20, dummy_ids=[101, 7592, 102])
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("classifier" in n for n in trainable), "the task head must stay trainable"
    assert not any("word_embeddings" in n and "prompt" not in n for n in trainable)
    inputs, labels = _batch(tiny_model_dir)
    start, end = fit(peft_model, inputs, labels)
    assert end < start
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= trainable
    assert any("classifier" in n for n in changed)


def test_pooler_trains_with_the_head_unless_switched_off(tiny_model_dir):
    def trainable(**kw) -> set[str]:
        wrapped = wrap_model(_model(tiny_model_dir), PeftSettings(method="lora", r=4, **kw), 10, [101, 102])
        return {n for n, p in wrapped.named_parameters() if p.requires_grad}

    assert any("bert.pooler.dense.modules_to_save" in n for n in trainable())
    assert not any("pooler" in n for n in trainable(train_pooler=False))


def test_bad_peft_settings_fail_before_training(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    bad = [({"method": "lora", "target_modules": ["no_such_module"]}, "target_modules"),
           ({"method": "prefix_tuning"}, "prefix_tuning"),
           ({"method": "bottleneck", "target_modules": "no.such.*"}, "matches no module")]
    for peft, match in bad:
        cfg = run_config(tmp_path, tiny_model_dir, train_file, peft=peft, name=peft["method"])
        with pytest.raises(ConfigError, match=match):
            train(cfg, log=lambda m: None)
        assert not (cfg.run_dir / "checkpoints").exists()


def test_lora_run_saves_adapter_loads_and_merges(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    logs = []
    cfg = run_config(tmp_path, tiny_model_dir, train_file, peft={"method": "lora", "r": 4},
                     train={"epochs": 2, "learning_rate": 1e-2}, data={"validation": str(train_file),
                                                                       "test": str(train_file)})
    run = train(cfg, log=logs.append)
    assert any(m.startswith("trainable parameters:") for m in logs)
    assert (run.path / "adapter_model.safetensors").is_file() and (run.path / "config.json").is_file()
    assert not (run.path / "model.safetensors").exists()
    full_size = sum(f.stat().st_size for f in Path(tiny_model_dir).glob("*.safetensors"))
    assert (run.path / "adapter_model.safetensors").stat().st_size < full_size / 20  # the adapter is small
    setup = json.loads((run.path / "training_setup.json").read_text())
    assert 0 < setup["trainable_parameters"] < setup["total_parameters"] / 10

    texts = [r[0] for r in ROWS]
    pred = Predictor(run.path).predict(texts)
    # adapter + base, unmerged, straight from peft
    from peft import PeftModel

    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, config=str(run.path / "config.json"))
    unmerged = PeftModel.from_pretrained(base, str(run.path)).eval()
    tok = AutoTokenizer.from_pretrained(run.path)
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = unmerged(**enc).logits.softmax(-1).numpy()

    merged_dir = merge_run(run.path)
    plain = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()  # no peft needed
    with torch.no_grad():
        merged = plain(**enc).logits.softmax(-1).numpy()
    np.testing.assert_allclose(merged, ref, atol=1e-5)
    np.testing.assert_allclose([[p.scores["neg"], p.scores["pos"]] for p in pred], ref, atol=1e-5)
    assert plain.config.id2label == {0: "neg", 1: "pos"}
    assert Predictor(merged_dir).predict(texts)[0].label == pred[0].label


def test_freeze_and_param_group_learning_rates(tmp_path, tiny_model_dir):
    from graftkit.modeling.run_folder import RunFolder
    from graftkit.train.trainer import build_trainer, prepare

    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file,
                     train={"learning_rate": 1e-3, "layer_lr_decay": 0.5, "head_learning_rate": 5e-2,
                            "freeze": {"embeddings": True, "layers": 1}})
    task, splits = prepare(cfg)
    run = RunFolder(cfg.run_dir)
    run.path.mkdir(parents=True)
    trainer, _ = build_trainer(cfg, task, splits, run, log=lambda m: None)
    model = trainer.model
    assert not any(p.requires_grad for p in model.bert.embeddings.parameters())
    assert not any(p.requires_grad for p in model.bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.bert.encoder.layer[1].parameters())
    opt = trainer.create_optimizer()
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model.classifier.weight)] == pytest.approx(5e-2)
    assert lr_of[id(model.bert.encoder.layer[1].attention.self.query.weight)] == pytest.approx(1e-3)  # top layer
    assert id(model.bert.encoder.layer[0].attention.self.query.weight) not in lr_of  # frozen: not optimised
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert wd_of[id(model.classifier.bias)] == 0.0 and wd_of[id(model.classifier.weight)] == cfg.train.weight_decay


def test_label_smoothing_conflicts_with_task_loss(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, train={"label_smoothing": 0.1},
                     task={"class_weights": "balanced"})
    with pytest.raises(ConfigError, match="label_smoothing"):
        train(cfg, log=lambda m: None)
