"""Seeded, optionally stratified train/validation/test splits (scikit-learn)."""
from __future__ import annotations

from collections import Counter
from typing import Sequence, TypeVar

from sklearn.model_selection import train_test_split

T = TypeVar("T")


def _can_stratify(keys: Sequence, n_take: int) -> bool:
    counts = Counter(keys)
    # sklearn needs >= 2 members per class and a held-out part no smaller than the class count
    return min(counts.values()) >= 2 and n_take >= len(counts) and len(keys) - n_take >= len(counts)


def split_items(items: list[T], keys: Sequence, validation: float, test: float, seed: int,
                stratify: bool = True) -> tuple[list[T], list[T], list[T]]:
    """Split ``items`` into (train, validation, test) fractions, stratified on ``keys``.

    Stratification falls back to a plain seeded shuffle when a class is too rare to
    appear in every part; the caller can detect that from the result's label counts.
    """
    idx = list(range(len(items)))
    keys = list(keys)

    def cut(pool: list[int], frac: float) -> tuple[list[int], list[int]]:
        if frac <= 0 or not pool:
            return pool, []
        n_take = max(1, round(frac * len(pool)))
        sub = [keys[i] for i in pool]
        strat = sub if stratify and _can_stratify(sub, n_take) else None
        rest, taken = train_test_split(pool, test_size=n_take, random_state=seed, stratify=strat)
        return list(rest), list(taken)

    rest, test_idx = cut(idx, test)
    # validation fraction is of the whole, so rescale against what is left
    train_idx, val_idx = cut(rest, validation / (1 - test) if test < 1 else 0)
    pick = lambda ids: [items[i] for i in sorted(ids)]  # noqa: E731 - keep file order inside each part
    return pick(train_idx), pick(val_idx), pick(test_idx)
