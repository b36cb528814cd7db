"""How a model holds up against typos and noise: the metric and the flip rate per perturbation.

For each perturbation of ``graftkit.data.perturb`` (Latin-script data: typos, case, punctuation,
whitespace; Chinese data: character deletion/duplication, punctuation, whitespace) every row is
perturbed with a seeded generator, predicted again, and scored. The **flip rate** is the share of
rows whose prediction changed (classification: the label or label set; NER: the entity set, with
the clean prediction's offsets mapped onto the perturbed text; regression reports the mean
absolute change instead). NER gold spans are mapped onto the perturbed text the same way, so
the entity F1 under perturbation is measured against the right offsets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from graftkit.data.dataset import Example, read_examples
from graftkit.data.perturb import CHINESE, LATIN, is_chinese
from graftkit.inference.runs import open_run
from graftkit.io import write_json
from graftkit.tasks.capabilities import Perturbs

DEFAULT_RATE = 0.1
DEFAULT_SEED = 13


def _headline(report: dict, metric: str) -> float | None:
    value = report.get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def capped_sample(examples: Sequence[Example], max_rows: int | None, seed: int) -> list[Example]:
    """All examples, or ``max_rows`` of them drawn with ``seed``, kept in their original order."""
    if not max_rows or len(examples) <= max_rows:
        return list(examples)
    keep = sorted(np.random.default_rng(seed).choice(len(examples), size=max_rows, replace=False))
    return [examples[i] for i in keep]


def robustness_report(predictor, examples: Sequence[Example], metric: str, perturbations: Sequence[str] | None = None,
                      seed: int = DEFAULT_SEED, rate: float = DEFAULT_RATE, max_rows: int | None = None,
                      batch_size: int = 64, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Metric and flip rate of ``predictor`` on ``examples`` under each perturbation.

    Args:
        predictor: the run's inference object (``graftkit.inference.open_run``); its task must ``Perturbs``.
        examples: labelled examples (their labels score the metric).
        metric: the metric key of the task's report to show (e.g. ``macro_f1``, ``f1``, ``rmse``).
        perturbations: names (default: the Latin or the Chinese set, by the data's script).
        seed: fixes every random choice (with the row index).
        rate: probability that each eligible word is touched (at least one per row).
        max_rows: use a seeded sample of this many rows, in file order (the end-of-training report is
            capped). Not the first rows: a file sorted by label would leave most classes out.
    """
    task = predictor.task
    perturbs = task.capability(Perturbs, "robustness")
    rows = capped_sample(examples, max_rows, seed)
    names = list(perturbations or (CHINESE if is_chinese([e.text for e in rows[:200]]) else LATIN))
    clean = predictor.predict([task.input_of(e) for e in rows], batch_size=batch_size)
    base = _headline(task.report(rows, clean, None, plots=False), metric)
    out: dict[str, Any] = {"metric": metric, "rows": len(rows), "seed": seed, "rate": rate, "clean": base,
                           "perturbations": {}}
    for name in names:
        pairs = [perturbs.perturb(e, name, seed, i, rate) for i, e in enumerate(rows)]
        noisy_rows = [x for x, _ in pairs]
        noisy = predictor.predict([task.input_of(e) for e in noisy_rows], batch_size=batch_size)
        score = _headline(task.report(noisy_rows, noisy, None, plots=False), metric)
        changes = [perturbs.changed(c, n, e, p) for c, n, e, (_, p) in zip(clean, noisy, rows, pairs)]
        entry = {"metric": score, "delta": None if score is None or base is None else score - base,
                 "example": noisy_rows[0].text if noisy_rows else ""}
        entry[perturbs.change_metric] = float(np.mean(changes))
        out["perturbations"][name] = entry
        log(f"robustness {name}: {metric}={score if score is None else round(score, 4)} "
            + ", ".join(f"{k}={v:.4f}" for k, v in entry.items() if k in ("flip_rate", "mean_abs_change")))
    return out


def robustness_file(run_dir: str | Path, data: str | Path, perturbations: Sequence[str] | None = None,
                    seed: int = DEFAULT_SEED, rate: float = DEFAULT_RATE, max_rows: int | None = None,
                    backend: str = "torch", out: str | Path | None = None,
                    log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Robustness of a run on a labelled file; writes ``RUN/robustness.json`` (or ``out``) and metrics.json."""
    predictor = open_run(run_dir, backend, command="robustness")
    task = predictor.task
    examples, _ = read_examples(str(data), predictor.cfg.data, reader=task.read)
    task.check(examples)
    metric = predictor.cfg.train.metric if predictor.cfg.train.metric not in ("auto", "loss") else task.default_metric
    report = robustness_report(predictor, examples, metric, perturbations, seed, rate, max_rows,
                               predictor.cfg.eval.batch_size, log)
    report["file"] = str(data)
    write_json(Path(out) if out else predictor.run.path / "robustness.json", report)
    predictor.run.update_metrics(robustness=report)
    return report
