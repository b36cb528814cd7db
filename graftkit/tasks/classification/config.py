"""Keys of `task:` for `type: classification`."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from graftkit.config import _Strict
from graftkit.tasks.common.classifier.config import ClassifierConfig
from graftkit.modeling.ood import DETECTORS


class OutOfScopeConfig(_Strict):
    """`task.out_of_scope`: fit out-of-scope detectors after training; predictions then say whether an input
    is out of scope (graftkit/modeling/ood.py describes the scores)."""

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
    # training that helps the detectors (graftkit/train/feature_objectives.py, graftkit/train/outlier_exposure.py)
    objective: Literal["margin", "contrastive"] | None = Field(
        None, description="a term on the pooled features (the output layer's input) added to the classification "
        "loss: margin = large-margin cosine loss (Lin & Xu 2019), contrastive = supervised contrastive (Khosla et "
        "al. 2020)")
    objective_weight: float = Field(1.0, gt=0.0, description="the objective's weight beside the classification loss")
    margin: float = Field(0.35, ge=0.0, le=1.0, description="objective margin: m, subtracted from the gold class's "
                          "cosine")
    scale: float = Field(30.0, gt=0.0, description="objective margin: s, the scale of the cosines")
    temperature: float = Field(0.1, gt=0.0, description="objective contrastive: τ of the feature similarities")
    outlier_exposure: Literal["uniform", "energy"] | None = Field(
        None, description="train the out-of-scope training rows (label) too: uniform = toward a uniform softmax "
        "(Hendrycks et al. 2019), energy = energy margins (Liu et al. 2020)")
    outlier_weight: float | None = Field(None, gt=0.0, description="outlier exposure's weight; null: 0.5 for "
                                         "uniform, 0.1 for energy (the papers' values)")
    energy_in: float = Field(-25.0, description="outlier_exposure energy: m_in, in-scope energies above it are "
                             "penalised (the paper's value for image classifiers; energy = -logsumexp(logits))")
    energy_out: float = Field(-7.0, description="outlier_exposure energy: m_out, out-of-scope energies below it "
                              "are penalised")

    @model_validator(mode="after")
    def _detector_is_fitted(self) -> "OutOfScopeConfig":
        if self.detector != "auto" and self.detector not in self.detectors:
            raise ValueError(f"detector {self.detector!r} is not among detectors {self.detectors}")
        return self

    @model_validator(mode="after")
    def _training_settings_apply(self) -> "OutOfScopeConfig":
        for name, (switch, choices) in APPLIES.items():  # off its default, a setting no choice reads is a mistake
            value = getattr(self, name)
            if value != type(self).model_fields[name].default and getattr(self, switch) not in choices:
                raise ValueError(f"{name} applies to {switch}: {' or '.join(choices)} (it is "
                                 f"{getattr(self, switch)}); remove {name}")
        if self.outlier_exposure is not None and self.label is None:
            raise ValueError("outlier_exposure trains the out-of-scope training rows: set label to the label that "
                             "marks them")
        if self.energy_in >= self.energy_out:
            raise ValueError(f"energy_in ({self.energy_in}) must be below energy_out ({self.energy_out}): in-scope "
                             "rows are trained to a lower energy than out-of-scope rows")
        return self


#: a training setting → (the switch, the choices that read it)
APPLIES = {"objective_weight": ("objective", ("margin", "contrastive")), "margin": ("objective", ("margin",)),
           "scale": ("objective", ("margin",)), "temperature": ("objective", ("contrastive",)),
           "outlier_weight": ("outlier_exposure", ("uniform", "energy")),
           "energy_in": ("outlier_exposure", ("energy",)), "energy_out": ("outlier_exposure", ("energy",))}


class ClassificationConfig(ClassifierConfig):
    """Sequence classification: one label per text, or a set of labels (multi-label)."""

    type: Literal["classification"] = "classification"
    out_of_scope: OutOfScopeConfig | None = Field(None, description="fit out-of-scope detectors (single-label)")

    @model_validator(mode="after")
    def _single_label(self) -> "ClassificationConfig":
        if self.out_of_scope is not None and self.multi_label:
            raise ValueError("out_of_scope needs single-label classification (multi_label is true)")
        return self
