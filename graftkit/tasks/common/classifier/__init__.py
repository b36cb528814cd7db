"""The classifier shared by classification and ranking's cross-encoder: the task and its capabilities."""
from graftkit.tasks.common.augment import TextAugments
from graftkit.tasks.common.classifier.capabilities import (
    ClassifierCalibration,
    ClassifierCard,
    ClassifierDecoding,
    ClassifierGold,
    ClassifierLabels,
    ClassifierMean,
    ClassifierTraining,
)
from graftkit.tasks.common.classifier.task import ClassifierTask
from graftkit.tasks.common.classifier.trust import (
    ClassifierDistills,
    ClassifierExplains,
    ClassifierLabelErrors,
    ClassifierPerturbs,
)
from graftkit.tasks.common.export import TokenizerGraph

#: what every classifier offers; a task may swap or drop some (ranking drops distillation)
CAPABILITIES = (ClassifierTraining, ClassifierDecoding, ClassifierLabels, ClassifierCalibration, ClassifierMean,
                ClassifierGold, ClassifierCard, ClassifierExplains, ClassifierPerturbs, ClassifierLabelErrors,
                ClassifierDistills, TextAugments, TokenizerGraph)

__all__ = ["CAPABILITIES", "ClassifierTask", "ClassifierCard", "ClassifierDistills", "ClassifierLabelErrors"]
