"""Keys of `task:` for `type: classification`."""
from __future__ import annotations

from typing import Literal

from graftkit.tasks.common.classifier.config import ClassifierConfig


class ClassificationConfig(ClassifierConfig):
    """Sequence classification: one label per text, or a set of labels (multi-label)."""

    type: Literal["classification"] = "classification"
