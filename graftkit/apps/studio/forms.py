"""The new-run form, generated from the pydantic config models, and its validation (the CLI's own).

Every key of the run config's sections is a field with its default and description, read from the models
(graftkit/config.py and the chosen task's config model); nothing is written twice. A field's value is YAML, as a
``--set key=value`` override is on the command line. Only values that differ from the default are kept, and the
tree goes through ``config_from_dict`` (the function ``load_config`` ends in), with the config file's path as its
source: the messages are the CLI's, word for word.
"""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from graftkit.config import DataConfig, EvalConfig, ModelConfig, TrainConfig, set_dotted
from graftkit.data.readers import READERS
from graftkit.errors import ConfigError
from graftkit.io import write_text
from graftkit.modeling.run_format import migrate_config, stamped
from graftkit.tasks import TASKS
from graftkit.tasks.run_config import RunConfig, config_from_dict

#: the sections the form shows, in order (peft, augment, tune and pretrain are whole optional sections: a YAML
#: mapping each, in "more sections")
SECTIONS: tuple[tuple[str, type[BaseModel]], ...] = (("data", DataConfig), ("model", ModelConfig),
                                                     ("train", TrainConfig), ("eval", EvalConfig))
EXTRA_SECTIONS = ("peft", "augment", "tune", "pretrain")


def _yaml(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return "" if value is None else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip() \
        .removesuffix("\n...").removesuffix("...").strip()


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _choices(annotation: Any) -> list[str] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


def model_fields(model: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One form field per key of ``model`` (nested sections flattened to dotted keys)."""
    fields = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        if _is_model(info.annotation) and info.default is not None:
            fields += model_fields(info.annotation, f"{key}.")
            continue
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append({"key": key, "default": _yaml(default), "description": info.description or "",
                       "required": info.is_required(), "choices": _choices(info.annotation),
                       "type": _type_name(info.annotation)})
    return fields


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(\w+)", r"\1", text or str(annotation))


def form_schema(task: str) -> dict[str, Any]:
    """The form of a ``task`` run: its sections' fields, the task's own section, the formats it reads.

    Raises:
        ConfigError: an unknown task type (the registry's names are in the message).
    """
    if task not in TASKS.names():
        raise ConfigError(f"unknown task type '{task}'; choose one of: {', '.join(TASKS.names())}")
    sections = [{"name": "run", "fields": model_fields(RunConfig, "", skip=tuple(set(RunConfig.model_fields) - {"name"}))}]
    sections.append({"name": "task", "fields": model_fields(TASKS.config_class(task), "task.", skip=("type",))})
    sections += [{"name": name, "fields": model_fields(model, f"{name}.")} for name, model in SECTIONS]
    extra = [{"key": s, "default": "", "description": (RunConfig.model_fields[s].annotation.__args__[0].__doc__ or "")
              .strip().splitlines()[0], "required": False, "choices": None, "type": "mapping"} for s in EXTRA_SECTIONS]
    sections.append({"name": "more sections", "fields": extra})
    return {"task": task, "tasks": TASKS.names(), "formats": READERS.names_for(task), "sections": sections}


def _defaults(task: str) -> dict[str, str]:
    return {f["key"]: f["default"] for s in form_schema(task)["sections"] for f in s["fields"]}


def build_tree(task: str, values: dict[str, str], data_paths: dict[str, str]) -> dict[str, Any]:
    """The config tree of the form: ``task.type``, the values that differ from their defaults (YAML-parsed, as
    ``--set`` parses them), the data paths relative to configs/ and ``output_dir: ../runs``.

    Raises:
        ConfigError: a key the form does not have, or a value that is not YAML.
    """
    defaults = _defaults(task)
    tree: dict[str, Any] = {"task": {"type": task}, "output_dir": "../runs"}
    for key, text in values.items():
        if key not in defaults:
            raise ConfigError(f"{key}: unknown key; check its spelling (configs/ holds a complete example of each "
                              "config)")
        if (text or "").strip() == defaults[key].strip():
            continue
        try:
            value = yaml.safe_load(text) if (text or "").strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"{key}: not a valid YAML value ({str(err).splitlines()[0]})") from None
        set_dotted(tree, key, value)
    for key, path in data_paths.items():
        set_dotted(tree, key, path)
    return tree


def validate(tree: dict[str, Any], config_path: Path, source: str) -> RunConfig:
    """``tree`` checked exactly as ``graftkit train`` checks the file ``config_path`` (``source``: its name as
    the messages show it). Raises ConfigError with the CLI's message."""
    migrated, _ = migrate_config(dict(tree), source)
    return config_from_dict(migrated, source, base_dir=config_path.parent)


def save(tree: dict[str, Any], config_path: Path) -> None:
    """Write the config YAML (headed by the run-folder format version) that ``graftkit train`` runs as it is."""
    write_text(config_path, yaml.safe_dump(stamped(tree), sort_keys=False, allow_unicode=True))
