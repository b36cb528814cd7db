"""Generation metrics without downloads: ROUGE (rouge-score), BLEU and chrF (sacrebleu), exact match.

References are grouped by input: every example with the same input contributes one reference, and
each distinct input is scored once against all of its references (ROUGE: the best-matching
reference per input, as ``rouge_score.score_multi`` does; BLEU/chrF: sacrebleu's multi-reference
corpus statistics). A data-to-text run, recognised by every input being a meaning representation
(``name[The Eagle], food[French]``, graftkit/data/slots.py), also gets the slot error
rate (SER: missing, wrong and added slots over the MR's slots). Chinese text is scored over characters (sacrebleu ``tokenize='zh'``, ROUGE over
characters) because rouge-score's default tokenizer drops every non-ASCII character. All scores are
on a 0–100 scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Sequence

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer

from graftkit.data.dataset import Example
from graftkit.io import write_jsonl
from graftkit.modeling.generation import input_key
from graftkit.data import slots

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@dataclass
class Group:
    """One distinct input with all of its references (file/line of its first row)."""

    input: Any
    references: list[str] = field(default_factory=list)
    path: str = ""
    line: int = 0


def group_references(examples: Sequence[Example], inputs: Sequence[Any]) -> list[Group]:
    """Distinct inputs in first-seen order, each with the references of every example that has it."""
    groups: dict[Hashable, Group] = {}
    for e, x in zip(examples, inputs):
        g = groups.setdefault(input_key(x), Group(input=x, path=e.path, line=e.line))
        if e.label is not None and e.label not in g.references:
            g.references.append(e.label)
    return list(groups.values())


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def use_chars(references: Sequence[Sequence[str]], setting: str = "auto") -> bool:
    """Character-level scoring: forced by ``setting``, or when over half the non-space characters are CJK."""
    if setting != "auto":
        return setting == "chars"
    chars = [c for refs in references for r in refs for c in r if not c.isspace()]
    return bool(chars) and sum(map(_is_cjk, chars)) / len(chars) > 0.5


class CharTokenizer:
    """rouge-score tokenizer over characters (whitespace dropped) for Chinese and similar scripts."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


def rouge(chars: bool) -> rouge_scorer.RougeScorer:
    if chars:
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CharTokenizer())
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def _normalise(s: str) -> str:
    return " ".join(s.split())


def example_scores(hypothesis: str, references: Sequence[str], scorer) -> dict[str, float]:
    """ROUGE F-measures against the best reference, and exact match, for one input (0–100)."""
    multi = scorer.score_multi(list(references), hypothesis)
    out = {k: 100 * multi[k].fmeasure for k in ROUGE_TYPES}
    out["exact_match"] = 100.0 * (_normalise(hypothesis) in {_normalise(r) for r in references})
    return out


def corpus_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                  tokenization: str = "auto") -> tuple[dict[str, float], list[dict[str, float]]]:
    """(corpus metrics, per-input scores) for one hypothesis per input and its list of references."""
    chars = use_chars(references, tokenization)
    scorer = rouge(chars)
    per = [example_scores(h, refs, scorer) for h, refs in zip(hypotheses, references)]
    width = max(len(r) for r in references)
    # sacrebleu wants reference streams of equal length; None marks "this input has fewer references"
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]
    tok = "zh" if chars else "13a"
    metrics = {"bleu": sacrebleu.corpus_bleu(list(hypotheses), streams, tokenize=tok).score,
               "chrf": sacrebleu.corpus_chrf(list(hypotheses), streams).score}
    for k in (*ROUGE_TYPES, "exact_match"):
        metrics[k] = float(np.mean([p[k] for p in per]))
    metrics["n_inputs"] = len(hypotheses)
    metrics["n_references"] = sum(len(r) for r in references)
    return metrics, per


def slot_scores(inputs: Sequence[Any], hypotheses: Sequence[str]) -> tuple[dict[str, float], list | None]:
    """SER and its parts (0–100) when every input is a meaning representation, else ({}, None)."""
    if not slots.is_data_to_text(inputs):
        return {}, None
    return slots.corpus_ser(list(inputs), list(hypotheses))


def report(examples: Sequence[Example], inputs: Sequence[Any], predictions: Sequence,
           out_dir: Path | None, tokenization: str = "auto", worst: int = 20) -> dict[str, Any]:
    """Score predictions grouped by input; write ``generations.jsonl`` and ``worst.jsonl`` into ``out_dir``.

    ``predictions[i].generated`` is the output for ``inputs[i]`` (equal inputs share one output).
    """
    outputs = {input_key(x): p.generated for x, p in zip(inputs, predictions)}
    groups = [g for g in group_references(examples, inputs) if g.references]
    if not groups:
        return {"n": len(examples)}
    hyps = [outputs[input_key(g.input)] for g in groups]
    metrics, per = corpus_scores(hyps, [g.references for g in groups], tokenization)
    ser, errors = slot_scores([g.input for g in groups], hyps)
    metrics.update(ser)
    metrics["n"] = len(examples)
    if out_dir is not None:
        rows = [{"file": g.path, "line": g.line, "input": g.input, "references": g.references, "output": h,
                 "scores": {k: round(v, 2) for k, v in s.items()}} for g, h, s in zip(groups, hyps, per)]
        for row, e in zip(rows, errors or ()):
            row["slot_errors"] = {"missing": e.missing, "wrong": e.wrong, "added": e.added}
        write_jsonl(Path(out_dir) / "generations.jsonl", rows)
        order = sorted(range(len(rows)), key=lambda i: per[i]["rougeL"])
        write_jsonl(Path(out_dir) / "worst.jsonl", (rows[i] for i in order[:worst]))
    return metrics
