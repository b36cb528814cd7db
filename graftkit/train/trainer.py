"""The one training path for every task: a thin use of ``transformers.Trainer`` composed of components
(graftkit/train/components.py: what they are and the one order in which their hooks run)."""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import torch
from transformers import PrinterCallback, ProgressCallback, Trainer, set_seed
from transformers.trainer_pt_utils import find_batch_size

from graftkit.data.cache import cached_dataset, dataset_key
from graftkit.data.dataset import Splits, load_splits
from graftkit.data.quality import warnings as quality_warnings
from graftkit.evaluate.evaluator import data_quality, finalize_run
from graftkit.evaluate.out_of_scope import set_aside
from graftkit.io import publish_dir, write_json
from graftkit.modeling.load import load_pretrained
from graftkit.modeling.peft import finish_adapter_save
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.vocab import check_rows_train, extend_vocab, training_texts
from graftkit.tasks import build_task
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Generates, TrainsItself, TrainsWithTrainer
from graftkit.tasks.run_config import RunConfig
from graftkit.train.adversarial import Adversarial
from graftkit.train.arguments import ARGUMENT_KEYS, selection_metric, training_arguments
from graftkit.train.batching import TokenBudget
from graftkit.train.callbacks import EarlyStopping, GracefulStop, TensorBoard, TrainingProgress, tensorboard
from graftkit.train.components import Component, TaskLoss
from graftkit.train.consistency import Consistency
from graftkit.train.distill import Distillation, finish_distillation, prepare_distillation
from graftkit.train.distributed import is_main_process
from graftkit.train.extras import Augmentation, Peft
from graftkit.train.extras import setup as setup_extras
from graftkit.train.feature_objectives import FeatureObjective, feature_objective
from graftkit.train.few_shot import StrategyChoice, check_few_shot, choose_strategy, train_few_shot
from graftkit.train.generation_eval import GenerationMetrics
from graftkit.train.keys import refuse_unsupported
from graftkit.train.new_rows import ExtendVocab
from graftkit.train.optim import OPTIMIZER_KEYS
from graftkit.train.outlier_exposure import OutlierExposure, check_outlier_rows, with_outliers
from graftkit.train.rdrop import RDrop
from graftkit.train.self_training import prune_rounds, read_self_training_pool, train_self_training
from graftkit.train.session import Interrupted, TrainSession, write_setup
from graftkit.train.threads import Threads
from graftkit.train.zero_shot import check_zero_shot, train_zero_shot

__all__ = ["GraftTrainer", "Interrupted", "build_trainer", "check_settings", "features", "prepare", "train"]

#: every kind of component the Trainer path composes (each declares the config keys it consumes), in the order a
#: run's components run their hooks: the task's loss is the innermost of the loss chain, the transforms wrap it
#: (the feature objective reads the features of the batch it is handed, outlier exposure pops its column before
#: the loss inside it runs, R-Drop doubles the batch for all of them)
COMPONENT_TYPES: tuple[type[Component], ...] = (
    Threads, ExtendVocab, Augmentation, Peft, TaskLoss, FeatureObjective, OutlierExposure, Distillation, Consistency,
    RDrop,     Adversarial, TokenBudget, GenerationMetrics, EarlyStopping, TensorBoard, StrategyChoice)
#: keys the assembly's own steps consume: loading the checkpoint with its head (``load_pretrained``) and the
#: tokenised-dataset cache (``features``); TrainingArguments and the optimiser declare theirs in their modules
ASSEMBLY_KEYS = ("model.name_or_path", "model.revision", "model.dropout", "model.keep_layers", "train.cache_datasets")


class GraftTrainer(Trainer):
    """``transformers.Trainer`` whose steps run its components' hooks, in list order (graftkit/train/components.py).

    Args:
        components: the techniques this run composes.
        compute_metrics: the task's validation metrics; the components' evaluation hooks join them.
        callbacks, args, **kwargs: as for ``Trainer``; the components' callbacks and argument changes are added.
    """

    def __init__(self, *, args, components: Sequence[Component] = (), compute_metrics: Callable | None = None,
                 callbacks: list | None = None, **kwargs):
        self.components = list(components)
        for component in self.components:
            changes = component.arguments(args)
            args = dataclasses.replace(args, **changes) if changes else args
        # a task that reads no logits (a language model's are vocabulary-wide) asks for the loss only, which also
        # skips compute_metrics; it is turned off so the evaluation hooks run, and prediction_step hands the
        # Trainer one placeholder per row instead of logits (tests/test_train_components.py measures it)
        self._loss_only = compute_metrics is not None and args.prediction_loss_only
        args = dataclasses.replace(args, prediction_loss_only=False) if self._loss_only else args
        self._task_metrics = compute_metrics
        super().__init__(args=args, compute_metrics=self._metrics if compute_metrics is not None else None,
                         callbacks=list(callbacks or []) + [cb for c in self.components for cb in c.callbacks()],
                         **kwargs)

    def component(self, kind: type[Component]) -> Component | None:
        """The first component of ``kind``, or None."""
        return next((c for c in self.components if isinstance(c, kind)), None)

    def get_train_dataloader(self):
        for component in self.components:
            loader = component.train_dataloader(self)
            if loader is not None:
                return loader
        return super().get_train_dataloader()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        def model_loss(m, batch, n):  # a copy: the model's loss may pop ``labels``, which a transform still reads
            return super(GraftTrainer, self).compute_loss(m, dict(batch), True, n)

        chain = model_loss
        for component in self.components:  # each wraps the chain before it
            chain = functools.partial(component.loss, self, inner=chain)
        loss, outputs = chain(model, inputs, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        step = functools.partial(super().training_step, model, inputs, num_items_in_batch)
        for component in self.components:
            component.after_backward(self, model, inputs, step)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if not self._loss_only or prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        # the loss only: no logits leave the step; one placeholder per row makes the Trainer call compute_metrics
        loss, _, _ = super().prediction_step(model, inputs, True, ignore_keys)
        placeholder = torch.zeros(find_batch_size(inputs) or self.args.eval_batch_size, device=self.args.device)
        return loss, placeholder, placeholder

    def _metrics(self, eval_pred) -> dict[str, float]:
        """compute_metrics: the task's metrics, then each component's evaluation hook."""
        scores = {} if self._loss_only else dict(self._task_metrics(eval_pred))
        for component in self.components:
            scores.update(component.evaluate(self))
        return scores


def path_keys(task: Task) -> tuple[tuple[str, ...], str, dict]:
    """The config keys ``task``'s training path honours, what trains it (for the refusal) and the settings it
    always trains with (``TrainsItself.fixed_settings``)."""
    own = task.optional(TrainsItself)
    if own is not None:
        return tuple(own.supported_keys()), own.trained_by, own.fixed_settings()
    keys = ASSEMBLY_KEYS + ARGUMENT_KEYS + OPTIMIZER_KEYS + tuple(k for c in COMPONENT_TYPES for k in c.keys)
    return tuple(dict.fromkeys(keys)), "graftkit's Trainer", {}


def check_settings(cfg: RunConfig, task: Task | None = None, stage_keys: Sequence[str] = ()) -> Task:
    """Refuse, in one line and before any work, a key ``cfg`` sets that its task's training path does not
    honour (graftkit/train/keys.py); ``stage_keys``: keys a stage around this training honours (the
    ``pretrain:`` stage of graftkit/train/pretrain.py). Returns the task."""
    task = task or build_task(cfg.task, cfg.data)
    supported, trained_by, fixed = path_keys(task)
    gates = {k: c.needs for c in COMPONENT_TYPES if c.needs is not None for k in c.keys}
    refuse_unsupported(cfg, task, supported + tuple(stage_keys), gates, trained_by, fixed)
    return task


def _components(cfg: RunConfig, task: Task, recipe: TrainsWithTrainer, splits: Splits, tokenizer,
                has_eval: bool, run: RunFolder) -> list[Component]:
    """The components that act while the Trainer runs, as this run's settings and task ask."""
    loss_fn = recipe.loss_fn(splits.train)
    found: list[Component] = [TaskLoss(loss_fn)] if loss_fn is not None else []
    if cfg.train.max_tokens_per_batch is not None:
        found.append(TokenBudget(cfg.train.max_tokens_per_batch))
    generates = task.optional(Generates)
    if generates is not None and has_eval:
        found.append(GenerationMetrics(generates, tokenizer, splits.validation))
    if cfg.train.early_stopping and has_eval:
        found.append(EarlyStopping(cfg.train.early_stopping))
    st = cfg.train.self_training
    if st is not None and st.consistency:
        found.append(Consistency(st, tokenizer, cfg.data.max_length, recipe.output_divergence, cfg.train.seed))
    return found + tensorboard(cfg.train.report_to, run.logs)


def build_trainer(cfg: RunConfig, task: Task, splits: Splits, run: RunFolder,
                  extra_callbacks: list | None = None, log: Callable[[str], None] = print,
                  extra_components: Sequence[Component] = ()) -> tuple[GraftTrainer, object]:
    """Model, datasets, arguments and components assembled into a Trainer; writes training_setup.json.
    ``extra_components``: ones the caller made (the strategy choice)."""
    set_seed(cfg.train.seed)  # the new head's initial weights follow the seed (the same on every rank)
    recipe = task.capability(TrainsWithTrainer, "train")
    check_outlier_rows(cfg, task, splits)  # outlier exposure without out-of-scope rows stops here, not after loading
    threads = Threads(cfg.train.threads, cfg.train.num_workers)  # before the model loads
    tokenizer, model = load_pretrained(cfg.model, task.model_class, recipe.model_kwargs(), cfg.data.max_length)
    model = recipe.prepare_model(model, tokenizer)  # e.g. generation settings onto generation_config
    vocab = extend_vocab(model, tokenizer, training_texts(splits.train), cfg.model.extend_vocab, log)
    check_rows_train(vocab, cfg.peft is not None, cfg.train.freeze.embeddings)
    extras = setup_extras(cfg, task, model, tokenizer, splits.train, log)  # augment, freeze, peft, checks
    train_ds = features(cfg, task, recipe.build_dataset, extras.train, tokenizer, log)
    eval_ds = features(cfg, task, recipe.build_eval_dataset, splits.validation, tokenizer, log) \
        if splits.validation else None
    exposure, train_ds = with_outliers(task, splits, train_ds, lambda rows: features(
        cfg, task, recipe.build_dataset, rows, tokenizer, log), log)
    components = [threads, ExtendVocab(vocab, cfg.model.extend_vocab, tokenizer, log), *extras.components,
                  *_components(cfg, task, recipe, splits, tokenizer, eval_ds is not None, run),
                  *feature_objective(task), *exposure, *extra_components]
    if cfg.train.distill:  # the teacher runs on every training batch (graftkit/train/distill.py)
        distillation, train_ds = prepare_distillation(cfg, task, tokenizer, train_ds, log)
        components.append(distillation)
    components.sort(key=lambda c: COMPONENT_TYPES.index(type(c)))  # the one order of hooks
    args = training_arguments(cfg, run.checkpoints, selection_metric(cfg, task), eval_ds is not None)
    args = dataclasses.replace(args, **recipe.training_arguments()) if recipe.training_arguments() else args
    trainer = GraftTrainer(
        model=extras.model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, components=components,
        data_collator=recipe.collator(tokenizer), processing_class=tokenizer,
        compute_metrics=recipe.compute_metrics if eval_ds is not None else None,
        callbacks=[GracefulStop(), TrainingProgress(log)] + list(extra_callbacks or []),
        optimizer_cls_and_kwargs=extras.optimizer(cfg, args), preprocess_logits_for_metrics=recipe.logits_reducer())
    for printer in (PrinterCallback, ProgressCallback):  # TrainingProgress draws the one bar and eval lines
        trainer.remove_callback(printer)
    write_setup(run, splits, extras.model, components)
    return trainer, tokenizer


def features(cfg: RunConfig, task: Task, build: Callable, examples: list, tokenizer, log: Callable[[str], None]):
    """``build(examples, tokenizer, max_length)``, from the on-disk cache when ``train.cache_datasets`` is on."""
    if not cfg.train.cache_datasets:
        return build(examples, tokenizer, cfg.data.max_length)
    task_parts = {"name": task.name, "build": build.__name__, "config": task.task_cfg.model_dump(mode="json"),
                  "state": task.state()}
    key = dataset_key(examples, tokenizer, cfg.data.max_length, task_parts)
    return cached_dataset(key, lambda: build(examples, tokenizer, cfg.data.max_length), log=log)


def prepare(cfg: RunConfig, task: Task | None = None, splits: Splits | None = None) -> tuple[Task, Splits]:
    """Read and validate the data (unless ``splits`` are given: a self-training round's) and fit the task's label
    state (no model yet)."""
    task = task or build_task(cfg.task, cfg.data)
    if splits is None:
        splits = set_aside(task, load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                                             from_rows=task.examples_from_rows))
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
        ConfigError / UnsupportedError: a key the config sets is not honoured by its task's training path
            (``check_settings``; a ``pretrain:`` section is run by ``graftkit.train.pretrain.train_with_pretrain``).
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    task = check_settings(cfg)  # before any work: an unsupported setting is one line, nothing written
    if cfg.train.strategy == "few_shot":  # asked for by name: its settings are checked before any work too
        check_few_shot(cfg, task, StrategyChoice("few_shot", "train.strategy: few_shot"))
    if cfg.train.strategy == "zero_shot":
        check_zero_shot(cfg, task)
    log = log if is_main_process() else (lambda m: None)
    with TrainSession(cfg, resume, overwrite, list(extra_callbacks or []), log) as session:
        own = task.optional(TrainsItself)  # trained by its own library's trainer (sentence-transformers)
        if own is not None:
            return session.publish(own.train_run(cfg, session))
        if cfg.train.strategy == "zero_shot":  # nothing trains: the head comes from label descriptions
            return session.publish(train_zero_shot(task, session))
        if cfg.train.self_training is not None:
            return session.publish(_self_train(task, session))
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


def _self_train(task: Task, session: TrainSession) -> RunFolder:
    """Self-training rounds (graftkit/train/self_training.py), each trained on this path, in the run's in-progress
    folder; the best round is then evaluated as the run."""
    cfg, log = session.cfg, session.log
    task, splits = prepare(cfg, task)
    pool = read_self_training_pool(cfg, task, splits, log)  # its refusals come before the run folder exists
    run, _ = session.prepare_run_dir()
    _log_data(splits, log)

    def train_round(round_cfg: RunConfig, round_splits: Splits, resume: bool) -> RunFolder:
        with TrainSession(round_cfg, resume, False, session.extra_callbacks, log) as inner:
            return inner.publish(_train_with_trainer(build_task(round_cfg.task, round_cfg.data), inner, round_splits))

    def finish(run: RunFolder, best: dict, record: dict) -> RunFolder:
        run.write_test_split(splits.test)
        finalize_run(run, cfg, splits, best["train"], selection_metric(cfg, task), log=log,
                     strategy=best.get("strategy"), self_training=record, before_complete=lambda: prune_rounds(run))
        return run

    return train_self_training(cfg, task, splits, pool, run, train_round, finish, log)


def _train_with_trainer(task: Task, session: TrainSession, splits: Splits | None = None) -> RunFolder:
    """Train with GraftTrainer in the run's in-progress folder, then save and evaluate the run there (on
    ``splits`` when given: a self-training round's)."""
    cfg, log = session.cfg, session.log
    task, splits = prepare(cfg, task, splits)
    choice = choose_strategy(cfg, task, splits.train)
    if choice is not None and choice.strategy == "few_shot":
        check_few_shot(cfg, task, choice)  # auto chose it: its settings are checked now, still before training
    # under torchrun every rank trains, but only the main process creates and writes the run folder
    run, checkpoint = session.prepare_run_dir()
    _log_data(splits, log)
    if choice is not None:
        log(choice.line())
        if choice.strategy == "few_shot":
            return train_few_shot(task, session, splits, run, choice)
    trainer, tokenizer = build_trainer(cfg, task, splits, run, session.extra_callbacks, log,
                                       [choice] if choice is not None else [])
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
    finalize_run(run, cfg, splits, train_metrics, metric, log=log, before_complete=distilled, quality=quality,
                 strategy=choice.summary() if choice is not None else None)
    return run
