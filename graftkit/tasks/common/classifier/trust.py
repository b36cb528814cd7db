"""The classifier's part of the trust reports and of distillation: explanation target, robustness
flips, label-error scoring (cleanlab) and the teacher/student checks."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch
from scipy.special import expit, softmax

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import AttributionEngine, Distills, FindsLabelErrors
from graftkit.tasks.common.class_labels import check_teacher_labels
from graftkit.tasks.common.explain import SequenceExplains, pick
from graftkit.tasks.common.perturb import TextPerturbs
from graftkit.tasks.common.text import encode_texts

#: cleanlab's default n_jobs forks a multiprocessing.Pool from this process, which by now runs torch's and
#: other threads; a child forked while one of them held a lock never finishes (the suite hung there).
#: The per-class work it would spread is tiny next to the cross-validated training before it.
SERIAL = 1


class ClassifierExplains(SequenceExplains):
    """The calibrated probability of a class (default: the predicted one); multi-label: a label's sigmoid."""

    def target(self, engine: AttributionEngine, inputs: Any, target: str | int | None):
        t = self.task
        pred = engine.predictor.predict([inputs])[0]
        temps = torch.as_tensor(np.broadcast_to(t.temperature, (len(t.labels),)).copy(), dtype=torch.float32,
                                device=engine.device)
        if t.multi_label:
            j = pick(t.labels, target if target is not None else max(pred.scores, key=pred.scores.get), "label")
            return t.labels[j], lambda z: torch.sigmoid(z[:, j] / temps[j])
        j = pick(t.labels, target if target is not None else pred.label, "class")
        return t.labels[j], lambda z: torch.softmax(z / temps[0], dim=-1)[:, j]


class ClassifierPerturbs(TextPerturbs):
    """A flip is another label (or label set)."""

    def changed(self, clean, noisy, example: Example, perturbed) -> float:
        if self.task.multi_label:
            return float(sorted(clean.labels) != sorted(noisy.labels))
        return float(clean.label != noisy.label)


class ClassifierLabelErrors(FindsLabelErrors):
    """cleanlab's confident learning on out-of-fold probabilities (multi-label: its multi-label variant)."""

    def fold_strata(self, rows: Sequence[Example]) -> list | None:
        return None if self.task.multi_label else [e.label for e in rows]

    def class_counts(self, rows: Sequence[Example]) -> Counter:
        return Counter(lab for e in rows for lab in self.label_names(e))

    def probabilities(self, logits: np.ndarray, context: Any, n: int) -> list:
        return list(expit(logits) if self.task.multi_label else softmax(logits, axis=-1))

    def _given(self, e: Example) -> Any:
        l2i = self.task.label2id
        return [l2i[x] for x in e.label] if self.task.multi_label else l2i[e.label]

    def rank(self, rows: Sequence[Example], probs: list) -> tuple[list[int], np.ndarray]:
        from cleanlab.filter import find_label_issues  # heavy optional dependency

        given, pred = [self._given(e) for e in rows], np.stack(probs)
        if self.task.multi_label:
            from cleanlab.multilabel_classification.rank import get_label_quality_scores as multi_scores

            flagged = find_label_issues(given, pred, multi_label=True, return_indices_ranked_by="self_confidence",
                                        n_jobs=SERIAL)
            return list(flagged), np.asarray(multi_scores(given, pred))
        from cleanlab.rank import get_label_quality_scores

        labels = np.asarray(given)
        flagged = find_label_issues(labels, pred, return_indices_ranked_by="self_confidence", n_jobs=SERIAL)
        return list(flagged), np.asarray(get_label_quality_scores(labels, pred))

    def suggested(self, probs: Any) -> str:
        if self.task.multi_label:
            return "|".join(self.task.labels[j] for j in np.flatnonzero(probs >= 0.5))
        return self.task.labels[int(np.argmax(probs))]

    def given_text(self, example: Example) -> str:
        return "|".join(example.label) if self.task.multi_label else example.label

    def label_names(self, example: Example) -> list[str]:
        return list(example.label) if self.task.multi_label else [example.label]


class ClassifierDistills(Distills):
    """Single-label classification distils the sequence logits; unlabelled texts may join training."""

    token_level = False

    def check_student(self) -> None:
        if self.task.multi_label:
            raise ConfigError("train.distill: multi-label classification is not supported (KD here is a softmax KL)")

    def check_teacher(self, teacher_task, where: str) -> None:
        if teacher_task.multi_label:  # sigmoid scores per label: a softmax KL would misread them
            raise ConfigError(f"train.distill.teacher: {where} is a multi-label classification run, the student "
                              "is single-label; a teacher must solve the student's task")
        check_teacher_labels(teacher_task.labels, self.task.labels, where)

    def unlabelled_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        cols = dict(encode_texts([self.task.input_of(e) for e in examples], tokenizer, max_length, padding=False,
                                 return_tensors=None))
        cols["labels"] = [-100] * len(examples)
        return datasets.Dataset.from_dict(cols)
