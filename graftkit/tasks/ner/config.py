"""Keys of `task:` for `type: ner`: how the model tags, and how the task's data files are read."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from graftkit.config import TaskConfigBase


class NerConfig(TaskConfigBase):
    """Token classification into entity spans.

    ``file_scheme`` is the tag scheme of the data files, ``tag_scheme`` the one the model predicts; the
    file settings were ``data.scheme``, ``data.tag_column``, ``data.strip_segment_digit`` and
    ``data.repair_tags`` before run-folder format 2 (graftkit/tasks/ner/migrate.py moves them here).
    """

    type: Literal["ner"] = "ner"
    crf: bool = Field(False, description="CRF layer (pytorch-crf) over the linear head")
    tag_scheme: Literal["IOB2", "BIOES"] = Field("IOB2", description="tag scheme the model predicts")
    label_all_pieces: bool = Field(False, description="label every subword piece, not only the first")
    window_overlap: int = Field(32, ge=0, description="tokens shared by consecutive windows of a long sentence")
    file_scheme: Literal["auto", "IOB1", "IOB2", "BIO", "BIOES", "BMES"] = Field(
        "auto", description="tag scheme of the data files (auto: detected from the tags)")
    tag_column: int = Field(-1, description="CoNLL files: column of the tag (the token is column 0; -1 = last)")
    strip_segment_digit: bool = Field(False, description="character-per-line files: drop the digits after each "
                                      "character (Weibo NER)")
    repair_tags: bool = Field(False, description="repair invalid tags/spans (each repair is logged) instead of failing")
