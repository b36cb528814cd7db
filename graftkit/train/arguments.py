"""graftkit's TrainConfig mapped onto transformers' TrainingArguments (the only place that knows both)."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainingArguments
from transformers.training_args import OptimizerNames

from graftkit.config import greater_is_better
from graftkit.errors import ConfigError
from graftkit.tasks.base import Task
from graftkit.tasks.run_config import RunConfig
from graftkit.train.distributed import strategy_arguments

# "adamw" is torch's fused AdamW where transformers picks it by default (TrainingArguments.optim's default)
OPTIMIZERS = {"adamw": OptimizerNames.ADAMW_TORCH_FUSED, "sgd": OptimizerNames.SGD,
              "adafactor": OptimizerNames.ADAFACTOR}


#: the config keys ``training_arguments`` and ``selection_metric`` consume (``train.distributed`` through
#: ``strategy_arguments``)
ARGUMENT_KEYS = (
    "train.epochs", "train.max_steps", "train.batch_size", "train.eval_batch_size", "train.learning_rate",
    "train.weight_decay", "train.optimizer", "train.scheduler", "train.warmup", "train.grad_accum",
    "train.max_grad_norm", "train.label_smoothing", "train.precision", "train.eval_strategy", "train.eval_steps",
    "train.save_total_limit", "train.metric", "train.logging_steps", "train.report_to", "train.seed",
    "train.group_by_length", "train.num_workers", "train.compile", "train.distributed.strategy",
    "train.distributed.backend", "train.distributed.fsdp_config", "train.distributed.deepspeed_config")


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
        greater_is_better=greater_is_better(metric),
        logging_steps=t.logging_steps,
        disable_tqdm=True,  # graftkit.train.callbacks.TrainingProgress draws the progress bar
        report_to=[r for r in t.report_to if r != "tensorboard"] or "none",
        run_name=cfg.name,  # the run's name in wandb / mlflow
        seed=t.seed,
        data_seed=t.seed,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        dataloader_num_workers=t.num_workers,
        torch_compile=t.compile,  # inductor; its warm-up cost is measured in BENCHMARKS.md
        use_cpu=not torch.cuda.is_available(),
        **strategy_arguments(t.distributed),
    )
