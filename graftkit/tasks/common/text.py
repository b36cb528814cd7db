"""Tokenizing plain texts or (text, pair) tuples: shared by the task folders that read whole sequences."""
from __future__ import annotations

from typing import Any, Sequence


def encode_texts(inputs: Sequence[Any], tokenizer, max_length: int, padding: bool | str = True,
                 return_tensors: str | None = "np") -> dict:
    """Tokenize plain texts or (text, pair) tuples with truncation."""
    pairs = [x for x in inputs if isinstance(x, (tuple, list))]
    if pairs and len(pairs) != len(inputs):
        raise ValueError("mix of single texts and text pairs in one batch")
    if pairs:
        a, b = [p[0] for p in inputs], [p[1] for p in inputs]
        return tokenizer(a, b, truncation="longest_first", max_length=max_length, padding=padding,
                         return_tensors=return_tensors)
    return tokenizer(list(inputs), truncation=True, max_length=max_length, padding=padding,
                     return_tensors=return_tensors)
