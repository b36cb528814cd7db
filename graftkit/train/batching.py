"""Batches formed by a token budget instead of a row count (``train.max_tokens_per_batch``, as in fairseq).

Rows are sorted by length (ties in a seeded random order) and cut into batches whose padded size,
rows × longest row, stays within the budget: short rows make wide batches, long rows narrow ones, so
the matrix multiplies keep a similar size and almost no padding is computed. The batches are formed
once per run; each epoch visits them in an order drawn from (seed, epoch). That makes the epoch length
fixed and every epoch's order reproducible, which is what the Trainer's mid-epoch resume relies on:
it rebuilds the epoch's order and skips the batches already trained.
"""
from __future__ import annotations

from functools import partial
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import DataLoader, Sampler
from transformers.trainer_utils import seed_worker

from graftkit.errors import ConfigError
from graftkit.train.components import Component


def token_budget_batches(lengths: Sequence[int], max_tokens: int, seed: int) -> list[list[int]]:
    """Row indices grouped so that ``len(batch) * max(length in batch) <= max_tokens``.

    Raises:
        ConfigError: a row alone is longer than the budget.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and lengths.max() > max_tokens:
        raise ConfigError(f"train.max_tokens_per_batch ({max_tokens}) is smaller than the longest training row "
                          f"({int(lengths.max())} tokens); raise it to at least data.max_length")
    tie_break = np.random.default_rng(seed).permutation(len(lengths))
    order = np.lexsort((tie_break, lengths))  # by length, equal lengths in a seeded random order
    batches, current = [], []
    for i in order.tolist():
        # ascending order: the row being added is the batch's longest
        if current and (len(current) + 1) * int(lengths[i]) > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """A DataLoader ``batch_sampler`` of token-budget batches, reshuffled per epoch (``set_epoch``)."""

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int):
        self.batches = token_budget_batches(lengths, max_tokens, seed)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer at the start of each epoch (also on resume, before skipping)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.batches))
        return (self.batches[i] for i in order.tolist())

    def __len__(self) -> int:
        return len(self.batches)


def row_lengths(dataset, encoder_decoder: bool) -> list[int]:
    """Tokens each row costs: its input ids, plus its target ids for an encoder-decoder model."""
    lengths = [len(ids) for ids in dataset["input_ids"]]
    if encoder_decoder and "labels" in dataset.column_names:
        lengths = [n + len(y) for n, y in zip(lengths, dataset["labels"])]
    return lengths


def token_budget_dataloader(trainer, max_tokens: int) -> DataLoader:
    """The Trainer's training DataLoader with token-budget batches (``GraftTrainer.get_train_dataloader``).

    Uses the Trainer's own column removal, collator, worker seeding and ``accelerator.prepare``, so
    device placement, distributed sharding and ``skip_first_batches`` on resume work as for its own loader.
    """
    args = trainer.args
    # A private Trainer method, on purpose: transformers 5 has no public way to get the training set as its
    # loader sees it (the columns model.forward accepts, peft's base model inspected, label names kept; the
    # public get_train_dataloader builds the whole DataLoader with a row sampler, and _get_dataloader and
    # _get_train_sampler are private too). Restating that rule here would drift from the Trainer's;
    # tests/test_train_components.py pins the method's signature and what it removes.
    dataset = trainer._remove_unused_columns(trainer.train_dataset, description="Training")
    model_config = getattr(trainer.accelerator.unwrap_model(trainer.model), "config", None)
    sampler = TokenBudgetBatchSampler(row_lengths(dataset, getattr(model_config, "is_encoder_decoder", False)),
                                      max_tokens, args.data_seed if args.data_seed is not None else args.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=trainer.data_collator,
                        num_workers=args.dataloader_num_workers, pin_memory=args.dataloader_pin_memory,
                        persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
                        worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers,
                                               rank=args.process_index))
    return trainer.accelerator.prepare(loader)


class TokenBudget(Component):
    """A batch sampler: ``train.max_tokens_per_batch`` forms the training batches instead of ``batch_size``."""

    name = "token_budget"
    keys = ("train.max_tokens_per_batch",)

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens

    def train_dataloader(self, trainer) -> DataLoader:
        return token_budget_dataloader(trainer, self.max_tokens)
