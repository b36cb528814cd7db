"""Serving an embedding run: a Predictor-shaped adapter whose predictions are vectors.

An embedding run has no labels, so ``Predictor`` refuses it; the service loads this adapter
instead and answers ``POST /v1/embed`` (``/v1/predict`` then answers 400 pointing there).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from graftkit.inference.predictor import load_run_config, load_task
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.embedding.head import load_model
from graftkit.tasks.embedding.postprocess import embed


def is_embedding_run(run_dir: str | Path) -> bool:
    """True for a finished run of task type ``embedding``."""
    return RunFolder(run_dir).task_state().get("task") == "embedding"


class Embedder:
    """``predict_batch(texts) -> [{"embedding": [floats]}]`` (unit length) with the run's own encoder."""

    def __init__(self, run_dir: str | Path):
        # inference and sentence-transformers pull in torch: imported when a model loads, not with the app

        self.run = RunFolder(run_dir).require_model()
        self.cfg = load_run_config(self.run)
        self.task = load_task(self.run, self.cfg)
        self.model = load_model(str(self.run.path), max_length=self.cfg.data.max_length)
        self.dimension = int(self.model.get_sentence_embedding_dimension())

    def predict_batch(self, texts: Sequence[str]) -> list[dict]:
        """One unit-length vector per text, in order."""
        vectors = embed(self.model, list(texts), batch_size=max(1, len(texts)))
        return [{"embedding": v.tolist()} for v in vectors]
