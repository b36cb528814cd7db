"""Freezing parts of the backbone and per-group learning rates (layer-wise decay, head LR).

The optimizer itself is still the one TrainingArguments names; only its parameter groups
change, through the factory form of ``Trainer(optimizer_cls_and_kwargs=...)``.
"""
from __future__ import annotations

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import get_parameter_names

from graftkit.config import TrainConfig
from graftkit.errors import ConfigError

#: the config keys freezing and the optimiser's parameter groups consume
OPTIMIZER_KEYS = ("train.freeze.embeddings", "train.freeze.layers", "train.layer_lr_decay", "train.head_learning_rate")

#: the parameters transformers' Trainer excludes from weight decay (its get_decay_parameter_names rule),
#: restated through the public helper rather than by calling that method without a Trainer
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def decay_parameter_names(model) -> set[str]:
    """Names of the parameters that get weight decay: not biases, not normalisation weights."""
    return set(get_parameter_names(model, [torch.nn.LayerNorm], NO_DECAY_PATTERNS))


def _backbone(model: torch.nn.Module) -> torch.nn.Module:
    if hasattr(model, "get_base_model"):  # peft wrapper
        model = model.get_base_model()
    return getattr(model, getattr(model, "base_model_prefix", ""), model)


def embedding_module(model: torch.nn.Module) -> torch.nn.Module:
    """The backbone's whole embedding block (word, position, type, norm) or just the word embeddings."""
    backbone = _backbone(model)
    emb = getattr(backbone, "embeddings", None)
    return emb if isinstance(emb, torch.nn.Module) else model.get_input_embeddings()


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of transformer blocks (bert.encoder.layer, gpt2.h, distilbert.transformer.layer, ...)."""
    backbone = _backbone(model)
    n = getattr(getattr(backbone, "config", None), "num_hidden_layers", None)
    lists = [m for m in backbone.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 0]
    for m in lists:
        if n is None or len(m) == n:
            return m
    raise ConfigError(f"train.freeze / train.layer_lr_decay: cannot find the layer stack of {type(backbone).__name__}")


def apply_freeze(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Set requires_grad=False on the embeddings and/or the first ``freeze.layers`` layers."""
    if cfg.freeze.embeddings:
        embedding_module(model).requires_grad_(False)
    if cfg.freeze.layers:
        layers = transformer_layers(model)
        if cfg.freeze.layers > len(layers):
            raise ConfigError(f"train.freeze.layers: {cfg.freeze.layers} is more than the model's {len(layers)} layers")
        for layer in layers[:cfg.freeze.layers]:
            layer.requires_grad_(False)


def needs_param_groups(cfg: TrainConfig) -> bool:
    return cfg.layer_lr_decay != 1.0 or cfg.head_learning_rate is not None


def learning_rates(model: torch.nn.Module, cfg: TrainConfig, head_names: list[str]) -> dict[int, float]:
    """Learning rate per parameter (by id): embeddings = layer 0, layer l of L gets lr * decay**(L - l)."""
    lr, decay = cfg.learning_rate, cfg.layer_lr_decay
    rates: dict[int, float] = {}
    if decay != 1.0:
        layers = transformer_layers(model)
        depth = len(layers)
        for p in embedding_module(model).parameters():
            rates[id(p)] = lr * decay ** depth
        for i, layer in enumerate(layers, start=1):
            for p in layer.parameters():
                rates[id(p)] = lr * decay ** (depth - i)
    head_lr = cfg.head_learning_rate or lr
    for name, p in model.named_parameters():
        if any(h in name.split(".") for h in head_names):
            rates[id(p)] = head_lr
    return rates


class GroupedOptimizer:
    """Optimizer factory for ``Trainer(optimizer_cls_and_kwargs=(GroupedOptimizer, kwargs))``.

    Trainer calls ``GroupedOptimizer()(model, **kwargs)``; parameters are grouped by
    (learning rate, weight decay) and handed to the optimizer class TrainingArguments selects.
    """

    def __call__(self, model, *, train_cfg: TrainConfig, args: TrainingArguments, head_names: list[str]):
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
        decay_names = decay_parameter_names(model)
        rates = learning_rates(model, train_cfg, head_names)
        groups: dict[tuple[float, float], list] = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            key = (rates.get(id(p), train_cfg.learning_rate), args.weight_decay if name in decay_names else 0.0)
            groups.setdefault(key, []).append(p)
        param_groups = [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
        return optimizer_cls(param_groups, **optimizer_kwargs)


def optimizer_factory(cfg: TrainConfig, args: TrainingArguments, head_names: list[str]):
    """``optimizer_cls_and_kwargs`` for the Trainer, or None when one learning rate fits all."""
    if not needs_param_groups(cfg):
        return None
    return GroupedOptimizer, {"train_cfg": cfg, "args": args, "head_names": head_names}
