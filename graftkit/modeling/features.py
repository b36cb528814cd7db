"""The features a classifier's logits are read from: the input of its output layer.

For a sequence classifier that is the pooled vector the last linear layer maps to one score per label
(BERT: the pooler's output; RoBERTa: its head's dense + tanh). Out-of-scope detectors (Mahalanobis, k
nearest neighbours) and objectives that shape the feature space read them; a forward pre-hook keeps them,
so the model itself is unchanged and an exported graph can return them beside the logits.
"""
from __future__ import annotations

import torch

from graftkit.errors import GraftkitError


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The linear layer that produces the model's ``num_labels`` logits (the last such layer: under PEFT the
    trained copy of a head comes after the original it wraps)."""
    n = getattr(getattr(model, "config", None), "num_labels", None)
    found = [m for _, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.out_features == n]
    if not found:
        raise GraftkitError(f"{type(model).__name__} has no linear output layer with num_labels={n} outputs; "
                            "its features cannot be read")
    return found[-1]


class FeatureTap:
    """While open, keeps the input of ``model``'s output layer from each forward pass (``value``)."""

    def __init__(self, model: torch.nn.Module):
        self.layer = output_layer(model)
        self.value: torch.Tensor | None = None
        self._handle = None

    def __enter__(self) -> "FeatureTap":
        self._handle = self.layer.register_forward_pre_hook(self._keep)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def _keep(self, module, args) -> None:
        self.value = args[0]


def output_layer_name(model: torch.nn.Module) -> str:
    """The dotted module name of ``output_layer(model)`` (``classifier``, ``classifier.out_proj``, ...)."""
    layer = output_layer(model)
    return next(name for name, module in model.named_modules() if module is layer)


def replace_module(model: torch.nn.Module, name: str, module: torch.nn.Module) -> torch.nn.Module:
    """Put ``module`` at dotted ``name`` inside ``model``; returns the module that was there."""
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, module)
    return old
