"""Keys of `task:` for `type: classification`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from graftkit.config import _Strict
from graftkit.tasks.common.classifier.config import ClassifierConfig
from graftkit.tasks.common.ood import DETECTORS


class OutOfScopeConfig(_Strict):
    """`task.out_of_scope`: fit out-of-scope detectors after training; predictions then say whether an input
    is out of scope (graftkit/tasks/common/ood.py describes the scores)."""

    label: str | None = Field(None, description="rows with this label are out-of-scope examples, not a class to "
                              "learn: validation's choose the detector and threshold, test's report them")
    detectors: list[Literal[DETECTORS]] = Field(list(DETECTORS), description="the scores fitted and reported")
    detector: Literal[("auto", *DETECTORS)] = Field(
        "auto", description="the score that flags: auto = the best on validation (most out-of-scope recall at "
        "target_in_scope_accuracy) when validation has out-of-scope rows, else mahalanobis")
    target_in_scope_accuracy: float = Field(0.9, gt=0.0, le=1.0, description="with out-of-scope validation rows: "
                                            "the threshold flags the most of them while in-scope accuracy stays "
                                            "at least this")
    keep_in_scope: float = Field(0.95, gt=0.0, lt=1.0, description="without out-of-scope validation rows: the "
                                 "threshold keeps this share of in-scope validation questions")
    knn_k: int = Field(1, ge=1, description="knn: the k-th nearest training feature")
    max_bank: int = Field(10000, ge=1, description="knn: training features kept (a seeded sample)")

    @model_validator(mode="after")
    def _detector_is_fitted(self) -> "OutOfScopeConfig":
        if self.detector != "auto" and self.detector not in self.detectors:
            raise ValueError(f"detector {self.detector!r} is not among detectors {self.detectors}")
        return self


class ClassificationConfig(ClassifierConfig):
    """Sequence classification: one label per text, or a set of labels (multi-label)."""

    type: Literal["classification"] = "classification"
    out_of_scope: OutOfScopeConfig | None = Field(None, description="fit out-of-scope detectors (single-label)")

    @model_validator(mode="after")
    def _single_label(self) -> "ClassificationConfig":
        if self.out_of_scope is not None and self.multi_label:
            raise ValueError("out_of_scope needs single-label classification (multi_label is true)")
        return self
