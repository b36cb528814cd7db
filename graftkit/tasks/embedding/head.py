"""The bi-encoder: a sentence-transformers model (backbone + pooling) and its in-batch-negatives loss."""
from __future__ import annotations

import logging

from graftkit.config import ModelConfig
from graftkit.errors import ConfigError
from graftkit.modeling.load import resolve_model_path


def load_model(cfg: ModelConfig | str, max_length: int | None = None, device: str | None = None):
    """A ``SentenceTransformer`` from a sentence-transformers folder, a plain transformers encoder
    (mean pooling is added), a hub id, ``bundled:minilm`` or a finished embedding run folder."""
    from sentence_transformers import SentenceTransformer

    name = cfg if isinstance(cfg, str) else cfg.name_or_path
    path = resolve_model_path(name)
    revision = None if isinstance(cfg, str) else cfg.revision
    st_log = logging.getLogger("sentence_transformers")
    level = st_log.level
    st_log.setLevel(logging.ERROR)  # "no sentence-transformers model found, creating mean pooling" is expected
    try:
        model = SentenceTransformer(path, device=device, revision=revision)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.name_or_path: cannot load '{name}' as a sentence embedder: {err}") from None
    finally:
        st_log.setLevel(level)
    if max_length:
        model.max_seq_length = max_length
    return model


def make_loss(model, scale: float = 20.0):
    """sentence-transformers' MultipleNegativesRankingLoss: every other positive in the batch is a negative."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=scale)
