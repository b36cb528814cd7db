"""Word-level EDA augmentation (graftkit/data/augment.py) for tasks whose labels belong to the whole text."""
from __future__ import annotations

from graftkit.data.augment import augment_examples
from graftkit.data.dataset import Example
from graftkit.tasks.capabilities import Augments


class TextAugments(Augments):
    """Swap, delete, insert and synonym operations on the text (and pair); labels are kept."""

    def augment(self, examples: list[Example], settings, tokenizer, embedding_weight) -> tuple[list[Example], dict]:
        return augment_examples(examples, settings, tokenizer, embedding_weight)
