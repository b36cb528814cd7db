"""``model.extend_vocab.learning_rate_scale``: the embedding rows of added tokens take longer steps.

Rows that ``model.extend_vocab`` adds start at the mean (and covariance) of the old rows, with no
meaning of their own, while the rest of the model is already trained. At one learning rate they stay
near that start for hundreds of steps (the Weibo and ChnSentiCorp rows in BENCHMARKS.md). A slice of
one weight matrix cannot have its own optimiser parameter group, so this callback scales the optimiser's
*update* of those rows instead: it notes them before each step and, after it, moves them ``scale`` times
as far. That is exactly a per-row learning-rate multiplier for any optimiser (Adam's update is
invariant to scaling the gradient, so a gradient hook would do nothing). The rows are every added,
non-special token of the tokenizer, so tokens that an earlier ``pretrain:`` stage added count too.
"""
from __future__ import annotations

from typing import Callable

import torch
from transformers import TrainerCallback

from graftkit.errors import ConfigError
from graftkit.modeling.vocab import VocabReport, embedding_matrices
from graftkit.train.components import Component


def added_token_ids(tokenizer) -> list[int]:
    """Ids of the tokenizer's added, non-special tokens (what ``model.extend_vocab`` adds)."""
    return sorted(i for i, tok in tokenizer.added_tokens_decoder.items() if not tok.special)


class NewRowsLearningRate(TrainerCallback):
    """After each optimiser step, move the added tokens' rows ``scale`` times as far as the step did."""

    def __init__(self, ids: list[int], scale: float, log: Callable[[str], None] = print):
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.scale = scale
        self.log = log
        self._before: list[torch.Tensor] = []
        self._handles: list = []

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
        weights = [w for w in embedding_matrices(model) if w.requires_grad]
        if not weights:
            self.log("model.extend_vocab.learning_rate_scale: the embeddings are frozen here; nothing to scale")
            return
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        held = {id(p) for group in inner.param_groups for p in group["params"]}
        if any(id(w) not in held for w in weights):
            raise ConfigError("model.extend_vocab.learning_rate_scale needs the embedding matrix as one optimiser "
                              "parameter (FSDP and DeepSpeed ZeRO flatten it); set it to 1 for such runs")
        ids = self.ids.to(weights[0].device)
        self._handles = [inner.register_step_pre_hook(lambda *_: self._note(weights, ids)),
                         inner.register_step_post_hook(lambda *_: self._stretch(weights, ids))]
        self.log(f"model.extend_vocab.learning_rate_scale: {len(self.ids)} added token rows learn "
                 f"{self.scale:g}x as fast as the rest")

    @torch.no_grad()
    def _note(self, weights, ids) -> None:
        self._before = [w[ids].clone() for w in weights]

    @torch.no_grad()
    def _stretch(self, weights, ids) -> None:
        for w, before in zip(weights, self._before):
            w[ids] = before + self.scale * (w[ids] - before)

    def on_train_end(self, args, state, control, **kw):
        for handle in self._handles:
            handle.remove()
        self._handles = []


def new_rows_callback(settings, tokenizer, log: Callable[[str], None] = print) -> list[TrainerCallback]:
    """The callback for ``model.extend_vocab.learning_rate_scale``, or none when it is 1 or nothing was added."""
    ids = added_token_ids(tokenizer)
    if settings.learning_rate_scale == 1.0 or not ids:
        return []
    return [NewRowsLearningRate(ids, settings.learning_rate_scale, log)]


class ExtendVocab(Component):
    """``model.extend_vocab``: what the extension added (training_setup.json ``vocab``), and the added rows'
    learning-rate multiplier (``learning_rate_scale``) when it is not 1 and tokens were added."""

    name = "extend_vocab"
    keys = ("model.extend_vocab.source", "model.extend_vocab.min_count", "model.extend_vocab.max_tokens",
            "model.extend_vocab.split_pieces", "model.extend_vocab.words", "model.extend_vocab.learning_rate_scale")

    def __init__(self, report: VocabReport, settings, tokenizer, log: Callable[[str], None] = print):
        self.report = report
        self._callbacks = new_rows_callback(settings, tokenizer, log)

    def callbacks(self) -> list[TrainerCallback]:
        return self._callbacks

    def record(self) -> dict:
        return {"vocab": self.report.as_dict()}
