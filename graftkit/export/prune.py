"""Structured magnitude pruning of feed-forward neurons, with an optional recovery fine-tune.

Method: in every transformer layer, each intermediate (FFN) neuron j is scored by the
magnitude of its path through the block, ``||W_in[j, :]||_2 * ||W_out[:, j]||_2``; the
lowest-scoring ``amount`` fraction is removed with transformers' ``prune_linear_layer``.
Every layer keeps the same number of neurons, so ``config.intermediate_size`` describes the
smaller model and the result is again a plain ``from_pretrained`` folder: smaller on disk and
faster (the FFN holds about two thirds of an encoder's FLOPs), unlike masked unstructured pruning.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from graftkit.errors import ConfigError, ExportError
from graftkit.export.parity import load_test_examples
from graftkit.inference.predictor import Predictor, load_run_config
from graftkit.io import publish_dir, write_json, write_text
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks.run_config import dump_config
from graftkit.train.trainer import train

#: copied as they are; config.yaml is written anew, in today's format
RUN_FILES = ("labels.json", "README.md")


def ffn_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Layers with ``intermediate.dense`` → ``output.dense`` (BERT, RoBERTa, MiniLM, ELECTRA, XLM-R ...)."""
    blocks = []
    for module in model.modules():
        inter, out = getattr(module, "intermediate", None), getattr(module, "output", None)
        if isinstance(getattr(inter, "dense", None), torch.nn.Linear) and \
                isinstance(getattr(out, "dense", None), torch.nn.Linear) and \
                out.dense.in_features == inter.dense.out_features:
            blocks.append(module)
    if not blocks:
        raise ExportError(f"{type(model).__name__}: no BERT-style feed-forward blocks to prune")
    return blocks


def prune_ffn(model: torch.nn.Module, amount: float) -> tuple[int, int]:
    """Remove the ``amount`` fraction of lowest-magnitude FFN neurons in every layer; returns (before, after) width."""
    from transformers.pytorch_utils import prune_linear_layer

    if not 0.0 < amount < 1.0:
        raise ConfigError(f"--amount must be between 0 and 1 (got {amount})")
    blocks = ffn_blocks(model)
    width = blocks[0].intermediate.dense.out_features
    keep = max(1, int(round(width * (1.0 - amount))))
    for b in blocks:
        w_in, w_out = b.intermediate.dense.weight, b.output.dense.weight
        score = w_in.norm(dim=1) * w_out.norm(dim=0)
        idx = torch.topk(score, keep).indices.sort().values
        b.intermediate.dense = prune_linear_layer(b.intermediate.dense, idx, dim=0)
        b.output.dense = prune_linear_layer(b.output.dense, idx, dim=1)
    model.config.intermediate_size = keep
    return width, keep


def measure(run_dir: Path, examples, batch_size: int = 32) -> dict:
    """Parameters, weight file size, test metrics and CPU throughput of a run folder's torch model."""
    pred = Predictor(run_dir, "torch", device="cpu")
    task = pred.task
    inputs = [task.input_of(e) for e in examples]
    pred.predict(inputs[:batch_size], batch_size)  # warm-up
    t0 = time.perf_counter()
    preds = pred.predict(inputs, batch_size)
    seconds = time.perf_counter() - t0
    rep = task.report(examples, preds, None, plots=False)
    keys = [task.default_metric, "accuracy"]
    size = sum(f.stat().st_size for f in Path(run_dir).glob("*.safetensors"))
    return {"parameters": sum(p.numel() for p in pred.backend.model.parameters()),
            "weights_mb": round(size / 2**20, 2),
            "metrics": {k: float(rep[k]) for k in keys if isinstance(rep.get(k), (int, float))},
            "examples_per_second": round(len(inputs) / max(seconds, 1e-9), 1)}


def prune_run(run_dir: str | Path, out_dir: str | Path, amount: float = 0.3, recovery_steps: int = 0,
              log: Callable[[str], None] = print) -> dict:
    """Prune RUN_DIR's FFN neurons into a new run folder OUT_DIR, optionally fine-tune to recover, and report.

    With ``recovery_steps`` > 0 the pruned model (kept in ``OUT_DIR-init``) is fine-tuned for that
    many steps on the run's own training data through graftkit's training path, producing a complete
    run folder at OUT_DIR. ``OUT_DIR/compression.json`` holds size, speed and test metric before/after.
    """
    run = RunFolder(run_dir).require_model()
    out_dir = Path(out_dir)
    if out_dir.resolve() == run.path.resolve():
        raise ConfigError("the pruned run needs its own folder (--out must differ from RUN_DIR)")
    cfg = load_run_config(run)
    examples = load_test_examples(run.path)
    if not examples:
        raise ExportError(f"{run.path}: no test split to measure the pruned model on")
    before = measure(run.path, examples)
    pred = Predictor(run.path, "torch", device="cpu")
    model = pred.backend.model
    width, keep = prune_ffn(model, amount)
    log(f"pruned FFN neurons {width} → {keep} per layer in {len(ffn_blocks(model))} layers")
    pruned_dir = out_dir.with_name(out_dir.name + "-init") if recovery_steps else out_dir
    staging = pruned_dir.with_name(f".{pruned_dir.name}-staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    pred.tokenizer.save_pretrained(str(staging))
    for name in RUN_FILES:
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, staging / name)
    write_text(staging / "config.yaml", dump_config(cfg))
    publish_dir(staging, pruned_dir)
    report = {"method": "structured L2-magnitude pruning of FFN neurons (transformers prune_linear_layer)",
              "amount": amount, "ffn_width": {"before": width, "after": keep}, "source": str(run.path),
              "before": before}
    if recovery_steps:
        tcfg = cfg.train.model_copy(update={"max_steps": recovery_steps, "early_stopping": None, "report_to": []})
        rcfg = cfg.model_copy(update={"name": out_dir.name, "output_dir": str(out_dir.parent), "train": tcfg,
                                      "model": cfg.model.model_copy(update={"name_or_path": str(pruned_dir)})})
        report["after_pruning"] = measure(pruned_dir, examples)
        log(f"recovery fine-tune: {recovery_steps} steps")
        train(rcfg, overwrite=True, log=log)
        report["recovery_steps"] = recovery_steps
    report["after"] = measure(out_dir, examples)
    write_json(out_dir / "compression.json", report)
    return report
