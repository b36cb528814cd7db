"""Logits → entity spans: stitch windows, Viterbi-decode under the scheme, map units back to characters.

Decoding needs only numpy logits plus transition scores (the trained CRF's, read from the run
folder, or zeros for the linear head), so an exported model decodes the same way. Viterbi itself
is pytorch-crf's; forbidden transitions are set to a large negative score so that no decoded
sequence breaks the scheme, for the linear head as well.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import special
from torchcrf import CRF

from graftkit.tasks.ner.preprocess import UnitKey, Window
from graftkit.tasks.predictions import Entity
from graftkit.tasks.ner.schemes import allowed_transitions, pin_forbidden, tags_to_spans


def log_softmax(x: np.ndarray) -> np.ndarray:
    return special.log_softmax(x, axis=-1)


class Decoder:
    """Constrained Viterbi over unit scores for a fixed tag set and scheme.

    Args:
        labels: tag names in id order.
        scheme: the internal scheme ("IOB2" or "BIOES").
        transitions: the trained CRF's ``(start, end, transitions)`` arrays, or None for a linear
            head (then log-softmax scores are decoded with only the scheme's constraints).
    """

    def __init__(self, labels: Sequence[str], scheme: str, transitions: tuple[np.ndarray, ...] | None = None):
        self.crf_trained = transitions is not None
        n = len(labels)
        start, end, trans = (np.zeros(n), np.zeros(n), np.zeros((n, n))) if transitions is None else transitions
        self.crf = CRF(n, batch_first=True)
        pin_forbidden(self.crf, allowed_transitions(labels, scheme), (start, end, trans))

    def __call__(self, scores: Sequence[np.ndarray]) -> list[list[int]]:
        """Best tag ids for each (units, tags) score matrix; empty matrices give empty paths."""
        idx = [i for i, s in enumerate(scores) if len(s)]
        out: list[list[int]] = [[] for _ in scores]
        if not idx:
            return out
        width = max(len(scores[i]) for i in idx)
        em = np.zeros((len(idx), width, scores[idx[0]].shape[-1]), dtype=np.float32)
        mask = np.zeros((len(idx), width), dtype=bool)
        for r, i in enumerate(idx):
            s = scores[i] if self.crf_trained else log_softmax(scores[i])
            em[r, :len(s)], mask[r, :len(s)] = s, True
        with torch.no_grad():
            paths = self.crf.decode(torch.from_numpy(em), torch.from_numpy(mask))
        for i, p in zip(idx, paths):
            out[i] = p
        return out


def stitch(logits: np.ndarray, windows: Sequence[Window], n_inputs: int) -> list[tuple[list[UnitKey], np.ndarray]]:
    """Per input: its units in order and their scores, each taken from the window where the unit is
    farthest from a window edge (most context on both sides)."""
    best: list[dict[UnitKey, tuple[int, np.ndarray]]] = [{} for _ in range(n_inputs)]
    for row, win in enumerate(windows):
        n = len(win.units)
        for i, (pos, key) in enumerate(win.units):
            centrality = min(i, n - 1 - i)
            seen = best[win.sample].get(key)
            if seen is None or centrality > seen[0]:
                best[win.sample][key] = (centrality, logits[row, pos])
    out = []
    for table in best:
        keys = sorted(table)
        scores = np.stack([table[k][1] for k in keys]) if keys else np.zeros((0, logits.shape[-1]), np.float32)
        out.append((keys, scores))
    return out


def to_entities(text: str, words: Sequence[tuple[int, int]], keys: Sequence[UnitKey], scores: np.ndarray,
                path: Sequence[int], labels: Sequence[str], scheme: str) -> list[Entity]:
    """Decoded unit tags → entities with character offsets, surface text and a confidence score
    (the mean softmax probability of the chosen tag over the entity's units)."""
    if not len(path):
        return []
    probs = np.exp(log_softmax(scores))
    chosen = probs[np.arange(len(path)), path]
    entities = []
    for a, b, typ in tags_to_spans([labels[t] for t in path], scheme):
        start, end = words[keys[a][0]][0], words[keys[b - 1][0]][1]
        entities.append(Entity(typ, int(start), int(end), text[start:end], float(chosen[a:b].mean())))
    return entities
