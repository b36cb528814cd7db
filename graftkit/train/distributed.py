"""Data-parallel training on the existing engines: torch.distributed.run launches, accelerate coordinates.

``graftkit train CONFIG --nproc N`` re-runs the same command in N processes under
``torch.distributed.run`` (what ``torchrun`` and ``accelerate launch --multi_gpu`` do). Inside each
process ``transformers.Trainer`` sets up DDP / FSDP / DeepSpeed through accelerate (gloo on CPU,
nccl on GPU), shards the data with a distributed sampler and gathers evaluation outputs. This
module adds only what the run folder needs on top: one writer (the main process) whose result or
error is broadcast to every rank, a stop flag shared by all ranks, a checkpoint finder that skips
half-written checkpoints, and the mapping of ``train.distributed`` onto TrainingArguments.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Callable, TypeVar

import torch

from graftkit.config import DistributedConfig
from graftkit.errors import ConfigError, GraftkitError
from graftkit.tasks.run_config import load_config

T = TypeVar("T")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def world_size() -> int:
    """Number of processes in this training job (1 unless started by torchrun / accelerate launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in the process that writes the run folder: global rank 0, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` in the main process only and hand its result to every rank.

    A GraftkitError raised by ``fn`` is raised on every rank, so all processes stop with the same
    readable message instead of the others waiting for a result that never comes. Any other error is
    re-raised as it is on the main process and reaches the other ranks as a GraftkitError naming it
    (the exception itself may not pickle, and they must not wait in the broadcast forever).
    """
    if world_size() == 1:
        return fn()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=not torch.cuda.is_available())  # the same state TrainingArguments builds later
    box: list = [None]
    if state.is_main_process:
        try:
            box = [("ok", fn())]
        except GraftkitError as err:
            box = [("error", err)]
        except BaseException as err:  # KeyboardInterrupt too: the other ranks must hear that the main one stopped
            _tell_other_ranks(err, broadcast_object_list)
            raise
    broadcast_object_list(box)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def _tell_other_ranks(err: BaseException, broadcast: Callable[[list], object]) -> None:
    message = f"the main process failed: {type(err).__name__}: {err}; its traceback is in its own output"
    try:
        broadcast([("error", GraftkitError(message))])
    except Exception:  # the process group is gone too: the main process's own error is the one to report
        pass


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (no-op in a single process)."""
    if world_size() == 1 or not torch.distributed.is_initialized():
        return flag
    t = torch.tensor(1.0 if flag else 0.0, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` whose trainer_state.json was written.

    The Trainer writes trainer_state.json last, so a checkpoint without it was cut short by a kill
    and resuming from it would fail; it is skipped (and overwritten when training reaches it again).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()]
    return str(max(found)[1]) if found else None


def deepspeed_zero_config(stage: int) -> dict:
    """A ZeRO config whose batch, precision and clipping values TrainingArguments fills in ("auto")."""
    return {
        "zero_optimization": {"stage": stage, "overlap_comm": True, "contiguous_gradients": True,
                              # ZeRO-3 shards the weights: gather them so save_model writes one safetensors file
                              **({"stage3_gather_16bit_weights_on_model_save": True} if stage == 3 else {})},
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }


def strategy_arguments(cfg: DistributedConfig) -> dict:
    """TrainingArguments keywords for ``train.distributed`` (DDP needs none beyond the backend).

    Raises:
        ConfigError: a ZeRO strategy was chosen but DeepSpeed is not installed, or the DeepSpeed
            config file named in ``train.distributed.deepspeed_config`` does not exist.
    """
    kwargs: dict = {
        "ddp_backend": None if cfg.backend == "auto" else cfg.backend,
        # graftkit's losses are per-batch means (the task heads' and transformers' own); DDP averages them
        # across ranks. Token-count averaging would scale those means by the world size instead.
        "average_tokens_across_devices": False,
    }
    if cfg.strategy == "fsdp":
        kwargs["fsdp"] = True
        # FSDP2, fully sharded, wrapped per transformer layer; a full state dict so the run folder gets one
        # plain safetensors file
        kwargs["fsdp_config"] = {"version": 2, "reshard_after_forward": True,
                                 "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "state_dict_type": "FULL_STATE_DICT",
                                 **cfg.fsdp_config}
    elif cfg.strategy in ("zero2", "zero3"):
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(f"train.distributed.strategy: {cfg.strategy} needs DeepSpeed, which is not installed; "
                              f"run `pip install deepspeed` on the GPU machines (it needs a CUDA toolchain), or "
                              f"use strategy: fsdp (built into torch) or ddp")
        if cfg.deepspeed_config is not None:
            if not Path(cfg.deepspeed_config).is_file():
                raise ConfigError(f"train.distributed.deepspeed_config: file not found: {cfg.deepspeed_config}")
            kwargs["deepspeed"] = cfg.deepspeed_config
        else:
            kwargs["deepspeed"] = deepspeed_zero_config(int(cfg.strategy[-1]))
    return kwargs


def train_argv(config: Path, overrides: list[str] | None, resume: bool, overwrite: bool) -> list[str]:
    """The ``graftkit train`` arguments every worker process runs (the same command, minus --nproc)."""
    argv = ["train", str(config)]
    for item in overrides or []:
        argv += ["--set", item]
    return argv + (["--resume"] if resume else []) + (["--overwrite"] if overwrite else [])


def launch(argv: list[str], nproc: int) -> None:
    """Run ``python -m graftkit <argv>`` in ``nproc`` processes on this machine under torch.distributed.run.

    Equivalent to ``torchrun --standalone --nproc-per-node N -m graftkit <argv>``; returns when every
    worker has finished.

    Raises:
        GraftkitError: a worker failed (its own message is printed above by that worker).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1 (got {nproc})")
    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "-m", "graftkit", *argv])
    try:
        run(args)
    except ChildFailedError as err:
        ranks = ", ".join(f"rank {rank} exit code {f.exitcode}" for rank, f in err.failures.items())
        raise GraftkitError(f"distributed run failed ({ranks}); the failing process's message is above") from None


def launch_train(config: Path, overrides: list[str] | None, nproc: int, resume: bool = False,
                 overwrite: bool = False) -> None:
    """``graftkit train CONFIG --nproc N``: data-parallel training in N local processes.

    The config is validated here first, so a bad key or a missing DeepSpeed fails once, before any
    process starts.
    """
    strategy_arguments(load_config(config, overrides).train.distributed)
    launch(train_argv(config, overrides, resume, overwrite), nproc)
