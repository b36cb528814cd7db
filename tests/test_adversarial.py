"""FGM / PGD: embeddings restored bit for bit after every step; adversarial gradients are added."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from conftest import run_config, write_csv
from graftkit.config import AdversarialConfig
from graftkit.errors import ConfigError
from graftkit.modeling.run_folder import RunFolder
from graftkit.train.adversarial import Adversarial, EmbeddingAttack
from graftkit.train.trainer import build_trainer, prepare

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"]]


def _setup(tiny_model_dir):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = tok([r[0] for r in ROWS], padding=True, return_tensors="pt")
    return model, {**enc, "labels": torch.tensor([1, 0, 1, 0])}


@pytest.mark.parametrize("method", ["fgm", "pgd"])
def test_attack_restores_embeddings_and_adds_gradient(tiny_model_dir, method):
    model, batch = _setup(tiny_model_dir)
    model.eval()  # no dropout: the clean and adversarial passes differ only by the perturbation
    model(**batch).loss.backward()
    clean_grad = model.classifier.weight.grad.clone()
    emb = model.get_input_embeddings().weight
    original = emb.detach().clone()
    seen = []

    def step():
        seen.append(emb.detach().clone())
        model(**batch).loss.backward()

    EmbeddingAttack(AdversarialConfig(method=method, epsilon=0.5, alpha=0.2, steps=3)).attack(model, step)
    assert torch.equal(emb.detach(), original)  # restored exactly
    assert len(seen) == (1 if method == "fgm" else 3)
    for perturbed in seen:
        delta = torch.norm(perturbed - original).item()
        assert 0 < delta <= 0.5 + 1e-5  # moved, within the epsilon ball
    assert not torch.allclose(model.classifier.weight.grad, clean_grad)  # adversarial gradient added


def test_trainer_step_with_adversarial_keeps_embeddings(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, train={"adversarial": {"method": "pgd", "steps": 2}})
    task, splits = prepare(cfg)
    run = RunFolder(cfg.run_dir)
    run.path.mkdir(parents=True)
    trainer, _ = build_trainer(cfg, task, splits, run, log=lambda m: None)
    emb = trainer.model.get_input_embeddings().weight
    before = emb.detach().clone()
    calls = []
    adversary = trainer.component(Adversarial).attack  # the after-backward hook's attack
    orig_attack = adversary.attack
    adversary.attack = lambda model, step: (calls.append(1), orig_attack(model, step))
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop normally
    batch = next(iter(trainer.get_train_dataloader()))
    loss = trainer.training_step(trainer.model, batch)
    assert calls and torch.isfinite(loss)
    assert torch.equal(emb.detach(), before)
    assert emb.grad is not None and torch.norm(emb.grad) > 0


def test_adversarial_needs_trainable_embeddings(tmp_path, tiny_model_dir):
    from graftkit.train.trainer import train

    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file,
                     train={"adversarial": {"method": "fgm"}, "freeze": {"embeddings": True}})
    with pytest.raises(ConfigError, match="frozen"):
        train(cfg, log=lambda m: None)
