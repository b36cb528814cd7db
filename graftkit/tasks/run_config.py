"""The whole run's config: the section models of graftkit/config.py plus ``task``, a discriminated
union on ``task.type`` of the config models the task folders define (one per registry line).

It lives in the task layer because the union is made of the task folders' own models. The union is
rebuilt when a task registers (``run_config_model``), so a task added at run time validates too.
A config file in an older shape is migrated first (graftkit/modeling/run_format.py), with a note per
moved key in the log; ``data.format`` is checked against the registered formats (``READERS``).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, create_model, field_validator

from graftkit.config import (
    AugmentConfig,
    ConfigPath,
    DataConfig,
    EvalConfig,
    ModelConfig,
    PeftSettings,
    PretrainConfig,
    TaskConfigBase,
    TrainConfig,
    TuneConfig,
    _Strict,
    explain_validation,
    parse_overrides,
    read_yaml_mapping,
    resolve_config_paths,
    set_dotted,
)
from graftkit.data.readers import READERS
from graftkit.errors import ConfigError
from graftkit.modeling.run_format import migrate_config, stamped
from graftkit.tasks import TASKS

log = logging.getLogger("graftkit.config")


class RunConfig(_Strict):
    """A whole run: everything `graftkit train` needs (validate through ``run_config_model()``, whose
    ``task`` is the union of the registered tasks' sections)."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$")
    output_dir: Annotated[str, ConfigPath()] = "runs"
    data: DataConfig
    model: ModelConfig = ModelConfig()
    task: SerializeAsAny[TaskConfigBase] = Field(default_factory=lambda: TASKS.config_class("classification")())
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


@functools.lru_cache(maxsize=4)
def _run_config_model(version: int) -> type[RunConfig]:
    union = Annotated[Union[tuple(TASKS.config_classes())], Field(discriminator="type")]
    return create_model("RunConfig", __base__=RunConfig, __module__=__name__,
                        task=(union, Field(default_factory=lambda: TASKS.config_class("classification")())))


def run_config_model() -> type[RunConfig]:
    """The RunConfig model whose ``task`` is a discriminated union of every registered task's section."""
    return _run_config_model(TASKS.version)


def config_from_dict(tree: dict, source: str = "config", base_dir: Path | None = None,
                     from_cwd: frozenset[str] = frozenset()) -> RunConfig:
    """Validate a config tree in today's format (``load_config`` and ``load_run_config`` migrate older ones
    first). With ``base_dir`` (the config file's folder) relative paths become absolute against it, those of the
    keys in ``from_cwd`` (command-line overrides) against the current folder; without, they stay as written
    (relative to the current folder)."""
    try:
        cfg = run_config_model().model_validate(tree)
    except ValidationError as err:
        raise explain_validation(err, source, unions={"task": TASKS.names()}) from None
    try:
        READERS.check(cfg.data.format, cfg.task.type)
    except ConfigError as err:
        raise ConfigError(f"{source}: data.format: {err}") from None
    if base_dir is not None:
        resolve_config_paths(cfg, base_dir, from_cwd)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML config file and apply ``--set key=value`` overrides; keys in an older shape (the file's or an
    override's) are migrated, each with a one-line note in the log naming the new key."""
    path = Path(path)
    tree = read_yaml_mapping(path)
    given = parse_overrides(overrides)
    for key, value in given:
        set_dotted(tree, key, value)
    tree, notes = migrate_config(tree, str(path))
    for note in notes:
        log.warning("%s: %s", path, note)
    return config_from_dict(tree, str(path), base_dir=path.parent, from_cwd=frozenset(key for key, _ in given))


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML, headed by the run-folder format version: what a run folder's config.yaml
    holds (every writer of a run folder writes it with this)."""
    return yaml.safe_dump(stamped(cfg.model_dump(mode="json")), sort_keys=False, allow_unicode=True)

