"""The PEFT / adversarial / augmentation switches on other task heads: NER and regression.

Each run checks what training touched (only the adapter and the head under PEFT; the frozen base never) and
that the saved run predicts exactly what the trained model in memory predicted before it was saved.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from conftest import run_config, write_csv
from graftkit.errors import ConfigError, UnsupportedError
from graftkit.inference.predictor import Predictor
from graftkit.modeling.outputs import output_logits
from graftkit.tasks.capabilities import DecodesLogits
from graftkit.tasks.ner import NerTask
from graftkit.tasks.predictions import EntitiesPrediction, ValuePrediction
from graftkit.train.trainer import train
from test_ner_train import SENTENCES, write_jsonl

#: parameters a PEFT run trains in full: the task head (and pooler), kept by peft's ``modules_to_save``
HEAD = "modules_to_save"


class Snapshot(TrainerCallback):
    """Every parameter and which ones train, before training; the changed ones and a copy of the trained model
    (taken before the run folder is written), after."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), self.before[n])}
        self.model = copy.deepcopy(model).eval()


def _train(cfg) -> tuple:
    snap = Snapshot()
    return train(cfg, extra_callbacks=[snap], log=lambda m: None), snap


def assert_only_adapter_and_head_changed(snap: Snapshot, adapter: str, heads: tuple[str, ...]) -> None:
    """Training changed the adapter (``adapter`` in its parameter names) and each of ``heads``, and nothing of
    the frozen base model."""
    base = {n for n in snap.before if adapter not in n and HEAD not in n}
    assert base and not base & snap.trainable, sorted(base & snap.trainable)  # the base model is frozen
    assert not base & snap.changed, sorted(base & snap.changed)  # ... and stayed as it was
    assert snap.changed <= snap.trainable
    assert any(adapter in n for n in snap.changed), "the adapter did not learn"
    for head in heads:
        assert any(head in n and HEAD in n for n in snap.changed), f"the {head} head did not learn"


def logits_before_and_after_reload(run, snap: Snapshot, inputs: list) -> tuple[Predictor, np.ndarray, object]:
    """The reloaded run's Predictor, and the trained in-memory model's logits on its features (the same as the
    reloaded model's), with the decoding context."""
    reloaded = Predictor(run.path)
    features, ctx = reloaded.features(inputs)
    with torch.no_grad():
        before = output_logits(snap.model(**{k: torch.as_tensor(v) for k, v in features.items()})).float().numpy()
    np.testing.assert_allclose(reloaded.backend(features), before, atol=1e-5)
    return reloaded, before, ctx


def crf_transitions(model) -> tuple[np.ndarray, ...]:
    """The trained (start, end, transitions) scores of a PEFT-wrapped CRF head in memory."""
    params = {n: p for n, p in model.named_parameters() if ".crf." in n and f"{HEAD}." in n}
    return tuple(next(p for n, p in params.items() if n.endswith(f".{k}")).detach().numpy()
                 for k in ("start_transitions", "end_transitions", "transitions"))


def assert_same_entities(before: list[EntitiesPrediction], after: list[EntitiesPrediction]) -> None:
    assert all(isinstance(p, EntitiesPrediction) for p in after) and len(after) == len(before)
    for b, a in zip(before, after):
        assert [(e.start, e.end, e.label, e.text) for e in a.entities] == \
            [(e.start, e.end, e.label, e.text) for e in b.entities]
        assert [e.score for e in a.entities] == pytest.approx([e.score for e in b.entities], abs=1e-5)


def test_ner_with_lora_trains_head_and_serves(tmp_path, tiny_model_dir):
    train_file = write_jsonl(tmp_path / "train.jsonl", SENTENCES, repeat=2)
    texts = [t for t, _ in SENTENCES]
    cfg = run_config(tmp_path, tiny_model_dir, train_file, task={"type": "ner"},
                     peft={"method": "lora", "r": 2}, train={"max_steps": 2},
                     data={"split": {"validation": 0.0, "test": 0.0}})
    run, snap = _train(cfg)
    from safetensors import safe_open

    with safe_open(str(run.path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any("classifier" in k for k in keys)  # the head is saved with the adapter
    assert any("lora_A" in k for k in keys)
    assert_only_adapter_and_head_changed(snap, "lora_", ("classifier",))
    reloaded, before, ctx = logits_before_and_after_reload(run, snap, texts)
    assert_same_entities(reloaded.decoding.decode(before, ctx), reloaded.predict(texts))

    # a CRF head under LoRA: its transitions live in the adapter file under a prefixed key
    crf_cfg = run_config(tmp_path, tiny_model_dir, train_file, name="lora-crf", task={"type": "ner", "crf": True},
                         peft={"method": "lora", "r": 2}, train={"max_steps": 2},
                         data={"split": {"validation": 0.0, "test": 0.0}})
    crf_run, crf_snap = _train(crf_cfg)
    assert_only_adapter_and_head_changed(crf_snap, "lora_", ("classifier", "crf"))
    reloaded, before, ctx = logits_before_and_after_reload(crf_run, crf_snap, texts)
    trained = crf_transitions(crf_snap.model)
    for saved, own in zip(reloaded.task.transitions, trained):  # the trained CRF, not a fresh one, is reloaded
        np.testing.assert_allclose(saved, own, atol=1e-6)
    in_memory = NerTask(reloaded.task.task_cfg)  # decodes with the in-memory model's transitions
    in_memory.load_state(crf_run.task_state())
    in_memory.transitions = trained
    assert_same_entities(in_memory.capability(DecodesLogits, "predict").decode(before, ctx), reloaded.predict(texts))

    bad = run_config(tmp_path, tiny_model_dir, train_file, name="aug", task={"type": "ner"}, augment={"copies": 1})
    with pytest.raises(UnsupportedError, match="^augment: ner runs do not support this") as refused:
        train(bad, log=lambda m: None)  # NER labels are tied to token positions: no word-level augmentation
    assert "\n" not in str(refused.value)
    smooth = run_config(tmp_path, tiny_model_dir, train_file, name="ls", task={"type": "ner", "crf": True},
                        train={"label_smoothing": 0.1})
    with pytest.raises(ConfigError, match="label_smoothing"):
        train(smooth, log=lambda m: None)


def test_regression_with_fgm_and_ia3(tmp_path, tiny_model_dir):
    rows = [["great", 4.5], ["awful", 1.0], ["fine", 3.0], ["good", 4.0]] * 4
    texts = ["great", "awful", "fine", "good"]
    path = write_csv(tmp_path / "reg.csv", rows)
    for name, extra in (("fgm", {"train": {"max_steps": 2, "adversarial": {"method": "fgm"}}}),
                        ("ia3", {"train": {"max_steps": 2}, "peft": {"method": "ia3"}})):
        cfg = run_config(tmp_path, tiny_model_dir, path, name=name, task={"type": "regression"},
                         data={"split": {"validation": 0.0, "test": 0.25}}, **extra)
        run, snap = _train(cfg)
        assert json.loads(run.metrics.read_text())["test"]
        if name == "ia3":
            assert_only_adapter_and_head_changed(snap, "ia3_", ("classifier",))
        else:  # full fine-tuning; the adversarial perturbation of the embeddings is undone after each step
            assert snap.changed <= snap.trainable and any("classifier" in n for n in snap.changed)
        reloaded, before, ctx = logits_before_and_after_reload(run, snap, texts)
        expected, predicted = reloaded.decoding.decode(before, ctx), reloaded.predict(texts)
        assert len(predicted) == len(texts) and all(isinstance(p, ValuePrediction) for p in predicted)
        for b, a in zip(expected, predicted):
            assert a.value == pytest.approx(b.value, abs=1e-4)
            assert a.values == pytest.approx(b.values, abs=1e-4)
