"""Fine-tune a sentence embedder with sentence-transformers' trainer and write a graftkit run folder."""
from __future__ import annotations

import dataclasses

from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from transformers import TrainingArguments

from graftkit.data.dataset import Splits, load_splits
from graftkit.errors import ConfigError
from graftkit.io import publish_dir, read_json, write_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.report.plots import training_curve_png
from graftkit.tasks.embedding import head, metrics, preprocess
from graftkit.tasks.embedding.card import write_card


def _st_arguments(session, run: RunFolder):
    """graftkit's TrainingArguments mapping, carried over to SentenceTransformerTrainingArguments."""
    base = session.training_arguments(run, "loss", has_eval=False)
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs["train_sampling_strategy"] = "random"  # the batch sampler below decides batches
    # no duplicate texts in a batch: a duplicate would be a "negative" identical to the positive
    return SentenceTransformerTrainingArguments(**kwargs, batch_sampler=BatchSamplers.NO_DUPLICATES)


def evaluate_splits(model, task, splits: Splits, batch_size: int) -> dict:
    """Retrieval metrics for validation and test queries against the training corpus (see preprocess)."""
    out = {}
    for name, queries in (("validation", splits.validation), ("test", splits.test)):
        if queries:
            data = preprocess.retrieval_set(queries, splits.train, task.label_mode)
            out[name] = metrics.retrieval_scores(model, data, name, batch_size)
    return out


def reject_classifier_switches(cfg, what: str = "task.type embedding") -> None:
    """Switches built for the Trainer path and its task heads; the bi-encoder trainer would ignore them.

    ``what`` names the setting that chose the bi-encoder (in the error)."""
    t, defaults = cfg.train, type(cfg.train)()

    used = [name for name, on in (("peft", cfg.peft), ("augment", cfg.augment), ("train.adversarial", t.adversarial),
                                  ("train.rdrop", t.rdrop), ("train.label_smoothing", t.label_smoothing),
                                  ("train.freeze", t.freeze != defaults.freeze),
                                  ("train.layer_lr_decay", t.layer_lr_decay != 1.0),
                                  ("train.head_learning_rate", t.head_learning_rate),
                                  # it trains without validation passes: no checkpoint choice, no early stop
                                  # (the defaults pass: a saved config spells every default out)
                                  ("train.early_stopping", t.early_stopping not in (None, defaults.early_stopping)),
                                  ("train.eval_strategy", t.eval_strategy != defaults.eval_strategy),
                                  ("train.metric", t.metric != defaults.metric)) if on]
    if used:
        raise ConfigError(f"{what} is trained by sentence-transformers, which does not apply "
                          f"{', '.join(used)}; remove them (they work with classification, ner, pair, regression)")


def fit_bi_encoder(session, run: RunFolder, checkpoint: str | None, columns: dict[str, list[str]]):
    """Fine-tune the configured encoder as a sentence-transformers bi-encoder and publish it into ``run``.

    Args:
        session: the train layer's TrainSession.
        run: the run folder (from ``session.prepare_run_dir()``); ``checkpoint`` resumes.
        columns: ``anchor``, ``positive`` and optional ``negative_1..n`` texts, one row each, for
            MultipleNegativesRankingLoss (the positives of the other rows and every negative in the batch
            are an anchor's negatives).

    Returns:
        the trained ``SentenceTransformer`` and the trainer's ``TrainOutput``; ``run.history`` holds the log.

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    cfg = session.cfg
    model = head.load_model(cfg.model, cfg.data.max_length)
    stop = session.stop_callback()
    trainer = SentenceTransformerTrainer(
        model=model, args=_st_arguments(session, run), loss=head.make_loss(model),
        train_dataset=Dataset.from_dict(columns), callbacks=[stop, *session.extra_callbacks])
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
    finally:  # an exception skips on_train_end: put the signal handlers back all the same
        stop.on_train_end(trainer.args, trainer.state, trainer.control)
    if stop.requested:
        raise session.interrupted(trainer.state.global_step, run)
    staging = run.path / ".staging-model"
    model.save(str(staging))
    publish_dir(staging, run.path)
    write_json(run.history, trainer.state.log_history)
    return model, result


def train_embedding(task, session) -> RunFolder:
    """Train a bi-encoder with MultipleNegativesRankingLoss, evaluate retrieval, write a complete run folder.

    Args:
        task: the EmbeddingTask.
        session: the train layer's TrainSession (config, run folder, arguments, stop handling).

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    cfg, log = session.cfg, session.log
    reject_classifier_switches(cfg)
    splits = load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                         from_rows=task.examples_from_rows)
    task.fit(splits.train)
    run, checkpoint = session.prepare_run_dir()
    session.record_data(run, splits)
    for note in splits.notes:
        log(note)
    anchors, positives, skipped = preprocess.training_pairs(splits.train, task.label_mode, cfg.train.seed)
    if skipped:
        log(f"{skipped} training rows have a label no other row shares; they cannot form a pair and are skipped")
    log(f"examples: train pairs={len(anchors)} validation={len(splits.validation)} test={len(splits.test)}")
    model, result = fit_bi_encoder(session, run, checkpoint, {"anchor": anchors, "positive": positives})
    run.write_task_state(task.name, task.state())
    results = {"train": dict(result.metrics), "data": {
        "train": len(splits.train), "train_pairs": len(anchors), "validation": len(splits.validation),
        "test": len(splits.test), "dropped_rows": splits.dropped, "notes": splits.notes}}
    results.update(evaluate_splits(model, task, splits, cfg.eval.batch_size))
    for name in ("validation", "test"):
        if name in results:
            log(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in results[name].items() if isinstance(v, float)))
    if cfg.eval.plots:
        training_curve_png(read_json(run.history), "loss", run.plots / "training_curve.png")
    run.update_metrics(**results)
    write_card(run, cfg, results, task)
    run.mark_complete()
    return run
