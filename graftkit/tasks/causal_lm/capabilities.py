"""Decoder-only training (completion-only loss, optional packing) and left-padded generation."""
from __future__ import annotations

from trl.data_utils import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from graftkit.errors import ConfigError
from graftkit.tasks.capabilities import Generates
from graftkit.tasks.causal_lm import preprocess
from graftkit.tasks.common.generation.capabilities import GenerativeTraining
from graftkit.tasks.common.generation.decoder import DecoderGenerates


def ensure_eos(tokenizer, model_config) -> None:
    """Give the tokenizer the model's end-of-sequence token when it has none of its own (a decoder trained
    with another model's vocabulary): every completion ends with it, and generation stops at it.

    Raises:
        ConfigError: neither names one, or the model's id is outside the tokenizer's vocabulary.
    """
    if tokenizer.eos_token_id is not None:
        return
    eos = getattr(model_config, "eos_token_id", None)
    eos = eos[0] if isinstance(eos, list) and eos else eos
    if not isinstance(eos, int) or not 0 <= eos < len(tokenizer):
        named = "none" if eos is None else f"id {eos}, outside the tokenizer's {len(tokenizer)} tokens"
        raise ConfigError(f"task.type causal_lm: the tokenizer has no end-of-sequence token and the model config "
                          f"names {named}; give the tokenizer an eos_token, or the model config an eos_token_id "
                          "within the tokenizer's vocabulary")
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos)


class CausalLmTraining(GenerativeTraining):
    def prepare_model(self, model, tokenizer):
        """The model's EOS onto a tokenizer lacking one, the pad id on the model config, and the run's
        decoding settings on ``generation_config``."""
        ensure_eos(tokenizer, model.config)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.generation_config = self.task.capability(Generates, "train").generation_config(tokenizer, model.config)
        return model

    def build_dataset(self, examples, tokenizer, max_length: int):
        import datasets

        t = self.task
        cols, t.truncated_prompts = preprocess.build_features(examples, tokenizer, max_length, t.task_cfg)
        ds = datasets.Dataset.from_dict(cols)
        if t.task_cfg.packing:
            ds = pack_dataset(ds, max_length, strategy="bfd")  # adds seq_lengths: where each example starts
        return ds

    def collator(self, tokenizer):
        # padding_free: a packed row's examples get position_ids restarting at 0 and no shared attention mask
        return DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id,
                                               padding_free=self.task.task_cfg.packing)

    def training_arguments(self) -> dict:
        args = super().training_arguments()
        if self.task.task_cfg.packing:
            args["remove_unused_columns"] = False  # the collator needs seq_lengths, which no model forward takes
        return args


class CausalLmGenerates(DecoderGenerates):
    """Generation by the fine-tuned decoder (graftkit/tasks/common/generation/decoder.py)."""
