"""Preference optimisation of decoders: DPO (prompt, chosen, rejected) or KTO (prompt, completion, desirable?)
with trl's own trainers, starting from a causal_lm run or a hub decoder.

Like the embedding task this one is trained by its library's trainer (``TrainsItself``): trl's DPOTrainer and
KTOTrainer hold the reference model and compute the implicit rewards. The run folder is a causal_lm-like decoder
(or an adapter over one) that generates; its evaluation scores generations against the chosen (DPO) or desirable
(KTO) completions with BLEU, ROUGE and, for data-to-text prompts, the slot error rate; its card sets them beside
the starting model's, with trl's implicit rewards and the measured KL to the reference.
"""
from __future__ import annotations

from transformers import AutoModelForCausalLM

from graftkit.data.readers import read_rows
from graftkit.errors import DataError
from graftkit.tasks.capabilities import TrainsItself
from graftkit.tasks.common.generation.decoder import DecoderGenerates
from graftkit.tasks.common.generation.task import GenerativeTask
from graftkit.tasks.preference import rows
from graftkit.tasks.preference.card import PreferenceCard
from graftkit.tasks.preference.config import PreferenceConfig
from graftkit.tasks.preference.train import train_preference

#: the config keys trl's trainers honour here (graftkit's TrainingArguments mapping, the start, peft); any other
#: key a config sets is refused by name (graftkit/train/keys.py)
SUPPORTED_KEYS = (
    "train.epochs", "train.max_steps", "train.batch_size", "train.eval_batch_size", "train.learning_rate",
    "train.optimizer", "train.weight_decay", "train.warmup", "train.scheduler", "train.grad_accum",
    "train.max_grad_norm", "train.precision", "train.seed", "train.eval_strategy", "train.eval_steps",
    "train.save_total_limit", "train.logging_steps", "train.report_to", "train.num_workers", "train.compile",
    "train.distributed", "train.threads", "train.early_stopping", "model.name_or_path", "model.revision", "peft")


class PreferenceTraining(TrainsItself):
    trained_by = "trl"

    def supported_keys(self) -> tuple[str, ...]:
        return SUPPORTED_KEYS

    def train_run(self, cfg, session):
        return train_preference(self.task, session)


class PreferenceGenerates(DecoderGenerates):
    """The preference-trained decoder generates like a causal_lm run (prompt strings, left padding)."""


class PreferenceTask(GenerativeTask):
    """A decoder moved toward preferred completions and away from dispreferred ones."""

    name = "preference"
    config_class = PreferenceConfig
    model_class = AutoModelForCausalLM
    default_metric = "loss"
    capabilities = (PreferenceTraining, PreferenceGenerates, PreferenceCard)

    def read(self, path: str, data_cfg, with_labels: bool = True):
        return self.examples_from_rows(read_rows(path, data_cfg.format, data_cfg.encoding), data_cfg, with_labels)

    def examples_from_rows(self, raw, data_cfg, with_labels: bool = True):
        """DPO or KTO rows (prompts alone without labels); invalid rows are errors, or dropped and counted."""
        out, dropped = [], 0
        for row in raw:
            try:
                out.append(rows.row_example(row, self.task_cfg, with_labels))
            except DataError:
                if not data_cfg.drop_invalid:
                    raise
                dropped += 1
        if not out:
            raise DataError(raw[0].path if raw else "", f"no usable rows ({dropped} invalid rows dropped)")
        return out, dropped

    def fit(self, train) -> None:
        """The row shape of the training file (text or chat pairs); every training row must share it."""
        super().fit(train)
        self.check(train)
