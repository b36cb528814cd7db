"""Keys of `task:` for `type: embedding` (none beyond the type: pairs vs labels come from `data`)."""
from __future__ import annotations

from typing import Literal

from graftkit.config import TaskConfigBase


class EmbeddingConfig(TaskConfigBase):
    """A bi-encoder trained with in-batch negatives (sentence-transformers)."""

    type: Literal["embedding"] = "embedding"
