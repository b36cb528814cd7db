"""Training switches that are not part of the plain path: augmentation, freezing, PEFT,
per-group learning rates, label smoothing / R-Drop checks and adversarial training.

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
from graftkit.io import write_json
from graftkit.modeling.peft import adalora_total_steps, head_module_names, parameter_counts, wrap_model
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Augments, TrainsWithTrainer
from graftkit.tasks.run_config import RunConfig
from graftkit.train.adversarial import EmbeddingAttack
from graftkit.train.distributed import is_main_process
from graftkit.train.optim import apply_freeze, optimizer_factory


class AdaLoraSchedule(TrainerCallback):
    """AdaLoRA re-allocates ranks from the gradients after each optimizer step (peft's documented loop)."""

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def on_train_begin(self, args, state, control, **kwargs):
        # ranks shrink during training, so an earlier checkpoint no longer fits the live modules:
        # transformers cannot reload the "best" one into them; AdaLoRA runs keep the final weights
        args.load_best_model_at_end = False

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.peft_model.base_model.update_and_allocate(state.global_step)


@dataclass
class Extras:
    """What ``setup`` hands back to the Trainer assembly."""

    model: object
    train: list[Example]
    head_names: list[str]
    callbacks: list = field(default_factory=list)
    adversary: EmbeddingAttack | None = None

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


def setup(cfg: RunConfig, task: Task, model, tokenizer, train: list[Example], run: RunFolder,
          log: Callable[[str], None] = print) -> Extras:
    """Apply augmentation, freezing and PEFT; validate label smoothing and adversarial settings."""
    info: dict = {}
    if cfg.augment:
        augments = task.capability(Augments, "augment")
        train, counts = augments.augment(train, cfg.augment, tokenizer, model.get_input_embeddings().weight)
        info["augment"] = counts
        log(f"augment: {counts['generated']} generated examples added to {counts['original']} training examples")
    _check_label_smoothing(cfg, task, model, train)
    apply_freeze(model, cfg.train)
    head_names = head_module_names(model)
    callbacks = []
    if cfg.peft:
        t = cfg.train
        total = adalora_total_steps(len(train), t.batch_size, t.grad_accum, t.epochs, t.max_steps)
        dummy = tokenizer("hello world")["input_ids"]
        model = wrap_model(model, cfg.peft, total, dummy)
        if cfg.peft.method == "adalora":
            callbacks.append(AdaLoraSchedule(model))
    if cfg.train.rdrop and not any(m.p > 0 for m in model.modules() if isinstance(m, torch.nn.Dropout)):
        raise ConfigError("train.rdrop: R-Drop compares two dropout passes, but this model has no active dropout "
                          "(model.dropout is 0); set model.dropout > 0 or train.rdrop to 0")
    adversary = None
    if cfg.train.adversarial:
        adversary = EmbeddingAttack(cfg.train.adversarial)
        adversary.weight(model)  # frozen embeddings: fail now, not at step 1
    trainable, total_params = parameter_counts(model)
    info.update(trainable_parameters=trainable, total_parameters=total_params)
    log(f"trainable parameters: {trainable:,} of {total_params:,} ({100 * trainable / max(total_params, 1):.2f}%)")
    if is_main_process():  # under torchrun only rank 0 writes the run folder
        write_json(run.path / "training_setup.json", info)
    return Extras(model=model, train=train, head_names=head_names, callbacks=callbacks, adversary=adversary)
