"""Texts → unit-length embeddings (so inner product = cosine similarity)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def embed(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """(n, dim) float32 L2-normalised embeddings from a ``SentenceTransformer``."""
    vecs = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=progress)
    return np.ascontiguousarray(vecs, dtype=np.float32)
