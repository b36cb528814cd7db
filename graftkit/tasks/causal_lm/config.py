"""Keys of `task:` for `type: causal_lm` (supervised fine-tuning of decoder-only models)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.tasks.common.generation.config import GenerativeConfig


class CausalLmConfig(GenerativeConfig):
    """GPT-2, Llama, Qwen, ... (any AutoModelForCausalLM): the loss counts completion tokens only."""

    type: Literal["causal_lm"] = "causal_lm"
    row_format: Literal["auto", "prompt_completion", "text", "chat"] = Field(
        "auto", description="auto: chat when the messages column exists, else prompt/completion, else text")
    messages_column: str = Field("messages", description="chat rows: list of {role, content}")
    prompt_truncation: Literal["keep_end", "error"] = Field(
        "keep_end", description="a prompt too long for data.max_length: drop its start (keep_end) or fail; "
        "the completion is never cut (a completion that does not fit is an error)")
    packing: bool = Field(False, description="pack short examples into data.max_length rows (trl's best-fit "
                          "packing); position_ids restart at each example so they do not attend to each other")
