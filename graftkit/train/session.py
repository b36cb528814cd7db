"""The run folder of a training run: creating it, resuming it, and what a task's own trainer is given."""
from __future__ import annotations

import shutil
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Sequence

import yaml
from transformers import TrainingArguments

from graftkit.data.dataset import Splits
from graftkit.errors import GraftkitError
from graftkit.evaluate.evaluator import finalize_run
from graftkit.io import publish_run, sole_writer, staging_path, write_json, write_text
from graftkit.modeling.peft import parameter_counts
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.run_format import migrate_config
from graftkit.tasks.run_config import RunConfig, config_from_dict, dump_config
from graftkit.train.arguments import selection_metric, training_arguments
from graftkit.train.callbacks import EarlyStopping, GracefulStop, tensorboard
from graftkit.train.components import Component
from graftkit.train.distributed import is_main_process, last_complete_checkpoint, run_on_main
from graftkit.train.threads import Threads


class Interrupted(GraftkitError):
    """Training stopped on a signal after saving a checkpoint."""


def prepare_run_dir(cfg: RunConfig, resume: bool, overwrite: bool,
                    log: Callable[[str], None] = print) -> tuple[RunFolder, str | None]:
    """Create or reuse the in-progress folder of ``cfg.run_dir``; returns it and the checkpoint to resume from.

    Training builds the run in the sibling ``.<name>.partial`` (``graftkit.io.staging_path``), which
    ``TrainSession.publish`` renames to ``<name>`` once the run is complete: a finished folder is replaced
    only by a complete new one, and an interrupted run keeps its checkpoints there for ``--resume``.
    """
    final = RunFolder(cfg.run_dir)
    run = RunFolder(staging_path(final.path), final_path=final.path)
    checkpoint = None
    if overwrite:  # the finished folder stays until the new run replaces it
        shutil.rmtree(run.path, ignore_errors=True)
    elif resume:
        checkpoint = _resume_point(cfg, final, run, log)
    else:
        _refuse_existing(final, run)
    run.path.mkdir(parents=True, exist_ok=True)
    write_text(run.config, dump_config(cfg))
    return run, checkpoint


def _holds_files(folder: RunFolder) -> bool:
    return folder.path.is_dir() and any(folder.path.iterdir())


def _refuse_existing(final: RunFolder, run: RunFolder) -> None:
    how = "pass --resume to continue it, --overwrite to replace it, or choose another name with --set name=NEW"
    if _holds_files(run):
        raise GraftkitError(f"{final.path} has an unfinished run in {run.path}; {how}")
    if _holds_files(final):
        what = "a finished run" if final.is_complete else "an unfinished run"
        raise GraftkitError(f"{final.path} already holds {what}; {how}")


def _resume_point(cfg: RunConfig, final: RunFolder, run: RunFolder, log: Callable[[str], None]) -> str | None:
    """The checkpoint ``--resume`` continues from (None: training starts over), after checking the config."""
    if not _holds_files(run) and _holds_files(final):
        if final.is_complete:
            raise GraftkitError(f"{final.path} already finished; nothing to resume (use --overwrite to retrain)")
        final.path.rename(run.path)  # written in place by an older graftkit: it continues as the in-progress run
    if not _holds_files(run):
        return None
    saved = run.config.read_text(encoding="utf-8") if run.config.is_file() else None
    check_same_run(saved, cfg, run)
    checkpoint = last_complete_checkpoint(run.checkpoints)  # skips one a kill cut short
    if checkpoint is None:
        log(f"--resume: {run.checkpoints} holds no complete checkpoint; training starts over")
    return checkpoint


#: config keys a resumed run may change: where it is, and how it is reported (not how it trains)
RESUMABLE_CHANGES = ("name", "output_dir", "eval")


def check_same_run(saved_yaml: str | None, cfg: RunConfig, run: RunFolder) -> None:
    """Refuse to resume when any section that changes training (data, model, task, train, peft, augment,
    pretrain, ...) differs from the one the run was started with; the error names the section."""
    if saved_yaml is None:
        return
    section = differing_section(saved_yaml, cfg, str(run.config))
    if section is not None:
        raise GraftkitError(f"--resume: the '{section}' section differs from the one {run.path} was started "
                            f"with ({run.config}); resume with the same config or use --overwrite")


def differing_section(saved_yaml: str, cfg: RunConfig, where: str) -> str | None:
    """The first config section that changes training (all but RESUMABLE_CHANGES) and differs between the
    saved config.yaml text and ``cfg``; None when they train the same model."""
    saved, _ = migrate_config(yaml.safe_load(saved_yaml), where)  # without format_version; older: migrated
    try:  # through the model, so a setting added since (absent from the saved file) reads as its default
        saved = config_from_dict(saved, where).model_dump(mode="json")
    except GraftkitError:
        pass  # a saved config today's code cannot read: compared as written, and the differing section is named
    now = cfg.model_dump(mode="json")
    return next((s for s in sorted(set(saved) | set(now))
                 if s not in RESUMABLE_CHANGES and saved.get(s) != now.get(s)), None)


def write_setup(run: RunFolder, splits: Splits, model, components: Sequence[Component] = ()) -> dict:
    """Write ``training_setup.json`` once per run (main process): each split's content hash (ensembles compare
    members' data by it), the parameter counts, the components used and what each records (threads, the
    vocabulary extension, augmentation counts, ...). Returns the record."""
    trainable, total = parameter_counts(model)
    record = {"data_digest": splits.digests(), "trainable_parameters": trainable, "total_parameters": total,
              "components": [c.name for c in components]}
    for component in components:
        record.update(component.record())
    if is_main_process():  # under torchrun only rank 0 writes the run folder
        write_json(run.path / "training_setup.json", record)
    return record


@dataclass
class TrainSession:
    """What the train layer hands a task that trains with its own library (``TrainsItself.train_run``):
    the run's settings and the shared pieces of graftkit's one path, so no task re-implements them."""

    cfg: RunConfig
    resume: bool = False
    overwrite: bool = False
    extra_callbacks: list = field(default_factory=list)
    log: Callable[[str], None] = print
    #: the run's writer lock, held from ``prepare_run_dir`` until the session closes
    _held: ExitStack = field(default_factory=ExitStack, repr=False)

    def __enter__(self) -> "TrainSession":
        return self

    def __exit__(self, *exc) -> None:
        self._held.close()

    def prepare_run_dir(self) -> tuple[RunFolder, str | None]:
        """Lock the run for this process (a second writer of it gets a clear error), then create (or reuse,
        with ``resume``) its in-progress folder; returns it and the checkpoint to resume from. Under torchrun
        the main process does both and every rank gets its answer."""
        def claim():
            self._held.enter_context(sole_writer(self.cfg.run_dir))
            return prepare_run_dir(self.cfg, self.resume, self.overwrite, self.log)
        return run_on_main(claim)

    def shared_components(self, run: RunFolder) -> list[Component]:
        """The Trainer path's components that apply to a task's own trainer too: ``train.threads`` (set now,
        before the model loads) and TensorBoard logging (their callbacks go to that trainer)."""
        return [Threads(self.cfg.train.threads, self.cfg.train.num_workers),
                *tensorboard(self.cfg.train.report_to, run.logs)]

    def early_stopping(self, has_eval: bool) -> list[Component]:
        """``train.early_stopping`` for a task's own trainer (transformers' callback, on the selection metric of
        :meth:`training_arguments`), when it is set and there is a validation split to watch."""
        settings = self.cfg.train.early_stopping
        return [EarlyStopping(settings)] if settings and has_eval else []

    def record_setup(self, run: RunFolder, splits: Splits, model, components: Sequence[Component] = ()) -> None:
        """``training_setup.json``, as the Trainer path writes it (:func:`write_setup`)."""
        write_setup(run, splits, model, components)

    def publish(self, run: RunFolder) -> RunFolder:
        """Move the complete in-progress folder to ``cfg.run_dir`` (atomically, replacing an older run only
        now); returns the published folder. Other ranks, and an unfinished folder, are left as they are."""
        final = RunFolder(self.cfg.run_dir)
        if run.path == final.path or not is_main_process():
            return final
        if not run.is_complete:
            return run
        publish_run(run.path, final.path)
        return final

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

    def train_until_stopped(self, trainer, stop: GracefulStop, checkpoint: str | None, run: RunFolder):
        """``trainer.train`` from ``checkpoint``, for trainers of other libraries that carry ``stop`` (from
        :meth:`stop_callback`) among their callbacks; returns its result.

        Raises:
            Interrupted: a signal stopped training; its checkpoint is in the run folder.
        """
        try:
            result = trainer.train(resume_from_checkpoint=checkpoint)
        finally:  # an exception skips on_train_end: put the signal handlers back all the same
            stop.on_train_end(trainer.args, trainer.state, trainer.control)
        if stop.requested:
            raise self.interrupted(trainer.state.global_step, run)
        return result

    def interrupted(self, step: int, run: RunFolder) -> Interrupted:
        return Interrupted(f"training interrupted at step {step}; a checkpoint is in {run.checkpoints}. "
                           "Continue with: graftkit train CONFIG --resume")
