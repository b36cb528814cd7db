"""The embedding task's capabilities: sentence-transformers training, embedding texts, ranking candidates
by cosine, and its card's usage."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from graftkit.tasks.capabilities import Embeds, Ranks
from graftkit.tasks.common import bi_encoder
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.embedding.train import train_embedding


class EmbeddingTraining(bi_encoder.BiEncoderTraining):
    def train_run(self, cfg, session):
        return train_embedding(self.task, session)


class EmbeddingEmbeds(Embeds):
    def load_encoder(self, run_dir: Path, max_length: int | None = None):
        return bi_encoder.load_model(str(run_dir), max_length=max_length)

    def embed(self, encoder, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return bi_encoder.embed(encoder, texts, batch_size, progress)


class EmbeddingRanks(Ranks):
    """Cosine between the history text's embedding (once per call) and each candidate's."""

    def history_settings(self, max_history: int, separator: str) -> tuple[int, str]:
        return max_history, separator

    def pair_scores(self, runner, history: str, candidates: Sequence[str], batch_size: int) -> np.ndarray:
        vecs = runner.vectors([history] + list(candidates), batch_size)
        return vecs[1:] @ vecs[0]


class EmbeddingCard(StandardCard):
    hub_pipeline = "sentence-similarity"

    def usage(self, run_path: Path) -> list[str]:
        return ["```bash", f"graftkit index {run_path} --corpus faq.csv",
                f"graftkit search {run_path} \"how do I reset my card pin\"", "```", "", "```python",
                "from sentence_transformers import SentenceTransformer",
                f"model = SentenceTransformer('{run_path}')", "```", ""]
