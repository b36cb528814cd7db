"""Bottleneck adapters (``peft.method: bottleneck``): identity at start, learn, save small, reload, export."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

from conftest import run_config, write_csv
from graftkit.config import PeftSettings
from graftkit.errors import ConfigError, RunFolderError
from graftkit.modeling.bottleneck import WEIGHTS_FILE
from graftkit.export.merge import merge_run
from graftkit.modeling.peft import head_module_names, wrap_model
from graftkit.modeling.run_folder import RunFolder
from graftkit.inference.run_model import load_run_model
from graftkit.inference.predictor import Predictor, load_task
from graftkit.tasks.predictions import EntitiesPrediction
from graftkit.train.trainer import train
from test_peft import ROWS, _batch, _model, fit


def test_adapters_start_as_identity_and_only_they_and_the_head_learn(tiny_model_dir):
    model = _model(tiny_model_dir).eval()
    inputs, labels = _batch(tiny_model_dir)
    with torch.no_grad():
        plain = model(**inputs).logits.clone()
    adapted = wrap_model(model, PeftSettings(method="bottleneck", r=4), 10, [101, 7592, 102])
    with torch.no_grad():
        torch.testing.assert_close(adapted(**inputs).logits, plain)  # up-projection starts at zero
    names = [n for n, _ in adapted.named_modules() if n.endswith(".bottleneck")]
    assert names == [f"bert.encoder.layer.{i}.output.dense.bottleneck" for i in range(2)]  # FFN out, not attention
    trainable = {n for n, p in adapted.named_parameters() if p.requires_grad}
    assert trainable and all(".bottleneck." in n or n.startswith(("classifier.", "bert.pooler.")) for n in trainable)
    assert "bert.pooler.dense.weight" in trainable  # BERT's pooler is a task layer: it trains with the head
    before = {n: p.detach().clone() for n, p in adapted.named_parameters()}
    start, end = fit(adapted, inputs, labels, steps=30, lr=3e-3)
    assert end < start
    changed = {n for n, p in adapted.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed <= trainable and any(".bottleneck.up." in n for n in changed)


def test_bad_bottleneck_settings_fail_before_training(tiny_model_dir):
    with pytest.raises(ConfigError, match="matches no module"):
        wrap_model(_model(tiny_model_dir), PeftSettings(method="bottleneck", target_modules=["nope"]), 1, [101])
    with pytest.raises(ConfigError, match="not a linear projection"):
        wrap_model(_model(tiny_model_dir), PeftSettings(method="bottleneck", target_modules=["attention.output"]),
                   1, [101])
    with pytest.raises(ConfigError, match="activation"):
        wrap_model(_model(tiny_model_dir), PeftSettings(method="bottleneck", options={"activation": "nope"}), 1, [101])


class _Capture(TrainerCallback):
    """Logits of the trained in-memory model on fixed inputs, taken when training ends."""

    def __init__(self, inputs):
        self.inputs, self.logits = inputs, None

    def on_train_end(self, args, state, control, model=None, **kwargs):
        model.eval()
        with torch.no_grad():
            self.logits = model(**self.inputs).logits.numpy()


def test_bottleneck_run_saves_adapters_only_and_reloads_exactly(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    texts = [r[0] for r in ROWS]
    enc = dict(AutoTokenizer.from_pretrained(tiny_model_dir)(texts, padding=True, return_tensors="pt"))
    capture = _Capture(enc)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, peft={"method": "bottleneck", "r": 4},
                     train={"epochs": 4, "learning_rate": 3e-2}, data={"test": str(train_file)})
    run = train(cfg, extra_callbacks=[capture], log=lambda m: None)
    assert (run.path / WEIGHTS_FILE).is_file() and not (run.path / "model.safetensors").exists()
    spec = json.loads((run.path / "bottleneck_config.json").read_text())
    assert spec["r"] == 4 and spec["head_modules"] == ["classifier", "bert.pooler.dense"]
    full = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    assert (run.path / WEIGHTS_FILE).stat().st_size < sum(p.numel() for p in full.parameters()) * 4 / 10

    pred = Predictor(run.path).predict(texts)
    temperature = json.loads((run.path / "labels.json").read_text()).get("temperature", [1.0])[0]
    expected = torch.softmax(torch.tensor(capture.logits) / temperature, -1).numpy()  # the run's calibrated scores
    np.testing.assert_allclose([[p.scores["neg"], p.scores["pos"]] for p in pred], expected, atol=1e-5)
    # the adapters matter: the base model with the same head alone predicts something else
    reloaded = load_run_model(run.path, load_task(RunFolder(run.path)))
    assert head_module_names(reloaded) == ["classifier"]
    for m in reloaded.modules():
        if hasattr(m, "bottleneck"):
            torch.nn.init.zeros_(m.bottleneck.up.weight)
            torch.nn.init.zeros_(m.bottleneck.up.bias)
    with torch.no_grad():
        without = reloaded(**enc).logits.numpy()
    assert not np.allclose(without, capture.logits, atol=1e-4)

    with pytest.raises(RunFolderError, match="cannot be merged"):
        merge_run(run.path)
    from graftkit.export import export_run

    report = export_run(run.path, log=lambda m: None)  # a standalone model: ONNX instead of a merge
    assert report["backends"]["onnx_fp32"]["logits_max_abs_diff"] <= 1e-3


def test_bottleneck_on_ner_with_crf(tmp_path, tiny_model_dir):
    from test_ner_train import SENTENCES, write_jsonl

    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=2)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner", "crf": True},
                     peft={"method": "bottleneck", "r": 4}, train={"max_steps": 2},
                     data={"split": {"validation": 0.0, "test": 0.0}})
    run = train(cfg, log=lambda m: None)
    from safetensors import safe_open

    with safe_open(str(run.path / WEIGHTS_FILE), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("crf.") for k in keys) and any(".bottleneck.down." in k for k in keys)
    assert isinstance(Predictor(run.path).predict([SENTENCES[0][0]])[0], EntitiesPrediction)


def test_incomplete_adapter_file_is_refused(tmp_path, tiny_model_dir):
    from safetensors.torch import load_file, save_file

    train_file = write_csv(tmp_path / "train.csv", ROWS * 2)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, peft={"method": "bottleneck", "r": 4},
                     train={"max_steps": 1}, data={"split": {"validation": 0.0, "test": 0.0}})
    run = train(cfg, log=lambda m: None)
    state = load_file(str(run.path / WEIGHTS_FILE))
    save_file({k: v for k, v in state.items() if not k.startswith("classifier.")}, str(run.path / WEIGHTS_FILE))
    with pytest.raises(RunFolderError, match="absent adapter/head weights"):
        load_run_model(run.path, load_task(RunFolder(run.path)))
