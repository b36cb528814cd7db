"""Keys of `task:` for `type: ner`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class NerConfig(TaskConfigBase):
    """Token classification into entity spans."""

    type: Literal["ner"] = "ner"
    crf: bool = Field(False, description="CRF layer (pytorch-crf) over the linear head")
    tag_scheme: Literal["IOB2", "BIOES"] = Field("IOB2", description="tag scheme the model predicts")
    label_all_pieces: bool = Field(False, description="label every subword piece, not only the first")
    window_overlap: int = Field(32, ge=0, description="tokens shared by consecutive windows of a long sentence")
