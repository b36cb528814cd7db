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


def test_an_error_free_split_never_sharpens_the_scores():
    # every row decided right: NLL falls as T -> 0, so an unguarded fit would turn every score into 1.0
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 3, 200)
    logits = rng.normal(0, 1, (200, 3))
    logits[np.arange(200), gold] += 4.0  # the gold class always wins
    (t,) = fit_temperature(logits, gold, multi_label=False)
    assert t >= 1.0
    flipped = gold.copy()
    flipped[:20] = (gold[:20] + 1) % 3  # with errors the same logits are over-confident: T > 1 is fitted
    (t_err,) = fit_temperature(logits, flipped, multi_label=False)
    assert t_err > 1.0


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


# -- through a trained run folder ------------------------------------------------------------
def _noisy_keyword_rows(n=240, noise=0.25, seed=0):
    """The keyword rule with a quarter of the labels replaced at random: an overfit model is over-confident."""
    import random

    from test_explain import keyword_rows

    rng = random.Random(seed)
    rows = keyword_rows(n, seed)
    for r in rows:
        if rng.random() < noise:
            r[1] = rng.choice(["pos", "neg", "neu"])
    return rows


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory, tiny_model_dir):
    from conftest import run_config, write_csv
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("cal")
    data = write_csv(tmp / "noisy.csv", _noisy_keyword_rows())
    # no evaluation during training (eval_steps beyond the last step): the final, overfit weights are kept
    cfg = run_config(tmp, tiny_model_dir, data, train={"epochs": 30, "learning_rate": 3e-3, "batch_size": 16,
                                                       "eval_strategy": "steps", "eval_steps": 100000},
                     data={"split": {"validation": 0.25, "test": 0.25}}, eval={"plots": True,
                                                                                "robustness_rows": 0})
    return train(cfg, log=lambda m: None).path


def test_temperature_is_fitted_on_validation_and_stored(calibrated_run):
    import json

    state = json.loads((calibrated_run / "labels.json").read_text())
    (t,) = state["temperature"]
    assert abs(t - 1.0) > 0.05  # a fitted value, not the default
    cal = json.loads((calibrated_run / "metrics.json").read_text())["calibration"]
    assert cal["fitted_on"] == "validation" and cal["temperature"] == pytest.approx(t)
    assert cal["validation"]["after"]["nll"] < cal["validation"]["before"]["nll"]  # the fit's objective
    assert cal["test"]["n"] == 60 and set(cal["test"]["before"]) == {"ece", "brier", "nll"}
    assert (calibrated_run / "plots" / "reliability_test.png").is_file()
    card = (calibrated_run / "README.md").read_text()
    assert "## Calibration" in card and f"T = {t:.3f}" in card
    assert f"{cal['test']['before']['ece']:.4f} | {cal['test']['after']['ece']:.4f}" in card


def test_predictor_scores_are_scaled_for_torch_and_onnx(calibrated_run):
    import json

    from scipy.special import softmax

    from graftkit.evaluate.calibration import logits_of
    from graftkit.export.parity import export_run
    from graftkit.inference.predictor import Predictor
    from graftkit.tasks.capabilities import Calibrates, ScoresLabels

    texts = ["we saw the excellent cat", "awful blue car", "a dog sat on the mat", "the river was green"]
    torch_pred = Predictor(calibrated_run)
    (t,) = json.loads((calibrated_run / "labels.json").read_text())["temperature"]
    assert torch_pred.task.capability(Calibrates, "evaluate").temperature == [t]  # round-trips through labels.json
    raw = logits_of(torch_pred, texts)
    expected = softmax(raw / t, axis=-1)
    labels = torch_pred.task.capability(ScoresLabels, "predict").labels
    got = np.array([[p.scores[lab] for lab in labels] for p in torch_pred.predict(texts)])
    assert got == pytest.approx(expected, abs=1e-6)
    assert not np.allclose(got, softmax(raw, axis=-1), atol=1e-3)  # the temperature changed the scores
    export_run(calibrated_run, log=lambda m: None)
    onnx = np.array([[p.scores[lab] for lab in labels] for p in Predictor(calibrated_run, backend="onnx")
                     .predict(texts)])
    assert onnx == pytest.approx(expected, abs=1e-4)


def test_no_validation_split_means_no_fit_on_test(tmp_path, tiny_model_dir):
    import json

    from conftest import run_config, write_csv
    from graftkit.train.trainer import train

    data = write_csv(tmp_path / "d.csv", _noisy_keyword_rows(90))
    cfg = run_config(tmp_path, tiny_model_dir, data, data={"split": {"validation": 0.0, "test": 0.3}},
                     eval={"robustness_rows": 0})
    run = train(cfg, log=lambda m: None)
    cal = json.loads(run.metrics.read_text())["calibration"]
    assert cal["temperature"] == 1.0 and cal["fitted_on"] is None
    assert "no validation split" in cal["note"] and "never fitted on the test" in cal["note"]
    assert cal["test"]["before"] == cal["test"]["after"]
    assert "no validation split" in run.card.read_text()


def test_calibrate_false_and_multi_label_per_label_temperature(tmp_path, tiny_model_dir):
    import json

    from conftest import run_config, write_csv
    from graftkit.train.trainer import train

    rows = [[t, "|".join(sorted({"a" if "excellent" in t else "b", "c" if "cat" in t else "b"}))]
            for t, _ in _noisy_keyword_rows(120)]
    data = write_csv(tmp_path / "ml.csv", rows)
    cfg = run_config(tmp_path, tiny_model_dir, data, task={"type": "classification", "multi_label": True},
                     data={"label_separator": "|"}, train={"epochs": 3}, eval={"robustness_rows": 0})
    run = train(cfg, log=lambda m: None)
    state = json.loads(run.labels.read_text())
    assert len(state["temperature"]) == len(state["labels"]) == 3
    cal = json.loads(run.metrics.read_text())["calibration"]
    assert cal["validation"]["after"]["nll"] <= cal["validation"]["before"]["nll"] + 1e-9
    notes = json.loads(run.metrics.read_text())["data"]["notes"]  # validation scored with thresholds fitted on it
    assert any("thresholds were tuned on the validation split" in n for n in notes), notes
    assert "thresholds were tuned on the validation split" in run.card.read_text()
    off = run_config(tmp_path / "off", tiny_model_dir, data, task={"type": "classification", "multi_label": True},
                     data={"label_separator": "|"}, train={"epochs": 1}, eval={"calibrate": False,
                                                                               "robustness_rows": 0})
    run_off = train(off, log=lambda m: None)
    assert json.loads(run_off.labels.read_text())["temperature"] == [1.0, 1.0, 1.0]
    assert "eval.calibrate is false" in json.loads(run_off.metrics.read_text())["calibration"]["note"]
