"""The task contract: what a task folder must provide to plug into graftkit's one path.

A task turns validated ``Example`` objects into model inputs, names the Auto* model class,
supplies loss/metrics for the Trainer, and turns logits back into user-facing predictions.
Its fitted state (label maps, thresholds, ...) is JSON and lives in ``labels.json`` of a run
folder, so a run can be served without the training config.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Hashable, Protocol, Sequence, runtime_checkable

import numpy as np

from graftkit.config import DataConfig, TaskConfig
from graftkit.data.dataset import Example
from graftkit.data.readers import Row


@runtime_checkable
class Task(Protocol):
    """Everything the trainer, evaluator and predictor need from a task."""

    name: ClassVar[str]
    #: transformers Auto* class (or any class with ``from_pretrained``) that builds backbone + head
    model_class: ClassVar[Any]
    #: metric used for best-checkpoint selection when ``train.metric`` is ``auto``
    default_metric: ClassVar[str]

    # -- data ---------------------------------------------------------------------------
    def parse_label(self, raw: Any, row: Row) -> Any:
        """Validate one raw label value (raise DataError naming row.path/row.line)."""

    def strat_key(self, example: Example) -> Hashable:
        """Key for stratified splitting."""

    def fit(self, train: list[Example]) -> None:
        """Learn label maps (and similar state) from the training examples."""

    def check(self, examples: list[Example]) -> None:
        """Reject examples the fitted state cannot represent (e.g. labels unseen in training)."""

    # -- model and training -------------------------------------------------------------
    def model_kwargs(self) -> dict:
        """Extra config kwargs for ``model_class.from_pretrained`` (num_labels, id2label, ...)."""

    def build_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """A ``datasets.Dataset`` of unpadded features with ``labels``."""

    def collator(self, tokenizer) -> Callable:
        """Batch collator (dynamic padding)."""

    def loss_fn(self, train: list[Example]) -> Callable | None:
        """Loss(logits, labels) replacing the model's own, or None to keep it."""

    def compute_metrics(self, eval_pred) -> dict[str, float]:
        """Validation metrics from a ``transformers.EvalPrediction``."""

    # -- inference ----------------------------------------------------------------------
    def input_of(self, example: Example) -> Any:
        """What a user passes to ``predict`` for this example (text, or (text, pair))."""

    def encode(self, inputs: Sequence[Any], tokenizer, max_length: int) -> tuple[dict[str, np.ndarray], Any]:
        """Padded numpy features for a batch of inputs, plus context for ``decode``."""

    def decode(self, logits: np.ndarray, context: Any) -> list[dict]:
        """One prediction dict per input."""

    def calibrate(self, examples: list[Example], predictions: list[dict]) -> None:
        """Tune decision state (e.g. thresholds) on validation predictions; may do nothing."""

    # -- reporting and state ------------------------------------------------------------
    def report(self, examples: list[Example], predictions: list[dict], out_dir: Path | None,
               plots: bool = True) -> dict[str, Any]:
        """Final metrics; writes error-analysis files and plots into ``out_dir`` when given."""

    def state(self) -> dict:
        """JSON-serialisable fitted state (saved as labels.json)."""

    def load_state(self, state: dict) -> None:
        """Restore what ``state`` returned."""


class TaskBase:
    """Defaults shared by tasks; a task overrides what differs."""

    name: ClassVar[str] = ""
    default_metric: ClassVar[str] = "loss"

    def __init__(self, task_cfg: TaskConfig | None = None, data_cfg: DataConfig | None = None):
        self.task_cfg = task_cfg or TaskConfig(type=self.name)
        self.data_cfg = data_cfg

    def strat_key(self, example: Example) -> Hashable:
        return str(example.label)

    def check(self, examples: list[Example]) -> None:
        return None

    def loss_fn(self, train: list[Example]) -> Callable | None:
        return None

    def input_of(self, example: Example) -> Any:
        return example.text if example.text_pair is None else (example.text, example.text_pair)

    def calibrate(self, examples: list[Example], predictions: list[dict]) -> None:
        return None
