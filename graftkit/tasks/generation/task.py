"""The task class both generative tasks extend: reading, splitting, validation by generation, reports.

Generative runs predict through ``graftkit.inference.generator.Generator`` (``generative`` is True),
not through the encode → logits → decode path of the encoder tasks, so ``encode``/``decode`` refuse.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from transformers import GenerationConfig

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import TaskBase
from graftkit.tasks.generation import metrics, rows
from graftkit.tasks.generation.config import GenerationSettings
from graftkit.tasks.generation.decode import decode_texts, generate_ids

#: metrics of validation-by-generation reported during training (eval_<name> in the Trainer logs)
EVAL_METRICS = ("rougeL", "rouge1", "rouge2", "rougeLsum", "bleu", "chrf", "exact_match")


class GenerativeTask(TaskBase):
    """Shared behaviour of causal_lm and seq2seq; subclasses tokenize prompts and targets."""

    text_augmentation = False
    generative: ClassVar[bool] = True
    #: decoder-only models continue the prompt (left padding); encoder–decoders start a new sequence
    decoder_only: ClassVar[bool] = True
    #: row shapes this task accepts (graftkit.tasks.generation.rows)
    row_formats: ClassVar[tuple[str, ...]] = (rows.PAIR,)

    def __init__(self, task_cfg=None, data_cfg=None):
        super().__init__(task_cfg, data_cfg)
        self.row_format: str | None = None

    @property
    def default_metric(self) -> str:
        """ROUGE-L of validation generations; the loss when nothing is generated during training."""
        return "rougeL" if self.task_cfg.eval_samples and self.row_format != rows.TEXT else "loss"

    @property
    def max_length(self) -> int:
        return self.data_cfg.max_length if self.data_cfg else 512

    # -- data
    def read(self, path: str, data_cfg, with_labels: bool = True) -> tuple[list[Example], int]:
        return rows.read_examples(path, data_cfg, self.task_cfg, self.row_formats, with_labels)

    def parse_label(self, raw: Any, row: Row) -> Any:
        return str(raw)

    def strat_key(self, example: Example):
        return "all"  # no classes to stratify on: a seeded random split

    def fit(self, train: list[Example]) -> None:
        self.row_format = train[0].extra["format"]

    def check(self, examples: list[Example]) -> None:
        for e in examples:
            if e.extra.get("format") != self.row_format:
                raise DataError(e.path, f"{e.extra.get('format')} rows, but the training file has "
                                f"{self.row_format} rows; use one row format for every split", line=e.line)

    def model_kwargs(self) -> dict:
        return {}

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        return {}  # generative runs evaluate by generating (evaluate_generation), not from logits

    def training_arguments(self) -> dict:
        """Logits of a language model are vocabulary-wide: never collect them, only the loss."""
        return {"prediction_loss_only": True, "gradient_checkpointing": self.task_cfg.gradient_checkpointing}

    # -- generation
    def input_of(self, example: Example) -> Any:
        return example.extra["messages"] if example.extra.get("format") == rows.CHAT else example.text

    def prompt_ids(self, inputs: Sequence[Any], tokenizer) -> list[list[int]]:
        """Token ids of each input as the model sees it at generation time."""
        raise NotImplementedError

    def generation_config(self, tokenizer, model_config) -> GenerationConfig:
        """The run's decoding settings plus the special token ids generation needs."""
        raise NotImplementedError

    def generate(self, model, tokenizer, inputs: Sequence[Any], generation_config: GenerationConfig | None = None,
                 batch_size: int = 16) -> list[str]:
        """Generated text for each input (batched; equal inputs are generated once)."""
        gc = generation_config or model.generation_config
        unique = list(dict.fromkeys(metrics.input_key(x) for x in inputs))
        first = {metrics.input_key(x): x for x in reversed(list(inputs))}
        texts: dict = {}
        for start in range(0, len(unique), batch_size):
            keys = unique[start:start + batch_size]
            ids = generate_ids(model, self.prompt_ids([first[k] for k in keys], tokenizer), gc, self.decoder_only)
            texts.update(zip(keys, decode_texts(tokenizer, ids)))
        return [texts[metrics.input_key(x)] for x in inputs]

    def evaluate_generation(self, model, tokenizer, examples: list[Example]) -> dict[str, float]:
        """Validation metrics from generating the first ``task.eval_samples`` distinct inputs."""
        cap = self.task_cfg.eval_samples
        if not cap or not examples or self.row_format == rows.TEXT:
            return {}
        groups = metrics.group_references(examples, [self.input_of(e) for e in examples])[:cap]
        hyps = self.generate(model, tokenizer, [g.input for g in groups], batch_size=self.task_cfg.eval_batch_size)
        scores, _ = metrics.corpus_scores(hyps, [g.references for g in groups], self.task_cfg.metric_tokenization)
        return {k: scores[k] for k in EVAL_METRICS}

    def settings(self) -> GenerationSettings:
        return self.task_cfg.generation

    # -- the encoder tasks' inference path does not apply
    def encode(self, inputs, tokenizer, max_length):
        raise NotImplementedError(f"{self.name} runs generate text: use graftkit.inference.generator.Generator")

    def decode(self, logits, context):
        raise NotImplementedError(f"{self.name} runs generate text: use graftkit.inference.generator.Generator")

    # -- reporting and state
    def report(self, examples, predictions, out_dir: Path | None, plots: bool = True) -> dict:
        if self.row_format == rows.TEXT:
            return {"n": len(examples)}  # no reference completions to score against
        return metrics.report(examples, [self.input_of(e) for e in examples], predictions, out_dir,
                              self.task_cfg.metric_tokenization, self.task_cfg.worst_examples)

    def state(self) -> dict:
        return {"row_format": self.row_format}

    def load_state(self, state: dict) -> None:
        self.row_format = state.get("row_format")
