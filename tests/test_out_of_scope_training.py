"""Training that helps out-of-scope detection (task.out_of_scope.objective, .outlier_exposure): the loss terms on
planted tensors, the components' hooks on a tiny model, whole runs that complete with their detectors, outlier
exposure moving the out-of-scope rows' outputs, and the settings refused in one line by name."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.tasks.classification.config import OutOfScopeConfig
from graftkit.train.feature_objectives import FeatureObjective, margin_loss, supcon_loss
from graftkit.train.outlier_exposure import OutlierExposure, energy_loss, uniform_loss
from test_out_of_scope import IN_SCOPE, OUT_OF_SCOPE

WEIGHT = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # class 0 points along x, class 1 along y


def test_margin_loss_is_larger_when_a_feature_points_away_from_its_class_weight():
    labels = torch.tensor([0, 1])
    toward = torch.tensor([[3.0, 0.1], [0.2, 2.0]], requires_grad=True)
    away = torch.tensor([[0.1, 3.0], [2.0, 0.2]])
    near = margin_loss(toward, WEIGHT, labels, margin=0.35, scale=30.0)
    assert torch.isfinite(near) and margin_loss(away, WEIGHT, labels, 0.35, 30.0) > near + 10
    assert margin_loss(toward, WEIGHT, labels, 0.0, 30.0) < near  # the margin asks for more than the right side
    near.backward()
    assert toward.grad.abs().sum() > 0  # the gradient reaches the features
    weight = WEIGHT.clone().requires_grad_(True)
    margin_loss(toward.detach(), weight, labels, 0.35, 30.0).backward()
    assert weight.grad.abs().sum() > 0  # and the output layer's rows


def test_feature_terms_are_zero_without_rows_to_compare():
    feats = torch.randn(3, 2, requires_grad=True)
    unlabelled = torch.tensor([-100, -100, -100])
    assert margin_loss(feats, WEIGHT, unlabelled, 0.35, 30.0).item() == 0.0
    assert supcon_loss(feats, unlabelled, 0.1).item() == 0.0
    assert supcon_loss(feats, torch.tensor([0, 1, -100]), 0.1).item() == 0.0  # no two rows of one class
    supcon_loss(feats, unlabelled, 0.1).backward()  # a zero that keeps the graph
    assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_supervised_contrastive_loss_prefers_rows_gathered_by_class():
    labels = torch.tensor([0, 0, 1, 1, -100])  # the -100 row (an out-of-scope row) takes no part
    gathered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 0.0]], requires_grad=True)
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9], [1.0, 0.0]])
    tight = supcon_loss(gathered, labels, 0.1)
    assert torch.isfinite(tight) and supcon_loss(mixed, labels, 0.1) > tight + 1
    tight.backward()
    assert gathered.grad[:4].abs().sum() > 0 and gathered.grad[4].abs().sum() == 0


def test_outlier_terms_on_planted_logits():
    outlier = torch.tensor([False, True, True])
    logits = torch.tensor([[9.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert uniform_loss(logits, outlier).item() == pytest.approx(0.0, abs=1e-6)  # uniform outputs: nothing to do
    confident = torch.tensor([[9.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 5.0, 0.0]], requires_grad=True)
    assert uniform_loss(confident, outlier) > 1.0
    assert uniform_loss(confident, torch.tensor([False, False, False])).item() == 0.0
    # energies about -9 (in scope), -6 and -5 (out of scope): (-9 + 10)² + mean((-4 + 6)², (-4 + 5)²)
    assert energy_loss(confident, outlier, m_in=-10.0, m_out=-4.0).item() == pytest.approx(1.0 + 2.5, abs=0.05)
    assert energy_loss(confident, outlier, m_in=-5.0, m_out=-9.0).item() == pytest.approx(0.0, abs=1e-6)
    energy_loss(confident, outlier, -8.0, -4.0).backward()
    assert confident.grad.abs().sum() > 0


class _Stub:
    def __init__(self, model):
        self.model = model


def _batch(tiny_model_dir, outlier: list[int] | None = None):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    texts = [t for t, _ in IN_SCOPE[:4]]
    batch = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0, 1, 0])
    if outlier is not None:
        batch["labels"] = batch["labels"].masked_fill(torch.tensor(outlier, dtype=torch.bool), -100)
        batch["is_outlier"] = torch.tensor(outlier)
    return model, batch


def _model_loss(m, b, n):
    out = m(**b)
    return out.loss, out


def test_the_feature_objective_adds_its_term_and_its_gradient_reaches_the_pooled_features(tiny_model_dir):
    model, batch = _batch(tiny_model_dir)
    model.train()
    pooled = []

    def keep(module, args, out):  # the pooler's output, before the dropout the output layer's input goes through
        if out.requires_grad:
            out.retain_grad()
            pooled.append(out)

    model.bert.pooler.register_forward_hook(keep)
    settings = OutOfScopeConfig(label="oos", objective="margin", objective_weight=2.0)
    loss, outputs = FeatureObjective(settings).loss(_Stub(model), model, batch, None, _model_loss)
    plain = torch.nn.functional.cross_entropy(outputs.logits, batch["labels"])
    assert loss.item() > plain.item() + 0.1  # 2 × a margin loss with s = 30 joins the cross-entropy
    loss.backward()
    assert pooled[-1].grad.abs().sum() > 0
    model.eval()  # evaluation batches keep the plain loss
    with torch.no_grad():
        eval_loss, _ = FeatureObjective(settings).loss(_Stub(model), model, batch, None, _model_loss)
        assert eval_loss.item() == pytest.approx(model(**batch).loss.item())


def test_outlier_exposure_pops_its_column_and_trains_a_batch_of_outliers_only(tiny_model_dir):
    settings = OutOfScopeConfig(label="oos", outlier_exposure="uniform")
    exposure = OutlierExposure(settings, rows=4)
    assert exposure.weight == 0.5 and exposure.arguments(None) == {"remove_unused_columns": False}
    model, batch = _batch(tiny_model_dir, outlier=[0, 1, 0, 1])
    model.train()
    seen = []
    loss, outputs = exposure.loss(_Stub(model), model, batch, None, lambda m, b, n: (seen.append(set(b)),
                                                                                     _model_loss(m, b, n))[1])
    assert "is_outlier" not in seen[0] and "is_outlier" in batch  # popped for the model, kept for the caller
    in_scope = torch.nn.functional.cross_entropy(outputs.logits[[0, 2]], batch["labels"][[0, 2]])
    expected = in_scope + 0.5 * uniform_loss(outputs.logits, torch.tensor([False, True, False, True]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model, batch = _batch(tiny_model_dir, outlier=[1, 1, 1, 1])
    model.train()
    loss, _ = exposure.loss(_Stub(model), model, batch, None, _model_loss)  # the model's own loss here is NaN
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("settings, message", [
    ({"label": "oos", "objective": "margin", "temperature": 0.2}, "temperature applies to objective: contrastive"),
    ({"label": "oos", "energy_in": -3.0, "outlier_exposure": "uniform"}, "energy_in applies to outlier_exposure"),
    ({"outlier_exposure": "uniform"}, "outlier_exposure trains the out-of-scope training rows: set label"),
    ({"label": "oos", "outlier_exposure": "energy", "energy_in": -1.0, "energy_out": -2.0}, "must be below")])
def test_settings_that_would_be_ignored_or_cannot_work_are_refused(settings, message):
    from graftkit.tasks.run_config import config_from_dict

    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"train": "x.csv"}, "task": {"type": "classification", "out_of_scope": settings}})


def test_outlier_exposure_without_out_of_scope_training_rows_stops_in_one_line(tmp_path, tiny_model_dir):
    from graftkit.train.trainer import train

    data = write_csv(tmp_path / "train.csv", IN_SCOPE * 4)
    cfg = run_config(tmp_path, tiny_model_dir, data, data={"split": {"validation": 0.3}},
                     task={"type": "classification", "out_of_scope": {"label": "oos", "outlier_exposure": "uniform"}})
    with pytest.raises(ConfigError) as err:
        train(cfg, log=lambda m: None)
    assert str(err.value).startswith("task.out_of_scope.outlier_exposure: the train split has no out-of-scope rows")
    assert "\n" not in str(err.value)


OOS_TEXTS = [t for t, _ in OUT_OF_SCOPE]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """One run per setting, same data, seed and steps; the out-of-scope rows' raw logits after training."""
    from graftkit.inference.predictor import Predictor
    from graftkit.train.trainer import train

    tmp = tmp_path_factory.mktemp("oos-training")
    data = write_csv(tmp / "train.csv", IN_SCOPE * 4 + OUT_OF_SCOPE * 3)
    test = write_csv(tmp / "test.csv", IN_SCOPE + OUT_OF_SCOPE)
    settings = {"plain": {}, "uniform": {"outlier_exposure": "uniform", "outlier_weight": 2.0},
                # margins at this tiny model's scale (2 labels, energies near -log 2 untrained)
                "energy": {"outlier_exposure": "energy", "outlier_weight": 0.2, "energy_in": -2.5, "energy_out": -0.8},
                "margin": {"objective": "margin", "objective_weight": 0.5},
                "contrastive": {"objective": "contrastive", "objective_weight": 0.5}}
    out = {}
    for name, extra in settings.items():
        cfg = run_config(tmp / name, tiny_model_dir, data, task={"type": "classification",
                                                                 "out_of_scope": {"label": "oos", **extra}},
                         train={"max_steps": 60, "learning_rate": 3e-3, "seed": 7, "eval_strategy": "steps",
                                "eval_steps": 60},  # one evaluation: the final weights are the kept ones
                         data={"test": str(test), "split": {"validation": 0.3}}, eval={"robustness_rows": 0})
        path = train(cfg, log=lambda m: None).path
        out[name] = (path, Predictor(path).outputs(OOS_TEXTS)[0], Predictor(path).outputs(
            [t for t, _ in IN_SCOPE])[0])
    return out


@pytest.mark.parametrize("name, component", [("margin", "feature_objective"), ("contrastive", "feature_objective"),
                                             ("uniform", "outlier_exposure"), ("energy", "outlier_exposure")])
def test_each_setting_trains_and_the_run_completes_with_its_detectors(runs, name, component):
    path = runs[name][0]
    setup = json.loads((path / "training_setup.json").read_text())
    assert component in setup["components"] and setup[component]
    report = json.loads((path / "metrics.json").read_text())["out_of_scope"]
    assert set(report["detectors"]) == {"msp", "max_logit", "energy", "mahalanobis", "knn"}
    assert json.loads((path / "labels.json").read_text())["labels"] == ["neg", "pos"]  # oos is still no class
    losses = [h["loss"] for h in json.loads((path / "history.json").read_text()) if "loss" in h]
    assert losses and np.isfinite(losses).all()


def test_outlier_exposure_pushes_the_out_of_scope_rows_toward_a_uniform_output(runs):
    plain = softmax(runs["plain"][1], axis=-1).max(axis=-1)
    exposed = softmax(runs["uniform"][1], axis=-1).max(axis=-1)
    assert exposed.mean() < plain.mean() - 0.2, (exposed, plain)


def test_energy_exposure_raises_out_of_scope_energy_above_in_scope(runs):
    def gap(name):  # mean out-of-scope energy − mean in-scope energy (E = −logsumexp)
        _, oos, ins = runs[name]
        return float(-logsumexp(oos, axis=-1).mean() + logsumexp(ins, axis=-1).mean())

    assert gap("energy") > gap("plain") + 0.2, (gap("energy"), gap("plain"))
