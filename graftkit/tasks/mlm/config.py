"""Keys of `task:` for `type: mlm` (masked-language-model pre-training on unlabelled text)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class MlmConfig(TaskConfigBase):
    """Continued pre-training of an encoder (BERT, RoBERTa, MiniLM, ...) with its masked-LM head."""

    type: Literal["mlm"] = "mlm"
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="share of words (or tokens) masked per text")
    whole_word_mask: bool = Field(True, description="mask every piece of a chosen word together; Chinese words "
                                  "come from jieba, other text splits on spaces and punctuation")
    top_k: int = Field(5, ge=1, le=100, description="predict: candidates listed for each [MASK] in the input")
