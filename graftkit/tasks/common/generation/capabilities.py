"""What the generative tasks share of their capabilities: training that validates by generating,
batched generation, the card's decoding section and usage."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from transformers import GenerationConfig

from graftkit.data.dataset import Example
from graftkit.modeling.generation import decode_texts, generate_ids
from graftkit.tasks.capabilities import Generates, TrainsWithTrainer
from graftkit.tasks.common.card import StandardCard
from graftkit.tasks.common.generation import metrics, rows
from graftkit.tasks.common.generation.config import DECODING_KEYS

#: metrics of validation-by-generation reported during training (eval_<name> in the Trainer logs)
EVAL_METRICS = ("rougeL", "rouge1", "rouge2", "rougeLsum", "bleu", "chrf", "exact_match")


class GenerativeTraining(TrainsWithTrainer):
    """The loss only during the Trainer's evaluation loop; generation metrics come from ``Generates``."""

    def model_kwargs(self) -> dict:
        return {}

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        return {}  # generative runs evaluate by generating (Generates.evaluate_generation), not from logits

    def training_arguments(self) -> dict:
        """Logits of a language model are vocabulary-wide: never collect them, only the loss."""
        return {"prediction_loss_only": True, "gradient_checkpointing": self.task.task_cfg.gradient_checkpointing}


class GenerativeGenerates(Generates):
    """Batched generation with the run's decoding settings; subclasses tokenize prompts."""

    @property
    def takes_chat(self) -> bool:
        return self.task.row_format == rows.CHAT

    def settings(self):
        return self.task.task_cfg.generation

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
        t = self.task
        cap = t.task_cfg.eval_samples
        if not cap or not examples or t.row_format == rows.TEXT:
            return {}
        groups = metrics.group_references(examples, [t.input_of(e) for e in examples])[:cap]
        hyps = self.generate(model, tokenizer, [g.input for g in groups], batch_size=t.task_cfg.eval_batch_size)
        scores, _ = metrics.corpus_scores(hyps, [g.references for g in groups], t.task_cfg.metric_tokenization)
        ser, _ = metrics.slot_scores([g.input for g in groups], hyps)  # data-to-text runs: the slot error rate
        return {**{k: scores[k] for k in EVAL_METRICS}, **({"ser": ser["ser"]} if ser else {})}

    def decoding_section(self, run_dir: Path) -> list[str]:
        """Markdown lines stating the decoding settings every reported score was generated with."""
        path = Path(run_dir) / "generation_config.json"
        if not path.is_file():
            return []
        gc = json.loads(path.read_text(encoding="utf-8"))
        lines = ["## Decoding", "", "Every generated output in this folder (validation during training, "
                 "predictions/, metrics) used these settings from `generation_config.json`; `graftkit generate` "
                 "and `POST /v1/generate` start from them.", "", "| setting | value |", "| --- | --- |"]
        lines += [f"| {k} | {gc[k]} |" for k in DECODING_KEYS if k in gc]
        lines += [f"| {k} | {gc[k]} |" for k in ("eos_token_id", "pad_token_id", "decoder_start_token_id") if k in gc]
        return lines + [""]


class GenerativeCard(StandardCard):
    """Generative runs are used with ``graftkit generate`` (``predict`` generates too)."""

    command = "generate"
    example_input = "your prompt"
