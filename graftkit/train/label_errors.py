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
from scipy.special import expit, softmax

from graftkit.data.dataset import Example, Splits
from graftkit.errors import DataError, GraftkitError
from graftkit.inference.backends import output_logits
from graftkit.io import write_csv, write_json
from graftkit.modeling.run_folder import RunFolder
from graftkit.report.trust_plots import label_issue_png
from graftkit.tasks.ner import postprocess as ner_post
from graftkit.tasks.ner.preprocess import word_spans
from graftkit.tasks.ner.schemes import spans_to_tags
from graftkit.tasks.run_config import RunConfig
from graftkit.train.trainer import build_trainer, prepare

DEFAULT_FOLDS = 3


def check_folds(task, rows: Sequence[Example], folds: int) -> None:
    """Every class needs at least ``folds`` rows, or some fold trains without it."""
    if folds < 2:
        raise GraftkitError(f"--folds must be at least 2 (got {folds})")
    if task.name == "regression":
        raise GraftkitError("--find-label-errors needs class labels (classification or ner); regression targets "
                            "have no 'wrong class' to find")
    if task.name == "ner":
        counts = Counter(s[2] for e in rows for s in e.label)
    elif task.multi_label:
        counts = Counter(lab for e in rows for lab in e.label)
    else:
        counts = Counter(e.label for e in rows)
    small = {k: n for k, n in counts.items() if n < folds}
    if small:
        listed = ", ".join(f"{k!r} ({n})" for k, n in sorted(small.items(), key=lambda kv: kv[1])[:10])
        raise DataError(rows[0].path, f"--find-label-errors with {folds} folds needs at least {folds} rows of every "
                        f"class; these have fewer: {listed}. Lower --folds, add rows, or merge rare classes")


def _fold_ids(task, rows: Sequence[Example], folds: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import KFold, StratifiedKFold

    ids = np.zeros(len(rows), dtype=int)
    single = task.name == "classification" and not task.multi_label
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if single else \
        KFold(folds, shuffle=True, random_state=seed)
    y = [e.label for e in rows] if single else None
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(rows)), y)):
        ids[held] = k
    return ids


def _logits(task, model, tokenizer, rows: Sequence[Example], max_length: int, batch_size: int = 64):
    """Per batch: (logits, encode context) of ``model`` on ``rows``."""
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(rows), batch_size):
        batch = [task.input_of(e) for e in rows[start:start + batch_size]]
        features, ctx = task.encode(batch, tokenizer, max_length)
        with torch.inference_mode():
            out = model(**{k: torch.as_tensor(v, device=device) for k, v in features.items()})
        yield output_logits(out).float().cpu().numpy(), ctx, len(batch)


def out_of_fold_probs(cfg: RunConfig, task, rows: Sequence[Example], folds: int, train_overrides: dict,
                      log: Callable[[str], None]) -> list[Any]:
    """Per row, the probabilities of a model trained on the other folds (NER: one array per sentence)."""
    fold_of = _fold_ids(task, rows, folds, cfg.train.seed)
    fold_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={
        "early_stopping": None, "report_to": [], "save_total_limit": 1, **train_overrides})})
    probs: list[Any] = [None] * len(rows)
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
                if task.name == "ner":
                    items, windows = ctx
                    batch = [softmax(scores, axis=-1) for _, scores in ner_post.stitch(logits, windows, n)]
                else:
                    batch = list(expit(logits) if task.multi_label else softmax(logits, axis=-1))
                for j, p in enumerate(batch):
                    probs[held[done + j]] = p
                done += n
    return probs


def _given(task, e: Example) -> Any:
    """The given label as cleanlab wants it: a class id, a list of ids (multi-label), word tag ids (NER)."""
    l2i = task.label2id
    if task.name == "ner":
        words = e.extra["words"]
        return [l2i[t] for t in spans_to_tags(len(words), word_spans(e.label, words), task.scheme)]
    return [l2i[x] for x in e.label] if task.multi_label else l2i[e.label]


#: cleanlab's default n_jobs forks a multiprocessing.Pool from this process, which by now runs torch's and
#: other threads; a child forked while one of them held a lock never finishes (the suite hung there).
#: The per-class work it would spread is tiny next to the cross-validated training before it.
SERIAL = 1


def rank_issues(task, rows: Sequence[Example], probs: list[Any]) -> tuple[list[int], np.ndarray]:
    """Indices cleanlab flags (worst first) and every row's label-quality score (low = likely wrong)."""
    from cleanlab.filter import find_label_issues  # heavy optional dependency
    from cleanlab.rank import get_label_quality_scores

    given = [_given(task, e) for e in rows]
    if task.name == "ner":
        from cleanlab.token_classification.filter import find_label_issues as token_issues
        from cleanlab.token_classification.rank import get_label_quality_scores as token_scores

        # a sentence's units may be fewer than its words when the tokenizer truncated it: compare the units scored
        given = [g[:len(p)] for g, p in zip(given, probs)]
        scores, _ = token_scores(given, probs)
        flagged = sorted({s for s, _ in token_issues(given, probs, n_jobs=SERIAL)}, key=lambda s: scores[s])
        return flagged, np.asarray(scores)
    pred = np.stack(probs)
    if task.multi_label:
        flagged = list(find_label_issues(given, pred, multi_label=True, return_indices_ranked_by="self_confidence",
                                         n_jobs=SERIAL))
        from cleanlab.multilabel_classification.rank import get_label_quality_scores as ml_scores

        return flagged, np.asarray(ml_scores(given, pred))
    labels = np.asarray(given)
    flagged = list(find_label_issues(labels, pred, return_indices_ranked_by="self_confidence", n_jobs=SERIAL))
    return flagged, np.asarray(get_label_quality_scores(labels, pred))


def _suggested(task, p) -> str:
    if task.name == "ner":
        return ""
    if task.multi_label:
        return "|".join(task.labels[j] for j in np.flatnonzero(p >= 0.5))
    return task.labels[int(np.argmax(p))]


def find_label_errors(cfg: RunConfig, folds: int = DEFAULT_FOLDS, out_dir: str | Path | None = None,
                      train_overrides: dict | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Rank likely mislabelled rows of the config's data; writes the CSV/JSON/PNG into ``out_dir``.

    Args:
        cfg: the run configuration (its data, model and training settings are used per fold).
        folds: cross-validation folds (each class needs at least this many rows).
        out_dir: where results go (default ``<output_dir>/<name>-inspect``).
        train_overrides: ``train`` keys for the fold trainings (e.g. ``{"epochs": 1}``).

    Returns:
        A summary with ``flagged`` (row indices, worst first) and ``quality`` (every row's score).
    """
    task, splits = prepare(cfg)
    rows = splits.train + splits.validation + splits.test
    task.fit(rows)  # every class of any split is known to every fold's model
    check_folds(task, rows, folds)
    probs = out_of_fold_probs(cfg, task, rows, folds, dict(train_overrides or {}), log)
    flagged, quality = rank_issues(task, rows, probs)
    out = Path(out_dir) if out_dir else Path(cfg.output_dir) / f"{cfg.name}-inspect"
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for rank, i in enumerate(flagged, 1):
        e = rows[i]
        given = "|".join(e.label) if isinstance(e.label, tuple) else (
            "; ".join(f"{e.text[s:t]}={typ}" for s, t, typ in e.label) if task.name == "ner" else e.label)
        table.append([e.path, e.line, e.text, e.text_pair or "", given, _suggested(task, probs[i]),
                      f"{quality[i]:.4f}", rank])
    write_csv(out / "label_issues.csv", ["file", "line", "text", "text_pair", "given", "suggested", "quality",
                                         "rank"], table)
    summary = _summary(task, rows, flagged, folds)
    write_json(out / "label_issues.json", summary)
    _plot(task, rows, flagged, out / "label_issues.png")
    log(f"label errors: {len(flagged)} of {len(rows)} rows flagged; see {out / 'label_issues.csv'}")
    return {**summary, "flagged": flagged, "quality": quality.tolist(), "out_dir": str(out)}


def _label_names(task, e: Example) -> list[str]:
    if task.name == "ner":
        return sorted({s[2] for s in e.label}) or ["O"]
    return list(e.label) if isinstance(e.label, tuple) else [e.label]


def _summary(task, rows, flagged, folds) -> dict[str, Any]:
    per = Counter(lab for i in flagged for lab in _label_names(task, rows[i]))
    return {"rows": len(rows), "folds": folds, "flagged_count": len(flagged),
            "flagged_share": round(len(flagged) / max(len(rows), 1), 4), "per_label": dict(per.most_common())}


def _plot(task, rows, flagged, path: Path) -> None:
    total = Counter(lab for e in rows for lab in _label_names(task, e))
    label_issue_png(dict(Counter(lab for i in flagged for lab in _label_names(task, rows[i]))), dict(total), path)
