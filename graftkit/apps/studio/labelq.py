"""The Label page: the active-learning queue of graftkit/apps/labelling over a workspace.

Pick a run and a pool file; ``select`` (the strategy's next rows) is written as a sheet ``label/<run>-<n>.csv``
(``write_selection``, the file ``graftkit label select`` writes); the page answers it row by row through a
``Sheet`` (atomic saves, undo); ``import_answers`` merges the answered rows into the run's labelled file
(``data.train``, which must lie inside the workspace); retrain queues the run's config again as a new run
``<run>-r<n>``, so the run before and the run after can be compared.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from graftkit.apps.labelling.answers import import_answers, write_selection
from graftkit.apps.labelling.pool import RunParts
from graftkit.apps.labelling.select import select
from graftkit.apps.labelling.sheet import Sheet
from graftkit.apps.studio import forms
from graftkit.apps.studio.jobs import JobStore
from graftkit.apps.studio.workspace import Workspace
from graftkit.errors import GraftkitError
from graftkit.modeling.run_format import stamped
from graftkit.tasks.capabilities import ScoresLabels

MAX_K = 500
_ROUND = re.compile(r"^(?P<base>.+)-r(?P<n>\d+)$")


class LabelDesk:
    """The sheets open in the studio (one ``Sheet`` per file, so undo works across requests)."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._sheets: dict[Path, Sheet] = {}
        self._lock = threading.Lock()

    def _labelled(self, parts: RunParts) -> str:
        """The run's labelled file, workspace-relative; refused when it lies outside the workspace."""
        if not parts.cfg.data.train:
            raise GraftkitError(f"run {parts.run.path.name} was trained from data.hub; label needs a labelled file")
        return self.workspace.relative(Path(parts.cfg.data.train))

    def suggest(self, run_dir: Path, pool: str | None, strategy: str, k: int) -> dict:
        """Select the next ``k`` rows and write them as a new sheet; returns its path, the note and the view."""
        if not 1 <= k <= MAX_K:
            raise GraftkitError(f"k: choose between 1 and {MAX_K} rows (got {k})")
        parts = _open(run_dir)
        self._labelled(parts)
        pool_path = str(self.workspace.path(pool)) if pool else None
        chosen = select(str(run_dir), k, strategy, pool_path, log=lambda m: None)
        if not chosen.candidates:
            raise GraftkitError(f"label: {strategy} found no rows to label")
        folder = self.workspace.path("label", must_exist=False)
        folder.mkdir(exist_ok=True)
        n = 1 + max([int(m.group(1)) for p in folder.glob(f"{run_dir.name}-*.csv")
                     if (m := re.fullmatch(re.escape(run_dir.name) + r"-(\d+)\.csv", p.name))] or [0])
        target = self.workspace.path(f"label/{run_dir.name}-{n}.csv", must_exist=False)
        write_selection(chosen, target, parts.cfg.data)
        return {"sheet": self.workspace.relative(target), "note": chosen.note, **self.sheet(run_dir, target).view()}

    def sheet(self, run_dir: Path, path: Path) -> Sheet:
        """The open sheet of ``path`` (a sheet of the label/ folder) with ``run_dir``'s labels."""
        if path.parent != self.workspace.root / "label" or path.suffix != ".csv":
            raise GraftkitError(f"'{self.workspace.relative(path)}' is not a sheet of label/")
        with self._lock:
            if path not in self._sheets:
                parts = _open(run_dir)
                self._sheets[path] = Sheet(path, parts.task.capability(ScoresLabels, "label").labels, parts.cfg.data)
            return self._sheets[path]

    def sheets(self) -> list[str]:
        folder = self.workspace.root / "label"
        return sorted(self.workspace.relative(p) for p in folder.glob("*.csv")) if folder.is_dir() else []

    def merge(self, run_dir: Path, path: Path) -> dict:
        """Merge the sheet's answered rows into the run's labelled file (the checks of ``graftkit label import``)."""
        into = self._labelled(_open(run_dir))
        got = import_answers(str(self.sheet(run_dir, path).path), run_dir, str(self.workspace.path(into)))
        return {**got, "into": into}

    def retrain(self, run_dir: Path, store: JobStore) -> int:
        """Queue the run's config (its config.yaml, data paths inside the workspace) as the run ``<run>-r<n>``."""
        parts = _open(run_dir)
        tree = parts.run.config_tree()
        m = _ROUND.match(run_dir.name)
        base, n = (m["base"], int(m["n"]) + 1) if m else (run_dir.name, 2)
        taken = {p.name for p in self.workspace.runs.iterdir()} | {j["run_name"] for j in store.all()}
        while f"{base}-r{n}" in taken or f".{base}-r{n}.partial" in taken:
            n += 1
        name = f"{base}-r{n}"
        data = dict(tree.get("data") or {})
        for key in ("train", "validation", "test"):
            if data.get(key):
                inside = self.workspace.path(self.workspace.relative(Path(data[key])))
                data[key] = os.path.relpath(inside, self.workspace.configs)
        tree = stamped({**tree, "name": name, "output_dir": "../runs", "data": data})  # today's format: no migration
        config = f"configs/{name}.yaml"
        cfg = forms.validate(tree, self.workspace.path(config, must_exist=False), config)
        forms.save(tree, self.workspace.path(config, must_exist=False))
        return store.add(config, cfg.name, self.workspace.relative(cfg.run_dir))


def _open(run_dir: Path) -> RunParts:
    parts = RunParts.open(run_dir)
    if parts.task.capability(ScoresLabels, "label").multi_label:  # as graftkit label page: one label per row
        raise GraftkitError(f"label: {run_dir.name} is multi-label and this page picks one label per row; fill "
                            "the sheet's label column directly (labels joined by '|')")
    return parts
