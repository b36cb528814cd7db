"""GraftTrainer composes components (graftkit/train/components.py): the one order of hooks per step, evaluation
hooks reaching the history, early stopping and best-checkpoint selection, the loss-only placeholders, the
argument changes, the private column filter the token budget relies on, and one training_setup.json."""
from __future__ import annotations

import inspect
import json

import torch
from datasets import Dataset
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

from conftest import run_config, write_csv
from graftkit.train.batching import TokenBudget, token_budget_dataloader
from graftkit.train.components import Component, TrainingOnly
from graftkit.train.extras import Peft
from graftkit.train.trainer import COMPONENT_TYPES, GraftTrainer, train
from test_peft import ROWS


class Recorder(TrainingOnly):
    """Writes every hook call into ``calls``; its evaluation metric follows ``scores``."""

    def __init__(self, tag: str, calls: list, scores: list[float] | None = None):
        self.tag, self.calls, self.scores = tag, calls, list(scores or [])

    def arguments(self, args):
        self.calls.append((self.tag, "arguments", args.logging_steps))
        return {"logging_steps": args.logging_steps + 1}

    def training_loss(self, trainer, model, inputs, num_items, inner):
        self.calls.append((self.tag, "loss in"))
        result = inner(model, inputs, num_items)
        self.calls.append((self.tag, "loss out"))
        return result

    def after_backward(self, trainer, model, inputs, step):
        self.calls.append((self.tag, "after_backward"))

    def evaluate(self, trainer):
        self.calls.append((self.tag, "evaluate"))
        return {f"{self.tag}_score": self.scores.pop(0)} if self.scores else {}


def _data(tokenizer, n: int = 8, extra: bool = False) -> Dataset:
    texts = [r[0] for r in ROWS] * (n // len(ROWS))
    rows = dict(tokenizer(texts, truncation=True, max_length=16))
    rows["labels"] = [i % 2 for i in range(len(texts))]
    if extra:
        rows["note"] = ["not a model input"] * len(texts)
    return Dataset.from_dict(rows)


def _trainer(tmp_path, model_dir, components, eval_data=True, **arguments) -> GraftTrainer:
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    settings = {"output_dir": str(tmp_path / "out"), "max_steps": 2, "per_device_train_batch_size": 4,
                "per_device_eval_batch_size": 4, "report_to": "none", "use_cpu": True, "save_strategy": "no",
                "logging_steps": 1, "disable_tqdm": True, **arguments}
    return GraftTrainer(model=model, args=TrainingArguments(**settings), train_dataset=_data(tokenizer),
                        eval_dataset=_data(tokenizer, 4) if eval_data else None, components=components,
                        data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                        compute_metrics=(lambda p: {"rows": float(len(p.label_ids))}) if eval_data else None)


def test_hooks_run_in_the_documented_order(tmp_path, tiny_model_dir):
    calls: list = []
    trainer = _trainer(tmp_path, tiny_model_dir, [Recorder("a", calls, [1.0]), Recorder("b", calls, [2.0])],
                       max_steps=1, eval_strategy="steps", eval_steps=1)
    # built: each component's arguments, in list order, each seeing the changes before it
    assert calls == [("a", "arguments", 1), ("b", "arguments", 2)] and trainer.args.logging_steps == 3
    calls.clear()
    trainer.train()
    # one step: the loss chain (b wraps a, a wraps the model's loss), backward, the after-backward hooks;
    # then the evaluation: the Trainer's loss loop, the task metrics, each evaluation hook
    assert calls == [("b", "loss in"), ("a", "loss in"), ("a", "loss out"), ("b", "loss out"),
                     ("a", "after_backward"), ("b", "after_backward"), ("a", "evaluate"), ("b", "evaluate")]
    logged = next(h for h in trainer.state.log_history if "eval_loss" in h)
    assert logged["eval_a_score"] == 1.0 and logged["eval_b_score"] == 2.0 and logged["eval_rows"] == 4


def test_evaluation_hook_metrics_drive_early_stopping_and_the_best_checkpoint(tmp_path, tiny_model_dir):
    from transformers import EarlyStoppingCallback

    calls: list = []
    trainer = _trainer(tmp_path, tiny_model_dir, [Recorder("gen", calls, [0.5, 0.9, 0.4, 0.3, 0.2, 0.1])],
                       max_steps=6, eval_strategy="steps", eval_steps=1, save_strategy="steps", save_steps=1,
                       load_best_model_at_end=True, metric_for_best_model="gen_score", greater_is_better=True)
    trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=2))
    trainer.train()
    scores = [h["eval_gen_score"] for h in trainer.state.log_history if "eval_gen_score" in h]
    assert scores == [0.5, 0.9, 0.4, 0.3]  # two evaluations without improvement stop the run
    assert trainer.state.best_metric == 0.9 and trainer.state.best_model_checkpoint.endswith("checkpoint-2")


def test_a_loss_only_task_hands_the_trainer_one_placeholder_per_row(tmp_path, tiny_model_dir):
    """A generative task asks for the loss only (its logits are vocabulary-wide); its evaluation hooks still run,
    and what the Trainer gathers per evaluation is one float per row, not logits or token labels."""
    calls: list = []
    trainer = _trainer(tmp_path, tiny_model_dir, [Recorder("gen", calls, [0.7])], prediction_loss_only=True)
    assert trainer.args.prediction_loss_only is False
    batch = trainer.data_collator([trainer.eval_dataset[i] for i in range(4)])
    loss, preds, labels = trainer.prediction_step(trainer.model, batch, prediction_loss_only=False)
    assert torch.isfinite(loss) and preds.shape == labels.shape == (4,) and not preds.any()
    metrics = trainer.evaluate()
    assert metrics["eval_gen_score"] == 0.7 and "eval_loss" in metrics
    assert "eval_rows" not in metrics  # the task asked for no metrics from logits


def test_component_arguments_replace_callback_changes(tmp_path, tiny_model_dir):
    """AdaLoRA's "keep the final weights" is an argument set when the Trainer is built, not a callback's edit."""
    trainer = _trainer(tmp_path, tiny_model_dir, [Peft("adalora", None)], eval_strategy="steps", eval_steps=1,
                       save_strategy="steps", save_steps=1, load_best_model_at_end=True)
    assert trainer.args.load_best_model_at_end is False
    assert not any(type(cb).__name__ == "AdaLoraSchedule" and "on_train_begin" in type(cb).__dict__
                   for cb in trainer.callback_handler.callbacks)
    lora = _trainer(tmp_path, tiny_model_dir, [Peft("lora", None)], eval_strategy="steps", eval_steps=1,
                    save_strategy="steps", save_steps=1, load_best_model_at_end=True)
    assert lora.args.load_best_model_at_end is True


def test_token_budget_keeps_the_trainers_private_column_filter(tmp_path, tiny_model_dir):
    """token_budget_dataloader calls Trainer._remove_unused_columns (no public route in transformers 5): its
    signature and effect are pinned here, so a transformers release that changes them fails this test."""
    params = list(inspect.signature(Trainer._remove_unused_columns).parameters)
    assert params == ["self", "dataset", "description"]
    trainer = _trainer(tmp_path, tiny_model_dir, [TokenBudget(24)], eval_data=False)
    trainer.train_dataset = _data(trainer.processing_class, extra=True)
    batches = list(token_budget_dataloader(trainer, 24))
    assert batches and all("note" not in b and "input_ids" in b for b in batches)
    assert sum(len(b["labels"]) for b in batches) == len(trainer.train_dataset)
    # the component's loader replaces the Trainer's 4-row batches, which would exceed 24 tokens
    assert all(b["input_ids"].numel() <= 24 for b in trainer.get_train_dataloader())
    assert max(len(b["labels"]) for b in batches) < trainer.args.per_device_train_batch_size


def test_every_component_type_declares_a_name_and_real_keys():
    from test_keys import config_leaves

    leaves = config_leaves()
    for kind in COMPONENT_TYPES:
        assert kind.name, kind
        assert all(key in leaves for key in kind.keys), (kind, [k for k in kind.keys if k not in leaves])
    assert issubclass(TrainingOnly, Component)


def test_training_setup_is_written_once_with_every_part(tmp_path, tiny_model_dir, monkeypatch):
    import graftkit.train.session as session

    writes = []
    real = session.write_json
    monkeypatch.setattr(session, "write_json", lambda path, obj: (writes.append(path.name), real(path, obj)))
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, train={"max_steps": 2, "threads": 1, "rdrop": 0.5},
                     model={"dropout": 0.1}, augment={"copies": 1})
    saved = torch.get_num_threads()
    try:
        run = train(cfg, log=lambda m: None)
    finally:
        torch.set_num_threads(saved)
    assert writes.count("training_setup.json") == 1
    setup = json.loads((run.path / "training_setup.json").read_text())
    assert set(setup["data_digest"]) == {"train", "validation", "test"}
    assert setup["threads"]["intra_op_threads"] == 1 and setup["vocab"]["tokens_added"] == 0
    assert setup["augment"]["original"] > 0 and setup["augment"]["generated"] > 0
    assert 0 < setup["trainable_parameters"] <= setup["total_parameters"]
    assert setup["components"] == ["threads", "extend_vocab", "augment", "rdrop"]
