"""What the studio shows of run folders: the runs table, one run's page, and two runs compared.

Only the run folder is read (metrics.json, history.json, plots/, predictions/, README.md, config.yaml,
labels.json): the same files ``graftkit info`` and export read. A run still being built lives in the sibling
``.<name>.partial`` folder; its status comes from the job that builds it (graftkit/apps/studio/jobs.py).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from graftkit.errors import GraftkitError
from graftkit.io import read_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.tasks import TASKS

#: a job's state → the status a run shows in the table
JOB_STATUS = {"queued": "queued", "running": "running", "stopping": "running", "stopped": "interrupted",
              "interrupted": "interrupted", "failed": "failed", "complete": "complete", "cancelled": "cancelled"}
MISTAKES_SHOWN = 200


def run_folders(runs_dir: Path) -> dict[str, RunFolder]:
    """Run name → its folder: finished ones, and in-progress ``.<name>.partial`` ones without a finished twin."""
    found: dict[str, RunFolder] = {}
    for p in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if not p.is_dir():
            continue
        if p.name.startswith(".") and p.name.endswith(".partial"):
            name = p.name[1:-len(".partial")]
            found.setdefault(name, RunFolder(p, final_path=runs_dir / name))
        elif not p.name.startswith("."):
            found[p.name] = RunFolder(p)
    return found


def _config(run: RunFolder) -> dict:
    try:
        return run.config_tree() if run.config.is_file() else {}
    except (GraftkitError, OSError, ValueError):
        return {}


def _task_type(run: RunFolder, cfg: dict) -> str:
    if run.labels.is_file():
        return str(read_json(run.labels).get("task", ""))
    return str((cfg.get("task") or {}).get("type", "classification" if cfg else ""))


def main_metric(cfg: dict, task_type: str) -> str | None:
    """The metric a run is judged by: ``train.metric`` when set, else its task's default (the registry's)."""
    chosen = (cfg.get("train") or {}).get("metric", "auto")
    if chosen != "auto":
        return chosen
    if task_type in TASKS.names():
        default = getattr(TASKS.get(task_type), "default_metric", None)
        return default if isinstance(default, str) else None
    return None


def _metric_value(metrics: dict, name: str | None) -> tuple[str | None, float | None]:
    for split in ("test", "validation"):
        value = (metrics.get(split) or {}).get(name) if name else None
        if isinstance(value, (int, float)):
            return f"{split} {name}", float(value)
    return name, None


def summary(name: str, run: RunFolder, job: dict | None) -> dict[str, Any]:
    """One row of the runs table."""
    cfg = _config(run)
    task = _task_type(run, cfg)
    metrics = run.read_metrics() if run.metrics.is_file() else {}
    label, value = _metric_value(metrics, main_metric(cfg, task))
    if run.is_complete:
        status = "complete"
    else:
        status = JOB_STATUS.get(job["state"], "interrupted") if job else "interrupted"
    duration = (metrics.get("train") or {}).get("train_runtime")
    if duration is None and job and job.get("started_at"):
        duration = (job.get("ended_at") or job["now"]) - job["started_at"]
    return {"name": name, "task": task, "base_model": str((cfg.get("model") or {}).get("name_or_path", "")),
            "status": status, "metric": label, "value": value, "duration_s": duration,
            "job": job["id"] if job else None, "complete": run.is_complete}


def float_metrics(metrics: dict) -> dict[str, float]:
    """``split.metric`` → value for the float metrics of the validation and test splits."""
    return {f"{split}.{k}": float(v) for split in ("validation", "test")
            for k, v in (metrics.get(split) or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("seconds") and k != "n"}


def curves(run: RunFolder) -> dict[str, list[list[float]]]:
    """Training curves from history.json: ``loss``, ``eval_loss`` and each eval metric, as [step, value] pairs."""
    if not run.history.is_file():
        return {}
    out: dict[str, list[list[float]]] = {}
    for entry in read_json(run.history):
        step = entry.get("step")
        for key, value in entry.items():
            if key == "loss" or (key.startswith("eval_") and not key.endswith(("_runtime", "_per_second"))):
                if isinstance(value, (int, float)) and step is not None:
                    out.setdefault(key, []).append([step, float(value)])
    return out


def detail(run: RunFolder) -> dict[str, Any]:
    """Everything the run page shows except the mistakes (``mistakes``) and images (served as files)."""
    metrics = run.read_metrics() if run.metrics.is_file() else {}
    plots = sorted(p.relative_to(run.path).as_posix() for p in run.path.glob("plots/*.png"))
    plots += sorted(p.relative_to(run.path).as_posix() for p in run.path.glob("predictions/*/confusion_matrix.png"))
    robustness = metrics.get("robustness") or {}
    return {
        "card": run.card.read_text(encoding="utf-8") if run.card.is_file() else "",
        "metrics": float_metrics(metrics),
        "per_class": {s: (metrics.get(s) or {}).get("per_class") for s in ("validation", "test")},
        "plots": plots,
        "curves": curves(run),
        "quality": (metrics.get("data_quality") or {}).get("warnings", []),
        "robustness": {"metric": robustness.get("metric"), "clean": robustness.get("clean"),
                       "rows": [{"name": k, **v} for k, v in (robustness.get("perturbations") or {}).items()]},
        "mistake_splits": sorted(p.parent.name for p in run.path.glob("predictions/*/misclassified.csv")),
        "config": _config(run),
    }


def mistakes(run: RunFolder, split: str, true: str | None = None, predicted: str | None = None) -> dict:
    """The most confident mistakes of ``split`` (predictions/<split>/misclassified.csv), filtered by label.

    Raises:
        GraftkitError: the run has no mistakes file for ``split``.
    """
    path = run.predictions / split / "misclassified.csv"
    if split not in {p.parent.name for p in run.path.glob("predictions/*/misclassified.csv")}:
        raise GraftkitError(f"run {run.public_path.name} has no mistakes file for split '{split}'")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    labels = {"true": sorted({r.get("true", "") for r in rows}), "predicted": sorted({r.get("predicted", "") for r in rows})}
    rows = [r for r in rows if (not true or r.get("true") == true) and (not predicted or r.get("predicted") == predicted)]
    rows.sort(key=lambda r: -_float(r.get("confidence")))
    return {"columns": list(rows[0]) if rows else [], "rows": rows[:MISTAKES_SHOWN], "total": len(rows),
            "labels": labels}


def prediction_of(run: RunFolder, split: str, file: str, line: int) -> dict | None:
    """The stored prediction (every label's score) of one test row, for a mistake's detail view."""
    path = run.predictions / split / "predictions.jsonl"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        for text in fh:
            row = json.loads(text)
            if row.get("file") == file and row.get("line") == line:
                return row.get("prediction")
    return None


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def compare(runs: dict[str, RunFolder]) -> dict[str, Any]:
    """Metrics side by side (one row per metric any run has) and every run's curves."""
    metrics = {name: float_metrics(run.read_metrics()) for name, run in runs.items()}
    keys = sorted({k for m in metrics.values() for k in m})
    return {"runs": list(runs), "metrics": [{"metric": k, **{n: metrics[n].get(k) for n in runs}} for k in keys],
            "curves": {name: curves(run) for name, run in runs.items()}}
