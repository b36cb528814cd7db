"""The task class both generative tasks extend: reading, splitting, reports and state.

Generative runs predict through ``graftkit.inference.generator.Generator`` (their capability is
``Generates``, graftkit/tasks/common/generation/capabilities.py), not through encode → logits → decode.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from graftkit.data.dataset import Example
from graftkit.data.readers import Row
from graftkit.errors import DataError
from graftkit.tasks.base import Task
from graftkit.tasks.common.generation import metrics, rows


class GenerativeTask(Task):
    """Shared behaviour of causal_lm and seq2seq; their capabilities tokenize prompts and targets."""

    #: row shapes this task accepts (graftkit.tasks.common.generation.rows)
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

    def input_of(self, example: Example) -> Any:
        return example.extra["messages"] if example.extra.get("format") == rows.CHAT else example.text

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
