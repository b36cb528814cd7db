"""Entity-span majority vote: how an NER ensemble (``graftkit ensemble``, combine "vote") decodes.

The ensemble model returns its members' logits side by side (``NerVotes.combine_vote``).
Decoding splits them per member and decodes each exactly as that member decodes on its own
(windows stitched per unit, then Viterbi through the member's trained CRF transitions, or
under the scheme's constraints alone for a linear head), which gives each member's entity
spans ``(first unit, end unit, type)``. Then:

* a span is kept when more than ``vote`` × (number of members) members predict exactly it.
  ``vote = 0.5`` (the default) is a strict majority: 2 of 2, 2 of 3, 3 of 4 members; ``0``
  keeps the span of any member, ``0.99`` only spans all members agree on.
* kept spans that overlap (possible only when ``vote < 0.5``: one member never predicts two
  overlapping spans) are chosen greedily: more votes first, then the higher mean member
  probability of the span's tags, then the earlier span.

The kept spans, written in the run's tag scheme, are the ensemble's tags; its scores are the
members' mean probabilities, so an entity's score is the mean member probability of its tags.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from graftkit.tasks.ner.postprocess import log_softmax
from graftkit.tasks.ner.preprocess import UnitKey, Window
from graftkit.tasks.ner.schemes import Span, spans_to_tags, tags_to_spans

#: per input: its units, their (units, tags) scores and the decoded tag ids
UnitPaths = list[tuple[list[UnitKey], np.ndarray, list[int]]]


def min_votes(n_members: int, vote: float) -> int:
    """Fewest members that must predict a span: more than ``vote`` × ``n_members``."""
    return math.floor(vote * n_members + 1e-9) + 1


def span_probability(span: Span, probs: np.ndarray, label2id: dict[str, int], scheme: str) -> float:
    """Mean over the span's units of the probability (``probs``: units × tags) of its tag in ``scheme``."""
    start, end, typ = span
    tags = spans_to_tags(end - start, [(0, end - start, typ)], scheme)
    return float(probs[np.arange(start, end), [label2id[t] for t in tags]].mean())


def vote_spans(member_spans: Sequence[Sequence[Span]], need: int, probs: np.ndarray,
               label2id: dict[str, int], scheme: str) -> list[Span]:
    """The spans at least ``need`` members predict, without overlaps, in order.

    Args:
        member_spans: each member's spans ``(start, end, type)`` over the same units.
        need: votes a span needs (see ``min_votes``).
        probs: the members' mean tag probabilities (units × tags), to break ties between overlaps.
        label2id: tag name → column of ``probs``.
        scheme: the tag scheme of ``label2id``.
    """
    votes = Counter(s for spans in member_spans for s in set(spans))
    candidates = [s for s, v in votes.items() if v >= need]
    candidates.sort(key=lambda s: (-votes[s], -span_probability(s, probs, label2id, scheme), s))
    kept: list[Span] = []
    for s in candidates:
        if all(s[1] <= k[0] or k[1] <= s[0] for k in kept):
            kept.append(s)
    return sorted(kept)


class SpanVote:
    """Decodes side-by-side member logits into voted unit paths.

    Args:
        members: one NER task per member, each bound to its own run folder (its decoder, its
            own vote for a member that is itself an ensemble); all share labels and scheme.
        vote: a span needs more than ``vote`` × ``len(members)`` votes.
    """

    def __init__(self, members: Sequence, vote: float = 0.5):
        self.members = list(members)
        self.labels, self.scheme = list(self.members[0].labels), self.members[0].scheme
        self.label2id = {t: i for i, t in enumerate(self.labels)}
        self.need = min_votes(len(self.members), vote)

    @property
    def width(self) -> int:
        """Logit columns the ensemble model returns: its members' side by side."""
        return sum(m.logit_width for m in self.members)

    def __call__(self, logits: np.ndarray, windows: Sequence[Window], n_inputs: int) -> UnitPaths:
        """Per input: (unit keys, log mean member probabilities, voted tag ids)."""
        if logits.shape[-1] != self.width:
            raise ValueError(f"expected {self.width} logit columns ({len(self.members)} members side by side), "
                             f"got {logits.shape[-1]}")
        decoded, offset = [], 0
        for m in self.members:
            decoded.append(m.unit_paths(logits[..., offset:offset + m.logit_width], windows, n_inputs))
            offset += m.logit_width
        out: UnitPaths = []
        for per_member in zip(*decoded):
            keys = per_member[0][0]
            probs = np.mean([np.exp(log_softmax(scores)) for _, scores, _ in per_member], axis=0)
            spans = [tags_to_spans([self.labels[t] for t in path], self.scheme) for _, _, path in per_member]
            kept = vote_spans(spans, self.need, probs, self.label2id, self.scheme)
            path = [self.label2id[t] for t in spans_to_tags(len(keys), kept, self.scheme)]
            out.append((keys, np.log(np.clip(probs, 1e-12, None)), path))
        return out
