"""Sequence classification: sentiment, topic, intent; single- or multi-label; text or text pair.

The classifier itself (data, head, metrics, decoding and most capabilities) is shared with ranking's
cross-encoder, so it lives in ``graftkit/tasks/common/classifier/``; this folder names the task type, its
`task:` section and what only classification has: the out-of-scope detector (``out_of_scope.py``) and learning from few labels
(``few_shot.py``) and self-training (``self_training.py``).
"""
from __future__ import annotations

from pathlib import Path

from graftkit.tasks.capabilities import DetectsOutOfScope
from graftkit.tasks.classification.config import ClassificationConfig
from graftkit.tasks.classification.few_shot import ClassificationFewShot
from graftkit.tasks.classification.out_of_scope import ClassificationOutOfScope
from graftkit.tasks.classification.self_training import ClassificationSelfTraining
from graftkit.tasks.common.classifier import CAPABILITIES, ClassifierTask


class ClassificationTask(ClassifierTask):
    """One label per text (softmax) or a set of labels per text (sigmoid + per-label threshold); optionally an
    out-of-scope detector (``task.out_of_scope``)."""

    name = "classification"
    config_class = ClassificationConfig
    capabilities = CAPABILITIES + (ClassificationOutOfScope, ClassificationFewShot, ClassificationSelfTraining)

    def bind_run(self, run_dir: Path, load_member) -> None:
        """The run's out-of-scope detector, when it has one."""
        self.capability(DetectsOutOfScope, "predict").load(run_dir)
