"""Keys of `task:` for `type: seq2seq` (encoder–decoder models)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.tasks.common.generation.config import GenerativeConfig


class Seq2SeqConfig(GenerativeConfig):
    """T5 / BART / mT5 (any AutoModelForSeq2SeqLM), or an encoder checkpoint warm-started as BERT2BERT."""

    type: Literal["seq2seq"] = "seq2seq"
    row_format: Literal["auto", "prompt_completion"] = "auto"
    messages_column: str = Field("messages", description="unused: seq2seq rows are prompt/completion pairs")
    max_target_length: int | None = Field(None, ge=4, le=8192, description="longest target in tokens (default "
                                          "data.max_length); a longer target is an error, never cut")
    prompt_truncation: Literal["keep_end", "error"] = Field(
        "keep_end", description="a source longer than data.max_length: drop its start (keep_end) or fail")
