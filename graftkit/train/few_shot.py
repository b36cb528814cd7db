"""Training strategies for few labels: which one a run uses, and SetFit's few-shot training of a classifier.

``train.strategy`` is ``standard`` (graftkit's Trainer path), ``few_shot``, or ``auto`` (few_shot when the
training split has fewer than ``train.few_shot.auto_below`` rows per label on average). The choice and its
reason go to the training log, ``training_setup.json`` and the model card.

Few-shot is SetFit (Tunstall et al. 2022) run by the ``setfit`` library as its authors intend: pairs of
training rows (same label: similarity 1, different: 0) fine-tune the encoder with a cosine-similarity loss,
then a logistic regression is fitted on the tuned features. Here the "sentence embedding" SetFit tunes is the
input of the classifier's own output layer (BERT: the pooler's output), read by a sentence-transformers
``Transformer`` module over the task's ordinary ``AutoModelForSequenceClassification`` whose output layer is
set aside meanwhile; the fitted regression then becomes that layer. The run folder is an ordinary
classification run: evaluate, predict, calibrate, explain, export, serve and ensemble read it as any other.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from setfit import SetFitModel
from setfit import Trainer as SetFitTrainer
from setfit import TrainingArguments as SetFitArguments
from transformers import PrinterCallback, ProgressCallback

from graftkit.config import FewShotConfig
from graftkit.data.dataset import Example, Splits
from graftkit.errors import ConfigError
from graftkit.evaluate.evaluator import finalize_run
from graftkit.io import publish_dir, write_json
from graftkit.logs import quiet_loggers
from graftkit.modeling.features import output_layer_name, replace_module
from graftkit.modeling.load import load_pretrained, resolve_model_path
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import LearnsFromFewLabels
from graftkit.tasks.run_config import RunConfig
from graftkit.train.arguments import selection_metric
from graftkit.train.callbacks import TrainingProgress
from graftkit.train.components import Component
from graftkit.train.keys import refuse_unsupported

COMMAND = "train.strategy"
TRAINED_BY = "SetFit"
#: the keys the few-shot path honours (any other key a config sets is refused by name before training)
FEW_SHOT_KEYS = (
    "model.name_or_path", "model.revision", "model.dropout", "model.keep_layers", "train.epochs", "train.max_steps",
    "train.batch_size", "train.learning_rate", "train.weight_decay", "train.warmup", "train.seed",
    "train.logging_steps", "train.report_to", "train.threads", "train.strategy", "train.few_shot")
#: what it always does: SetFit's contrastive stage has no validation pass, so it never stops early
FIXED_SETTINGS = {"train.early_stopping": None}
#: what each strategy does, as the training log and the model card say it
METHODS = {
    "standard": "fine-tuning of the whole model with the classification loss (graftkit's Trainer path)",
    "few_shot": "SetFit: the encoder was fine-tuned on pairs of training rows (same label: similar, different: "
                "dissimilar) with a cosine-similarity loss, then a logistic regression fitted on its features became "
                "the output layer",
    "zero_shot": "zero-shot: no labelled example was trained on; the output layer holds the normalised features of "
                 "each label's descriptions (data.train), so a text gets the label whose descriptions it is most "
                 "similar to (cosine)",
}


class StrategyChoice(Component):
    """``train.strategy``: which training a run got and why (recorded in ``training_setup.json``)."""

    name = "strategy"
    keys = ("train.strategy", *(f"train.few_shot.{name}" for name in FewShotConfig.model_fields))
    needs = LearnsFromFewLabels

    def __init__(self, strategy: str, reason: str):
        self.strategy, self.reason = strategy, reason

    def line(self) -> str:
        return f"strategy: {self.strategy} ({self.reason})"

    def summary(self) -> dict:
        """What metrics.json and the model card say: the strategy, what it does and why it was chosen."""
        return {"chosen": self.strategy, "method": METHODS[self.strategy], "reason": self.reason,
                "trained": self.strategy != "zero_shot"}

    def record(self) -> dict:
        return {"strategy": self.summary()}


def choose_strategy(cfg: RunConfig, task: Task, train: list[Example]) -> StrategyChoice | None:
    """The strategy of this run, or None when there was nothing to choose: the default standard strategy (its
    runs look as they always have), or a task that has only the standard one."""
    learner = task.optional(LearnsFromFewLabels)
    wanted = cfg.train.strategy
    if learner is None or wanted == "standard":
        return None
    if wanted != "auto":
        return StrategyChoice(wanted, f"train.strategy: {wanted}")
    per_label, below = learner.rows_per_label(train), cfg.train.few_shot.auto_below
    chosen = "few_shot" if per_label < below else "standard"
    relation = "<" if chosen == "few_shot" else ">="
    return StrategyChoice(chosen, f"train.strategy: auto; {per_label:.1f} training rows per label {relation} "
                          f"train.few_shot.auto_below {below:g}")


def check_few_shot(cfg: RunConfig, task: Task, choice: StrategyChoice) -> LearnsFromFewLabels:
    """Refuse, in one line and before training, a setting the few-shot path does not apply."""
    learner = task.capability(LearnsFromFewLabels, COMMAND)
    refuse_unsupported(cfg, task, FEW_SHOT_KEYS, {}, f"{TRAINED_BY}; {choice.reason}", FIXED_SETTINGS)
    if cfg.train.warmup >= 1:
        raise ConfigError(f"train.warmup: few_shot takes a fraction of the steps (< 1), not {cfg.train.warmup:g} "
                          "steps")
    learner.check_few_shot()
    return learner


@dataclass
class Body:
    """The classifier as SetFit's sentence-transformers body, its output layer set aside meanwhile."""

    classifier: Any
    tokenizer: Any
    layer_name: str
    sentence_model: Any

    def restore(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Put the output layer back, holding the fitted head."""
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
        replace_module(self.classifier, self.layer_name, layer)


def classifier_body(cfg: RunConfig, task: Task, learner: LearnsFromFewLabels) -> Body:
    """The run's classifier (loaded as the Trainer path loads it) wrapped so that its embedding is the input of
    its output layer: sentence-transformers' ``Transformer`` over the classifier, reading its ``logits`` while
    the output layer is an identity."""
    tokenizer, classifier = load_pretrained(cfg.model, task.model_class, learner.model_kwargs(), cfg.data.max_length)
    module = Transformer(resolve_model_path(cfg.model.name_or_path), transformer_task="sequence-classification",
                         config_kwargs={**learner.model_kwargs(), "revision": cfg.model.revision},
                         model_kwargs={"revision": cfg.model.revision},
                         modality_config={"text": {"method": "forward", "method_output_name": "logits"}},
                         module_output_name="sentence_embedding", max_seq_length=cfg.data.max_length)
    module.model = classifier  # graftkit's load: model.dropout, model.keep_layers, pad token as on the Trainer path
    name = output_layer_name(classifier)
    replace_module(classifier, name, torch.nn.Identity())
    return Body(classifier, tokenizer, name, SentenceTransformer(modules=[module], device="cpu"))


def _setfit_arguments(cfg: RunConfig, run: RunFolder):
    t, fs = cfg.train, cfg.train.few_shot
    return SetFitArguments(
        output_dir=str(run.checkpoints), batch_size=t.batch_size, num_epochs=(t.epochs, 1), max_steps=t.max_steps,
        body_learning_rate=(t.learning_rate, t.learning_rate), l2_weight=t.weight_decay, warmup_proportion=t.warmup,
        seed=t.seed, num_iterations=fs.pairs_per_row, sampling_strategy=fs.sampling, max_length=cfg.data.max_length,
        logging_steps=t.logging_steps, save_strategy="no", show_progress_bar=False,
        report_to=[r for r in t.report_to if r != "tensorboard"] or "none")  # TensorBoard: graftkit's own writer


def fit_few_shot(cfg: RunConfig, task: Task, learner: LearnsFromFewLabels, train: list[Example], run: RunFolder,
                 callbacks: list, log: Callable[[str], None] = print) -> tuple[Body, list[dict]]:
    """SetFit's two stages on ``train``; returns the classifier (output layer = the fitted head) and the log."""

    body = classifier_body(cfg, task, learner)
    model = SetFitModel(model_body=body.sentence_model, model_head=learner.new_head(),
                        multi_target_strategy=learner.multi_target_strategy)
    data = Dataset.from_dict({"text": [e.text for e in train], "label": learner.targets(train)})
    trainer = SetFitTrainer(model=model, args=_setfit_arguments(cfg, run), train_dataset=data,
                            callbacks=[TrainingProgress(log), *callbacks])
    for printer in (PrinterCallback, ProgressCallback):  # TrainingProgress draws the one bar, as on the Trainer path
        trainer.remove_callback(printer)
    with quiet_loggers(("setfit",), logging.WARNING):  # setfit sets its own loggers to INFO when it is imported
        trainer.train()
    body.restore(*learner.head_weights(model.model_head))
    body.classifier.to("cpu").eval()
    return body, trainer.st_trainer.state.log_history


def train_few_shot(task: Task, session, splits: Splits, run: RunFolder, choice: StrategyChoice) -> RunFolder:
    """Train with SetFit in the run's in-progress folder, save an ordinary classification run and evaluate it.

    Args:
        task: the fitted task (labels known), ``session``: the train layer's TrainSession.
        splits: the run's data; ``run``: its in-progress folder; ``choice``: the strategy and why.
    """
    cfg = session.cfg
    learner = check_few_shot(cfg, task, choice)
    shared = session.shared_components(run)  # train.threads, set before the model loads
    body, history = fit_few_shot(cfg, task, learner, splits.train, run,
                                 [cb for c in shared for cb in c.callbacks()] + list(session.extra_callbacks),
                                 session.log)
    session.record_setup(run, splits, body.classifier, [*shared, choice])
    staging = run.path / ".staging-model"
    body.classifier.save_pretrained(str(staging))
    body.tokenizer.save_pretrained(str(staging))
    publish_dir(staging, run.path)
    run.write_task_state(task.name, task.state())
    write_json(run.history, history)
    run.write_test_split(splits.test)
    train_metrics = {k: v for k, v in (history[-1] if history else {}).items() if k.startswith("train_")}
    finalize_run(run, cfg, splits, train_metrics, selection_metric(cfg, task), log=session.log,
                 strategy=choice.summary())
    return run
