"""The fast training paths keep the numerics: token-budget batching, torch.compile, threads, cached data.

Tolerances (per logged step loss, tiny BERT, fp32 CPU, dropout 0 so a run is a pure function of its batches):
- resume after a kill mid-epoch, cached datasets: equal to 1e-6 (the same arithmetic, replayed);
- intra-op thread count: 1e-5 (only the summation order of the parallel kernels changes);
- torch.compile (inductor): 1e-3 (fused kernels reassociate float sums).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from conftest import run_config, write_csv
from graftkit.errors import ConfigError
from graftkit.io import staging_path
from graftkit.tasks.capabilities import TrainsWithTrainer
from graftkit.tasks.classification import ClassificationTask
from graftkit.train.batching import TokenBudgetBatchSampler, token_budget_batches
from graftkit.train.threads import configure_threads, physical_cores
from graftkit.train.trainer import train

WORDS = "the movie was wonderful moving dull boring film great acting lovely story terrible plot awful".split()


def rows(n: int, seed: int = 0) -> list[list[str]]:
    """Texts of 2..14 words (so token budgets give batches of different widths), two labels."""
    rng = np.random.default_rng(seed)
    return [[" ".join(rng.choice(WORDS, size=int(rng.integers(2, 15)))), "pos" if i % 2 else "neg"]
            for i in range(n)]


@pytest.fixture
def train_file(tmp_path):
    return write_csv(tmp_path / "train.csv", rows(40))


def config(tmp_path, model_dir, train_file, name="t", **train_keys):
    return run_config(tmp_path, model_dir, train_file, name=name, model={"name_or_path": model_dir, "dropout": 0.0},
                      data={"split": {"validation": 0.0, "test": 0.0}},
                      train={"epochs": 2, "learning_rate": 1e-3, "threads": 1, **train_keys},
                      eval={"plots": False, "robustness_rows": 0, "calibrate": False})


def losses(run) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in json.loads(run.history.read_text()) if "loss" in h}


def assert_curves_match(a: dict[int, float], b: dict[int, float], atol: float) -> None:
    assert a.keys() == b.keys() and len(a) >= 4
    np.testing.assert_allclose([b[k] for k in sorted(b)], [a[k] for k in sorted(a)], atol=atol, rtol=0)


# -- the sampler ------------------------------------------------------------------------------------
def test_token_budget_batches_cover_rows_within_budget():
    lengths = np.random.default_rng(1).integers(3, 60, size=500).tolist()
    batches = token_budget_batches(lengths, 256, seed=7)
    assert sorted(i for b in batches for i in b) == list(range(500))  # each row exactly once
    assert all(len(b) * max(lengths[i] for i in b) <= 256 for b in batches)
    sizes = {len(b) for b in batches}
    assert min(sizes) <= 5 and max(sizes) >= 30  # long rows: narrow batches; short rows: wide ones
    assert token_budget_batches(lengths, 256, seed=7) == batches  # deterministic per seed
    assert token_budget_batches(lengths, 256, seed=8) != batches  # ties broken by the seed


def test_sampler_order_per_epoch_is_reproducible():
    lengths = list(range(5, 105))
    sampler = TokenBudgetBatchSampler(lengths, 200, seed=3)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert len(first) == len(second) == len(sampler)
    assert first != second and sorted(map(tuple, first)) == sorted(map(tuple, second))  # same batches, new order
    again = TokenBudgetBatchSampler(lengths, 200, seed=3)
    again.set_epoch(1)
    assert list(again) == second  # what a resumed run rebuilds before skipping


def test_row_longer_than_budget_names_the_key():
    with pytest.raises(ConfigError, match="train.max_tokens_per_batch"):
        token_budget_batches([10, 300], 128, seed=0)


# -- training runs ----------------------------------------------------------------------------------
class _KillAt(TrainerCallback):
    """Simulates a kill once training reaches ``step`` (after the checkpoint of an earlier step)."""

    def __init__(self, step):
        self.step = step

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step >= self.step:
            raise KeyboardInterrupt


def test_token_budget_resume_mid_epoch_replays_the_same_batches(tmp_path, tiny_model_dir, train_file):
    budget = {"max_tokens_per_batch": 96, "eval_strategy": "steps", "eval_steps": 3, "save_total_limit": 5}
    whole = train(config(tmp_path / "a", tiny_model_dir, train_file, **budget), log=lambda m: None)
    steps = max(losses(whole))
    assert steps % 2 == 0 and steps // 2 != 40 // 8  # two epochs of token-budget batches, not of 8-row batches
    assert steps // 2 > 3  # the checkpoint at step 3 is inside the first epoch

    cfg = config(tmp_path / "b", tiny_model_dir, train_file, **budget)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, extra_callbacks=[_KillAt(4)], log=lambda m: None)
    assert (staging_path(cfg.run_dir) / "checkpoints" / "checkpoint-3").is_dir()
    logs = []
    resumed = train(cfg, resume=True, log=logs.append)
    assert any("checkpoint-3" in m for m in logs)
    after = {k: v for k, v in losses(resumed).items() if k > 3}
    assert_curves_match({k: v for k, v in losses(whole).items() if k > 3}, after, atol=1e-6)


def test_token_budget_deterministic_per_seed(tmp_path, tiny_model_dir, train_file):
    a = train(config(tmp_path / "a", tiny_model_dir, train_file, max_tokens_per_batch=96), log=lambda m: None)
    b = train(config(tmp_path / "b", tiny_model_dir, train_file, max_tokens_per_batch=96), log=lambda m: None)
    assert_curves_match(losses(a), losses(b), atol=0.0)
    c = train(config(tmp_path / "c", tiny_model_dir, train_file, max_tokens_per_batch=96, seed=5),
              log=lambda m: None)
    assert losses(c) != losses(a)


def test_thread_count_keeps_the_loss_curve(tmp_path, tiny_model_dir, train_file):
    saved = torch.get_num_threads()
    try:
        one = train(config(tmp_path / "a", tiny_model_dir, train_file, threads=1), log=lambda m: None)
        two = train(config(tmp_path / "b", tiny_model_dir, train_file, threads=2), log=lambda m: None)
    finally:
        torch.set_num_threads(saved)
    assert_curves_match(losses(one), losses(two), atol=1e-5)
    setup = json.loads((two.path / "training_setup.json").read_text())
    assert setup["threads"]["intra_op_threads"] == 2


def test_configure_threads_auto_and_worker_guard(monkeypatch):
    saved = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    try:
        info = configure_threads("auto", num_workers=2)
        assert info["intra_op_threads"] == physical_cores() == torch.get_num_threads()
        assert info["tokenizers_parallelism"] == "false"  # no tokenizer pool inside forked workers
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(2)
        assert configure_threads("auto", num_workers=0)["intra_op_threads"] == 2  # the user's env var wins
    finally:
        torch.set_num_threads(saved)


def test_cached_datasets_skip_tokenising_on_the_second_run(tmp_path, tiny_model_dir, train_file, monkeypatch):
    monkeypatch.setenv("GRAFTKIT_CACHE", str(tmp_path / "cache"))
    calls = []
    training = ClassificationTask.implementation(TrainsWithTrainer)  # the capability that tokenises
    original = training.build_dataset

    def counting(self, examples, tokenizer, max_length):
        calls.append(len(examples))
        return original(self, examples, tokenizer, max_length)

    monkeypatch.setattr(training, "build_dataset", counting)
    first = train(config(tmp_path / "a", tiny_model_dir, train_file, cache_datasets=True), log=lambda m: None)
    assert calls == [40]
    logs = []
    second = train(config(tmp_path / "b", tiny_model_dir, train_file, cache_datasets=True), log=logs.append)
    assert calls == [40]  # nothing tokenised the second time
    assert any("cached copy" in m for m in logs)
    assert_curves_match(losses(first), losses(second), atol=1e-6)
    changed = write_csv(tmp_path / "changed.csv", rows(40, seed=1))
    train(config(tmp_path / "c", tiny_model_dir, changed, cache_datasets=True), log=lambda m: None)
    assert calls == [40, 40]  # other content, other key


def test_compile_matches_eager_loss_curve(tmp_path, tiny_model_dir, train_file):
    eager = train(config(tmp_path / "a", tiny_model_dir, train_file, epochs=1), log=lambda m: None)
    compiled = train(config(tmp_path / "b", tiny_model_dir, train_file, epochs=1, compile=True), log=lambda m: None)
    assert_curves_match(losses(eager), losses(compiled), atol=1e-3)
