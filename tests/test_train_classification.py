"""Classification end to end on a tiny model: overfit, save, reload, predict; resume; plain transformers load."""
from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

from conftest import run_config, write_csv
from graftkit.inference.predictor import Predictor
from graftkit.io import staging_path
from graftkit.train.trainer import Interrupted, train

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]]


@pytest.fixture
def tiny_train(tmp_path):
    return write_csv(tmp_path / "train.csv", ROWS * 4)


def test_overfit_save_reload(tmp_path, tiny_model_dir, tiny_train):
    cfg = run_config(tmp_path, tiny_model_dir, tiny_train, train={"epochs": 30, "learning_rate": 3e-3},
                     data={"validation": str(tiny_train), "test": str(tiny_train)})
    run = train(cfg, log=lambda m: None)
    metrics = json.loads(run.metrics.read_text())
    assert metrics["test"]["accuracy"] == 1.0
    assert run.is_complete and (run.path / "model.safetensors").is_file()
    assert not (run.path / "training_args.bin").exists()  # no pickles in the run folder
    texts = [r[0] for r in ROWS]
    pred = Predictor(run.path)
    batch = pred.predict(texts, batch_size=3)
    single = [pred.predict([t])[0] for t in texts]
    assert [p.label for p in batch] == [r[1] for r in ROWS]
    for b, s in zip(batch, single):
        assert b.label == s.label
        assert b.score == pytest.approx(s.score, abs=1e-5)
    # the folder is a plain transformers model folder with the label names
    model = AutoModelForSequenceClassification.from_pretrained(run.path)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    tok = AutoTokenizer.from_pretrained(run.path)
    logits = model(**tok(texts[:2], return_tensors="pt", padding=True)).logits.detach().numpy()
    assert [model.config.id2label[i] for i in logits.argmax(-1)] == ["pos", "neg"]
    for name in ("config.yaml", "labels.json", "history.json", "README.md"):
        assert (run.path / name).is_file(), name
    assert (run.predictions / "test" / "misclassified.csv").is_file()


class _KillAfter(TrainerCallback):
    """Simulates a kill: raises once training passes ``step`` (after a checkpoint was written)."""

    def __init__(self, step):
        self.step = step

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step >= self.step:
            raise KeyboardInterrupt


def test_resume_after_interrupt(tmp_path, tiny_model_dir, tiny_train):
    cfg = run_config(tmp_path, tiny_model_dir, tiny_train, train={"epochs": 3, "eval_strategy": "steps",
                                                                  "eval_steps": 4})
    with pytest.raises(KeyboardInterrupt):
        train(cfg, extra_callbacks=[_KillAfter(6)], log=lambda m: None)
    assert not cfg.run_dir.exists()  # nothing is published before the run is complete
    assert (staging_path(cfg.run_dir) / "checkpoints" / "checkpoint-4").is_dir()  # the in-progress folder
    with pytest.raises(Exception, match="--resume"):
        train(cfg, log=lambda m: None)
    logs = []
    run = train(cfg, resume=True, log=logs.append)
    assert run.is_complete
    assert any("resuming from" in m and "checkpoint-4" in m for m in logs)
    history = json.loads(run.history.read_text())
    assert history[-1]["step"] == 12  # 26 train rows / 8 = 4 steps/epoch * 3 epochs


def test_graceful_stop_saves_checkpoint(tmp_path, tiny_model_dir, tiny_train):
    cfg = run_config(tmp_path, tiny_model_dir, tiny_train, train={"epochs": 2})

    class _Trigger(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted, match="--resume"):
        train(cfg, extra_callbacks=[_Trigger()], log=lambda m: None)
    assert (staging_path(cfg.run_dir) / "checkpoints" / "checkpoint-3").is_dir()
    run = train(cfg, resume=True, log=lambda m: None)
    assert run.is_complete


def test_multilabel_and_class_weights(tmp_path, tiny_model_dir):
    rows = [["rates up and stocks down", "rates|stocks"], ["rates cut", "rates"], ["stocks rally", "stocks"],
            ["nothing happened", ""]] * 8
    path = write_csv(tmp_path / "ml.csv", rows)
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"multi_label": True},
                     data={"label_separator": "|", "split": {"validation": 0.25, "test": 0.25, "stratify": True}},
                     train={"epochs": 20, "learning_rate": 3e-3})
    run = train(cfg, log=lambda m: None)
    state = json.loads(run.labels.read_text())
    assert state["labels"] == ["rates", "stocks"] and state["multi_label"] is True
    assert len(state["thresholds"]) == 2 and all(0 < t < 1 for t in state["thresholds"])
    pred = Predictor(run.path).predict(["rates up and stocks down", "nothing happened"])
    assert sorted(pred[0].labels) == ["rates", "stocks"] and pred[1].labels == []

    from graftkit.tasks.common.class_labels import class_weights
    from graftkit.data.dataset import Example

    ex = [Example("a", "x")] * 6 + [Example("b", "y")] * 2
    w = class_weights(ex, ["x", "y"], False, "balanced")
    np.testing.assert_allclose(w, [8 / (2 * 6), 8 / (2 * 2)])
