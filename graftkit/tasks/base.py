"""The task contract: what every task folder provides, plus the capabilities it composes.

Every task reads and validates its data, fits its label state, restores it from a run folder and
reports metrics on predictions. Everything else (how it trains, how it predicts, calibration,
explanations, robustness, label errors, distillation, ...) is a capability
(graftkit/tasks/capabilities.py): a class listed in ``Task.capabilities`` and built with the task.
Its fitted state is JSON and lives in ``labels.json`` of a run folder, so a run is served without
the training config.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Hashable, TypeVar

from graftkit.config import DataConfig, TaskConfigBase
from graftkit.data.dataset import Example, rows_to_examples
from graftkit.data.readers import Row, read_rows
from graftkit.errors import UnsupportedError
from graftkit.tasks.capabilities import Capability, interface_of
from graftkit.tasks.matrix import refusal

C = TypeVar("C", bound=Capability)


class Task(ABC):
    """What the trainer, evaluator and inference need from every task; the rest is capabilities."""

    #: the task type (``task.type``), set by its registry line
    name: ClassVar[str] = ""
    #: the pydantic model of this task's `task:` section (graftkit/tasks/<task>/config.py)
    config_class: ClassVar[type[TaskConfigBase]]
    #: the class (transformers Auto* or any with ``from_pretrained``) that loads the run's model
    model_class: ClassVar[Any]
    #: the metric for best-checkpoint selection when ``train.metric`` is ``auto``
    default_metric: ClassVar[str] = "loss"
    #: the classes implementing this task's capabilities, one per interface
    capabilities: ClassVar[tuple[type[Capability], ...]] = ()
    #: a short qualifier of a variant class (ranking: two_tower); "" for a task type's main class
    variant: ClassVar[str] = ""
    #: the variant classes of this task type, one of which its config may choose (``variant_for``)
    variants: ClassVar[tuple[type["Task"], ...]] = ()
    #: run-folder format version → this task's part of the step to the next (graftkit/modeling/run_format.py)
    migrations: ClassVar[dict[int, Callable[[dict, dict, list[str]], None]]] = {}

    def __init__(self, task_cfg: TaskConfigBase | None = None, data_cfg: DataConfig | None = None):
        self.task_cfg = task_cfg or self.config_class()
        self.data_cfg = data_cfg
        self._built: dict[type, Capability] = {}

    # -- capabilities ----------------------------------------------------------------------
    @classmethod
    def label(cls) -> str:
        """How users see the task type: ``ner``, or ``ranking (two_tower)`` for a variant."""
        return f"{cls.name} ({cls.variant})" if cls.variant else cls.name

    @classmethod
    def variant_for(cls, task_cfg: TaskConfigBase) -> type["Task"]:
        """The class that handles ``task_cfg``: this one, unless the config chooses one of ``variants``."""
        return cls

    @classmethod
    def implementation(cls, interface: type[C]) -> type[C] | None:
        """The class implementing ``interface`` for this task, or None."""
        return next((impl for impl in cls.capabilities if interface_of(impl) is interface), None)

    @classmethod
    def has(cls, interface: type[Capability]) -> bool:
        """Whether this task offers ``interface``."""
        return cls.implementation(interface) is not None

    def optional(self, interface: type[C]) -> C | None:
        """The task's implementation of ``interface``, or None: for features whose part a task may lack
        without anything to refuse (the feature then leaves that part out)."""
        return self.capability(interface, "") if self.has(interface) else None

    def capability(self, interface: type[C], command: str) -> C:
        """The task's implementation of ``interface`` (built once per task object).

        Raises:
            UnsupportedError: the task lacks it; one line naming ``command``, the task and what it supports.
        """
        impl = self.implementation(interface)
        if impl is None:
            raise UnsupportedError(refusal(type(self), command))
        if interface not in self._built:
            self._built[interface] = impl(self)
        return self._built[interface]  # type: ignore[return-value]

    # -- data ------------------------------------------------------------------------------
    def read(self, path: str, data_cfg: DataConfig, with_labels: bool = True) -> tuple[list[Example], int]:
        """Examples of one data file and the number of invalid rows dropped (``data.drop_invalid``)."""
        return self.examples_from_rows(read_rows(path, data_cfg.format, data_cfg.encoding), data_cfg, with_labels)

    def examples_from_rows(self, rows: list[Row], data_cfg: DataConfig,
                           with_labels: bool = True) -> tuple[list[Example], int]:
        """Examples of rows already read (a ``data.hub`` split) and the number of invalid rows dropped."""
        return rows_to_examples(rows, data_cfg, self.parse_label, with_labels=with_labels)

    @abstractmethod
    def parse_label(self, raw: Any, row: Row) -> Any:
        """Validate one raw label value (raise DataError naming row.path/row.line)."""

    def strat_key(self, example: Example) -> Hashable:
        """Key for stratified splitting."""
        return str(example.label)

    @abstractmethod
    def fit(self, train: list[Example]) -> None:
        """Learn label maps (and similar state) from the training examples."""

    def check(self, examples: list[Example]) -> None:
        """Reject examples the fitted state cannot represent (e.g. labels unseen in training)."""
        return None

    def input_of(self, example: Example) -> Any:
        """What a user passes to ``predict`` for this example (text, or (text, pair))."""
        return example.text if example.text_pair is None else (example.text, example.text_pair)

    # -- state and reports -----------------------------------------------------------------
    @abstractmethod
    def state(self) -> dict:
        """JSON-serialisable fitted state (saved as labels.json)."""

    @abstractmethod
    def load_state(self, state: dict) -> None:
        """Restore what ``state`` returned."""

    def bind_run(self, run_dir: Path, load_member: Callable[[Path], "Task"]) -> None:
        """Read state kept in the run folder's weights (e.g. CRF transitions); ``load_member(folder)``
        loads the task of an ensemble member folder."""
        return None

    @abstractmethod
    def report(self, examples: list[Example], predictions: list, out_dir: Path | None,
               plots: bool = True) -> dict[str, Any]:
        """Final metrics; writes error-analysis files and plots into ``out_dir`` when given."""
