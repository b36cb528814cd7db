"""CPU threading for training: intra-op threads on the physical cores, no oversubscription.

PyTorch's intra-op pool, the Rust tokenizer's pool and DataLoader worker processes all start as
many threads as they see cores. On a small machine they then fight over the same cores (a 2-core
box running 2 workers × 2 torch threads + the main process's 2 has 6 busy threads on 2 cores).
"""
from __future__ import annotations

import os

import psutil
import torch

from graftkit.train.components import Component


def physical_cores() -> int:
    """Physical cores this process may run on (the affinity mask caps the machine's count)."""
    physical = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows have no affinity mask
        allowed = physical
    return max(1, min(physical, allowed))


def configure_threads(threads: int | str, num_workers: int) -> dict:
    """Set the intra-op thread count and keep tokenizer / worker threads off the training cores.

    Args:
        threads: ``"auto"`` (physical cores, unless ``OMP_NUM_THREADS`` is set: the user's explicit
            choice wins), ``"keep"`` (leave torch's setting alone) or a count.
        num_workers: DataLoader worker processes; with any, the tokenizer's own pool is turned off
            (it would run in every forked worker). Workers themselves run one torch thread each
            (PyTorch's worker loop sets that).

    Returns:
        What was set, for ``training_setup.json``.
    """
    if threads == "auto" and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(physical_cores())
    elif threads not in ("auto", "keep"):
        torch.set_num_threads(int(threads))
    if num_workers > 0:  # forked workers inherit the tokenizer's pool; the library warns and deadlocks otherwise
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    return {"intra_op_threads": torch.get_num_threads(), "physical_cores": physical_cores(),
            "dataloader_workers": num_workers, "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM")}



class Threads(Component):
    """``train.threads``: set when built (before the model loads); what was set goes into training_setup.json."""

    name = "threads"
    keys = ("train.threads",)

    def __init__(self, threads: int | str, num_workers: int):
        self.info = configure_threads(threads, num_workers)

    def record(self) -> dict:
        return {"threads": self.info}
