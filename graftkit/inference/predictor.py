"""Inference over a run folder: the one path used by evaluate, predict and the HTTP service.

The task turns inputs into numpy features and logits back into predictions; a backend only
maps features to logits, so a torch model and an exported ONNX graph are interchangeable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml
from transformers import AutoTokenizer

from graftkit.inference import onnx_backend  # noqa: F401  registers the "onnx" backend
from graftkit.inference.backends import BACKENDS
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS, build_task
from graftkit.tasks.base import Task
from graftkit.tasks.run_config import RunConfig, config_from_dict


def load_run_config(run: RunFolder) -> RunConfig:
    return config_from_dict(yaml.safe_load(run.config.read_text(encoding="utf-8")), str(run.config))


def load_task(run: RunFolder, cfg: RunConfig | None = None) -> Task:
    """The task of a run folder with its fitted state restored."""
    cfg = cfg or load_run_config(run)
    state = run.task_state()
    kind = state.get("task", cfg.task.type)
    task_cfg = cfg.task if kind == cfg.task.type else TASKS.config_class(kind)()
    task = build_task(task_cfg, cfg.data)
    task.load_state(state)
    task.bind_run(run.path, lambda member: load_task(RunFolder(member)))
    return task


class Predictor:
    """Load a run folder once, then predict on any number of inputs.

    Args:
        run_dir: a finished run folder.
        backend: a name in ``BACKENDS`` ("torch"; "onnx" once exported).
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch", **backend_kwargs: Any):
        self.run = RunFolder(run_dir).require_model()
        self.cfg = load_run_config(self.run)
        self.task = load_task(self.run, self.cfg)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.run.path))
        self.max_length = self.cfg.data.max_length
        self.backend_name = backend
        self.backend = BACKENDS.get(backend)(self.run.path, self.task, **backend_kwargs)

    def predict_batch(self, inputs: Sequence[Any]) -> list[dict]:
        """Predictions for one batch, in input order."""
        if not inputs:
            return []
        features, ctx = self.task.encode(inputs, self.tokenizer, self.max_length)
        return self.task.decode(self.backend(features), ctx)

    def predict(self, inputs: Sequence[Any], batch_size: int = 64,
                progress: Callable[[int], None] | None = None) -> list[dict]:
        """Predictions in input order; batches are formed from inputs of similar length (less padding)."""
        order = sorted(range(len(inputs)), key=lambda i: _length(inputs[i]))
        results: list[dict | None] = [None] * len(inputs)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for i, r in zip(idx, self.predict_batch([inputs[i] for i in idx])):
                results[i] = r
            if progress:
                progress(len(idx))
        return results  # type: ignore[return-value]

    def iter_predict(self, inputs: Iterable[Any], batch_size: int = 64) -> Iterable[tuple[Any, dict]]:
        """Stream (input, prediction) pairs with bounded memory."""
        buf: list[Any] = []
        for x in inputs:
            buf.append(x)
            if len(buf) == batch_size:
                yield from zip(buf, self.predict_batch(buf))
                buf = []
        if buf:
            yield from zip(buf, self.predict_batch(buf))


def _length(x: Any) -> int:
    return sum(len(s) for s in x) if isinstance(x, (tuple, list)) else len(x)


