"""Encoder–decoder training (targets shifted by the model) and right-padded generation."""
from __future__ import annotations

from typing import Any, Sequence

from transformers import DataCollatorForSeq2Seq, GenerationConfig

from graftkit.tasks.capabilities import Generates
from graftkit.tasks.common.generation.capabilities import GenerativeGenerates, GenerativeTraining
from graftkit.tasks.seq2seq import preprocess


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


class Seq2SeqTraining(GenerativeTraining):
    def prepare_model(self, model, tokenizer):
        """Special token ids on the model config (the encoder–decoder shifts labels with them) and the
        run's decoding settings on ``generation_config``."""
        self.task.ids = special_ids(tokenizer, model.config)
        for k, v in self.task.ids.items():
            setattr(model.config, k, v)
        model.generation_config = self.task.capability(Generates, "train").generation_config(tokenizer, model.config)
        return model

    def build_dataset(self, examples, tokenizer, max_length: int):
        import datasets

        t = self.task
        ids = t.ids or special_ids(tokenizer)
        max_target = t.task_cfg.max_target_length or max_length
        return datasets.Dataset.from_dict(preprocess.build_features(
            examples, tokenizer, max_length, max_target, t.task_cfg, ids["decoder_start_token_id"],
            ids["eos_token_id"]))

    def collator(self, tokenizer):
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)


class Seq2SeqGenerates(GenerativeGenerates):
    decoder_only = False

    def generation_config(self, tokenizer, model_config) -> GenerationConfig:
        ids = special_ids(tokenizer, model_config)
        return GenerationConfig(**self.settings().decoding(), **ids, bos_token_id=ids["decoder_start_token_id"])

    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        return [preprocess.source_ids(tokenizer, x, self.task.max_length) for x in inputs]

    def prompt_tokens(self, prompt: Any, tokenizer) -> int:
        return len(tokenizer(prompt)["input_ids"])
