"""The one training path for every task: a thin use of ``transformers.Trainer``."""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

from torch.utils.tensorboard import SummaryWriter
from transformers import EarlyStoppingCallback, PrinterCallback, ProgressCallback, Trainer, set_seed
from transformers.integrations import TensorBoardCallback

from graftkit.data.cache import cached_dataset, dataset_key
from graftkit.data.dataset import Splits, load_splits
from graftkit.data.quality import warnings as quality_warnings
from graftkit.evaluate.evaluator import data_quality, finalize_run
from graftkit.io import publish_dir, read_json, write_json
from graftkit.modeling.load import load_pretrained
from graftkit.modeling.peft import finish_adapter_save
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.vocab import check_rows_train, extend_vocab, training_texts
from graftkit.tasks import build_task
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Generates, TrainsItself, TrainsWithTrainer
from graftkit.tasks.run_config import RunConfig
from graftkit.train.arguments import selection_metric, training_arguments
from graftkit.train.batching import token_budget_dataloader
from graftkit.train.callbacks import GracefulStop, TrainingProgress
from graftkit.train.distill import Distiller, finish_distillation, prepare_distillation
from graftkit.train.distributed import is_main_process
from graftkit.train.extras import setup as setup_extras
from graftkit.train.new_rows import new_rows_callback
from graftkit.train.rdrop import double_batch
from graftkit.train.session import Interrupted, TrainSession
from graftkit.train.threads import configure_threads

__all__ = ["GraftTrainer", "Interrupted", "build_trainer", "features", "prepare", "train"]


class GraftTrainer(Trainer):
    """Trainer whose loss may come from the task (class weights, CRF, ...)."""

    def __init__(self, *args, loss_fn: Callable | None = None, adversary=None, rdrop: float = 0.0,
                 divergence: Callable | None = None, distiller: Distiller | None = None,
                 generation_eval: Callable | None = None, max_tokens_per_batch: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.divergence = divergence  # how the task's two R-Drop outputs are compared
        self.max_tokens_per_batch = max_tokens_per_batch  # train.max_tokens_per_batch (graftkit/train/batching.py)
        self.generation_eval = generation_eval  # generative tasks: metrics of generated validation text
        self.distiller = distiller  # train.distill: the teacher's soft labels join the loss (graftkit.train.distill)
        self.loss_fn = loss_fn
        self.adversary = adversary  # graftkit.train.adversarial.EmbeddingAttack (train.adversarial)
        self.rdrop = rdrop  # train.rdrop: weight of the R-Drop divergence (graftkit.train.rdrop)

    def get_train_dataloader(self):
        if self.max_tokens_per_batch is None:
            return super().get_train_dataloader()
        return token_budget_dataloader(self, self.max_tokens_per_batch)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.adversary is not None:  # extra perturbed passes add their gradients to this step's
            self.adversary.attack(self.accelerator.unwrap_model(model),
                                  lambda: super(GraftTrainer, self).training_step(model, inputs, num_items_in_batch))
        return loss

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix="eval"):
        """The loss loop, plus generated-text metrics for generative tasks (before logging, early stopping
        and best-checkpoint selection read them)."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.generation_eval is not None and metric_key_prefix == "eval":
            scores = self.generation_eval(self.accelerator.unwrap_model(self.model))
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in scores.items()})
        return output

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.distiller is not None and model.training:
            return self._distill_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.rdrop and model.training:
            return self._rdrop_loss(model, inputs, return_outputs, num_items_in_batch)
        return self._task_loss(model, inputs, return_outputs, num_items_in_batch)

    def _rdrop_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """Both dropout passes in one doubled batch; task loss over both + rdrop * their divergence."""
        labels = inputs.get("labels")
        doubled_items = None if num_items_in_batch is None else 2 * num_items_in_batch
        loss, outputs = self._task_loss(model, double_batch(inputs), True, doubled_items)
        first, second = outputs.logits.chunk(2)
        loss = loss + self.rdrop * self.divergence(first, second, labels)
        return (loss, outputs) if return_outputs else loss

    def _distill_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """Task loss and the teacher's soft labels on the same batch (the task loss may pop ``labels``)."""
        batch = dict(inputs)
        loss, outputs = self._task_loss(model, dict(inputs), True, num_items_in_batch)
        loss = self.distiller.loss(outputs.logits, batch, loss)
        return (loss, outputs) if return_outputs else loss

    def _task_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_fn is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss


def build_trainer(cfg: RunConfig, task: Task, splits: Splits, run: RunFolder,
                  extra_callbacks: list | None = None, log: Callable[[str], None] = print) -> tuple[GraftTrainer, object]:
    """Model, datasets, arguments and callbacks assembled into a Trainer."""
    set_seed(cfg.train.seed)  # the new head's initial weights follow the seed (the same on every rank)
    recipe = task.capability(TrainsWithTrainer, "train")
    threads = configure_threads(cfg.train.threads, cfg.train.num_workers)
    tokenizer, model = load_pretrained(cfg.model, task.model_class, recipe.model_kwargs(), cfg.data.max_length)
    model = recipe.prepare_model(model, tokenizer)  # e.g. generation settings onto generation_config
    vocab = extend_vocab(model, tokenizer, training_texts(splits.train), cfg.model.extend_vocab, log)
    check_rows_train(vocab, cfg.peft is not None, cfg.train.freeze.embeddings)
    extras = setup_extras(cfg, task, model, tokenizer, splits.train, run, log)  # augment, freeze, peft, ...
    train_ds = features(cfg, task, recipe.build_dataset, extras.train, tokenizer, log)
    eval_ds = features(cfg, task, recipe.build_eval_dataset, splits.validation, tokenizer, log) \
        if splits.validation else None
    distiller = None
    if cfg.train.distill:  # the teacher runs on every training batch (graftkit/train/distill.py)
        distiller, train_ds = prepare_distillation(cfg, task, tokenizer, train_ds, log)
    metric = selection_metric(cfg, task)
    args = training_arguments(cfg, run.checkpoints, metric, eval_ds is not None)
    args = dataclasses.replace(args, **recipe.training_arguments()) if recipe.training_arguments() else args
    callbacks = [GracefulStop(), TrainingProgress(log)] + new_rows_callback(cfg.model.extend_vocab, tokenizer, log)
    if "tensorboard" in cfg.train.report_to and is_main_process():  # one writer of logs/
        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run.logs))))
    if cfg.train.early_stopping and eval_ds is not None:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping.patience,
                                               cfg.train.early_stopping.threshold))
    generates = task.optional(Generates)
    trainer = GraftTrainer(
        model=extras.model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=recipe.collator(tokenizer), processing_class=tokenizer,
        compute_metrics=recipe.compute_metrics if eval_ds is not None else None,
        callbacks=callbacks + extras.callbacks + list(extra_callbacks or []), loss_fn=recipe.loss_fn(splits.train),
        optimizer_cls_and_kwargs=extras.optimizer(cfg, args), adversary=extras.adversary,
        rdrop=cfg.train.rdrop, divergence=recipe.output_divergence, distiller=distiller, preprocess_logits_for_metrics=recipe.logits_reducer(),
        generation_eval=functools.partial(generates.evaluate_generation, tokenizer=tokenizer,
                                          examples=splits.validation)
        if generates is not None and eval_ds is not None else None, max_tokens_per_batch=cfg.train.max_tokens_per_batch)
    for printer in (PrinterCallback, ProgressCallback):  # TrainingProgress draws the one bar and eval lines
        trainer.remove_callback(printer)
    if is_main_process():  # next to what setup_extras recorded
        setup = run.path / "training_setup.json"
        write_json(setup, {**(read_json(setup) if setup.is_file() else {}), "vocab": vocab.as_dict(),
                           "threads": threads})
    return trainer, tokenizer


def features(cfg: RunConfig, task: Task, build: Callable, examples: list, tokenizer, log: Callable[[str], None]):
    """``build(examples, tokenizer, max_length)``, from the on-disk cache when ``train.cache_datasets`` is on."""
    if not cfg.train.cache_datasets:
        return build(examples, tokenizer, cfg.data.max_length)
    task_parts = {"name": task.name, "build": build.__name__, "config": task.task_cfg.model_dump(mode="json"),
                  "state": task.state()}
    key = dataset_key(examples, tokenizer, cfg.data.max_length, task_parts)
    return cached_dataset(key, lambda: build(examples, tokenizer, cfg.data.max_length), log=log)


def prepare(cfg: RunConfig, task: Task | None = None) -> tuple[Task, Splits]:
    """Read and validate the data and fit the task's label state (no model yet)."""
    task = task or build_task(cfg.task, cfg.data)
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                         from_rows=task.examples_from_rows)
    task.fit(splits.train)
    task.check(splits.validation)
    task.check(splits.test)
    return task, splits


def train(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
          extra_callbacks: list | None = None, log: Callable[[str], None] = print) -> RunFolder:
    """Train, then evaluate and write a complete run folder. Returns the run folder.

    The run is built in a sibling in-progress folder and renamed to ``cfg.run_dir`` once complete (an older
    run there is replaced only then); one process at a time may write a run (``graftkit.io.sole_writer``).

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    task = build_task(cfg.task, cfg.data)
    log = log if is_main_process() else (lambda m: None)
    with TrainSession(cfg, resume, overwrite, list(extra_callbacks or []), log) as session:
        own = task.optional(TrainsItself)  # trained by its own library's trainer (sentence-transformers)
        if own is not None:
            return session.publish(own.train_run(cfg, session))
        return session.publish(_train_with_trainer(task, session))


def _log_data(splits: Splits, log: Callable[[str], None]) -> None:
    for note in splits.notes:
        log(note)
    for name, n in splits.dropped.items():
        log(f"data.drop_invalid: dropped {n} invalid rows from {name}")
    log(f"examples: train={len(splits.train)} validation={len(splits.validation)} test={len(splits.test)}")


def _fit(trainer: GraftTrainer, checkpoint: str | None):
    try:
        return trainer.train(resume_from_checkpoint=checkpoint)
    finally:  # an exception skips on_train_end: still close the bar and put the signal handlers back
        for cb in trainer.callback_handler.callbacks:
            if isinstance(cb, (TrainingProgress, GracefulStop)):
                cb.on_train_end(trainer.args, trainer.state, trainer.control)


def _save_model(trainer: GraftTrainer, tokenizer, run: RunFolder, cfg: RunConfig) -> bool:
    """Put the trained weights and tokenizer into the run folder; True in the process that writes it."""
    staging = run.path / ".staging-model"
    trainer.save_model(str(staging))  # on every rank: FSDP / ZeRO-3 gather the full weights collectively
    if not trainer.is_world_process_zero():
        return False
    tokenizer.save_pretrained(str(staging))
    finish_adapter_save(trainer.model, staging, cfg.model.name_or_path)  # adapter runs: small files + base config
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run folder holds safetensors + JSON only
    publish_dir(staging, run.path)
    return True


def _train_with_trainer(task: Task, session: TrainSession) -> RunFolder:
    """Train with GraftTrainer in the run's in-progress folder, then save and evaluate the run there."""
    cfg, log = session.cfg, session.log
    task, splits = prepare(cfg, task)
    # under torchrun every rank trains, but only the main process creates and writes the run folder
    run, checkpoint = session.prepare_run_dir()
    _log_data(splits, log)
    trainer, tokenizer = build_trainer(cfg, task, splits, run, session.extra_callbacks, log)
    session.record_data(run, splits)
    quality = data_quality(splits, tokenizer, cfg.data.max_length, task)
    for warning in quality_warnings(quality):
        log(f"data warning: {warning}")  # the full report: graftkit inspect CONFIG
    if checkpoint:
        log(f"resuming from {checkpoint}")
    result = _fit(trainer, checkpoint)
    stop = next(c for c in trainer.callback_handler.callbacks if isinstance(c, GracefulStop))
    if stop.requested:
        raise session.interrupted(trainer.state.global_step, run)
    if not _save_model(trainer, tokenizer, run, cfg):
        return run  # another rank: the main process writes the rest
    run.write_task_state(task.name, task.state())
    write_json(run.history, trainer.state.log_history)
    train_metrics = {k: v for k, v in result.metrics.items()}
    run.write_test_split(splits.test)  # before COMPLETE: export checks parity on it, not on the data files
    metric = selection_metric(cfg, task)
    distilled = functools.partial(finish_distillation, run, cfg, splits, metric, log) if cfg.train.distill else None
    finalize_run(run, cfg, splits, train_metrics, metric, log=log, before_complete=distilled, quality=quality)
    return run
