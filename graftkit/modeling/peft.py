"""Parameter-efficient fine-tuning through the `peft` library, and loading/merging adapter runs.

The task head (every top-level module outside the backbone) stays fully trainable via
``modules_to_save``; target modules default to peft's own per-architecture table and can be
overridden with ``peft.target_modules``. Unsupported combinations fail with a ConfigError
before training starts (a one-token dry forward pass catches what peft itself does not check).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from graftkit.config import PeftSettings
from graftkit.errors import ConfigError, RunFolderError
from graftkit.modeling.bottleneck import (
    CONFIG_FILE,
    add_adapters,
    is_bottleneck_model,
    load_bottleneck_model,
    save_adapters,
)
from graftkit.modeling.load import quiet_missing_head, resolve_model_path
from graftkit.modeling.modules import head_module_names, linear_names
from graftkit.modeling.run_format import read_config_tree

__all__ = ["head_module_names", "linear_names", "wrap_model", "load_adapter_model", "finish_adapter_save"]

MERGEABLE = {"lora", "adalora", "ia3"}
PROMPT_METHODS = {"prefix_tuning", "prompt_tuning"}


def trained_whole_modules(model: torch.nn.Module, settings: PeftSettings) -> list[str]:
    """Modules that train in full under PEFT: the task head, and the backbone's pooler when the head reads it.

    BERT's pooler (dense + tanh over [CLS]) is a task layer that sits inside the backbone; RoBERTa-style
    models carry the same layer inside their classification head. Frozen, it caps what adapters reach
    (sentence-transformers checkpoints never trained it), so it trains unless ``peft.train_pooler`` is off.
    """
    names = head_module_names(model)
    prefix = getattr(model, "base_model_prefix", "")
    pooler = getattr(getattr(model, prefix, None), "pooler", None)
    if settings.train_pooler and isinstance(pooler, torch.nn.Module):
        # its parametrised leaves (BERT: pooler.dense): peft's merge cannot unwrap a whole container module
        names += [f"{prefix}.pooler.{n}" for n, m in pooler.named_modules()
                  if n and not list(m.children()) and any(True for _ in m.parameters())]
    return names


def _task_type(model: torch.nn.Module) -> str | None:
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return "SEQ_CLS"
    if name.endswith("ForTokenClassification"):
        return "TOKEN_CLS"
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return "CAUSAL_LM"
    if name.endswith("ForConditionalGeneration") or name == "EncoderDecoderModel":
        return "SEQ_2_SEQ_LM"
    return None


def peft_config(settings: PeftSettings, model: torch.nn.Module, total_steps: int):
    """The peft config object for ``settings`` on ``model`` (raises ConfigError for unsupported input)."""
    import peft

    task_type = _task_type(model)
    if type(model).__name__ == "EncoderDecoderModel":
        raise ConfigError("peft: a warm-started encoder-decoder (BERT2BERT) has newly initialised cross-attention "
                          "that must train in full; remove the peft section for this seq2seq run")
    # a language model's head is its pretrained (often tied) output embedding: nothing new to train in full
    head = [] if task_type in ("CAUSAL_LM", "SEQ_2_SEQ_LM") else trained_whole_modules(model, settings)
    common = {"task_type": task_type, "modules_to_save": head or None}
    if settings.method in PROMPT_METHODS and task_type is None:
        raise ConfigError(f"peft.method {settings.method}: peft supports prompt methods only for sequence or "
                          f"token classification models, not {type(model).__name__}; use lora, adalora or ia3")
    if settings.method in PROMPT_METHODS and settings.target_modules is not None:
        raise ConfigError(f"peft.target_modules: {settings.method} adds virtual tokens and has no target modules")
    targets = {"target_modules": settings.target_modules} if settings.target_modules is not None else {}
    if settings.method == "lora":
        cls, kw = peft.LoraConfig, dict(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                        **targets)
    elif settings.method == "adalora":
        # AdaLoRA prunes ranks on a schedule over the whole run: warm up 10 %, final 20 % fixed
        cls, kw = peft.AdaLoraConfig, dict(init_r=max(settings.r + 4, int(settings.r * 1.5)), target_r=settings.r,
                                           lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                           total_step=total_steps, tinit=int(0.1 * total_steps),
                                           tfinal=int(0.2 * total_steps), deltaT=max(1, total_steps // 20), **targets)
    elif settings.method == "ia3":
        cls, kw = peft.IA3Config, dict(targets)
        if "target_modules" in kw and "feedforward_modules" not in settings.options:
            kw["feedforward_modules"] = []  # user-chosen targets: scale their inputs only if told so
    elif settings.method == "prefix_tuning":
        cls, kw = peft.PrefixTuningConfig, dict(num_virtual_tokens=settings.num_virtual_tokens)
    else:
        cls, kw = peft.PromptTuningConfig, dict(num_virtual_tokens=settings.num_virtual_tokens)
    try:
        return cls(**common, **kw, **settings.options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"peft ({settings.method}): invalid settings: {err}") from None


def _get_peft_model(model: torch.nn.Module, config, settings: PeftSettings):
    import peft

    try:
        return peft.get_peft_model(model, config)
    except ValueError as err:
        msg = str(err)
        if "not found" in msg or "target" in msg.lower():
            raise ConfigError(f"peft.target_modules: {msg}. Module names in this model look like: "
                              f"{', '.join(linear_names(model)[:12])}") from None
        raise ConfigError(f"peft.method {settings.method}: not supported for {type(model).__name__}: {msg}") from None


def wrap_model(model: torch.nn.Module, settings: PeftSettings, total_steps: int, dummy_ids: list[int]):
    """Wrap ``model`` with the configured PEFT method; verify it runs on a short dummy input."""
    if settings.method == "bottleneck":  # not in peft: graftkit's own (see modeling/bottleneck.py)
        wrapped = add_adapters(model, settings, trained_whole_modules(model, settings))
    else:
        wrapped = _get_peft_model(model, peft_config(settings, model, total_steps), settings)
    was_training = wrapped.training
    wrapped.eval()
    try:
        with torch.no_grad():
            ids = torch.tensor([dummy_ids])
            wrapped(input_ids=ids, attention_mask=torch.ones_like(ids))
    except Exception as err:  # noqa: BLE001 - any failure here means the combination does not work
        raise ConfigError(f"peft.method {settings.method}: cannot run on {type(model).__name__} "
                          f"({type(err).__name__}: {err}); choose another peft.method") from None
    wrapped.train(was_training)
    return wrapped


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; for peft models the frozen base is counted once."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def is_peft_model(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def finish_adapter_save(model, out_dir: str | Path, base_name_or_path: str) -> None:
    """Complete an adapter run's saved model: peft folders lack config.json, so store the base model's
    (with the task's labels); bottleneck runs keep only their adapters + head (see bottleneck.py)."""
    if is_peft_model(model):
        base = model.get_base_model()
        base.config.save_pretrained(str(out_dir))
        if base.can_generate():  # the run's decoding settings (causal_lm / seq2seq), not the base model's
            base.generation_config.save_pretrained(str(out_dir))
    elif is_bottleneck_model(model):
        save_adapters(model, out_dir, base_name_or_path)


def _base_path(run_dir: Path, spec_file: str = "adapter_config.json") -> str:
    """The base checkpoint of an adapter run: the run's own config wins over the absolute path peft stored."""
    if (run_dir / "config.yaml").is_file():
        name = (read_config_tree(run_dir).get("model") or {}).get("name_or_path")
        if name:
            return resolve_model_path(name)
    return json.loads((run_dir / spec_file).read_text(encoding="utf-8"))["base_model_name_or_path"]


def load_adapter_model(run_dir: str | Path, model_class, merge: bool = True):
    """Base model + the run's adapter; mergeable methods are merged for plain-speed inference."""
    from peft import PeftModel
    from transformers import AutoConfig

    run_dir = Path(run_dir)
    bottleneck = (run_dir / CONFIG_FILE).is_file()
    base_path = _base_path(run_dir, CONFIG_FILE if bottleneck else "adapter_config.json")
    if not Path(base_path).exists() and base_path.startswith(("/", ".")):
        raise RunFolderError(f"{run_dir}: the base model of this adapter run is gone ({base_path}); "
                             "reinstall it, or write a full model earlier with `graftkit merge` / `graftkit export`")
    if bottleneck:
        return load_bottleneck_model(run_dir, model_class, base_path)
    config = AutoConfig.from_pretrained(str(run_dir))
    with quiet_missing_head():  # the head is 'missing' from the base checkpoint; the adapter holds it
        base = model_class.from_pretrained(base_path, config=config)
    model = PeftModel.from_pretrained(base, str(run_dir))
    method = model.peft_config["default"].peft_type.value.lower()
    return model.merge_and_unload() if merge and method in MERGEABLE else model


def adalora_total_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int) -> int:
    """Optimizer steps of the whole run (AdaLoRA's rank budget schedule needs it up front)."""
    if max_steps > 0:
        return max_steps
    per_epoch = max(1, math.ceil(math.ceil(n_examples / batch_size) / grad_accum))
    return max(1, math.ceil(per_epoch * epochs))
