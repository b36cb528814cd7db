"""Calibrated confidence: ECE, Brier score and NLL, and temperature scaling (Guo et al. 2017).

Temperature scaling divides the logits by a scalar T > 0 (one T per label for multi-label runs)
fitted on the validation split to minimise the negative log-likelihood. It changes no argmax, so
accuracy stays the same, but a score of 0.9 then means "right about 90% of the time". T lives in
the task state (``labels.json``), so every backend (torch, ONNX) that goes through the task's
``decode`` applies it. T is never fitted on the test split.

Metrics:
* single-label: ECE over the top-label confidence in 15 equal-width bins; multi-class Brier
  score (sum over classes of squared error, averaged over rows); NLL of the gold class.
* multi-label: each (row, label) pair is one binary prediction; ECE bins the positive-class
  probability against the observed positive rate, Brier and NLL are the binary ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy.special import expit, log_softmax, softmax

from graftkit.report.trust_plots import reliability_diagram_png

ECE_BINS = 15
#: T is kept inside this range: a degenerate validation split must not make scores all 0.5 or all 1.0
T_RANGE = (0.05, 20.0)


def probabilities(logits: np.ndarray, multi_label: bool, temperature: float | Sequence[float] = 1.0) -> np.ndarray:
    """Softmax (or per-label sigmoid) of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)
    return expit(z) if multi_label else softmax(z, axis=-1)


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of ``confidence``: its count, mean confidence and observed accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
                    "confidence": float(confidence[m].mean()) if n else None,
                    "accuracy": float(correct[m].mean()) if n else None})
    return out


def _confidence_and_outcome(probs: np.ndarray, gold: np.ndarray, multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    if multi_label:
        return probs.reshape(-1), gold.reshape(-1).astype(float)
    return probs.max(axis=1), (probs.argmax(axis=1) == gold).astype(float)


def expected_calibration_error(probs: np.ndarray, gold: np.ndarray, multi_label: bool,
                               bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / n) · |accuracy_b − confidence_b| over equal-width confidence bins."""
    return binned_ece(*_confidence_and_outcome(probs, gold, multi_label), bins)


def binned_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of (confidence, 0/1 outcome) pairs; the formula of :func:`expected_calibration_error`."""
    total = len(confidence)
    return float(sum(b["n"] / total * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(confidence, correct, bins) if b["n"]))


def confidence_metrics(logits: np.ndarray, gold: np.ndarray, multi_label: bool,
                       temperature: float | Sequence[float] = 1.0) -> dict[str, float]:
    """ECE, Brier score and NLL of the scores the model gives at ``temperature``."""
    logits = np.asarray(logits, dtype=np.float64)
    gold = np.asarray(gold)
    probs = probabilities(logits, multi_label, temperature)
    z = logits / np.asarray(temperature, dtype=np.float64)
    if multi_label:
        y = gold.astype(float)
        brier = float(((probs - y) ** 2).mean())
        # log σ(z) = -log(1 + e^-z): logaddexp keeps it finite for large |z|
        nll = float((y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).mean())
    else:
        onehot = np.eye(logits.shape[1])[gold]
        brier = float(((probs - onehot) ** 2).sum(axis=1).mean())
        nll = float(-log_softmax(z, axis=-1)[np.arange(len(gold)), gold].mean())
    return {"ece": expected_calibration_error(probs, gold, multi_label), "brier": brier, "nll": nll}


def fit_temperature(logits: np.ndarray, gold: np.ndarray, multi_label: bool, max_iter: int = 200) -> list[float]:
    """Temperature(s) minimising NLL on ``(logits, gold)``: one T, or one per label for multi-label.

    LBFGS over log T (so T stays positive), started at T = 1; the result is clipped to ``T_RANGE``.
    Where the split has no error (every row, or every row of a label, decided right), NLL keeps falling
    as T → 0: the fit is ill-posed, and following it would turn every score into 1.0. There T is only
    allowed to grow (soften), never to sharpen below 1.
    """
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(gold))
    log_t = torch.zeros(x.shape[1] if multi_label else 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = x / log_t.exp()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, y.double()) if multi_label
                else torch.nn.functional.cross_entropy(z, y.long()))
        loss.backward()
        return loss

    opt.step(closure)
    temps = log_t.detach().exp().clamp(*T_RANGE).numpy()
    temps = np.where(_error_free(np.asarray(logits), np.asarray(gold), multi_label), np.maximum(temps, 1.0), temps)
    return [float(t) for t in temps]


def _error_free(logits: np.ndarray, gold: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per temperature: True where the split holds no wrongly decided row (per label for multi-label)."""
    if multi_label:
        return ((logits > 0) == (gold > 0.5)).all(axis=0)
    return np.array([bool((logits.argmax(axis=1) == gold).all())])


def split_report(logits: np.ndarray, gold: np.ndarray, multi_label: bool,
                 temperature: Sequence[float]) -> dict[str, Any]:
    """Before/after metrics and the reliability bins of one split."""
    t = temperature if multi_label else temperature[0]
    before = confidence_metrics(logits, gold, multi_label, 1.0)
    after = confidence_metrics(logits, gold, multi_label, t)
    conf_b, out_b = _confidence_and_outcome(probabilities(logits, multi_label), gold, multi_label)
    conf_a, out_a = _confidence_and_outcome(probabilities(logits, multi_label, t), gold, multi_label)
    return {"n": int(len(gold)), "before": before, "after": after,
            "bins_before": reliability_bins(conf_b, out_b), "bins_after": reliability_bins(conf_a, out_a)}


def logits_of(predictor, inputs: Sequence[Any], batch_size: int = 64) -> np.ndarray:
    """Raw logits (before any temperature) of a Predictor's backend, in input order."""
    chunks = []
    for start in range(0, len(inputs), batch_size):
        features, _ = predictor.features(list(inputs[start:start + batch_size]))
        chunks.append(np.asarray(predictor.backend(features), dtype=np.float64))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def reliability_png(report: dict, path: Path, title: str) -> Path:
    """The reliability diagram of one split's report (before and after scaling)."""
    return reliability_diagram_png(report["bins_before"], report["bins_after"], report["before"]["ece"],
                                   report["after"]["ece"], path, title)


def calibrate_run(predictor, calibrates, examples_by_split: dict[str, list], enabled: bool,
                  plots_dir: Path | None, log=lambda m: None) -> dict[str, Any] | None:
    """Fit T on validation (when ``enabled`` and there is one), set it on the task, report every split.

    ``calibrates`` is the task's ``Calibrates`` capability. Returns None when no split has examples; else
    ``{"temperature", "fitted_on", "note", <split>: {n, before, after, bins_*}}``. The caller saves the
    task state (T lives in labels.json).
    """
    task = predictor.task
    present = {k: v for k, v in examples_by_split.items() if v}
    if not present:
        return None
    data = {name: (logits_of(predictor, [task.input_of(e) for e in rows], predictor.cfg.eval.batch_size),
                   calibrates.temperature_targets(rows)) for name, rows in present.items()}
    multi = next(iter(data.values()))[1].ndim == 2  # multi-label targets: one 0/1 column per label
    width = next(iter(data.values()))[0].shape[1]
    temps, note = [1.0] * (width if multi else 1), None
    if not enabled:
        note = "eval.calibrate is false: scores are the model's raw probabilities"
    elif "validation" not in data:
        note = ("no validation split: temperature scaling was not fitted (it is never fitted on the test "
                "split); scores are the model's raw probabilities")
    else:
        temps = fit_temperature(*data["validation"], multi_label=multi)
    calibrates.set_temperature(temps)  # ones when not fitted: labels.json then says so per label
    out: dict[str, Any] = {"temperature": temps if multi else temps[0],
                           "fitted_on": "validation" if enabled and "validation" in data else None, "note": note}
    for name, (logits, gold) in data.items():
        out[name] = split_report(logits, gold, multi, temps)
        if plots_dir is not None:
            reliability_png(out[name], plots_dir / f"reliability_{name}.png", f"Reliability ({name})")
        b, a = out[name]["before"], out[name]["after"]
        log(f"calibration {name}: ECE {b['ece']:.4f} -> {a['ece']:.4f}, NLL {b['nll']:.4f} -> {a['nll']:.4f}")
    if note:
        log(note)
    return out
