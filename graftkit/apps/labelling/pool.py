"""What active learning reads besides the run: the labelled rows, the test split, and the pool of rows to label.

A pool row whose input is already labelled, or held out for testing, is no candidate: it is dropped and counted
(inputs match as the data-quality report matches near-duplicates: NFKC, case-folded, without punctuation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from graftkit.data.dataset import Example
from graftkit.data.quality import input_key
from graftkit.data.readers import read_rows
from graftkit.errors import GraftkitError
from graftkit.inference.base import load_run_config, load_task
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.run_config import RunConfig


@dataclass
class RunParts:
    """What labelling reads of a run folder: the folder, its config and its fitted task (a Predictor has all three)."""

    run: RunFolder
    cfg: RunConfig
    task: Task

    @classmethod
    def open(cls, run_dir: str | Path) -> "RunParts":
        run = RunFolder(run_dir).require_model()
        cfg = load_run_config(run)
        return cls(run, cfg, load_task(run, cfg))


@dataclass
class Labelled:
    """The run's labelled rows (``path``) and its test split, as active learning sees them."""

    path: str
    rows: list[Example]
    test: list[Example]

    def keys(self) -> dict[tuple, Example]:
        return {input_key(e): e for e in self.rows}

    def test_keys(self) -> dict[tuple, Example]:
        return {input_key(e): e for e in self.test}


def labelled_data(runner: RunParts, labelled_path: str | None = None) -> Labelled:
    """The labelled file (default: the run's ``data.train``) and the run's test split (``test_split.jsonl``)."""
    cfg = runner.cfg
    path = labelled_path or cfg.data.train
    if not path:
        raise GraftkitError(f"{runner.run.path} was trained from data.hub: name the labelled file with --labelled")
    rows, _ = runner.task.read(str(path), cfg.data)
    return Labelled(str(path), rows, runner.run.read_test_split() or [])


@dataclass
class Pool:
    """The candidates to label, and how many pool rows were dropped and why."""

    path: str
    rows: list[Example]
    dropped: dict[str, int] = field(default_factory=dict)

    def note(self) -> str:
        reasons = {"labelled": "already labelled", "test": "in the test split", "repeated": "repeated in the pool"}
        dropped = ", ".join(f"{n} {reasons[k]}" for k, n in self.dropped.items() if n)
        return f"pool {self.path}: {len(self.rows)} candidates" + (f"; dropped {dropped}" if dropped else "")


def read_pool(path: str, runner: RunParts, labelled: Labelled) -> Pool:
    """The pool's rows (their label column, if any, is not read) less those already labelled or in the test split.

    Raises:
        DataError: the pool file holds no rows. GraftkitError: nothing is left once those rows are dropped.
    """
    rows = read_rows(path, runner.cfg.data.format, runner.cfg.data.encoding)  # an empty file: DataError, one line
    examples, _ = runner.task.examples_from_rows(rows, runner.cfg.data, with_labels=False)
    known, held_out, seen = labelled.keys(), labelled.test_keys(), set()
    pool = Pool(path, [], {"labelled": 0, "test": 0, "repeated": 0})
    for e in examples:
        key = input_key(e)
        reason = "labelled" if key in known else "test" if key in held_out else "repeated" if key in seen else None
        seen.add(key)
        if reason:
            pool.dropped[reason] += 1
        else:
            pool.rows.append(e)
    if not pool.rows:
        raise GraftkitError(f"label select: no candidates are left in {path}: all {len(examples)} rows are already "
                            "labelled, in the test split, or repeated")
    return pool
