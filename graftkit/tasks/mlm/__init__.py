"""Masked-language-model pre-training (``task.type: mlm``) on unlabelled text.

Data: a ``.txt`` file holds one document per non-blank line; any other file is read by the
usual readers and ``data.text_column`` is the text. The result is a plain
``*ForMaskedLM`` folder, so another config can start from it (``model.name_or_path: runs/NAME``);
its task heads are then freshly initialised on the further-trained encoder.

Evaluation masks each validation/test text reproducibly (seeded by the text) and reports the
perplexity and accuracy of the hidden tokens. ``graftkit predict RUN "text with [MASK]"`` lists
the likeliest tokens for each ``[MASK]``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError, DataError
from graftkit.tasks.base import TaskBase
from graftkit.tasks.mlm import head, metrics, postprocess, preprocess
from graftkit.tasks.mlm.config import MlmConfig


class MlmTask(TaskBase):
    """Masked-LM on plain text, with whole-word masking (jieba words for Chinese)."""

    name = "mlm"
    config_class = MlmConfig
    model_class = head.MODEL_CLASS
    default_metric = "loss"
    text_augmentation = False  # augmentation would teach the model the augmenter's noise

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        if Path(path).suffix.lower() in preprocess.TEXT_SUFFIXES and data_cfg.format == "auto":
            return preprocess.read_documents(path, data_cfg.encoding), 0
        return super().read(path, data_cfg, with_labels=False)

    def parse_label(self, raw: Any, row) -> Any:
        return None

    def strat_key(self, example: Example):
        return "all"  # unlabelled: a seeded random split

    def fit(self, train: list[Example]) -> None:
        if not train:
            raise DataError(self.data_cfg.train if self.data_cfg else "train", "holds no text")

    # -- model and training
    def model_kwargs(self) -> dict:
        return {}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        self._require_mask_token(tokenizer)
        cols = preprocess.encode_texts([e.text for e in examples], tokenizer, max_length, self.task_cfg.whole_word_mask)
        return datasets.Dataset.from_dict(cols)

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Validation features with the fixed, text-seeded mask (the same one ``evaluate`` scores)."""
        import datasets

        texts = [e.text for e in examples]
        cols = preprocess.encode_texts(texts, tokenizer, max_length, self.task_cfg.whole_word_mask)
        cols["labels"], cols["input_ids"] = [], [list(x) for x in cols["input_ids"]]
        for text, ids, words in zip(texts, cols["input_ids"], cols["word_ids"]):
            hidden = preprocess.fixed_mask(text, words, self.task_cfg.mlm_probability)
            cols["labels"].append([t if h else -100 for t, h in zip(ids, hidden)])
            ids[:] = [tokenizer.mask_token_id if h else t for t, h in zip(ids, hidden)]
        return datasets.Dataset.from_dict(cols)

    def collator(self, tokenizer):
        return head.WholeWordMaskCollator(tokenizer, self.task_cfg.mlm_probability)

    def training_arguments(self) -> dict:
        return {"remove_unused_columns": False}  # the collator needs word_ids, which no forward takes

    @staticmethod
    def preprocess_logits(logits, labels):
        """Per position (argmax id, NLL of the gold token), so evaluation never keeps vocabulary-wide logits."""
        import torch

        logits = logits[0] if isinstance(logits, tuple) else logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return torch.stack([logp.argmax(-1).float(), nll], dim=-1)

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        return metrics.from_eval_pred(eval_pred)

    # -- inference
    def input_of(self, example: Example) -> Any:
        return example.text

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        """Texts with a [MASK] are filled in; texts without one get the fixed evaluation mask."""
        texts = [str(x) for x in inputs]
        self._require_mask_token(tokenizer)
        cols = preprocess.encode_texts(texts, tokenizer, max_length, self.task_cfg.whole_word_mask)
        mask_id, rows = tokenizer.mask_token_id, []
        for text, ids, words in zip(texts, cols["input_ids"], cols["word_ids"]):
            if mask_id in ids:
                rows.append((list(ids), None))
                continue
            hidden = preprocess.fixed_mask(text, words, self.task_cfg.mlm_probability)
            rows.append(([mask_id if h else t for t, h in zip(ids, hidden)],
                         [t if h else -100 for t, h in zip(ids, hidden)]))
        feats = [{"input_ids": ids, **{k: cols[k][i] for k in ("attention_mask", "token_type_ids") if k in cols}}
                 for i, (ids, _) in enumerate(rows)]
        batch = tokenizer.pad(feats, return_tensors="np")
        return dict(batch), (rows, tokenizer)

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        rows, tokenizer = context
        return [postprocess.score_mask(logits[i], labels) if labels is not None
                else postprocess.fill_mask(logits[i], ids, tokenizer.mask_token_id, tokenizer, self.task_cfg.top_k)
                for i, (ids, labels) in enumerate(rows)]

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        return metrics.report(predictions, out_dir)

    def state(self) -> dict:
        return {"mlm_probability": self.task_cfg.mlm_probability, "whole_word_mask": self.task_cfg.whole_word_mask}

    def load_state(self, state: dict) -> None:
        return None  # everything the task needs at inference is in task.* of the run's config

    @staticmethod
    def _require_mask_token(tokenizer) -> None:
        if tokenizer.mask_token_id is None:
            raise ConfigError("task.type mlm: this tokenizer has no mask token; masked-LM pre-training needs an "
                              "encoder checkpoint (BERT, RoBERTa, MiniLM, ...); decoders use task.type: causal_lm")
