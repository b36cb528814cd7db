"""train.strategy few_shot (SetFit) and auto: the choice, the refusals, the head's exactness, and an ordinary
run folder that separates planted classes where plain training at the same steps does not."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from conftest import run_config, write_csv
from graftkit.errors import ConfigError, UnsupportedError
from graftkit.evaluate.explain import Explainer
from graftkit.export import export_run
from graftkit.inference.runs import open_run
from graftkit.serve import ServeConfig, create_app
from graftkit.tasks import build_task
from graftkit.tasks.capabilities import LearnsFromFewLabels
from graftkit.tasks.classification.config import ClassificationConfig
from graftkit.train.ensemble import build_ensemble
from graftkit.train.few_shot import choose_strategy
from graftkit.train.trainer import prepare, train

A = "cat blue piano river bread winter".split()
B = "dog red guitar mountain rice summer".split()
FILLER = "the a of and today then very quite".split()
KEY = "few-shot-key-0123456789"


def planted(n_per_class: int, rng: random.Random) -> list[list[str]]:
    """Two classes told apart only by which of two arbitrary word groups a row's words come from."""
    def row(words, label):
        return [" ".join(rng.sample(words, 2) + rng.sample(FILLER, 2)), label]
    return [row(A, "a") for _ in range(n_per_class)] + [row(B, "b") for _ in range(n_per_class)]


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    tmp, rng = tmp_path_factory.mktemp("few-shot-data"), random.Random(1)
    train_rows, test_rows = planted(6, rng), planted(20, rng)
    return {"train": write_csv(tmp / "train.csv", train_rows), "test": write_csv(tmp / "test.csv", test_rows),
            "validation": write_csv(tmp / "val.csv", test_rows[:2] + test_rows[-2:]), "test_rows": test_rows}


def _config(tmp, model, files, **train):
    return run_config(tmp, model, files["train"], data={"test": str(files["test"]), "validation": str(files["validation"])},
                      train={"max_steps": 8, "learning_rate": 5e-5, "warmup": 0.0, **train},
                      eval={"plots": False, "robustness_rows": 0})


def _separation(run_dir, texts, labels) -> float:
    """Mean cosine of same-label pairs minus different-label pairs, on the features the output layer reads."""
    predictor = open_run(run_dir)
    _, z = predictor.backend.outputs(predictor.features(texts)[0], with_features=True)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim, y = z @ z.T, np.array(labels)
    same, off = y[:, None] == y[None, :], ~np.eye(len(y), dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


@pytest.mark.slow
def test_few_shot_separates_planted_classes_plain_training_does_not(tmp_path, bundled_model_dir, planted_files):
    texts, labels = [r[0] for r in planted_files["test_rows"]], [r[1] for r in planted_files["test_rows"]]
    results, said = {}, {"few_shot": "strategy: few_shot (train.strategy: few_shot)",
                         "standard": "strategy: standard (train.strategy: auto; 6.0 training rows per label >= "
                                     "train.few_shot.auto_below 2)"}
    settings = {"few_shot": {"strategy": "few_shot"},  # auto chooses standard here: 6 rows per label
                "standard": {"strategy": "auto", "few_shot": {"auto_below": 2}, "eval_strategy": "steps",
                             "eval_steps": 8}}  # one checkpoint
    for strategy in ("few_shot", "standard"):
        lines: list[str] = []
        run = train(_config(tmp_path / strategy, bundled_model_dir, planted_files, **settings[strategy]),
                    log=lines.append)
        metrics = json.loads((run.path / "metrics.json").read_text())
        results[strategy] = (metrics["test"]["accuracy"], _separation(run.path, texts, labels))
        assert said[strategy] in lines and metrics["strategy"]["chosen"] == strategy
    (few_acc, few_gap), (std_acc, std_gap) = results["few_shot"], results["standard"]
    assert few_acc >= 0.9 and few_acc > std_acc + 0.1, results
    assert few_gap > std_gap + 0.03, results
    card = (tmp_path / "few_shot" / "runs" / "t" / "README.md").read_text()
    assert "## Training strategy" in card and "**few_shot**: SetFit" in card
    card = (tmp_path / "standard" / "runs" / "t" / "README.md").read_text()
    assert "**standard**: fine-tuning of the whole model" in card and "train.few_shot.auto_below 2" in card


@pytest.fixture(scope="module")
def tiny_few_shot_run(tmp_path_factory, tiny_model_dir):
    tmp, rng = tmp_path_factory.mktemp("few-shot-tiny"), random.Random(0)
    files = {"train": write_csv(tmp / "train.csv", planted(8, rng)), "test": write_csv(tmp / "test.csv", planted(6, rng)),
             "validation": write_csv(tmp / "val.csv", planted(3, rng))}
    return train(_config(tmp, tiny_model_dir, files, strategy="few_shot", max_steps=4, learning_rate=1e-3),
                 log=lambda m: None).path


def test_a_few_shot_run_is_an_ordinary_classification_run(tiny_few_shot_run, tmp_path):
    run, texts = tiny_few_shot_run, ["cat blue the a", "dog red of and", "piano river"]
    setup = json.loads((run / "training_setup.json").read_text())
    assert setup["strategy"]["chosen"] == "few_shot" and "strategy" in setup["components"]
    assert "calibration" in json.loads((run / "metrics.json").read_text())  # calibrated on validation
    torch_preds = open_run(run).predict(texts)
    report = export_run(run, log=lambda m: None)  # ONNX parity with torch
    assert report["passed"] is True
    assert [p.label for p in open_run(run, "onnx").predict(texts)] == [p.label for p in torch_preds]
    explanation = Explainer(run, steps=16).explain(texts[0])
    assert explanation["words"] and explanation["target"] == torch_preds[0].label
    build_ensemble([run, run], tmp_path / "ens", log=lambda m: None)
    assert [p.label for p in open_run(tmp_path / "ens").predict(texts)] == [p.label for p in torch_preds]
    with TestClient(create_app(run, ServeConfig(api_keys=[KEY], log_level="warning"))) as client:
        served = client.post("/v1/predict", json={"texts": texts}, headers={"X-API-Key": KEY}).json()["predictions"]
    assert [p["label"] for p in served] == [p.label for p in torch_preds]


def test_multi_label_few_shot_trains(tmp_path, tiny_model_dir):
    rng = random.Random(0)
    rows = [[" ".join(rng.sample(A, 2) + rng.sample(B, 1)), "a|b"] for _ in range(4)] + planted(4, rng)
    files = {"train": write_csv(tmp_path / "train.csv", rows), "test": write_csv(tmp_path / "test.csv", rows[:6]),
             "validation": write_csv(tmp_path / "val.csv", rows[6:])}
    cfg = _config(tmp_path, tiny_model_dir, files, strategy="few_shot", max_steps=2)
    cfg = cfg.model_copy(update={"task": cfg.task.model_copy(update={"multi_label": True})})
    run = train(cfg, log=lambda m: None)
    predictions = open_run(run.path).predict(["cat blue dog", "rice summer the"])
    assert all(set(p.scores) == {"a", "b"} for p in predictions)


@pytest.mark.filterwarnings("ignore:Label 2 is present in all training examples")
@pytest.mark.parametrize("multi_label,classes", [(False, 2), (False, 3), (True, 3)])
def test_the_fitted_head_becomes_an_exact_output_layer(multi_label, classes):
    """The output layer's logits, decoded as classification decodes them, give the regression's probabilities."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    task = build_task(ClassificationConfig(multi_label=multi_label))
    task.labels = [f"l{i}" for i in range(classes)]
    learner = task.capability(LearnsFromFewLabels, "test")
    if multi_label:
        y = (rng.random((60, classes)) > 0.5).astype(int)
        y[:, 2] = 1  # a label on every row: a constant estimator
        head = learner.new_head().fit(x, y)
        want = head.predict_proba(x)
    else:
        y = rng.integers(0, classes, 60)
        head = learner.new_head().fit(x, y)
        want = head.predict_proba(x)
    weight, bias = learner.head_weights(head)
    logits = x @ weight.T + bias
    got = 1 / (1 + np.exp(-logits)) if multi_label else np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert isinstance(head, OneVsRestClassifier if multi_label else LogisticRegression)


def test_auto_chooses_by_rows_per_label_and_says_why(tmp_path, tiny_model_dir):
    rows = planted(5, random.Random(0))
    cfg = run_config(tmp_path, tiny_model_dir, write_csv(tmp_path / "train.csv", rows),
                     data={"validation": str(write_csv(tmp_path / "val.csv", rows[:2] + rows[-2:])),
                           "test": str(tmp_path / "val.csv")},
                     train={"strategy": "auto", "few_shot": {"auto_below": 6}})
    task, splits = prepare(cfg)
    choice = choose_strategy(cfg, task, splits.train)
    assert choice.strategy == "few_shot"
    assert choice.line() == ("strategy: few_shot (train.strategy: auto; 5.0 training rows per label < "
                             "train.few_shot.auto_below 6)")
    high = cfg.model_copy(update={"train": cfg.train.model_copy(update={"few_shot": cfg.train.few_shot.model_copy(
        update={"auto_below": 5})})})
    assert choose_strategy(high, task, splits.train).strategy == "standard"


def test_few_shot_refuses_what_it_does_not_apply(tmp_path, tiny_model_dir):
    rows = planted(4, random.Random(0))
    data = write_csv(tmp_path / "train.csv", rows)
    with pytest.raises(ConfigError, match=r"^train.rdrop: classification runs \(trained by SetFit; "
                                          r"train.strategy: few_shot\) do not apply it"):
        train(run_config(tmp_path, tiny_model_dir, data, train={"strategy": "few_shot", "rdrop": 1.0}))
    with pytest.raises(UnsupportedError, match=r"^train.strategy: ner runs do not support this"):
        train(run_config(tmp_path, tiny_model_dir, data, task={"type": "ner"}, train={"strategy": "few_shot"}))
    with pytest.raises(ConfigError, match="few_shot applies to strategy few_shot or auto"):
        run_config(tmp_path, tiny_model_dir, data, train={"few_shot": {"pairs_per_row": 5}})
    pairs = write_csv(tmp_path / "pairs.csv", [[t, t, lab] for t, lab in rows], header=("text", "text_b", "label"))
    with pytest.raises(ConfigError, match="text_pair_column"):
        train(run_config(tmp_path, tiny_model_dir, pairs, data={"text_pair_column": "text_b"},
                         train={"strategy": "few_shot"}))
    assert not (tmp_path / "runs").exists()  # every refusal came before any work
