"""Explanations of whole-sequence predictions (a class, a label, a target value), shared by the task
folders whose prediction is one score per input; the attribution itself is the explainer's
(graftkit/evaluate/explain.py)."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable

import numpy as np

from graftkit.errors import GraftkitError
from graftkit.tasks.capabilities import AttributionEngine, ExplainedBlock, Explains

#: what the attributions are measured against (the explainer builds this baseline)
BASELINE = "[PAD] at every text position, special tokens kept"


def pick(names: list[str], target: str | int, what: str) -> int:
    """The index of ``target`` (a name, or an index) in ``names``; an unknown one is a GraftkitError."""
    if isinstance(target, int) and 0 <= target < len(names):
        return target
    if str(target) in names:
        return names.index(str(target))
    raise GraftkitError(f"unknown {what} {target!r}; choose one of: {', '.join(map(str, names))}")


def truncated(tokenizer, text: str, pair: str | None, max_length: int) -> bool:
    return len(tokenizer(text, pair)["input_ids"]) > max_length


def aggregate_words(enc, attrs: np.ndarray, texts: tuple[str, str | None]) -> list[dict]:
    """Word-piece attributions summed per word (the tokenizer's pre-tokenized words; CJK: characters)."""
    words: dict[tuple[int, int], dict] = {}
    seq_ids = enc.sequence_ids()
    for pos, wid in enumerate(enc.word_ids()):
        if wid is None:
            continue
        seg = seq_ids[pos]
        s, e = enc["offset_mapping"][pos]
        w = words.setdefault((seg, wid), {"start": s, "end": e, "segment": seg, "attribution": 0.0})
        w["end"] = max(w["end"], e)
        w["attribution"] += float(attrs[pos])
    for w in words.values():
        w["text"] = texts[w["segment"]][w["start"]:w["end"]]
    return list(words.values())


class SequenceExplains(Explains):
    """Attributions of one score of the prediction for the whole input; subclasses say which score."""

    @abstractmethod
    def target(self, engine: AttributionEngine, inputs: Any,
               target: str | int | None) -> tuple[str, Callable[[Any], Any]]:
        """(target name, f) where ``f(logits)`` is the explained score, one value per row."""

    def explain(self, engine: AttributionEngine, text: str, pair: str | None, target: str | int | None,
                steps: int) -> dict[str, Any]:
        enc = engine.tokenizer(text, pair, truncation=True, max_length=engine.max_length,
                               return_offsets_mapping=True)
        target_name, f = self.target(engine, text if pair is None else (text, pair), target)
        res = engine.attribute(enc, f, steps)
        words = aggregate_words(enc, res.pop("attrs"), (text, pair))
        return {"task": self.task.name, "target": target_name, **res, "baseline": BASELINE, "words": words,
                "truncated": truncated(engine.tokenizer, text, pair, engine.max_length)}

    def blocks(self, explanation: dict[str, Any]) -> list[ExplainedBlock]:
        e = explanation
        return [ExplainedBlock(f"target: {e['target']} (score {e['score']:.4f}, baseline {e['baseline_score']:.4f})",
                               e["words"], e["delta"], e["steps"], e["converged"])]
