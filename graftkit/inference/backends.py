"""Inference back-ends: a backend maps numpy features to logits, so torch and ONNX are interchangeable."""
from __future__ import annotations

import inspect
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from graftkit.inference.run_model import load_run_model
from graftkit.modeling.features import FeatureTap
from graftkit.modeling.outputs import output_logits
from graftkit.registry import Registry
from graftkit.tasks.base import Task

BACKENDS = Registry("inference backend")


@BACKENDS.register("torch")
class TorchBackend:
    """Runs the run folder's model (full, adapter, bottleneck or ensemble) with torch."""

    def __init__(self, run_dir: Path, task: Task, device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = load_run_model(run_dir, task).to(self.device).eval()
        self.accepts = set(inspect.signature(self.model.forward).parameters)

    def __call__(self, features: dict[str, np.ndarray]) -> np.ndarray:
        return self.outputs(features)[0]

    def outputs(self, features: dict[str, np.ndarray],
                with_features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(logits, the model's features — the input of its output layer — when ``with_features``)."""
        batch = {k: torch.as_tensor(v).to(self.device) for k, v in features.items() if k in self.accepts}
        with torch.inference_mode(), (FeatureTap(self.model) if with_features else nullcontext()) as tap:
            out = self.model(**batch)
        feats = tap.value.float().cpu().numpy() if with_features else None
        return output_logits(out).float().cpu().numpy(), feats
