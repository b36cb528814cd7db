"""Looking inside a model: which modules are its head, which names its linear layers have."""
from __future__ import annotations

import torch


def head_module_names(model: torch.nn.Module) -> list[str]:
    """Top-level modules with parameters outside the pretrained backbone (classifier, CRF, ...)."""
    backbone = getattr(model, "base_model_prefix", "")
    return [name for name, module in model.named_children()
            if name != backbone and any(True for _ in module.parameters())]


def linear_names(model: torch.nn.Module) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
