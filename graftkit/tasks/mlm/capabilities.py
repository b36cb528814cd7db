"""Masked-LM training (whole-word masking, a fixed text-seeded mask for validation) and fill-mask decoding."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from graftkit.data.dataset import Example
from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import DecodesLogits, TrainsWithTrainer
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.mlm import head, metrics, postprocess, preprocess


def require_mask_token(tokenizer) -> None:
    if tokenizer.mask_token_id is None:
        raise ConfigError("task.type mlm: this tokenizer has no mask token; masked-LM pre-training needs an "
                          "encoder checkpoint (BERT, RoBERTa, MiniLM, ...); decoders use task.type: causal_lm")


def reduce_logits(logits, labels):
    """Per position (argmax id, NLL of the gold token), so evaluation never keeps vocabulary-wide logits."""
    import torch

    logits = logits[0] if isinstance(logits, tuple) else logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.stack([logp.argmax(-1).float(), nll], dim=-1)


class MlmTraining(TrainsWithTrainer):
    def model_kwargs(self) -> dict:
        return {}

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        import datasets

        require_mask_token(tokenizer)
        cfg = self.task.task_cfg
        cols = preprocess.encode_texts([e.text for e in examples], tokenizer, max_length, cfg.whole_word_mask)
        return datasets.Dataset.from_dict(cols)

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """Validation features with the fixed, text-seeded mask (the same one ``evaluate`` scores)."""
        import datasets

        cfg = self.task.task_cfg
        texts = [e.text for e in examples]
        cols = preprocess.encode_texts(texts, tokenizer, max_length, cfg.whole_word_mask)
        cols["labels"], cols["input_ids"] = [], [list(x) for x in cols["input_ids"]]
        for text, ids, words in zip(texts, cols["input_ids"], cols["word_ids"]):
            hidden = preprocess.fixed_mask(text, words, cfg.mlm_probability)
            cols["labels"].append([t if h else -100 for t, h in zip(ids, hidden)])
            ids[:] = [tokenizer.mask_token_id if h else t for t, h in zip(ids, hidden)]
        return datasets.Dataset.from_dict(cols)

    def collator(self, tokenizer):
        return head.WholeWordMaskCollator(tokenizer, self.task.task_cfg.mlm_probability)

    def training_arguments(self) -> dict:
        return {"remove_unused_columns": False}  # the collator needs word_ids, which no forward takes

    def logits_reducer(self):
        return reduce_logits

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        return metrics.from_eval_pred(eval_pred)


class MlmDecoding(DecodesLogits):
    """Texts with a [MASK] are filled in; texts without one get the fixed evaluation mask and are scored."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int):
        cfg = self.task.task_cfg
        texts = [str(x) for x in inputs]
        require_mask_token(tokenizer)
        cols = preprocess.encode_texts(texts, tokenizer, max_length, cfg.whole_word_mask)
        mask_id, rows = tokenizer.mask_token_id, []
        for text, ids, words in zip(texts, cols["input_ids"], cols["word_ids"]):
            if mask_id in ids:
                rows.append((list(ids), None))
                continue
            hidden = preprocess.fixed_mask(text, words, cfg.mlm_probability)
            rows.append(([mask_id if h else t for t, h in zip(ids, hidden)],
                         [t if h else -100 for t, h in zip(ids, hidden)]))
        feats = [{"input_ids": ids, **{k: cols[k][i] for k in ("attention_mask", "token_type_ids") if k in cols}}
                 for i, (ids, _) in enumerate(rows)]
        batch = tokenizer.pad(feats, return_tensors="np")
        return dict(batch), (rows, tokenizer)

    def decode(self, logits: np.ndarray, context: Any):
        rows, tokenizer = context
        top_k = self.task.task_cfg.top_k
        return [postprocess.score_mask(logits[i], labels) if labels is not None
                else postprocess.fill_mask(logits[i], ids, tokenizer.mask_token_id, tokenizer, top_k)
                for i, (ids, labels) in enumerate(rows)]


class MlmCard(StandardCard):
    hub_pipeline = "fill-mask"
    example_input = "a sentence with a [MASK] to fill"
