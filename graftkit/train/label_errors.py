"""Likely mislabelled rows: k-fold cross-validated training, then cleanlab on out-of-fold probabilities.

Every labelled row (train, validation and test) gets a predicted probability from a model that
did not see it in training (``folds`` small trainings with the run's own config, shortened with
``epochs`` / ``max_steps``). cleanlab's confident learning (``cleanlab.filter.find_label_issues``)
then flags the rows whose given label disagrees with those probabilities, ranked by label quality
(self-confidence: the out-of-fold probability of the given label). NER ranks sentences with
cleanlab's token-classification helpers (a sentence scores as its worst word).

This lives in the ``train`` layer because it trains; it writes ``label_issues.csv`` (file and line
first), ``label_issues.json`` and ``label_issues.png`` into ``out_dir``.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from graftkit.data.dataset import Example, Splits
from graftkit.errors import DataError, GraftkitError
from graftkit.io import write_csv, write_json
from graftkit.modeling.outputs import output_logits
from graftkit.modeling.run_folder import RunFolder
from graftkit.report.trust_plots import label_issue_png
from graftkit.tasks.capabilities import DecodesLogits, FindsLabelErrors
from graftkit.tasks.run_config import RunConfig
from graftkit.train.trainer import build_trainer, prepare

DEFAULT_FOLDS = 3
COMMAND = "inspect --find-label-errors"


def check_folds(scoring: FindsLabelErrors, rows: Sequence[Example], folds: int) -> None:
    """Every class needs at least ``folds`` rows, or some fold trains without it."""
    if folds < 2:
        raise GraftkitError(f"--folds must be at least 2 (got {folds})")
    small = {k: n for k, n in scoring.class_counts(rows).items() if n < folds}
    if small:
        listed = ", ".join(f"{k!r} ({n})" for k, n in sorted(small.items(), key=lambda kv: kv[1])[:10])
        raise DataError(rows[0].path, f"--find-label-errors with {folds} folds needs at least {folds} rows of every "
                        f"class; these have fewer: {listed}. Lower --folds, add rows, or merge rare classes")


def _fold_ids(strata: list | None, n: int, folds: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import KFold, StratifiedKFold

    ids = np.zeros(n, dtype=int)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if strata is not None else \
        KFold(folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(n), strata)):
        ids[held] = k
    return ids


def _logits(task, model, tokenizer, rows: Sequence[Example], max_length: int, batch_size: int = 64):
    """Per batch: (logits, encode context) of ``model`` on ``rows``."""
    decoding = task.capability(DecodesLogits, COMMAND)
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(rows), batch_size):
        batch = [task.input_of(e) for e in rows[start:start + batch_size]]
        features, ctx = decoding.encode(batch, tokenizer, max_length)
        with torch.inference_mode():
            out = model(**{k: torch.as_tensor(v, device=device) for k, v in features.items()})
        yield output_logits(out).float().cpu().numpy(), ctx, len(batch)


def out_of_fold_probs(cfg: RunConfig, task, rows: Sequence[Example], folds: int, train_overrides: dict,
                      log: Callable[[str], None]) -> list[Any]:
    """Per row, the probabilities of a model trained on the other folds (NER: one array per sentence)."""
    scoring = task.capability(FindsLabelErrors, COMMAND)
    fold_of = _fold_ids(scoring.fold_strata(rows), len(rows), folds, cfg.train.seed)
    fold_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={
        "early_stopping": None, "report_to": [], "save_total_limit": 1, **train_overrides})})
    probs: list[Any] = [None] * len(rows)
    if cfg.train.strategy != "standard":  # the folds are short Trainer-path trainings whatever the run used
        log(f"label errors: the folds train with the standard strategy (train.strategy {cfg.train.strategy} is "
            "not used for them)")
    for k in range(folds):
        train_rows = [e for e, f in zip(rows, fold_of) if f != k]
        held = [i for i, f in enumerate(fold_of) if f == k]
        log(f"label errors: fold {k + 1}/{folds}: training on {len(train_rows)} rows, scoring {len(held)}")
        with tempfile.TemporaryDirectory(prefix="graftkit-folds-") as tmp:
            trainer, tokenizer = build_trainer(fold_cfg, task, Splits(train_rows, [], []), RunFolder(Path(tmp)),
                                               log=lambda m: None)
            trainer.train()
            done = 0
            for logits, ctx, n in _logits(task, trainer.model, tokenizer, [rows[i] for i in held],
                                          cfg.data.max_length):
                for j, p in enumerate(scoring.probabilities(logits, ctx, n)):
                    probs[held[done + j]] = p
                done += n
    return probs


def find_label_errors(cfg: RunConfig, folds: int = DEFAULT_FOLDS, out_dir: str | Path | None = None,
                      train_overrides: dict | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Rank likely mislabelled rows of the config's data; writes the CSV/JSON/PNG into ``out_dir``.

    Args:
        cfg: the run configuration (its data, model and training settings are used per fold).
        folds: cross-validation folds (each class needs at least this many rows).
        out_dir: where results go (default ``<output_dir>/<name>-inspect``).
        train_overrides: ``train`` keys for the fold trainings (e.g. ``{"epochs": 1}``).

    Returns:
        A summary with ``flagged`` (row indices, worst first), ``quality`` (every row's score) and ``issues`` (the
        CSV's rows as mappings, worst first).
    """
    task, splits = prepare(cfg)
    scoring = task.capability(FindsLabelErrors, COMMAND)
    rows = splits.train + splits.validation + splits.test
    task.fit(rows)  # every class of any split is known to every fold's model
    check_folds(scoring, rows, folds)
    probs = out_of_fold_probs(cfg, task, rows, folds, dict(train_overrides or {}), log)
    flagged, quality = scoring.rank(rows, probs)
    out = Path(out_dir) if out_dir else Path(cfg.output_dir) / f"{cfg.name}-inspect"
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for rank, i in enumerate(flagged, 1):
        e = rows[i]
        table.append([e.path, e.line, e.text, e.text_pair or "", scoring.given_text(e), scoring.suggested(probs[i]),
                      f"{quality[i]:.4f}", rank])
    header = ["file", "line", "text", "text_pair", "given", "suggested", "quality", "rank"]
    write_csv(out / "label_issues.csv", header, table)
    summary = _summary(scoring, rows, flagged, folds)
    write_json(out / "label_issues.json", summary)
    _plot(scoring, rows, flagged, out / "label_issues.png")
    log(f"label errors: {len(flagged)} of {len(rows)} rows flagged; see {out / 'label_issues.csv'}")
    return {**summary, "flagged": flagged, "quality": quality.tolist(), "out_dir": str(out),
            "issues": [dict(zip(header, row)) for row in table]}


def _summary(scoring: FindsLabelErrors, rows, flagged, folds) -> dict[str, Any]:
    per = Counter(lab for i in flagged for lab in scoring.label_names(rows[i]))
    return {"rows": len(rows), "folds": folds, "flagged_count": len(flagged),
            "flagged_share": round(len(flagged) / max(len(rows), 1), 4), "per_label": dict(per.most_common())}


def _plot(scoring: FindsLabelErrors, rows, flagged, path: Path) -> None:
    total = Counter(lab for e in rows for lab in scoring.label_names(e))
    label_issue_png(dict(Counter(lab for i in flagged for lab in scoring.label_names(rows[i]))), dict(total), path)
