"""The bi-encoder shared by the embedding task and ranking's two-tower variant: a sentence-transformers model
(backbone + pooling), its in-batch-negatives loss, embedding texts, and training it with
sentence-transformers' own trainer inside graftkit's run folder."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from transformers import TrainingArguments

from graftkit.config import ModelConfig
from graftkit.errors import ConfigError
from graftkit.io import publish_dir, write_json
from graftkit.logs import quiet_loggers
from graftkit.modeling.load import resolve_model_path
from graftkit.tasks.capabilities import TrainsItself


#: what trains the bi-encoder, as refusals name it
TRAINED_BY = "sentence-transformers"
#: the config keys this path honours; graftkit/train/keys.py refuses any other key a config sets. The
#: TrainingArguments it carries over (graftkit/train/arguments.py; no validation passes, so no checkpoint choice,
#: early stopping or evaluation cadence; batches come from its no-duplicates sampler, not group_by_length), the
#: base model, and what it shares with the Trainer path: CPU threads and TensorBoard logging
SUPPORTED_KEYS = (
    "train.epochs", "train.max_steps", "train.batch_size", "train.learning_rate", "train.optimizer",
    "train.weight_decay", "train.warmup", "train.scheduler", "train.grad_accum", "train.max_grad_norm",
    "train.precision", "train.seed", "train.save_total_limit", "train.logging_steps", "train.report_to",
    "train.num_workers", "train.compile", "train.distributed", "train.threads", "model.name_or_path",
    "model.revision")
#: what this path always does: it never evaluates during training, so it never stops early
FIXED_SETTINGS = {"train.early_stopping": None}


class BiEncoderTraining(TrainsItself):
    """The sentence-transformers path's declarations; a task's subclass supplies ``train_run``."""

    trained_by = TRAINED_BY

    def supported_keys(self) -> tuple[str, ...]:
        return SUPPORTED_KEYS

    def fixed_settings(self) -> dict:
        return FIXED_SETTINGS


def load_model(cfg: ModelConfig | str, max_length: int | None = None, device: str | None = None):
    """A ``SentenceTransformer`` from a sentence-transformers folder, a plain transformers encoder
    (mean pooling is added), a hub id, ``bundled:minilm`` or a finished embedding run folder."""
    name = cfg if isinstance(cfg, str) else cfg.name_or_path
    path = resolve_model_path(name)
    revision = None if isinstance(cfg, str) else cfg.revision
    try:  # "no sentence-transformers model found, creating mean pooling" is expected
        with quiet_loggers(("sentence_transformers",)):
            model = SentenceTransformer(path, device=device, revision=revision)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.name_or_path: cannot load '{name}' as a sentence embedder: {err}") from None
    if max_length:
        model.max_seq_length = max_length
    return model


def make_loss(model, scale: float = 20.0):
    """sentence-transformers' MultipleNegativesRankingLoss: every other positive in the batch is a negative."""
    return MultipleNegativesRankingLoss(model, scale=scale)


def embed(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """(n, dim) float32 L2-normalised embeddings from a ``SentenceTransformer``."""
    vecs = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=progress)
    return np.ascontiguousarray(vecs, dtype=np.float32)


def _st_arguments(session, run):
    """graftkit's TrainingArguments mapping, carried over to SentenceTransformerTrainingArguments."""
    base = session.training_arguments(run, "loss", has_eval=False)
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs["train_sampling_strategy"] = "random"  # the batch sampler below decides batches
    # no duplicate texts in a batch: a duplicate would be a "negative" identical to the positive
    return SentenceTransformerTrainingArguments(**kwargs, batch_sampler=BatchSamplers.NO_DUPLICATES)


def fit_bi_encoder(session, run, checkpoint: str | None, splits, columns: dict[str, list[str]]):
    """Fine-tune the configured encoder as a sentence-transformers bi-encoder and publish it into ``run``.

    Args:
        session: the train layer's TrainSession.
        run: the run folder (from ``session.prepare_run_dir()``); ``checkpoint`` resumes.
        splits: the run's data, hashed into training_setup.json (written as on the Trainer path).
        columns: ``anchor``, ``positive`` and optional ``negative_1..n`` texts, one row each, for
            MultipleNegativesRankingLoss (the positives of the other rows and every negative in the batch
            are an anchor's negatives).

    Returns:
        the trained ``SentenceTransformer`` and the trainer's ``TrainOutput``; ``run.history`` holds the log.

    Raises:
        Interrupted: a signal stopped training; the last checkpoint is on disk for ``resume``.
    """
    cfg = session.cfg
    shared = session.shared_components(run)  # train.threads is set before the model loads
    model = load_model(cfg.model, cfg.data.max_length)
    session.record_setup(run, splits, model, shared)
    stop = session.stop_callback()
    trainer = SentenceTransformerTrainer(
        model=model, args=_st_arguments(session, run), loss=make_loss(model), train_dataset=Dataset.from_dict(columns),
        callbacks=[stop, *(cb for c in shared for cb in c.callbacks()), *session.extra_callbacks])
    result = session.train_until_stopped(trainer, stop, checkpoint, run)
    staging = run.path / ".staging-model"
    model.save(str(staging))
    publish_dir(staging, run.path)
    write_json(run.history, trainer.state.log_history)
    return model, result
