"""The one training path for every task: a thin use of ``transformers.Trainer``."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import torch
from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed
from transformers.integrations import TensorBoardCallback

from graftkit.config import RunConfig, dump_config
from graftkit.data.dataset import Splits, load_splits
from graftkit.errors import ConfigError, GraftkitError
from graftkit.io import publish_dir, write_json, write_text
from graftkit.modeling.load import load_pretrained
from graftkit.modeling.peft import finish_adapter_save
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import build_task
from graftkit.tasks.base import Task
from graftkit.train.callbacks import GracefulStop
from graftkit.train.extras import setup as setup_extras
from graftkit.train.distributed import (is_main_process, last_complete_checkpoint, run_on_main,
                                       strategy_arguments)

LOWER_IS_BETTER = {"loss", "rmse", "mae", "mse"}
# "adamw" is whatever AdamW transformers defaults to (the fused kernel on recent torch)
OPTIMIZERS = {"adamw": TrainingArguments.__dataclass_fields__["optim"].default, "sgd": "sgd", "adafactor": "adafactor"}


class GraftTrainer(Trainer):
    """Trainer whose loss may come from the task (class weights, CRF, ...)."""

    def __init__(self, *args, loss_fn: Callable | None = None, adversary=None, rdrop: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.adversary = adversary  # graftkit.train.adversarial.EmbeddingAttack (train.adversarial)
        self.rdrop = rdrop  # train.rdrop: weight of the R-Drop divergence (graftkit.train.rdrop)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.adversary is not None:  # extra perturbed passes add their gradients to this step's
            self.adversary.attack(self.accelerator.unwrap_model(model),
                                  lambda: super(GraftTrainer, self).training_step(model, inputs, num_items_in_batch))
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.rdrop and model.training:
            return self._rdrop_loss(model, inputs, return_outputs, num_items_in_batch)
        return self._task_loss(model, inputs, return_outputs, num_items_in_batch)

    def _rdrop_loss(self, model, inputs, return_outputs, num_items_in_batch):
        """Both dropout passes in one doubled batch; task loss over both + rdrop * their divergence."""
        from graftkit.train.rdrop import divergence, double_batch

        labels = inputs.get("labels")
        doubled_items = None if num_items_in_batch is None else 2 * num_items_in_batch
        loss, outputs = self._task_loss(model, double_batch(inputs), True, doubled_items)
        first, second = outputs.logits.chunk(2)
        problem_type = getattr(self.accelerator.unwrap_model(model).config, "problem_type", None)
        loss = loss + self.rdrop * divergence(first, second, problem_type, labels)
        return (loss, outputs) if return_outputs else loss

    def _task_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.loss_fn is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss


def resolve_precision(name: str) -> str:
    """'auto' → bf16/fp16 on a GPU that supports it, fp32 on CPU (CPU half precision trains slower here)."""
    if name != "auto":
        if name == "fp16" and not torch.cuda.is_available():
            raise ConfigError("train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
        return name
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def selection_metric(cfg: RunConfig, task: Task) -> str:
    return task.default_metric if cfg.train.metric == "auto" else cfg.train.metric


def training_arguments(cfg: RunConfig, output_dir: Path, metric: str, has_eval: bool) -> TrainingArguments:
    """Map graftkit's TrainConfig onto TrainingArguments (the only place that knows both)."""
    t = cfg.train
    precision = resolve_precision(t.precision)
    strategy = t.eval_strategy if has_eval else "no"
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        optim=OPTIMIZERS[t.optimizer],
        lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup if t.warmup < 1 else int(t.warmup),
        gradient_accumulation_steps=t.grad_accum,
        max_grad_norm=t.max_grad_norm,
        label_smoothing_factor=t.label_smoothing,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        eval_strategy=strategy,
        eval_steps=t.eval_steps,
        save_strategy=t.eval_strategy,
        save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=has_eval,
        metric_for_best_model=metric if has_eval else None,
        greater_is_better=metric not in LOWER_IS_BETTER,
        logging_steps=t.logging_steps,
        report_to=[r for r in t.report_to if r != "tensorboard"] or "none",
        seed=t.seed,
        data_seed=t.seed,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        dataloader_num_workers=t.num_workers,
        use_cpu=not torch.cuda.is_available(),
        **strategy_arguments(t.distributed),
    )


def _prepare_run_dir(cfg: RunConfig, resume: bool, overwrite: bool) -> tuple[RunFolder, str | None]:
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
        _check_same_run(saved, cfg, run)
        checkpoint = last_complete_checkpoint(run.checkpoints)  # skips one a kill cut short
    run.path.mkdir(parents=True, exist_ok=True)
    write_text(run.config, dump_config(cfg))
    return run, checkpoint


def _check_same_run(saved_yaml: str | None, cfg: RunConfig, run: RunFolder) -> None:
    if saved_yaml is None:
        return
    import yaml

    saved = yaml.safe_load(saved_yaml)
    now = cfg.model_dump(mode="json")
    for section in ("data", "model", "task"):
        if saved.get(section) != now.get(section):
            raise GraftkitError(f"--resume: the '{section}' section differs from the one {run.path} was started "
                                f"with ({run.config}); resume with the same config or use --overwrite")


def build_trainer(cfg: RunConfig, task: Task, splits: Splits, run: RunFolder,
                  extra_callbacks: list | None = None, log: Callable[[str], None] = print) -> tuple[GraftTrainer, object]:
    """Model, datasets, arguments and callbacks assembled into a Trainer."""
    set_seed(cfg.train.seed)  # the new head's initial weights follow the seed (the same on every rank)
    tokenizer, model = load_pretrained(cfg.model, task)
    extras = setup_extras(cfg, task, model, tokenizer, splits.train, run, log)  # augment, freeze, peft, ...
    train_ds = task.build_dataset(extras.train, tokenizer, cfg.data.max_length)
    eval_ds = task.build_dataset(splits.validation, tokenizer, cfg.data.max_length) if splits.validation else None
    metric = selection_metric(cfg, task)
    args = training_arguments(cfg, run.checkpoints, metric, eval_ds is not None)
    callbacks = [GracefulStop()]
    if "tensorboard" in cfg.train.report_to and is_main_process():  # one writer of logs/
        from torch.utils.tensorboard import SummaryWriter

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run.logs))))
    if cfg.train.early_stopping and eval_ds is not None:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping.patience,
                                               cfg.train.early_stopping.threshold))
    trainer = GraftTrainer(
        model=extras.model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        data_collator=task.collator(tokenizer), processing_class=tokenizer,
        compute_metrics=task.compute_metrics if eval_ds is not None else None,
        callbacks=callbacks + extras.callbacks + list(extra_callbacks or []), loss_fn=task.loss_fn(splits.train),
        optimizer_cls_and_kwargs=extras.optimizer(cfg, args), adversary=extras.adversary,
        rdrop=cfg.train.rdrop)
    return trainer, tokenizer


def prepare(cfg: RunConfig) -> tuple[Task, Splits]:
    """Read and validate the data and fit the task's label state (no model yet)."""
    task = build_task(cfg.task, cfg.data)
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=getattr(task, "read", None))
    task.fit(splits.train)
    task.check(splits.validation)
    task.check(splits.test)
    return task, splits


class Interrupted(GraftkitError):
    """Training stopped on a signal after saving a checkpoint."""


def train(cfg: RunConfig, resume: bool = False, overwrite: bool = False,
          extra_callbacks: list | None = None, log: Callable[[str], None] = print) -> RunFolder:
    """Train, then evaluate and write a complete run folder. Returns the run folder.

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    from graftkit.tasks import TASKS

    own_trainer = getattr(TASKS.get(cfg.task.type), "train_run", None)
    if own_trainer is not None:  # a task trained by its own library's trainer (embedding: sentence-transformers)
        return own_trainer(cfg, resume=resume, overwrite=overwrite, extra_callbacks=extra_callbacks, log=log)
    from graftkit.evaluate.evaluator import finalize_run

    log = log if is_main_process() else (lambda m: None)
    task, splits = prepare(cfg)
    # under torchrun every rank trains, but only the main process creates and writes the run folder
    run, checkpoint = run_on_main(lambda: _prepare_run_dir(cfg, resume, overwrite))
    for note in splits.notes:
        log(note)
    for name, n in splits.dropped.items():
        log(f"data.drop_invalid: dropped {n} invalid rows from {name}")
    log(f"examples: train={len(splits.train)} validation={len(splits.validation)} test={len(splits.test)}")
    trainer, tokenizer = build_trainer(cfg, task, splits, run, extra_callbacks, log)
    if checkpoint:
        log(f"resuming from {checkpoint}")
    result = trainer.train(resume_from_checkpoint=checkpoint)
    stop = next(c for c in trainer.callback_handler.callbacks if isinstance(c, GracefulStop))
    if stop.requested:
        raise Interrupted(f"training interrupted at step {trainer.state.global_step}; a checkpoint is in "
                          f"{run.checkpoints}. Continue with: graftkit train CONFIG --resume")
    staging = run.path / ".staging-model"
    trainer.save_model(str(staging))  # on every rank: FSDP / ZeRO-3 gather the full weights collectively
    if not trainer.is_world_process_zero():
        return run
    tokenizer.save_pretrained(str(staging))
    finish_adapter_save(trainer.model, staging, cfg.model.name_or_path)  # adapter runs: small files + base config
    (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run folder holds safetensors + JSON only
    publish_dir(staging, run.path)
    run.write_task_state(task.name, task.state())
    write_json(run.history, trainer.state.log_history)
    train_metrics = {k: v for k, v in result.metrics.items()}
    finalize_run(run, cfg, splits, train_metrics, selection_metric(cfg, task), log=log)
    return run
