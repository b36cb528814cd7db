"""Calibration: ECE/Brier/NLL, temperature scaling, and T applied through the run folder for every backend."""
from __future__ import annotations

import numpy as np
import pytest

from graftkit.evaluate.calibration import confidence_metrics, expected_calibration_error, fit_temperature


def _overconfident(n=4000, k=3, scale=4.0, seed=0):
    """Labels drawn from softmax(true logits); the model reports the true logits times ``scale``."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1.5, size=(n, k))
    p = np.exp(true) / np.exp(true).sum(1, keepdims=True)
    gold = np.array([rng.choice(k, p=row) for row in p])
    return true * scale, gold


def test_ece_of_a_perfectly_calibrated_and_a_wrong_model():
    probs = np.array([[0.8, 0.2]] * 10)
    gold = np.array([0] * 8 + [1] * 2)  # 80% right at confidence 0.8
    assert expected_calibration_error(probs, gold, False) == pytest.approx(0.0)
    gold_bad = np.array([1] * 10)  # always wrong at confidence 0.8
    assert expected_calibration_error(probs, gold_bad, False) == pytest.approx(0.8)


def test_temperature_lowers_nll_and_ece_on_an_overconfident_model():
    logits, gold = _overconfident()
    (t,) = fit_temperature(logits, gold, multi_label=False)
    assert 3.0 < t < 5.5  # recovers (roughly) the factor the logits were inflated by
    before = confidence_metrics(logits, gold, False, 1.0)
    after = confidence_metrics(logits, gold, False, t)
    assert after["nll"] < before["nll"] - 0.1
    assert after["ece"] < before["ece"] / 2
    assert after["brier"] < before["brier"]
    # argmax (accuracy) is unchanged by a temperature
    assert ((logits / t).argmax(1) == logits.argmax(1)).all()


def test_per_label_temperature_for_multi_label():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 2, size=(3000, 2))
    gold = (rng.random(true.shape) < 1 / (1 + np.exp(-true))).astype(int)
    logits = true * np.array([3.0, 0.5])  # label 0 over-confident, label 1 under-confident
    temps = fit_temperature(logits, gold, multi_label=True)
    assert temps[0] > 2.0 and temps[1] < 0.8
    before = confidence_metrics(logits, gold, True, 1.0)
    after = confidence_metrics(logits, gold, True, temps)
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]
