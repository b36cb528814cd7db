"""Sequence classification: sentiment, topic, intent; single- or multi-label; text or text pair.

The classifier itself (data, head, metrics, decoding and every capability) is shared with ranking's
cross-encoder, so it lives in ``graftkit/tasks/common/classifier/``; this folder names the task type
and its `task:` section.
"""
from __future__ import annotations

from graftkit.tasks.classification.config import ClassificationConfig
from graftkit.tasks.common.classifier import CAPABILITIES, ClassifierTask


class ClassificationTask(ClassifierTask):
    """One label per text (softmax) or a set of labels per text (sigmoid + per-label threshold)."""

    name = "classification"
    config_class = ClassificationConfig
    capabilities = CAPABILITIES
