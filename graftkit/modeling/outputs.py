"""Reading a model's forward output, whatever its type."""
from __future__ import annotations

import torch


def output_logits(out) -> torch.Tensor:
    """The logits of a model output (a ModelOutput, or a plain tuple whose first item they are)."""
    return out.logits if hasattr(out, "logits") else out[0]
