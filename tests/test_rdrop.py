"""R-Drop (``train.rdrop``): the divergence term, one doubled forward per step, every task head."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.modeling.run_folder import RunFolder
from graftkit.modeling.divergence import bernoulli_divergence, softmax_divergence, squared_difference
from graftkit.train.rdrop import double_batch
from graftkit.train.trainer import build_trainer, prepare, train
from test_peft import ROWS


def test_divergence_per_problem_type():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    assert softmax_divergence(a, a.clone()).item() == pytest.approx(0.0, abs=1e-7)
    kl = softmax_divergence(a, b)
    assert kl.item() > 0 and kl.item() == pytest.approx(softmax_divergence(b, a).item())  # symmetric
    assert squared_difference(a[:, :1], b[:, :1]).item() == pytest.approx(((a[:, 0] - b[:, 0]) ** 2).mean().item())
    assert bernoulli_divergence(a, b).item() > 0

    tokens_a, tokens_b = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    labels = torch.tensor([[-100, 1, 2, -100, -100], [-100, 0, -100, -100, -100]])
    masked = softmax_divergence(tokens_a, tokens_b, labels)
    tokens_b2 = tokens_b.clone()
    tokens_b2[labels == -100] = 50.0  # padding / special / later sub-word positions do not count
    assert softmax_divergence(tokens_a, tokens_b2, labels).item() == pytest.approx(masked.item())
    assert masked.item() != pytest.approx(softmax_divergence(tokens_a, tokens_b).item())


def test_rdrop_step_runs_one_doubled_forward_and_adds_the_divergence(tmp_path, tiny_model_dir):
    train_file = write_csv(tmp_path / "train.csv", ROWS * 4)
    cfg = run_config(tmp_path, tiny_model_dir, train_file, train={"rdrop": 2.0}, model={"dropout": 0.3})
    task, splits = prepare(cfg)
    run = RunFolder(cfg.run_dir)
    run.path.mkdir(parents=True)
    trainer, _ = build_trainer(cfg, task, splits, run, log=lambda m: None)
    model = trainer.model
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    sizes = []
    hook = model.register_forward_hook(lambda m, a, kw, out: sizes.append(kw["input_ids"].shape[0]), with_kwargs=True)
    model.train()
    torch.manual_seed(1)
    loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    assert sizes == [8]  # both dropout passes in one forward over the doubled batch
    first, second = outputs.logits.chunk(2)
    assert not torch.allclose(first, second)  # different dropout masks
    plain = torch.nn.functional.cross_entropy(outputs.logits, torch.cat([batch["labels"]] * 2))
    expected = plain + 2.0 * softmax_divergence(first, second)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.eval()
    sizes.clear()
    with torch.no_grad():
        trainer.compute_loss(model, dict(batch))
    assert sizes == [4]  # evaluation is not doubled
    hook.remove()


def test_rdrop_trains_classification_ner_crf_and_regression(tmp_path, tiny_model_dir):
    from test_ner_train import SENTENCES, write_jsonl

    cls = write_csv(tmp_path / "cls.csv", ROWS * 4)
    ner = write_jsonl(tmp_path / "ner.jsonl", SENTENCES, repeat=2)
    reg = write_csv(tmp_path / "reg.csv", [["great", 4.5], ["awful", 1.0], ["fine", 3.0], ["good", 4.0]] * 4)
    cases = [("cls", cls, {}), ("crf", ner, {"type": "ner", "crf": True}), ("reg", reg, {"type": "regression"})]
    for name, path, task in cases:
        cfg = run_config(tmp_path, tiny_model_dir, path, name=name, task=task, train={"max_steps": 3, "rdrop": 1.0},
                         data={"split": {"validation": 0.0, "test": 0.0}})
        run = train(cfg, log=lambda m: None)
        losses = [h["loss"] for h in json.loads(run.history.read_text()) if "loss" in h]
        assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))

    no_dropout = run_config(tmp_path, tiny_model_dir, cls, name="nodrop", train={"rdrop": 1.0}, model={"dropout": 0.0})
    with pytest.raises(ConfigError, match="rdrop"):
        train(no_dropout, log=lambda m: None)
