"""NER's part of the trust reports and of distillation: per-entity explanations, perturbations that
move the gold spans with the text, label errors over word tags (cleanlab's token helpers), and the
teacher checks of token-level distillation."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy.special import softmax

from graftkit.data.dataset import Example
from graftkit.data.perturb import Perturbed, map_spans, perturb
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import (
    AttributionEngine,
    Distills,
    ExplainedBlock,
    Explains,
    FindsLabelErrors,
    Perturbs,
)
from graftkit.tasks.common.class_labels import check_teacher_labels
from graftkit.tasks.common.explain import BASELINE
from graftkit.tasks.ner import postprocess
from graftkit.tasks.ner.preprocess import as_words, word_spans
from graftkit.tasks.ner.schemes import spans_to_tags

#: cleanlab forks no process pool (see graftkit/tasks/common/classifier/trust.py)
SERIAL = 1


def entity_score(positions: list[int], tags: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """f(logits): the mean, over the entity's first pieces, of the probability of its type's tags."""
    def f(z: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(z[:, positions], dim=-1)
        return probs[..., tags].sum(-1).mean(-1)
    return f


def word_attributions(text: str, words, word_ids, attrs: np.ndarray) -> list[dict]:
    """Piece attributions summed per word of the sentence."""
    sums: dict[int, float] = {}
    for pos, wid in enumerate(word_ids):
        if wid is not None:
            sums[wid] = sums.get(wid, 0.0) + float(attrs[pos])
    return [{"text": text[words[i][0]:words[i][1]], "start": words[i][0], "end": words[i][1], "segment": 0,
             "attribution": a} for i, a in sorted(sums.items())]


class NerExplains(Explains):
    """Each predicted entity is explained: f is the mean probability, over its words, of its type's tags."""

    def explain(self, engine: AttributionEngine, text: str, pair: str | None, target: str | int | None,
                steps: int) -> dict[str, Any]:
        text, words = as_words(text)
        enc = engine.tokenizer([text[s:e] for s, e in words], is_split_into_words=True, truncation=True,
                               max_length=engine.max_length)
        word_ids = enc.word_ids()
        out = []
        for ent in engine.predictor.predict([(text, words)])[0].entities:
            inside = {i for i, (s, e) in enumerate(words) if s < ent.end and e > ent.start}
            positions = [p for p, w in enumerate(word_ids) if w in inside and (p == 0 or word_ids[p - 1] != w)]
            tags = [i for i, lab in enumerate(self.task.labels) if lab != "O" and lab.split("-", 1)[-1] == ent.label]
            res = engine.attribute(enc, entity_score(positions, tags), steps)
            attrs = res.pop("attrs")
            out.append({**ent.to_dict(), **res, "words": word_attributions(text, words, word_ids, attrs)})
        return {"task": self.task.name, "steps": max((e["steps"] for e in out), default=steps), "baseline": BASELINE,
                "entities": out, "truncated": len(set(w for w in word_ids if w is not None)) < len(words)}

    def blocks(self, explanation: dict[str, Any]) -> list[ExplainedBlock]:
        if not explanation["entities"]:
            return [ExplainedBlock("No entities predicted.", [])]
        return [ExplainedBlock(f"{e['text']} — {e['label']} ({e['score']:.3f})", e["words"], e["delta"], e["steps"],
                               e["converged"]) for e in explanation["entities"]]


class NerPerturbs(Perturbs):
    """Gold spans and word offsets move with the text; a flip is another entity set (the clean one's
    offsets mapped onto the perturbed text)."""

    def perturb(self, example: Example, name: str, seed: int, key: int, rate: float) -> tuple[Example, Perturbed]:
        words = example.extra["words"]
        p = perturb(example.text, name, seed, key, rate, words=words)
        kept = [w for w in p.words if w[1] > w[0]]
        spans = map_spans(example.label or [], words, p) if example.label is not None else None
        return replace(example, text=p.text, label=spans, extra={**example.extra, "words": kept}), p

    def changed(self, clean, noisy, example: Example, perturbed: Perturbed) -> float:
        moved = {tuple(s) for s in map_spans([[x.start, x.end, x.label] for x in clean.entities],
                                             example.extra.get("words"), perturbed)}
        return float(moved != {(x.start, x.end, x.label) for x in noisy.entities})


class NerLabelErrors(FindsLabelErrors):
    """Sentences ranked by cleanlab's token-classification helpers (a sentence scores as its worst word)."""

    def fold_strata(self, rows: Sequence[Example]) -> list | None:
        return None

    def class_counts(self, rows: Sequence[Example]) -> Counter:
        return Counter(s[2] for e in rows for s in e.label)

    def probabilities(self, logits: np.ndarray, context: Any, n: int) -> list:
        _, windows = context
        return [softmax(scores, axis=-1) for _, scores in postprocess.stitch(logits, windows, n)]

    def _given(self, e: Example) -> list[int]:
        words, l2i = e.extra["words"], self.task.label2id
        return [l2i[t] for t in spans_to_tags(len(words), word_spans(e.label, words), self.task.scheme)]

    def rank(self, rows: Sequence[Example], probs: list) -> tuple[list[int], np.ndarray]:
        from cleanlab.token_classification.filter import find_label_issues  # heavy optional dependency
        from cleanlab.token_classification.rank import get_label_quality_scores

        # a sentence's units may be fewer than its words when the tokenizer truncated it: compare the units scored
        given = [self._given(e)[:len(p)] for e, p in zip(rows, probs)]
        scores, _ = get_label_quality_scores(given, probs)
        flagged = sorted({s for s, _ in find_label_issues(given, probs, n_jobs=SERIAL)}, key=lambda s: scores[s])
        return flagged, np.asarray(scores)

    def suggested(self, probs: Any) -> str:
        return ""

    def given_text(self, example: Example) -> str:
        return "; ".join(f"{example.text[s:t]}={typ}" for s, t, typ in example.label)

    def label_names(self, example: Example) -> list[str]:
        return sorted({s[2] for s in example.label}) or ["O"]


class NerDistills(Distills):
    """Token-level KD at the labelled positions (the first piece of each word), the positions the metric
    counts; with a CRF head these are its emission scores."""

    token_level = True

    def check_student(self) -> None:
        return None

    def check_teacher(self, teacher_task, where: str) -> None:
        if teacher_task.all_pieces != self.task.all_pieces:  # KD reads the teacher at the student's pieces
            raise ConfigError(f"train.distill.teacher: {where} has task.label_all_pieces={teacher_task.all_pieces}, "
                              f"the student {self.task.all_pieces}; set the student's to the teacher's")
        check_teacher_labels(teacher_task.labels, self.task.labels, where)

    def unlabelled_dataset(self, examples: list[Example], tokenizer, max_length: int):
        raise ConfigError("train.distill.unlabelled: ner learns from labelled sentences only (soft labels for "
                          "unlabelled text are supported for classification); remove it")
