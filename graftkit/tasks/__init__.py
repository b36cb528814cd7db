"""Task registry: one folder per task, one line here per task (its class names its config model).

Registration checks the task's contract (graftkit/tasks/base.py) and every capability it lists
(graftkit/tasks/capabilities.py), so a task that misses a method fails here, at import.
"""
from __future__ import annotations

import inspect

from graftkit.config import DataConfig, TaskConfigBase
from graftkit.modeling.run_format import TASK_STEPS
from graftkit.registry import Registry
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import INFERENCE_KINDS, TRAINING_PATHS, CardMetadata, interface_of
from graftkit.tasks.causal_lm import CausalLmTask
from graftkit.tasks.classification import ClassificationTask
from graftkit.tasks.embedding import EmbeddingTask
from graftkit.tasks.mlm import MlmTask
from graftkit.tasks.ner import NerTask
from graftkit.tasks.preference import PreferenceTask
from graftkit.tasks.ranking import RankingTask
from graftkit.tasks.regression import RegressionTask
from graftkit.tasks.reward import RewardTask
from graftkit.tasks.seq2seq import Seq2SeqTask


def check_task_class(cls: type, name: str) -> None:
    """Refuse (TypeError) a task class that breaks the contract: an abstract method left, a capability class
    missing methods, two implementations of one interface, or not exactly one training path and one
    inference kind."""
    where = f"task '{name}' ({cls.__module__}.{cls.__name__})"
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"{where} must subclass graftkit.tasks.base.Task")
    if inspect.isabstract(cls):
        raise TypeError(f"{where} does not implement {', '.join(sorted(cls.__abstractmethods__))}")
    if getattr(cls, "config_class", None) is None or cls.name != name:
        raise TypeError(f"{where} must set name = {name!r} and config_class")
    seen: dict[type, type] = {}
    for impl in cls.capabilities:
        interface = interface_of(impl)
        if inspect.isabstract(impl):
            raise TypeError(f"{where}: {impl.__name__} does not implement {interface.__name__}."
                            f"{', '.join(sorted(impl.__abstractmethods__))}")
        if interface in seen:
            raise TypeError(f"{where}: {seen[interface].__name__} and {impl.__name__} both implement "
                            f"{interface.__name__}")
        seen[interface] = impl
    for group in (TRAINING_PATHS, INFERENCE_KINDS, (CardMetadata,)):
        if sum(i in seen for i in group) != 1:
            raise TypeError(f"{where} must implement exactly one of {', '.join(i.__name__ for i in group)}")


class TaskRegistry(Registry):
    """Task type → task class; each class carries ``config_class``, its `task:` section model, and may have
    variants its config chooses (``Task.variant_for``)."""

    def __init__(self, kind: str):
        super().__init__(kind)
        #: bumped by each registration, so the run config's task union is rebuilt (graftkit/tasks/run_config.py)
        self.version = 0

    def register(self, name: str):
        register = super().register(name)

        def deco(cls):
            for each in (cls, *cls.variants):
                check_task_class(each, name)
            for version, step in cls.migrations.items():
                TASK_STEPS.setdefault(version, {})[name] = step
            self.version += 1
            return register(cls)
        return deco

    def unregister(self, name: str) -> None:
        """Remove a task type registered at run time (a plugin unloading, or a test's temporary task)."""
        cls = self.get(name)
        del self._items[name]
        for version in cls.migrations:
            TASK_STEPS.get(version, {}).pop(name, None)
        self.version += 1

    def config_class(self, name: str) -> type[TaskConfigBase]:
        return self.get(name).config_class

    def config_classes(self) -> list[type[TaskConfigBase]]:
        return [self.get(n).config_class for n in self.names()]

    def task_class(self, task_cfg: TaskConfigBase) -> type[Task]:
        """The class that handles ``task_cfg`` (a variant when its config chooses one)."""
        return self.get(task_cfg.type).variant_for(task_cfg)

    def classes(self) -> list[type[Task]]:
        """Every registered class and variant, in name order (the rows of the task × command matrix)."""
        return [c for n in self.names() for c in (self.get(n), *self.get(n).variants)]


TASKS = TaskRegistry("task type")
TASKS.register("classification")(ClassificationTask)
TASKS.register("ner")(NerTask)
TASKS.register("regression")(RegressionTask)
TASKS.register("embedding")(EmbeddingTask)
TASKS.register("mlm")(MlmTask)
TASKS.register("causal_lm")(CausalLmTask)
TASKS.register("seq2seq")(Seq2SeqTask)
TASKS.register("ranking")(RankingTask)
TASKS.register("reward")(RewardTask)
TASKS.register("preference")(PreferenceTask)


def build_task(task_cfg: TaskConfigBase, data_cfg: DataConfig | None = None) -> Task:
    """Instantiate the task (or the variant) that ``task_cfg`` names."""
    return TASKS.task_class(task_cfg)(task_cfg, data_cfg)


__all__ = ["TASKS", "Task", "build_task", "check_task_class"]
