"""The whole run's config: the section models of graftkit/config.py plus ``task``, a discriminated
union on ``task.type`` of the config models the task folders define (one per registry line).

It lives in the task layer because the union is made of the task folders' own models.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError, field_validator

from graftkit.config import (
    AugmentConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    PeftSettings,
    PretrainConfig,
    TrainConfig,
    TuneConfig,
    _Strict,
    explain_validation,
    parse_overrides,
    read_yaml_mapping,
    set_dotted,
)
from graftkit.tasks import TASKS

TaskConfig = Annotated[Union[tuple(TASKS.config_classes())], Field(discriminator="type")]


class RunConfig(_Strict):
    """A whole run: everything `graftkit train` needs."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$")
    output_dir: str = "runs"
    data: DataConfig
    model: ModelConfig = ModelConfig()
    task: TaskConfig = Field(default_factory=lambda: TASKS.config_class("classification")())
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    peft: PeftSettings | None = None
    augment: AugmentConfig | None = None
    tune: TuneConfig | None = None
    pretrain: PretrainConfig | None = None

    @field_validator("task", mode="before")
    @classmethod
    def _default_type(cls, v: Any) -> Any:
        """A `task:` section without `type` means classification, as it always has."""
        return {"type": "classification", **v} if isinstance(v, dict) and "type" not in v else v

    @field_validator("output_dir")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("output_dir must not be empty")
        return v

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def config_from_dict(tree: dict, source: str = "config", base_dir: Path | None = None) -> RunConfig:
    """Validate a config tree; relative data paths are resolved against ``base_dir``."""
    try:
        cfg = RunConfig.model_validate(tree)
    except ValidationError as err:
        raise explain_validation(err, source, unions={"task": TASKS.names()}) from None
    if base_dir is not None:
        for split in ("train", "validation", "test"):
            p = getattr(cfg.data, split)
            if p and not Path(p).is_absolute() and not Path(p).exists() and (base_dir / p).exists():
                setattr(cfg.data, split, str(base_dir / p))
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config file and apply ``--set key=value`` overrides."""
    path = Path(path)
    tree = read_yaml_mapping(path)
    for key, value in parse_overrides(overrides):
        set_dotted(tree, key, value)
    return config_from_dict(tree, str(path), base_dir=path.parent)


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML (what is saved in the run folder)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def task_config(task_type: str, **values: Any):
    """The config model of ``task_type`` with ``values`` (defaults elsewhere); used by tests and loaders."""
    return TASKS.config_class(task_type)(type=task_type, **values)
