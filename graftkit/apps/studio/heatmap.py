"""Explanation heat-maps: why a run predicted what it did for one text, as words and their attributions.

The attribution is graftkit/evaluate/explain.py's ``Explainer`` (Integrated Gradients over the input embeddings,
captum), built once per run and kept for the last few runs explained. Whether a run explains is its task's
``Explains`` capability, asked by the Explainer itself: a task without it is refused in one line naming what the
task supports. An explanation costs ``steps`` forward and backward passes, so texts are capped at ``MAX_CHARS``
(over it: 413) and one explanation runs at a time; the route calls ``explain`` in a worker thread.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from graftkit.apps.studio.tryout import LoadedRuns
from graftkit.apps.studio.workspace import TooLarge
from graftkit.errors import GraftkitError
from graftkit.evaluate.explain import DEFAULT_STEPS, Explainer

#: characters per explained text, pair included (graftkit serve's ``explain_max_chars`` default)
MAX_CHARS = 1000
#: the step count doubles from DEFAULT_STEPS until completeness holds, at most this (a page waits for it)
MAX_STEPS = 200
#: what the page shows of an explanation besides its blocks
META = ("target", "score", "baseline_score", "steps", "converged", "baseline", "truncated")


def _load(run_dir: Path) -> Explainer:
    return Explainer(run_dir, steps=DEFAULT_STEPS, max_steps=MAX_STEPS)


class Explanations:
    """The Explainers of the last few runs explained."""

    def __init__(self):
        self._runs = LoadedRuns(_load)
        self._lock = threading.Lock()

    def explain(self, run_dir: Path, text: str, pair: str | None = None, target: str | None = None) -> dict:
        """Word attributions toward ``target`` (default: the prediction) as ``blocks`` of tokens and scores.

        Each block is one attributed target (one for a class or a value; one per entity for NER): its heading,
        ``tokens`` (words; characters for Chinese), ``scores`` (their attributions, one per token: positive pushes
        toward the target, negative away), ``segments`` (0: the text, 1: the pair) and the completeness delta.

        Raises:
            TooLarge: more than ``MAX_CHARS`` characters. GraftkitError: an empty text, an unknown target;
            UnsupportedError: the run's task does not explain; RunFolderError: not a finished run with weights.
        """
        if not text.strip():
            raise GraftkitError("type some text to explain")
        chars = len(text) + len(pair or "")
        if chars > MAX_CHARS:
            raise TooLarge(f"the text has {chars} characters; explanations take at most {MAX_CHARS} "
                           "(each costs many forward and backward passes)")
        with self._lock:
            explainer = self._runs.get(run_dir)
            result = explainer.explain(text, pair or None, target or None)
            blocks = explainer.blocks(result)
        return {**{k: result[k] for k in META if k in result}, "blocks": [_block(b) for b in blocks]}


def _block(block) -> dict[str, Any]:
    return {"heading": block.heading, "tokens": [w["text"] for w in block.words],
            "scores": [float(w["attribution"]) for w in block.words],
            "segments": [int(w.get("segment") or 0) for w in block.words],
            "delta": block.delta, "steps": block.steps, "converged": block.converged}
