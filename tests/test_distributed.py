"""Data-parallel training: 2 CPU processes (gloo) under torch.distributed.run, on the tiny model.

Tolerance: with full-batch steps (the same 32 examples per optimizer step in both runs: one process
with batch 32, or two with 16 each) and no dropout, DDP must follow the single-process run up to
float summation order: every logged train loss and eval loss within 1e-3, and the same final
validation accuracy.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import REPO, run_config, write_csv
from graftkit.config import DistributedConfig
from graftkit.tasks.run_config import dump_config, load_config
from graftkit.errors import ConfigError, GraftkitError
from graftkit.io import staging_path
from graftkit.train.distributed import last_complete_checkpoint, launch_train, strategy_arguments, train_argv
from graftkit.train.trainer import train

ROWS = [["the movie was wonderful and moving", "pos"], ["a dull and boring film", "neg"],
        ["great acting and a lovely story", "pos"], ["terrible plot and awful dialogue", "neg"],
        ["i loved every minute", "pos"], ["i hated every minute", "neg"],
        ["brilliant and fun", "pos"], ["bad and tedious", "neg"]]


def _cfg(tmp_path, model_dir, name, batch_size, **train_keys):
    data = write_csv(tmp_path / "train.csv", ROWS * 4)  # 32 rows: split evenly over 2 ranks
    return run_config(tmp_path, model_dir, data, name=name, model={"dropout": 0.0},
                      data={"validation": str(data), "test": str(data)},
                      train={"batch_size": batch_size, "learning_rate": 3e-3, "warmup": 0, "scheduler": "constant",
                             "weight_decay": 0, "max_grad_norm": 0, **train_keys})


def _yaml(tmp_path, cfg):
    path = tmp_path / f"{cfg.name}.yaml"
    path.write_text(dump_config(cfg))
    return path


def _logged(run, key):
    return [(h["step"], h[key]) for h in json.loads(run.history.read_text()) if key in h]


def test_two_processes_match_one_with_same_global_batch(tmp_path, tiny_model_dir, capfd):
    keys = {"epochs": 10, "learning_rate": 8e-3, "eval_strategy": "steps", "eval_steps": 4}
    single = train(_cfg(tmp_path, tiny_model_dir, "single", 32, **keys), log=lambda m: None)
    cfg = _cfg(tmp_path, tiny_model_dir, "ddp", 16, **keys)
    launch_train(_yaml(tmp_path, cfg), None, nproc=2)
    from graftkit.modeling.run_folder import RunFolder

    ddp = RunFolder(cfg.run_dir)
    assert ddp.is_complete
    made = sorted(p.name for p in (tmp_path / "runs").iterdir() if not p.name.endswith(".lock"))  # writer locks stay
    assert made == ["ddp", "single"]  # exactly one new folder
    assert not [p for p in ddp.path.glob(".*") if not p.name.endswith(".lock")]  # no staging or temporary files
    assert not (ddp.path / "training_args.bin").exists()
    assert capfd.readouterr().err.count("validation: accuracy=") == 1  # only rank 0 reports
    for key in ("loss", "eval_loss"):  # per step / per epoch; eval_loss is gathered over both ranks' halves
        a, b = _logged(single, key), _logged(ddp, key)
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 2
        for (_, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, abs=1e-3), key
    m1, m2 = (json.loads(r.metrics.read_text())["validation"] for r in (single, ddp))
    assert m1["accuracy"] > 0.9 and m2["accuracy"] == m1["accuracy"]
    assert m2["n"] == 32


def _wait_for_checkpoint(proc, folder, timeout=180):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if last_complete_checkpoint(folder):
            return
        assert proc.poll() is None, "training ended before the first checkpoint"
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_kill_a_rank_then_resume(tmp_path, tiny_model_dir, capfd):
    cfg = _cfg(tmp_path, tiny_model_dir, "killed", 4, epochs=8, eval_strategy="steps", eval_steps=4)
    config = _yaml(tmp_path, cfg)
    proc = subprocess.Popen([sys.executable, "-m", "graftkit", "train", str(config), "--nproc", "2"], cwd=REPO)
    try:
        _wait_for_checkpoint(proc, staging_path(cfg.run_dir) / "checkpoints")  # the in-progress folder
        workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if p.environ().get("RANK") == "0"]
        assert len(workers) == 1
        workers[0].send_signal(signal.SIGKILL)  # the writer dies mid-run, as on a lost node
        assert proc.wait(timeout=120) == 2  # torchrun stops the other rank; graftkit reports the failure
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "distributed run failed" in capfd.readouterr().err
    assert not (cfg.run_dir / "COMPLETE").exists()
    # without --resume every rank refuses with rank 0's message (run_on_main hands it to all)
    with pytest.raises(GraftkitError, match="distributed run failed"):
        launch_train(config, None, nproc=2)
    assert capfd.readouterr().err.count("pass --resume") == 2
    launch_train(config, None, nproc=2, resume=True)
    assert "resuming from" in capfd.readouterr().err
    assert (cfg.run_dir / "COMPLETE").is_file()
    history = json.loads((cfg.run_dir / "history.json").read_text())
    assert history[-1]["step"] == 32  # 32 rows / (4 x 2) = 4 steps per epoch x 8 epochs
    assert [h["step"] for h in history if "eval_loss" in h] == list(range(4, 33, 4))  # kept across the kill


def test_last_complete_checkpoint_skips_a_cut_short_one(tmp_path):
    for step, complete in ((4, True), (8, True), (12, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-8")
    assert last_complete_checkpoint(tmp_path / "missing") is None


def test_strategies_map_onto_training_arguments(monkeypatch):
    ddp = strategy_arguments(DistributedConfig())
    assert ddp == {"ddp_backend": None, "average_tokens_across_devices": False}
    fsdp = load_config(REPO / "configs" / "scale-fsdp.yaml").train.distributed
    args = strategy_arguments(fsdp)
    assert args["fsdp"] is True and args["fsdp_config"]["version"] == 2
    assert args["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    assert load_config(REPO / "configs" / "scale-ddp.yaml").train.distributed.strategy == "ddp"
    zero3 = load_config(REPO / "configs" / "scale-zero3.yaml").train.distributed
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # as on a machine without DeepSpeed
    with pytest.raises(ConfigError, match=r"train\.distributed\.strategy: zero3 needs DeepSpeed.*pip install deepspeed"):
        strategy_arguments(zero3)
    with pytest.raises(ConfigError, match="train.distributed.strategy"):
        load_config(REPO / "configs" / "scale-ddp.yaml", ["train.distributed.strategy=zero4"])
    assert train_argv(REPO / "c.yaml", ["train.epochs=1"], True, False) == [
        "train", str(REPO / "c.yaml"), "--set", "train.epochs=1", "--resume"]
