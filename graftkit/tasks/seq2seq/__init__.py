"""Sequence-to-sequence fine-tuning: T5 / BART / mT5, or any encoder warm-started as BERT2BERT."""
from __future__ import annotations

from typing import Any, Sequence

from transformers import DataCollatorForSeq2Seq, GenerationConfig

from graftkit.tasks.generation.task import GenerativeTask
from graftkit.tasks.seq2seq import preprocess
from graftkit.tasks.seq2seq.config import Seq2SeqConfig
from graftkit.tasks.seq2seq.head import Seq2SeqModel


def special_ids(tokenizer, model_config=None) -> dict[str, int]:
    """decoder_start / eos / pad ids: the model's own when it has them (T5, BART), else BERT2BERT's
    convention ([CLS] starts the decoder, [SEP] ends the text, [PAD] pads)."""
    own = (lambda k: getattr(model_config, k, None)) if model_config is not None else (lambda k: None)
    eos = own("eos_token_id") if own("decoder_start_token_id") is not None else None
    eos = eos if eos is not None else (tokenizer.eos_token_id if tokenizer.eos_token_id is not None
                                       else tokenizer.sep_token_id)
    start = own("decoder_start_token_id")
    if start is None:
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.pad_token_id
    return {"decoder_start_token_id": start, "eos_token_id": eos, "pad_token_id": tokenizer.pad_token_id}


class Seq2SeqTask(GenerativeTask):
    """Source text → target text with an encoder–decoder."""

    name = "seq2seq"
    config_class = Seq2SeqConfig
    model_class = Seq2SeqModel
    decoder_only = False

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.ids: dict[str, int] | None = None

    # -- model and training
    def prepare_model(self, model, tokenizer):
        """Special token ids on the model config (the encoder–decoder shifts labels with them) and the
        run's decoding settings on ``generation_config``."""
        self.ids = special_ids(tokenizer, model.config)
        for k, v in self.ids.items():
            setattr(model.config, k, v)
        model.generation_config = self.generation_config(tokenizer, model.config)
        return model

    def generation_config(self, tokenizer, model_config) -> GenerationConfig:
        ids = special_ids(tokenizer, model_config)
        return GenerationConfig(**self.settings().decoding(), **ids, bos_token_id=ids["decoder_start_token_id"])

    def build_dataset(self, examples, tokenizer, max_length: int):
        import datasets

        ids = self.ids or special_ids(tokenizer)
        max_target = self.task_cfg.max_target_length or max_length
        return datasets.Dataset.from_dict(preprocess.build_features(
            examples, tokenizer, max_length, max_target, self.task_cfg, ids["decoder_start_token_id"],
            ids["eos_token_id"]))

    def collator(self, tokenizer):
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    # -- generation
    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        return [preprocess.source_ids(tokenizer, x, self.max_length) for x in inputs]
