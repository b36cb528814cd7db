"""Regression head end to end on a tiny model, metrics on known values, and bad targets."""
from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification

from conftest import run_config, write_csv
from graftkit.errors import DataError
from graftkit.inference.predictor import Predictor
from graftkit.tasks.regression.metrics import scores, target_scores
from graftkit.train.trainer import prepare, train

ROWS = [["a wonderful film", 4.5, 1], ["a dull film", 1.0, 0], ["great fun for everyone", 4.0, 1],
        ["terrible and boring", 0.5, 0], ["pretty good overall", 3.5, 1], ["mostly bad", 1.5, 0]]


def test_overfit_save_reload_two_targets(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "scores.csv", ROWS * 4, header=("text", "rating", "clicked"))
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "regression", "loss": "huber"},
                     data={"label_column": ["rating", "clicked"], "validation": str(path), "test": str(path)},
                     train={"epochs": 40, "batch_size": 24, "learning_rate": 5e-3, "eval_strategy": "steps",
                            "eval_steps": 1000})  # one step per epoch, no per-epoch eval/save: fast
    run = train(cfg, log=lambda m: None)
    state = json.loads(run.labels.read_text())
    assert state["task"] == "regression" and state["targets"] == ["rating", "clicked"]
    assert state["mean"][0] == pytest.approx(np.mean([r[1] for r in ROWS]))  # standardisation kept in the run
    assert state["binary"] == [False, True]
    test = json.loads(run.metrics.read_text())["test"]
    assert test["rating_rmse"] < 0.5 and test["rating_pearson"] > 0.9
    assert test["clicked_roc_auc"] == 1.0 and "rating_roc_auc" not in test
    texts = [r[0] for r in ROWS]
    pred = Predictor(run.path)
    batch = pred.predict(texts, batch_size=4)
    single = [pred.predict([t])[0] for t in texts]
    for b, s, row in zip(batch, single, ROWS):
        assert b.values["rating"] == pytest.approx(s.values["rating"], abs=1e-4)
        assert b.value == pytest.approx(row[1], abs=0.75)  # predictions are on the original scale
    model = AutoModelForSequenceClassification.from_pretrained(run.path)
    assert model.config.problem_type == "regression" and model.config.num_labels == 2
    assert (run.predictions / "test" / "largest_errors.csv").is_file()


def test_single_target_mse_without_standardisation(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "s.csv", [[r[0], r[1]] for r in ROWS] * 4, header=("text", "score"))
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "regression", "standardize": False},
                     data={"label_column": "score", "split": {"validation": 0.2, "test": 0.2}},
                     train={"epochs": 2})
    run = train(cfg, log=lambda m: None)
    state = json.loads(run.labels.read_text())
    assert state["mean"] == [0.0] and state["std"] == [1.0]
    p = Predictor(run.path).predict(["a wonderful film"])[0]
    assert set(p.to_dict()) == {"value", "values"} and list(p.values) == ["score"]


def test_metrics_on_known_values():
    gold = np.array([0.0, 1.0, 2.0, 3.0])
    pred = np.array([0.0, 1.0, 2.0, 5.0])
    m = target_scores(gold, pred, binary=False)
    assert m["rmse"] == pytest.approx(1.0)  # sqrt(4 / 4)
    assert m["mae"] == pytest.approx(0.5)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["pearson"] == pytest.approx(np.corrcoef(gold, pred)[0, 1])
    b = target_scores(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.6, 0.4, 0.9]), binary=True)
    assert b["roc_auc"] == pytest.approx(0.75)
    both = scores(np.stack([gold, gold], 1), np.stack([pred, gold], 1), ["a", "b"], [False, False])
    assert both["a_rmse"] == pytest.approx(1.0) and both["b_rmse"] == 0.0 and both["rmse"] == pytest.approx(0.5)


@pytest.mark.parametrize("bad,msg", [("high", "not a number"), ("", "not a number"), ("nan", "not finite")])
def test_non_numeric_target_names_file_line_field(tmp_path, tiny_model_dir, bad, msg):
    path = write_csv(tmp_path / "bad.csv", [["ok", "1.0"], ["fine", "2"], ["broken", bad]], header=("text", "score"))
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "regression"}, data={"label_column": "score"})
    with pytest.raises(DataError, match=msg) as exc:
        prepare(cfg)
    assert exc.value.path == str(path) and exc.value.line == 4 and exc.value.field == "score"


def test_missing_target_column(tmp_path, tiny_model_dir):
    path = write_csv(tmp_path / "m.csv", [["ok", "1.0"]] * 3, header=("text", "score"))
    cfg = run_config(tmp_path, tiny_model_dir, path, task={"type": "regression"},
                     data={"label_column": ["score", "ctr"]})
    with pytest.raises(DataError, match="missing column 'ctr'"):
        prepare(cfg)
