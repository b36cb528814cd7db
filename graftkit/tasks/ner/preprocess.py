"""Words → subword windows → labels, the way transformers' ``run_ner.py`` aligns them.

A *unit* is what carries a label: the first piece of each word (later pieces and special tokens
get -100), or every piece with ``task.label_all_pieces``. A sentence longer than
``data.max_length`` pieces is cut by the tokenizer into overlapping windows
(``return_overflowing_tokens`` with ``stride = task.window_overlap``, at most half a window); each window is labelled as a
sentence of its own, and predictions are stitched back per unit in ``postprocess``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from graftkit.errors import ConfigError
from graftkit.tasks.ner.readers import split_words
from graftkit.tasks.ner.schemes import spans_to_tags

#: a unit's identity across overlapping windows: (word index, piece start, piece end inside the word)
UnitKey = tuple[int, int, int]


@dataclass
class Window:
    """One model input row: which input it belongs to and the (position, unit key) pairs it labels."""

    sample: int
    units: list[tuple[int, UnitKey]]


def as_words(item: Any) -> tuple[str, list[tuple[int, int]]]:
    """A predict input → (text, word offsets): plain text is split into words, (text, words) is kept."""
    if isinstance(item, (tuple, list)):
        text, words = item
        return str(text), [tuple(w) for w in words]
    return str(item), split_words(str(item))


def tokenize_windows(word_lists: Sequence[list[str]], tokenizer, max_length: int, overlap: int,
                     all_pieces: bool) -> tuple[dict, list[Window]]:
    """Tokenize pre-split sentences into overlapping windows; returns the encoding and its windows."""
    room = max_length - tokenizer.num_special_tokens_to_add()
    if room < 2:
        raise ConfigError(f"data.max_length={max_length} leaves no room for text next to the special tokens")
    overlap = min(overlap, room // 2)  # at most half a window, so that windows always advance
    # an empty sentence still needs a row so that every input has a window; it labels nothing
    safe = [w if w else ["."] for w in word_lists]
    enc = tokenizer(list(safe), is_split_into_words=True, truncation=True, max_length=max_length, stride=overlap,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    windows = []
    for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
        units = []
        if word_lists[sample]:
            for pos, (wid, (s, e)) in enumerate(zip(enc.word_ids(row), enc["offset_mapping"][row])):
                if wid is not None and (all_pieces or s == 0):
                    units.append((pos, (wid, s, e)))
        windows.append(Window(sample, units))
    return enc, windows


def word_spans(example_label: Sequence, words: Sequence[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Character spans → word-index spans (words are cut at entity boundaries by the readers)."""
    start_of = {s: i for i, (s, _) in enumerate(words)}
    end_of = {e: i for i, (_, e) in enumerate(words)}
    out = []
    for s, e, typ in example_label:
        if s in start_of and e in end_of:
            out.append((start_of[s], end_of[e] + 1, typ))
    return out


def window_labels(window: Window, n_positions: int, spans: Sequence[tuple[int, int, str]], scheme: str,
                  label2id: dict[str, int]) -> list[int]:
    """-100 everywhere but on units; units get the tags of ``spans`` clipped to this window."""
    unit_word = [key[0] for _, key in window.units]
    unit_spans = []
    for ws, we, typ in spans:
        inside = [i for i, w in enumerate(unit_word) if ws <= w < we]
        if inside:
            unit_spans.append((inside[0], inside[-1] + 1, typ))
    tags = spans_to_tags(len(unit_word), unit_spans, scheme)
    missing = sorted({t for t in tags if t not in label2id})
    if missing:  # callers drop or refuse entity types outside the label set first (NerTask.build_*dataset)
        raise ValueError(f"tags {missing} have no id in the label set {list(label2id)}")
    labels = [-100] * n_positions
    for (pos, _), tag in zip(window.units, tags):
        labels[pos] = label2id[tag]
    return labels


def drop_unseen_types(labels: Sequence[Sequence], types: set[str]) -> tuple[list[list], Counter]:
    """``labels`` without the spans whose type is not in ``types``, and how many spans of each such type went."""
    dropped: Counter = Counter()
    kept = []
    for spans in labels:
        kept.append([s for s in spans if s[2] in types])
        dropped.update(s[2] for s in spans if s[2] not in types)
    return kept, dropped


def build_features(texts_words: Sequence[tuple[str, list[tuple[int, int]]]], labels: Sequence | None, tokenizer,
                   max_length: int, overlap: int, all_pieces: bool, scheme: str,
                   label2id: dict[str, int]) -> dict[str, list]:
    """Unpadded training features (one row per window) with ``labels`` aligned to units."""
    word_lists = [[t[s:e] for s, e in w] for t, w in texts_words]
    enc, windows = tokenize_windows(word_lists, tokenizer, max_length, overlap, all_pieces)
    cols = {k: list(v) for k, v in enc.items() if k not in ("offset_mapping", "overflow_to_sample_mapping")}
    if labels is not None:
        cols["labels"] = []
        for row, win in enumerate(windows):
            spans = word_spans(labels[win.sample], texts_words[win.sample][1])
            cols["labels"].append(window_labels(win, len(enc["input_ids"][row]), spans, scheme, label2id))
    return cols
