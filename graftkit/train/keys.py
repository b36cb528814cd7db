"""Which config keys a run sets, and refusing, by name and before any work, those its training path does
not honour.

A key is *set* when its value differs from the model's default, or when it names an optional section
(default None) that is present: a saved run config spells every default out, so being written down
says nothing. Only the sections that configure training are read (``SECTIONS``); ``data`` is read by
every task, ``task`` and ``eval`` by the task's and the evaluation's own code, ``tune`` by
``graftkit tune``.

What a path honours is declared, never listed as refusals: the Trainer path's keys are the union of
what its components and assembly steps consume (graftkit/train/trainer.py: ``path_keys``), a task that
trains itself declares its own (``TrainsItself.supported_keys``). A key whose component needs a task
capability (``Component.needs``: ``train.distill`` needs ``Distills``) is refused with the task ×
command matrix's wording when the task lacks it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from pydantic import BaseModel

from graftkit.errors import ConfigError

#: the run config's sections whose keys a training path consumes
SECTIONS = ("model", "train", "peft", "augment", "pretrain")


def set_keys(cfg: BaseModel) -> list[str]:
    """Dotted keys ``cfg`` sets, in the config's order; an optional section that is present comes before
    its own keys that differ from their defaults (``train.distill``, then ``train.distill.teacher``)."""
    found: list[str] = []
    for section in SECTIONS:
        default = type(cfg).model_fields[section].get_default(call_default_factory=True)
        _walk(getattr(cfg, section), default, section, found)
    return found


def _walk(value: Any, default: Any, key: str, found: list[str]) -> None:
    if not isinstance(value, BaseModel):
        if value != default:
            found.append(key)
        return
    if not isinstance(default, BaseModel):  # an optional section, present: it is set as a whole
        found.append(key)
        default = None
    for name, field in type(value).model_fields.items():
        inner = getattr(default, name) if default is not None else field.get_default(call_default_factory=True)
        _walk(getattr(value, name), inner, f"{key}.{name}", found)


def covers(declared: str, key: str) -> bool:
    """Whether honouring ``declared`` honours ``key``: the same key, a key inside it, or the section that
    holds it (a component that reads ``train.distill.teacher`` applies the ``train.distill`` section)."""
    return key == declared or key.startswith(declared + ".") or declared.startswith(key + ".")


def value_at(cfg: BaseModel, key: str) -> Any:
    """The value of dotted ``key`` in ``cfg``."""
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def refuse_unsupported(cfg: BaseModel, task: Any, supported: Iterable[str], gates: Mapping[str, type],
                       trained_by: str, fixed: Mapping[str, Any] | None = None) -> None:
    """Refuse, in one line, the keys ``cfg`` sets that ``task``'s training path does not honour.

    Args:
        supported: the dotted keys the path honours.
        gates: key → the capability it needs; checked first, refused in the matrix's words.
        trained_by: what trains this path, for the message (``sentence-transformers``).
        fixed: key → the value the path always trains with (a bi-encoder never stops early): a config that
            sets the key to that value asks for what happens anyway.

    Raises:
        UnsupportedError: a set key needs a capability the task lacks.
        ConfigError: set keys the path does not apply, named together.
    """
    keys, supported, fixed = set_keys(cfg), tuple(supported), dict(fixed or {})
    for key in keys:
        for gated, capability in gates.items():
            if covers(gated, key):
                task.capability(capability, key)  # UnsupportedError: "train.distill: ner runs do not support ..."
    unapplied = [k for k in keys if not any(covers(d, k) for d in supported)
                 and not (k in fixed and value_at(cfg, k) == fixed[k])]
    unapplied = [k for k in unapplied if not any(k.startswith(u + ".") for u in unapplied)]  # a section names its keys
    if unapplied:
        it = "it" if len(unapplied) == 1 else "them"
        raise ConfigError(f"{', '.join(unapplied)}: {task.label()} runs (trained by {trained_by}) do not apply {it}; "
                          f"remove {it} (their training honours: {', '.join(supported + _shown(fixed))})")


def _shown(fixed: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f"{k}={'null' if v is None else v}" for k, v in fixed.items())
