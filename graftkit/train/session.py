"""The run folder of a training run: creating it, resuming it, and what a task's own trainer is given."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Callable

import yaml
from transformers import TrainingArguments

from graftkit.data.dataset import Splits
from graftkit.errors import GraftkitError
from graftkit.evaluate.evaluator import finalize_run
from graftkit.io import write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.run_config import RunConfig, dump_config
from graftkit.train.arguments import selection_metric, training_arguments
from graftkit.train.callbacks import GracefulStop
from graftkit.train.distributed import last_complete_checkpoint


class Interrupted(GraftkitError):
    """Training stopped on a signal after saving a checkpoint."""


def prepare_run_dir(cfg: RunConfig, resume: bool, overwrite: bool,
                    log: Callable[[str], None] = print) -> tuple[RunFolder, str | None]:
    """Create or reuse the run folder; returns it and the checkpoint to resume from."""
    run = RunFolder(cfg.run_dir)
    exists = run.path.is_dir() and any(run.path.iterdir())
    if exists and overwrite:
        shutil.rmtree(run.path)
        exists = False
    if exists and not resume:
        what = "a finished run" if run.is_complete else "an unfinished run"
        raise GraftkitError(f"{run.path} already holds {what}; pass --resume to continue it, --overwrite to "
                            f"replace it, or choose another name with --set name=NEW")
    checkpoint = None
    if exists and resume:
        if run.is_complete:
            raise GraftkitError(f"{run.path} already finished; nothing to resume (use --overwrite to retrain)")
        saved = run.config.read_text(encoding="utf-8") if run.config.is_file() else None
        check_same_run(saved, cfg, run)
        checkpoint = last_complete_checkpoint(run.checkpoints)  # skips one a kill cut short
        if checkpoint is None:
            log(f"--resume: {run.checkpoints} holds no complete checkpoint; training starts over")
    run.path.mkdir(parents=True, exist_ok=True)
    write_text(run.config, dump_config(cfg))
    return run, checkpoint


#: config keys a resumed run may change: where it is, and how it is reported (not how it trains)
RESUMABLE_CHANGES = ("name", "output_dir", "eval")


def check_same_run(saved_yaml: str | None, cfg: RunConfig, run: RunFolder) -> None:
    """Refuse to resume when any section that changes training (data, model, task, train, peft, augment,
    pretrain, ...) differs from the one the run was started with; the error names the section."""
    if saved_yaml is None:
        return
    saved = yaml.safe_load(saved_yaml)
    now = cfg.model_dump(mode="json")
    for section in sorted(set(saved) | set(now)):
        if section not in RESUMABLE_CHANGES and saved.get(section) != now.get(section):
            raise GraftkitError(f"--resume: the '{section}' section differs from the one {run.path} was started "
                                f"with ({run.config}); resume with the same config or use --overwrite")


@dataclass
class TrainSession:
    """What the train layer hands a task that trains with its own library (``Task.train_run``):
    the run's settings and the shared pieces of graftkit's one path, so no task re-implements them."""

    cfg: RunConfig
    resume: bool = False
    overwrite: bool = False
    extra_callbacks: list = field(default_factory=list)
    log: Callable[[str], None] = print

    def prepare_run_dir(self) -> tuple[RunFolder, str | None]:
        """Create (or reuse, with ``resume``) the run folder; returns it and the checkpoint to resume from."""
        return prepare_run_dir(self.cfg, self.resume, self.overwrite, self.log)

    def training_arguments(self, run: RunFolder, metric: str, has_eval: bool) -> TrainingArguments:
        return training_arguments(self.cfg, run.checkpoints, metric, has_eval)

    def stop_callback(self) -> GracefulStop:
        """A callback that saves a checkpoint and stops on SIGINT/SIGTERM (check ``.requested`` after)."""
        return GracefulStop()

    def finish(self, task, run: RunFolder, splits: Splits, train_metrics: dict) -> dict:
        """Evaluate and complete a trained run as the Trainer path does: the test split saved for export
        parity, then :func:`graftkit.evaluate.evaluator.finalize_run` (validation and test through the
        Predictor and the task's report, metrics.json, model card, COMPLETE). Returns the results."""
        run.write_test_split(splits.test)
        return finalize_run(run, self.cfg, splits, train_metrics, selection_metric(self.cfg, task), log=self.log)

    def interrupted(self, step: int, run: RunFolder) -> Interrupted:
        return Interrupted(f"training interrupted at step {step}; a checkpoint is in {run.checkpoints}. "
                           "Continue with: graftkit train CONFIG --resume")
