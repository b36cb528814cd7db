"""Load the torch model of any run folder: a full model, an adapter run (peft or bottleneck), or an ensemble."""
from __future__ import annotations

from pathlib import Path

import torch

from graftkit.inference.ensemble import EnsembleModel
from graftkit.modeling.bottleneck import CONFIG_FILE as BOTTLENECK_CONFIG
from graftkit.modeling.peft import load_adapter_model


def load_run_model(run_dir: str | Path, task) -> torch.nn.Module:
    """The inference model of ``run_dir`` for ``task`` (its ``model_class`` builds the architecture)."""
    run_dir = Path(run_dir)
    if (run_dir / "ensemble.json").is_file():
        return EnsembleModel.from_run(run_dir, task, load_run_model)
    if any((run_dir / n).is_file() for n in ("adapter_config.json", BOTTLENECK_CONFIG)):
        return load_adapter_model(run_dir, task.model_class)
    return task.model_class.from_pretrained(str(run_dir))
