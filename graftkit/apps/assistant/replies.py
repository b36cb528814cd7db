"""Choosing the assistant's reply among its candidates with a reward run.

The candidates of an answered turn are the FAQ answers it shows and, with ``generation:``, the generated reply.
Without a reward run the reply is the generated one, else the top FAQ answer. With ``reward_run:`` the run scores
every (message, candidate) pair through its ordinary predict path, the best-scored candidate is the reply, and the
FAQ entries are reordered best first, so the stored turn's FAQ id is the entry the reply came from.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graftkit.errors import ConfigError
from graftkit.inference.runs import open_run
from graftkit.tasks.capabilities import ScoresResponses


class RewardRanker:
    """Scores candidate replies to a message with a run that scores (prompt, response) pairs.

    Raises:
        ConfigError: the run does not score responses (it is not a reward run).
    """

    def __init__(self, runner, where: str):
        scores = runner.task.optional(ScoresResponses)
        if scores is None:
            raise ConfigError(f"reward_run {where} must be a run that scores (prompt, response) pairs (task.type "
                              f"reward), not a {runner.task.label()} run")
        self.runner, self._scores = runner, scores

    @classmethod
    def from_run(cls, path: str) -> RewardRanker:
        return cls(open_run(path), path)

    def scores(self, message: str, candidates: Sequence[str]) -> np.ndarray:
        """One reward per candidate reply to ``message`` (higher: better)."""
        return self._scores.response_scores(self.runner, message, list(candidates), max(1, len(candidates)))


def answer_text(hit: dict) -> str:
    """The reply an FAQ entry gives: its answer column, else its indexed text."""
    return str(hit.get("answer", hit["text"]))


def rank_replies(ranker: RewardRanker, message: str, answers: list[dict], generated: list[str]) -> tuple[str, float]:
    """(the best-scored candidate, its reward); each FAQ entry of ``answers`` gets its ``reward``, and the list is
    reordered best first (ranks renumbered)."""
    texts = [answer_text(h) for h in answers] + generated
    rewards = ranker.scores(message, texts)
    order = sorted(range(len(answers)), key=lambda i: -rewards[i])  # stable: ties keep the retrieval order
    answers[:] = [{**answers[i], "reward": round(float(rewards[i]), 4), "rank": r} for r, i in enumerate(order, 1)]
    best = int(np.argmax(rewards))
    return texts[best], round(float(rewards[best]), 4)
