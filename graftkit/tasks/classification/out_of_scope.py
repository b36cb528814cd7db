"""Classification's out-of-scope detector: which scores it fits, which one flags, and where it is kept.

A run with ``task.out_of_scope`` keeps its detector beside the model: ``out_of_scope.json`` (the flagging
score, its threshold, the scores fitted) and, when a feature score was fitted, ``out_of_scope.safetensors``
(class means, the shared precision matrix, the kNN bank). The scores themselves are
graftkit/modeling/ood.py; graftkit/evaluate/out_of_scope.py fits and chooses them after training.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from graftkit.data.dataset import Example
from graftkit.io import atomic_path, read_json, write_json
from graftkit.tasks.capabilities import DetectsOutOfScope
from graftkit.modeling.ood import FEATURE_DETECTORS, FeatureModel, logit_scores

STATE_FILE, TENSORS_FILE = "out_of_scope.json", "out_of_scope.safetensors"


class ClassificationOutOfScope(DetectsOutOfScope):
    """The detectors of ``task.out_of_scope`` over the classifier's raw logits and pooled features."""

    def __init__(self, task):
        super().__init__(task)
        self.detector: str | None = None
        self.threshold: float | None = None
        self.features_model: FeatureModel | None = None

    @property
    def settings(self):
        return self.task.task_cfg.out_of_scope

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    @property
    def fitted(self) -> bool:
        return self.detector is not None

    @property
    def needs_features(self) -> bool:
        if self.fitted:
            return self.detector in FEATURE_DETECTORS
        return self.enabled and any(d in FEATURE_DETECTORS for d in self.settings.detectors)

    def split_off(self, examples: list[Example]) -> tuple[list[Example], list[Example]]:
        label = self.settings.label if self.enabled else None
        if label is None:
            return list(examples), []
        return [e for e in examples if e.label != label], [e for e in examples if e.label == label]

    def fit(self, logits: np.ndarray, features: np.ndarray | None, examples: list[Example]) -> None:
        if features is None or not any(d in FEATURE_DETECTORS for d in self.settings.detectors):
            self.features_model = None
            return
        ids = np.array([self.task.label2id[e.label] for e in examples])
        self.features_model = FeatureModel.fit(features, ids, len(self.task.labels), self.settings.knn_k,
                                               self.settings.max_bank)

    def scores(self, logits: np.ndarray, features: np.ndarray | None) -> dict[str, np.ndarray]:
        out = logit_scores(logits)
        if self.features_model is not None and features is not None:
            out.update(self.features_model.scores(features))
        wanted = self.settings.detectors if self.enabled else [self.detector]
        return {name: out[name] for name in wanted if name in out}

    def choose(self, detector: str, threshold: float) -> None:
        self.detector, self.threshold = detector, float(threshold)

    @property
    def chosen(self) -> tuple[str, float] | None:
        return (self.detector, self.threshold) if self.fitted else None

    def flag(self, predictions, logits: np.ndarray, features: np.ndarray | None):
        if not self.fitted:
            return predictions
        scores = self.scores(logits, features)[self.detector]
        return [replace(p, out_of_scope=bool(s > self.threshold), out_of_scope_score=float(s))
                for p, s in zip(predictions, scores)]

    def save(self, run_dir: Path) -> None:
        if self.features_model is not None:
            with atomic_path(Path(run_dir) / TENSORS_FILE) as tmp:
                save_file(self.features_model.tensors(), str(tmp))
        write_json(Path(run_dir) / STATE_FILE, {"detector": self.detector, "threshold": self.threshold,
                                                "label": self.settings.label if self.enabled else None,
                                                "detectors": list(self.settings.detectors) if self.enabled else []})

    def load(self, run_dir: Path) -> None:
        """Restore a saved detector (a run without one keeps none)."""
        state = Path(run_dir) / STATE_FILE
        if not state.is_file():
            return
        saved = read_json(state)
        self.detector, self.threshold = saved["detector"], saved["threshold"]
        tensors = Path(run_dir) / TENSORS_FILE
        self.features_model = FeatureModel.from_tensors(load_file(str(tensors))) if tensors.is_file() else None
