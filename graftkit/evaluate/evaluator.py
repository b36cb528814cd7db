"""Evaluate a run folder on labelled examples and finish a freshly trained run."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from graftkit.data.dataset import Example, Splits, read_examples
from graftkit.data.quality import quality_report, warnings
from graftkit.evaluate.calibration import calibrate_run
from graftkit.evaluate.card import write_model_card
from graftkit.evaluate.out_of_scope import fit_out_of_scope, report_fitted
from graftkit.evaluate.robustness import robustness_report
from graftkit.evaluate.slices import slice_metrics
from graftkit.inference.base import RunInference
from graftkit.inference.runs import open_run
from graftkit.io import atomic_path, read_json, write_json, write_jsonl
from graftkit.modeling.run_folder import RunFolder
from graftkit.progress import progress_bar
from graftkit.report.plots import training_curve_png
from graftkit.tasks.base import Task
from graftkit.tasks.capabilities import Calibrates, DetectsOutOfScope, GoldLabels, Perturbs
from graftkit.tasks.run_config import RunConfig

Progress = Callable[[int], None]


def data_quality(splits: Splits, tokenizer, max_length: int, task: Task) -> dict:
    """The data-quality report of a run's splits; class balance and conflicts where the task has one right
    answer per input (``GoldLabels``)."""
    gold = task.optional(GoldLabels)
    return quality_report(splits, tokenizer, max_length, gold.gold_key if gold else None)


def evaluate_examples(predictor: RunInference, examples: list[Example], out_dir: Path | None, plots: bool = True,
                      batch_size: int = 64, progress: Progress | None = None, slices: list[str] | None = None) -> dict:
    """Predict ``examples``, compute the task's report, and write predictions + error files to ``out_dir``.

    ``slices``: data columns to report metrics per value of (``eval.slices``).
    """
    task = predictor.task
    t0 = time.perf_counter()
    preds = predictor.predict([task.input_of(e) for e in examples], batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    result = task.report(examples, preds, out_dir, plots=plots)
    result["predict_seconds"] = round(seconds, 3)
    if slices:
        result["slices"] = slice_metrics(task, examples, preds, slices, predictor.cfg.data)
    if out_dir is not None:
        write_jsonl(out_dir / "predictions.jsonl",
                    ({"file": e.path, "line": e.line, "input": task.input_of(e), "gold": e.label,
                      "prediction": p.to_dict()} for e, p in zip(examples, preds)))
    return result


def evaluate_file(run_dir: str | Path, data: str | Path, out_dir: str | Path | None = None,
                  backend: str = "torch", progress_factory=None, backend_kwargs: dict | None = None,
                  **data_overrides) -> dict:
    """Evaluate a run on any labelled file; columns default to those the run was trained with.

    Results go to ``out_dir`` (default ``RUN/eval/<file stem>``) and into the run's metrics.json.
    """
    predictor = open_run(run_dir, backend, command="evaluate", **(backend_kwargs or {}))
    data_cfg = predictor.cfg.data.model_copy(update={k: v for k, v in data_overrides.items() if v is not None})
    predictor.task.data_cfg = data_cfg
    examples, dropped = read_examples(str(data), data_cfg, reader=predictor.task.read)
    detector = predictor.task.optional(DetectsOutOfScope)
    detector = detector if detector is not None and detector.fitted else None
    examples, out_of_scope = detector.split_off(examples) if detector is not None else (examples, [])
    predictor.task.check(examples)
    out = Path(out_dir) if out_dir else predictor.run.path / "eval" / Path(data).stem
    if progress_factory:
        with progress_factory(len(examples), f"evaluating {Path(data).name}") as advance:
            result = evaluate_examples(predictor, examples, out, predictor.cfg.eval.plots,
                                       predictor.cfg.eval.batch_size, advance, predictor.cfg.eval.slices)
    else:
        result = evaluate_examples(predictor, examples, out, predictor.cfg.eval.plots, predictor.cfg.eval.batch_size,
                                   slices=predictor.cfg.eval.slices)
    if detector is not None:
        result["out_of_scope"] = report_fitted(predictor, detector, examples, out_of_scope)
    result["file"] = str(data)
    result["dropped_rows"] = dropped
    predictor.run.add_metrics_entry("evaluations", str(data), {k: v for k, v in result.items() if k != "per_class"})
    return result


def finalize_run(run: RunFolder, cfg: RunConfig, splits: Splits, train_metrics: dict, metric: str,
                 log: Callable[[str], None] = print, before_complete: Callable[[], None] | None = None,
                 quality: dict | None = None, strategy: dict | None = None,
                 self_training: dict | None = None) -> dict:
    """After training: calibrate, evaluate validation and test, robustness, plots, metrics.json, card, COMPLETE.

    ``before_complete`` adds the caller's own parts (e.g. the distillation report) after the card and
    before COMPLETE, so that a folder marked complete is never changed later. ``quality`` is the data-quality
    report when the caller already made it (the Trainer path reports its warnings before training). ``strategy``
    is the training strategy chosen and why (graftkit/train/few_shot.py), for metrics.json and the card;
    ``self_training`` the rounds of graftkit/train/self_training.py (also written to ``self_training.json``).
    """
    predictor = open_run(run.path, command="evaluate")
    task = predictor.task
    plots_dir = run.plots if cfg.eval.plots else None
    calibrates = task.optional(Calibrates)
    calibration, tuned = None, None
    if calibrates is not None:
        # temperature first: multi-label thresholds are then tuned on calibrated probabilities
        calibration = calibrate_run(predictor, calibrates, {"validation": splits.validation, "test": splits.test},
                                    cfg.eval.calibrate, plots_dir, log)
        if splits.validation:
            val_inputs = [task.input_of(e) for e in splits.validation]
            tuned = calibrates.tune_decision(splits.validation, predictor.predict(val_inputs, cfg.eval.batch_size))
    run.write_task_state(task.name, task.state())
    detector = task.optional(DetectsOutOfScope)
    out_of_scope = None
    if detector is not None and detector.enabled:  # before the splits are scored: their predictions say it
        out_of_scope = fit_out_of_scope(predictor, detector, splits, splits.out_of_scope, plots_dir, log)
        detector.save(run.path)
        predictor.detector = detector
    quality = quality if quality is not None else data_quality(splits, predictor.tokenizer, cfg.data.max_length, task)
    results: dict = {"train": train_metrics, "data": {
        "train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test),
        "dropped_rows": splits.dropped, "notes": splits.notes + ([tuned] if tuned else [])},
        "data_quality": _quality_summary(quality)}
    if strategy is not None:
        results["strategy"] = strategy
    if self_training is not None:
        write_json(run.path / "self_training.json", self_training)
        results["self_training"] = self_training
    if calibration is not None:
        write_json(run.path / "calibration.json", calibration)
        results["calibration"] = _calibration_summary(calibration)
    if out_of_scope is not None:
        results["out_of_scope"] = out_of_scope
    for name, examples in (("validation", splits.validation), ("test", splits.test)):
        if examples:
            out = run.predictions / name if cfg.eval.save_predictions else None
            with progress_bar(len(examples), f"evaluating {name}") as advance:
                results[name] = evaluate_examples(predictor, examples, out, cfg.eval.plots, cfg.eval.batch_size,
                                                  progress=advance, slices=cfg.eval.slices)
            log(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in results[name].items()
                                        if isinstance(v, float) and k != "predict_seconds"))
    if cfg.eval.robustness_rows and splits.test and task.has(Perturbs):
        report_metric = metric if metric in results["test"] else task.default_metric
        robustness = robustness_report(predictor, splits.test, report_metric, max_rows=cfg.eval.robustness_rows,
                                       batch_size=cfg.eval.batch_size, log=log)
        robustness["file"] = "test split"
        write_json(run.path / "robustness.json", robustness)
        results["robustness"] = robustness
    if cfg.eval.plots:
        run.plots.mkdir(parents=True, exist_ok=True)
        training_curve_png(read_json(run.history), metric, run.plots / "training_curve.png")
        for name in ("test", "validation"):  # the headline confusion matrix is the test one
            src = run.predictions / name / "confusion_matrix.png"
            if src.is_file():
                with atomic_path(run.plots / "confusion_matrix.png") as tmp:
                    shutil.copyfile(src, tmp)
                break
    run.update_metrics(**results)
    write_model_card(run, cfg, task, results, metric)
    if before_complete is not None:
        before_complete()
    run.mark_complete()
    return results


def _calibration_summary(calibration: dict) -> dict:
    """What metrics.json keeps of calibration.json: T, the note, before/after per split (no bins)."""
    return {k: ({m: v[m] for m in ("n", "before", "after")} if isinstance(v, dict) else v)
            for k, v in calibration.items()}


def _quality_summary(report: dict) -> dict:
    """The data-quality figures the card shows (the full report: `graftkit inspect CONFIG`)."""
    dup = report["duplicates"]
    return {"warnings": warnings(report),
            "duplicates": {n: d["exact"] + d["near"] for n, d in dup["within"].items()},
            "leakage": {p: d["rows"] for p, d in dup["leakage"].items()},
            "conflicting_texts": report["conflicts"]["texts"],
            "truncated_share": {n: t.get("truncated_share", 0.0) for n, t in report["tokens"].items()},
            "unk_rate": {n: t.get("unk_rate", 0.0) for n, t in report["tokens"].items()}}
