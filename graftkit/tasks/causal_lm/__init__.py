"""Supervised fine-tuning of decoder-only models (GPT-2, Llama, Qwen, any AutoModelForCausalLM).

Data preparation follows trl's SFT conventions (completion-only loss, EOS appended, best-fit
packing with ``trl.pack_dataset``) and batches go through trl's ``DataCollatorForLanguageModeling``;
training itself is graftkit's one Trainer path.
"""
from __future__ import annotations

from typing import Any, Sequence

from transformers import AutoModelForCausalLM, GenerationConfig
from trl.data_utils import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from graftkit.tasks.causal_lm import preprocess
from graftkit.tasks.causal_lm.config import CausalLmConfig
from graftkit.tasks.generation import rows
from graftkit.tasks.generation.task import GenerativeTask


class CausalLmTask(GenerativeTask):
    """Prompt → completion with a decoder-only language model."""

    name = "causal_lm"
    config_class = CausalLmConfig
    model_class = AutoModelForCausalLM
    decoder_only = True
    row_formats = (rows.PAIR, rows.TEXT, rows.CHAT)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.truncated_prompts = 0

    # -- model and training
    def prepare_model(self, model, tokenizer):
        """Pad id on the model config and the run's decoding settings on ``generation_config``."""
        model.config.pad_token_id = tokenizer.pad_token_id
        model.generation_config = self.generation_config(tokenizer, model.config)
        return model

    def generation_config(self, tokenizer, model_config) -> GenerationConfig:
        return GenerationConfig(**self.settings().decoding(), eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)

    def build_dataset(self, examples, tokenizer, max_length: int):
        import datasets

        cols, self.truncated_prompts = preprocess.build_features(examples, tokenizer, max_length, self.task_cfg)
        ds = datasets.Dataset.from_dict(cols)
        if self.task_cfg.packing:
            ds = pack_dataset(ds, max_length, strategy="bfd")  # adds seq_lengths: where each example starts
        return ds

    def collator(self, tokenizer):
        # padding_free: a packed row's examples get position_ids restarting at 0 and no shared attention mask
        return DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=self.task_cfg.packing)

    def training_arguments(self) -> dict:
        args = super().training_arguments()
        if self.task_cfg.packing:
            args["remove_unused_columns"] = False  # the collator needs seq_lengths, which no model forward takes
        return args

    # -- generation
    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        room = self.max_length - 1
        return [preprocess.keep_end(preprocess.prompt_ids(tokenizer, x), room, tokenizer.bos_token_id)
                for x in inputs]
