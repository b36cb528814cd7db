"""Embedding through a run whose task embeds (``Embeds``): its own encoder turns texts into vectors.

Serving answers ``POST /v1/embed`` with it, ``graftkit predict`` writes the vectors, and the retrieval
index and the recommender embed their corpora with it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graftkit.errors import RunFolderError
from graftkit.inference.base import RunInference
from graftkit.tasks.capabilities import Embeds
from graftkit.tasks.predictions import EmbeddingPrediction


class Embedder(RunInference):
    """``predict_batch(texts) -> [EmbeddingPrediction]`` (unit length) with the run's own encoder.

    Raises:
        UnsupportedError: the run's task does not embed.
        RunFolderError: another backend was asked for.
    """

    def __init__(self, run_dir: str | Path, backend: str = "torch"):
        if backend != "torch":
            raise RunFolderError("an embedding run is served with the torch backend (its encoder is a "
                                 "sentence-transformers model); drop --backend onnx")
        super().__init__(run_dir)
        self.embeds = self.task.capability(Embeds, "predict")
        self.model = self.embeds.load_encoder(self.run.path, self.max_length)
        # renamed in sentence-transformers 6 (the old name warns); older releases have the old name only
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension())

    def input_columns(self) -> tuple[str, str | None]:
        return self.cfg.data.text_column, None  # each text is embedded on its own

    def vectors(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 unit-length vectors, in order."""
        return self.embeds.embed(self.model, list(texts), batch_size, progress)

    def predict_batch(self, inputs: Sequence[Any]) -> list[EmbeddingPrediction]:
        return [EmbeddingPrediction(v.tolist()) for v in self.vectors(inputs, batch_size=max(1, len(inputs)))]
