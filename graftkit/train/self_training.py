"""Self-training (``train.self_training``): rounds in which the run's own confident predictions on unlabelled text
join its training data (Yarowsky 1995; Xie et al. 2020's noisy student, with UDA's consistency term as an option).

Round 0 trains on the labelled rows. After each round:
1. its model (probabilities calibrated on validation) predicts the validation split and the pool;
2. each class gets a confidence threshold, the lowest at which that class's validation predictions are still
   ``precision`` right (graftkit/train/pseudo_labels.py);
3. every class gains the same number of its most confident pool rows above its threshold (at most
   ``max_per_class``), so the added rows stay balanced; they leave the pool and keep their label;
4. the next round trains from the starting checkpoint (not the last round's model, whose mistakes would
   compound) on the labelled rows plus every row added so far.
The loop ends after ``rounds`` rounds, when no row passes, or when the validation metric has not improved for
``patience`` rounds. The run is the best round by that metric, evaluated as any run, with the rounds in
``self_training.json``, ``metrics.json`` and the card.

Each round is an ordinary run folder inside the run's in-progress folder (``self_training/round-<r>``, scored on
validation only); the rows a round adds are written before it trains (``added-<r>.jsonl``). A killed run
continues with ``--resume``: finished rounds are read back, the round in progress resumes from its checkpoint,
and the same rows are added again, so it ends as an uninterrupted run would.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable

from graftkit.config import greater_is_better
from graftkit.data.dataset import Example, Splits, example_from_json, example_to_json
from graftkit.errors import ConfigError
from graftkit.inference.runs import open_run
from graftkit.io import read_json, write_json, write_jsonl
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import SelfTrains
from graftkit.tasks.run_config import RunConfig
from graftkit.train.arguments import selection_metric
from graftkit.train.pseudo_labels import balanced_selection, class_thresholds, read_pool

COMMAND = "train.self_training"
#: ``train_round(round_cfg, splits, resume)``: one round trained as an ordinary run; returns its folder
TrainRound = Callable[[RunConfig, Splits, bool], RunFolder]
#: what the run folder takes from the best round's folder (the rest is evaluated again for the whole run)
KEEP_OUT = {"COMPLETE", "metrics.json", "README.md", "predictions", "plots", "checkpoints", "config.yaml",
            "calibration.json", "robustness.json", "test_split.jsonl"}


def read_self_training_pool(cfg: RunConfig, task: Task, splits: Splits, log: Callable[[str], None]) -> list[Example]:
    """The pool of unlabelled rows, after refusing (one line, before any run folder exists) what self-training
    cannot do with this run."""
    st = cfg.train.self_training
    learner = task.capability(SelfTrains, COMMAND)
    if st.consistency:
        learner.check_consistency()
    if not splits.validation:
        raise ConfigError("train.self_training: the thresholds and the stopping rule are set on validation, and this "
                          "run has none; give data.validation or a data.split.validation fraction")
    pool_cfg = cfg.data.model_copy(update={"text_column": st.text_column or cfg.data.text_column})
    return read_pool(st.unlabelled, task, pool_cfg, learner, splits.train + splits.validation + splits.test, log)


def round_config(cfg: RunConfig, work: Path, r: int) -> RunConfig:
    """One round's config: the run's own (its consistency term included), in ``work``, with a lighter evaluation
    (a round is scored on validation; the chosen round is evaluated in full as the run)."""
    evaluate = cfg.eval.model_copy(update={"plots": False, "save_predictions": False, "robustness_rows": 0})
    return cfg.model_copy(update={"name": f"round-{r}", "output_dir": str(work), "eval": evaluate})


class Rounds:
    """The rounds' state in the in-progress folder: which rounds finished, the rows each one added."""

    def __init__(self, run: RunFolder):
        self.work = run.path / "self_training"
        self.work.mkdir(parents=True, exist_ok=True)

    def added_file(self, r: int) -> Path:
        return self.work / f"added-{r}.jsonl"

    def read_added(self, r: int) -> tuple[list[Example], dict] | None:
        path = self.added_file(r)
        if not path.is_file():
            return None
        record = read_json(self.work / f"added-{r}.json")
        rows = [example_from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
        return rows, record

    def write_added(self, r: int, rows: list[Example], record: dict) -> None:
        write_json(self.work / f"added-{r}.json", record)  # first: the rows file marks the pair as written
        write_jsonl(self.added_file(r), [example_to_json(e) for e in rows])

    def choose(self, r: int, folder: RunFolder, validation: list[Example], pool: list[Example], st, cap: int,
               cfg: RunConfig) -> tuple[list[Example], dict]:
        """Choose round ``r``'s rows with the model of the round before (``folder``) and write them down."""
        rows, record = choose_rows(folder, validation, pool, st, cap, cfg.eval.batch_size)
        self.write_added(r, rows, record)
        return rows, record

    def train(self, r: int, round_cfg: RunConfig, splits: Splits, train_round: TrainRound,
              log: Callable[[str], None]) -> RunFolder:
        """Round ``r``'s run folder: read back when it finished before, else trained (resuming its checkpoint)."""
        done = RunFolder(round_cfg.run_dir)
        if done.is_complete:
            log(f"self-training round {r}: finished before, read back from {done.path}")
            return done
        return train_round(round_cfg, splits, True)


def train_self_training(cfg: RunConfig, task: Task, splits: Splits, pool: list[Example], run: RunFolder,
                        train_round: TrainRound, finish: Callable[[RunFolder, dict, dict], RunFolder],
                        log: Callable[[str], None]) -> RunFolder:
    """Run the rounds in ``run`` (the in-progress folder) over ``pool`` (:func:`read_self_training_pool`), then
    ``finish(run, best round's metrics, record)`` evaluates the best round's model as the run."""
    st = cfg.train.self_training
    metric = selection_metric(cfg, task)
    cap = st.max_per_class or math.ceil(len(splits.train) / len({task.strat_key(e) for e in splits.train}))
    log(f"self-training: {len(splits.train)} labelled rows, {len(pool)} unlabelled; up to {st.rounds} rounds, "
        f"at most {cap} rows per class per round, thresholds at validation precision {st.precision:g}")
    rounds, added, records = Rounds(run), [], []
    folder, stopped = None, f"all {st.rounds} rounds ran"
    for r in range(st.rounds + 1):
        record = {"added": 0}
        if r:
            rows, record = rounds.read_added(r) or rounds.choose(r, folder, splits.validation, pool, st, cap, cfg)
            if not rows:
                stopped = f"in round {r} no pool row passed its class's threshold"
                break
            added += rows
            taken = {_identity(e) for e in rows}
            pool = [e for e in pool if _identity(e) not in taken]
        round_splits = replace(splits, train=splits.train + added, test=[])
        folder = rounds.train(r, round_config(cfg, rounds.work, r), round_splits, train_round, log)
        value = folder.read_metrics()["validation"][metric]
        records.append({"round": r, "train_rows": len(round_splits.train), **record, metric: value})
        log(f"self-training round {r}: {record['added']} rows added, {len(round_splits.train)} training rows, "
            f"validation {metric}={value:.4f}")
        if _rounds_since_best(records, metric) >= st.patience:
            stopped = f"validation {metric} did not improve for {st.patience} round(s)"
            break
    best = records[-1 - _rounds_since_best(records, metric)]
    summary = {"metric": metric, "chosen_round": best["round"], "stopped": stopped, "rounds": records,
               "unlabelled": st.unlabelled, "settings": st.model_dump(mode="json")}
    log(f"self-training stopped ({stopped}); round {best['round']} is the run (validation {metric}="
        f"{best[metric]:.4f})")
    chosen = RunFolder(rounds.work / f"round-{best['round']}")
    return finish(_take_round(run, chosen.path), chosen.read_metrics(), summary)


def _rounds_since_best(records: list[dict], metric: str) -> int:
    """How many rounds ago the best validation value came (the first of equal ones: no gain, no round)."""
    values = [r[metric] for r in records]
    pick = max if greater_is_better(metric) else min
    return len(values) - 1 - values.index(pick(values))


def _identity(example: Example) -> tuple:
    return example.path, example.line, example.text


def choose_rows(folder: RunFolder, validation: list[Example], pool: list[Example], st, cap: int,
                batch_size: int) -> tuple[list[Example], dict]:
    """The rows the next round adds, chosen with the model of ``folder`` (its calibrated probabilities), and
    their record: thresholds, counts per class, mean confidence."""
    predictor = open_run(folder.path, command="predict")
    task = predictor.task
    learner = task.capability(SelfTrains, COMMAND)
    scored = predictor.predict([task.input_of(e) for e in validation], batch_size)
    thresholds = class_thresholds(learner, validation, scored, st.precision, st.min_confidence)
    guesses = predictor.predict([task.input_of(e) for e in pool], batch_size)
    candidates = [p for e, g in zip(pool, guesses) if (p := learner.pseudo_label(e, g)) is not None]
    chosen = balanced_selection(candidates, thresholds, st.min_confidence, cap)
    return [p.example for p in chosen.rows], {**chosen.record(), "thresholds": thresholds}


def _take_round(run: RunFolder, round_dir: Path) -> RunFolder:
    """Copy the chosen round's model and training record into the run folder (not its evaluation)."""
    for item in round_dir.iterdir():
        if item.name in KEEP_OUT or item.name.startswith("."):
            continue
        target = run.path / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    return run


def prune_rounds(run: RunFolder) -> None:
    """Once the run is evaluated: drop the rounds' models and checkpoints (the run holds the chosen one), keeping
    each round's metrics.json and the rows each round added."""
    work = run.path / "self_training"
    for folder in work.iterdir():
        if folder.is_dir():
            for item in folder.iterdir():
                if item.name != "metrics.json":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
