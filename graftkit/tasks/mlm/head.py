"""The masked-LM model and the batch collator that masks whole words on the fly."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForMaskedLM

MODEL_CLASS = AutoModelForMaskedLM


@dataclass
class WholeWordMaskCollator:
    """Pad a batch and mask it: each word is chosen with ``probability``; a chosen word's pieces become
    ``[MASK]`` (80%), a random token (10%) or stay as they are (10%), one draw per word, as in BERT.

    Rows that already carry ``labels`` (a fixed evaluation mask) are padded, not re-masked.
    """

    tokenizer: object
    probability: float = 0.15

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        word_ids = [f["word_ids"] for f in features]
        fixed = [f.get("labels") for f in features]
        keep = ("input_ids", "attention_mask", "token_type_ids")
        batch = self.tokenizer.pad([{k: f[k] for k in keep if k in f} for f in features], return_tensors="pt")
        width = batch["input_ids"].shape[1]
        words = torch.tensor([w + [-1] * (width - len(w)) for w in word_ids])
        if all(x is not None for x in fixed):
            batch["labels"] = torch.tensor([list(x) + [-100] * (width - len(x)) for x in fixed])
            return batch
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], words)
        return batch

    def mask(self, input_ids: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked input ids, labels) for a padded batch whose tokens carry word ids (-1: never masked)."""
        n_words = int(words.max()) + 2
        index = words.clamp(min=0)
        draw = lambda: torch.rand(words.shape[0], n_words).gather(1, index)  # noqa: E731  one draw per word
        chosen = (words >= 0) & (draw() < self.probability)
        labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
        how = draw()
        masked = input_ids.clone()
        masked[chosen & (how < 0.8)] = self.tokenizer.mask_token_id
        swap = chosen & (how >= 0.8) & (how < 0.9)
        masked[swap] = torch.randint(len(self.tokenizer), input_ids.shape)[swap]
        return masked, labels
