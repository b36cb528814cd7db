"""``graftkit export``: ONNX (+ int8) into a staging folder, a parity check against torch, then publish.

Nothing is published unless parity holds: the fp32 graph's logits must match torch within
``logits_tolerance`` on a sample of test inputs, and the int8 graph's task metric on the
test split may drop by at most ``int8_tolerance`` (absolute) against torch.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from graftkit.config import greater_is_better
from graftkit.data.dataset import Example, load_splits
from graftkit.errors import DataError, ExportError
from graftkit.export.onnx import export_onnx, quantize_int8
from graftkit.inference.base import load_run_config, load_task
from graftkit.inference.predictor import Predictor
from graftkit.io import publish_dir, write_json
from graftkit.modeling.run_folder import ONNX_DIR, RunFolder
from graftkit.modeling.run_folder import ONNX_FILES as FILES


def load_test_examples(run_dir: str | Path) -> list[Example]:
    """The test examples stored in the run folder at training time (``test_split.jsonl``).

    Export reads only the run folder, so it works after the training data moved or was deleted.
    Run folders written before the split was stored fall back to re-reading the config's data.
    """
    run = RunFolder(run_dir)
    stored = run.read_test_split()
    if stored is not None:
        return stored
    cfg = load_run_config(run)
    task = load_task(run, cfg)
    try:
        return load_splits(cfg.data, task.parse_label, task.strat_key, reader=task.read,
                           from_rows=task.examples_from_rows).test
    except (OSError, ValueError, DataError) as err:
        raise ExportError(f"{run.path}: this run folder predates the stored test split ({run.test_split.name}) "
                          f"and its test data cannot be read ({err}); retrain it to export") from None


def _metrics(report: dict, keys: list[str]) -> dict:
    return {k: float(report[k]) for k in keys if isinstance(report.get(k), (int, float))}


def _max_logit_diff(ref: Predictor, other: Predictor, inputs: list, batch: int = 16) -> float:
    worst = 0.0
    for i in range(0, len(inputs), batch):
        feats, _ = ref.features(inputs[i:i + batch])
        worst = max(worst, float(np.abs(ref.backend(feats) - other.backend(feats)).max()))
    return worst


def export_run(run_dir: str | Path, quantize: str | None = None, sample_size: int = 64,
               logits_tolerance: float = 1e-3, int8_tolerance: float = 0.01, opset: int = 18,
               log: Callable[[str], None] = print) -> dict:
    """Export RUN_DIR to ONNX (and int8), check parity, and publish ``RUN_DIR/onnx/`` with ``parity.json``.

    Args:
        run_dir: a finished run folder (read-only except for the new ``onnx/`` folder and metrics.json).
        quantize: None or "int8" (onnxruntime dynamic quantization).
        sample_size: test inputs used for the logits comparison.
        logits_tolerance: largest allowed |logits_onnx_fp32 - logits_torch|.
        int8_tolerance: largest allowed drop of the task metric (absolute) from torch to int8.

    Returns:
        The parity report (also written to ``RUN_DIR/onnx/parity.json``).

    Raises:
        ExportError: export failed or parity is outside the tolerances (nothing is published).
    """
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize: unknown scheme '{quantize}' (supported: int8)")
    run = RunFolder(run_dir).require_model()
    staging = run.path / f".{ONNX_DIR}-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        t0 = time.perf_counter()
        names = export_onnx(run.path, staging / FILES["fp32"], opset)
        log(f"exported {FILES['fp32']} ({time.perf_counter() - t0:.1f}s, inputs: {', '.join(names)})")
        variants = ["fp32"]
        if quantize:
            quantize_int8(staging / FILES["fp32"], staging / FILES["int8"])
            variants.append("int8")
            log(f"quantized {FILES['int8']} (dynamic int8)")
        report = check_parity(run, staging, variants, sample_size, logits_tolerance, int8_tolerance, log)
        write_json(staging / "parity.json", report)
        publish_dir(staging, run.path / ONNX_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    run.update_metrics(export=report)
    return report


def check_parity(run: RunFolder, folder: Path, variants: list[str], sample_size: int,
                 logits_tolerance: float, int8_tolerance: float, log: Callable[[str], None] = print) -> dict:
    """Compare the ONNX graphs in ``folder`` with the torch model; raise ExportError outside tolerance."""
    examples = load_test_examples(run.path)
    if not examples:
        raise ExportError(f"{run.path}: the run has no test split to check parity on")
    torch_pred = Predictor(run.path, "torch", device="cpu")
    task = torch_pred.task
    keys = [task.default_metric] + [k for k in ("accuracy",) if k != task.default_metric]
    inputs = [task.input_of(e) for e in examples]
    report: dict = {"tolerances": {"logits_max_abs_diff": logits_tolerance, "int8_metric_drop": int8_tolerance},
                    "test_examples": len(examples), "sample_size": min(sample_size, len(inputs)),
                    "metric": task.default_metric, "backends": {}}

    def evaluate(name: str, pred: Predictor, file: Path | None) -> None:
        t0 = time.perf_counter()
        preds = pred.predict(inputs, batch_size=32)
        seconds = time.perf_counter() - t0
        entry = {"metrics": _metrics(task.report(examples, preds, None, plots=False), keys),
                 "seconds": round(seconds, 3), "examples_per_second": round(len(inputs) / max(seconds, 1e-9), 1)}
        if file is not None:
            entry["file"] = f"{ONNX_DIR}/{file.name}"
            entry["size_mb"] = round(file.stat().st_size / 2**20, 2)
            entry["logits_max_abs_diff"] = _max_logit_diff(torch_pred, pred, inputs[:sample_size])
        report["backends"][name] = entry
        log(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in entry["metrics"].items())
            + (f", max|Δlogits|={entry['logits_max_abs_diff']:.2e}" if file else ""))

    evaluate("torch", torch_pred, None)
    for v in variants:
        evaluate(f"onnx_{v}", Predictor(run.path, "onnx", path=folder / FILES[v]), folder / FILES[v])
    problems = []
    diff = report["backends"]["onnx_fp32"]["logits_max_abs_diff"]
    if diff > logits_tolerance:
        problems.append(f"ONNX fp32 logits differ from torch by up to {diff:.3g} (tolerance {logits_tolerance:g})")
    if "int8" in variants:
        m = task.default_metric
        ref, q = report["backends"]["torch"]["metrics"][m], report["backends"]["onnx_int8"]["metrics"][m]
        drop = (ref - q) if greater_is_better(m) else (q - ref)
        report["int8_metric_drop"] = drop
        if drop > int8_tolerance:
            problems.append(f"int8 {m} is {q:.4f} vs torch {ref:.4f} (drop {drop:.4f} > tolerance {int8_tolerance:g})")
    report["passed"] = not problems
    if problems:
        raise ExportError(f"{run.path}: parity check failed, nothing exported: " + "; ".join(problems)
                          + ". Loosen --logits-tolerance/--int8-tolerance only if this difference is acceptable.")
    return report
