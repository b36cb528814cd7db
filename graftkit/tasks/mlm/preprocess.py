"""Unlabelled text → token features with word ids, and the whole-word masking of those features.

A text's *words* are ``graftkit.data.words.word_spans`` (jieba for Chinese); each token belongs to
the word holding its first character. With whole-word masking a word is chosen with probability
``mlm_probability`` and all of its pieces are masked together (Cui et al., 2019: "Pre-Training with
Whole Word Masking for Chinese BERT"); without it every token is a word of its own.
"""
from __future__ import annotations

import zlib

import numpy as np

from graftkit.data.words import word_spans


def token_word_ids(text: str, offsets: list[tuple[int, int]], special: list[int], whole_word: bool) -> list[int]:
    """Word index of each token (-1 for special tokens); tokens of one word share an index."""
    if not whole_word:
        ids, n = [], 0
        for s in special:
            ids.append(-1 if s else n)
            n += 0 if s else 1
        return ids
    starts = np.array([s for s, _ in word_spans(text)] or [0])
    return [-1 if sp else int(np.searchsorted(starts, a, side="right") - 1) for (a, _), sp in zip(offsets, special)]


def encode_texts(texts: list[str], tokenizer, max_length: int, whole_word: bool) -> dict[str, list]:
    """Unpadded ``input_ids``/``attention_mask`` (and ``token_type_ids``) plus ``word_ids`` per text."""
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    cols = {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    # renumber from 0 per row so that a row's word ids index its own draws
    cols["word_ids"] = [_compact(token_word_ids(t, o, s, whole_word))
                        for t, o, s in zip(texts, enc["offset_mapping"], enc["special_tokens_mask"])]
    return cols


def _compact(ids: list[int]) -> list[int]:
    remap: dict[int, int] = {}
    return [-1 if i < 0 else remap.setdefault(i, len(remap)) for i in ids]


def fixed_mask(text: str, word_ids: list[int], probability: float) -> list[bool]:
    """A reproducible whole-word mask for evaluation: seeded by the text, at least one word masked."""
    n_words = max(word_ids, default=-1) + 1
    if n_words == 0:
        return [False] * len(word_ids)
    rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
    chosen = rng.random(n_words) < probability
    if not chosen.any():
        chosen[rng.integers(n_words)] = True
    return [w >= 0 and bool(chosen[w]) for w in word_ids]
