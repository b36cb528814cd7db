"""Training switches that change the model or the data before the Trainer is built: augmentation,
freezing, PEFT, per-group learning rates, and the checks of label smoothing, R-Drop and adversarial
training. Each switch that stays active during training is a component (graftkit/train/components.py).

``setup`` runs between loading the pretrained model and building the Trainer; every bad
combination raises ConfigError here, before any training step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from transformers import TrainerCallback, TrainingArguments

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.modeling.peft import adalora_total_steps, head_module_names, parameter_counts, wrap_model
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Augments, TrainsWithTrainer
from graftkit.tasks.run_config import RunConfig
from graftkit.train.adversarial import Adversarial
from graftkit.train.components import Component
from graftkit.train.optim import apply_freeze, optimizer_factory
from graftkit.train.rdrop import RDrop


class AdaLoraSchedule(TrainerCallback):
    """AdaLoRA re-allocates ranks from the gradients after each optimizer step (peft's documented loop)."""

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.peft_model.base_model.update_and_allocate(state.global_step)


class Peft(Component):
    """``peft:``: the model is wrapped before the Trainer is built; AdaLoRA adds its rank schedule."""

    name = "peft"
    keys = ("peft.method", "peft.r", "peft.alpha", "peft.dropout", "peft.target_modules", "peft.num_virtual_tokens",
            "peft.train_pooler", "peft.options")

    def __init__(self, method: str, peft_model):
        self.method, self.peft_model = method, peft_model

    def arguments(self, args) -> dict:
        # AdaLoRA's ranks shrink during training, so an earlier checkpoint no longer fits the live modules:
        # transformers cannot reload the "best" one into them; AdaLoRA runs keep the final weights
        return {"load_best_model_at_end": False} if self.method == "adalora" else {}

    def callbacks(self) -> list[TrainerCallback]:
        return [AdaLoraSchedule(self.peft_model)] if self.method == "adalora" else []

    def record(self) -> dict:
        return {"peft": self.method}


class Augmentation(Component):
    """``augment:``: augmented copies joined the training split (counted in training_setup.json)."""

    name = "augment"
    keys = ("augment.copies", "augment.ops", "augment.rate", "augment.neighbours", "augment.seed")
    needs = Augments

    def __init__(self, counts: dict):
        self.counts = counts

    def record(self) -> dict:
        return {"augment": self.counts}


@dataclass
class Extras:
    """What ``setup`` hands back to the Trainer assembly."""

    model: object
    train: list[Example]
    head_names: list[str]
    components: list[Component] = field(default_factory=list)

    def optimizer(self, cfg: RunConfig, args: TrainingArguments):
        """``optimizer_cls_and_kwargs`` for the Trainer (None: Trainer's default optimizer)."""
        return optimizer_factory(cfg.train, args, self.head_names)


def _check_label_smoothing(cfg: RunConfig, task: Task, model, train: list[Example]) -> None:
    if not cfg.train.label_smoothing:
        return
    recipe = task.capability(TrainsWithTrainer, "train")
    if not recipe.smooths_labels:
        raise ConfigError(f"train.label_smoothing applies to single-label class targets, not to this {task.label()} "
                          "run's targets; set it to 0")
    odd = [n for n, m in model.named_modules() if n.split(".")[0] in head_module_names(model)
           and not list(m.children()) and any(True for _ in m.parameters(recurse=False))
           and not isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm))]
    if odd:  # e.g. a CRF: its loss is not a cross-entropy over the logits
        raise ConfigError(f"train.label_smoothing: the {task.name} head has {', '.join(odd)}, whose loss is not a "
                          "cross-entropy over logits; set train.label_smoothing to 0")
    if recipe.loss_fn(train) is not None:
        raise ConfigError(f"train.label_smoothing: the {task.name} task computes its own loss here (e.g. "
                          "task.class_weights); label smoothing needs the model's cross-entropy, drop one of them")


def _augment(cfg: RunConfig, task: Task, model, tokenizer, train: list[Example], log) -> tuple[list, list]:
    if not cfg.augment:
        return train, []
    augments = task.capability(Augments, "augment")
    train, counts = augments.augment(train, cfg.augment, tokenizer, model.get_input_embeddings().weight)
    log(f"augment: {counts['generated']} generated examples added to {counts['original']} training examples")
    return train, [Augmentation(counts)]


def _peft(cfg: RunConfig, model, tokenizer, n_train: int) -> tuple[object, list]:
    if not cfg.peft:
        return model, []
    t = cfg.train
    total = adalora_total_steps(n_train, t.batch_size, t.grad_accum, t.epochs, t.max_steps)
    model = wrap_model(model, cfg.peft, total, tokenizer("hello world")["input_ids"])
    return model, [Peft(cfg.peft.method, model)]


def setup(cfg: RunConfig, task: Task, model, tokenizer, train: list[Example],
          log: Callable[[str], None] = print) -> Extras:
    """Apply augmentation, freezing and PEFT; check label smoothing, R-Drop and adversarial settings."""
    train, components = _augment(cfg, task, model, tokenizer, train, log)
    _check_label_smoothing(cfg, task, model, train)
    apply_freeze(model, cfg.train)
    head_names = head_module_names(model)
    model, wrapped = _peft(cfg, model, tokenizer, len(train))
    components += wrapped
    if cfg.train.rdrop:
        divergence = task.capability(TrainsWithTrainer, "train").output_divergence
        components.append(RDrop.for_model(cfg.train.rdrop, divergence, model))
    if cfg.train.adversarial:
        components.append(Adversarial.for_model(cfg.train.adversarial, model))
    trainable, total_params = parameter_counts(model)
    log(f"trainable parameters: {trainable:,} of {total_params:,} ({100 * trainable / max(total_params, 1):.2f}%)")
    return Extras(model=model, train=train, head_names=head_names, components=components)
