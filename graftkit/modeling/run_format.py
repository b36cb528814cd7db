"""Run-folder format versions, and the one place that migrates older run folders and config files.

A run folder records its format as the top-level key ``format_version`` of its ``config.yaml``; the
version covers every file of the folder whose shape changes (``config.yaml``, ``ensemble.json``).
It lives in config.yaml, not in a file of its own, because config.yaml is the one file every kind of
run folder has and every writer writes (training, ensembles, merges and pruning all write it with
``graftkit.tasks.run_config.dump_config``), and whatever copies a folder carries it along. The key is
taken out here, before the config is validated.

Loading reads the version (none: format 1, every folder written before versions) and applies
``STEPS`` in order, each a small function over the parsed files that turns format N into N + 1.
A user's config file has no version either and goes through the same steps, so an old config file
keeps working. Hence each step changes only what is still in its old shape and leaves a tree that is
already in the new shape alone (and a retired key name never comes back with another meaning). Steps
describe old formats, so they never consult today's config models.

To rename or move a key: bump ``FORMAT_VERSION``, append a step, add a test with the old shape.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from graftkit.config import read_yaml_mapping
from graftkit.errors import ConfigError
from graftkit.io import read_json

VERSION_KEY = "format_version"
#: the format this graftkit writes
FORMAT_VERSION = 2


@dataclass
class RunTrees:
    """The files of a run folder that steps may reshape, parsed; ``notes`` say what a step changed."""

    config: dict
    ensemble: dict | None = None
    notes: list[str] = field(default_factory=list)


#: what format 1 wrote under ``data:`` for every task, with the defaults it wrote: the ner task's file settings
#: (format 2 keeps them in the ner task's own section; its folder's migration takes them there)
V1_TASK_DATA_KEYS = {"tag_column": -1, "scheme": "auto", "strip_segment_digit": False, "repair_tags": False}

#: ``TASK_STEPS[n][task type]`` reshapes that task's part of a format-n config, before the step n -> n + 1
#: finishes; task folders supply them (``Task.migrations``) and the task registry fills this table
TASK_STEPS: dict[int, dict[str, Callable[[dict, dict, list[str]], None]]] = {}


def _task_keys_leave_data(trees: RunTrees) -> None:
    """Format 2: the task's own step takes its settings out of ``data:`` (ner: to ``task:``); what is left of
    format 1's task settings there is dropped (other tasks never read them), with a note when it was set."""
    data, task = trees.config.get("data"), trees.config.get("task")
    if not isinstance(data, dict):
        return
    task = task if isinstance(task, dict) else {}
    task_type = task.get("type", "classification")
    own = TASK_STEPS.get(1, {}).get(task_type)
    if own is not None:
        own(data, task, trees.notes)
    for key, default in V1_TASK_DATA_KEYS.items():
        if key in data and data.pop(key) != default:
            trees.notes.append(f"data.{key} is a setting of another task type; a '{task_type}' run never read "
                               "it, so it is dropped")


def _combine_is_a_mode(trees: RunTrees) -> None:
    """Format 2: ensemble.json's ``combine`` is "mean" or "vote"; ensembles from before it was a choice
    hold a description there (or nothing), and they averaged."""
    if trees.ensemble is not None and trees.ensemble.get("combine") not in ("mean", "vote"):
        trees.ensemble["combine"] = "mean"


def _v1_to_v2(trees: RunTrees) -> None:
    _task_keys_leave_data(trees)
    _combine_is_a_mode(trees)


#: ``STEPS[n - 1]`` turns format n into format n + 1
STEPS: list[Callable[[RunTrees], None]] = [_v1_to_v2]


def split_version(tree: dict, source: str) -> tuple[dict, int]:
    """A deep copy of ``tree`` without its version key, and the version (1 when absent)."""
    tree = copy.deepcopy(tree)
    version: Any = tree.pop(VERSION_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{source}: {VERSION_KEY} must be a whole number >= 1 (got {version!r})")
    if version > FORMAT_VERSION:
        raise ConfigError(f"{source}: written in run-folder format {version}, newer than this graftkit reads "
                          f"(formats 1 to {FORMAT_VERSION}); upgrade graftkit")
    return tree, version


def migrate(trees: RunTrees, version: int) -> RunTrees:
    """Apply the steps from ``version`` to ``FORMAT_VERSION`` to ``trees`` (in place) and return them."""
    for step in STEPS[version - 1:FORMAT_VERSION - 1]:
        step(trees)
    return trees


def migrate_config(tree: dict, source: str = "config") -> tuple[dict, list[str]]:
    """A config tree (a run folder's config.yaml or a user's config file) in today's format, without the
    version key, and one note per change a step made."""
    config, version = split_version(tree, source)
    trees = migrate(RunTrees(config), version)
    return trees.config, trees.notes


def stamped(tree: dict) -> dict:
    """``tree`` headed by today's format version: what a writer puts in config.yaml."""
    return {VERSION_KEY: FORMAT_VERSION, **{k: v for k, v in tree.items() if k != VERSION_KEY}}


def _read(run_dir: Path) -> tuple[dict, int]:
    path = run_dir / "config.yaml"
    return split_version(read_yaml_mapping(path, "run config"), str(path))


def read_config_tree(run_dir: str | Path) -> dict:
    """A run folder's config.yaml in today's format (not validated; ``load_run_config`` validates it)."""
    config, version = _read(Path(run_dir))
    return migrate(RunTrees(config), version).config


def read_ensemble_spec(run_dir: str | Path) -> dict:
    """An ensemble run folder's ensemble.json in today's format (the folder's config.yaml gives the version)."""
    run_dir = Path(run_dir)
    config, version = _read(run_dir) if (run_dir / "config.yaml").is_file() else ({}, 1)
    return migrate(RunTrees(config, read_json(run_dir / "ensemble.json")), version).ensemble
