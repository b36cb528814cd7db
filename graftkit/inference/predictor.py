"""Prediction through logits: the path of every run whose task decodes logits (``DecodesLogits``).

The task turns inputs into numpy features and logits back into typed predictions; a backend only
maps features to logits, so a torch model and an exported ONNX graph are interchangeable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from graftkit.errors import UnsupportedError
from graftkit.inference import onnx_backend  # noqa: F401  registers the "onnx" backend
from graftkit.inference.backends import BACKENDS
from graftkit.inference.base import RunInference, load_run_config, load_task
from graftkit.tasks.capabilities import DecodesLogits
from graftkit.tasks.predictions import Prediction

__all__ = ["Predictor", "load_run_config", "load_task"]


class Predictor(RunInference):
    """Load a run folder once, then predict on any number of inputs.

    Args:
        run_dir: a finished run folder whose task decodes logits.
        backend: a name in ``BACKENDS`` ("torch"; "onnx" once exported).

    Raises:
        UnsupportedError: the run's task does not predict through logits (it generates or embeds).
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch", **backend_kwargs: Any):
        super().__init__(run_dir)
        if not self.task.has(DecodesLogits):
            raise UnsupportedError(f"{self.run.path} is a {self.task.label()} run: it does not predict through a "
                                   "logits backend (torch or onnx, --ray); `graftkit predict` without --ray, "
                                   "`graftkit serve` and graftkit.inference.open_run serve it")
        self.decoding = self.task.capability(DecodesLogits, "predict")
        self.backend_name = backend
        self.backend = BACKENDS.get(backend)(self.run.path, self.task, **backend_kwargs)

    def features(self, inputs: Sequence[Any]):
        """(numpy features, decoding context) of one batch."""
        return self.decoding.encode(inputs, self.tokenizer, self.max_length)

    def predict_batch(self, inputs: Sequence[Any]) -> list[Prediction]:
        if not inputs:
            return []
        features, ctx = self.features(inputs)
        return self.decoding.decode(self.backend(features), ctx)
