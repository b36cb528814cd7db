"""Out-of-scope detection: the scores on planted features, the choice on validation, and one detector that
flags the same through training, reload, ONNX export and the HTTP service; calibration changes no decision."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import run_config, write_csv
from graftkit.modeling.ood import (
    FeatureModel,
    at_threshold,
    auroc,
    choose_threshold,
    fpr_at_95,
    logit_scores,
)

IN_SCOPE = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
            ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
            ["i loved every minute", "pos"], ["i hated every minute", "neg"]]
OUT_OF_SCOPE = [["what is the capital of france", "oos"], ["my package never arrived", "oos"],
                ["how tall is mount everest", "oos"], ["reset my router password please", "oos"]]
KEY = "oos-key-0123456789"


def test_feature_scores_flag_far_points_the_softmax_is_sure_of():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0], [-4.0, 0.0]])
    x = np.concatenate([centres[0] + 0.3 * rng.standard_normal((50, 2)), centres[1] + 0.3 * rng.standard_normal((50, 2))])
    y = np.array([0] * 50 + [1] * 50)
    far = np.array([[40.0, 30.0], [-40.0, -30.0], [30.0, -40.0]])  # far out, along the classes' own direction
    weight = np.array([[1.0, 0.0], [-1.0, 0.0]])  # a linear head: logits = x @ weight.T
    model = FeatureModel.fit(x, y, classes=2, k=1)
    near = centres + 0.1
    scores = model.scores(np.concatenate([near, far]))
    softmax_says = logit_scores(np.concatenate([near, far]) @ weight.T)["msp"]
    assert (softmax_says[2:] < 1e-6).all()  # the softmax is (wrongly) sure of the far points
    for name in ("mahalanobis", "knn"):
        assert scores[name][2:].min() > scores[name][:2].max(), name
    oos = np.array([False, False, True, True, True])
    assert auroc(scores["mahalanobis"], oos) == 1.0 and fpr_at_95(scores["knn"], oos) == 0.0


def test_the_threshold_reaches_the_target_accuracy_with_the_most_recall():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.8, 0.95])
    oos = np.array([False] * 5 + [True] * 3)
    correct = np.array([True, True, True, True, True, False, False, False])
    threshold, reached = choose_threshold(scores, oos, correct, target_accuracy=0.8, keep_in_scope=0.95)
    m = at_threshold(scores, threshold, oos, correct)
    assert reached and m["in_scope_accuracy"] >= 0.8 and m["oos_recall"] == 1.0 and threshold == 0.4
    threshold, _ = choose_threshold(scores[:5], oos[:5], correct[:5], target_accuracy=0.8, keep_in_scope=0.8)
    assert (scores[:5] <= threshold).mean() == pytest.approx(0.8)  # no out-of-scope rows: a kept share


@pytest.fixture(scope="module")
def oos_run(tmp_path_factory, tiny_model_dir):
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("oos")
    data = write_csv(tmp / "train.csv", (IN_SCOPE * 4) + OUT_OF_SCOPE * 2)
    test = write_csv(tmp / "test.csv", IN_SCOPE + OUT_OF_SCOPE)
    cfg = run_config(tmp, tiny_model_dir, data, task={"type": "classification", "out_of_scope": {"label": "oos"}},
                     train={"epochs": 10, "learning_rate": 3e-3}, data={"test": str(test), "split": {"validation": 0.3}},
                     eval={"plots": True, "robustness_rows": 0})
    return train(cfg, log=lambda m: None).path


def test_training_fits_chooses_and_reports_every_detector(oos_run):
    metrics = json.loads((oos_run / "metrics.json").read_text())
    report = metrics["out_of_scope"]
    assert set(report["detectors"]) == {"msp", "max_logit", "energy", "mahalanobis", "knn"}
    assert report["chosen_on"] == "validation" and report["out_of_scope_rows"]["test"] == len(OUT_OF_SCOPE)
    for d in report["detectors"].values():
        assert 0.0 <= d["test"]["auroc"] <= 1.0 and d["test"]["oos_recall"] is not None
    assert (oos_run / "out_of_scope.safetensors").is_file() and (oos_run / "plots" / "out_of_scope.png").is_file()
    assert "## Out-of-scope detection" in (oos_run / "README.md").read_text()
    # the out-of-scope rows are no class: the model learnt pos and neg only
    assert json.loads((oos_run / "labels.json").read_text())["labels"] == ["neg", "pos"]


def test_flags_agree_across_reload_onnx_and_the_service(oos_run):
    from graftkit.export import export_run
    from graftkit.inference.predictor import Predictor
    from graftkit.serve import ServeConfig, create_app

    texts = [t for t, _ in IN_SCOPE + OUT_OF_SCOPE]
    torch_pred = Predictor(oos_run)
    local = torch_pred.predict(texts)
    assert all(p.out_of_scope is not None for p in local)
    detector = torch_pred.detector
    name, threshold = detector.chosen
    assert [p.out_of_scope for p in local] == [p.out_of_scope_score > threshold for p in local]
    export_run(oos_run, log=lambda m: None)
    onnx_pred = Predictor(oos_run, "onnx")
    for batch in (texts[:3], texts):  # every score, not only the flagging one, is the same from both back-ends
        torch_scores = detector.scores(*torch_pred.outputs(batch, with_features=True))
        onnx_scores = onnx_pred.detector.scores(*onnx_pred.outputs(batch, with_features=True))
        for d in torch_scores:
            np.testing.assert_allclose(onnx_scores[d], torch_scores[d], rtol=1e-3, atol=1e-3, err_msg=d)
    assert [p.out_of_scope for p in onnx_pred.predict(texts)] == [p.out_of_scope for p in local]
    with TestClient(create_app(oos_run, ServeConfig(api_keys=[KEY]))) as client:
        served = client.post("/v1/predict", json={"texts": texts}, headers={"X-API-Key": KEY}).json()["predictions"]
    assert [p["out_of_scope"] for p in served] == [p.out_of_scope for p in local]
    assert [p["out_of_scope_score"] for p in served] == pytest.approx([p.out_of_scope_score for p in local], abs=1e-5)


def test_temperature_changes_no_decision(oos_run):
    from graftkit.inference.predictor import Predictor
    from graftkit.tasks.capabilities import Calibrates

    texts = [t for t, _ in IN_SCOPE + OUT_OF_SCOPE]
    pred = Predictor(oos_run)
    before = pred.predict(texts)
    pred.task.capability(Calibrates, "predict").set_temperature([7.5])
    after = pred.predict(texts)
    assert [p.out_of_scope for p in after] == [p.out_of_scope for p in before]
    assert [p.out_of_scope_score for p in after] == [p.out_of_scope_score for p in before]
    assert max(p.score for p in after) < max(p.score for p in before)  # the temperature did change the scores


def test_without_out_of_scope_rows_the_threshold_keeps_a_share(tmp_path, tiny_model_dir):
    from graftkit.train.trainer import train

    data = write_csv(tmp_path / "train.csv", IN_SCOPE * 6)
    cfg = run_config(tmp_path, tiny_model_dir, data, train={"epochs": 4, "learning_rate": 3e-3},
                     task={"type": "classification", "out_of_scope": {"keep_in_scope": 0.8, "detectors": ["energy"]}},
                     data={"split": {"validation": 0.4}}, eval={"robustness_rows": 0})
    run = train(cfg, log=lambda m: None).path
    report = json.loads((run / "metrics.json").read_text())["out_of_scope"]
    assert report["detector"] == "energy" and not (run / "out_of_scope.safetensors").exists()
    assert report["detectors"]["energy"]["validation"]["handoff_rate"] <= 0.2 + 1e-9
