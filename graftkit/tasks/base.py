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

from graftkit.config import DataConfig, TaskConfigBase
from graftkit.data.dataset import Example, rows_to_examples
from graftkit.data.readers import Row, read_rows


@runtime_checkable
class Task(Protocol):
    """Everything the trainer, evaluator and predictor need from a task."""

    name: ClassVar[str]
    #: the pydantic model of this task's `task:` section (graftkit/tasks/<task>/config.py)
    config_class: ClassVar[type[TaskConfigBase]]
    #: transformers Auto* class (or any class with ``from_pretrained``) that builds backbone + head
    model_class: ClassVar[Any]
    #: metric used for best-checkpoint selection when ``train.metric`` is ``auto``
    default_metric: ClassVar[str]

    #: EDA-style text augmentation applies (False for tasks whose labels are tied to tokens)
    text_augmentation: ClassVar[bool]
    #: the task has its own ensemble rule (``combine: vote``) in ``ensemble_logits``
    can_vote: ClassVar[bool]
    #: the task trains through its own library's trainer (``train_run``) instead of transformers.Trainer
    owns_training: ClassVar[bool]
    #: each input has one right answer (a class, label set, entity set or number): class balance,
    #: conflicting labels, robustness flip rates and the label-error search apply
    fixed_labels: ClassVar[bool]
    #: the task writes text (causal_lm, seq2seq): it predicts through ``inference.generator.Generator``
    #: and validates by generating (``evaluate_generation``)
    generative: ClassVar[bool]

    # -- data ---------------------------------------------------------------------------
    def read(self, path: str, data_cfg: DataConfig, with_labels: bool = True) -> tuple[list[Example], int]:
        """Examples of one data file and the number of invalid rows dropped (``data.drop_invalid``)."""

    def examples_from_rows(self, rows: list[Row], data_cfg: DataConfig,
                           with_labels: bool = True) -> tuple[list[Example], int]:
        """Examples of rows already read (a ``data.hub`` split) and the number of invalid rows dropped."""

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

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        """The validation ``datasets.Dataset`` the Trainer evaluates (default: ``build_dataset``)."""

    def collator(self, tokenizer) -> Callable:
        """Batch collator (dynamic padding)."""

    def training_arguments(self) -> dict:
        """Extra ``TrainingArguments`` this task needs (e.g. keeping columns its collator reads)."""

    def prepare_model(self, model, tokenizer):
        """Adjust the freshly loaded pretrained model before training (special token ids, the
        ``generation_config`` of generative tasks); returns the model."""

    def evaluate_generation(self, model, tokenizer, examples: list[Example]) -> dict[str, float]:
        """Validation metrics from generating text (generative tasks; merged into each evaluation as
        ``eval_<name>`` so the best checkpoint follows the task metric); {} for the others."""

    #: ``Trainer(preprocess_logits_for_metrics=...)``: shrink evaluation logits before they are
    #: gathered (vocabulary-wide MLM logits), or None to keep them
    preprocess_logits: ClassVar[Callable | None]

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

    def temperature_targets(self, examples: list[Example]) -> np.ndarray | None:
        """Gold targets for temperature scaling of the logits (class ids; a 0/1 matrix, one column per
        label, for multi-label), or None when the task's scores are not probabilities to calibrate."""

    def set_temperature(self, temperature: list[float]) -> None:
        """Divide the logits by ``temperature`` (one value; one per label for multi-label) in ``decode``."""

    def bind_run(self, run_dir: Path, load_member: Callable[[Path], "Task"]) -> None:
        """Read state kept in the run folder's weights (e.g. CRF transitions); ``load_member(folder)``
        loads the task of an ensemble member folder."""

    # -- ensembles and own trainers -----------------------------------------------------
    def ensemble_logits(self, logits: list) -> Any:
        """Combine the members' logits under ``combine: vote`` (only when ``can_vote``)."""

    def train_run(self, cfg: Any, session: Any) -> Any:
        """Train and write the run folder with the task's own trainer (only when ``owns_training``);
        ``session`` is the train layer's :class:`graftkit.train.session.TrainSession`."""

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
    config_class: ClassVar[type[TaskConfigBase]]
    default_metric: ClassVar[str] = "loss"
    text_augmentation: ClassVar[bool] = True
    can_vote: ClassVar[bool] = False
    owns_training: ClassVar[bool] = False
    fixed_labels: ClassVar[bool] = False
    generative: ClassVar[bool] = False
    preprocess_logits: ClassVar[Callable | None] = None

    def __init__(self, task_cfg: TaskConfigBase | None = None, data_cfg: DataConfig | None = None):
        self.task_cfg = task_cfg or self.config_class()
        self.data_cfg = data_cfg

    def read(self, path: str, data_cfg: DataConfig, with_labels: bool = True) -> tuple[list[Example], int]:
        return self.examples_from_rows(read_rows(path, data_cfg.format, data_cfg.encoding), data_cfg, with_labels)

    def examples_from_rows(self, rows: list[Row], data_cfg: DataConfig,
                           with_labels: bool = True) -> tuple[list[Example], int]:
        return rows_to_examples(rows, data_cfg, self.parse_label, with_labels=with_labels)

    def strat_key(self, example: Example) -> Hashable:
        return str(example.label)

    def check(self, examples: list[Example]) -> None:
        return None

    def loss_fn(self, train: list[Example]) -> Callable | None:
        return None

    def build_eval_dataset(self, examples: list[Example], tokenizer, max_length: int):
        return self.build_dataset(examples, tokenizer, max_length)

    def training_arguments(self) -> dict:
        return {}

    def prepare_model(self, model, tokenizer):
        return model

    def evaluate_generation(self, model, tokenizer, examples: list[Example]) -> dict[str, float]:
        return {}

    def input_of(self, example: Example) -> Any:
        return example.text if example.text_pair is None else (example.text, example.text_pair)

    def calibrate(self, examples: list[Example], predictions: list[dict]) -> None:
        return None

    def temperature_targets(self, examples: list[Example]) -> np.ndarray | None:
        return None

    def set_temperature(self, temperature: list[float]) -> None:
        raise NotImplementedError(f"{self.name} scores are not calibrated by a temperature")

    def bind_run(self, run_dir: Path, load_member: Callable[[Path], Task]) -> None:
        return None

    def ensemble_logits(self, logits: list) -> Any:
        raise NotImplementedError(f"{self.name} runs have no vote rule (can_vote is False)")

    def train_run(self, cfg: Any, session: Any) -> Any:
        raise NotImplementedError(f"{self.name} trains through transformers.Trainer (owns_training is False)")
