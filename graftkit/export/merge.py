"""`graftkit merge`: fold a LoRA / AdaLoRA / IA3 adapter into its base model's weights."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer

from graftkit.errors import RunFolderError
from graftkit.inference.base import load_run_config, load_task, task_class_of
from graftkit.io import publish_run, sole_writer, staging_path, write_text
from graftkit.modeling.bottleneck import CONFIG_FILE
from graftkit.modeling.peft import MERGEABLE, load_adapter_model
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.matrix import require
from graftkit.tasks.run_config import dump_config


def merge_run(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the adapter run as a full transformers model folder (and a servable run folder).

    Args:
        run_dir: a finished run trained with ``peft``.
        out_dir: where to write (default ``RUN_DIR/merged``).

    Returns:
        The folder written; ``AutoModelFor*.from_pretrained`` loads it without peft.
    """
    run = RunFolder(run_dir).require_model()
    require(task_class_of(run), "merge")
    if (run.path / CONFIG_FILE).is_file():
        raise RunFolderError(f"{run.path}: bottleneck adapters are non-linear and cannot be merged into the "
                             "weights; `graftkit export` writes a standalone ONNX model of this run instead")
    if not (run.path / "adapter_config.json").is_file():
        raise RunFolderError(f"{run.path} holds a full model already (no adapter_config.json); nothing to merge")
    method = json.loads((run.path / "adapter_config.json").read_text(encoding="utf-8"))["peft_type"].lower()
    if method not in MERGEABLE:
        raise RunFolderError(f"{run.path}: {method} adds virtual tokens and cannot be merged into the weights; "
                             f"only {', '.join(sorted(MERGEABLE))} adapters can")
    task = load_task(run)
    model = load_adapter_model(run.path, task.model_class, merge=True)
    out = Path(out_dir) if out_dir else run.path / "merged"
    with sole_writer(out):  # merging again replaces the earlier result, once the new one is complete
        staging = staging_path(out)
        shutil.rmtree(staging, ignore_errors=True)  # left by a writer that crashed (we hold the lock)
        _write_merged(model, run, staging)
        publish_run(staging, out)
    return out


def untie_shared(model) -> None:
    """Give each parameter that still shares storage its own copy, when the config no longer ties weights.

    peft unties a head it trained a copy of (a masked LM's decoder: ``tie_word_embeddings`` becomes False), but
    the decoder's bias still shares the head's bias tensor; transformers then saves one of the two and, the
    tie being off, loads the other as new zeros. Separate copies are saved and loaded as they are.
    """
    if getattr(model.config, "tie_word_embeddings", True):
        return
    seen: set[int] = set()
    for name, param in list(model.named_parameters(remove_duplicate=False)):
        if param.data_ptr() in seen:
            owner, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(owner), leaf, torch.nn.Parameter(param.detach().clone(),
                                                                          requires_grad=param.requires_grad))
        seen.add(param.data_ptr())


def _write_merged(model, run: RunFolder, folder: Path) -> None:
    untie_shared(model)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(run.path)).save_pretrained(str(folder))
    for name in ("labels.json", "generation_config.json"):  # the run's, not the base model's
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, folder / name)
    write_text(folder / "config.yaml", dump_config(load_run_config(run)))  # in today's format
    (folder / "COMPLETE").write_text("ok\n", encoding="utf-8")
